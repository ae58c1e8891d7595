"""The results database: every hardware measurement, in one SQLite file.

Why SQLite: embedded (no server), one file to copy between machines, transactional
(a crash mid-campaign leaves whole measurements only) and queryable.  Each
measurement is keyed by board and firmware image hash, with model, kernels and tool
versions, so a calibration campaign is *resumable*: :meth:`ResultsDB.latest` finds a
model already measured on this board with this exact image and the campaign skips it.

The schema is versioned (``meta.schema_version``); opening a newer database with an
older tinymeter is an error rather than a silent misread.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tinymeter.core.errors import ConfigError
from tinymeter.firmware.build import default_cache_dir
from tinymeter.hw.protocol import Measurement

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    board TEXT NOT NULL,
    image_sha256 TEXT NOT NULL,
    model TEXT NOT NULL,
    model_sha256 TEXT NOT NULL DEFAULT '',
    kernels TEXT NOT NULL DEFAULT '',
    opt TEXT NOT NULL DEFAULT '',
    runs INTEGER NOT NULL,
    warmup INTEGER NOT NULL,
    tools TEXT NOT NULL DEFAULT '{}',
    total_cycles REAL NOT NULL,
    energy_uj REAL,
    latency_s REAL,
    parse_stats TEXT NOT NULL DEFAULT '{}',
    transcript BLOB
);
CREATE INDEX IF NOT EXISTS measurements_key ON measurements (board, image_sha256);
CREATE TABLE IF NOT EXISTS layers (
    measurement_id INTEGER NOT NULL REFERENCES measurements(id) ON DELETE CASCADE,
    layer INTEGER NOT NULL,
    op TEXT NOT NULL,
    median_cycles REAL NOT NULL,
    min_cycles INTEGER NOT NULL,
    max_cycles INTEGER NOT NULL,
    stdev_cycles REAL NOT NULL,
    energy_uj REAL,
    PRIMARY KEY (measurement_id, layer)
);
CREATE TABLE IF NOT EXISTS runs (
    measurement_id INTEGER NOT NULL REFERENCES measurements(id) ON DELETE CASCADE,
    boot INTEGER NOT NULL,
    run INTEGER NOT NULL,
    layer INTEGER NOT NULL,
    cycles INTEGER NOT NULL,
    PRIMARY KEY (measurement_id, boot, run, layer)
);
"""


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class StoredMeasurement:
    """One row of ``measurements`` with its layers."""

    id: int
    created: str
    board: str
    image_sha256: str
    model: str
    kernels: str
    runs: int
    warmup: int
    tools: dict[str, str]
    total_cycles: float
    energy_uj: float | None
    latency_s: float | None
    ops: tuple[str, ...]
    cycles: tuple[float, ...]
    layer_energy_uj: tuple[float | None, ...]


class ResultsDB:
    """A results database file (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"results database {self.path}: {exc}") from None
        self._db.execute("PRAGMA foreign_keys = ON")
        try:
            self._migrate()
        except ConfigError:
            self._db.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ConfigError(f"results database {self.path}: {exc}") from None

    def _migrate(self) -> None:
        with self._db:
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                return
            try:
                version = int(row[0])
            except (TypeError, ValueError):
                raise ConfigError(f"results database {self.path} has schema_version {row[0]!r}, "
                                  "not an integer: not a tinymeter results database, or damaged") from None
            if version > SCHEMA_VERSION:
                raise ConfigError(f"results database {self.path} has schema {row[0]}, newer than "
                                  f"this tinymeter ({SCHEMA_VERSION}); upgrade tinymeter")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultsDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, *, board: str, image_sha256: str, measurement: Measurement, warmup: int,
            model_sha256: str = "", kernels: str = "", opt: str = "",
            tools: dict[str, str] | None = None, energy_uj: float | None = None,
            latency_s: float | None = None, layer_energy_uj: tuple[float, ...] | None = None,
            parse_stats: dict[str, object] | None = None, transcript: bytes | None = None) -> int:
        """Store one measurement (one transaction); returns its id."""
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with self._db:
            cur = self._db.execute(
                "INSERT INTO measurements (created, board, image_sha256, model, model_sha256, "
                "kernels, opt, runs, warmup, tools, total_cycles, energy_uj, latency_s, "
                "parse_stats, transcript) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (created, board, image_sha256, measurement.model, model_sha256, kernels, opt,
                 measurement.runs, warmup, json.dumps(tools or {}, sort_keys=True),
                 measurement.total_median, energy_uj, latency_s,
                 json.dumps(parse_stats or {}, sort_keys=True), transcript))
            mid = int(cur.lastrowid or 0)
            for layer in measurement.layers:
                e = layer_energy_uj[layer.index] if layer_energy_uj is not None else None
                self._db.execute("INSERT INTO layers VALUES (?,?,?,?,?,?,?,?)",
                                 (mid, layer.index, layer.op, layer.median, layer.minimum,
                                  layer.maximum, layer.stdev, e))
            self._db.executemany(
                "INSERT INTO runs VALUES (?,?,?,?,?)",
                [(mid, r.boot, r.run, lc.index, lc.cycles) for r in measurement.reports
                 for lc in r.layers])
        log.info("stored measurement %d of %s on %s in %s", mid, measurement.model, board, self.path)
        return mid

    def get(self, measurement_id: int) -> StoredMeasurement:
        row = self._db.execute(
            "SELECT id, created, board, image_sha256, model, kernels, runs, warmup, tools, "
            "total_cycles, energy_uj, latency_s FROM measurements WHERE id=?",
            (measurement_id,)).fetchone()
        if row is None:
            raise ConfigError(f"results database {self.path}: no measurement {measurement_id}")
        layers = self._db.execute("SELECT op, median_cycles, energy_uj FROM layers WHERE "
                                  "measurement_id=? ORDER BY layer", (measurement_id,)).fetchall()
        return StoredMeasurement(
            id=row[0], created=row[1], board=row[2], image_sha256=row[3], model=row[4],
            kernels=row[5], runs=row[6], warmup=row[7], tools=json.loads(row[8]),
            total_cycles=row[9], energy_uj=row[10], latency_s=row[11],
            ops=tuple(r[0] for r in layers), cycles=tuple(r[1] for r in layers),
            layer_energy_uj=tuple(r[2] for r in layers))

    def latest(self, board: str, image_sha256: str) -> StoredMeasurement | None:
        """Most recent measurement of this exact image on this board (resuming)."""
        row = self._db.execute("SELECT id FROM measurements WHERE board=? AND image_sha256=? "
                               "ORDER BY id DESC LIMIT 1", (board, image_sha256)).fetchone()
        return None if row is None else self.get(int(row[0]))

    def list(self, board: str | None = None) -> builtins.list[StoredMeasurement]:
        q = "SELECT id FROM measurements" + (" WHERE board=?" if board else "") + " ORDER BY id"
        return [self.get(int(r[0])) for r in self._db.execute(q, (board,) if board else ())]

    def run_cycles(self, measurement_id: int) -> builtins.list[tuple[int, int, int, int]]:
        """Raw (boot, run, layer, cycles) rows of a measurement."""
        return list(self._db.execute("SELECT boot, run, layer, cycles FROM runs WHERE "
                                     "measurement_id=? ORDER BY boot, run, layer",
                                     (measurement_id,)))


def default_db_path() -> Path:
    """``results.sqlite`` in tinymeter's cache directory (``TINYMETER_CACHE`` overrides)."""
    return default_cache_dir() / "results.sqlite"
