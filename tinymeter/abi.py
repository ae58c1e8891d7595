"""The firmware ABI: everything the firmware and the host agree on, in one place.

Layer 1 (above ``errors``/``cores``/``boards``, below everything else): the emulator,
the virtual board, the serial parser, the pipeline and C code generation all read the
contract from here, so it is written once on the host side and checked once against
the C side.

* **Hook symbols**: the plain C functions of the harness (``firmware/runtime``) the
  emulator intercepts or the native hook switches layers on (:data:`IO_NEXT` ...
  :data:`HALT`, :data:`ARENA_HOOK`) and the data symbols the virtual board reads
  (:data:`MODEL_NAME`, :data:`NUM_LAYERS`, :data:`LAYER_TABLE`, :data:`RUNS_LEFT`).
* **The TM1 report** (serial/semihosting console)::

      TM1 BEGIN <model> run=<k> layers=<n>
      TM1 L <index> <op> <cycles>          (n lines, index 0..n-1)
      TM1 END total=<sum of cycles mod 2^32> check=<(total + run + layers) mod 2^32>
      TM1 FAULT <what>                     (fault handlers, TFLM harness failures)
      TM1 ARENA size=<bytes> used=<bytes>|failed   (TFLM harness, after AllocateTensors)
      TM1 LOG <text>                       (TFLM's DebugLog)

  :func:`report_lines` & co. encode it (the virtual board prints with them), one strict
  :class:`ReportParser` decodes it from bytes in any chunking (the serial port, the
  emulator's console, stored transcripts).  The C encoders (``tm_main.c``,
  ``tm_tflm_main.cc``, ``startup_cortexm.c``) print the pieces of the generated header
  ``firmware/runtime/include/tm_abi.h`` (:func:`c_header`; a test keeps it equal).
* **Exit codes** of ``tm_platform_exit`` (:data:`EXIT_CODES`).
* **The counting hook's fixed-point cycles** (:data:`CYCLE_FRAC_BITS`): every cycle
  value the native hook hands back is ``cycles * CYCLE_SCALE``; above the simulator
  ``RunResult`` converts (``cycles``, ``row_cycles()``, ``cycles_per_layer()``).

Pure, no I/O.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# -- hook and data symbols -------------------------------------------------------------------

#: ``uint32_t tm_io_next(void)``: the emulator sets r0 (1 = run another inference).
IO_NEXT = "tm_io_next"
#: ``void tm_io_input_hook(uint32_t index, uint8_t *buf, uint32_t bytes)``.
IO_INPUT = "tm_io_input_hook"
#: ``void tm_io_output_hook(uint32_t index, const uint8_t *buf, uint32_t bytes)``.
IO_OUTPUT = "tm_io_output_hook"
#: ``void tm_prof_begin(uint32_t layer, const char *op_name)``: layer *r0* starts.
PROF_BEGIN = "tm_prof_begin"
#: ``void tm_prof_end(uint32_t layer)``: layer *r0* ends.
PROF_END = "tm_prof_end"
#: The hardware image's final idle loop (r0 = exit code): the end of a UART-I/O run.
HALT = "tm_halt"
#: The C library's process exit (newlib ``_exit(int status)``): foreign firmware's end.
LIBC_EXIT = "_exit"
#: ``void tm_tflm_arena_hook(uint32_t size, uint32_t used)``: the TFLM harness's sizing
#: run stops at its entry.
ARENA_HOOK = "tm_tflm_arena_hook"
#: Every hook function the tinymeter harness defines (``tm_runtime.h`` declares them).
HOOK_FUNCTIONS = (IO_NEXT, IO_INPUT, IO_OUTPUT, PROF_BEGIN, PROF_END, HALT)

#: ``const char tm_model_name[]``: the name the report prints.
MODEL_NAME = "tm_model_name"
#: ``const uint32_t tm_num_layers``.
NUM_LAYERS = "tm_num_layers"
#: ``const tm_layer tm_layers[]`` of ``{kernel, params, op_name}`` (three 32-bit words).
LAYER_TABLE = "tm_layers"
LAYER_ENTRY_BYTES = 12
#: ``uint32_t tm_runs_left`` (.data, initialised to ``TM_RUNS``): inferences per boot.
RUNS_LEFT = "tm_runs_left"

# -- exit codes ------------------------------------------------------------------------------

EXIT_OK = 0
#: The TFLM harness failed (``tm_fail``: AllocateTensors, Invoke) or the host runtime
#: read a short input.
EXIT_FAILED = 3
EXIT_HARDFAULT = 70
EXIT_UNEXPECTED_EXCEPTION = 71
#: Exit code -> what it means (``tm_platform_exit`` arguments of the runtime).
EXIT_CODES = {EXIT_OK: "ok", EXIT_FAILED: "runtime failure", EXIT_HARDFAULT: "hard fault",
              EXIT_UNEXPECTED_EXCEPTION: "unexpected exception"}


def exit_meaning(code: int) -> str:
    """What a firmware exit code means (``"exit code N"`` for codes the runtime never uses)."""
    return EXIT_CODES.get(code, f"exit code {code}")


# -- fixed-point cycles of the counting hook ----------------------------------------------

#: Fractional bits of the native hook's fixed-point cycle values (``TM_CYCLE_FRAC_BITS``
#: in ``sim/native/counthook.c``; the hook refuses to load if they differ).
CYCLE_FRAC_BITS = 16
CYCLE_SCALE = 1 << CYCLE_FRAC_BITS


# -- the TM1 report: pieces, encoder -------------------------------------------------------

PROTOCOL = "TM1"
MARK = f"{PROTOCOL} "
BEGIN = f"{MARK}BEGIN "
RUN = " run="
LAYERS = " layers="
LAYER = f"{MARK}L "
END = f"{MARK}END total="
CHECK = " check="
FAULT = f"{MARK}FAULT "
ARENA = f"{MARK}ARENA size="
ARENA_USED = " used="
ARENA_FAILED = " failed"
LOG = f"{MARK}LOG "
#: Fault texts of the Cortex-M startup code (``startup_cortexm.c``).
FAULT_HARDFAULT = "hardfault"
FAULT_UNEXPECTED = "unexpected-exception"
#: Longest model name the firmware prints (``TM1 BEGIN <name>``); see :func:`report_name`.
MAX_REPORT_NAME = 64
_U32 = 1 << 32


def report_check(total: int, run: int, layers: int) -> int:
    """The ``check`` field of an END line: what ``tm_report`` computes in uint32_t."""
    return (total + run + layers) % _U32


def report_name(name: str) -> str:
    """*name* (a file stem) as the firmware reports it: characters outside
    ``[A-Za-z0-9_.-]`` become ``_``, at most :data:`MAX_REPORT_NAME` of them, so any
    model file name yields report lines the parser accepts."""
    cleaned = "".join(c if (c.isascii() and c.isalnum()) or c in "_.-" else "_" for c in name)
    return cleaned[:MAX_REPORT_NAME] or "model"


def begin_line(model: str, run: int, layers: int) -> str:
    return f"{BEGIN}{model}{RUN}{run}{LAYERS}{layers}\n"


def layer_line(index: int, op: str, cycles: int) -> str:
    return f"{LAYER}{index} {op} {cycles}\n"


def end_line(total: int, run: int, layers: int) -> str:
    return f"{END}{total}{CHECK}{report_check(total, run, layers)}\n"


def fault_line(what: str) -> str:
    return f"{FAULT}{what}\n"


def arena_line(size: int, used: int | None) -> str:
    return f"{ARENA}{size}" + (f"{ARENA_USED}{used}" if used is not None else ARENA_FAILED) + "\n"


def report_lines(model: str, run: int, cycles: Sequence[int], ops: Sequence[str]) -> list[bytes]:
    """The exact bytes ``tm_report`` prints for one run (one item per line)."""
    total = sum(cycles) % _U32
    lines = [begin_line(model, run, len(cycles))]
    lines += [layer_line(i, op, c) for i, (op, c) in enumerate(zip(ops, cycles))]
    lines.append(end_line(total, run, len(cycles)))
    return [x.encode("ascii") for x in lines]


# -- the C side ------------------------------------------------------------------------------

_C_STRINGS = (("TM_ABI_BEGIN", BEGIN), ("TM_ABI_RUN", RUN), ("TM_ABI_LAYERS", LAYERS),
              ("TM_ABI_LAYER", LAYER), ("TM_ABI_END", END), ("TM_ABI_CHECK", CHECK),
              ("TM_ABI_FAULT", FAULT), ("TM_ABI_ARENA", ARENA), ("TM_ABI_ARENA_USED", ARENA_USED),
              ("TM_ABI_ARENA_FAILED", ARENA_FAILED), ("TM_ABI_LOG", LOG),
              ("TM_ABI_FAULT_HARDFAULT", FAULT_HARDFAULT),
              ("TM_ABI_FAULT_UNEXPECTED", FAULT_UNEXPECTED))
_C_NUMBERS = (("TM_EXIT_OK", EXIT_OK), ("TM_EXIT_FAILED", EXIT_FAILED),
              ("TM_EXIT_HARDFAULT", EXIT_HARDFAULT),
              ("TM_EXIT_UNEXPECTED_EXCEPTION", EXIT_UNEXPECTED_EXCEPTION),
              ("TM_ABI_MAX_MODEL_NAME", MAX_REPORT_NAME))


def c_header() -> str:
    """``firmware/runtime/include/tm_abi.h``: the report pieces and exit codes for the C
    encoders (``python -m tinymeter.abi > firmware/runtime/include/tm_abi.h``
    regenerates it; ``tests/abi/test_abi.py`` fails while it differs)."""
    out = ["/* Generated by tinymeter.abi (python -m tinymeter.abi): do not edit. */",
           "/* The TM1 report pieces and exit codes the host parses (tinymeter/abi.py). */",
           "#ifndef TM_ABI_H", "#define TM_ABI_H", ""]
    out += [f'#define {name} "{value}"' for name, value in _C_STRINGS]
    out.append("")
    out += [f"#define {name} {value}" for name, value in _C_NUMBERS]
    out += ["", "#endif", ""]
    return "\n".join(out)


# -- the TM1 report: strict parser ----------------------------------------------------------

_BEGIN_RE = re.compile(r"TM1 BEGIN (?P<model>[A-Za-z0-9_.\-]+) run=(?P<run>\d{1,10}) "
                       r"layers=(?P<layers>\d{1,6})")
_LAYER_RE = re.compile(r"TM1 L (?P<index>\d{1,6}) (?P<op>[A-Za-z0-9_:]+) (?P<cycles>\d{1,10})")
_END_RE = re.compile(r"TM1 END total=(?P<total>\d{1,10}) check=(?P<check>\d{1,10})")
_FAULT_RE = re.compile(r"TM1 FAULT (?P<what>[ -~]{1,200})")
_ARENA_RE = re.compile(r"^TM1 ARENA size=(\d+) (?:used=(\d+)|failed)$", re.MULTILINE)
_LOG_RE = re.compile(r"^TM1 LOG (.*)$", re.MULTILINE)


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

    def encode(self) -> bytes:
        """The bytes the firmware printed for this report."""
        return b"".join(report_lines(self.model, self.run, self.cycles, self.ops))


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

    A UART has no framing or checksum, so a report is accepted only when every line
    parses, the layer indices run 0..n-1 without gaps, there are exactly ``layers`` of
    them, ``total`` equals their sum (a changed cycle digit changes it) and ``check``
    covers the run index and layer count of the ``BEGIN`` line too (a corrupted
    ``run=0`` -> ``run=8`` would otherwise keep a warm-up report and count a phantom
    boot).  Anything else discards the report, never a single line, so a measurement
    can lose a run but never mix two.  Lines longer than ``max_line`` bytes (512; the
    firmware's are far shorter: model names are at most 64 characters) are dropped
    whatever the chunking of the bytes.  A ``BEGIN`` inside a report means the board
    reset mid-report: the partial report is dropped.  A run index that does not
    increase (over accepted reports) means a new boot; reports carry a boot number so
    repeats from two boots are neither merged by run index nor counted twice.

    ``ARENA``/``LOG`` lines of the TFLM harness count as garbled lines here
    (:func:`parse_arena` reads them).  State lives on the instance only; one parser per
    stream.
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
        start = raw.rfind(MARK.encode())
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
            if not raw[start:].startswith(BEGIN.encode()):
                return None
        try:
            line = raw[start:].decode("ascii")
        except UnicodeDecodeError:
            self._garbled(f"non-ASCII bytes: {raw[:60]!r}")
            return None
        if not line.isprintable():
            self._garbled(f"control characters: {raw[:60]!r}")
            return None
        return self._event(line)

    def _event(self, line: str) -> Report | Fault | None:
        if m := _LAYER_RE.fullmatch(line):
            self._on_layer(int(m["index"]), m["op"], int(m["cycles"]))
            return None
        if m := _BEGIN_RE.fullmatch(line):
            self._on_begin(m["model"], int(m["run"]), int(m["layers"]))
            return None
        if m := _END_RE.fullmatch(line):
            return self._on_end(int(m["total"]), int(m["check"]))
        if m := _FAULT_RE.fullmatch(line):
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
    """Parse a whole recorded transcript at once (tests, stored logs, a console)."""
    parser = ReportParser()
    events = parser.feed(data)
    parser.close()
    return events, parser.stats


def reports(console: str | bytes) -> list[Report]:
    """The validated reports of a whole console output (the emulator's ``stdout``)."""
    data = console.encode("ascii", "replace") if isinstance(console, str) else console
    return [e for e in parse_transcript(data)[0] if isinstance(e, Report)]


@dataclass(frozen=True)
class ArenaReport:
    """The TFLM harness's ``TM1 ARENA`` line: the arena it had and what TFLM used of it
    (``None`` when AllocateTensors failed), plus TFLM's log lines."""

    size: int
    used: int | None
    log: tuple[str, ...] = ()


def parse_arena(stdout: str) -> ArenaReport | None:
    """The harness's arena line and TFLM log from the firmware's console output."""
    m = _ARENA_RE.search(stdout)
    lines = tuple(x.group(1) for x in _LOG_RE.finditer(stdout))
    if m is None:
        return None
    return ArenaReport(int(m.group(1)), int(m.group(2)) if m.group(2) else None, lines)


if __name__ == "__main__":
    print(c_header(), end="")
