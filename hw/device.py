"""A board behind the one run interface: flash, reset, read the TM1 reports.

:class:`HardwareDevice` is what every measuring caller (``measure``, the calibration
campaign, the microbenchmarks) talks to -- the :class:`tinymeter.device.Device`
protocol for a board.  Under it, a :class:`BoardLink` is the transport: ``flash``,
``reset``, a serial port opened *before* the reset (so no line is missed) and tool
versions.  :class:`ProbeLink` is a real board (probe tool + serial device); the virtual
board (:mod:`tinymeter.hw.virtual`) is another link.  :func:`measure_elf` is the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from tinymeter.abi import Report, ReportParser
from tinymeter.core.boards import Board
from tinymeter.core.errors import ConfigError, HardwareTimeout
from tinymeter.device import DeviceRun
from tinymeter.firmware.build import FirmwareImage
from tinymeter.hw.power.monitors import PowerMonitor
from tinymeter.hw.power.trace import EnergyResult, energy_from_trace
from tinymeter.hw.probe import ProbeConfig, ProbeRunner
from tinymeter.hw.protocol import Measurement, keep_runs, summarize
from tinymeter.hw.serialport import Port, collect_reports, open_port

log = logging.getLogger(__name__)


class ReportingImage(Protocol):
    """An image a board can run: its ELF and the report it must print (model name and
    op names, checked by the parser: they are not covered by the report's checksum)."""

    @property
    def elf(self) -> Path: ...

    @property
    def report_layout(self) -> tuple[str, tuple[str, ...]]: ...


class BoardLink(Protocol):
    """A board the measurement loop can drive."""

    board: Board

    def open_port(self) -> Port: ...

    def flash(self, elf: Path) -> None: ...

    def reset(self) -> None: ...

    def tool_version(self) -> str: ...


class ProbeLink:
    """A real board: a probe tool for flash/reset and a serial device for reports."""

    def __init__(self, board: Board, port: str, probe: ProbeConfig | None = None,
                 baudrate: int | None = None) -> None:
        self.board = board
        self.port = port
        self.baudrate = baudrate or board.uart.baudrate
        self.runner = ProbeRunner(board, probe)

    def open_port(self) -> Port:
        return open_port(self.port, self.baudrate)

    def flash(self, elf: Path) -> None:
        self.runner.flash(elf)

    def reset(self) -> None:
        self.runner.reset()

    def tool_version(self) -> str:
        return self.runner.tool_version()


@dataclass(frozen=True)
class MeasureConfig:
    """Repeats, warm-up, and the bound on every wait."""

    runs: int = 5
    warmup: int = 1
    timeout_s: float = 120.0
    idle_timeout_s: float = 30.0
    retries: int = 2

    def __post_init__(self) -> None:
        if self.runs < 1 or self.warmup < 0 or self.retries < 0:
            raise ConfigError("measure: runs >= 1, warmup >= 0 and retries >= 0 required")
        if self.timeout_s <= 0 or self.idle_timeout_s <= 0:
            raise ConfigError("measure: timeouts must be positive")

    @property
    def firmware_runs(self) -> int:
        """Inferences the firmware must run per boot (``BuildConfig.runs``)."""
        return self.runs + self.warmup


@dataclass
class MeasureResult:
    measurement: Measurement
    attempts: int
    parse_stats: dict[str, object]
    transcript: bytes
    energy: EnergyResult | None = None
    tools: dict[str, str] = field(default_factory=dict)


def measure_elf(link: BoardLink, elf: Path, config: MeasureConfig, *, expect_model: str | None = None,
                expect_ops: Sequence[str] | None = None, flash: bool = True,
                power: PowerMonitor | None = None) -> MeasureResult:
    """Flash *elf*, then reset and read until ``config.runs`` good runs (retrying with a
    fresh reset when a boot yields too few), optionally capturing a power trace."""
    port = link.open_port()
    try:
        if flash:
            link.flash(elf)
        parser = ReportParser(expect_model=expect_model, expect_ops=expect_ops)
        reports: list[Report] = []
        attempts = 0
        transcript = b""
        for attempts in range(1, config.retries + 2):
            port.discard_input()
            if power is not None and attempts == 1:
                power.start()  # one capture over every boot: windows are found per inference
            link.reset()
            need = config.runs - len(keep_runs(reports, config.warmup))
            got = collect_reports(port, runs=need, warmup=config.warmup, timeout_s=config.timeout_s,
                                  idle_timeout_s=config.idle_timeout_s, parser=parser,
                                  raise_on_timeout=False)
            reports.extend(got.reports)
            transcript += got.transcript
            if got.complete:
                break
            log.warning("attempt %d: %s; resetting again", attempts, parser.stats.last_problem or
                        "too few reports")
        kept = keep_runs(reports, config.warmup)
        if len(kept) < config.runs:
            s = parser.stats
            raise HardwareTimeout(
                f"only {len(kept)} of {config.runs} good runs after {attempts} reset(s) "
                f"({s.discarded_reports} discarded, {s.garbled_lines} garbled line(s)"
                + (f", last problem: {s.last_problem}" if s.last_problem else "")
                + ("; nothing received: wrong port or baud rate?" if not transcript else "") + ")")
        measurement = summarize(kept[:config.runs])
        energy = None
        if power is not None:
            trace = power.stop()
            energy = energy_from_trace(trace, len(measurement.layers), warmup=config.warmup,
                                       layer_cycles=measurement.cycles)
        return MeasureResult(measurement, attempts, asdict(parser.stats), transcript, energy,
                             {"probe": link.tool_version()})
    finally:
        port.close()


@dataclass
class HardwareRun(DeviceRun):
    """A board's run: the measured per-layer cycles and the whole measurement."""

    result: MeasureResult | None = None


class HardwareDevice:
    """A board behind the :class:`tinymeter.device.Device` protocol.

    Boards run their built-in default inputs and report timing only, so ``inputs`` must
    be default (``None`` or empty) and the outputs list is empty.  *config* bounds
    every wait and sets the repeats; :meth:`run` may override it per image (waits scaled
    to the model) and capture a power trace.
    """

    def __init__(self, link: BoardLink, config: MeasureConfig | None = None) -> None:
        self.link = link
        self.board = link.board
        self.config = config or MeasureConfig()

    def run(self, image: ReportingImage, inputs: Sequence[Sequence[np.ndarray]] | None = None,
            *, config: MeasureConfig | None = None, power: PowerMonitor | None = None,
            flash: bool = True) -> HardwareRun:
        if inputs is not None and any(len(x) for x in inputs):
            raise ConfigError("a hardware device runs the firmware's default inputs only")
        if isinstance(image, FirmwareImage) and image.config.io != "uart":
            # A semihosting image would stop at its first report line without a debugger.
            raise ConfigError("a board needs the hardware image: build it with "
                              "BuildConfig(io='uart') (tinymeter build --io uart)")
        model, ops = image.report_layout
        result = measure_elf(self.link, image.elf, config or self.config, expect_model=model,
                             expect_ops=ops, flash=flash, power=power)
        return HardwareRun(outputs=[], stdout=result.transcript.decode("ascii", "replace"),
                           measured_cycles=result.measurement.cycles, result=result)

    def tool_version(self) -> str:
        return self.link.tool_version()
