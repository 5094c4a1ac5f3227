"""hgstudy: a reproducible study of Stacked Hourglass Networks for Human Pose Estimation."""

__version__ = "0.1.0"
