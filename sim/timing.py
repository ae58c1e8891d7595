"""Why a block of code took its cycles: the native hook's per-row statistics grouped
into layers or functions (pure numpy; no emulator state).

Every row of a run's block table carries the hook's sums (``native_hook.STAT_COLUMNS``).
Here they become, per group, cycles split by mechanism -- core (instruction timings),
branch (taken refills, not-taken costs), instruction-fetch stall, data-memory stall --
plus loads and stores per memory kind and cache hit rates, the "why" column of a report.
The four parts add up to the group's cycles exactly: core is what remains after the
other three, which the hook summed separately.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinymeter.sim.native_hook import ACCESS_BUCKETS, CYCLE_SCALE, STAT, STAT_COLUMNS

#: Mechanisms of :class:`TimingSplit` in report order.
MECHANISMS = ("core", "branch", "ifetch_stall", "data_stall")


@dataclass(frozen=True)
class TimingSplit:
    """Cycles by mechanism and memory traffic of one group of rows (a layer, a function)."""

    cycles: dict[str, float]
    loads: dict[str, int]
    stores: dict[str, int]
    load_bytes: dict[str, int]
    branches: dict[str, int]
    icache: tuple[int, int]  # hits, misses
    dcache: tuple[int, int]
    #: Extra bus transactions of unaligned loads/stores the core split, per memory kind
    #: (priced in the core cycles, ``CostParameters.unaligned`` each).
    unaligned: dict[str, int] = field(default_factory=dict)
    #: Unaligned accesses the core would fault on (not priced; see ``RunResult``).
    align_faults: int = 0

    @staticmethod
    def _rate(pair: tuple[int, int]) -> float | None:
        total = pair[0] + pair[1]
        return pair[0] / total if total else None

    @property
    def icache_hit_rate(self) -> float | None:
        return self._rate(self.icache)

    @property
    def dcache_hit_rate(self) -> float | None:
        return self._rate(self.dcache)

    @property
    def stall_share(self) -> float:
        total = sum(self.cycles.values())
        stall = self.cycles["ifetch_stall"] + self.cycles["data_stall"]
        return stall / total if total > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"cycles": {k: round(v, 3) for k, v in self.cycles.items()},
                "loads": self.loads, "stores": self.stores, "load_bytes": self.load_bytes,
                "branches": self.branches,
                "icache": {"hits": self.icache[0], "misses": self.icache[1],
                           "hit_rate": self.icache_hit_rate},
                "dcache": {"hits": self.dcache[0], "misses": self.dcache[1],
                           "hit_rate": self.dcache_hit_rate},
                "unaligned": self.unaligned, "align_faults": self.align_faults}


def mechanism_cycles(stats: np.ndarray, ifetch_weight: float, data_weight: float) -> np.ndarray:
    """Per row: cycles of ``MECHANISMS`` (core, branch, fetch stall, data stall); the row
    sum equals the row's cycles (stall weights as the run's cost model applied them)."""
    if stats.shape[1] != len(STAT_COLUMNS):
        raise ValueError(f"statistics have {stats.shape[1]} columns, expected {len(STAT_COLUMNS)}")
    total = stats[:, STAT["cycles"]] / CYCLE_SCALE
    branch = stats[:, STAT["branch"]] / CYCLE_SCALE
    ifetch = stats[:, STAT["ifetch_stall"]] / CYCLE_SCALE * ifetch_weight
    data = stats[:, STAT["data_stall"]] / CYCLE_SCALE * data_weight
    core = np.maximum(total - branch - ifetch - data, 0.0)
    return np.stack([core, branch, ifetch, data], axis=1)


def _columns(prefix: str) -> list[int]:
    return [STAT[f"{prefix}.{b}"] for b in ACCESS_BUCKETS]


def group_splits(stats: np.ndarray, groups: np.ndarray, n_groups: int, *,
                 ifetch_weight: float = 1.0, data_weight: float = 1.0) -> list[TimingSplit]:
    """One :class:`TimingSplit` per group index 0..n_groups-1 (rows with other indices,
    e.g. -1 = outside any layer, are left out)."""
    inside = (groups >= 0) & (groups < n_groups)
    mech = np.zeros((n_groups, len(MECHANISMS)))
    np.add.at(mech, groups[inside], mechanism_cycles(stats, ifetch_weight, data_weight)[inside])
    counts = np.zeros((n_groups, len(STAT_COLUMNS)), dtype=np.uint64)
    np.add.at(counts, groups[inside], stats[inside])
    loads, stores, nbytes = _columns("loads"), _columns("stores"), _columns("load_bytes")
    unaligned = _columns("unaligned")
    out = []
    for g in range(n_groups):
        row = counts[g].tolist()
        out.append(TimingSplit(
            cycles=dict(zip(MECHANISMS, mech[g].tolist())),
            loads={b: int(row[c]) for b, c in zip(ACCESS_BUCKETS, loads) if row[c]},
            stores={b: int(row[c]) for b, c in zip(ACCESS_BUCKETS, stores) if row[c]},
            load_bytes={b: int(row[c]) for b, c in zip(ACCESS_BUCKETS, nbytes) if row[c]},
            branches={"taken": int(row[STAT["taken"]]), "not_taken": int(row[STAT["not_taken"]])},
            icache=(int(row[STAT["icache_hit"]]), int(row[STAT["icache_miss"]])),
            dcache=(int(row[STAT["dcache_hit"]]), int(row[STAT["dcache_miss"]])),
            unaligned={b: int(row[c]) for b, c in zip(ACCESS_BUCKETS, unaligned) if row[c]},
            align_faults=int(row[STAT["align_faults"]])))
    return out


def sum_splits(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The :meth:`TimingSplit.to_dict` of the union of groups given as dicts (report
    totals are sums of the rows, so they agree with the table)."""
    if not parts or not all(parts):
        return {}
    out: dict[str, Any] = {"cycles": {}, "loads": {}, "stores": {}, "load_bytes": {},
                           "branches": {}, "unaligned": {}}
    for part in parts:
        for section in out:
            for key, value in part.get(section, {}).items():
                out[section][key] = out[section].get(key, 0) + value
    out["align_faults"] = sum(p.get("align_faults", 0) for p in parts)
    out["cycles"] = {k: round(v, 3) for k, v in out["cycles"].items()}
    for cache in ("icache", "dcache"):
        hits = sum(p[cache]["hits"] for p in parts)
        misses = sum(p[cache]["misses"] for p in parts)
        out[cache] = {"hits": hits, "misses": misses,
                      "hit_rate": hits / (hits + misses) if hits + misses else None}
    return out
