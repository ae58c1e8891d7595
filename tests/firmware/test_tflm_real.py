"""Opt-in: the four MLPerf Tiny models end to end against REAL TFLM libraries.

Skipped unless ``pytest --tflm-root DIR --tflm-lib LIB [--tflm-lib LIB]`` names a TFLM
checkout and ``microlite`` libraries built from it for Cortex-M4 with hard float
(reference and/or CMSIS-NN kernels).  Neither is part of the repository.

Per model and library: one row per operator with the model's ops and MACs, the arena
sized from TFLM's own ``arena_used_bytes()`` and linked exactly, outputs bit-exact with
the host tflite-micro interpreter, instruction counts near the independently measured
figures; and one ``--compare-runtimes`` table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tinymeter.core.boards import load_board

MLPERF = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "mlperf-tiny"
MODELS = {"kws": "kws_ref_model.tflite", "vww": "vww_96_int8.tflite",
          "ic": "pretrainedResnet_quant.tflite", "ad": "ad01_int8.tflite"}
#: Instructions per inference of TFLM (release build, Cortex-M4) measured independently
#: (docs: "Facts you can rely on"): reference / CMSIS-NN kernels.
KNOWN_INSTRUCTIONS = {"kws": (43.0e6, 7.70e6), "vww": (100.2e6, 24.1e6),
                      "ic": (107.3e6, 29.9e6), "ad": (1.95e6, 0.58e6)}
BOARD = "nucleo-l4r5zi"


def _libraries(config: pytest.Config) -> list:
    from tinymeter.firmware.tflm import TflmLibrary

    root, libs = config.getoption("--tflm-root"), config.getoption("--tflm-lib")
    if not root or not libs:
        return []
    return [TflmLibrary.from_root(Path(lib), Path(root)) for lib in libs]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "library" in metafunc.fixturenames:
        libs = _libraries(metafunc.config)
        metafunc.parametrize("library", libs or [None],
                             ids=[lib.kernels for lib in libs] or ["no-tflm"])


@pytest.fixture
def real(library):  # type: ignore[no-untyped-def]
    if library is None:
        pytest.skip("real TFLM: needs --tflm-root DIR --tflm-lib LIB")
    return library


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_real_tflm_estimate(name: str, real, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tinymeter.apps.tflm import estimate_tflm
    from tinymeter.firmware.build import section_sizes
    from tinymeter.firmware.codegen import lower_model
    from tinymeter.firmware.tflm import arena_for
    from tinymeter.models.tflite import load_tflite

    path = MLPERF / MODELS[name]
    model = load_tflite(path)
    board = load_board(BOARD)
    out = tmp_path / "fw"
    est = estimate_tflm(path, board, real, out_dir=out)
    ops = [op.opcode for op in model.main.operators]
    assert [r.op for r in est.layers] == ops
    assert [r.macs for r in est.layers] == [layer.macs for layer in lower_model(model)[1]]
    assert est.runtime == "tflm" and est.kernels.startswith(
        "TFLM CMSIS-NN" if real.kernels == "cmsis-nn" else "TFLM reference")
    assert est.arena_bytes > 0
    # the ELF links exactly the arena the report names (16-byte granules)
    assert section_sizes(out / "firmware.elf")[".tflm_arena"] == arena_for(est.arena_bytes)
    known = KNOWN_INSTRUCTIONS[name][1 if real.kernels == "cmsis-nn" else 0]
    print(f"\nREAL-TFLM {name} {real.kernels}: rows {len(est.layers)}, MACs "
          f"{sum(r.macs for r in est.layers):,}, arena {est.arena_bytes:,} B, instructions "
          f"{est.instructions:,} (known {known:,.0f}), flash {est.flash_bytes:,} B, "
          f"RAM {est.ram_bytes:,} B")
    assert abs(est.instructions / known - 1) < 0.15


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_real_tflm_bit_exact(name: str, real) -> None:  # type: ignore[no-untyped-def]
    from tinymeter.apps.validate import validate
    from tinymeter.sim import DEFAULT_BUDGET_INSTRUCTIONS

    result = validate(MLPERF / MODELS[name], load_board(BOARD), library=real, samples=2,
                      budget_instructions=DEFAULT_BUDGET_INSTRUCTIONS, timeout_s=600)
    print(f"\nREAL-TFLM {name} {real.kernels}: bit-exact {result.passed}, "
          + ", ".join(f"{c.mismatches}/{c.elements} mismatches, top-1 {c.top1_agree}/"
                      f"{c.top1_total}" for c in result.checks))
    assert result.passed and all(c.max_abs_diff == 0 for c in result.checks)


@pytest.mark.slow
def test_real_compare_runtimes(real, tmp_path: Path,  # type: ignore[no-untyped-def]
                               capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tinymeter.cli.main import main

    report = tmp_path / "cmp.json"
    assert main(["estimate", str(MLPERF / MODELS["kws"]), "-q", "--compare-runtimes",
                 "--tflm-lib", str(real.path), "--tflm-root", str(real.root),
                 "--json", str(report)]) == 0
    out = capsys.readouterr().out
    print(out)
    data = json.loads(report.read_text())
    labels = [r["label"] for r in data["runtimes"]]
    assert labels[:2] == ["own ref", "own opt"] and labels[2].startswith("TFLM")
    n = len(data["runtimes"][0]["layers"])
    assert all(len(r["layers"]) == n for r in data["runtimes"])
