"""Scoring: ground truth, heatmap decoding, the benchmarks' metrics, prediction files."""
