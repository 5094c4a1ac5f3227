"""Figures the notebooks show: sample grids with skeletons, heatmaps per stack, curves and bars."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from hgstudy.core.joints import MPII_JOINTS, MPII_SKELETON

# Right limbs red, left limbs blue, spine green: left/right confusions show at a glance.
SIDE_COLOURS = {"r": "tab:red", "l": "tab:blue", "m": "tab:green"}


def _side(joint: int) -> str:
    name = MPII_JOINTS[joint]
    return name[0] if name[:2] in ("r_", "l_") else "m"


def draw_pose(ax, joints, annotated=None, style: str = "-", label: str | None = None) -> None:
    """Skeleton of one person, joints (16, 2) in the axes' pixel coordinates."""
    joints = np.asarray(joints, dtype=float)
    annotated = np.ones(len(joints), bool) if annotated is None else np.asarray(annotated, bool)
    for a, b in MPII_SKELETON:
        if annotated[a] and annotated[b]:
            colour = SIDE_COLOURS[_side(b) if _side(a) == "m" else _side(a)]
            ax.plot(*joints[[a, b]].T, style, color=colour, lw=1.5, label=label)
            label = None


def crop_joints(sample: dict, joints) -> np.ndarray:
    """Original-image joints (J, 2) mapped into the sample's input crop."""
    m = np.asarray(sample["matrix_input"], dtype=float)
    return np.asarray(joints, dtype=float) @ m[:, :2].T + m[:, 2]


def sample_grid(samples, predictions=None, titles=None, columns: int = 4, size: float = 2.4):
    """Input crops with the ground truth (solid) and, if given, predictions (dashed) in original pixels."""
    rows = -(-len(samples) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= len(samples):
            continue
        sample = samples[k]
        ax.imshow(np.clip(np.asarray(sample["image"]).transpose(1, 2, 0), 0, 1))
        draw_pose(ax, crop_joints(sample, sample["joints"]), sample["annotated"], "-")
        if predictions is not None:
            draw_pose(ax, crop_joints(sample, predictions[k]), sample["annotated"], "--")
        if titles is not None:
            ax.set_title(titles[k], fontsize=8)
    fig.tight_layout()
    return fig


def stack_heatmaps(sample: dict, heatmaps, joints=(10, 15, 0, 5)):
    """One row per stack: the crop with the summed heatmaps of `joints` (default wrists and ankles)."""
    heatmaps = np.asarray(heatmaps)  # (S, J, h, w)
    stacks = heatmaps.shape[0]
    fig, axes = plt.subplots(1, stacks + 1, figsize=(2.2 * (stacks + 1), 2.4))
    image = np.clip(np.asarray(sample["image"]).transpose(1, 2, 0), 0, 1)
    axes[0].imshow(image)
    axes[0].set_title("input", fontsize=8)
    res = image.shape[0]
    for s in range(stacks):
        axes[s + 1].imshow(image)
        axes[s + 1].imshow(heatmaps[s, list(joints)].clip(0).sum(0), cmap="magma", alpha=0.6,
                           extent=(-0.5, res - 0.5, res - 0.5, -0.5))
        axes[s + 1].set_title(f"stack {s + 1}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def curves(frame: pd.DataFrame, x: str, y: str, hue: str | None = None, title: str = "", ax=None, **kw):
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    sns.lineplot(data=frame, x=x, y=y, hue=hue, ax=ax, **kw)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return ax


def bars(frame: pd.DataFrame, x: str, y: str, hue: str | None = None, title: str = "", ax=None):
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    sns.barplot(data=frame, x=x, y=y, hue=hue, ax=ax)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    return ax


def read_tsv(path) -> pd.DataFrame:
    path = Path(path)
    return pd.read_csv(path, sep="\t") if path.is_file() else pd.DataFrame()
