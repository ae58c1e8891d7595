"""float32 kernels against tflite-micro, bit for bit, plus float models end to end.

Why: float models are measured too, and a float kernel that adds in a different
order, contracts a*b+c into an FMA, or clamps with different NaN/-0.0 rules gives
different bits than TFLM. Every case builds a random single-op float model, runs it
in the tflite-micro interpreter (TFLM's reference float kernels, x86 glibc) and
through our runtime on each runner in ``RUNNERS`` (host build; emulated M0+ with
soft-float, M4 with a single-precision FPU, M7), and compares the output bits.

Exactness: every kernel is required to be bit-identical except TANH, whose
``std::tanh`` comes from the C library: the runtime's tanh is correctly rounded in
practice, glibc's (fdlibm) tanhf is not always, so TANH outputs may differ by up to
2 ULP (asserted). SOFTMAX and LOGISTIC use exp, which the runtime computes with
glibc's own expf algorithm, so they are asserted bit-exact like the rest.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kernel_check import (
    REFERENCE_RUNNERS,
    WARNING_TARGETS,
    Runner,
    assert_kernels_compile_warning_free,
    check,
    named_runner_fixture,
)
from kernel_check import Case as KernelCase

from tinymeter.firmware import quant
from tinymeter.models.builders import run_tflm, single_op_model, tensor
from tinymeter.models.tflite import TensorType, parse_tflite

pytest.importorskip("tflite_micro")

log = logging.getLogger(__name__)

F32 = TensorType.FLOAT32

#: Random cases per op on the host runner; the emulated runners take the first
#: N_EMU of them (each emulated case costs a firmware link plus emulation).
N_HOST = 16
N_EMU = 3
ACTIVATIONS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]


# --------------------------------------------------------------------------- runners

RUNNERS = REFERENCE_RUNNERS


runner = named_runner_fixture(RUNNERS)


def Case(blob: bytes, input_shapes: list[tuple[int, ...]], desc: dict[str, Any] | None = None,
         scale: float = 2.0) -> KernelCase:
    """A float32 case (inputs normal(0, scale) and a wide normal(0, 30))."""
    return KernelCase(blob, input_shapes, desc or {}, scale=scale, dtype=np.float32, wide=30.0)


# --------------------------------------------------------------------------- case builders


def _const(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> Any:
    return tensor(name, shape, F32, data=rng.standard_normal(shape).astype(np.float32))


def _geometry(rng: np.random.Generator, seed: int, dilate: bool) -> dict[str, Any]:
    kh, kw = [(1, 1), (3, 3), (5, 5), (2, 3), (3, 1)][seed % 5]
    sh, sw = (int(v) for v in rng.integers(1, 3, size=2))
    dh, dw = (int(v) for v in rng.integers(1, 3, size=2)) if dilate else (1, 1)
    padding = "SAME" if seed % 2 == 0 else "VALID"
    in_h = int(rng.integers((kh - 1) * dh + 1, (kh - 1) * dh + 8))
    in_w = int(rng.integers((kw - 1) * dw + 1, (kw - 1) * dw + 8))
    pad = quant.compute_padding_height_width(sh, sw, dh, dw, in_h, in_w, kh, kw, padding)
    return {"kh": kh, "kw": kw, "sh": sh, "sw": sw, "dh": dh, "dw": dw, "padding": padding,
            "in_h": in_h, "in_w": in_w, "out_h": pad.out_height, "out_w": pad.out_width,
            "act": ACTIVATIONS[int(rng.integers(0, 4))]}


def conv_case(seed: int) -> Case:
    """Random float CONV_2D: kernel, stride, dilation, padding, groups, bias, activation."""
    rng = np.random.default_rng(100 + seed)
    g = _geometry(rng, seed, dilate=True)
    batches = int(rng.integers(1, 3))
    groups = 2 if seed % 6 == 5 else 1
    f_in = int(rng.integers(1, 6))
    in_ch = f_in * groups
    out_ch = groups * int(rng.integers(1, 5))
    x = tensor("x", (batches, g["in_h"], g["in_w"], in_ch), F32)
    w = _const(rng, "w", (out_ch, g["kh"], g["kw"], f_in))
    b = _const(rng, "b", (out_ch,)) if seed % 3 else None
    y = tensor("y", (batches, g["out_h"], g["out_w"], out_ch), F32)
    opts = {"padding": g["padding"], "stride_h": g["sh"], "stride_w": g["sw"],
            "dilation_h_factor": g["dh"], "dilation_w_factor": g["dw"],
            "fused_activation_function": g["act"]}
    operands = [x, w, b] if b is not None else [x, w]
    return Case(single_op_model("CONV_2D", operands, [y], opts), [x.shape], dict(opts, **g))


def dwconv_case(seed: int) -> Case:
    """Random float DEPTHWISE_CONV_2D with depth multiplier 1 or 2."""
    rng = np.random.default_rng(200 + seed)
    g = _geometry(rng, seed, dilate=True)
    dm = 1 + seed % 2
    in_ch = int(rng.integers(1, 6))
    x = tensor("x", (1, g["in_h"], g["in_w"], in_ch), F32)
    w = _const(rng, "w", (1, g["kh"], g["kw"], in_ch * dm))
    b = _const(rng, "b", (in_ch * dm,))
    y = tensor("y", (1, g["out_h"], g["out_w"], in_ch * dm), F32)
    opts = {"padding": g["padding"], "stride_h": g["sh"], "stride_w": g["sw"],
            "dilation_h_factor": g["dh"], "dilation_w_factor": g["dw"], "depth_multiplier": dm,
            "fused_activation_function": g["act"]}
    return Case(single_op_model("DEPTHWISE_CONV_2D", [x, w, b], [y], opts), [x.shape],
                dict(opts, **g))


def fc_case(seed: int) -> Case:
    """Random float FULLY_CONNECTED: batches, long and short accumulations, bias or not."""
    rng = np.random.default_rng(300 + seed)
    accum = int(rng.integers(1, 200))
    out_d = int(rng.integers(1, 12))
    batches = int(rng.integers(1, 4))
    x = tensor("x", (batches, accum), F32)
    w = _const(rng, "w", (out_d, accum))
    b = _const(rng, "b", (out_d,)) if seed % 3 else None
    y = tensor("y", (batches, out_d), F32)
    opts = {"fused_activation_function": ACTIVATIONS[seed % 4]}
    operands = [x, w, b] if b is not None else [x, w]
    return Case(single_op_model("FULLY_CONNECTED", operands, [y], opts), [x.shape],
                dict(opts, accum=accum, out=out_d, batches=batches))


def pool_case(seed: int, opcode: str) -> Case:
    """Random float AVERAGE_POOL_2D / MAX_POOL_2D (padding edges with partial windows)."""
    rng = np.random.default_rng(400 + seed + (0 if opcode == "MAX_POOL_2D" else 1000))
    g = _geometry(rng, seed, dilate=False)
    ch = int(rng.integers(1, 6))
    x = tensor("x", (1, g["in_h"], g["in_w"], ch), F32)
    y = tensor("y", (1, g["out_h"], g["out_w"], ch), F32)
    opts = {"padding": g["padding"], "stride_h": g["sh"], "stride_w": g["sw"],
            "filter_height": g["kh"], "filter_width": g["kw"],
            "fused_activation_function": g["act"]}
    return Case(single_op_model(opcode, [x], [y], opts), [x.shape], dict(opts, **g))


def softmax_case(seed: int) -> Case:
    """Random float SOFTMAX: rank 1-4, beta, wide and narrow logits."""
    rng = np.random.default_rng(500 + seed)
    shape = (*(int(v) for v in rng.integers(1, 6, size=1 + seed % 3)), int(rng.integers(1, 40)))
    beta = float(np.float32(rng.uniform(0.3, 2.5)))
    x = tensor("x", shape, F32)
    y = tensor("y", shape, F32)
    return Case(single_op_model("SOFTMAX", [x], [y], {"beta": beta}), [shape],
                {"shape": shape, "beta": beta}, scale=float(rng.uniform(0.5, 8)))


def _broadcast_shapes(rng: np.random.Generator, seed: int) -> tuple[tuple[int, ...], ...]:
    rank = 1 + seed % 4
    out = tuple(int(v) for v in rng.integers(1, 5, size=rank))
    if seed % 5 == 0:
        return out, out, out
    a = tuple(d if rng.random() < 0.6 else 1 for d in out)
    b = tuple(d if rng.random() < 0.5 else 1 for d in out)
    b = b[int(rng.integers(0, rank)):]  # lower-rank operand
    full = tuple(max(p, q) for p, q in zip(a, (1,) * (rank - len(b)) + b))
    return a, b, full


def binary_case(seed: int, opcode: str) -> Case:
    """Random float ADD / MUL with numpy broadcasting and a fused activation."""
    rng = np.random.default_rng(600 + seed + (0 if opcode == "ADD" else 1000))
    sa, sb, so = _broadcast_shapes(rng, seed)
    a, b, y = tensor("a", sa, F32), tensor("b", sb, F32), tensor("y", so, F32)
    opts = {"fused_activation_function": ACTIVATIONS[seed % 4]}
    return Case(single_op_model(opcode, [a, b], [y], opts), [sa, sb],
                dict(opts, shapes=(sa, sb, so)))


def mean_case(seed: int) -> Case:
    """Random float MEAN: rank 1-4 (5-D too), 1-2 axes incl. negative/duplicate, keep_dims."""
    rng = np.random.default_rng(700 + seed)
    rank = 1 + seed % 4 if seed % 7 else 4
    shape = tuple(int(v) for v in rng.integers(1, 6, size=rank))
    if seed % 7 == 0:
        axes = [1, 2]  # TFLM's 4-D special case (with keep_dims on even seeds)
    else:
        n = min(rank, 1 + seed % 2)
        axes = sorted(int(a) for a in rng.choice(rank, size=n, replace=False))
        axes = [a - rank if rng.random() < 0.3 else a for a in axes]
        if seed % 5 == 1:
            axes = axes + axes[:1]
    keep = seed % 2 == 0
    res = {a % rank for a in axes}
    out = tuple(1 if d in res else n for d, n in enumerate(shape)) if keep else \
        tuple(n for d, n in enumerate(shape) if d not in res)
    x = tensor("x", shape, F32)
    ax = tensor("axis", (len(axes),), TensorType.INT32, data=np.array(axes, np.int32))
    y = tensor("y", out, F32)
    return Case(single_op_model("MEAN", [x, ax], [y], {"keep_dims": keep}), [shape],
                {"shape": shape, "axes": axes, "keep_dims": keep})


def unary_case(seed: int, opcode: str) -> Case:
    """Random float LOGISTIC / TANH / HARD_SWISH over a wide input range."""
    rng = np.random.default_rng(800 + seed + 1000 * len(opcode))
    shape = tuple(int(v) for v in rng.integers(1, 8, size=1 + seed % 4))
    x, y = tensor("x", shape, F32), tensor("y", shape, F32)
    return Case(single_op_model(opcode, [x], [y], {}), [shape], {"shape": shape},
                scale=float(rng.uniform(1, 12)))


# --------------------------------------------------------------------------- bit-exact cases


@pytest.mark.parametrize("seed", range(N_HOST))
def test_conv2d_f32(runner: tuple[str, Runner], seed: int) -> None:
    check(conv_case(seed), runner, seed)


@pytest.mark.parametrize("seed", range(N_HOST))
def test_depthwise_conv2d_f32(runner: tuple[str, Runner], seed: int) -> None:
    check(dwconv_case(seed), runner, seed)


@pytest.mark.parametrize("seed", range(N_HOST))
def test_fully_connected_f32(runner: tuple[str, Runner], seed: int) -> None:
    check(fc_case(seed), runner, seed)


@pytest.mark.parametrize("opcode", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("seed", range(N_HOST))
def test_pool_f32(runner: tuple[str, Runner], seed: int, opcode: str) -> None:
    check(pool_case(seed, opcode), runner, seed)


@pytest.mark.parametrize("seed", range(N_HOST))
def test_softmax_f32(runner: tuple[str, Runner], seed: int) -> None:
    check(softmax_case(seed), runner, seed)


@pytest.mark.parametrize("opcode", ["ADD", "MUL"])
@pytest.mark.parametrize("seed", range(N_HOST))
def test_binary_f32(runner: tuple[str, Runner], seed: int, opcode: str) -> None:
    check(binary_case(seed, opcode), runner, seed)


@pytest.mark.parametrize("seed", range(N_HOST))
def test_mean_f32(runner: tuple[str, Runner], seed: int) -> None:
    check(mean_case(seed), runner, seed)


@pytest.mark.parametrize("opcode", ["LOGISTIC", "HARD_SWISH"])
@pytest.mark.parametrize("seed", range(N_HOST))
def test_activation_f32(runner: tuple[str, Runner], seed: int, opcode: str) -> None:
    check(unary_case(seed, opcode), runner, seed)


@pytest.mark.parametrize("seed", range(N_HOST))
def test_tanh_f32_within_2ulp(runner: tuple[str, Runner], seed: int) -> None:
    """std::tanh differs between C libraries; ours vs glibc's is asserted within 2 ULP."""
    check(unary_case(seed, "TANH"), runner, seed, max_ulp=2)


def test_reshape_f32(runner: tuple[str, Runner]) -> None:
    """RESHAPE is a byte copy, so float tensors go through the type-agnostic kernel."""
    x, y = tensor("x", (2, 3, 4), F32), tensor("y", (6, 4), F32)
    shape = tensor("s", (2,), TensorType.INT32, data=np.array([6, 4], np.int32))
    case = Case(single_op_model("RESHAPE", [x, shape], [y], {"new_shape": [6, 4]}), [x.shape])
    check(case, runner, 0)


def test_activation_clamps_infinity_like_tflm(runner: tuple[str, Runner]) -> None:
    """No activation means [-FLT_MAX, FLT_MAX] in TFLM: an overflowing sum is clamped."""
    a, b, y = (tensor(n, (4,), F32) for n in "aby")
    case = Case(single_op_model("ADD", [a, b], [y], {}), [(4,), (4,)])
    big = np.array([3e38, -3e38, 1.0, 3e38], np.float32)
    inputs = [[big, big]]
    name, run = runner
    got = run(case.blob, inputs)[0][0]
    ref = run_tflm(case.blob, inputs[0])[0]
    assert got.tobytes() == ref.tobytes(), (name, got, ref)
    assert math.isfinite(float(got[0]))


# --------------------------------------------------------------------------- whole models


@pytest.fixture(scope="module")
def keras_float_io_blob() -> bytes:
    """A small Keras CNN converted once per module to int8 with float32 I/O."""
    pytest.importorskip("tensorflow")
    from tinymeter.models.convert import convert_int8, import_tf

    import_tf()
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 2), batch_size=1)
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    h = keras.layers.DepthwiseConv2D(3, padding="same")(h)
    h = keras.layers.AveragePooling2D(2)(h)
    h = keras.layers.Flatten()(h)
    out = keras.layers.Dense(5, activation="softmax")(h)
    return convert_int8(keras.Model(inp, out), io_dtype="float32")


@pytest.mark.tf
def test_keras_float_io_int8_model_end_to_end(runner: tuple[str, Runner],
                                              keras_float_io_blob: bytes) -> None:
    """A Keras model converted to int8 with float32 input/output (QUANTIZE first,
    DEQUANTIZE last) runs bit-exact end to end."""
    blob = keras_float_io_blob
    ops = [o.opcode for o in parse_tflite(blob).main.operators]
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE", ops
    rng = np.random.default_rng(9)
    inputs = [[rng.standard_normal((1, 8, 8, 2)).astype(np.float32)] for _ in range(3)]
    _, run = runner
    got = run(blob, inputs)
    for inp_row, out in zip(inputs, got):
        ref = run_tflm(blob, inp_row)[0]
        assert out[0].dtype == np.float32 and out[0].tobytes() == ref.tobytes(), (out[0], ref)


@pytest.mark.tf
def test_lenet_float32_end_to_end(runner: tuple[str, Runner]) -> None:
    """The float32 LeNet from the zoo runs bit-exact end to end."""
    pytest.importorskip("tensorflow")
    from tinymeter.models.zoo import build_tflite

    blob = Path(build_tflite("lenet", quantize="float32")).read_bytes()
    model = parse_tflite(blob)
    x = model.main.tensors[model.main.inputs[0]]
    assert x.dtype == F32
    rng = np.random.default_rng(4)
    inputs = [[rng.uniform(0, 1, x.shape).astype(np.float32)] for _ in range(2)]
    _, run = runner
    got = run(blob, inputs)
    for inp_row, out in zip(inputs, got):
        ref = run_tflm(blob, inp_row)[0]
        assert out[0].tobytes() == ref.tobytes(), (out[0], ref)


@pytest.mark.parametrize("target", sorted(WARNING_TARGETS))
def test_kernels_compile_warning_free(tmp_path: Path, target: str) -> None:
    """The float kernel files build with -Wall -Wextra -Werror on host and every core."""
    assert_kernels_compile_warning_free(tmp_path, target, (
        "conv2d_f32.c", "depthwise_conv2d_f32.c", "fully_connected_f32.c", "pooling_f32.c",
        "softmax_f32.c", "binary_f32.c", "activations_f32.c", "mean_f32.c", "math_f32.c"))
