"""Plots of the workflow: sweeps (Pareto front, channel parity) and estimates.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly,
not ``pyplot``: no global figure registry, no backend switch that would surprise a
notebook or a headless CI run. Every function saves a PNG and returns its path, so
scripts, the CLI and notebooks (``IPython.display.Image(path)``) use them the same way.
"""

from __future__ import annotations

import logging
import textwrap
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tinymeter.apps.sweep.nas import (
    COST_METRICS,
    TFLM_KERNEL_SETS,
    SweepRow,
    channel_parity,
    group_by_target,
    pareto_rows,
    width_series,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from tinymeter.analysis.report import Estimate
    from tinymeter.models.inspect import ModelSummary

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


def _figure(ncols: int = 1, width: float = 6.0, height: float = 4.2,
            max_cols: int = 0) -> tuple[Figure, list]:
    """A figure of *ncols* panels; with *max_cols* they wrap into rows of at most that
    many (four panels in one 2640-pixel row are unreadable)."""
    cols = min(ncols, max_cols) if max_cols else ncols
    rows = -(-ncols // cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(ncols)]
    return fig, axes


def _save(fig: Figure, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    log.info("wrote %s", path)
    return path


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
    fig, axes = _figure(max(1, len(groups)), width=6.5, height=4.8, max_cols=2)
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
    return _save(fig, path)


def plot_parity(rows: Sequence[SweepRow], path: Path | str, *, model: str = SWEEP_MODEL) -> Path:
    """Latency vs MACs and cycles per MAC vs width, one row of panels per target.

    Left: if latency were a function of MACs the points would lie on one curve.
    Right: cycles per MAC along each (depth, kernel) series; the reference kernels
    get cheaper per MAC smoothly as width grows, the optimized kernels zig-zag
    because odd widths miss the paired-channel fast paths (see
    :func:`~tinymeter.apps.sweep.nas.parity_inversions`).
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
    return _save(fig, path)


def estimate_title(est: Estimate) -> str:
    """What every plot of an estimate says it shows: model, board, kernels or runtime,
    cost model."""
    impl = f"{est.kernels} kernels" if est.runtime == "own" else f"{est.runtime} runtime"
    return f"{est.model} on {est.board} ({impl}, cost model {est.cost_model})"


def _spread(values: Sequence[float]) -> bool:
    """Whether bars of *values* need a log axis (small ones would vanish linearly)."""
    positive = [v for v in values if v > 0]
    return len(positive) > 1 and max(positive) / min(positive) > 50


def plot_layers(est: Estimate, path: Path | str) -> Path:
    """Per-layer estimated latency (bars) and MACs (markers) of one estimate; log axes
    when the layers span orders of magnitude, so small layers stay visible.  With energy
    by activity, a second panel puts each layer's energy share beside its latency share
    (they differ where a layer's memory traffic differs from the average)."""
    energy = any(r.energy for r in est.layers)
    fig, axes = _figure(2 if energy else 1, width=min(max(6.0, 0.32 * len(est.layers) + 3), 24.0),
                        height=4.8, max_cols=1)
    ax = axes[0]
    if energy:
        _energy_shares(axes[1], est)
    labels = [f"{r.index}:{r.op}" for r in est.layers]
    ms = [r.ms for r in est.layers]
    ax.bar(range(len(labels)), ms, color="tab:blue", label="estimated latency")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("layer (index:op)")
    ax.set_ylabel("estimated latency (ms)")
    if _spread(ms):
        ax.set_yscale("log")
    twin = ax.twinx()
    macs = [r.macs for r in est.layers]
    twin.plot(range(len(labels)), macs, color="tab:orange", marker="o", lw=0, label="MACs")
    twin.set_ylabel("MACs (multiply-accumulates)")
    if _spread(macs):
        twin.set_yscale("log")
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [str(h.get_label()) for h in handles], fontsize=7, loc="upper right")
    ax.set_title(f"{estimate_title(est)}: {est.ms:.3f} ms", fontsize=10)
    return _save(fig, path)


def _energy_shares(ax: Any, est: Estimate) -> None:
    """Grouped bars: latency share and energy share of each layer (percent)."""
    xs = np.arange(len(est.layers))
    ax.bar(xs - 0.2, [100 * r.share for r in est.layers], width=0.4, color="tab:blue",
           label="latency share")
    ax.bar(xs + 0.2, [100 * r.energy_share for r in est.layers], width=0.4, color="tab:red",
           label="energy share")
    ax.set_xticks(list(xs), [f"{r.index}:{r.op}" for r in est.layers], rotation=60, ha="right",
                  fontsize=7)
    ax.set_ylabel("share of the inference (%)")
    ax.grid(alpha=0.3, axis="y")
    flash = est.energy.get("flash_uj", 0.0) if est.energy else 0.0
    ax.set_title(f"energy {est.energy_uj:.2f} uJ ({100 * flash / est.energy_uj:.1f}% flash reads)"
                 if est.energy_uj > 0 else "energy", fontsize=9)
    ax.legend(fontsize=7)


def plot_comparison(estimates: Mapping[str, Estimate], path: Path | str) -> Path:
    """Latency, energy and memory of several estimates side by side (boards, kernel sets)."""
    fig, axes = _figure(3, width=4.2)
    names = list(estimates)
    ests = list(estimates.values())
    xs = range(len(names))
    for ax, (label, ys) in zip(axes[:2], [("estimated latency (ms)", [e.ms for e in ests]),
                                          ("energy per inference (uJ)", [e.energy_uj for e in ests])]):
        ax.bar(xs, ys, color="tab:blue")
        ax.set_ylabel(label)
    mem = axes[2]
    mem.bar([x - 0.2 for x in xs], [e.arena_bytes / 1024 for e in ests], width=0.4, label="arena")
    mem.bar([x + 0.2 for x in xs], [e.flash_bytes / 1024 for e in ests], width=0.4, label="flash")
    mem.set_ylabel("memory (KiB)")
    mem.legend(fontsize=7)
    for ax in axes:
        ax.set_xticks(list(xs), names, rotation=30, ha="right", fontsize=7)
        ax.grid(alpha=0.3, axis="y")
    if ests:
        models = sorted({e.model for e in ests})
        costs = sorted({e.cost_model for e in ests})
        fig.suptitle(f"{', '.join(models)}: {', '.join(names)} (cost model {', '.join(costs)})",
                     fontsize=10)
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


__all__ = ["channel_parity", "estimate_title", "plot_accuracy", "plot_comparison", "plot_layers",
           "plot_model_summary", "plot_pareto", "plot_parity", "sweep_target_title"]
