"""Plots of estimates, measurements and calibration: tinymeter's one plotting style.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly,
not ``pyplot``: no global figure registry (long campaigns do not accumulate figures), no
backend switch that would surprise a notebook or a headless CI run. Every function
saves one PNG through :func:`save` and returns its path, so scripts, the CLI and
notebooks (``IPython.display.Image(path)``) use them the same way. Plots of one
application (the sweep's Pareto and parity panels, :mod:`tinymeter.apps.sweep.plots`)
use :func:`figure` and :func:`save` from here.
"""

from __future__ import annotations

import itertools
import logging
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tinymeter.sim.peripherals import MarkEvent

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

    from tinymeter.analysis.report import Estimate
    from tinymeter.models.inspect import ModelSummary

log = logging.getLogger(__name__)


#: Resolution of every saved figure.
DPI = 120


def canvas(width: float, height: float) -> Figure:
    """An empty figure of *width* x *height* inches on the Agg canvas (panels added by
    the caller). matplotlib is imported here, on the first plot: it is the heaviest
    import of the package (about a second), and most commands never plot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure(ncols: int = 1, width: float = 6.0, height: float = 4.2,
           max_cols: int = 0) -> tuple[Figure, list]:
    """A figure of *ncols* panels, each *width* x *height* inches; with *max_cols* they
    wrap into rows of at most that many (four panels in one 2640-pixel row are
    unreadable)."""
    cols = min(ncols, max_cols) if max_cols else ncols
    rows = -(-ncols // cols)
    fig = canvas(width * cols, height * rows)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(ncols)]
    return fig, axes


def save(fig: Figure, path: Path | str) -> Path:
    """Write *fig* as a PNG at *path* (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    log.info("wrote %s", path)
    return path


def estimated_vs_measured(measured: Sequence[float] | np.ndarray,
                          estimated: Sequence[float] | np.ndarray, path: Path, *,
                          calibrated: Sequence[float] | np.ndarray | None = None,
                          labels: Sequence[str] = (),
                          band: float = 0.05, title: str = "") -> Path:
    """Per-layer estimated vs measured cycles: left the parity plot on log axes, right
    the relative error against measured cycles, where the +-*band* strip is visible at
    every scale. Only the worst layers outside the band are labelled (dozens of labels
    pile up into an unreadable blot)."""
    m = np.asarray(measured, dtype=float)
    series = [("datasheet model", np.asarray(estimated, dtype=float), "o")]
    if calibrated is not None:
        series.append(("calibrated", np.asarray(calibrated, dtype=float), "x"))
    fig, (parity, rel) = figure(2, width=6.0, height=5.5)
    lo, hi = float(m.min()) / 1.5, float(m.max()) * 1.5
    xs = np.geomspace(lo, hi, 50)
    parity.plot(xs, xs, "k-", lw=1, label="estimate = measurement")
    rel.axhspan(-100 * band, 100 * band, color="tab:green", alpha=0.25, lw=0,
                label=f"±{band * 100:g}% band")
    rel.axhline(0, color="k", lw=1)
    for name, e, marker in series:
        parity.scatter(m, e, s=16, marker=marker, label=name)
        rel.scatter(m, 100 * (e - m) / m, s=16, marker=marker, label=name)
    e = series[-1][1]  # label what the user acts on: the last (calibrated) estimate
    err = np.abs(e - m) / m
    worst = [int(i) for i in np.argsort(-err) if err[i] > band][:10]
    for k, i in enumerate(worst):
        if i < len(labels):
            rel.annotate(labels[i], (m[i], 100 * (e[i] - m[i]) / m[i]), fontsize=7,
                         textcoords="offset points", xytext=(5, 8 if k % 2 else -12))
    for ax in (parity, rel):
        ax.set_xscale("log")
        ax.set_xlabel("measured cycles per layer (board)")
        ax.grid(alpha=0.3, which="both")
    parity.set_yscale("log")
    parity.set_ylabel("estimated cycles per layer (emulator + cost model)")
    rel.set_ylabel("estimate error (%)")
    parity.legend(loc="upper left", fontsize=8)
    rel.legend(loc="best", fontsize=8)
    fig.suptitle(textwrap.fill(title or "estimated vs measured", 110), fontsize=10)
    return save(fig, path)


def layer_latency_bars(ops: Sequence[str], measured_ms: Sequence[float], path: Path, *,
                       estimated_ms: Sequence[float] | None = None, title: str = "") -> Path:
    """Per-layer latency bars, measured (and estimated beside it)."""
    n = len(ops)
    x = np.arange(n)
    fig, (ax,) = figure(1, width=max(6, 0.5 * n + 2), height=4)
    width = 0.4 if estimated_ms is not None else 0.8
    ax.bar(x - (width / 2 if estimated_ms is not None else 0), measured_ms, width, label="measured")
    if estimated_ms is not None:
        ax.bar(x + width / 2, estimated_ms, width, label="estimated")
    ax.set_xticks(x, [f"{i} {op}" for i, op in enumerate(ops)], rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("layer")
    ax.set_ylabel("latency per layer (ms)")
    values = [v for v in (*measured_ms, *(estimated_ms or ())) if v > 0]
    if len(values) > 1 and max(values) / min(values) > 50:
        ax.set_yscale("log")  # small layers stay visible
    _title(ax, title or "latency per layer")
    ax.legend()
    return save(fig, path)


def energy_vs_latency(latency_ms: Sequence[float], energy_uj: Sequence[float], path: Path, *,
                      labels: Sequence[str] = (), power_mw: float | None = None,
                      title: str = "") -> Path:
    """Energy per inference against latency, with the fitted constant-power line."""
    fig, (ax,) = figure(1, width=6, height=4.5)
    ax.scatter(latency_ms, energy_uj, s=24)
    for x, y, text in zip(latency_ms, energy_uj, labels):
        ax.annotate(text, (x, y), fontsize=7)
    if power_mw is not None and len(latency_ms):
        xs = np.linspace(0, max(latency_ms) * 1.1, 20)
        ax.plot(xs, xs * power_mw, "k--", lw=1, label=f"{power_mw:.1f} mW")
        ax.legend()
    ax.set_xlabel("latency per inference (ms)")
    ax.set_ylabel("energy per inference (µJ)")
    _title(ax, title or "energy vs latency")
    return save(fig, path)


def mechanism_shifts(mechanisms: Sequence[Any], path: Path, *, title: str = "") -> Path:
    """How far calibration moved each mechanism from the datasheet (share of the models'
    cycles, two standard errors as whiskers), largest first: where the datasheet model
    was off.  Mechanisms the data do not determine are drawn hatched."""
    n = len(mechanisms)
    fig, (ax,) = figure(1, width=7, height=max(2.5, 0.45 * n + 1.2))
    y = np.arange(n)[::-1]
    moved = [100 * m.moved for m in mechanisms]
    bars = ax.barh(y, moved, xerr=[200 * m.stderr for m in mechanisms], capsize=3,
                   color=["tab:red" if v > 0 else "tab:blue" for v in moved])
    for bar, m in zip(bars, mechanisms):
        if not m.determined:
            bar.set_hatch("//")
            bar.set_alpha(0.5)
    ax.set_yticks(y, [m.mechanism for m in mechanisms], fontsize=8)
    ax.axvline(0, color="k", lw=1)
    ax.set_xlabel("cycles moved by calibration (% of the models' measured cycles)")
    _title(ax, title or "mechanisms ranked by how far calibration moved them")
    return save(fig, path)


def run_title(model: str, board: str, impl: str, cost_model: str) -> str:
    """What a plot of one firmware run says it shows, as every estimate plot does
    (:func:`estimate_title`): model, board, *impl* (``"optimized
    kernels"`` or ``"tflm runtime"``) and the cost model that priced the cycles."""
    return f"{model} on {board} ({impl}, cost model {cost_model})"


def marker_timeline(marks: Sequence[MarkEvent], clock_hz: float, path: Path, *, model: str,
                    board: str, impl: str, cost_model: str, ops: Sequence[str] = ()) -> Path:
    """The hardware image's two power-monitor marker lines over time, as a logic analyser
    (or the power monitor's digital inputs) would show them: ``inference`` high around
    each inference, ``layer`` toggling between layers; layer spans labelled with *ops*.
    The edges sit at the emulator's estimated cycles, hence the cost model in the title."""
    fig, (ax,) = figure(1, width=9, height=3)
    lines = {"inference": 1.5, "layer": 0.0}
    end = max((e.cycle for e in marks), default=0) / clock_hz * 1e3
    for name, base in lines.items():
        events = [e for e in marks if e.mark == name]
        t = [0.0, *(e.cycle / clock_hz * 1e3 for e in events), end * 1.02 or 1.0]
        level = [0, *(e.level for e in events)]
        ax.step(t, [base + v for v in [*level, level[-1]]], where="post", lw=1.2, label=name)
    # label the layer spans of the first inference: between its layer-line changes
    rise = next((e.cycle for e in marks if e.mark == "inference" and e.level), None)
    fall = next((e.cycle for e in marks if e.mark == "inference" and not e.level), None)
    if rise is not None and fall is not None and ops:
        edges = [rise, *(e.cycle for e in marks if e.mark == "layer" and rise < e.cycle < fall),
                 fall]
        for i, (a, b) in enumerate(itertools.pairwise(edges)):
            if i < len(ops) and (b - a) >= 0.02 * (fall - rise):  # room for a label
                ax.annotate(f"{i} {ops[i]}", ((a + b) / 2 / clock_hz * 1e3, 2.65), fontsize=6,
                            rotation=50, ha="left", va="bottom")
    ax.set_yticks(list(lines.values()), [f"{k} (input {i})" for i, k in enumerate(lines)])
    ax.set_ylim(-0.3, 4.6)
    ax.set_ylabel("marker line (logic level, low / high)")
    ax.set_xlabel(f"time since reset (ms at {clock_hz / 1e6:g} MHz)")
    _title(ax, f"power-monitor marker lines: {run_title(model, board, impl, cost_model)}")
    return save(fig, path)


def _title(ax: Any, text: str) -> None:
    """A title that fits its figure: wrapped at 70 characters, smaller type."""
    ax.set_title(textwrap.fill(text, 70), fontsize=9)


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
    fig, axes = figure(2 if energy else 1, width=min(max(6.0, 0.32 * len(est.layers) + 3), 24.0),
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
    return save(fig, path)


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
    fig, axes = figure(3, width=4.2)
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
    return save(fig, path)


def plot_model_summary(summary: ModelSummary, path: Path | str, title: str = "") -> Path:
    """MACs and weight bytes per op of an inspected model (model selection)."""
    fig, axes = figure(2, width=max(4.5, 0.35 * len(summary.ops) + 2))
    labels = [f"{o.index}:{o.opcode}" for o in summary.ops]
    for ax, (ys, label) in zip(axes, [([o.macs for o in summary.ops], "MACs"),
                                      ([o.weight_bytes for o in summary.ops], "weight bytes")]):
        ax.bar(range(len(labels)), ys, color="tab:purple")
        ax.set_xticks(range(len(labels)), labels, rotation=70, ha="right", fontsize=6)
        ax.set_ylabel(label)
        ax.set_title(f"{title} {label}".strip(), fontsize=10)
    return save(fig, path)


def plot_accuracy(accuracies: Mapping[str, float], path: Path | str, title: str = "") -> Path:
    """Bar chart of accuracies (float vs int8, or several models)."""
    fig, (ax,) = figure(1, width=5.0)
    names = list(accuracies)
    ax.bar(range(len(names)), [100 * accuracies[n] for n in names], color="tab:green")
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    for i, n in enumerate(names):
        ax.text(i, 100 * accuracies[n] + 1, f"{100 * accuracies[n]:.1f}", ha="center", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return save(fig, path)
