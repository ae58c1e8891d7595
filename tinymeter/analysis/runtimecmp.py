"""``estimate --compare-runtimes``: one model, one board, every runtime, per layer.

Rows are the model's operators (every runtime here runs one layer per operator, in
execution order); columns are instructions and estimated cycles per runtime (tinymeter's
reference and optimized kernels, each TFLM library registered for the core) and the
speedup of each over the first.  The reference-vs-optimized study, done on the runtime
people ship.  Pure: formatting and JSON of finished estimates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tinymeter.analysis.report import Estimate
from tinymeter.core.errors import EmulationError
from tinymeter.core.texttable import text_table


@dataclass(frozen=True)
class RuntimeRun:
    """One runtime's estimate under a short column label."""

    label: str
    estimate: Estimate


def check_aligned(runs: Sequence[RuntimeRun]) -> None:
    """Every runtime must report the same operators in the same order."""
    first = runs[0]
    ops = [r.op for r in first.estimate.layers]
    for run in runs[1:]:
        other = [r.op for r in run.estimate.layers]
        if other != ops:
            raise EmulationError(f"{run.label} ran {len(other)} layers, {first.label} "
                                 f"{len(ops)}: layers do not align with the model's operators")


def _speedup(base: int, value: int) -> str:
    return f"{base / value:.2f}x" if value else "-"


def format_runtime_comparison(runs: Sequence[RuntimeRun]) -> str:
    """Per-layer table: instructions and cycles of every runtime, speedup over the first."""
    check_aligned(runs)
    base = runs[0]
    headers = ["#", "op", "MACs"]
    for i, run in enumerate(runs):
        headers += [f"{run.label} instr", f"{run.label} cycles"]
        if i:
            headers.append(f"{run.label} speedup")
    rows = []
    for k, layer in enumerate(base.estimate.layers):
        row = [str(layer.index), layer.op, f"{layer.macs:,}"]
        for i, run in enumerate(runs):
            r = run.estimate.layers[k]
            row += [f"{r.instructions:,}", f"{r.cycles:,}"]
            if i:
                row.append(_speedup(layer.cycles, r.cycles))
        rows.append(row)
    footer = ["", "total", f"{sum(r.macs for r in base.estimate.layers):,}"]
    for i, run in enumerate(runs):
        footer += [f"{run.estimate.instructions:,}", f"{run.estimate.cycles:,}"]
        if i:
            footer.append(_speedup(base.estimate.cycles, run.estimate.cycles))
    e = base.estimate
    title = (f"{e.model} on {e.board} ({e.core} @ {e.clock_hz / 1e6:g} MHz), cost model "
             f"{e.cost_model}: " + ", ".join(f"{r.label} = {r.estimate.kernels}" for r in runs))
    memory = [f"  {r.label}: {r.estimate.ms:.3f} ms, arena {r.estimate.arena_bytes:,} B, RAM "
              f"{r.estimate.ram_bytes:,} B, flash {r.estimate.flash_bytes:,} B" for r in runs]
    return "\n".join([title, *text_table(headers, rows, left=(1,), footer=footer), "",
                      *memory])


def comparison_dict(runs: Sequence[RuntimeRun]) -> dict[str, Any]:
    """JSON form: the full report of every runtime under its label."""
    check_aligned(runs)
    return {"model": runs[0].estimate.model, "board": runs[0].estimate.board,
            "runtimes": [{"label": r.label, **r.estimate.to_dict()} for r in runs]}
