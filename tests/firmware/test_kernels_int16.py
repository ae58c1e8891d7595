"""int16x8 (int16 activations, int8 weights) kernels against tflite-micro, bit for bit.

Why: 16x8 quantization is what users pick when int8 loses too much accuracy
(audio, regression); TFLM's 16x8 arithmetic differs from int8 (int64 accumulators
and a 64-bit requantization with int64 bias, int32 ones otherwise; ADD's left
shift 15; symmetric activations). Cases: CONV_2D, DEPTHWISE_CONV_2D and
FULLY_CONNECTED with int64 / int32 / no bias, ADD and MUL with broadcasting,
average and max pooling, QUANTIZE (float / int8 / int16 -> int16, int16 -> int8)
and DEQUANTIZE, fed uniformly random int16 inputs and the saturating extremes, on
the host build and emulated M0+/M4/M7.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from kernel_check import (
    WARNING_TARGETS,
    assert_kernels_compile_warning_free,
    assert_matches_tflm,
    named_runner_fixture,
)

from tinymeter.firmware import quant
from tinymeter.models.builders import bias_tensor, int8_tensor, random_int8, single_op_model, tensor
from tinymeter.models.tflite import TensorType

pytest.importorskip("tflite_micro")

log = logging.getLogger(__name__)

I16 = TensorType.INT16
F32 = TensorType.FLOAT32
I64 = TensorType.INT64
I32 = TensorType.INT32
N_HOST = 12
#: The optimized runners exercise the DSP (SMLALD) CONV_2D / FULLY_CONNECTED kernels.
RUNNERS = ["host", "emu-m0plus-ref", "emu-m4-ref", "emu-m4-opt", "emu-m7-opt"]
ACTS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]


runner = named_runner_fixture(RUNNERS)


def _s(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.float32(10.0 ** rng.uniform(lo, hi)))


def _t16(name: str, shape, scale: float):
    return tensor(name, shape, I16, scale=scale, zero_point=0)


def _inputs(shapes, seed: int, dtypes=None) -> list[list[np.ndarray]]:
    """Per inference: uniform random, all -32768, all 32767 (int16) / normal (float)."""
    rng = np.random.default_rng(seed)
    dtypes = dtypes or [np.int16] * len(shapes)
    out = []
    for kind in ("rand", "lo", "hi"):
        row = []
        for s, dt in zip(shapes, dtypes):
            if dt == np.float32:
                row.append((rng.standard_normal(s) * (3.0 if kind == "rand" else 300.0))
                           .astype(np.float32))
            else:
                info = np.iinfo(dt)
                v = {"rand": rng.integers(info.min, info.max + 1, size=s),
                     "lo": np.full(s, info.min), "hi": np.full(s, info.max)}[kind]
                row.append(np.asarray(v).astype(dt))
        out.append(row)
    return out


def _run(runner, blob: bytes, shapes, seed: int, desc, dtypes=None) -> None:
    name, run = runner
    if name != "host" and seed >= 3:
        pytest.skip("emulated runners take the first cases only")
    inputs = _inputs(shapes, seed, dtypes)
    assert_matches_tflm(blob, inputs, run(blob, inputs), desc)


def _bias(rng, n: int, s_in: float, w, kind: str):
    if kind == "none":
        return None
    dt = I64 if kind == "int64" else I32
    hi = 1 << 20 if kind == "int64" else 1 << 14
    return bias_tensor("b", rng.integers(-hi, hi, size=n), s_in, w, dtype=dt)


def conv_model(seed: int, depthwise: bool) -> tuple[bytes, tuple[int, ...], dict]:
    rng = np.random.default_rng(60_000 + 1000 * depthwise + seed)
    b, h, w_, cin = 1 + seed % 2, *(int(v) for v in rng.integers(3, 8, size=2)), \
        int(rng.integers(1, 5))
    fh, fw = (int(v) for v in rng.integers(1, 4, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 3, size=2))
    pad = "SAME" if seed % 2 else "VALID"
    p = quant.compute_padding_height_width(sh, sw, 1, 1, h, w_, fh, fw, pad)
    s_in = _s(rng, -4, -2)
    if depthwise:
        dm = 1 + seed % 2
        cout = cin * dm
        wshape = (1, fh, fw, cout)
        qdim = 3
    else:
        cout = int(rng.integers(1, 6))
        wshape = (cout, fh, fw, cin)
        qdim = 0
    wscales = [_s(rng, -3, -1) for _ in range(cout)]
    wt = int8_tensor("w", wshape, data=random_int8(wshape, seed), per_channel_scales=wscales,
                     quantized_dimension=qdim)
    # TFLM's 16x8 depthwise kernel needs an int64 bias (others rejected, tested below)
    kind = "int64" if depthwise else ["int64", "int64", "int32", "none"][seed % 4]
    bt = _bias(rng, cout, s_in, wt, kind)
    x = _t16("x", (b, h, w_, cin), s_in)
    k = fh * fw * (1 if depthwise else cin)
    # outputs spanning most of int16 without saturating: the requantization's rounding
    # (32-bit double rounding vs the 64-bit reduced multiplier) shows there
    s_out = float(np.float32(s_in * max(wscales) * k ** 0.5 * 127 * 19000 / 12000
                             * 10.0 ** rng.uniform(0, 2 if seed % 2 else 0.3)))
    y = _t16("y", (b, p.out_height, p.out_width, cout), s_out)
    opts = {"padding": pad, "stride_h": sh, "stride_w": sw,
            "fused_activation_function": ACTS[seed % 4]}
    if depthwise:
        opts["depth_multiplier"] = dm
    op = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
    blob = single_op_model(op, [x, wt, bt], [y], opts)
    return blob, x.shape, dict(opts, op=op, shape=x.shape, w=wshape, bias=kind)


@pytest.mark.parametrize("seed", range(N_HOST))
@pytest.mark.parametrize("depthwise", [False, True])
def test_conv_s16(runner, seed: int, depthwise: bool) -> None:
    blob, shape, desc = conv_model(seed, depthwise)
    _run(runner, blob, [shape], seed, desc)


@pytest.mark.parametrize("seed", range(N_HOST))
def test_fully_connected_s16(runner, seed: int) -> None:
    rng = np.random.default_rng(61_000 + seed)
    batches, accum, out = int(rng.integers(1, 4)), int(rng.integers(1, 40)), \
        int(rng.integers(1, 12))
    s_in = _s(rng, -4, -2)
    per_channel = seed % 2 == 0
    scales = [_s(rng, -3, -1) for _ in range(out)] if per_channel else None
    wt = int8_tensor("w", (out, accum), _s(rng, -3, -1), 0, data=random_int8((out, accum), seed),
                     per_channel_scales=scales)
    kind = ["int64", "int64", "int32", "none"][seed % 4]
    bt = _bias(rng, out, s_in, wt, kind)
    x = _t16("x", (batches, accum), s_in)
    w_s = max(scales) if scales else float(wt.quantization.scale[0])
    y = _t16("y", (batches, out), float(np.float32(s_in * w_s * accum ** 0.5 * 127 * 19000 / 12000
                                                   * 10.0 ** rng.uniform(0, 0.5))))
    opts = {"fused_activation_function": ACTS[seed % 4]}
    blob = single_op_model("FULLY_CONNECTED", [x, wt, bt], [y], opts)
    _run(runner, blob, [x.shape], seed, dict(opts, accum=accum, out=out, bias=kind,
                                              per_channel=per_channel))


@pytest.mark.parametrize("seed", range(N_HOST))
@pytest.mark.parametrize("op", ["ADD", "MUL"])
def test_add_mul_s16(runner, seed: int, op: str) -> None:
    rng = np.random.default_rng(62_000 + 10 * len(op) + seed)
    rank = 1 + seed % 4
    out = tuple(int(v) for v in rng.integers(1, 6, size=rank))
    a = out if seed % 3 == 0 else tuple(d if rng.random() < 0.6 else 1 for d in out)
    b = out if seed % 3 == 0 else tuple(d if rng.random() < 0.5 else 1 for d in out)
    full = tuple(max(p, q) for p, q in zip(a, b))
    s1, s2 = _s(rng, -4, -2), _s(rng, -4, -2)
    so = max(s1, s2) * float(10.0 ** rng.uniform(0, 1)) if op == "ADD" else \
        float(np.float32(s1 * s2 * 32768 * 10.0 ** rng.uniform(-0.5, 0.5)))
    opts = {"fused_activation_function": ACTS[seed % 4]}
    blob = single_op_model(op, [_t16("a", a, s1), _t16("b", b, s2)], [_t16("y", full, so)],
                           opts)
    _run(runner, blob, [a, b], seed, dict(opts, op=op, shapes=(a, b, full)))


@pytest.mark.parametrize("seed", range(N_HOST))
@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_s16(runner, seed: int, op: str) -> None:
    rng = np.random.default_rng(63_000 + len(op) * 10 + seed)
    fh, fw = (int(v) for v in rng.integers(1, 4, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 3, size=2))
    pad = "SAME" if seed % 2 else "VALID"
    h, w_ = max(int(rng.integers(1, 9)), fh), max(int(rng.integers(1, 9)), fw)
    c = int(rng.integers(1, 6))
    p = quant.compute_padding_height_width(sh, sw, 1, 1, h, w_, fh, fw, pad)
    s = _s(rng, -4, -2)
    opts = {"padding": pad, "stride_h": sh, "stride_w": sw, "filter_height": fh,
            "filter_width": fw, "fused_activation_function": ACTS[seed % 4]}
    blob = single_op_model(op, [_t16("x", (1, h, w_, c), s)],
                           [_t16("y", (1, p.out_height, p.out_width, c), s)], opts)
    _run(runner, blob, [(1, h, w_, c)], seed, dict(opts, op=op, shape=(h, w_, c)))


@pytest.mark.parametrize("seed", range(N_HOST))
def test_quantize_dequantize_s16(runner, seed: int) -> None:
    rng = np.random.default_rng(64_000 + seed)
    shape = tuple(int(v) for v in rng.integers(1, 6, size=1 + seed % 3))
    kind = seed % 5
    if kind == 0:  # float -> int16
        x, y, dt = tensor("x", shape, F32), _t16("y", shape, _s(rng, -4, -2)), np.float32
        op = "QUANTIZE"
    elif kind == 1:  # int16 -> float
        x, y, dt = _t16("x", shape, _s(rng, -4, -2)), tensor("y", shape, F32), np.int16
        op = "DEQUANTIZE"
    elif kind == 2:  # int16 -> int16
        x, y, dt = _t16("x", shape, _s(rng, -4, -2)), _t16("y", shape, _s(rng, -4, -2)), np.int16
        op = "QUANTIZE"
    elif kind == 3:  # int8 -> int16
        x = int8_tensor("x", shape, _s(rng, -2, 0), int(rng.integers(-128, 128)))
        y, dt, op = _t16("y", shape, _s(rng, -4, -2)), np.int8, "QUANTIZE"
    else:  # int16 -> int8
        x = _t16("x", shape, _s(rng, -4, -2))
        y = int8_tensor("y", shape, _s(rng, -2, 0), int(rng.integers(-128, 128)))
        dt, op = np.int16, "QUANTIZE"
    blob = single_op_model(op, [x], [y])
    _run(runner, blob, [shape], seed, {"op": op, "kind": kind, "shape": shape}, [dt])


@pytest.mark.parametrize("seed", range(N_HOST))
def test_softmax_s16(runner, seed: int) -> None:
    """SOFTMAX int16: LUT-based exp and reciprocal, rows 1..300 long, beta and input
    scales over decades (nearly flat to one-hot rows)."""
    rng = np.random.default_rng(65_000 + seed)
    depth = int(rng.integers(1, 300)) if seed % 3 else int(rng.integers(1, 12))
    shape = (*(int(v) for v in rng.integers(1, 4, size=seed % 3)), depth)
    s_in = _s(rng, -5, -2)
    beta = 1.0 if seed % 2 else float(np.float32(10.0 ** rng.uniform(-1, 1)))
    blob = single_op_model("SOFTMAX", [_t16("x", shape, s_in)], [_t16("y", shape, 1 / 32768)],
                           {"beta": beta})
    _run(runner, blob, [shape], seed, {"shape": shape, "scale": s_in, "beta": beta})


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("bias", ["none", "int32", "int64"])
@pytest.mark.parametrize("op", ["FULLY_CONNECTED", "CONV_2D"])
def test_accumulator_width_follows_bias(runner, op: str, bias: str, per_channel: bool) -> None:
    """TFLM accumulates in int64 with the 64-bit requantization for an int64 bias or
    none, in int32 with the 32-bit one for an int32 bias: deep accumulations with
    outputs spanning int16 tell the two roundings apart."""
    rng = np.random.default_rng(66_000)
    accum, out = 400, 16
    s_in = 1e-4
    scales = [float(np.float32(10.0 ** rng.uniform(-3, -2))) for _ in range(out)]
    if op == "FULLY_CONNECTED":
        wshape, xshape, yshape = (out, accum), (2, accum), (2, out)
        opts = {}
    else:
        wshape, xshape, yshape = (out, 1, 1, accum), (1, 2, 2, accum), (1, 2, 2, out)
        opts = {"padding": "VALID", "stride_h": 1, "stride_w": 1}
    wt = int8_tensor("w", wshape, scales[0], 0, data=random_int8(wshape, 1),
                     per_channel_scales=scales if per_channel else None)
    bt = _bias(rng, out, s_in, wt, bias)
    s_out = float(np.float32(s_in * max(scales) * accum ** 0.5 * 127 * 19000 / 15000))
    blob = single_op_model(op, [_t16("x", xshape, s_in), wt, bt], [_t16("y", yshape, s_out)],
                           opts)
    _run(runner, blob, [xshape], 0, {"op": op, "bias": bias, "pc": per_channel})


@pytest.mark.parametrize("seed", range(6))
def test_concat_pad_movement_s16(runner, seed: int) -> None:
    """int16 tensors through the type-agnostic kernels: CONCATENATION, PAD (zero point
    0 fill), PADV2, TRANSPOSE, STRIDED_SLICE."""
    rng = np.random.default_rng(67_000 + seed)
    shape = tuple(int(v) for v in rng.integers(1, 5, size=3))
    s = _s(rng, -4, -2)
    i32 = TensorType.INT32
    kind = seed % 5
    if kind == 0:
        other = (shape[0], shape[1], int(rng.integers(1, 4)))
        blob = single_op_model("CONCATENATION", [_t16("a", shape, s), _t16("b", other, s)],
                               [_t16("y", (*shape[:2], shape[2] + other[2]), s)], {"axis": 2})
        shapes = [shape, other]
    elif kind in (1, 2):
        pads = rng.integers(0, 3, size=(3, 2)).astype(np.int32)
        out = tuple(int(d + a + b) for d, (a, b) in zip(shape, pads))
        ins = [_t16("x", shape, s), tensor("p", (3, 2), i32, data=pads)]
        if kind == 2:
            ins.append(tensor("c", (), I16, scale=s, zero_point=0,
                              data=np.array(1234, np.int16)))
        blob = single_op_model("PADV2" if kind == 2 else "PAD", ins, [_t16("y", out, s)])
        shapes = [shape]
    elif kind == 3:
        perm = [int(p) for p in rng.permutation(3)]
        blob = single_op_model("TRANSPOSE", [_t16("x", shape, s),
                                             tensor("p", (3,), i32, data=np.array(perm, np.int32))],
                               [_t16("y", tuple(shape[p] for p in perm), s)])
        shapes = [shape]
    else:
        begin, end, strides = [0, 0, 0], list(shape), [1, 1, -1]
        ins = [_t16("x", shape, s)] + [tensor(n, (3,), i32, data=np.array(v, np.int32))
                                       for n, v in (("b", begin), ("e", end), ("st", strides))]
        blob = single_op_model("STRIDED_SLICE", ins, [_t16("y", (*shape[:2], shape[2]), s)],
                               {"begin_mask": 7, "end_mask": 7})
        shapes = [shape]
    _run(runner, blob, shapes, seed, {"kind": kind, "shape": shape})


def test_depthwise_s16_without_bias_is_rejected() -> None:
    from tinymeter.core.errors import UnsupportedModelError
    from tinymeter.firmware.codegen import generate
    from tinymeter.models.tflite import parse_tflite

    wt = int8_tensor("w", (1, 1, 1, 2), data=np.ones((1, 1, 1, 2)), per_channel_scales=[0.1, 0.1],
                     quantized_dimension=3)
    blob = single_op_model("DEPTHWISE_CONV_2D", [_t16("x", (1, 2, 2, 2), 0.01), wt, None],
                           [_t16("y", (1, 2, 2, 2), 0.01)],
                           {"padding": "VALID", "stride_h": 1, "stride_w": 1})
    with pytest.raises(UnsupportedModelError, match="needs an int64 bias"):
        generate(parse_tflite(blob))


@pytest.mark.parametrize("target", sorted(WARNING_TARGETS))
def test_kernels_compile_warning_free(tmp_path: Path, target: str) -> None:
    assert_kernels_compile_warning_free(tmp_path, target, (
        "conv_s16.c", "elementwise_s16.c", "pool_s16.c", "quantize_s16.c", "softmax_s16.c"))
