"""The firmware's serial report protocol (``TM1``): a byte-fed parser and aggregation.

The firmware prints, after every inference (``firmware/runtime/src/tm_main.c``)::

    TM1 BEGIN <model> run=<k> layers=<n>
    TM1 L <index> <op> <cycles>          (n lines, index 0..n-1)
    TM1 END total=<sum of cycles mod 2^32> check=<(total + run + layers) mod 2^32>

and ``TM1 FAULT <what>`` from its fault handlers.  A UART has no framing or checksum,
so a report is accepted only when every line parses, the layer indices run 0..n-1
without gaps, there are exactly ``layers`` of them, ``total`` equals their sum (a
changed cycle digit changes it) and ``check`` covers the run index and layer count
of the ``BEGIN`` line too (a corrupted ``run=0`` -> ``run=8`` would otherwise keep a
warm-up report and count a phantom boot).  Anything else discards the report, never
a single line, so a measurement can lose a run but never mix two.  Lines longer than
``max_line`` bytes (512; the firmware's are far shorter: model names are at most
64 characters) are dropped whatever the chunking of the bytes.

A ``BEGIN`` inside a report means the board reset mid-report: the partial report is
dropped.  A run index that does not increase (over accepted reports) means a new boot; reports carry a boot
number so repeats from two boots are neither merged by run index nor counted twice.

Pure logic, no I/O: feed bytes in any chunking, get complete reports back.
"""

from __future__ import annotations

import logging
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tinymeter.core.errors import HardwareError

log = logging.getLogger(__name__)

PROTOCOL = "TM1"
_MARK = b"TM1 "
_U32 = 1 << 32

_BEGIN = re.compile(r"TM1 BEGIN (?P<model>[A-Za-z0-9_.\-]+) run=(?P<run>\d{1,10}) "
                    r"layers=(?P<layers>\d{1,6})")
_LAYER = re.compile(r"TM1 L (?P<index>\d{1,6}) (?P<op>[A-Za-z0-9_:]+) (?P<cycles>\d{1,10})")
_END = re.compile(r"TM1 END total=(?P<total>\d{1,10}) check=(?P<check>\d{1,10})")
_FAULT = re.compile(r"TM1 FAULT (?P<what>[ -~]{1,200})")


def report_check(total: int, run: int, layers: int) -> int:
    """The ``check`` field of an END line: what ``tm_report`` computes in uint32_t."""
    return (total + run + layers) % _U32


@dataclass(frozen=True)
class LayerCycles:
    """One layer's line of a report."""

    index: int
    op: str
    cycles: int


@dataclass(frozen=True)
class Report:
    """One validated per-inference report."""

    model: str
    run: int
    boot: int
    layers: tuple[LayerCycles, ...]
    total: int

    @property
    def cycles(self) -> tuple[int, ...]:
        return tuple(layer.cycles for layer in self.layers)

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(layer.op for layer in self.layers)


@dataclass(frozen=True)
class Fault:
    """A ``TM1 FAULT`` line: the firmware crashed."""

    boot: int
    what: str


@dataclass
class ParseStats:
    """What the parser saw besides good reports (for error messages and the database)."""

    lines: int = 0
    reports: int = 0
    garbled_lines: int = 0
    discarded_reports: int = 0
    resets_mid_report: int = 0
    boots: int = 0
    noise_lines: int = 0
    last_problem: str = ""


@dataclass
class _Partial:
    model: str
    run: int
    expected: int
    layers: list[LayerCycles] = field(default_factory=list)


class ReportParser:
    """Turns a byte stream into validated :class:`Report` s (and :class:`Fault` s).

    State lives on the instance only; one parser per serial session.
    """

    def __init__(self, max_line: int = 512, expect_model: str | None = None,
                 expect_ops: Sequence[str] | None = None) -> None:
        self.max_line = max_line
        #: When the firmware is known (the host built it), its model name and op names are
        #: checked too: they are not covered by the ``total`` checksum.
        self.expect_model = expect_model
        self.expect_ops = tuple(expect_ops) if expect_ops is not None else None
        self.stats = ParseStats()
        self._buffer = bytearray()
        self._overflow = False
        self._partial: _Partial | None = None
        self._boot = 0
        self._last_run: int | None = None

    # -- bytes -> lines ----------------------------------------------------------------
    def feed(self, data: bytes) -> list[Report | Fault]:
        """Consume *data* (any chunk of the stream); return the reports it completed."""
        events: list[Report | Fault] = []
        self._buffer += data
        while True:
            nl = self._buffer.find(b"\n")
            if nl < 0:
                if len(self._buffer) > self.max_line:
                    # A line this long is garbage (lost newlines, wrong baud rate): drop
                    # it up to the next newline rather than buffer without bound.
                    self._buffer.clear()
                    self._overflow = True
                break
            raw = bytes(self._buffer[:nl])
            del self._buffer[:nl + 1]
            if self._overflow or nl > self.max_line:
                # Same verdict whether the line came in one chunk or in many.
                self._overflow = False
                self._garbled("over-long line")
                continue
            event = self._line(raw)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> None:
        """End of stream: a report still open is incomplete and discarded."""
        if self._partial is not None:
            self._discard("stream ended mid-report")
        self._buffer.clear()

    @property
    def in_report(self) -> bool:
        return self._partial is not None

    # -- lines -> reports ----------------------------------------------------------------
    def _line(self, raw: bytes) -> Report | Fault | None:
        self.stats.lines += 1
        raw = raw.rstrip(b"\r")
        start = raw.rfind(_MARK)
        if start < 0:
            if self._partial is not None and raw.strip():
                # The firmware prints nothing else between BEGIN and END.
                self._garbled(f"unexpected line in report: {raw[:60]!r}")
            elif raw.strip():
                self.stats.noise_lines += 1
            return None
        if start > 0 and self._partial is not None:
            # Text before the marker inside a report: a lost newline merged two lines.
            self._garbled(f"merged line: {raw[:60]!r}")
            if not raw[start:].startswith(b"TM1 BEGIN "):
                return None
        try:
            line = raw[start:].decode("ascii")
        except UnicodeDecodeError:
            self._garbled(f"non-ASCII bytes: {raw[:60]!r}")
            return None
        if not line.isprintable():
            self._garbled(f"control characters: {raw[:60]!r}")
            return None
        if m := _LAYER.fullmatch(line):
            self._on_layer(int(m["index"]), m["op"], int(m["cycles"]))
            return None
        if m := _BEGIN.fullmatch(line):
            self._on_begin(m["model"], int(m["run"]), int(m["layers"]))
            return None
        if m := _END.fullmatch(line):
            return self._on_end(int(m["total"]), int(m["check"]))
        if m := _FAULT.fullmatch(line):
            if self._partial is not None:
                self._discard("fault mid-report")
            return Fault(self._boot, m["what"])
        self._garbled(f"unparsable line: {line[:60]!r}")
        return None

    def _on_begin(self, model: str, run: int, layers: int) -> None:
        if self._partial is not None:
            self.stats.resets_mid_report += 1
            self._discard(f"BEGIN run={run} inside the report of run={self._partial.run} "
                          "(reset mid-report)")
        if layers == 0:
            self.stats.last_problem = "report with zero layers"
            return
        self._partial = _Partial(model, run, layers)

    def _on_layer(self, index: int, op: str, cycles: int) -> None:
        p = self._partial
        if p is None:
            return None  # orphan line of a report whose BEGIN was lost: already discarded
        if index != len(p.layers) or index >= p.expected or cycles >= _U32:
            self._discard(f"layer line {index} out of sequence (expected {len(p.layers)} "
                          f"of {p.expected})")
            return None
        p.layers.append(LayerCycles(index, op, cycles))
        return None

    def _on_end(self, total: int, check: int) -> Report | None:
        p = self._partial
        if p is None:
            return None
        if len(p.layers) != p.expected:
            self._discard(f"END after {len(p.layers)} of {p.expected} layers")
            return None
        if sum(layer.cycles for layer in p.layers) % _U32 != total:
            self._discard(f"END total={total} does not match the layer sum (corrupted digits)")
            return None
        if report_check(total, p.run, p.expected) != check:
            self._discard(f"END check={check} does not match run={p.run} layers={p.expected} "
                          "(corrupted BEGIN or END line)")
            return None
        ops = tuple(layer.op for layer in p.layers)
        if (self.expect_model is not None and p.model != self.expect_model) or (
                self.expect_ops is not None and ops != self.expect_ops):
            self._discard(f"report of {p.model} {ops} is not the flashed firmware's "
                          f"({self.expect_model} {self.expect_ops})")
            return None
        self._partial = None
        self.stats.reports += 1
        # Boots are told apart by validated reports only: a corrupted run index in a
        # discarded report must not count a phantom boot.
        if self._last_run is None or p.run <= self._last_run:
            self._boot += 1
            self.stats.boots += 1
        self._last_run = p.run
        return Report(p.model, p.run, self._boot, tuple(p.layers), total)

    def _garbled(self, why: str) -> None:
        self.stats.garbled_lines += 1
        self.stats.last_problem = why
        log.debug("garbled: %s", why)
        if self._partial is not None:
            self._discard(why)

    def _discard(self, why: str) -> None:
        self.stats.discarded_reports += 1
        self.stats.last_problem = why
        log.debug("discarding partial report: %s", why)
        self._partial = None


def parse_transcript(data: bytes) -> tuple[list[Report | Fault], ParseStats]:
    """Parse a whole recorded transcript at once (tests, re-analysis of stored logs)."""
    parser = ReportParser()
    events = parser.feed(data)
    parser.close()
    return events, parser.stats


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
