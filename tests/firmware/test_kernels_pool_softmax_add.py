"""AVERAGE_POOL_2D / MAX_POOL_2D / SOFTMAX / ADD / RESHAPE: bit-exact against tflite-micro.

Why: latency estimates are only meaningful if the firmware computes what TFLM
computes. Every case builds a single-op model with random (seeded) shapes, options
and quantization, runs it in the tflite-micro Python interpreter and through our
runtime, and demands identical outputs. The same cases run on every runner in
``RUNNERS``: the host build, the emulated Cortex-M4 (reference kernels) and, for the
DSP kernel set, the emulated Cortex-M4 and M7 with ``optimized`` kernels.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kernel_check import (
    WARNING_TARGETS,
    Runner,
    SaturatingCase,
    assert_kernels_compile_warning_free,
    assert_matches_tflm,
    make_runner,
)

from tinymeter.core.errors import UnsupportedModelError
from tinymeter.firmware import quant
from tinymeter.firmware.codegen import generate
from tinymeter.firmware.lower import elementwise, pool
from tinymeter.firmware.lower.base import LowerContext
from tinymeter.firmware.lower.elementwise import broadcast_plan
from tinymeter.models.builders import int8_tensor, single_op_model, tensor
from tinymeter.models.tflite import Tensor, TensorType, parse_tflite

pytest.importorskip("tflite_micro")

log = logging.getLogger(__name__)


N_AVGPOOL = 40
N_MAXPOOL = 40
N_SOFTMAX = 50
N_ADD = 50
N_RESHAPE = 12
ACTIVATIONS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]

MY_KERNELS = ["pooling.c", "softmax.c", "add.c", "reshape.c"]


# --------------------------------------------------------------------------- runners


RUNNERS = ["host", "emu-m4-ref", "emu-m4-opt", "emu-m7-opt"]


@pytest.fixture(params=RUNNERS, scope="module")
def runner(request: pytest.FixtureRequest) -> Runner:
    """Each runner executes a .tflite through the tinymeter runtime: (blob, inputs) -> outputs."""
    return make_runner(request.param)


# --------------------------------------------------------------------------- cases


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A float32-representable value spread log-uniformly over [10^lo, 10^hi]."""
    return float(np.float32(10.0 ** rng.uniform(lo, hi)))


def _pool_case(opcode: str, seed: int) -> SaturatingCase:
    """Random pooling: filter 1-5, stride 1-3, SAME/VALID, batches, channels incl. > 32."""
    rng = np.random.default_rng((100 if opcode == "MAX_POOL_2D" else 200) * 1000 + seed)
    fh, fw = (int(v) for v in rng.integers(1, 6, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    padding = "SAME" if seed % 2 == 0 else "VALID"
    batches = int(rng.integers(1, 3))
    channels = int(rng.integers(1, 9)) if seed % 3 else int(rng.integers(9, 71))
    in_h = int(rng.integers(1, 13))
    in_w = int(rng.integers(1, 13))
    if padding == "VALID":
        in_h, in_w = max(in_h, fh), max(in_w, fw)
    pad = quant.compute_padding_height_width(sh, sw, 1, 1, in_h, in_w, fh, fw, padding)
    scale = _log_uniform(rng, -3, 1)
    zp = int(rng.integers(-128, 128))
    act = ACTIVATIONS[int(rng.integers(0, len(ACTIVATIONS)))]
    x = int8_tensor("x", (batches, in_h, in_w, channels), scale, zp)
    y = int8_tensor("y", (batches, pad.out_height, pad.out_width, channels), scale, zp)
    opts = {"padding": padding, "stride_h": sh, "stride_w": sw, "filter_height": fh,
            "filter_width": fw, "fused_activation_function": act}
    desc = dict(opts, input=x.shape, output=y.shape, scale=scale, zp=zp)
    return SaturatingCase(single_op_model(opcode, [x], [y], opts), [x.shape], desc)


def avgpool_case(seed: int) -> SaturatingCase:
    return _pool_case("AVERAGE_POOL_2D", seed)


def maxpool_case(seed: int) -> SaturatingCase:
    return _pool_case("MAX_POOL_2D", seed)


def softmax_output() -> tuple[float, int]:
    """The only int8 output quantization TFLM's softmax accepts."""
    return 1.0 / 256.0, -128


def softmax_case(seed: int) -> SaturatingCase:
    """Random SOFTMAX: 1-D to 4-D, beta and input scale over several decades."""
    rng = np.random.default_rng(300_000 + seed)
    rank = 1 + seed % 4
    depth = int(rng.integers(1, 12)) if seed % 5 == 0 else int(rng.integers(2, 300))
    lead = [int(v) for v in rng.integers(1, 4, size=rank - 1)]
    shape = (*lead, depth)
    # beta x scale spans ~1e-6 .. 1e3: from nearly flat outputs (every difference
    # inside the Q5.26 range) to a capped multiplier where only the maximum counts.
    beta = 1.0 if seed % 3 == 0 else _log_uniform(rng, -1.5, 1.5)
    in_scale = _log_uniform(rng, -4.5, 1.5)
    in_zp = int(rng.integers(-128, 128))
    x = int8_tensor("x", shape, in_scale, in_zp)
    y = int8_tensor("y", shape, *softmax_output())
    opts = {"beta": beta}
    # Inputs clustered near the row maximum exercise many non-trivial exp() values.
    near = (127 - rng.integers(0, 20, size=shape)).astype(np.int8)
    desc = dict(opts, shape=shape, in_scale=in_scale, in_zp=in_zp)
    return SaturatingCase(single_op_model("SOFTMAX", [x], [y], opts), [shape], desc, [[near]])


def _add_shapes(rng: np.random.Generator, seed: int) -> tuple[tuple[int, ...], ...]:
    """(shape1, shape2, out_shape): same shapes, or broadcasting along random dims."""
    rank = int(rng.integers(1, 5)) if seed % 10 else int(rng.integers(5, 7))
    out = tuple(int(v) for v in rng.integers(1, 7, size=rank))
    if seed % 4 == 0:
        return out, out, out
    shapes = []
    for _ in range(2):
        s = [d if rng.random() < 0.5 else 1 for d in out]
        if rng.random() < 0.3:
            s = s[int(rng.integers(0, rank)):]  # fewer dims: implicit leading ones
        shapes.append(tuple(s))
    # The output shape is the broadcast of the inputs (fix dims where both are 1).
    s1 = (1,) * (rank - len(shapes[0])) + shapes[0]
    s2 = (1,) * (rank - len(shapes[1])) + shapes[1]
    out = tuple(max(a, b) for a, b in zip(s1, s2))
    return shapes[0], shapes[1], out


def add_case(seed: int) -> SaturatingCase:
    """Random ADD: shapes, broadcasting, scales over decades, zero points, activation."""
    rng = np.random.default_rng(400_000 + seed)
    s1, s2, so = _add_shapes(rng, seed)
    scale1 = _log_uniform(rng, -3, 0.5)
    scale2 = scale1 * 10.0 ** rng.uniform(-1.5, 1.5) if seed % 6 else scale1
    out_scale = max(scale1, scale2) * 10.0 ** rng.uniform(-0.5, 1.0)
    zps = [int(v) for v in rng.integers(-128, 128, size=3)]
    act = ACTIVATIONS[int(rng.integers(0, len(ACTIVATIONS)))]
    a = int8_tensor("a", s1, scale1, zps[0])
    b = int8_tensor("b", s2, scale2, zps[1])
    y = int8_tensor("y", so, out_scale, zps[2])
    opts = {"fused_activation_function": act}
    desc = dict(opts, shapes=(s1, s2, so), scales=(scale1, scale2, out_scale), zps=zps)
    return SaturatingCase(single_op_model("ADD", [a, b], [y], opts), [s1, s2], desc)


def reshape_case(seed: int) -> SaturatingCase:
    """Random RESHAPE, via the new_shape option or a constant int32 shape tensor."""
    rng = np.random.default_rng(500_000 + seed)
    n = int(rng.integers(1, 5))
    dims = [int(v) for v in rng.integers(1, 7, size=n)]
    perm = list(rng.permutation(dims))
    out_shape = (math.prod(perm[:1]), *perm[1:]) if seed % 2 else (math.prod(dims),)
    x = int8_tensor("x", tuple(dims), 0.1, int(rng.integers(-128, 128)))
    y = int8_tensor("y", out_shape, 0.1, int(x.quantization.zero_point[0]))
    if seed % 3 == 0:
        shp = tensor("shape", (len(out_shape),), TensorType.INT32,
                     data=np.array(out_shape, np.int32))
        blob = single_op_model("RESHAPE", [x, shp], [y], {})
    else:
        blob = single_op_model("RESHAPE", [x], [y], {"new_shape": out_shape})
    return SaturatingCase(blob, [x.shape], {"from": x.shape, "to": out_shape})


def _check(case: SaturatingCase, runner: Runner, seed: int) -> None:
    inputs = case.inputs(seed)
    assert_matches_tflm(case.blob, inputs, runner(case.blob, inputs), case.desc)


# --------------------------------------------------------------------------- bit-exact cases


@pytest.mark.parametrize("seed", range(N_AVGPOOL))
def test_avgpool_bit_exact(runner: Runner, seed: int) -> None:
    _check(avgpool_case(seed), runner, seed)


@pytest.mark.parametrize("seed", range(N_MAXPOOL))
def test_maxpool_bit_exact(runner: Runner, seed: int) -> None:
    _check(maxpool_case(seed), runner, seed)


@pytest.mark.parametrize("seed", range(N_SOFTMAX))
def test_softmax_bit_exact(runner: Runner, seed: int) -> None:
    _check(softmax_case(seed), runner, seed)


@pytest.mark.parametrize("seed", range(N_ADD))
def test_add_bit_exact(runner: Runner, seed: int) -> None:
    _check(add_case(seed), runner, seed)


@pytest.mark.parametrize("seed", range(N_RESHAPE))
def test_reshape_bit_exact(runner: Runner, seed: int) -> None:
    _check(reshape_case(seed), runner, seed)


def _add_model(s1: tuple[int, ...], s2: tuple[int, ...], so: tuple[int, ...],
               const2: np.ndarray | None = None, act: str = "NONE") -> SaturatingCase:
    a = int8_tensor("a", s1, 0.03, -4)
    b = int8_tensor("b", s2, 0.011, 9, data=const2)
    y = int8_tensor("y", so, 0.05, 2)
    blob = single_op_model("ADD", [a, b], [y], {"fused_activation_function": act})
    shapes = [s1] if const2 is not None else [s1, s2]
    return SaturatingCase(blob, shapes, {"shapes": (s1, s2, so)})


@pytest.mark.parametrize("dim", range(4))
@pytest.mark.parametrize("which", [1, 2])
def test_add_broadcast_each_dim(runner: Runner, dim: int, which: int) -> None:
    """Broadcast of a single dimension of either input, for every NHWC dimension."""
    full = (2, 3, 4, 5)
    bc = tuple(1 if i == dim else d for i, d in enumerate(full))
    s1, s2 = (bc, full) if which == 1 else (full, bc)
    _check(_add_model(s1, s2, full), runner, 10 * dim + which)


def test_add_scalar_and_channel_bias(runner: Runner) -> None:
    """A scalar operand and a constant per-channel operand (the typical 'bias add')."""
    _check(_add_model((1, 4, 4, 3), (1,), (1, 4, 4, 3)), runner, 1)
    rng = np.random.default_rng(3)
    const = rng.integers(-128, 128, size=(3,)).astype(np.int8)
    _check(_add_model((2, 4, 4, 3), (3,), (2, 4, 4, 3), const2=const, act="RELU"), runner, 2)


def test_add_both_inputs_broadcast(runner: Runner) -> None:
    """Outer-product-like broadcast where each input supplies different dims."""
    _check(_add_model((4, 1, 6, 1), (1, 5, 1, 3), (4, 5, 6, 3)), runner, 4)
    _check(_add_model((1, 5, 1), (7, 1, 2), (7, 5, 2)), runner, 5)


def test_softmax_extreme_scalings(runner: Runner) -> None:
    """Capped multiplier (huge beta*scale), left shift 31 / diff_min 0, and tiny scales."""
    for beta, scale in ((100.0, 50.0), (1.0, 40.0), (1.0, 2.0e-7), (0.05, 1e-4)):
        x = int8_tensor("x", (2, 33), scale, 5)
        y = int8_tensor("y", (2, 33), *softmax_output())
        blob = single_op_model("SOFTMAX", [x], [y], {"beta": beta})
        _check(SaturatingCase(blob, [(2, 33)], {"beta": beta, "scale": scale}), runner, 9)


def test_pool_global_average(runner: Runner) -> None:
    """Global average pooling (filter = input size), the MLPerf Tiny classifier head."""
    for opcode in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        x = int8_tensor("x", (1, 7, 7, 64), 0.02, -11)
        y = int8_tensor("y", (1, 1, 1, 64), 0.02, -11)
        opts = {"padding": "VALID", "stride_h": 7, "stride_w": 7, "filter_height": 7,
                "filter_width": 7, "fused_activation_function": "NONE"}
        _check(SaturatingCase(single_op_model(opcode, [x], [y], opts), [x.shape], opts), runner, 3)


# --------------------------------------------------------------------------- lowering details


def _lower_single(blob: bytes) -> Any:
    return generate(parse_tflite(blob)).layers[0]


def _expect_unsupported(blob: bytes, *fragments: str) -> None:
    with pytest.raises(UnsupportedModelError) as info:
        generate(parse_tflite(blob))
    msg = str(info.value)
    for f in fragments:
        assert f in msg, msg


def _expect_lowering_unsupported(lowering: Any, blob: bytes, *fragments: str) -> None:
    """Call one lowering directly (a float32 kernel family may claim the op in generate)."""
    model = parse_tflite(blob)
    sg = model.main
    offsets = {i: 0 for i, t in enumerate(sg.tensors) if t.data is None}
    with pytest.raises(UnsupportedModelError) as info:
        lowering(LowerContext(model, sg, offsets), sg.operators[0], 0)
    for f in fragments:
        assert f in str(info.value), str(info.value)


def _pool_opts(**kw: Any) -> dict[str, Any]:
    opts = {"padding": "VALID", "stride_h": 1, "stride_w": 1, "filter_height": 2,
            "filter_width": 2, "fused_activation_function": "NONE"}
    opts.update(kw)
    return opts


def test_pool_layer_params() -> None:
    x = int8_tensor("x", (1, 9, 9, 3), 0.1, 4)
    y = int8_tensor("y", (1, 5, 5, 3), 0.1, 4)
    opts = _pool_opts(padding="SAME", stride_h=2, stride_w=2, filter_height=3, filter_width=3,
                      fused_activation_function="RELU6")
    layer = _lower_single(single_op_model("AVERAGE_POOL_2D", [x], [y], opts))
    assert layer.kernel == "tm_avgpool_s8" and layer.params_type == "tm_pool_s8_params"
    p = layer.params
    assert (p["out_h"], p["out_w"], p["pad_h"], p["pad_w"]) == (5, 5, 1, 1)
    assert (p["act_min"], p["act_max"]) == quant.activation_range_quantized("RELU6", 0.1, 4)
    assert layer.macs == 5 * 5 * 3 * 9
    mp = _lower_single(single_op_model("MAX_POOL_2D", [x], [y], opts))
    assert mp.kernel == "tm_maxpool_s8"


def test_pool_rejections() -> None:
    x = int8_tensor("x", (1, 4, 4, 2), 0.1, 0)
    y = int8_tensor("y", (1, 3, 3, 2), 0.1, 0)
    _expect_unsupported(single_op_model("MAX_POOL_2D", [x], [int8_tensor("y", (1, 3, 3, 2),
                                                                        0.2, 0)], _pool_opts()),
                        "operator 0 (MAX_POOL_2D)", "quantization")
    _expect_unsupported(single_op_model("AVERAGE_POOL_2D", [x], [int8_tensor("y", (1, 3, 3, 2),
                                                                            0.1, 1)],
                                        _pool_opts()), "operator 0", "zero")
    _expect_unsupported(single_op_model("AVERAGE_POOL_2D", [x],
                                        [int8_tensor("y", (1, 2, 2, 2), 0.1, 0)], _pool_opts()),
                        "output shape")
    _expect_unsupported(single_op_model("AVERAGE_POOL_2D", [x], [y], _pool_opts(stride_h=0)),
                        "stride")
    xf = tensor("x", (1, 4, 4, 2), TensorType.FLOAT32)
    yf = tensor("y", (1, 3, 3, 2), TensorType.FLOAT32)
    _expect_lowering_unsupported(pool.lower_average_pool2d,
                                 single_op_model("AVERAGE_POOL_2D", [xf], [yf], _pool_opts()),
                                 "operator 0 (AVERAGE_POOL_2D)", "FLOAT32")
    x3 = int8_tensor("x", (4, 4, 2), 0.1, 0)
    _expect_unsupported(single_op_model("MAX_POOL_2D", [x3], [y], _pool_opts()), "4-D")


def test_softmax_layer_params() -> None:
    x = int8_tensor("x", (2, 3, 10), 0.1, 0)
    y = int8_tensor("y", (2, 3, 10), *softmax_output())
    layer = _lower_single(single_op_model("SOFTMAX", [x], [y], {"beta": 1.0}))
    p = layer.params
    assert (p["outer_size"], p["depth"]) == (6, 10)
    m, s = quant.preprocess_softmax_scaling(1.0, 0.1)
    assert (p["input_multiplier"], p["input_left_shift"]) == (m, s)
    assert p["diff_min"] == -quant.calculate_input_radius(5, s)


def test_softmax_rejections() -> None:
    x = int8_tensor("x", (1, 10), 0.1, 0)
    for q in ((1.0 / 255.0, -128), (1.0 / 256.0, 0)):
        _expect_unsupported(single_op_model("SOFTMAX", [x], [int8_tensor("y", (1, 10), *q)],
                                            {"beta": 1.0}),
                            "operator 0 (SOFTMAX)", "1/256")
    y = int8_tensor("y", (1, 10), *softmax_output())
    _expect_unsupported(single_op_model("SOFTMAX", [x], [y], {"beta": 0.0}), "too small")
    _expect_unsupported(single_op_model("SOFTMAX", [x], [int8_tensor("y", (1, 11),
                                                                     *softmax_output())],
                                        {"beta": 1.0}), "shape")
    x16 = tensor("x", (1, 10), TensorType.INT16, scale=0.1, zero_point=0)
    _expect_unsupported(single_op_model("SOFTMAX", [x16], [y], {"beta": 1.0}), "INT16")


def test_add_layer_params() -> None:
    a = int8_tensor("a", (1, 4, 4, 3), 0.1, -3)
    b = int8_tensor("b", (1, 4, 4, 3), 0.05, 7)
    y = int8_tensor("y", (1, 4, 4, 3), 0.2, 1)
    layer = _lower_single(single_op_model("ADD", [a, b], [y], {}))
    p = layer.params
    q = quant.add_quant_params(0.1, 0.05, 0.2)
    assert p["left_shift"] == 20 and p["broadcast"] == 0 and p["size"] == 48
    assert (p["input1_multiplier"], p["input1_shift"]) == (q.input1_multiplier, q.input1_shift)
    assert (p["input1_offset"], p["input2_offset"], p["output_offset"]) == (3, -7, 1)
    # The larger input scale maps to exactly one half.
    assert (q.input1_multiplier, q.input1_shift) == (1 << 30, 0)


def test_add_rejections() -> None:
    a = int8_tensor("a", (2, 3), 0.1, 0)
    _expect_unsupported(single_op_model("ADD", [a, int8_tensor("b", (2, 4), 0.1, 0)],
                                        [int8_tensor("y", (2, 4), 0.1, 0)]),
                        "operator 0 (ADD)", "broadcast")
    _expect_unsupported(single_op_model("ADD", [a, int8_tensor("b", (1, 3), 0.1, 0)],
                                        [int8_tensor("y", (1, 3), 0.1, 0)]), "broadcast")
    # Output scale so small that the output multiplier is >= 1: TFLM aborts.
    _expect_unsupported(single_op_model("ADD", [a, int8_tensor("b", (2, 3), 0.1, 0)],
                                        [int8_tensor("y", (2, 3), 1e-8, 0)]), "operator 0")
    big = (1, 1, 1, 1, 1, 1, 2)
    _expect_unsupported(single_op_model("ADD", [int8_tensor("a", big, 0.1, 0),
                                                int8_tensor("b", big, 0.1, 0)],
                                        [int8_tensor("y", big, 0.1, 0)]), "6 dims")
    af = tensor("a", (2, 3), TensorType.FLOAT32)
    _expect_lowering_unsupported(elementwise.lower_add,
                                 single_op_model("ADD", [af, af],
                                                 [tensor("y", (2, 3), TensorType.FLOAT32)]),
                                 "operator 0 (ADD)", "FLOAT32")


def test_reshape_params_and_rejections() -> None:
    x = int8_tensor("x", (2, 3, 4), 0.1, 0)
    layer = _lower_single(single_op_model("RESHAPE", [x], [int8_tensor("y", (6, 4), 0.1, 0)],
                                          {"new_shape": (6, 4)}))
    assert layer.kernel == "tm_reshape" and layer.params["bytes"] == 24
    _expect_unsupported(single_op_model("RESHAPE", [x], [int8_tensor("y", (5, 4), 0.1, 0)],
                                        {"new_shape": (5, 4)}), "operator 0 (RESHAPE)",
                        "element counts")
    _expect_unsupported(single_op_model("RESHAPE", [x], [tensor("y", (6, 4),
                                                                TensorType.INT16)],
                                        {"new_shape": (6, 4)}), "type")


# --------------------------------------------------------------------------- pure helpers


def _broadcast_reference(s1: tuple[int, ...], s2: tuple[int, ...],
                         so: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Flat input indices numpy broadcasting pairs with each output element."""
    i1 = np.broadcast_to(np.arange(math.prod(s1)).reshape(s1), so).reshape(-1)
    i2 = np.broadcast_to(np.arange(math.prod(s2)).reshape(s2), so).reshape(-1)
    return i1, i2


def _walk(plan: Any) -> tuple[np.ndarray, np.ndarray]:
    """The index sequence the device kernel's odometer produces for *plan*."""
    if not plan.broadcast:
        r = np.arange(plan.size)
        return r, r
    grids = np.meshgrid(*[np.arange(d) for d in plan.dims], indexing="ij")
    i1 = sum(g * s for g, s in zip(grids, plan.strides1)).reshape(-1)
    i2 = sum(g * s for g, s in zip(grids, plan.strides2)).reshape(-1)
    return i1, i2


@pytest.mark.parametrize("seed", range(200))
def test_broadcast_plan_matches_numpy(seed: int) -> None:
    """Folded dims + strides visit exactly numpy's (input1, input2) index pairs."""
    rng = np.random.default_rng(seed)
    s1, s2, so = _add_shapes(rng, seed)
    plan = broadcast_plan(s1, s2, so)
    assert len(plan.dims) == 6 and plan.size == math.prod(so)
    want1, want2 = _broadcast_reference(s1, s2, so)
    got1, got2 = _walk(plan)
    assert np.array_equal(got1, want1) and np.array_equal(got2, want2), (s1, s2, so, plan)


def test_broadcast_plan_folds_dims() -> None:
    plan = broadcast_plan((2, 3, 4, 5), (1, 1, 1, 5), (2, 3, 4, 5))
    assert plan.broadcast and plan.dims == (1, 1, 1, 1, 24, 5)
    assert plan.strides1 == (0, 0, 0, 0, 5, 1) and plan.strides2 == (0, 0, 0, 0, 0, 1)
    assert not broadcast_plan((4,), (1, 4), (1, 4)).broadcast
    with pytest.raises(ValueError):
        broadcast_plan((2,), (3,), (3,))


def test_softmax_scaling_helpers() -> None:
    # beta * scale * 2^26 = 2^26 * 0.1 -> multiplier in Q31 with left shift 23.
    m, s = quant.preprocess_softmax_scaling(1.0, 0.1)
    assert s == 23 and m == quant.quantize_multiplier(float(np.float32(0.1)) * 2**26)[0]
    # Capped at 2^31 - 1: shift 31, radius floor(31/32) = 0.
    m, s = quant.preprocess_softmax_scaling(1000.0, 100.0)
    assert (m, s) == (2**31 - 1, 31)
    assert quant.calculate_input_radius(5, 31) == 0
    assert quant.calculate_input_radius(5, 23) == math.floor(31 * 2**26 / 2**23)
    with pytest.raises(UnsupportedModelError):
        quant.preprocess_softmax_scaling(1.0, 1e-9)


def test_add_quant_uses_float32_max() -> None:
    """twice_max_input_scale is 2 * double(max(float32, float32))."""
    q = quant.add_quant_params(0.3, 0.7, 0.5)
    s1, s2, so = (float(np.float32(v)) for v in (0.3, 0.7, 0.5))
    assert (q.input2_multiplier, q.input2_shift) == (1 << 30, 0)
    assert (q.input1_multiplier, q.input1_shift) == quant.quantize_multiplier(s1 / (2 * s2))
    assert (q.output_multiplier, q.output_shift) == quant.quantize_multiplier(
        2 * s2 / (2**20 * so))


# --------------------------------------------------------------------------- C hygiene


@pytest.mark.parametrize("target", sorted(WARNING_TARGETS))
def test_kernels_compile_warning_free(tmp_path: Path, target: str) -> None:
    """Every kernel file of this op family compiles with -Wall -Wextra -Werror everywhere."""
    assert_kernels_compile_warning_free(tmp_path, target, MY_KERNELS)


def test_tensor_helper_roundtrip() -> None:
    """Sanity: the case builders produce models our reader accepts unchanged."""
    case = add_case(1)
    model = parse_tflite(case.blob)
    ts: tuple[Tensor, ...] = model.main.tensors
    assert [t.dtype for t in ts] == [TensorType.INT8] * 3
