"""Whole models, bit for bit: the emulated firmware vs the tflite-micro interpreter.

Uses the trained MLPerf Tiny int8 reference models from ``../shared/models`` and the
zoo's default model; each runs on the emulated M4 board with random inputs and must
produce exactly the interpreter's outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinymeter.device import run_on_emulator
from tinymeter.firmware.build import FirmwareBuilder
from tinymeter.models.builders import run_tflm
from tinymeter.models.tflite import parse_tflite

pytestmark = pytest.mark.slow  # whole models, every core

MLPERF = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "mlperf-tiny"
MODELS = ["ad01_int8.tflite", "kws_ref_model.tflite", "pretrainedResnet_quant.tflite",
          "vww_96_int8.tflite"]


@pytest.fixture(scope="module")
def builder(tmp_path_factory) -> FirmwareBuilder:
    return FirmwareBuilder(cache_dir=tmp_path_factory.mktemp("fw-cache"))


def _random_inputs(blob: bytes, n: int, seed: int) -> list[list[np.ndarray]]:
    sg = parse_tflite(blob).main
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        row = []
        for t in sg.inputs:
            tensor = sg.tensors[t]
            info = np.iinfo(tensor.dtype.numpy_dtype)
            row.append(rng.integers(info.min, info.max, size=tensor.shape, endpoint=True)
                       .astype(tensor.dtype.numpy_dtype))
        out.append(row)
    return out


def _check_bit_exact(blob: bytes, board: str, builder: FirmwareBuilder, n: int = 2,
                     kernels: str = "reference") -> None:
    inputs = _random_inputs(blob, n, seed=len(blob))
    got = run_on_emulator(blob, inputs, board=board, kernels=kernels, builder=builder)
    for k, row in enumerate(inputs):
        expected = run_tflm(blob, row)
        assert len(got[k]) == len(expected)
        for g, e in zip(got[k], expected):
            assert g.dtype == e.dtype and g.shape == e.shape
            mismatches = int(np.count_nonzero(g != e))
            assert mismatches == 0, f"inference {k}: {mismatches} of {g.size} values differ"


#: Reference kernels on every core family: ARMv6-M (soft float), ARMv7E-M, M7.
REFERENCE_BOARDS = {"m0plus": "nucleo-g0b1re", "m4": "nucleo-l4r5zi", "m7": "nucleo-f767zi"}


@pytest.mark.parametrize("core", sorted(REFERENCE_BOARDS))
@pytest.mark.parametrize("name", MODELS)
def test_mlperf_model_bit_exact_reference(name: str, core: str, builder: FirmwareBuilder) -> None:
    path = MLPERF / name
    if not path.exists():
        pytest.skip(f"shared model {path} not present")
    _check_bit_exact(path.read_bytes(), REFERENCE_BOARDS[core], builder)


#: DSP cores where the optimized kernel set differs from the reference set.
OPTIMIZED_BOARDS = {"m4": "nucleo-l4r5zi", "m7": "nucleo-f767zi"}


@pytest.mark.parametrize("core", sorted(OPTIMIZED_BOARDS))
@pytest.mark.parametrize("name", MODELS)
def test_mlperf_model_bit_exact_optimized(name: str, core: str, builder: FirmwareBuilder) -> None:
    """The optimized (DSP SIMD) kernels reorder sums and use kernel sums and im2col;
    whole models catch any layer shape the single-op cases miss."""
    path = MLPERF / name
    if not path.exists():
        pytest.skip(f"shared model {path} not present")
    _check_bit_exact(path.read_bytes(), OPTIMIZED_BOARDS[core], builder, kernels="optimized")


def test_default_model_bit_exact(builder: FirmwareBuilder) -> None:
    from tinymeter.models import zoo

    _check_bit_exact(zoo.default_model_path().read_bytes(), "nucleo-l4r5zi", builder, n=3)
