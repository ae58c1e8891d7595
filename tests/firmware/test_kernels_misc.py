"""QUANTIZE, DEQUANTIZE, CONCATENATION, PAD, MEAN, MUL, LOGISTIC, TANH, HARD_SWISH
against tflite-micro, bit for bit.

Why: models with float I/O start with QUANTIZE and end with DEQUANTIZE, and
MobileNet-style and sequence models use the rest; each must compute exactly what
TFLM computes or the firmware is measuring a different network. Every case is a
random single-op model (int8 with random quantization, and float32 where the op
has a float kernel in TFLM) run in the tflite-micro interpreter and through our
runtime on each runner in ``RUNNERS`` (host build, emulated M0+/M4/M7 with the
reference kernels); outputs must be identical. Prepare-time rejections of TFLM
(int8 CONCATENATION with mismatched quantization, LOGISTIC output zero point) are
checked to be rejections here too.
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
    check,
    named_runner_fixture,
    random_scale,
)

from tinymeter.core.errors import UnsupportedModelError
from tinymeter.firmware import quant
from tinymeter.firmware.codegen import generate
from tinymeter.models.builders import int8_tensor, run_tflm, single_op_model, tensor
from tinymeter.models.tflite import TensorType, parse_tflite

pytest.importorskip("tflite_micro")

log = logging.getLogger(__name__)

F32 = TensorType.FLOAT32
I32 = TensorType.INT32

#: Random cases per op on the host runner; emulated runners take the first N_EMU.
N_HOST = 16
N_EMU = 3
ACTIVATIONS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]


# --------------------------------------------------------------------------- runners

RUNNERS = REFERENCE_RUNNERS


runner = named_runner_fixture(RUNNERS)


# --------------------------------------------------------------------------- case builders


def _zp(rng: np.random.Generator) -> int:
    return int(rng.integers(-128, 128))


def _shape(rng: np.random.Generator, rank: int, hi: int = 6) -> tuple[int, ...]:
    return tuple(int(v) for v in rng.integers(1, hi, size=rank))


def quantize_case(seed: int) -> Case:
    """QUANTIZE float -> int8 (odd seeds) or int8 -> int8 requantization (even seeds)."""
    rng = np.random.default_rng(1000 + seed)
    shape = _shape(rng, 1 + seed % 4)
    y = int8_tensor("y", shape, random_scale(rng, -2, 0), _zp(rng))
    if seed % 2:
        x = tensor("x", shape, F32)
        return Case(single_op_model("QUANTIZE", [x], [y]), [shape], {"shape": shape},
                    scale=float(rng.uniform(0.1, 100)), dtype=np.float32)
    # Ratios on both sides of one (left and right shifts), sometimes equal scales.
    s_in = float(y.quantization.scale[0]) if seed % 8 == 0 else random_scale(rng, -3, 0)
    x = int8_tensor("x", shape, s_in, _zp(rng))
    return Case(single_op_model("QUANTIZE", [x], [y]), [shape], {"shape": shape, "in": s_in})


def dequantize_case(seed: int) -> Case:
    """DEQUANTIZE int8 -> float."""
    rng = np.random.default_rng(2000 + seed)
    shape = _shape(rng, 1 + seed % 4)
    x = int8_tensor("x", shape, random_scale(rng, -4, 1), _zp(rng))
    y = tensor("y", shape, F32)
    return Case(single_op_model("DEQUANTIZE", [x], [y]), [shape], {"shape": shape})


def concat_case(seed: int) -> Case:
    """CONCATENATION of 1-4 inputs on any (also negative) axis, int8 or float."""
    rng = np.random.default_rng(3000 + seed)
    rank = 1 + seed % 4
    base = _shape(rng, rank)
    axis = int(rng.integers(-rank, rank))
    n = 1 + int(rng.integers(0, 4))
    shapes = []
    for _ in range(n):
        s = list(base)
        s[axis] = int(rng.integers(1, 5))
        shapes.append(tuple(s))
    out = list(base)
    out[axis] = sum(s[axis] for s in shapes)
    is_float = seed % 3 == 2
    q = (random_scale(rng), _zp(rng))
    mk = (lambda name, s: tensor(name, s, F32)) if is_float else \
        (lambda name, s: int8_tensor(name, s, *q))
    xs = [mk(f"x{i}", s) for i, s in enumerate(shapes)]
    blob = single_op_model("CONCATENATION", xs, [mk("y", tuple(out))], {"axis": axis})
    return Case(blob, shapes, {"shapes": shapes, "axis": axis},
                dtype=np.float32 if is_float else np.int8)


def pad_case(seed: int) -> Case:
    """PAD / PADV2, rank 1-5, int8 (pad = output zero point or a constant) or float."""
    rng = np.random.default_rng(4000 + seed)
    rank = 1 + seed % 5
    shape = _shape(rng, rank, 5)
    pads = rng.integers(0, 3, size=(rank, 2)).astype(np.int32)
    out = tuple(int(d + a + b) for d, (a, b) in zip(shape, pads))
    is_float = seed % 3 == 1
    v2 = seed % 4 == 3
    p = tensor("p", (rank, 2), I32, data=pads)
    if is_float:
        x, y = tensor("x", shape, F32), tensor("y", out, F32)
        c = tensor("c", (), F32, data=np.array(rng.standard_normal(), np.float32))
    else:
        q = (random_scale(rng), _zp(rng))
        x, y = int8_tensor("x", shape, *q), int8_tensor("y", out, *q)
        c = int8_tensor("c", (), *q, data=np.array(int(rng.integers(-128, 128)), np.int8))
    opcode = "PADV2" if v2 else "PAD"
    blob = single_op_model(opcode, [x, p, c] if v2 else [x, p], [y])
    return Case(blob, [shape], {"op": opcode, "shape": shape, "pads": pads.tolist()},
                dtype=np.float32 if is_float else np.int8)


def mean_case(seed: int) -> Case:
    """MEAN int8: 1-2 axes, keep_dims, same quantization (integer mean) or requantized."""
    rng = np.random.default_rng(5000 + seed)
    rank = 2 + seed % 3
    shape = _shape(rng, rank)
    if seed % 5 == 0 and rank == 4:
        axes = [1, 2]
    else:
        axes = sorted(int(a) for a in rng.choice(rank, size=1 + seed % 2, replace=False))
        axes = [a - rank if rng.random() < 0.3 else a for a in axes]
    keep = seed % 2 == 0
    res = {a % rank for a in axes}
    out = tuple(1 if d in res else n for d, n in enumerate(shape)) if keep else \
        tuple(n for d, n in enumerate(shape) if d not in res)
    qin = (random_scale(rng), _zp(rng))
    qout = qin if seed % 3 == 0 else (random_scale(rng), _zp(rng))
    x, y = int8_tensor("x", shape, *qin), int8_tensor("y", out, *qout)
    ax = tensor("axis", (len(axes),), I32, data=np.array(axes, np.int32))
    blob = single_op_model("MEAN", [x, ax], [y], {"keep_dims": keep})
    return Case(blob, [shape], {"shape": shape, "axes": axes, "keep": keep,
                                "same_q": qin == qout})


def mul_case(seed: int) -> Case:
    """MUL int8 with up to 4-D broadcasting and fused activations."""
    rng = np.random.default_rng(6000 + seed)
    rank = 1 + seed % 4
    out = _shape(rng, rank, 5)
    a = tuple(d if rng.random() < 0.6 else 1 for d in out)
    b = tuple(d if rng.random() < 0.5 else 1 for d in out)[int(rng.integers(0, rank)):]
    if seed % 5 == 0:
        a = b = out
    full = tuple(max(p, q) for p, q in zip(a, (1,) * (rank - len(b)) + b))
    s1, s2 = random_scale(rng, -2, 0), random_scale(rng, -2, 0)
    so = float(np.float32(s1 * s2 * 128 * 10.0 ** rng.uniform(-1, 1)))
    xa, xb = int8_tensor("a", a, s1, _zp(rng)), int8_tensor("b", b, s2, _zp(rng))
    y = int8_tensor("y", full, so, _zp(rng))
    opts = {"fused_activation_function": ACTIVATIONS[seed % 4]}
    return Case(single_op_model("MUL", [xa, xb], [y], opts), [a, b],
                dict(opts, shapes=(a, b, full)))


def unary_case(seed: int, opcode: str) -> Case:
    """LOGISTIC / TANH / HARD_SWISH int8 with the output quantization the converter uses."""
    rng = np.random.default_rng(7000 + seed + 100 * len(opcode))
    shape = _shape(rng, 1 + seed % 4, 8)
    in_scale = random_scale(rng, -2.5, -0.5)
    x = int8_tensor("x", shape, in_scale, _zp(rng))
    if opcode == "LOGISTIC":
        y = int8_tensor("y", shape, 1.0 / 256, -128)
    elif opcode == "TANH":
        y = int8_tensor("y", shape, 1.0 / 128, 0)
    else:
        y = int8_tensor("y", shape, float(np.float32(in_scale * rng.uniform(0.3, 1.2))),
                        _zp(rng))
    return Case(single_op_model(opcode, [x], [y]), [shape], {"shape": shape, "in": in_scale})


# --------------------------------------------------------------------------- bit-exact cases


@pytest.mark.parametrize("seed", range(N_HOST))
def test_quantize(runner: tuple[str, Runner], seed: int) -> None:
    check(quantize_case(seed), runner, seed)


@pytest.mark.parametrize("seed", range(N_HOST))
def test_dequantize(runner: tuple[str, Runner], seed: int) -> None:
    check(dequantize_case(seed), runner, seed)


@pytest.mark.parametrize("seed", range(N_HOST))
def test_concatenation(runner: tuple[str, Runner], seed: int) -> None:
    check(concat_case(seed), runner, seed)


@pytest.mark.parametrize("seed", range(N_HOST))
def test_pad(runner: tuple[str, Runner], seed: int) -> None:
    check(pad_case(seed), runner, seed)


@pytest.mark.parametrize("seed", range(N_HOST))
def test_mean_s8(runner: tuple[str, Runner], seed: int) -> None:
    check(mean_case(seed), runner, seed)


@pytest.mark.parametrize("seed", range(N_HOST))
def test_mul_s8(runner: tuple[str, Runner], seed: int) -> None:
    check(mul_case(seed), runner, seed)


@pytest.mark.parametrize("opcode", ["LOGISTIC", "TANH", "HARD_SWISH"])
@pytest.mark.parametrize("seed", range(N_HOST))
def test_activation_s8(runner: tuple[str, Runner], seed: int, opcode: str) -> None:
    check(unary_case(seed, opcode), runner, seed)


def test_activation_s8_every_input(runner: tuple[str, Runner]) -> None:
    """All 256 int8 inputs through LOGISTIC, TANH and HARD_SWISH (saturation radius,
    zero, both signs) for a few input scales."""
    for opcode in ("LOGISTIC", "TANH", "HARD_SWISH"):
        for k, (s, z) in enumerate([(0.1, 3), (0.02, -20), (0.5, 0)]):
            x = int8_tensor("x", (256,), s, z)
            y = {"LOGISTIC": int8_tensor("y", (256,), 1.0 / 256, -128),
                 "TANH": int8_tensor("y", (256,), 1.0 / 128, 0)}.get(
                     opcode, int8_tensor("y", (256,), s * 0.7, -7))
            case = Case(single_op_model(opcode, [x], [y]), [(256,)], {"op": opcode, "k": k})
            name, run = runner
            inp = [[np.arange(-128, 128, dtype=np.int8)]]
            got = run(case.blob, inp)[0][0]
            ref = run_tflm(case.blob, inp[0])[0]
            assert np.array_equal(got, ref), (name, case.desc, np.flatnonzero(got != ref)[:5])


# --------------------------------------------------------------------------- rejections


def test_concatenation_rejects_mismatched_int8_quantization() -> None:
    """TFLM refuses int8 CONCATENATION whose inputs differ from the output's quantization."""
    a, b = int8_tensor("a", (1, 3), 0.1, 5), int8_tensor("b", (1, 2), 0.05, -3)
    blob = single_op_model("CONCATENATION", [a, b], [int8_tensor("y", (1, 5), 0.1, 5)],
                           {"axis": 1})
    with pytest.raises(UnsupportedModelError, match="quantization"):
        generate(parse_tflite(blob))


def test_logistic_rejects_output_zero_point() -> None:
    x, y = int8_tensor("x", (4,), 0.1, 0), int8_tensor("y", (4,), 1.0 / 256, 0)
    with pytest.raises(UnsupportedModelError, match="zero point"):
        generate(parse_tflite(single_op_model("LOGISTIC", [x], [y])))


def test_hard_swish_params_match_tflm_formula() -> None:
    """The int16 multipliers come from float32 scale ratios, then Q31 -> Q15 rounding."""
    hs = quant.hard_swish_params(0.05, 0.04)
    m, e = quant.quantize_multiplier(float(np.float32(1 / 128) * np.float32(0.05)
                                           / np.float32(0.04)))
    assert hs.output_multiplier_exponent == e
    assert hs.output_multiplier_fixedpoint_int16 == (m + (1 << 15)) >> 16
    assert quant.downscale_int32_to_int16_multiplier(2**31 - 1) == 2**15 - 1


@pytest.mark.parametrize("target", sorted(WARNING_TARGETS))
def test_kernels_compile_warning_free(tmp_path: Path, target: str) -> None:
    """This family's kernel files build with -Wall -Wextra -Werror on host and every core."""
    assert_kernels_compile_warning_free(tmp_path, target, (
        "quantize.c", "concat.c", "pad.c", "mean.c", "mul.c", "sigmoid.c", "hard_swish.c"))
