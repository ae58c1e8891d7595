"""Hardware error types, re-exported from :mod:`tinymeter.core.errors`.

They live with every other user-facing error type so one module lists all a user can
see; this module keeps the ``tinymeter.hw.errors`` names importable.
"""

from __future__ import annotations

from tinymeter.core.errors import FirmwareFaultReport, HardwareError, HardwareTimeout, ToolMissingError

__all__ = ["FirmwareFaultReport", "HardwareError", "HardwareTimeout", "ToolMissingError"]
