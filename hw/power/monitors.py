"""Power-monitor drivers: :class:`JoulescopeMonitor` (``joulescope`` package) and
:class:`PPK2Monitor` (``ppk2-api``) record a :class:`~tinymeter.hw.power.trace.PowerTrace`
with the marker inputs; each imports its package lazily and says how to install it
when it is missing. Tested through API test doubles (no instrument attached here).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

import numpy as np

from tinymeter.core.errors import ConfigError, HardwareError, ToolMissingError
from tinymeter.hw.power.trace import PowerTrace

log = logging.getLogger(__name__)


# -- CSV import -------------------------------------------------------------------------------

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
