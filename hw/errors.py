"""Error types of the hardware side (all :class:`~tinymeter.errors.TinymeterError` s).

Kept here because only ``tinymeter.hw`` raises them; the CLI already turns any
``TinymeterError`` into one ``error:`` line.
"""

from __future__ import annotations

from tinymeter.errors import TinymeterError


class HardwareError(TinymeterError):
    """The board, probe, serial port or power monitor did not do what was asked."""


class ToolMissingError(HardwareError):
    """An external tool (pyocd, openocd) or optional package (pyserial, joulescope) is absent."""


class HardwareTimeout(HardwareError):
    """A wait on the board (flashing, serial output, power trace) ran past its limit."""


class FirmwareFaultReport(HardwareError):
    """The firmware printed ``TM1 FAULT``: it crashed on the board."""
