"""Test-suite entry point for running a .tflite on the emulated target.

Re-exports :func:`tinymeter.device.run_on_emulator` next to
:func:`tinymeter.firmware.host.run_on_host`, so kernel tests can pick either runner
from the firmware package.
"""

from __future__ import annotations

from tinymeter.device import run_on_emulator

__all__ = ["run_on_emulator"]
