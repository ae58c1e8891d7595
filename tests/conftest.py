"""Shared pytest options.

Hardware tests (``@pytest.mark.hardware``) need a real board and are skipped unless
``--run-hardware --board ID`` is given (``--hw-port`` names its serial device).
Real-TFLM tests (``tests/test_tflm_real.py``) need a TFLM checkout and libraries built
from it (never part of the repository): ``--tflm-root DIR --tflm-lib LIB [--tflm-lib LIB]``.
"""

from __future__ import annotations

import os
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Calibrations written by tests (``calibrate`` without --out) go to a throw-away data
    directory, never the user's (subprocesses inherit it); one per worker process."""
    if "TINYMETER_DATA" not in os.environ:
        os.environ["TINYMETER_DATA"] = tempfile.mkdtemp(prefix="tinymeter-test-data-")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tinymeter hardware")
    group.addoption("--run-hardware", action="store_true", default=False,
                    help="run tests marked 'hardware' on a real board")
    group.addoption("--board", default=None, help="board name or file for hardware tests")
    group.addoption("--hw-port", default=None, help="serial device of the board under test")
    group.addoption("--hw-probe", default="pyocd", help="pyocd or openocd (hardware tests)")
    tflm = parser.getgroup("tinymeter real TFLM")
    tflm.addoption("--tflm-root", default=None,
                   help="TFLM source checkout the --tflm-lib libraries were built from")
    tflm.addoption("--tflm-lib", action="append", default=[],
                   help="a cortex-m4+fp TFLM microlite library (repeatable: reference, "
                        "CMSIS-NN); enables tests/test_tflm_real.py")


def _emulated_beyond_quota(item: pytest.Item) -> bool:
    """Kernel modules with ``N_EMU`` run every seed on the host but only the first
    ``N_EMU`` seeds on each emulated runner (each costs a firmware link + emulation)."""
    quota = getattr(getattr(item, "module", None), "N_EMU", None)
    params = getattr(getattr(item, "callspec", None), "params", {})
    if quota is None or "runner" not in params or "seed" not in params:
        return False
    return params["runner"] != "host" and params["seed"] >= quota


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselected = [item for item in items if _emulated_beyond_quota(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not _emulated_beyond_quota(item)]
    if config.getoption("--run-hardware") and config.getoption("--board"):
        return
    skip = pytest.mark.skip(reason="hardware test: needs --run-hardware --board ID")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)
