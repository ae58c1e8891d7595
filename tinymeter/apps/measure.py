"""Measuring firmware on a board: flash, reset, read reports, store; and calibration campaigns.

A :class:`BoardLink` is what the loop needs from a board: ``flash``, ``reset``, a
serial port opened *before* the reset (so no line is missed) and tool versions.
:class:`ProbeLink` is a real board (probe tool + serial device); the virtual board
(:mod:`tinymeter.hw.virtual`) has the same methods.  :class:`HardwareDevice` puts a
link behind the :class:`tinymeter.device.Device` protocol.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from tinymeter.abi import Report, ReportParser
from tinymeter.analysis.calibrate import ModelSample
from tinymeter.apps.estimate import build_model
from tinymeter.apps.resultsdb import ResultsDB, StoredMeasurement, file_sha256
from tinymeter.core.boards import Board
from tinymeter.core.errors import ConfigError, HardwareError, HardwareTimeout
from tinymeter.device import DeviceRun
from tinymeter.firmware.build import BuildConfig, FirmwareBuilder, FirmwareImage
from tinymeter.hw.power import EnergyResult, PowerMonitor, energy_from_trace
from tinymeter.hw.probe import ProbeConfig, ProbeRunner
from tinymeter.hw.protocol import Measurement, keep_runs, summarize
from tinymeter.hw.serialport import Port, collect_reports, open_port
from tinymeter.sim import DEFAULT_BUDGET_INSTRUCTIONS, DEFAULT_TIMEOUT_S
from tinymeter.sim.costmodel import (
    CostParameters,
    cost_model_for,
    layer_features,
    parameter_vector,
)
from tinymeter.sim.emulator import Emulator
from tinymeter.sim.energy import energy_features, run_layer_activity

log = logging.getLogger(__name__)


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


class HardwareDevice:
    """A board behind the :class:`tinymeter.device.Device` protocol.

    Real boards run their built-in default inputs and report timing only, so
    ``inputs`` must be default (empty) and the outputs list is empty.
    """

    def __init__(self, link: BoardLink, config: MeasureConfig | None = None) -> None:
        self.link = link
        self.board = link.board
        self.config = config or MeasureConfig()

    def run(self, image: FirmwareImage, inputs: Sequence[Sequence[np.ndarray]]) -> DeviceRun:
        if any(len(x) for x in inputs):
            raise ConfigError("a hardware device runs the firmware's default inputs only")
        if image.config.io != "uart":
            # A semihosting image would stop at its first report line without a debugger.
            raise ConfigError("a board needs the hardware image: build it with "
                              "BuildConfig(io='uart') (tinymeter build --io uart)")
        result = measure_elf(self.link, image.elf, self.config, expect_model=image.model.name,
                             expect_ops=[layer.op_name for layer in image.model.layers])
        return DeviceRun(outputs=[], stdout=result.transcript.decode("ascii", "replace"))


@dataclass(frozen=True)
class ModelRun:
    """A model built, emulated (features) and measured (cycles) on one board."""

    name: str
    image: FirmwareImage
    image_sha256: str
    features: np.ndarray
    stored: StoredMeasurement
    #: Per layer: emulated flash reads and SRAM accesses (``sim.energy``).
    activity: np.ndarray | None = None


def emulate_features(image: FirmwareImage, prior: CostParameters) -> np.ndarray:
    """Per-layer calibration features of one emulated inference of *image*."""
    return emulate_image(image, prior)[0]


def emulate_image(image: FirmwareImage, prior: CostParameters) -> tuple[np.ndarray, float]:
    """(per-layer calibration features, estimated cycles per inference under *prior*) of
    one emulated inference of *image*."""
    features, cycles, _activity = emulate_run(image, prior)
    return features, cycles


def emulate_run(image: FirmwareImage, prior: CostParameters
                ) -> tuple[np.ndarray, float, np.ndarray]:
    """:func:`emulate_image` plus the per-layer activity (flash reads, SRAM accesses)
    the energy calibration needs."""
    run = Emulator(image.board).run(image.elf, [[]],
                                    budget_instructions=DEFAULT_BUDGET_INSTRUCTIONS,
                                    timeout_s=DEFAULT_TIMEOUT_S)
    if run.profile is None:
        raise HardwareError("emulation produced no profile")
    n_layers = len(image.model.layers)
    features = layer_features(run, prior, n_layers)
    return (features, float((features @ parameter_vector(prior)).sum()),
            run_layer_activity(run, n_layers))


def scaled_timeouts(config: MeasureConfig, cycles_per_inference: float,
                    clock_hz: int) -> MeasureConfig:
    """*config* with its waits raised to what the model needs on the board: a report
    arrives only after an inference, which takes ``cycles / clock`` at the clock the
    hardware image runs at (16 MHz on some boards), so a big model on a slow clock must
    not look like a dead serial line.  Margins: 2x the inference (idle wait), 2x all
    inferences of a boot plus 10 s (boot wait).  Never lowers a configured wait."""
    seconds = cycles_per_inference / clock_hz
    boot = 2 * seconds * config.firmware_runs + 10.0
    idle = 2 * seconds + 5.0
    scaled = replace(config, timeout_s=max(config.timeout_s, boot),
                     idle_timeout_s=max(config.idle_timeout_s, idle))
    if scaled != config:
        log.info("waits raised to %.0f s per boot, %.0f s idle (%.2f s per inference at %g MHz)",
                 scaled.timeout_s, scaled.idle_timeout_s, seconds, clock_hz / 1e6)
    return scaled


def _hardware_build(build: BuildConfig | None, config: MeasureConfig) -> BuildConfig:
    """The hardware image (UART report, marker pins; also what the virtual board runs)
    with one inference per measured and warm-up run."""
    return replace(build or BuildConfig(), runs=config.firmware_runs, io="uart")


def measure_model(model_path: Path, link: BoardLink, db: ResultsDB, config: MeasureConfig, *,
                  build: BuildConfig | None = None, builder: FirmwareBuilder | None = None,
                  power: PowerMonitor | None = None, resume: bool = True) -> tuple[FirmwareImage,
                                                                                    StoredMeasurement]:
    """Build the hardware image of *model_path* for the link's board and measure it
    (:func:`measure_image`)."""
    image = build_model(model_path, link.board, _hardware_build(build, config), builder=builder)
    return image, measure_image(image, model_path, link, db, config, power=power, resume=resume)


def measure_image(image: FirmwareImage, model_path: Path, link: BoardLink, db: ResultsDB,
                  config: MeasureConfig, *, power: PowerMonitor | None = None,
                  resume: bool = True, expected_cycles: float | None = None) -> StoredMeasurement:
    """Measure *image* (or reuse a stored measurement of the identical image when
    *resume*), store and return it.  The waits are scaled to the model
    (:func:`scaled_timeouts`) from *expected_cycles* per inference, emulated with the
    board's cost model when not given."""
    board = link.board
    gen = image.model
    sha = file_sha256(image.elf)
    if resume:
        stored = db.latest(board.name, sha)
        if stored is not None and stored.runs >= config.runs and (power is None or
                                                                  stored.energy_uj is not None):
            log.info("%s: reusing measurement %d", gen.name, stored.id)
            return stored
    if expected_cycles is None:
        expected_cycles = emulate_image(image, cost_model_for(board).params)[1]
    config = scaled_timeouts(config, expected_cycles, board.hardware_clock_hz)
    result = measure_elf(link, image.elf, config, expect_model=gen.name,
                         expect_ops=[layer.op_name for layer in gen.layers], power=power)
    e = result.energy
    mid = db.add(board=board.name, image_sha256=sha, measurement=result.measurement,
                 warmup=config.warmup, model_sha256=file_sha256(model_path),
                 kernels=image.config.kernels, opt=image.config.opt, tools=result.tools,
                 energy_uj=e.per_inference_uj if e else None, latency_s=e.latency_s if e else None,
                 layer_energy_uj=e.per_layer_uj if e else None, parse_stats=result.parse_stats,
                 transcript=result.transcript)
    return db.get(mid)


def campaign(models: Sequence[Path], link: BoardLink, db: ResultsDB, config: MeasureConfig,
             prior: CostParameters, *, build: BuildConfig | None = None,
             builder: FirmwareBuilder | None = None,
             power_factory: Callable[[], PowerMonitor] | None = None,
             resume: bool = True, progress: bool = False,
             image_for: Callable[[Path, BuildConfig], FirmwareImage] | None = None
             ) -> list[ModelRun]:
    """Measure every model (resumable through *db*) and emulate it for its features;
    *progress* shows a bar (a campaign on a board takes minutes per model).
    *image_for* builds a model's hardware image (default: tinymeter's runtime; the TFLM
    harness for ``--runtime tflm``)."""
    if len({Path(m).stem for m in models}) != len(models):
        raise ConfigError("calibration models must have distinct file names")
    out = []
    for path in tqdm(models, desc=f"measuring on {link.board.name}", unit="model",
                     disable=not progress):
        hw_build = _hardware_build(build, config)
        image = (image_for(Path(path), hw_build) if image_for is not None else
                 build_model(Path(path), link.board, hw_build, builder=builder))
        features, cycles, activity = emulate_run(image, prior)
        power = power_factory() if power_factory else None
        try:
            stored = measure_image(image, Path(path), link, db, config, power=power, resume=resume,
                                   expected_cycles=cycles)
        finally:
            if power is not None:
                power.close()
        out.append(ModelRun(Path(path).stem, image, stored.image_sha256, features, stored,
                            activity))
    return out


def samples_from_runs(runs: Sequence[ModelRun]) -> list[ModelSample]:
    """Calibration samples; a run with per-layer energies also gets energy features
    (measured time at the hardware image's clock, emulated flash reads and SRAM accesses)."""
    out = []
    for r in runs:
        measured = np.array(r.stored.cycles, dtype=np.float64)
        layer_e = r.stored.layer_energy_uj
        activity = r.activity
        has_energy = (activity is not None and bool(layer_e) and len(layer_e) == len(measured)
                      and all(e is not None for e in layer_e))
        out.append(ModelSample(
            model=r.name, ops=r.stored.ops, features=r.features, measured=measured,
            energy_uj=r.stored.energy_uj, latency_s=r.stored.latency_s,
            energy_features=(energy_features(measured / r.image.board.hardware_clock_hz,
                                             activity)
                             if has_energy and activity is not None else None),
            layer_energy_uj=np.array(layer_e, dtype=np.float64) if has_energy else None))
    return out
