"""Power traces and energy: GPIO-marked inference windows, per-inference and per-layer
energy. Pure numpy, no I/O.

A :class:`PowerTrace` is samples of time, current, voltage and digital inputs (bit *k*
of ``gpio`` = input *k*).  The firmware raises a GPIO for the duration of each
inference (channel 0 by default) and may toggle a second one at every layer boundary;
:func:`inference_windows` finds the windows, :func:`integrate_energy` integrates
``V * I`` over them (trapezoid, exact for piecewise-linear samples) and
:func:`layer_energy` splits each inference by the layer marks or, without them, by
the measured per-layer cycle shares.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tinymeter.core.errors import ConfigError, HardwareError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PowerTrace:
    """Sampled supply of the board under test."""

    time_s: np.ndarray
    current_a: np.ndarray
    voltage_v: np.ndarray
    gpio: np.ndarray  # uint8/uint16 bit field per sample
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.time_s)
        if not (len(self.current_a) == len(self.voltage_v) == len(self.gpio) == n):
            raise ConfigError("power trace: time, current, voltage and gpio lengths differ")
        if n < 2:
            raise ConfigError("power trace: fewer than two samples")
        if np.any(np.diff(self.time_s) <= 0):
            raise ConfigError("power trace: time stamps must increase strictly")

    @property
    def power_w(self) -> np.ndarray:
        return self.current_a * self.voltage_v

    def channel(self, k: int) -> np.ndarray:
        return (np.asarray(self.gpio).astype(np.int64) >> k) & 1


@dataclass(frozen=True)
class Window:
    """Sample index range [start, stop) where a marker was high (or one segment)."""

    start: int
    stop: int


def inference_windows(trace: PowerTrace, channel: int = 0, min_samples: int = 1) -> list[Window]:
    """Windows where GPIO *channel* is high; ones touching the trace edges are incomplete
    (the capture began or ended inside an inference) and left out."""
    high = trace.channel(channel)
    edges = np.diff(np.concatenate(([0], high, [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    n = len(high)
    return [Window(int(a), int(b)) for a, b in zip(starts, stops)
            if a > 0 and b < n and b - a >= min_samples]


def _integrate(trace: PowerTrace, start: int, stop: int) -> float:
    """Energy in joules from sample *start* to sample *stop* (trapezoid up to the next
    sample, so adjacent windows add up to the whole)."""
    stop = min(stop, len(trace.time_s) - 1)
    if stop <= start:
        return 0.0
    p = trace.power_w[start:stop + 1]
    t = trace.time_s[start:stop + 1]
    return float(np.sum((p[1:] + p[:-1]) * 0.5 * np.diff(t)))


def integrate_energy(trace: PowerTrace, windows: Sequence[Window]) -> np.ndarray:
    """Energy (µJ) of each window."""
    return np.array([_integrate(trace, w.start, w.stop) * 1e6 for w in windows])


def window_durations(trace: PowerTrace, windows: Sequence[Window]) -> np.ndarray:
    """Duration (s) of each window."""
    t = trace.time_s
    return np.array([t[min(w.stop, len(t) - 1)] - t[w.start] for w in windows])


def layer_energy(trace: PowerTrace, window: Window, n_layers: int, layer_channel: int | None = 1,
                 layer_cycles: Sequence[float] | None = None) -> np.ndarray:
    """Energy (µJ) per layer of one inference window.

    With a layer channel that toggles *n_layers* times inside the window, each segment
    between toggles is integrated.  Otherwise (or if the toggles do not match) the
    window's energy is split in proportion to *layer_cycles* (constant power within an
    inference, the usual first-order assumption).
    """
    if layer_channel is not None:
        marks = trace.channel(layer_channel)[window.start:window.stop]
        toggles = np.flatnonzero(np.diff(marks) != 0) + 1 + window.start
        bounds = [window.start, *toggles.tolist(), window.stop]
        if len(bounds) - 1 == n_layers:
            return np.array([_integrate(trace, a, b) * 1e6 for a, b in itertools.pairwise(bounds)])
    if layer_cycles is None:
        raise HardwareError(f"cannot split inference energy into {n_layers} layers: no layer "
                            "marks in the trace and no per-layer cycles given")
    shares = np.asarray(layer_cycles, dtype=np.float64)
    total = _integrate(trace, window.start, window.stop) * 1e6
    return total * shares / shares.sum()


@dataclass(frozen=True)
class EnergyResult:
    """Energy per inference (median over windows) and per layer."""

    per_inference_uj: float
    per_layer_uj: tuple[float, ...]
    latency_s: float
    windows: int

    @property
    def mean_power_mw(self) -> float:
        return self.per_inference_uj / self.latency_s * 1e-3 if self.latency_s > 0 else 0.0


def energy_from_trace(trace: PowerTrace, n_layers: int, *, warmup: int = 0, channel: int = 0,
                      layer_channel: int | None = 1,
                      layer_cycles: Sequence[float] | None = None) -> EnergyResult:
    """Medians over the GPIO-marked inferences after *warmup* windows."""
    windows = inference_windows(trace, channel)[warmup:]
    if not windows:
        raise HardwareError(f"power trace ({trace.source or 'unknown source'}) has no complete "
                            f"inference window on GPIO channel {channel} after {warmup} warm-up(s)")
    energy = integrate_energy(trace, windows)
    per_layer = np.median(np.stack([layer_energy(trace, w, n_layers, layer_channel, layer_cycles)
                                    for w in windows]), axis=0)
    return EnergyResult(float(np.median(energy)), tuple(float(e) for e in per_layer),
                        float(np.median(window_durations(trace, windows))), len(windows))
