"""Plots of measurements and calibration (matplotlib, Agg backend: no display needed).

Each function writes one PNG and returns its path; the figure is closed so long
campaigns do not accumulate memory.
"""

from __future__ import annotations

import itertools
import logging
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tinymeter.sim.peripherals import MarkEvent

log = logging.getLogger(__name__)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def estimated_vs_measured(measured: Sequence[float] | np.ndarray,
                          estimated: Sequence[float] | np.ndarray, path: Path, *,
                          calibrated: Sequence[float] | np.ndarray | None = None,
                          labels: Sequence[str] = (),
                          band: float = 0.05, title: str = "") -> Path:
    """Per-layer estimated vs measured cycles: left the parity plot on log axes, right
    the relative error against measured cycles, where the +-*band* strip is visible at
    every scale. Only the worst layers outside the band are labelled (dozens of labels
    pile up into an unreadable blot)."""
    plt = _pyplot()
    m = np.asarray(measured, dtype=float)
    series = [("datasheet model", np.asarray(estimated, dtype=float), "o")]
    if calibrated is not None:
        series.append(("calibrated", np.asarray(calibrated, dtype=float), "x"))
    fig, (parity, rel) = plt.subplots(1, 2, figsize=(12, 5.5))
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
    return _save(fig, plt, path)


def layer_latency_bars(ops: Sequence[str], measured_ms: Sequence[float], path: Path, *,
                       estimated_ms: Sequence[float] | None = None, title: str = "") -> Path:
    """Per-layer latency bars, measured (and estimated beside it)."""
    plt = _pyplot()
    n = len(ops)
    x = np.arange(n)
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * n + 2), 4))
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
    return _save(fig, plt, path)


def energy_vs_latency(latency_ms: Sequence[float], energy_uj: Sequence[float], path: Path, *,
                      labels: Sequence[str] = (), power_mw: float | None = None,
                      title: str = "") -> Path:
    """Energy per inference against latency, with the fitted constant-power line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
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
    return _save(fig, plt, path)


def mechanism_shifts(mechanisms: Sequence[Any], path: Path, *, title: str = "") -> Path:
    """How far calibration moved each mechanism from the datasheet (share of the models'
    cycles, two standard errors as whiskers), largest first: where the datasheet model
    was off.  Mechanisms the data do not determine are drawn hatched."""
    plt = _pyplot()
    n = len(mechanisms)
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.45 * n + 1.2)))
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
    return _save(fig, plt, path)


def run_title(model: str, board: str, impl: str, cost_model: str) -> str:
    """What a plot of one firmware run says it shows, as every estimate plot does
    (:func:`tinymeter.apps.sweep.plots.estimate_title`): model, board, *impl* (``"optimized
    kernels"`` or ``"tflm runtime"``) and the cost model that priced the cycles."""
    return f"{model} on {board} ({impl}, cost model {cost_model})"


def marker_timeline(marks: Sequence[MarkEvent], clock_hz: float, path: Path, *, model: str,
                    board: str, impl: str, cost_model: str, ops: Sequence[str] = ()) -> Path:
    """The hardware image's two power-monitor marker lines over time, as a logic analyser
    (or the power monitor's digital inputs) would show them: ``inference`` high around
    each inference, ``layer`` toggling between layers; layer spans labelled with *ops*.
    The edges sit at the emulator's estimated cycles, hence the cost model in the title."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3))
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
    return _save(fig, plt, path)


def _title(ax: Any, text: str) -> None:
    """A title that fits its figure: wrapped at 70 characters, smaller type."""
    ax.set_title(textwrap.fill(text, 70), fontsize=9)


def _save(fig: object, plt: object, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(path, dpi=120)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[attr-defined]
    log.info("wrote %s", path)
    return path
