"""Figures the notebooks show: sample grids with skeletons, heatmaps per stack, curves and bars."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from hgstudy.core.joints import JOINT_LAYOUTS, SKELETONS
from hgstudy.study.stats import seed_band

plt.rcParams["figure.dpi"] = 72  # the committed reports' figures: half the bytes of matplotlib's 100 dpi, legible

# Right limbs red, left limbs blue, spine green: left/right confusions show at a glance.
SIDE_COLOURS = {"r": "tab:red", "l": "tab:blue", "m": "tab:green"}


def _side(name: str) -> str:
    return name[0] if name[:2] in ("r_", "l_") else "m"


def draw_pose(ax, joints, annotated=None, style: str = "-", label: str | None = None) -> None:
    """Skeleton of one person, joints (16, 2) or FLIC's (11, 2) in the axes' pixel coordinates."""
    joints = np.asarray(joints, dtype=float)
    annotated = np.ones(len(joints), bool) if annotated is None else np.asarray(annotated, bool)
    layout = next(k for k, names in JOINT_LAYOUTS.items() if len(names) == len(joints))  # told apart by count
    names = JOINT_LAYOUTS[layout]
    for a, b in SKELETONS[layout]:
        if annotated[a] and annotated[b]:
            colour = SIDE_COLOURS[_side(names[b]) if _side(names[a]) == "m" else _side(names[a])]
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


def stack_heatmaps(sample: dict, heatmaps, joints: dict, supervised=None):
    """A row per joint of `joints` ({name: index}), a column per stack: the crop under that joint's heatmap, every
    panel on one colour scale (a colour bar shows it), so that stacks compare by brightness; `supervised` (one bool
    per stack) marks the stacks the loss did not see."""
    heatmaps = np.asarray(heatmaps)  # (S, J, h, w)
    stacks = heatmaps.shape[0]
    maps = heatmaps[:, list(joints.values())].clip(0)  # (S, K, h, w)
    fig, axes = plt.subplots(len(joints), stacks, figsize=(1.5 * stacks + 1.2, 1.5 * len(joints)), squeeze=False)
    image = np.clip(np.asarray(sample["image"]).transpose(1, 2, 0), 0, 1)
    res, top = image.shape[0], max(float(maps.max()), 1e-6)
    for (k, name), s in ((kn, s) for kn in enumerate(joints) for s in range(stacks)):
        ax = axes[k, s]
        ax.imshow(image)
        shown = ax.imshow(maps[s, k], cmap="magma", alpha=0.65, vmin=0, vmax=top,
                          extent=(-0.5, res - 0.5, res - 0.5, -0.5))
        ax.set_xticks([]), ax.set_yticks([])
        if k == 0:
            unseen = supervised is not None and not supervised[s]
            ax.set_title(f"stack {s + 1}" + (" (unsupervised)" if unseen else ""), fontsize=8)
        if s == 0:
            ax.set_ylabel(name.replace("_", " "), fontsize=8)
    fig.colorbar(shown, ax=list(axes.flat), fraction=0.02, pad=0.01, label="heatmap")
    return fig


def pose_density(frame: pd.DataFrame, parts=("head_top", "shoulder", "elbow", "wrist", "hip", "knee", "ankle")):
    """Where each part lies in the crop (`frame`: joint, x, y in crop units), a panel per part with its right and
    left joints in their side's colours, every panel on the same equal-aspect axes, y down as in the image."""
    fig, axes = plt.subplots(1, len(parts), figsize=(2.0 * len(parts), 2.6), sharex=True, sharey=True)
    for ax, part in zip(axes, parts):
        for name in (n for n in dict.fromkeys(frame.joint) if n == part or n.endswith(f"_{part}")):
            rows = frame[frame.joint == name]
            ax.plot(rows.x, rows.y, ",", color=SIDE_COLOURS[_side(name)], alpha=0.15)
        ax.set_title(part.replace("_", " "), fontsize=9)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
    (x0, x1), (y0, y1) = (frame[c].quantile([0.001, 0.999]) for c in ("x", "y"))  # a few strays off the axes
    axes[0].set(xlim=(x0, x1), ylim=(y1, y0))  # y down, as in the image
    fig.supxlabel("x (crop units: / 200 x scale)", fontsize=9)
    fig.tight_layout()
    return fig


def legend_outside(ax) -> None:
    """The legend to the right of the axes, never over the data."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def curves(frame: pd.DataFrame, x: str, y: str, hue: str | None = None, title: str = "", ax=None, **kw):
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    sns.lineplot(data=frame, x=x, y=y, hue=hue, ax=ax, **kw)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    legend_outside(ax)
    return ax


def bars(frame: pd.DataFrame, x: str, y: str, hue: str | None = None, title: str = "", ax=None):
    ax = ax or plt.subplots(figsize=(8, 3.5))[1]
    sns.barplot(data=frame, x=x, y=y, hue=hue, ax=ax)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    legend_outside(ax)
    return ax


def seed_bands(frame: pd.DataFrame, x: str, y: str, groups, title: str = "", ax=None, ylabel: str | None = None):
    """Per group (a variant), the mean over its runs of `y` against `x`, and a 95% t band across the runs."""
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    for name in groups:
        wide = frame[frame.variant == name].pivot_table(index=x, columns="run", values=y)
        if wide.empty:
            continue
        band = np.array([seed_band(row) for _, row in wide.iterrows()])
        line = ax.plot(wide.index, band[:, 0], marker=".", label=f"{name} ({wide.shape[1]} seeds)")[0]
        ax.fill_between(wide.index, band[:, 1], band[:, 2], color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set(title=title, xlabel=x, ylabel=ylabel or y)
    ax.grid(alpha=0.3)
    legend_outside(ax)
    return ax


BASELINES = (("mean_pose_ablation", "mean pose", ":"), ("nearest_neighbour_ablation", "nearest neighbour", "--"))


def baselines(ax, values: dict):
    """The data stage's trivial baselines on the ablation's measure (results/data/metrics.json) as horizontal
    lines, where it has them."""
    for key, label, style in BASELINES:
        if key in values:
            ax.axhline(values[key], color="0.3", linestyle=style, linewidth=1, label=f"{label} baseline")
    legend_outside(ax)
    return ax


def claim_intervals(claims: pd.DataFrame, ax=None):
    """Each claim's difference (better - worse) with its per-claim 95% interval (thick) and its family-wise
    interval (thin); right of zero = in the direction the claim states."""
    ax = ax or plt.subplots(figsize=(8, 0.5 + 0.45 * len(claims)))[1]
    y = np.arange(len(claims))[::-1]
    ax.hlines(y, claims.family_low, claims.family_high, color="grey", linewidth=1, label="family-wise interval")
    ax.hlines(y, claims.ci95_low, claims.ci95_high, color="tab:blue", linewidth=4, label="95% interval")
    ax.plot(claims["diff"], y, "o", color="black", label="difference of seed means")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, [f"{b} - {w}" for b, w in zip(claims.better, claims.worse)])
    ax.set(xlabel="difference in PCKh@0.5, wrists/elbows/knees/ankles (points)", title="The claims")
    ax.grid(alpha=0.3, axis="x")
    legend_outside(ax)
    return ax


def claim_curve_grid(claim_curves: pd.DataFrame, columns: int = 4):
    """One panel per claim: its difference over training with the seed band, and zero."""
    names = list(dict.fromkeys(claim_curves.claim))
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows), squeeze=False, sharex=True,
                             sharey=True)  # one scale: a panel's swing reads against the others
    for ax, name in zip(axes.flat, names):
        c = claim_curves[claim_curves.claim == name]
        ax.plot(c.step, c["diff"], marker=".")
        ax.fill_between(c.step, c.low, c.high, alpha=0.2, linewidth=0)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    fig.supxlabel("training step")
    fig.supylabel("difference (points)")
    fig.tight_layout()
    return fig


MEASURES = {"pckh": "PCKh@0.5", "ablation": "PCKh@0.5, wrists/elbows/knees/ankles", "pck": "PCK@0.2"}


def training_curves(run, subset: str) -> None:
    """A run's training loss per output (log scale) and its validation measures by stack (`subset`: which people)."""
    log, val = read_tsv(Path(run) / "train.tsv"), read_tsv(Path(run) / "val.tsv")
    losses = log.melt("step", [c for c in log.columns if c.startswith("loss_")], "output", "loss per output")
    curves(losses, "step", "loss per output", "output", "Training loss per output").set_yscale("log")
    for key, measure in MEASURES.items():
        columns = [c for c in val.columns if c.startswith(f"{key}_stack")]
        if columns:
            curves(val.melt("step", columns, "stack", measure), "step", measure, "stack",
                   f"Validation {measure} by stack ({subset})")


def read_tsv(path) -> pd.DataFrame:
    path = Path(path)
    return pd.read_csv(path, sep="\t") if path.is_file() else pd.DataFrame()
