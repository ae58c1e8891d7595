"""The installed package works outside the source tree.

A wheel built from this tree is installed (without dependencies: they come from the
test environment through a path entry, so the test needs no network) into a fresh
virtual environment, and the `tinymeter` script of that environment estimates and
inspects a model from a directory outside the tree. The test asserts that the copy
that ran is the installed one, not the source tree.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tinymeter.models.builders import int8_tensor, single_op_model

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".venv", ".git", "build", "bench-results", "__pycache__", ".pytest_cache",
             ".ruff_cache", ".mypy_cache", "notebooks", "tests", "benchmarks"}


def _copy_tree(dst: Path) -> Path:
    """A clean copy of the sources, so building leaves nothing in the checkout."""
    def ignore(_dir: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP_DIRS or n.endswith((".egg-info", ".so"))}
    shutil.copytree(ROOT, dst, ignore=ignore)
    return dst


def _setuptools_can_build() -> bool:
    """pyproject's build-system needs setuptools >= 77 (the test extra installs it)."""
    try:
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 77


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not _setuptools_can_build():
        pytest.skip("building the wheel offline needs setuptools>=77 in this environment "
                    "(`make setup` installs the test extra)")
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_tree(tmp / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
                   check=True, capture_output=True, timeout=600)
    (whl,) = (tmp / "dist").glob("tinymeter-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_holds_every_package(wheel: Path) -> None:
    """Every folder with an __init__.py in the tree is in the wheel (package discovery)."""
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, pkg in (("tinymeter", "tinymeter"), ("models", "tinymeter/models"),
                        ("firmware", "tinymeter/firmware"), ("sim", "tinymeter/sim"),
                        ("hw", "tinymeter/hw")):
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.relative_to(ROOT / folder).as_posix()
            assert f"{pkg}/{rel}" in names, f"{pkg}/{rel} missing from the wheel"
    assert "tinymeter/firmware/runtime/src/tm_main.c" in names
    assert any(n.startswith("tinymeter/sim/_counthook") for n in names)
    assert any(n.startswith("tinymeter/sim/_periph") for n in names)
    assert "tinymeter/boards/nucleo-l4r5zi.toml" in names


@pytest.mark.slow
def test_installed_wheel_estimates_outside_the_tree(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    # Dependencies from this environment, appended after the venv's own site-packages
    # (a plain path line: the editable install's finder in there is not activated).
    purelib = Path(subprocess.run([str(venv / "bin" / "python"), "-c",
                                   "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    (purelib / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "work"
    work.mkdir()
    x = int8_tensor("x", (1, 8), 0.1, 0)
    (work / "m.tflite").write_bytes(single_op_model("RESHAPE", [x], [int8_tensor("y", (8,), 0.1, 0)],
                                                    {"new_shape": [8]}))
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import tinymeter.firmware.lower as m; print(m.__file__)"],
                           cwd=work, check=True, capture_output=True, text=True).stdout
    assert where.startswith(str(purelib)), where
    exe = str(venv / "bin" / "tinymeter")
    est = subprocess.run([exe, "estimate", "m.tflite", "-q", "--json", "e.json"], cwd=work,
                         capture_output=True, text=True, timeout=300, check=False)
    assert est.returncode == 0, est.stderr
    assert json.loads((work / "e.json").read_text())["instructions"] > 0
    ins = subprocess.run([exe, "inspect", "m.tflite"], cwd=work, capture_output=True, text=True,
                         timeout=120, check=False)
    assert ins.returncode == 0 and "RESHAPE" in ins.stdout, ins.stderr
    build = subprocess.run([exe, "build", "m.tflite", "--out", "fw"], cwd=work, capture_output=True,
                           text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stderr
    assert all((work / "fw" / f"firmware.{ext}").stat().st_size > 0 for ext in ("elf", "bin", "hex"))
