"""mypy over the whole package as installed (tools/typecheck.py), part of `make test`.

The whole package is checked: no module is exempted by an ``ignore_errors`` override
(a third-party stub that is wrong gets a ``# type: ignore[code]`` with its reason).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    pytest.importorskip("mypy")
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "typecheck.py")], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # every module of the package, not just the ones a run on the tree would find (mypy
    # also counts the data folders, e.g. firmware/runtime, as namespace packages)
    modules = sum(1 for folder in _package_folders() for _ in (ROOT / folder).rglob("*.py"))
    found = re.search(r"Success: no issues found in (\d+) source files", proc.stdout)
    assert found and int(found.group(1)) >= modules, (proc.stdout, modules)


def _package_folders() -> list[str]:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return list(mapping.values())


def test_no_module_is_exempt_from_mypy() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    exempt = [o["module"] for o in config.get("overrides", []) if o.get("ignore_errors")]
    assert not exempt, f"modules exempted from mypy: {exempt}"
