"""Execute every workflow notebook headless (nbclient) with small settings.

The committed notebooks must equal what notebooks/make_notebooks.py generates (the
generator is the reviewed source), must run without errors, and must leave their
plots behind.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NB_DIR = ROOT / "notebooks"

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("nbclient", "nbformat", "ipykernel")),
    reason="needs nbclient, nbformat and ipykernel (the test extra)")

#: Files each notebook must produce in its output directory (plots first of all).
EXPECTED = {
    "01_model_selection": ["ds_cnn_kws_ops.png", "lenet_ops.png"],
    "02_conversion_quantization": ["accuracy.png", "digits_int8.tflite"],
    "03_build_emulate": ["layers_reference.png", "kernels.png", "boards.png", "estimate_reference.json",
                         "estimate_optimized.json"],
    "04_hardware_calibration": ["marker_lines.png"],  # calibration plots checked below
    "05_nas": ["pareto.png", "parity.png", "results.csv", "sweep.sqlite"],
}


def _generator() -> object:
    spec = importlib.util.spec_from_file_location("make_notebooks", NB_DIR / "make_notebooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def kernel_name() -> str:
    """A 'python3' kernel spec that runs this interpreter (installed into the venv if missing)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
        ok = Path(spec.argv[0]).resolve() == Path(sys.executable).resolve() or spec.argv[0] == "python"
    except NoSuchKernel:
        ok = False
    if not ok:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"], check=True,
                       capture_output=True)
    return "python3"


def test_notebooks_match_their_generator(tmp_path: Path) -> None:
    paths = _generator().main(tmp_path)  # type: ignore[attr-defined]
    assert sorted(p.stem for p in paths) == sorted(EXPECTED)
    for p in paths:
        committed = NB_DIR / p.name
        assert committed.exists(), f"{committed} missing: run python notebooks/make_notebooks.py"
        assert json.loads(committed.read_text()) == json.loads(p.read_text()), (
            f"{p.name} is stale: run python notebooks/make_notebooks.py")


@pytest.mark.tf
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_and_writes_its_plots(name: str, kernel_name: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    out = tmp_path / "out"
    monkeypatch.setenv("TINYMETER_NB_SMALL", "1")
    monkeypatch.setenv("TINYMETER_NB_OUT", str(out))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    nbformat.write(nb, tmp_path / f"{name}.executed.ipynb")
    produced = out / name[:2]
    for filename in EXPECTED[name]:
        assert (produced / filename).stat().st_size > 0, f"{name} did not write {filename}"
    images = sum(1 for cell in nb.cells if cell.cell_type == "code"
                 for o in cell.get("outputs", []) if "image/png" in o.get("data", {}))
    text = "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for o in cell.get("outputs", []))
    if name == "04_hardware_calibration":
        if importlib.util.find_spec("tinymeter.hw.virtual") is None:
            assert "skipping" in text
            return
        assert (produced / "calibration.json").stat().st_size > 0
        assert "exit status 0" in text
        assert list(produced.glob("*.png"))
    assert images >= 1, f"{name} displayed no plot"
