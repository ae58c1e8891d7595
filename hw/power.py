"""Energy: power traces, GPIO-marked inference windows, per-inference and per-layer energy.

A :class:`PowerTrace` is samples of time, current, voltage and digital inputs (bit *k*
of ``gpio`` = input *k*).  The firmware raises a GPIO for the duration of each
inference (channel 0 by default) and may toggle a second one at every layer boundary;
:func:`inference_windows` finds the windows, :func:`integrate_energy` integrates
``V * I`` over them (trapezoid, exact for piecewise-linear samples) and
:func:`layer_energy` splits each inference by the layer marks or, without them, by
the measured per-layer cycle shares.  All of that is pure numpy.

Sources of traces: :func:`read_csv` (any instrument's export), and the adapters
:class:`JoulescopeMonitor` (``joulescope`` package) and :class:`PPK2Monitor`
(``ppk2-api``), which import their package lazily and say how to install it when
it is missing.
"""

from __future__ import annotations

import csv
import itertools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tinymeter.core.errors import ConfigError, HardwareError, ToolMissingError

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


# -- CSV import -------------------------------------------------------------------------------

_TIME = ("time_s", "time", "t", "timestamp(s)", "timestamp", "timestamp(ms)", "time_ms",
         "timestamp(us)", "time_us")
#: Time columns whose name carries the unit (the PPK2 app exports ``Timestamp(ms)``).
_TIME_UNITS = {"timestamp(ms)": 1e-3, "time_ms": 1e-3, "timestamp(us)": 1e-6, "time_us": 1e-6}
_CURRENT = ("current_a", "current", "i", "current(a)")
_CURRENT_UA = ("current_ua", "current(ua)")
_VOLTAGE = ("voltage_v", "voltage", "v", "voltage(v)")
_POWER = ("power_w", "power", "power(w)")
_GPIO = ("gpio", "digital", "d", "in0", "d0")


def _pick(header: list[str], names: Sequence[str]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for n in names:
        if n in lowered:
            return lowered.index(n)
    return None


def read_csv(path: Path, voltage: float | None = None, time_unit: float = 1.0) -> PowerTrace:
    """Import a trace exported by any instrument.

    Needs a header row naming a time column (``time_s``/``time``/``timestamp``) and
    either a current column (``current_a`` in amperes or ``current_ua``) or a power
    column (``power_w``); optional ``voltage_v`` (else *voltage*) and a digital column
    (``gpio``: integer bit field, or ``in0``/``d0``: 0/1 for channel 0, plus ``in1``/``d1``).
    *time_unit* scales the time column to seconds (1e-3 for milliseconds) unless the
    column name carries its unit (``Timestamp(ms)``, ``time_us``).
    """
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise ConfigError(f"power trace {path}: {exc}") from None
    if len(rows) < 3:
        raise ConfigError(f"power trace {path}: needs a header and at least two samples")
    header, body = rows[0], [r for r in rows[1:] if r and any(c.strip() for c in r)]
    where = f"power trace {path}"
    ti = _pick(header, _TIME)
    if ti is None:
        raise ConfigError(f"{where}: no time column (one of {', '.join(_TIME)}) in {header}")
    try:
        data = np.array([[float(c) if c.strip() else np.nan for c in r] for r in body])
    except ValueError as exc:
        raise ConfigError(f"{where}: non-numeric value ({exc})") from None
    if data.ndim != 2 or data.shape[1] != len(header):
        raise ConfigError(f"{where}: rows do not all have {len(header)} columns")
    t = data[:, ti] * _TIME_UNITS.get(header[ti].strip().lower(), time_unit)
    vi = _pick(header, _VOLTAGE)
    if vi is not None:
        v = data[:, vi]
    elif voltage is not None:
        v = np.full(len(t), float(voltage))
    else:
        v = None
    ci, cui, pi = _pick(header, _CURRENT), _pick(header, _CURRENT_UA), _pick(header, _POWER)
    if ci is not None:
        i = data[:, ci]
    elif cui is not None:
        i = data[:, cui] * 1e-6
    elif pi is not None:
        v = v if v is not None else np.ones(len(t))
        i = data[:, pi] / v
    else:
        raise ConfigError(f"{where}: no current or power column in {header}")
    if v is None:
        raise ConfigError(f"{where}: no voltage column; pass the supply voltage")
    gi = _pick(header, ("gpio", "digital"))
    if gi is not None:
        gpio = data[:, gi].astype(np.int64)
    else:
        gpio = np.zeros(len(t), dtype=np.int64)
        for k, names in enumerate((("in0", "d0"), ("in1", "d1"))):
            col = _pick(header, names)
            if col is not None:
                gpio |= (data[:, col] > 0.5).astype(np.int64) << k
    if np.isnan(t).any() or np.isnan(i).any() or np.isnan(v).any():
        raise ConfigError(f"{where}: empty cells in time, current or voltage")
    return PowerTrace(time_s=t, current_a=i, voltage_v=v, gpio=gpio, source=str(path))


def write_csv(trace: PowerTrace, path: Path) -> None:
    """Write a trace in the format :func:`read_csv` reads back exactly."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time_s", "current_a", "voltage_v", "gpio"])
        for row in zip(trace.time_s.tolist(), trace.current_a.tolist(), trace.voltage_v.tolist(),
                       np.asarray(trace.gpio).astype(int).tolist()):
            w.writerow([repr(row[0]), repr(row[1]), repr(row[2]), row[3]])


# -- instruments --------------------------------------------------------------------------------


class PowerMonitor(Protocol):
    """Start a capture before the board resets, stop it after the last inference."""

    def start(self) -> None: ...

    def stop(self) -> PowerTrace: ...

    def close(self) -> None: ...


def _require(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ToolMissingError(f"the {package!r} package is needed for this power monitor; "
                               f"install it with: pip install {package}") from None


class JoulescopeMonitor:
    """Joulescope JS110/JS220 through the ``joulescope`` package (v1 API).

    Streams current, voltage and the general-purpose inputs (``in0``/``in1``) into
    host memory between :meth:`start` and :meth:`stop`.
    """

    def __init__(self, serial: str | None = None, max_seconds: float = 30.0,
                 sampling_frequency: float = 1e6) -> None:
        self._js = _require("joulescope", "joulescope")
        self.serial = serial
        self.max_seconds = max_seconds
        self.sampling_frequency = sampling_frequency
        self._device: Any = None
        self._t0 = 0.0

    def start(self) -> None:
        devices = self._js.scan(config="auto")
        if self.serial:
            devices = [d for d in devices if self.serial in str(d)]
        if not devices:
            raise HardwareError("no Joulescope found" + (f" with serial {self.serial}" if self.serial
                                                        else ""))
        self._device = devices[0]
        self._device.open()
        self._device.parameter_set("sampling_frequency", int(self.sampling_frequency))
        self._device.parameter_set("i_range", "auto")
        self._device.parameter_set("buffer_duration", self.max_seconds)
        self._device.start(stop_fn=None, duration=self.max_seconds)
        self._t0 = time.monotonic()

    def stop(self) -> PowerTrace:
        if self._device is None:
            raise HardwareError("Joulescope capture was not started")
        duration = time.monotonic() - self._t0
        self._device.stop()
        start, end = self._device.stream_buffer.sample_id_range
        n = min(end - start, int(duration * self.sampling_frequency))
        if n < 2:
            raise HardwareError(f"Joulescope {self._device} returned no samples "
                                f"({end - start} buffered, {duration:.3g} s captured)")
        data = self._device.stream_buffer.samples_get(end - n, end,
                                                      fields=["current", "voltage", "current_lsb",
                                                              "voltage_lsb"])
        sig = data["signals"]
        gpio = (np.asarray(sig["current_lsb"]["value"], dtype=np.int64)
                | (np.asarray(sig["voltage_lsb"]["value"], dtype=np.int64) << 1))
        return PowerTrace(time_s=np.arange(n) / self.sampling_frequency,
                          current_a=np.asarray(sig["current"]["value"], dtype=np.float64),
                          voltage_v=np.asarray(sig["voltage"]["value"], dtype=np.float64),
                          gpio=gpio, source="joulescope")

    def close(self) -> None:
        if self._device is not None:
            self._device.close()
            self._device = None


class PPK2Monitor:
    """Nordic Power Profiler Kit II through ``ppk2-api`` (source-meter mode, 100 kS/s).

    The PPK2's logic port gives the digital channels (D0 = inference, D1 = layers).
    It streams about 400 kB/s over USB serial, far more than the OS buffer holds, so a
    background thread drains it from :meth:`start` to :meth:`stop`; a capture that is
    not drained would silently lose samples.
    """

    SAMPLE_RATE = 100_000.0
    #: Seconds between buffer drains.
    POLL_INTERVAL_S = 0.005

    #: Source-meter voltages the PPK2 can supply (its datasheet: 0.8 V to 5 V).
    VOLTAGE_RANGE_MV = (800, 5000)

    def __init__(self, port: str, voltage_mv: int = 3300) -> None:
        low, high = self.VOLTAGE_RANGE_MV
        if not low <= voltage_mv <= high:
            raise ConfigError(f"PPK2 source voltage {voltage_mv} mV is outside {low}-{high} mV "
                              "(the board file's [power] voltage)")
        self._mod = _require("ppk2_api.ppk2_api", "ppk2-api")
        self.port = port
        self.voltage_mv = voltage_mv
        self._ppk: Any = None
        self._current: list[float] = []
        self._digital: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: Exception | None = None

    def start(self) -> None:
        self._ppk = self._mod.PPK2_API(self.port)
        self._ppk.get_modifiers()
        self._ppk.use_source_meter()
        self._ppk.set_source_voltage(self.voltage_mv)
        self._ppk.toggle_DUT_power("ON")
        self._current, self._digital, self._error = [], [], None
        self._ppk.start_measuring()
        self._stop.clear()
        self._thread = threading.Thread(target=self._drain, daemon=True, name="ppk2-drain")
        self._thread.start()

    def _drain(self) -> None:
        try:
            while not self._stop.is_set():
                self.poll()
                self._stop.wait(self.POLL_INTERVAL_S)
        except Exception as exc:  # reported by stop()
            self._error = exc

    def poll(self) -> None:
        """Move what the PPK2 has sent into the capture (the drain thread calls this)."""
        raw = self._ppk.get_data()
        if raw:
            samples, raw_digital = self._ppk.get_samples(raw)
            self._current.extend(samples)
            channels = self._ppk.digital_channels(raw_digital)
            bits = np.zeros(len(samples), dtype=np.int64)
            for k in range(min(2, len(channels))):
                bits |= np.asarray(channels[k][:len(samples)], dtype=np.int64) << k
            self._digital.extend(bits.tolist())

    def stop(self) -> PowerTrace:
        if self._ppk is None or self._thread is None:
            raise HardwareError("PPK2 capture was not started")
        self._stop.set()
        self._thread.join()
        self._thread = None
        if self._error is not None:
            raise HardwareError(f"PPK2 on {self.port}: reading samples failed: "
                                f"{self._error}") from self._error
        self.poll()
        self._ppk.stop_measuring()
        n = len(self._current)
        if n < 2:
            raise HardwareError(f"PPK2 on {self.port} returned no samples")
        return PowerTrace(time_s=np.arange(n) / self.SAMPLE_RATE,
                          current_a=np.asarray(self._current) * 1e-6,  # ppk2-api gives µA
                          voltage_v=np.full(n, self.voltage_mv / 1e3),
                          gpio=np.asarray(self._digital, dtype=np.int64), source="ppk2")

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self._ppk is not None:
            self._ppk.toggle_DUT_power("OFF")
            self._ppk = None
