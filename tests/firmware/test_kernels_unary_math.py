"""EXP, LOG, SQRT, RSQRT and L2_NORMALIZATION (float32) against tflite-micro.

Why: normalisation layers and log-mel front ends use these. The firmware has no
libm, so the runtime's own exp/log/sqrt must agree with the glibc the reference
interpreter uses: EXP, SQRT, RSQRT and L2_NORMALIZATION bit for bit (exp is
glibc's algorithm, sqrt is correctly rounded everywhere), LOG within 1 ULP
(glibc's logf is not correctly rounded; ours is). Inputs span many decades
including subnormals, zero and huge values. Host build and emulated M0+ (integer
sqrt, soft float), M4 and M7 (VSQRT).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from kernel_check import (
    REFERENCE_RUNNERS,
    WARNING_TARGETS,
    Runner,
    assert_kernels_compile_warning_free,
    assert_matches_tflm,
    named_runner_fixture,
)

from tinymeter.models.builders import single_op_model, tensor
from tinymeter.models.tflite import TensorType

pytest.importorskip("tflite_micro")

log = logging.getLogger(__name__)

F32 = TensorType.FLOAT32
N_HOST = 8
RUNNERS = REFERENCE_RUNNERS
#: LOG: ours is correctly rounded, glibc's logf is within 0.82 ULP of the truth.
MAX_ULP = {"LOG": 1}


runner = named_runner_fixture(RUNNERS)


def _inputs(op: str, shape: tuple[int, ...], seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if op == "EXP":
        wide = rng.uniform(-110, 95, n)
        near = rng.standard_normal(n) * 3
    elif op == "L2_NORMALIZATION":
        wide = rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 8)
        near = rng.standard_normal(n)
    else:  # positive inputs over many decades, subnormals, exact squares, zero
        wide = 10.0 ** rng.uniform(-44, 38, n)
        near = rng.integers(0, 1000, n).astype(np.float64) ** 2 / 64.0
    special = np.array([0.0, 1.0, 2.0, 1e-45, 3e-39, 3.4e38, 0.5, 4.0], np.float64)
    near[: min(n, len(special))] = special[: min(n, len(special))]
    return [[wide.astype(np.float32).reshape(shape)], [near.astype(np.float32).reshape(shape)]]


@pytest.mark.parametrize("seed", range(N_HOST))
@pytest.mark.parametrize("op", ["EXP", "LOG", "SQRT", "RSQRT", "L2_NORMALIZATION"])
def test_math_f32(runner: tuple[str, Runner], op: str, seed: int) -> None:
    name, run = runner
    if name != "host" and seed >= 2:
        pytest.skip("emulated runners take the first cases only")
    rng = np.random.default_rng(80_000 + seed)
    shape = tuple(int(v) for v in rng.integers(1, 9, size=1 + seed % 3)) if seed else (64,)
    blob = single_op_model(op, [tensor("x", shape, F32)], [tensor("y", shape, F32)])
    inputs = _inputs(op, shape, seed)
    assert_matches_tflm(blob, inputs, run(blob, inputs), {"op": op, "shape": shape},
                        MAX_ULP.get(op, 0))


@pytest.mark.parametrize("seed", range(N_HOST))
def test_l2_normalization_s8(runner: tuple[str, Runner], seed: int) -> None:
    """int8 L2_NORMALIZATION: TFLM's fixed-point Newton inverse square root, rows from
    1 to 300 values, any input zero point, all-equal rows (norm 0 and 1)."""
    from tinymeter.models.builders import int8_tensor

    name, run = runner
    if name != "host" and seed >= 2:
        pytest.skip("emulated runners take the first cases only")
    rng = np.random.default_rng(81_000 + seed)
    depth = int(rng.integers(1, 300)) if seed % 2 else int(rng.integers(1, 8))
    shape = (*(int(v) for v in rng.integers(1, 4, size=seed % 3)), depth)
    zp = int(rng.integers(-128, 128))
    blob = single_op_model("L2_NORMALIZATION",
                           [int8_tensor("x", shape, 0.05, zp)], [int8_tensor("y", shape, 1 / 128, 0)])
    inputs = [[rng.integers(-128, 128, shape).astype(np.int8)],
              [np.full(shape, zp, np.int8)],
              [np.full(shape, max(-128, min(127, zp + 1)), np.int8)],
              [rng.integers(-128, 128, shape).astype(np.int8) // 16]]
    assert_matches_tflm(blob, inputs, run(blob, inputs), {"shape": shape, "zp": zp})


@pytest.mark.parametrize("seed", range(N_HOST))
def test_rsqrt_s8_every_valid_input(runner: tuple[str, Runner], seed: int) -> None:
    """int8 RSQRT (a host-computed table of TFLM's integer arithmetic) for every input at
    or above the zero point (TFLM fails an inference with a smaller one)."""
    from tinymeter.models.builders import int8_tensor

    name, run = runner
    if name != "host" and seed >= 2:
        pytest.skip("emulated runners take the first cases only")
    rng = np.random.default_rng(82_000 + seed)
    s_in, s_out = (float(np.float32(10.0 ** rng.uniform(-4, 1.5))) for _ in range(2))
    z_in, z_out = int(rng.integers(-128, 100)), int(rng.integers(-128, 128))
    blob = single_op_model("RSQRT", [int8_tensor("x", (256,), s_in, z_in)],
                           [int8_tensor("y", (256,), s_out, z_out)])
    inputs = [[np.maximum(np.arange(-128, 128), z_in).astype(np.int8)]]
    assert_matches_tflm(blob, inputs, run(blob, inputs), {"q": (s_in, z_in, s_out, z_out)})


@pytest.mark.parametrize("target", sorted(WARNING_TARGETS))
def test_kernels_compile_warning_free(tmp_path: Path, target: str) -> None:
    assert_kernels_compile_warning_free(tmp_path, target, ("unary_math.c",))
