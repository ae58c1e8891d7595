"""CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED: bit-exact against tflite-micro.

Why: the latency numbers are only meaningful if the firmware computes what TFLM
computes. Every case builds a single-op model with random (but seeded) shapes,
options and quantization, runs it in the tflite-micro Python interpreter and through
our runtime, and demands identical int8 outputs. The same cases run on every runner
in ``RUNNERS``: the host build, and real firmware in the emulator on an M0+ (reference
kernels) and on M4/M7 (reference and DSP-optimized kernels).
"""

from __future__ import annotations

import logging
import math
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kernel_check import (
    RUNTIME,
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
from tinymeter.models.builders import bias_tensor, int8_tensor, single_op_model, tensor
from tinymeter.models.tflite import TensorType, parse_tflite

pytest.importorskip("tflite_micro")

log = logging.getLogger(__name__)


N_CONV = 40
N_DWCONV = 40
N_FC = 40
KERNEL_CHOICES = [(1, 1), (3, 3), (5, 5), (10, 4), (2, 3), (1, 3), (3, 1)]
ACTIVATIONS = ["NONE", "RELU", "RELU6"]


# --------------------------------------------------------------------------- runners


#: Every way the runtime executes a model. The optimized set only differs on DSP cores
#: (M4/M7); on the M0+ the build always uses the reference set.
RUNNERS = ["host", "emu-m0plus-ref", "emu-m4-ref", "emu-m4-opt", "emu-m7-opt"]


@pytest.fixture(params=RUNNERS, scope="module")
def runner(request: pytest.FixtureRequest) -> Runner:
    """Each runner executes a .tflite through the tinymeter runtime: (blob, inputs) -> outputs."""
    return make_runner(request.param)


# --------------------------------------------------------------------------- case builders


def _log_scales(rng: np.random.Generator, n: int, lo: float, hi: float) -> list[float]:
    """Scales spread log-uniformly over [10^lo, 10^hi] (several decades)."""
    return [float(np.float32(10.0 ** rng.uniform(lo, hi))) for _ in range(n)]


def _weights(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    low = -128 if rng.random() < 0.2 else -127
    return rng.integers(low, 128, size=shape).astype(np.int8)


def _out_scale(rng: np.random.Generator, in_scale: float, w_scales: Sequence[float],
               k: int) -> float:
    """An output scale near the typical accumulator magnitude, so some channels
    saturate and others do not (typical |w*(x-zp)| ~ 74*74, summed over k terms)."""
    gmean = math.exp(float(np.mean(np.log(w_scales))))
    return float(np.float32(in_scale * gmean * 5476.0 * math.sqrt(k) / 40.0
                            * 10.0 ** rng.uniform(-0.7, 0.7)))


def _bias(rng: np.random.Generator, n: int, k: int, in_scale: float, w: Any) -> Any:
    if rng.random() < 0.3:
        return None
    span = int(5476 * math.sqrt(k) * 2) + 1
    data = rng.integers(-span, span + 1, size=n).astype(np.int32)
    return bias_tensor("b", data, input_scale=in_scale, weight_scales=w)


def _in_size(rng: np.random.Generator, k: int, d: int) -> int:
    eff = (k - 1) * d + 1
    return int(rng.integers(max(1, eff - 2), eff + 8))


def conv_case(seed: int) -> SaturatingCase:
    """Random CONV_2D: kernel, stride, dilation, padding, batches, channels, quant, bias, act."""
    rng = np.random.default_rng(1000 + seed)
    kh, kw = KERNEL_CHOICES[seed % len(KERNEL_CHOICES)]
    sh, sw = (int(v) for v in rng.integers(1, 3, size=2))
    dh, dw = (int(v) for v in rng.integers(1, 3, size=2))
    padding = "SAME" if seed % 2 == 0 else "VALID"
    batches = int(rng.integers(1, 3))
    in_ch = int(rng.integers(1, 10))
    out_ch = int(rng.integers(1, 10))
    in_h, in_w = _in_size(rng, kh, dh), _in_size(rng, kw, dw)
    if padding == "VALID":
        in_h, in_w = max(in_h, (kh - 1) * dh + 1), max(in_w, (kw - 1) * dw + 1)
    pad = quant.compute_padding_height_width(sh, sw, dh, dw, in_h, in_w, kh, kw, padding)
    in_scale = _log_scales(rng, 1, -3, 0)[0]
    in_zp = int(rng.integers(-128, 128))
    per_channel = rng.random() < 0.8
    w_scales = _log_scales(rng, out_ch if per_channel else 1, -4, -1)
    w = int8_tensor("w", (out_ch, kh, kw, in_ch), data=_weights(rng, (out_ch, kh, kw, in_ch)),
                    per_channel_scales=w_scales if per_channel else None,
                    scale=w_scales[0])
    k = kh * kw * in_ch
    out_scale = _out_scale(rng, in_scale, w_scales, k)
    out_zp = int(rng.integers(-128, 128))
    act = ACTIVATIONS[int(rng.integers(0, 3))]
    x = int8_tensor("x", (batches, in_h, in_w, in_ch), in_scale, in_zp)
    y = int8_tensor("y", (batches, pad.out_height, pad.out_width, out_ch), out_scale, out_zp)
    b = _bias(rng, out_ch, k, in_scale, w)
    opts = {"padding": padding, "stride_h": sh, "stride_w": sw, "dilation_h_factor": dh,
            "dilation_w_factor": dw, "fused_activation_function": act}
    desc = dict(opts, batches=batches, input=x.shape, filter=w.shape, bias=b is not None,
                per_channel=per_channel)
    # No bias: alternate between an omitted (-1) operand and a 2-operand op.
    operands = [x, w, b] if b is not None or seed % 4 < 2 else [x, w]
    return SaturatingCase(single_op_model("CONV_2D", operands, [y], opts), [x.shape], desc)


def dwconv_case(seed: int) -> SaturatingCase:
    """Random DEPTHWISE_CONV_2D, including depth_multiplier 2."""
    rng = np.random.default_rng(2000 + seed)
    kh, kw = KERNEL_CHOICES[seed % len(KERNEL_CHOICES)]
    sh, sw = (int(v) for v in rng.integers(1, 3, size=2))
    dh, dw = (int(v) for v in rng.integers(1, 3, size=2))
    padding = "VALID" if seed % 2 == 0 else "SAME"
    dm = 1 + (seed // 2) % 2
    batches = int(rng.integers(1, 3))
    in_ch = int(rng.integers(1, 10))
    out_ch = in_ch * dm
    in_h, in_w = _in_size(rng, kh, dh), _in_size(rng, kw, dw)
    if padding == "VALID":
        in_h, in_w = max(in_h, (kh - 1) * dh + 1), max(in_w, (kw - 1) * dw + 1)
    pad = quant.compute_padding_height_width(sh, sw, dh, dw, in_h, in_w, kh, kw, padding)
    in_scale = _log_scales(rng, 1, -3, 0)[0]
    in_zp = int(rng.integers(-128, 128))
    per_channel = rng.random() < 0.8
    w_scales = _log_scales(rng, out_ch if per_channel else 1, -4, -1)
    w = int8_tensor("w", (1, kh, kw, out_ch), data=_weights(rng, (1, kh, kw, out_ch)),
                    per_channel_scales=w_scales if per_channel else None,
                    scale=w_scales[0], quantized_dimension=3)
    k = kh * kw
    out_scale = _out_scale(rng, in_scale, w_scales, k)
    out_zp = int(rng.integers(-128, 128))
    act = ACTIVATIONS[int(rng.integers(0, 3))]
    x = int8_tensor("x", (batches, in_h, in_w, in_ch), in_scale, in_zp)
    y = int8_tensor("y", (batches, pad.out_height, pad.out_width, out_ch), out_scale, out_zp)
    b = _bias(rng, out_ch, k, in_scale, w)
    opts = {"padding": padding, "stride_h": sh, "stride_w": sw, "dilation_h_factor": dh,
            "dilation_w_factor": dw, "depth_multiplier": dm, "fused_activation_function": act}
    desc = dict(opts, batches=batches, input=x.shape, filter=w.shape, bias=b is not None,
                per_channel=per_channel)
    # Without bias the operand is left out entirely: tflite-micro's depthwise Prepare
    # crashes on an explicit omitted (-1) bias operand.
    operands = [x, w, b] if b is not None else [x, w]
    return SaturatingCase(single_op_model("DEPTHWISE_CONV_2D", operands, [y], opts), [x.shape], desc)


def fc_case(seed: int) -> SaturatingCase:
    """Random FULLY_CONNECTED: per-tensor / per-channel, batches, keep_num_dims, 4-D input."""
    rng = np.random.default_rng(3000 + seed)
    accum = int(rng.integers(1, 300)) if seed % 5 else int(rng.integers(1, 8))
    out_depth = int(rng.integers(1, 20))
    batches = int(rng.integers(1, 4))
    per_channel = seed % 3 == 1
    layout = seed % 4 if not per_channel else seed % 2 * 3  # 0: 2-D, 1: keep dims, 3: 4-D in
    if layout == 1:
        lead = (batches, 2)
        in_shape: tuple[int, ...] = (*lead, accum)
        out_shape: tuple[int, ...] = (*lead, out_depth)
        keep = True
    elif layout == 3 and accum % 2 == 0:
        in_shape = (batches, 1, 2, accum // 2)
        out_shape = (batches, out_depth)
        keep = False
    else:
        in_shape = (batches, accum)
        out_shape = (batches, out_depth)
        keep = False
    in_scale = _log_scales(rng, 1, -3, 0)[0]
    in_zp = int(rng.integers(-128, 128))
    w_scales = _log_scales(rng, out_depth if per_channel else 1, -4, -1)
    w = int8_tensor("w", (out_depth, accum), data=_weights(rng, (out_depth, accum)),
                    per_channel_scales=w_scales if per_channel else None, scale=w_scales[0])
    out_scale = _out_scale(rng, in_scale, w_scales, accum)
    out_zp = int(rng.integers(-128, 128))
    act = ACTIVATIONS[int(rng.integers(0, 3))]
    x = int8_tensor("x", in_shape, in_scale, in_zp)
    y = int8_tensor("y", out_shape, out_scale, out_zp)
    b = _bias(rng, out_depth, accum, in_scale, w)
    opts = {"fused_activation_function": act, "keep_num_dims": keep}
    desc = dict(opts, input=in_shape, output=out_shape, bias=b is not None,
                per_channel=per_channel)
    operands = [x, w, b] if b is not None or seed % 4 < 2 else [x, w]
    return SaturatingCase(single_op_model("FULLY_CONNECTED", operands, [y], opts), [in_shape], desc)


def _check(case: SaturatingCase, runner: Runner, seed: int) -> None:
    inputs = case.inputs(seed)
    got = runner(case.blob, inputs)
    assert all(out[0].dtype == np.int8 for out in got), case.desc
    assert_matches_tflm(case.blob, inputs, got, case.desc)


# --------------------------------------------------------------------------- bit-exact cases


@pytest.mark.parametrize("seed", range(N_CONV))
def test_conv2d_bit_exact(runner: Runner, seed: int) -> None:
    _check(conv_case(seed), runner, seed)


@pytest.mark.parametrize("seed", range(N_DWCONV))
def test_depthwise_conv2d_bit_exact(runner: Runner, seed: int) -> None:
    _check(dwconv_case(seed), runner, seed)


@pytest.mark.parametrize("seed", range(N_FC))
def test_fully_connected_bit_exact(runner: Runner, seed: int) -> None:
    _check(fc_case(seed), runner, seed)


def _conv_model(opcode: str, x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                y_shape: tuple[int, ...], opts: dict[str, Any], *, w_scales: Sequence[float],
                in_q: tuple[float, int] = (0.02, -5), out_q: tuple[float, int] = (0.05, 3),
                seed: int = 0, bias: bool = True) -> SaturatingCase:
    rng = np.random.default_rng(seed)
    qdim = 3 if opcode == "DEPTHWISE_CONV_2D" else 0
    w = int8_tensor("w", w_shape, data=_weights(rng, w_shape), quantized_dimension=qdim,
                    per_channel_scales=list(w_scales) if len(w_scales) > 1 else None,
                    scale=w_scales[0])
    x = int8_tensor("x", x_shape, *in_q)
    y = int8_tensor("y", y_shape, *out_q)
    n = w_shape[qdim]
    operands = [x, w]
    if bias:
        operands.append(bias_tensor("b", rng.integers(-5000, 5000, size=n).astype(np.int32),
                                    in_q[0], w))
    return SaturatingCase(single_op_model(opcode, operands, [y], opts), [x_shape], dict(opts))


@pytest.mark.parametrize("batches,h,w,cin,cout", [
    (1, 3, 3, 8, 5), (2, 2, 3, 7, 6), (1, 1, 1, 4, 1), (1, 5, 5, 16, 16), (1, 2, 2, 3, 3),
    (3, 1, 3, 9, 2),
])
def test_conv2d_pointwise(runner: Runner, batches: int, h: int, w: int, cin: int,
                          cout: int) -> None:
    """1x1 stride-1 convs: the optimized set's 2x2 matrix-multiply path and its tails."""
    opts = {"padding": "SAME", "stride_h": 1, "stride_w": 1, "fused_activation_function": "RELU"}
    rng = np.random.default_rng(cin * 100 + cout)
    case = _conv_model("CONV_2D", (batches, h, w, cin), (cout, 1, 1, cin), (batches, h, w, cout),
                       opts, w_scales=_log_scales(rng, cout, -4, -1), seed=cin + cout,
                       out_q=(0.02, -7), bias=cout % 2 == 0)
    _check(case, runner, cin)


@pytest.mark.parametrize("ch,k,stride,padding", [
    (4, 3, 1, "SAME"), (8, 3, 2, "SAME"), (13, 3, 1, "VALID"), (6, 5, 1, "SAME"), (12, 3, 1, "VALID"),
])
def test_depthwise_multichannel(runner: Runner, ch: int, k: int, stride: int, padding: str) -> None:
    """depth_multiplier 1 with >= 4 channels: the optimized 4-channel SIMD and 3x3 paths."""
    opts = {"padding": padding, "stride_h": stride, "stride_w": stride, "depth_multiplier": 1,
            "fused_activation_function": "RELU6"}
    size = 7
    pad = quant.compute_padding_height_width(stride, stride, 1, 1, size, size, k, k, padding)
    rng = np.random.default_rng(ch * 10 + k)
    case = _conv_model("DEPTHWISE_CONV_2D", (1, size, size, ch), (1, k, k, ch),
                       (1, pad.out_height, pad.out_width, ch), opts,
                       w_scales=_log_scales(rng, ch, -3, -1), seed=ch, out_q=(0.03, 2))
    _check(case, runner, ch)


@pytest.mark.parametrize("x_shape,kernel,cout,stride,dilation,padding", [
    ((1, 6, 7, 8), (3, 3), 5, 1, 1, "SAME"),     # in_ch % 4 == 0: widened straight from input
    ((1, 9, 9, 3), (3, 3), 8, 2, 1, "SAME"),     # VWW stem: gathered window, k % 4 tail
    ((1, 7, 8, 12), (3, 3), 6, 1, 2, "SAME"),    # dilated taps through im2col
    ((2, 5, 3, 16), (1, 1), 7, 2, 1, "VALID"),   # strided 1x1, pixels across batches
    ((1, 4, 4, 80), (3, 3), 3, 1, 1, "SAME"),    # window > TM_CONV_MAX_K: direct path
    ((1, 3, 10, 1), (3, 4), 9, 1, 1, "SAME"),    # KWS-like stem, one channel
])
def test_conv2d_im2col_paths(runner: Runner, x_shape: tuple[int, ...], kernel: tuple[int, int],
                             cout: int, stride: int, dilation: int, padding: str) -> None:
    """Shapes steering the optimized conv through each im2col / fallback branch."""
    kh, kw = kernel
    opts = {"padding": padding, "stride_h": stride, "stride_w": stride,
            "dilation_h_factor": dilation, "dilation_w_factor": dilation,
            "fused_activation_function": "RELU6"}
    pad = quant.compute_padding_height_width(stride, stride, dilation, dilation, x_shape[1],
                                             x_shape[2], kh, kw, padding)
    rng = np.random.default_rng(sum(x_shape) + cout)
    cin = x_shape[3]
    case = _conv_model("CONV_2D", x_shape, (cout, kh, kw, cin),
                       (x_shape[0], pad.out_height, pad.out_width, cout), opts,
                       w_scales=_log_scales(rng, cout, -4, -2), in_q=(0.05, 11),
                       out_q=(0.5 * math.sqrt(kh * kw * cin) / 10, -3), seed=cout,
                       bias=cout % 2 == 1)
    _check(case, runner, cout)


def test_fully_connected_deep_rows(runner: Runner) -> None:
    """accum_depth above the optimized set's widened-input buffer: blocked fallback."""
    rng = np.random.default_rng(12)
    w = int8_tensor("w", (6, 1100), 0.002, 0, data=_weights(rng, (6, 1100)))
    x = int8_tensor("x", (1, 1100), 0.05, 9)
    y = int8_tensor("y", (1, 6), 2.0, -1)
    b = bias_tensor("b", rng.integers(-3000, 3000, size=6).astype(np.int32), 0.05, w)
    blob = single_op_model("FULLY_CONNECTED", [x, w, b], [y], {})
    _check(SaturatingCase(blob, [(1, 1100)], {"accum_depth": 1100}), runner, 12)


def test_conv2d_grouped(runner: Runner) -> None:
    """Grouped conv (in_ch = 2 x filter in_ch), which TFLM's reference kernel supports."""
    opts = {"padding": "SAME", "stride_h": 1, "stride_w": 1, "fused_activation_function": "NONE"}
    case = _conv_model("CONV_2D", (1, 5, 6, 4), (6, 3, 3, 2), (1, 5, 6, 6), opts,
                       w_scales=[0.01, 0.002, 0.03, 0.004, 0.05, 0.006])
    _check(case, runner, 7)


def test_conv2d_extreme_multipliers(runner: Runner) -> None:
    """Effective scales > 1 (left shift) and tiny ones (deep right shift) in one layer."""
    opts = {"padding": "VALID", "stride_h": 1, "stride_w": 1, "fused_activation_function": "NONE"}
    case = _conv_model("CONV_2D", (1, 4, 4, 2), (4, 1, 1, 2), (1, 4, 4, 4), opts,
                       w_scales=[5.0, 1e-6, 0.5, 3e-3], in_q=(0.5, 0), out_q=(0.01, 0))
    _check(case, runner, 8)


def test_fully_connected_nonzero_filter_zero_point(runner: Runner) -> None:
    """Per-tensor FC applies TFLM's weights_offset when the weight zero point is not 0."""
    rng = np.random.default_rng(11)
    w = int8_tensor("w", (5, 17), 0.01, 3, data=_weights(rng, (5, 17)))
    x = int8_tensor("x", (2, 17), 0.1, -7)
    y = int8_tensor("y", (2, 5), 0.2, 4)
    b = bias_tensor("b", rng.integers(-300, 300, size=5).astype(np.int32), 0.1, w)
    blob = single_op_model("FULLY_CONNECTED", [x, w, b], [y], {})
    _check(SaturatingCase(blob, [(2, 17)], {"filter_zp": 3}), runner, 11)


def test_fully_connected_float32_product_matters(runner: Runner) -> None:
    """The per-tensor FC multiplier is built from a float32 scale product (TFLM quirk)."""
    # Find scales where float32(in*w) and double(in)*double(w) give different multipliers.
    rng = np.random.default_rng(5)
    for _ in range(100000):
        s_in, s_w, s_out = (float(np.float32(v)) for v in 10.0 ** rng.uniform(-4, 0, 3))
        a = quant.conv_per_tensor_multiplier(s_in, s_w, s_out)
        b = quant.quantize_multiplier(s_in * s_w / s_out)
        if a != b:
            break
    else:
        pytest.fail("no scale triple distinguishes float32 and double products")
    rng2 = np.random.default_rng(6)
    x = int8_tensor("x", (1, 64), s_in, 0)
    w = int8_tensor("w", (16, 64), s_w, 0, data=_weights(rng2, (16, 64)))
    y = int8_tensor("y", (1, 16), s_out, 0)
    blob = single_op_model("FULLY_CONNECTED", [x, w, None], [y], {})
    gen = generate(parse_tflite(blob))
    (layer,) = gen.layers
    assert layer.params["per_channel"] == 0
    decl = next(line for line in gen.source.splitlines()
                if line.startswith(f"static const int32_t {layer.params['out_mult']}["))
    assert decl.endswith(f"{{{a[0]}}};"), (decl, a, b)
    _check(SaturatingCase(blob, [(1, 64)], {"scales": (s_in, s_w, s_out)}), runner, 5)


# --------------------------------------------------------------------------- lowering details


def _lower_single(blob: bytes) -> Any:
    return generate(parse_tflite(blob)).layers[0]


def test_conv_layer_params_and_macs() -> None:
    opts = {"padding": "SAME", "stride_h": 2, "stride_w": 2, "dilation_h_factor": 1,
            "dilation_w_factor": 1, "fused_activation_function": "RELU6"}
    case = _conv_model("CONV_2D", (1, 9, 9, 3), (8, 3, 3, 3), (1, 5, 5, 8), opts,
                       w_scales=[0.01] * 8)
    layer = _lower_single(case.blob)
    assert layer.kernel == "tm_conv2d_s8" and layer.params_type == "tm_conv2d_s8_params"
    assert layer.macs == 5 * 5 * 8 * 3 * 3 * 3
    p = layer.params
    assert (p["out_h"], p["out_w"], p["pad_h"], p["pad_w"]) == (5, 5, 1, 1)
    assert p["input_offset"] == 5 and p["output_offset"] == 3
    lo, hi = quant.activation_range_quantized("RELU6", 0.05, 3)
    assert (p["act_min"], p["act_max"]) == (lo, hi)


def test_dwconv_and_fc_macs() -> None:
    opts = {"padding": "VALID", "stride_h": 1, "stride_w": 1, "depth_multiplier": 2,
            "fused_activation_function": "NONE"}
    case = _conv_model("DEPTHWISE_CONV_2D", (2, 6, 6, 3), (1, 3, 3, 6), (2, 4, 4, 6), opts,
                       w_scales=[0.01] * 6)
    assert _lower_single(case.blob).macs == 2 * 4 * 4 * 6 * 9
    fc = fc_case(0)
    layer = _lower_single(fc.blob)
    p = layer.params
    assert layer.macs == p["batches"] * p["out_depth"] * p["accum_depth"]


def _const_array(gen: Any, symbol: str) -> list[int]:
    decl = next(line for line in gen.source.splitlines()
                if line.startswith("static const int32_t ") and f" {symbol}[" in line)
    return [int(v) for v in decl.split("{", 1)[1].rstrip("};").split(",")]


def test_kernel_sums_are_bias_plus_offset_times_weight_sums() -> None:
    """kernel_sums[c] = bias[c] + input_offset * sum(filter of c), exact int32, per op."""
    rng = np.random.default_rng(4)
    conv_w = _weights(rng, (3, 2, 2, 5))
    w = int8_tensor("w", (3, 2, 2, 5), data=conv_w, per_channel_scales=[0.01, 0.02, 0.03])
    bias = np.array([100, -7, 2**31 - 1], np.int32)  # the last one wraps once offset is added
    blob = single_op_model("CONV_2D", [int8_tensor("x", (1, 4, 4, 5), 0.1, -20), w,
                                       bias_tensor("b", bias, 0.1, w)],
                           [int8_tensor("y", (1, 4, 4, 3), 0.3, 0)],
                           {"padding": "SAME", "stride_h": 1, "stride_w": 1})
    gen = generate(parse_tflite(blob))
    want = [int(bv) + 20 * int(conv_w[c].astype(np.int64).sum()) for c, bv in enumerate(bias)]
    want = [((v + 2**31) % 2**32) - 2**31 for v in want]
    assert _const_array(gen, gen.layers[0].params["kernel_sums"]) == want
    dw_w = _weights(rng, (1, 3, 3, 4))
    wd = int8_tensor("w", (1, 3, 3, 4), data=dw_w, per_channel_scales=[0.01] * 4,
                     quantized_dimension=3)
    blob = single_op_model("DEPTHWISE_CONV_2D", [int8_tensor("x", (1, 5, 5, 4), 0.1, 3), wd],
                           [int8_tensor("y", (1, 5, 5, 4), 0.3, 0)],
                           {"padding": "SAME", "stride_h": 1, "stride_w": 1,
                            "depth_multiplier": 1})
    gen = generate(parse_tflite(blob))
    want = [-3 * int(dw_w[0, :, :, c].astype(np.int64).sum()) for c in range(4)]
    assert _const_array(gen, gen.layers[0].params["kernel_sums"]) == want
    fc_w = _weights(rng, (6, 9))
    wf = int8_tensor("w", (6, 9), 0.01, 0, data=fc_w)
    fb = np.arange(6, dtype=np.int32) * 1000
    blob = single_op_model("FULLY_CONNECTED", [int8_tensor("x", (2, 9), 0.1, 5), wf,
                                               bias_tensor("b", fb, 0.1, wf)],
                           [int8_tensor("y", (2, 6), 0.3, 0)], {})
    gen = generate(parse_tflite(blob))
    want = [int(fb[c]) - 5 * int(fc_w[c].astype(np.int64).sum()) for c in range(6)]
    assert _const_array(gen, gen.layers[0].params["kernel_sums"]) == want


def test_fc_bias_optional_is_null() -> None:
    w = int8_tensor("w", (3, 4), 0.01, 0, data=np.ones((3, 4), np.int8))
    blob = single_op_model("FULLY_CONNECTED", [int8_tensor("x", (1, 4), 0.1, 0), w, None],
                           [int8_tensor("y", (1, 3), 0.1, 0)], {})
    assert _lower_single(blob).params["bias"] == 0


def _expect_unsupported(blob: bytes, *fragments: str) -> None:
    with pytest.raises(UnsupportedModelError) as info:
        generate(parse_tflite(blob))
    msg = str(info.value)
    for frag in fragments:
        assert frag in msg, msg


def test_rejects_float_conv() -> None:
    """Float32 weights under int8 activations (a hybrid model) are not supported.

    All-float32 convolutions now lower to the float32 kernels (lower/float32.py);
    the int8 lowering must still name the offending tensor type."""
    x = int8_tensor("x", (1, 4, 4, 2), 0.1, 0)
    w = tensor("w", (2, 3, 3, 2), TensorType.FLOAT32, data=np.zeros((2, 3, 3, 2), np.float32))
    y = int8_tensor("y", (1, 4, 4, 2), 0.1, 0)
    blob = single_op_model("CONV_2D", [x, w, None], [y], {"padding": "SAME", "stride_h": 1,
                                                          "stride_w": 1})
    _expect_unsupported(blob, "operator 0", "CONV_2D", "FLOAT32")


def test_int16_activations_lower_to_16x8_and_int64_bias_needs_them() -> None:
    """int16 activations take the 16x8 kernels (tests/firmware/test_kernels_int16.py); an int64
    bias with int8 activations is still rejected."""
    w = int8_tensor("w", (2, 4), 0.01, 0, data=np.ones((2, 4), np.int8))
    x16 = tensor("x", (1, 4), TensorType.INT16, scale=0.1, zero_point=0)
    y16 = tensor("y", (1, 2), TensorType.INT16, scale=0.1, zero_point=0)
    layer = _lower_single(single_op_model("FULLY_CONNECTED", [x16, w, None], [y16], {}))
    assert layer.kernel == "tm_fully_connected_s16"
    b64 = tensor("b", (2,), TensorType.INT64, scale=0.001, zero_point=0,
                 data=np.zeros(2, np.int64))
    blob = single_op_model("FULLY_CONNECTED", [int8_tensor("x", (1, 4), 0.1, 0), w, b64],
                           [int8_tensor("y", (1, 2), 0.1, 0)], {})
    _expect_unsupported(blob, "operator 0", "INT64")


def test_rejects_asymmetric_conv_weights_and_bad_geometry() -> None:
    x = int8_tensor("x", (1, 4, 4, 2), 0.1, 0)
    w = int8_tensor("w", (2, 3, 3, 2), 0.01, 5, data=np.ones((2, 3, 3, 2), np.int8))
    y = int8_tensor("y", (1, 4, 4, 2), 0.1, 0)
    opts = {"padding": "SAME", "stride_h": 1, "stride_w": 1}
    _expect_unsupported(single_op_model("CONV_2D", [x, w, None], [y], opts), "zero point")
    w0 = int8_tensor("w", (2, 3, 3, 2), 0.01, 0, data=np.ones((2, 3, 3, 2), np.int8))
    y_bad = int8_tensor("y", (1, 3, 3, 2), 0.1, 0)
    _expect_unsupported(single_op_model("CONV_2D", [x, w0, None], [y_bad], opts),
                        "output shape")


def test_rejects_depth_multiplier_mismatch_and_unknown_activation() -> None:
    x = int8_tensor("x", (1, 4, 4, 2), 0.1, 0)
    w = int8_tensor("w", (1, 3, 3, 4), 0.01, 0, data=np.ones((1, 3, 3, 4), np.int8),
                    quantized_dimension=3)
    y = int8_tensor("y", (1, 4, 4, 4), 0.1, 0)
    opts = {"padding": "SAME", "stride_h": 1, "stride_w": 1, "depth_multiplier": 1}
    _expect_unsupported(single_op_model("DEPTHWISE_CONV_2D", [x, w, None], [y], opts),
                        "depth_multiplier")
    opts2 = dict(opts, depth_multiplier=2, fused_activation_function="TANH")
    _expect_unsupported(single_op_model("DEPTHWISE_CONV_2D", [x, w, None], [y], opts2),
                        "operator 0", "TANH")


# --------------------------------------------------------------------------- C fixed point


def _srdhm(a: int, b: int) -> int:
    """TFLM SaturatingRoundingDoublingHighMul, written from its definition."""
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    q = abs(v) >> 31
    return q if v >= 0 else -q


def _rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    rem = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > threshold else 0)


def _wrap32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def mbqm_reference(x: int, m: int, shift: int) -> int:
    """TFLM MultiplyByQuantizedMultiplier (double rounding)."""
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    return _rdbpot(_srdhm(_wrap32(x * (1 << left)), m), right)


_FP_PROGRAM = r"""
#include <stdio.h>
#include "tm_fixedpoint.h"
int main(void) {
  long long x, m; int s;
  while (scanf("%lld %lld %d", &x, &m, &s) == 3) {
    const int left = s > 0 ? s : 0, right = s > 0 ? 0 : -s;
    const int32_t mask = (int32_t)((UINT32_C(1) << right) - 1u);
    uint32_t c_lo = 0;
    int32_t c_hi = 0;
    int fast = 0;
    if (right >= 1) {
      tm_requantize_right_constants(right, &c_lo, &c_hi);
      fast = (int)tm_requantize_right((int32_t)x, (int32_t)m, c_lo, c_hi, right);
    }
    printf("%d %d %d %d %d\n", (int)tm_multiply_by_quantized_multiplier((int32_t)x, (int32_t)m, s),
           (int)tm_sat_rounding_doubling_high_mul((int32_t)x, (int32_t)m),
           (int)tm_rounding_doubling_high_mul_nosat((int32_t)x, (int32_t)m),
           (int)tm_requantize_split((int32_t)x, (int32_t)m, left, right, mask), fast);
  }
  return 0;
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")
def test_fixedpoint_helpers_match_tflm_definition(tmp_path: Path) -> None:
    """tm_fixedpoint.h == TFLM's double-rounding arithmetic on edge and random values,
    including the no-saturation / pre-split-shift forms the optimized kernels use."""
    src = tmp_path / "fp.c"
    src.write_text(_FP_PROGRAM)
    exe = tmp_path / "fp"
    subprocess.run(["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror",
                    f"-I{RUNTIME / 'include'}", str(src), "-o", str(exe)], check=True)
    edge_x = [0, 1, -1, 2, -2, 127, -128, 2**31 - 1, -(2**31), 2**30, -(2**30), 12345, -12345,
              1 << 16, -(1 << 16) - 1]
    edge_m = [0, 1, 2**30, 2**31 - 1, -(2**31), 1518500250, 1073741825]
    edge_s = [-31, -20, -8, -1, 0, 1, 5, 30]
    cases = [(x, m, s) for x in edge_x for m in edge_m for s in edge_s]
    rng = np.random.default_rng(0)
    for _ in range(20000):
        cases.append((int(rng.integers(-(2**31), 2**31)), int(rng.integers(2**30, 2**31)),
                      int(rng.integers(-31, 8))))
    for _ in range(20000):  # typical accumulators, any non-negative multiplier
        cases.append((int(rng.integers(-(2**20), 2**20)), int(rng.integers(0, 2**31)),
                      int(rng.integers(-31, 0))))
    stdin = "".join(f"{x} {m} {s}\n" for x, m, s in cases)
    out = subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, check=True)
    lines = out.stdout.split("\n")
    for (x, m, s), line in zip(cases, lines):
        got_mb, got_hm, got_nosat, got_split, got_fast = (int(v) for v in line.split())
        assert got_hm == _srdhm(x, m), (x, m)
        assert got_mb == mbqm_reference(x, m, s), (x, m, s)
        if m != -(2**31):
            # The optimized kernels' one-SMLAL forms (multipliers are never INT32_MIN).
            assert got_nosat == _srdhm(x, m), (x, m)
            assert got_split == mbqm_reference(x, m, s), (x, m, s)
        if m >= 0 and s <= -1:
            assert got_fast == mbqm_reference(x, m, s), (x, m, s)


@pytest.mark.parametrize("target", sorted(WARNING_TARGETS))
def test_conv_kernels_compile_warning_free(tmp_path: Path, target: str) -> None:
    """Kernels must build with -Wall -Wextra -Werror for host and every Cortex-M flavour."""
    assert_kernels_compile_warning_free(tmp_path, target,
                                        ("conv2d.c", "depthwise_conv2d.c", "fully_connected.c"))


@pytest.mark.parametrize("opt", ["-O0", "-Os", "-O3"])
def test_optimized_kernels_compile_at_every_opt_level(tmp_path: Path, opt: str) -> None:
    """BuildConfig allows any -O level: the optimized set's inline-asm cores must still
    find their registers (at -O0 the FC core falls back to C)."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    for n in ("conv2d.c", "depthwise_conv2d.c", "fully_connected.c"):
        src = RUNTIME / "kernels" / "optimized" / n
        subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16",
                        "-mfloat-abi=hard", opt, "-std=c11", "-Wall", "-Wextra", "-Werror",
                        f"-I{RUNTIME / 'include'}", "-c", str(src), "-o",
                        str(tmp_path / (src.stem + ".o"))], check=True)
