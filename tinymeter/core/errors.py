"""Error types shared by every tinymeter component.

Every failure a user can cause (bad model, unsupported op, firmware fault, hung
firmware, bad board file, a board or probe that does not answer) is raised as a
subclass of :class:`TinymeterError` with a message that names the cause, so the CLI
can print one line and exit non-zero instead of a traceback.  All of them are here,
hardware ones included, so one module lists every error a user can see.
"""

from __future__ import annotations


class TinymeterError(Exception):
    """Base class: a user-facing error with a one-line, cause-naming message."""


class MissingDependencyError(TinymeterError):
    """An optional Python package a feature needs (TensorFlow for the zoo) is not installed."""


class ConfigError(TinymeterError):
    """A configuration or board file is invalid (unknown key, wrong type, missing field)."""


class MalformedModelError(TinymeterError):
    """The .tflite flatbuffer is structurally invalid (bad offsets, truncated, wrong ids)."""


class UnsupportedModelError(TinymeterError):
    """The model is well-formed but uses an op, type or option the runtime does not implement."""


class BuildError(TinymeterError):
    """The firmware could not be compiled or linked (toolchain missing, compile error, no fit)."""


class DoesNotFit(BuildError):
    """The model (weights, or arena plus stack) is larger than the board's memory region."""

    def __init__(self, message: str, *, memory: str, needed: int, available: int) -> None:
        super().__init__(message)
        #: "flash" (the text region) or "RAM" (the data region).
        self.memory = memory
        self.needed = needed
        self.available = available

    @property
    def short(self) -> str:
        """``does not fit: needs 600,000 B flash, has 524,288 B``."""
        return f"does not fit: needs {self.needed:,} B {self.memory}, has {self.available:,} B"


class EmulationError(TinymeterError):
    """The firmware misbehaved in the emulator: fault, budget exhausted, timeout, bad exit."""


class FirmwareFault(EmulationError):
    """The CPU faulted (unmapped access, undefined instruction, HardFault)."""


class BudgetExceeded(EmulationError):
    """The firmware ran past its instruction budget or wall-clock timeout (likely hung)."""


class HardwareError(TinymeterError):
    """The board, probe, serial port or power monitor did not do what was asked."""


class ToolMissingError(HardwareError):
    """An external tool (pyocd, openocd) or optional package (pyserial, joulescope) is absent."""


class HardwareTimeout(HardwareError):
    """A wait on the board (flashing, serial output, power trace) ran past its limit."""


class FirmwareFaultReport(HardwareError):
    """The firmware printed ``TM1 FAULT``: it crashed on the board."""
