"""Shared pytest options and markers.

Markers (registered in pyproject.toml): ``slow`` (whole models), ``tf`` (needs
TensorFlow: skipped here when it is not installed), ``hardware`` (below), ``emulated``
(set here on every kernel case whose ``runner`` is an emulated core). ``make test-fast``
runs ``-m "not slow and not tf and not hardware and not emulated" --fast``: with
``--fast`` a seeded kernel test keeps its first ``FAST_SEEDS`` seeds on the host.

Hardware tests (``@pytest.mark.hardware``) need a real board and are skipped unless
``--run-hardware --board ID`` is given (``--hw-port`` names its serial device).
Real-TFLM tests (``tests/firmware/test_tflm_real.py``) need a TFLM checkout and libraries built
from it (never part of the repository): ``--tflm-root DIR --tflm-lib LIB [--tflm-lib LIB]``.
"""

from __future__ import annotations

import importlib.util
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
    parser.addoption("--fast", action="store_true", default=False,
                     help=f"inner loop (make test-fast): seeded kernel tests keep seeds < {FAST_SEEDS}")
    tflm = parser.getgroup("tinymeter real TFLM")
    tflm.addoption("--tflm-root", default=None,
                   help="TFLM source checkout the --tflm-lib libraries were built from")
    tflm.addoption("--tflm-lib", action="append", default=[],
                   help="a cortex-m4+fp TFLM microlite library (repeatable: reference, "
                        "CMSIS-NN); enables tests/firmware/test_tflm_real.py")


#: Seeds a seeded kernel test keeps under ``--fast``.
FAST_SEEDS = 2


def _params(item: pytest.Item) -> dict:
    return getattr(getattr(item, "callspec", None), "params", {})


def _emulated(item: pytest.Item) -> bool:
    """A kernel case on an emulated core (runner ids are "host" or name an emulated core;
    some modules pass (name, runner) pairs)."""
    runner = _params(item).get("runner")
    name = runner[0] if isinstance(runner, tuple) else runner
    return runner is not None and name != "host"


def _beyond_fast_seeds(item: pytest.Item) -> bool:
    seed = _params(item).get("seed")
    return isinstance(seed, int) and seed >= FAST_SEEDS


def _emulated_beyond_quota(item: pytest.Item) -> bool:
    """Kernel modules with ``N_EMU`` run every seed on the host but only the first
    ``N_EMU`` seeds on each emulated runner (each costs a firmware link + emulation)."""
    quota = getattr(getattr(item, "module", None), "N_EMU", None)
    params = getattr(getattr(item, "callspec", None), "params", {})
    if quota is None or "runner" not in params or "seed" not in params:
        return False
    return params["runner"] != "host" and params["seed"] >= quota


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    fast = config.getoption("--fast")
    drop = [item for item in items
            if _emulated_beyond_quota(item) or (fast and _beyond_fast_seeds(item))]
    if drop:
        config.hook.pytest_deselected(items=drop)
        dropped = set(map(id, drop))
        items[:] = [item for item in items if id(item) not in dropped]
    for item in items:
        if _emulated(item):
            item.add_marker(pytest.mark.emulated)
    if importlib.util.find_spec("tensorflow") is None:
        no_tf = pytest.mark.skip(reason="needs TensorFlow (pip install tinymeter[tf])")
        for item in items:
            if "tf" in item.keywords:
                item.add_marker(no_tf)
    if config.getoption("--run-hardware") and config.getoption("--board"):
        return
    skip = pytest.mark.skip(reason="hardware test: needs --run-hardware --board ID")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)
