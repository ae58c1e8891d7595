"""Shared pytest options.

Hardware tests (``@pytest.mark.hardware``) need a real board and are skipped unless
``--run-hardware --board ID`` is given (``--hw-port`` names its serial device).
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tinymeter hardware")
    group.addoption("--run-hardware", action="store_true", default=False,
                    help="run tests marked 'hardware' on a real board")
    group.addoption("--board", default=None, help="board name or file for hardware tests")
    group.addoption("--hw-port", default=None, help="serial device of the board under test")
    group.addoption("--hw-probe", default="pyocd", help="pyocd or openocd (hardware tests)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-hardware") and config.getoption("--board"):
        return
    skip = pytest.mark.skip(reason="hardware test: needs --run-hardware --board ID")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)
