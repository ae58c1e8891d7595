"""RELU, RELU6, LEAKY_RELU and PRELU, int8 and float32, against tflite-micro bit for bit.

Why: Keras models use standalone activation layers (ReLU after BatchNorm folding,
LeakyReLU/PReLU in GAN-ish and audio models). The int8 unary ones run through a
host-computed lookup table, so the property that matters is the host's replica of
TFLM's integer arithmetic: it is checked on every one of the 256 inputs for random
quantizations; PRELU runs TFLM's arithmetic on the device with broadcast alphas.
Host build and emulated M0+/M4/M7 firmware.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from kernel_check import (
    REFERENCE_RUNNERS,
    WARNING_TARGETS,
    Case,
    Runner,
    assert_kernels_compile_warning_free,
    assert_matches_tflm,
    check,
    named_runner_fixture,
    random_scale,
)

from tinymeter.firmware.lower.activations import multiply_by_quantized_multiplier
from tinymeter.models.builders import int8_tensor, single_op_model, tensor
from tinymeter.models.tflite import TensorType

pytest.importorskip("tflite_micro")

log = logging.getLogger(__name__)

F32 = TensorType.FLOAT32
N_HOST = 12
RUNNERS = REFERENCE_RUNNERS


runner = named_runner_fixture(RUNNERS)


def _shape(rng: np.random.Generator, rank: int, hi: int = 6) -> tuple[int, ...]:
    return tuple(int(v) for v in rng.integers(1, hi, size=rank))


def unary_case(op: str, seed: int) -> Case:
    """Odd seeds float32 (wide inputs around 0 and 6), even seeds int8 over all 256
    inputs with random input/output quantization."""
    rng = np.random.default_rng(20_000 + 97 * len(op) + seed)
    alpha = float(np.float32(rng.choice([0.01, 0.2, 0.3, -0.5, 1.7]) if seed % 3 else 0.1))
    opts = {"alpha": alpha} if op == "LEAKY_RELU" else {}
    if seed % 2:
        shape = _shape(rng, 1 + seed % 4)
        blob = single_op_model(op, [tensor("x", shape, F32)], [tensor("y", shape, F32)], opts)
        return Case(blob, [shape], dict(opts, op=op, shape=shape), scale=4.0,
                    dtype=np.float32)
    s_in, z_in = random_scale(rng, -2, 0), int(rng.integers(-128, 128))
    if op == "RELU6" or seed % 4 == 0:
        s_out, z_out = s_in, z_in
    else:
        s_out, z_out = random_scale(rng, -2, 0), int(rng.integers(-128, 128))
    x = int8_tensor("x", (256,), s_in, z_in)
    y = int8_tensor("y", (256,), s_out, z_out)
    desc = dict(opts, op=op, q=(s_in, z_in, s_out, z_out))
    return Case(single_op_model(op, [x], [y], opts), [(256,)], desc)


def _every_int8(case: Case) -> list[list[np.ndarray]]:
    return [[np.arange(-128, 128, dtype=np.int8)]]


@pytest.mark.parametrize("seed", range(N_HOST))
@pytest.mark.parametrize("op", ["RELU", "RELU6", "LEAKY_RELU"])
def test_unary_bit_exact(runner: tuple[str, Runner], op: str, seed: int) -> None:
    case = unary_case(op, seed)
    name, run = runner
    if name != "host" and seed >= 3:
        pytest.skip("emulated runners take the first cases only")
    inputs = case.inputs(seed) if case.dtype == np.float32 else _every_int8(case)
    assert_matches_tflm(case.blob, inputs, run(case.blob, inputs), case.desc)


def prelu_case(seed: int) -> Case:
    """PRELU with alpha per channel (the Keras layout), scalar or full, int8 or float."""
    rng = np.random.default_rng(21_000 + seed)
    rank = 1 + seed % 4
    shape = _shape(rng, rank)
    kind = seed % 3
    a_shape = shape[-1:] if kind == 0 else ((1,) if kind == 1 else shape)
    if seed % 2:
        alpha = tensor("a", a_shape, F32, data=rng.uniform(-1, 1, size=a_shape).astype(np.float32))
        blob = single_op_model("PRELU", [tensor("x", shape, F32), alpha],
                               [tensor("y", shape, F32)])
        return Case(blob, [shape], {"shape": shape, "alpha": a_shape}, dtype=np.float32)
    s_a = random_scale(rng, -3, -1)
    alpha = int8_tensor("a", a_shape, s_a, int(rng.integers(-20, 20)),
                        data=rng.integers(-128, 128, size=a_shape).astype(np.int8))
    x = int8_tensor("x", shape, random_scale(rng, -2, 0), int(rng.integers(-128, 128)))
    y = int8_tensor("y", shape, random_scale(rng, -2, 0), int(rng.integers(-128, 128)))
    blob = single_op_model("PRELU", [x, alpha], [y])
    return Case(blob, [shape], {"shape": shape, "alpha": a_shape})


@pytest.mark.parametrize("seed", range(N_HOST))
def test_prelu_bit_exact(runner: tuple[str, Runner], seed: int) -> None:
    check(prelu_case(seed), runner, seed)


def test_mbqm_replica_matches_tm_fixedpoint_edges() -> None:
    """The host's MultiplyByQuantizedMultiplier: rounding half away from zero, the
    saturating INT32_MIN case, wrapping left shifts."""
    assert multiply_by_quantized_multiplier(3, 1 << 30, -1) == 1  # 0.75 -> 1
    assert multiply_by_quantized_multiplier(-3, 1 << 30, -1) == -1
    assert multiply_by_quantized_multiplier(5, 1 << 30, -2) == 1  # 0.625 -> 1
    assert multiply_by_quantized_multiplier(-2**31, -2**31, 0) == 2**31 - 1
    assert multiply_by_quantized_multiplier(100, 1 << 30, 1) == 100


@pytest.mark.parametrize("target", sorted(WARNING_TARGETS))
def test_kernels_compile_warning_free(tmp_path: Path, target: str) -> None:
    assert_kernels_compile_warning_free(tmp_path, target, ("relu.c", "prelu.c"))
