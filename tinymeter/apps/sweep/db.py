"""SQLite store of NAS sweep results, keyed by candidate hash, so sweeps resume.

Why a database rather than a JSON file: a sweep writes one result at a time from a
pool of workers and may be killed at any point. SQLite commits each result
atomically, so an interrupted sweep loses at most the candidates that were running,
and the next run asks the database which candidate hashes are finished.

Two tables, because training and emulation have different keys: a *candidate*
(architecture + training recipe, hashed) is trained and converted once and its int8
.tflite is kept here; an *estimate* is one (candidate, board, kernel set) emulation.
Adding a board to a finished sweep therefore only emulates, it never retrains.

The schema is versioned (``PRAGMA user_version``); opening a database written by a
newer schema is an error instead of silent misreading. The hardware package may later
own a general results database; this module is deliberately standalone until then.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinymeter.core.errors import ConfigError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS candidates (
    key        TEXT PRIMARY KEY,
    family     TEXT NOT NULL,
    params     TEXT NOT NULL,      -- JSON: architecture parameters
    recipe     TEXT NOT NULL,      -- JSON: training recipe (epochs, seed, ...)
    status     TEXT NOT NULL,      -- 'ok' or 'error'
    error      TEXT,
    metrics    TEXT,               -- JSON: accuracy, MACs, params, training time
    tflite     BLOB,               -- int8 model, so new boards never need retraining
    created    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS estimates (
    key        TEXT NOT NULL REFERENCES candidates(key),
    board      TEXT NOT NULL,
    kernels    TEXT NOT NULL,
    status     TEXT NOT NULL,
    error      TEXT,
    summary    TEXT,               -- JSON: ms, cycles, energy_uj, arena/flash/ram bytes
    created    REAL NOT NULL,
    PRIMARY KEY (key, board, kernels)
);
CREATE TABLE IF NOT EXISTS sweeps (
    name       TEXT NOT NULL,
    key        TEXT NOT NULL,
    PRIMARY KEY (name, key)
);
"""


@dataclass(frozen=True)
class CandidateRow:
    """A stored trained candidate."""

    key: str
    family: str
    params: dict[str, Any]
    recipe: dict[str, Any]
    status: str
    error: str | None
    metrics: dict[str, Any]
    tflite: bytes | None


@dataclass(frozen=True)
class EstimateRow:
    """A stored emulation of one candidate on one board with one kernel set."""

    key: str
    board: str
    kernels: str
    status: str
    error: str | None
    summary: dict[str, Any]


class SweepDB:
    """Thin wrapper over one SQLite file; one instance per process (not thread-shared)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=30.0)
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path} is not a sweep database ({exc})") from None
        if version > SCHEMA_VERSION:
            self._conn.close()
            raise ConfigError(f"{self.path} has sweep schema {version}, newer than this "
                              f"tinymeter's {SCHEMA_VERSION}; upgrade tinymeter")
        with self._conn:
            self._conn.executescript(_SCHEMA)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SweepDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._conn:
            yield self._conn

    # ------------------------------------------------------------------ candidates

    def put_candidate(self, key: str, family: str, params: dict[str, Any], recipe: dict[str, Any], *,
                      status: str, error: str | None = None, metrics: dict[str, Any] | None = None,
                      tflite: bytes | None = None) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO candidates VALUES (?,?,?,?,?,?,?,?,?)",
                      (key, family, json.dumps(params, sort_keys=True), json.dumps(recipe, sort_keys=True),
                       status, error, json.dumps(metrics or {}, sort_keys=True), tflite, time.time()))

    def get_candidate(self, key: str) -> CandidateRow | None:
        row = self._conn.execute(
            "SELECT key, family, params, recipe, status, error, metrics, tflite FROM candidates "
            "WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return CandidateRow(row[0], row[1], json.loads(row[2]), json.loads(row[3]), row[4], row[5],
                            json.loads(row[6] or "{}"), row[7])

    # ------------------------------------------------------------------- estimates

    def put_estimate(self, key: str, board: str, kernels: str, *, status: str,
                     error: str | None = None, summary: dict[str, Any] | None = None) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO estimates VALUES (?,?,?,?,?,?,?)",
                      (key, board, kernels, status, error, json.dumps(summary or {}, sort_keys=True),
                       time.time()))

    def get_estimate(self, key: str, board: str, kernels: str) -> EstimateRow | None:
        row = self._conn.execute(
            "SELECT key, board, kernels, status, error, summary FROM estimates "
            "WHERE key = ? AND board = ? AND kernels = ?", (key, board, kernels)).fetchone()
        if row is None:
            return None
        return EstimateRow(row[0], row[1], row[2], row[3], row[4], json.loads(row[5] or "{}"))

    # ---------------------------------------------------------------------- sweeps

    def add_to_sweep(self, name: str, keys: list[str]) -> None:
        """Remember which candidates belong to a named sweep (for listing/plots)."""
        with self._tx() as c:
            c.executemany("INSERT OR IGNORE INTO sweeps VALUES (?, ?)", [(name, k) for k in keys])

    def sweep_keys(self, name: str) -> list[str]:
        return [r[0] for r in self._conn.execute(
            "SELECT key FROM sweeps WHERE name = ? ORDER BY key", (name,))]

    def counts(self) -> dict[str, int]:
        """Row counts per table (diagnostics and tests)."""
        return {t: self._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("candidates", "estimates", "sweeps")}
