"""Plots of the workflow: sweeps (Pareto front, channel parity) and estimates.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly,
not ``pyplot``: no global figure registry, no backend switch that would surprise a
notebook or a headless CI run. Every function saves a PNG and returns its path, so
scripts, the CLI and notebooks (``IPython.display.Image(path)``) use them the same way.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .nas import COST_METRICS, SweepRow, channel_parity, group_by_target, pareto_rows, width_series

if TYPE_CHECKING:  # pragma: no cover - typing only
    from tinymeter.models.inspect import ModelSummary
    from tinymeter.report import Estimate

log = logging.getLogger(__name__)

_METRIC_LABELS: Mapping[str, str] = types.MappingProxyType(
    {"ms": "estimated latency (ms)", "energy_uj": "energy per inference (uJ)",
     "arena_bytes": "tensor arena (bytes)", "flash_bytes": "flash (bytes)"})
_PARITY_STYLE: Mapping[str, tuple[str, str]] = types.MappingProxyType(
    {"x4": ("tab:green", "s"), "even": ("tab:blue", "o"), "odd": ("tab:red", "^")})


def _figure(ncols: int = 1, width: float = 6.0, height: float = 4.2) -> tuple[Figure, list]:
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _save(fig: Figure, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    log.info("wrote %s", path)
    return path


def plot_pareto(rows: Sequence[SweepRow], path: Path | str, metric: str = "ms") -> Path:
    """Accuracy vs *metric*, one panel per (board, kernel set), Pareto front drawn.

    Points are coloured by channel parity so the fast-path clusters are visible.
    """
    if metric not in COST_METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    groups = group_by_target(rows)
    fig, axes = _figure(max(1, len(groups)))
    for ax, ((board, kernels), rs) in zip(axes, sorted(groups.items())):
        for parity, (color, marker) in _PARITY_STYLE.items():
            sel = [r for r in rs if r.parity == parity]
            if sel:
                ax.scatter([getattr(r, metric) for r in sel], [100 * r.accuracy for r in sel], c=color,
                           marker=marker, label=f"width {parity}", alpha=0.8)
        front = pareto_rows(rs, metric)
        ax.step([getattr(r, metric) for r in front], [100 * r.accuracy for r in front], where="post",
                color="black", lw=1.2, label="Pareto front")
        for r in front:
            ax.annotate(r.name, (getattr(r, metric), 100 * r.accuracy), fontsize=7,
                        textcoords="offset points", xytext=(3, -9))
        ax.set_title(f"{board} / {kernels} kernels", fontsize=10)
        ax.set_xlabel(_METRIC_LABELS[metric])
        ax.set_ylabel("int8 test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    if not groups:
        axes[0].text(0.5, 0.5, "no finished candidates", ha="center", transform=axes[0].transAxes)
    return _save(fig, path)


def plot_parity(rows: Sequence[SweepRow], path: Path | str) -> Path:
    """Latency vs MACs and cycles per MAC vs width, one row of panels per target.

    Left: if latency were a function of MACs the points would lie on one curve.
    Right: cycles per MAC along each (depth, kernel) series; the reference kernels
    get cheaper per MAC smoothly as width grows, the optimized kernels zig-zag
    because odd widths miss the paired-channel fast paths (see
    :func:`~tinymeter.models.nas.parity_inversions`).
    """
    groups = sorted(group_by_target(rows).items())
    fig = Figure(figsize=(12.0, 4.0 * max(1, len(groups))), layout="constrained")
    FigureCanvasAgg(fig)
    for g, ((board, kernels), rs) in enumerate(groups):
        left = fig.add_subplot(len(groups), 2, 2 * g + 1)
        right = fig.add_subplot(len(groups), 2, 2 * g + 2)
        for parity, (color, marker) in _PARITY_STYLE.items():
            sel = [r for r in rs if r.parity == parity]
            if sel:
                left.scatter([r.macs for r in sel], [r.ms for r in sel], c=color, marker=marker, alpha=0.8,
                             label=f"width {parity}")
                right.scatter([r.width for r in sel], [r.cycles_per_mac for r in sel], c=color,
                              marker=marker, alpha=0.9, zorder=3)
        for (depth, kernel), series in sorted(width_series(rs).items()):
            right.plot([r.width for r in series], [r.cycles_per_mac for r in series], color="gray",
                       lw=0.8, alpha=0.7)
            last = series[-1]
            right.annotate(f"d{depth} k{kernel}", (last.width, last.cycles_per_mac), fontsize=7,
                           textcoords="offset points", xytext=(4, 0))
        left.set_xlabel("MACs")
        left.set_ylabel("estimated latency (ms)")
        left.set_title(f"{board} / {kernels}: latency vs MACs", fontsize=10)
        right.set_xlabel("width (channels)")
        right.set_ylabel("cycles per MAC")
        right.set_title(f"{board} / {kernels}: cost per MAC by width", fontsize=10)
        for ax in (left, right):
            ax.grid(alpha=0.3)
        left.legend(fontsize=7)
    if not groups:
        fig.add_subplot(1, 1, 1).text(0.5, 0.5, "no finished candidates", ha="center")
    return _save(fig, path)


def plot_layers(est: Estimate, path: Path | str) -> Path:
    """Per-layer estimated latency (bars) and MACs (line) of one estimate."""
    fig, (ax,) = _figure(1, width=max(6.0, 0.5 * len(est.layers) + 3))
    labels = [f"{r.index}:{r.op}" for r in est.layers]
    ax.bar(range(len(labels)), [r.ms for r in est.layers], color="tab:blue", label="ms")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("estimated ms")
    twin = ax.twinx()
    twin.plot(range(len(labels)), [r.macs for r in est.layers], color="tab:orange", marker="o", label="MACs")
    twin.set_ylabel("MACs")
    ax.set_title(f"{est.model} on {est.board} ({est.kernels} kernels): {est.ms:.3f} ms", fontsize=10)
    return _save(fig, path)


def plot_comparison(estimates: Mapping[str, Estimate], path: Path | str) -> Path:
    """Latency, energy and memory of several estimates side by side (boards, kernel sets)."""
    fig, axes = _figure(3, width=4.2)
    names = list(estimates)
    ests = list(estimates.values())
    xs = range(len(names))
    for ax, (label, ys) in zip(axes[:2], [("estimated ms", [e.ms for e in ests]),
                                          ("energy uJ", [e.energy_uj for e in ests])]):
        ax.bar(xs, ys, color="tab:blue")
        ax.set_ylabel(label)
    mem = axes[2]
    mem.bar([x - 0.2 for x in xs], [e.arena_bytes / 1024 for e in ests], width=0.4, label="arena")
    mem.bar([x + 0.2 for x in xs], [e.flash_bytes / 1024 for e in ests], width=0.4, label="flash")
    mem.set_ylabel("KiB")
    mem.legend(fontsize=7)
    for ax in axes:
        ax.set_xticks(list(xs), names, rotation=30, ha="right", fontsize=7)
        ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def plot_model_summary(summary: ModelSummary, path: Path | str, title: str = "") -> Path:
    """MACs and weight bytes per op of an inspected model (model selection)."""
    fig, axes = _figure(2, width=max(4.5, 0.35 * len(summary.ops) + 2))
    labels = [f"{o.index}:{o.opcode}" for o in summary.ops]
    for ax, (ys, label) in zip(axes, [([o.macs for o in summary.ops], "MACs"),
                                      ([o.weight_bytes for o in summary.ops], "weight bytes")]):
        ax.bar(range(len(labels)), ys, color="tab:purple")
        ax.set_xticks(range(len(labels)), labels, rotation=70, ha="right", fontsize=6)
        ax.set_ylabel(label)
        ax.set_title(f"{title} {label}".strip(), fontsize=10)
    return _save(fig, path)


def plot_accuracy(accuracies: Mapping[str, float], path: Path | str, title: str = "") -> Path:
    """Bar chart of accuracies (float vs int8, or several models)."""
    fig, (ax,) = _figure(1, width=5.0)
    names = list(accuracies)
    ax.bar(range(len(names)), [100 * accuracies[n] for n in names], color="tab:green")
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    for i, n in enumerate(names):
        ax.text(i, 100 * accuracies[n] + 1, f"{100 * accuracies[n]:.1f}", ha="center", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)


__all__ = ["channel_parity", "plot_accuracy", "plot_comparison", "plot_layers", "plot_model_summary",
           "plot_pareto", "plot_parity"]
