"""Scoring: ground truth, heatmap decoding, the benchmarks' metrics, the bootstrap, prediction files."""
