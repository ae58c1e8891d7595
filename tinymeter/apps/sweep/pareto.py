"""Sweep results: rows, the Pareto front and the MACs-vs-latency inversions that show the
channel-parity effect, CSV and the terminal table. Pure."""

from __future__ import annotations

import csv
import io
import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

import numpy as np

from tinymeter.apps.sweep.space import COST_METRICS, channel_parity
from tinymeter.core.errors import ConfigError
from tinymeter.core.texttable import text_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepRow:
    """One (candidate, target) result, flat, for tables, CSV and plots."""

    key: str
    name: str
    width: int
    depth: int
    kernel: int
    board: str
    kernels: str
    accuracy: float
    float_accuracy: float
    macs: int
    params: int
    ms: float
    cycles: int
    energy_uj: float
    arena_bytes: int
    flash_bytes: int
    #: Cost model that priced ``cycles`` ("" in a database from before it was recorded).
    cost_model: str = ""

    @property
    def parity(self) -> str:
        return channel_parity(self.width)

    @property
    def cycles_per_mac(self) -> float:
        """Cycles per multiply-accumulate (a MAC-free model counts as one MAC)."""
        return self.cycles / max(self.macs, 1)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points, sorted by cost; point = (cost, accuracy).

    A point is dominated when another has cost <= and accuracy >= with at least one
    strict. Duplicates of a front point are all kept (none dominates the other).
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best_acc = -np.inf
    last: tuple[float, float] | None = None
    for i in order:
        cost, acc = points[i]
        if acc > best_acc:
            front.append(i)
            best_acc = acc
            last = (cost, acc)
        elif last is not None and (cost, acc) == last:
            front.append(i)
    return front


def pareto_rows(rows: Sequence[SweepRow], metric: str = "ms") -> list[SweepRow]:
    """The Pareto-optimal rows (accuracy vs *metric*) of one target's results."""
    if metric not in COST_METRICS:
        raise ConfigError(f"unknown cost metric {metric!r}; choose from {list(COST_METRICS)}")
    idx = pareto_front([(float(getattr(r, metric)), r.accuracy) for r in rows])
    return [rows[i] for i in idx]


def non_monotonic_pairs(rows: Sequence[SweepRow]) -> list[tuple[SweepRow, SweepRow]]:
    """Pairs (a, b) of one target where a has fewer MACs but is *slower* than b.

    Each such pair is a place where ranking by MACs would mislead; with the optimized
    kernels most of them are odd-width candidates losing the SIMD fast path.
    """
    out = []
    for a, b in itertools.permutations(rows, 2):
        if (a.board, a.kernels) == (b.board, b.kernels) and a.macs < b.macs and a.ms > b.ms:
            out.append((a, b))
    return sorted(out, key=lambda p: (p[0].board, p[0].kernels, p[0].macs, p[1].macs))


def parity_inversions(rows: Sequence[SweepRow]) -> list[tuple[SweepRow, SweepRow]]:
    """Width steps (a -> b, same target, depth and kernel) where each MAC got *dearer*.

    Per-layer overheads amortise as width grows, so cycles per MAC should fall
    monotonically with width; a step where it rises instead (typically even -> odd
    with the optimized kernels) is a fast path being lost.
    """
    out: list[tuple[SweepRow, SweepRow]] = []
    for _, target_rows in sorted(group_by_target(rows).items()):
        for _, series in sorted(width_series(target_rows).items()):
            out.extend((a, b) for a, b in itertools.pairwise(series)
                       if b.cycles_per_mac > a.cycles_per_mac)
    return out


def group_by_target(rows: Iterable[SweepRow]) -> dict[tuple[str, str], list[SweepRow]]:
    """Rows per (board, kernel set), in first-seen order."""
    out: dict[tuple[str, str], list[SweepRow]] = {}
    for r in rows:
        out.setdefault((r.board, r.kernels), []).append(r)
    return out


def width_series(rows: Iterable[SweepRow]) -> dict[tuple[int, int], list[SweepRow]]:
    """Rows of one target per (depth, kernel), each sorted by width.

    The unit in which width effects are read: the parity inversions and the
    cost-per-MAC plot both walk these series.
    """
    out: dict[tuple[int, int], list[SweepRow]] = {}
    for r in rows:
        out.setdefault((r.depth, r.kernel), []).append(r)
    return {k: sorted(v, key=lambda r: r.width) for k, v in out.items()}


def rows_csv(rows: Sequence[SweepRow]) -> str:
    buf = io.StringIO()
    names = [f.name for f in fields(SweepRow)]
    w = csv.writer(buf)
    w.writerow([*names, "parity"])
    for r in rows:
        w.writerow([*(getattr(r, n) for n in names), r.parity])
    return buf.getvalue()


def format_rows(rows: Sequence[SweepRow], front: Sequence[SweepRow] = ()) -> str:
    """Terminal table of results; Pareto-optimal rows are starred."""
    on_front = {(r.key, r.board, r.kernels) for r in front}
    headers = ["", "candidate", "target", "acc %", "MACs", "ms", "uJ", "arena B", "flash B"]
    body = [["*" if (r.key, r.board, r.kernels) in on_front else "", r.name, f"{r.board}/{r.kernels}",
             f"{100 * r.accuracy:.1f}", f"{r.macs:,}", f"{r.ms:.3f}", f"{r.energy_uj:.1f}",
             f"{r.arena_bytes:,}", f"{r.flash_bytes:,}"] for r in rows]
    return "\n".join(text_table(headers, body, left=(0, 1, 2)))
