"""Power traces as CSV: :func:`read_csv` reads any instrument's export (time, current or
power, voltage, digital inputs; column names and units recognised), :func:`write_csv`
writes the form it reads back."""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tinymeter.core.errors import ConfigError
from tinymeter.hw.power.trace import PowerTrace

log = logging.getLogger(__name__)

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
