"""Measuring firmware on a board: build, run on the board, store; and calibration campaigns.

Every board is a :class:`~tinymeter.hw.device.HardwareDevice` (a real board over a probe
and a serial port, or the virtual board); every emulation an
:class:`~tinymeter.device.EmulatedDevice`: both through the one run interface.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tinymeter.analysis.calibrate import ModelSample
from tinymeter.apps.estimate import build_model
from tinymeter.apps.resultsdb import ResultsDB, StoredMeasurement, file_sha256
from tinymeter.core.errors import ConfigError
from tinymeter.device import EmulatedDevice
from tinymeter.firmware.build import BuildConfig, FirmwareBuilder, FirmwareImage
from tinymeter.hw.device import HardwareDevice, MeasureConfig
from tinymeter.hw.power.monitors import PowerMonitor
from tinymeter.sim.costmodel import (
    CostParameters,
    cost_model_for,
    parameter_vector,
)
from tinymeter.sim.energy import energy_features

log = logging.getLogger(__name__)


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
    run = EmulatedDevice(image.board).run_elf(image.elf)
    n_layers = len(image.model.layers)
    features = run.layer_features(prior, n_layers)
    return (features, float((features @ parameter_vector(prior)).sum()),
            run.layer_activity(n_layers))


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


def measure_model(model_path: Path, device: HardwareDevice, db: ResultsDB, config: MeasureConfig, *,
                  build: BuildConfig | None = None, builder: FirmwareBuilder | None = None,
                  power: PowerMonitor | None = None, resume: bool = True) -> tuple[FirmwareImage,
                                                                                    StoredMeasurement]:
    """Build the hardware image of *model_path* for the device's board and measure it
    (:func:`measure_image`)."""
    image = build_model(model_path, device.board, _hardware_build(build, config), builder=builder)
    return image, measure_image(image, model_path, device, db, config, power=power, resume=resume)


def measure_image(image: FirmwareImage, model_path: Path, device: HardwareDevice, db: ResultsDB,
                  config: MeasureConfig, *, power: PowerMonitor | None = None,
                  resume: bool = True, expected_cycles: float | None = None) -> StoredMeasurement:
    """Measure *image* (or reuse a stored measurement of the identical image when
    *resume*), store and return it.  The waits are scaled to the model
    (:func:`scaled_timeouts`) from *expected_cycles* per inference, emulated with the
    board's cost model when not given."""
    board = device.board
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
    result = device.run(image, config=config, power=power).result
    assert result is not None
    e = result.energy
    mid = db.add(board=board.name, image_sha256=sha, measurement=result.measurement,
                 warmup=config.warmup, model_sha256=file_sha256(model_path),
                 kernels=image.config.kernels, opt=image.config.opt, tools=result.tools,
                 energy_uj=e.per_inference_uj if e else None, latency_s=e.latency_s if e else None,
                 layer_energy_uj=e.per_layer_uj if e else None, parse_stats=result.parse_stats,
                 transcript=result.transcript)
    return db.get(mid)


def campaign(models: Sequence[Path], device: HardwareDevice, db: ResultsDB, config: MeasureConfig,
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
    for path in tqdm(models, desc=f"measuring on {device.board.name}", unit="model",
                     disable=not progress):
        hw_build = _hardware_build(build, config)
        image = (image_for(Path(path), hw_build) if image_for is not None else
                 build_model(Path(path), device.board, hw_build, builder=builder))
        features, cycles, activity = emulate_run(image, prior)
        power = power_factory() if power_factory else None
        try:
            stored = measure_image(image, Path(path), device, db, config, power=power, resume=resume,
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
