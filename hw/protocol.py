"""The firmware's serial report protocol (``TM1``): parsing re-exported from the ABI,
and aggregation of reports into a measurement.

The report grammar, its encoder and the one strict byte-fed parser live in
:mod:`tinymeter.abi` (the firmware ABI); this module adds what a measurement does with
the reports: drop warm-up runs, keep one report per (boot, run), take per-layer
medians (:func:`summarize`).  Pure logic, no I/O.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tinymeter.abi import (
    PROTOCOL,
    Fault,
    LayerCycles,
    ParseStats,
    Report,
    ReportParser,
    parse_transcript,
    report_check,
)
from tinymeter.core.errors import HardwareError

__all__ = ["PROTOCOL", "Fault", "LayerCycles", "LayerMeasurement", "Measurement", "ParseStats",
           "Report", "ReportParser", "keep_runs", "parse_transcript", "report_check",
           "summarize"]

log = logging.getLogger(__name__)


# -- aggregation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerMeasurement:
    """Per-layer statistics over the kept runs (cycles)."""

    index: int
    op: str
    median: float
    minimum: int
    maximum: int
    stdev: float


@dataclass(frozen=True)
class Measurement:
    """Median over repeated runs, warm-up runs excluded."""

    model: str
    runs: int
    layers: tuple[LayerMeasurement, ...]
    total_median: float
    reports: tuple[Report, ...] = field(repr=False, default=())

    @property
    def cycles(self) -> tuple[float, ...]:
        return tuple(layer.median for layer in self.layers)


def keep_runs(reports: Iterable[Report], warmup: int) -> list[Report]:
    """Reports that count: warm-up runs (run index < *warmup*) of every boot dropped, and
    at most one report per (boot, run)."""
    seen: set[tuple[int, int]] = set()
    kept = []
    for r in reports:
        key = (r.boot, r.run)
        if r.run < warmup or key in seen:
            continue
        seen.add(key)
        kept.append(r)
    return kept


def summarize(reports: Sequence[Report], warmup: int = 0) -> Measurement:
    """Per-layer medians over the kept runs; all runs must describe the same layers."""
    kept = keep_runs(reports, warmup)
    if not kept:
        raise HardwareError(f"no complete report left after dropping {warmup} warm-up run(s)")
    # Names are not covered by the checksum: a corrupted op name yields a report that
    # disagrees with the others; the majority layout wins, a split vote is an error.
    layouts = Counter((r.model, r.ops) for r in kept)
    (layout, votes), *others = layouts.most_common()
    if others and votes <= len(kept) // 2:
        raise HardwareError(f"reports disagree on the model: {dict(layouts)} (two different "
                            "firmwares on the port?)")
    if others:
        log.warning("dropping %d report(s) with a corrupted layout", len(kept) - votes)
    kept = [r for r in kept if (r.model, r.ops) == layout]
    first = kept[0]
    layers = []
    for i, op in enumerate(first.ops):
        values = [r.cycles[i] for r in kept]
        layers.append(LayerMeasurement(
            index=i, op=op, median=float(statistics.median(values)), minimum=min(values),
            maximum=max(values), stdev=statistics.pstdev(values) if len(values) > 1 else 0.0))
    total = float(statistics.median(r.total for r in kept))
    return Measurement(first.model, len(kept), tuple(layers), total, tuple(kept))
