"""Plots of a sweep: the Pareto front and the channel-parity panels, one per target.

Drawn in tinymeter's one plotting style (:func:`tinymeter.analysis.plots.figure` and
:func:`~tinymeter.analysis.plots.save`); plots of single estimates live there too.
"""

from __future__ import annotations

import logging
import textwrap
import types
from collections.abc import Mapping, Sequence
from pathlib import Path

from tinymeter.analysis import plots
from tinymeter.analysis.plots import figure
from tinymeter.apps.sweep.pareto import SweepRow, group_by_target, pareto_rows, width_series
from tinymeter.apps.sweep.space import COST_METRICS, TFLM_KERNEL_SETS, channel_parity

log = logging.getLogger(__name__)

_METRIC_LABELS: Mapping[str, str] = types.MappingProxyType(
    {"ms": "estimated latency (ms)", "energy_uj": "energy per inference (uJ)",
     "arena_bytes": "tensor arena (bytes)", "flash_bytes": "flash (bytes)"})
_PARITY_STYLE: Mapping[str, tuple[str, str]] = types.MappingProxyType(
    {"x4": ("tab:green", "s"), "even": ("tab:blue", "o"), "odd": ("tab:red", "^")})
#: Legend text of each channel-parity class (spelled out: "x4" alone says nothing).
_PARITY_LABEL: Mapping[str, str] = types.MappingProxyType(
    {"x4": "width a multiple of 4", "even": "even width (not of 4)", "odd": "odd width"})
#: What a sweep's candidates are (the model named in sweep plot titles).
SWEEP_MODEL = "digits CNN candidates"



def sweep_target_title(board: str, kernels: str, rows: Sequence[SweepRow],
                       model: str = SWEEP_MODEL) -> str:
    """What a sweep panel shows, as :func:`estimate_title` says it for one estimate:
    model, board, kernels or runtime, and the cost model(s) that priced its rows."""
    impl = f"{kernels} runtime" if kernels in TFLM_KERNEL_SETS else f"{kernels} kernels"
    costs = sorted({r.cost_model for r in rows if r.cost_model}) or ["not recorded"]
    return f"{model} on {board} ({impl}, cost model {', '.join(costs)})"


def plot_pareto(rows: Sequence[SweepRow], path: Path | str, metric: str = "ms", *,
                model: str = SWEEP_MODEL) -> Path:
    """Accuracy vs *metric*, one panel per (board, kernel set), Pareto front drawn.

    Points are coloured by channel parity so the fast-path clusters are visible.
    """
    if metric not in COST_METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    groups = group_by_target(rows)
    fig, axes = figure(max(1, len(groups)), width=6.5, height=4.8, max_cols=2)
    for ax, ((board, kernels), rs) in zip(axes, sorted(groups.items())):
        for parity, (color, marker) in _PARITY_STYLE.items():
            sel = [r for r in rs if r.parity == parity]
            if sel:
                ax.scatter([getattr(r, metric) for r in sel], [100 * r.accuracy for r in sel], c=color,
                           marker=marker, label=_PARITY_LABEL[parity], alpha=0.8)
        front = pareto_rows(rs, metric)
        ax.step([getattr(r, metric) for r in front], [100 * r.accuracy for r in front], where="post",
                color="black", lw=1.2, label="Pareto front")
        for r in front:
            ax.annotate(r.name, (getattr(r, metric), 100 * r.accuracy), fontsize=7,
                        textcoords="offset points", xytext=(3, -9))
        ax.set_title(textwrap.fill(sweep_target_title(board, kernels, rs, model), 70), fontsize=9)
        ax.set_xlabel(_METRIC_LABELS[metric])
        ax.set_ylabel("int8 test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    if not groups:
        axes[0].text(0.5, 0.5, "no finished candidates", ha="center", transform=axes[0].transAxes)
    return plots.save(fig, path)


def plot_parity(rows: Sequence[SweepRow], path: Path | str, *, model: str = SWEEP_MODEL) -> Path:
    """Latency vs MACs and cycles per MAC vs width, one row of panels per target.

    Left: if latency were a function of MACs the points would lie on one curve.
    Right: cycles per MAC along each (depth, kernel) series; the reference kernels
    get cheaper per MAC smoothly as width grows, the optimized kernels zig-zag
    because odd widths miss the paired-channel fast paths (see
    :func:`~tinymeter.apps.sweep.pareto.parity_inversions`).
    """
    groups = sorted(group_by_target(rows).items())
    fig = plots.canvas(12.0, 4.0 * max(1, len(groups)))
    for g, ((board, kernels), rs) in enumerate(groups):
        left = fig.add_subplot(len(groups), 2, 2 * g + 1)
        right = fig.add_subplot(len(groups), 2, 2 * g + 2)
        for parity, (color, marker) in _PARITY_STYLE.items():
            sel = [r for r in rs if r.parity == parity]
            if sel:
                left.scatter([r.macs for r in sel], [r.ms for r in sel], c=color, marker=marker, alpha=0.8,
                             label=_PARITY_LABEL[parity])
                right.scatter([r.width for r in sel], [r.cycles_per_mac for r in sel], c=color,
                              marker=marker, alpha=0.9, zorder=3)
        for (depth, kernel), series in sorted(width_series(rs).items()):
            right.plot([r.width for r in series], [r.cycles_per_mac for r in series], color="gray",
                       lw=0.8, alpha=0.7)
            last = series[-1]
            right.annotate(f"d{depth} k{kernel}", (last.width, last.cycles_per_mac), fontsize=7,
                           textcoords="offset points", xytext=(4, 0))
        target = sweep_target_title(board, kernels, rs, model)
        left.set_xlabel("MACs per inference (multiply-accumulates)")
        left.set_ylabel("estimated latency (ms)")
        left.set_title(textwrap.fill(f"{target}: latency vs MACs", 60), fontsize=9)
        right.set_xlabel("width (channels)")
        right.set_ylabel("estimated cost (cycles per MAC)")
        right.set_title(textwrap.fill(f"{target}: cost per MAC by width", 60), fontsize=9)
        for ax in (left, right):
            ax.grid(alpha=0.3)
        left.legend(fontsize=7)
    if not groups:
        fig.add_subplot(1, 1, 1).text(0.5, 0.5, "no finished candidates", ha="center")
    return plots.save(fig, path)


__all__ = ["channel_parity", "plot_pareto", "plot_parity", "sweep_target_title"]
