"""Lowerings of int16x8 models: int16 activations, int8 weights (see base.py).

CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD, MUL, AVERAGE_POOL_2D,
MAX_POOL_2D, LOGISTIC, TANH, QUANTIZE (float/int8/int16 -> int16, int16 -> int8) and DEQUANTIZE
(int16 -> float); RESHAPE and the data-movement ops are type-agnostic already.

TFLM's 16x8 arithmetic differs from int8 in three ways reproduced here:
 * activations are symmetric (zero point 0, Prepare rejects anything else);
 * conv / depthwise / fully-connected accumulate in int64 when the bias is int64
   (what the converter writes) or is absent, and requantize with the 64-bit
   ``MultiplyByQuantizedMultiplier`` (multiplier reduced to 16 bits, one
   rounding shift); with an int32 bias TFLM accumulates in int32 and uses the
   32-bit double-rounding form -- the kernels take a flag (each path pinned by a
   test whose deep accumulations tell the two roundings apart);
 * ADD rescales with a left shift of 15 instead of 20.
Multipliers and clamps are the int8 ones (firmware/quant.py) over the int16 range.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np

from tinymeter.firmware import quant
from tinymeter.firmware.lower.base import (
    CValue,
    Layer,
    LowerContext,
    Lowering,
    bias_ptr,
    conv_window,
    fail,
    fused_activation,
    naming_operator,
    per_tensor_qparams,
    pool_window,
    require_types,
    shape4,
    single_output_operands,
)
from tinymeter.firmware.lower.conv import _filter_quant, _io, _per_channel_arrays
from tinymeter.firmware.lower.elementwise import BroadcastPlan, operand_broadcast_plan
from tinymeter.models.tflite import Operator, TensorType

log = logging.getLogger(__name__)

_S16 = (TensorType.INT16,)
_S8 = (TensorType.INT8,)
INT16_MIN, INT16_MAX = -32768, 32767


def _symmetric(ctx: LowerContext, op: Operator, index: int, *tensors: int) -> list[float]:
    """Scales of int16 tensors, which TFLM requires to have zero point 0."""
    scales = []
    for t in tensors:
        s, z = per_tensor_qparams(ctx, op, index, t)
        if z != 0:
            raise fail(op, index, f"int16 tensor {t} has zero point {z}; TFLM requires 0")
        scales.append(s)
    return scales


def _act16(op: Operator, index: int, scale: float) -> tuple[int, int]:
    with naming_operator(op, index):
        return quant.activation_range_quantized(fused_activation(op), scale, 0, INT16_MIN,
                                                INT16_MAX)


def _bias16(ctx: LowerContext, op: Operator, index: int, b: int, channels: int
            ) -> tuple[CValue, int]:
    """(bias pointer or 0, 1 if TFLM accumulates in int64 -- int64 bias or none -- else 0)."""
    if b < 0:
        return 0, 1  # no bias: TFLM's int64 path (tested; not its int32 one)
    require_types(ctx, op, index, (TensorType.INT32, TensorType.INT64), [b])
    return (f"(const void *){bias_ptr(ctx, op, index, b, channels)}",
            int(ctx.tensor(b).dtype == TensorType.INT64))


def _conv_head(ctx: LowerContext, op: Operator, index: int, out_ch: int,
               channel_dim: int) -> tuple[dict[str, CValue], bool]:
    x, w, b, y = _io(op, index)
    require_types(ctx, op, index, _S16, [x, y])
    require_types(ctx, op, index, _S8, [w])
    s_in, s_out = _symmetric(ctx, op, index, x, y)
    fq = _filter_quant(ctx, op, index, w, channel_dim)
    with naming_operator(op, index):
        mults, shifts = quant.conv_per_channel_multipliers(s_in, fq.scale, s_out, out_ch)
    lo, hi = _act16(op, index, s_out)
    mult_sym, shift_sym = _per_channel_arrays(ctx, mults, shifts, index)
    bias, acc64 = _bias16(ctx, op, index, b, out_ch)
    head: dict[str, CValue] = {
        "input": ctx.ptr(x), "filter": ctx.ptr(w), "bias": bias, "output": ctx.ptr(y),
        "out_mult": mult_sym, "out_shift": shift_sym, "act_min": lo, "act_max": hi,
        "acc64": acc64,
    }
    return head, len(fq.scale) > 1


def lower_conv2d_s16(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """CONV_2D 16x8 -> ``tm_conv2d_s16`` (reference_integer_ops::ConvPerChannel, int16)."""
    x, w, _, y = _io(op, index)
    out_ch, f_h, f_w, f_in = shape4(ctx, op, index, w, "filter")
    win = conv_window(ctx, op, index, x, y, (f_h, f_w), out_ch)
    if win.in_ch % f_in or out_ch % (win.in_ch // f_in):
        raise fail(op, index, f"input channels {win.in_ch} / filter input channels {f_in} / "
                              f"output channels {out_ch} do not form groups")
    head, per_channel = _conv_head(ctx, op, index, out_ch, 0)
    params = {**head, **win.params(), "in_ch": win.in_ch, "out_ch": out_ch,
              "filter_in_ch": f_in, "depth_multiplier": 0}
    return Layer(index, op.opcode, "tm_conv2d_s16", "tm_conv_s16_params", params,
                 win.out_pixels * out_ch * f_h * f_w * f_in,
                 {**win.info(), "per_channel": per_channel, "dtype": "int16x8"})


def lower_depthwise_conv2d_s16(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """DEPTHWISE_CONV_2D 16x8 -> ``tm_depthwise_conv2d_s16``."""
    x, w, _, y = _io(op, index)
    one, f_h, f_w, out_ch = shape4(ctx, op, index, w, "filter")
    if one != 1:
        raise fail(op, index, "filter shape must start with 1")
    win = conv_window(ctx, op, index, x, y, (f_h, f_w), out_ch)
    dm = int(op.options.get("depth_multiplier", 1) or 1)
    if out_ch != win.in_ch * dm:
        raise fail(op, index, f"output channels {out_ch} != input channels {win.in_ch} x "
                              f"depth_multiplier {dm}")
    if len(op.inputs) < 3 or op.inputs[2] < 0 or \
            ctx.tensor(op.inputs[2]).dtype != TensorType.INT64:
        # tflite-micro's 16x8 depthwise kernel reads the bias as int64 (it crashes
        # without one and misreads an int32 one): no reference result to match.
        raise fail(op, index, "int16 DEPTHWISE_CONV_2D needs an int64 bias (TFLM's kernel "
                              "reads it as int64; the converter writes one)")
    head, per_channel = _conv_head(ctx, op, index, out_ch, 3)
    params = {**head, **win.params(), "in_ch": win.in_ch, "out_ch": out_ch,
              "filter_in_ch": 1, "depth_multiplier": dm}
    return Layer(index, op.opcode, "tm_depthwise_conv2d_s16", "tm_conv_s16_params", params,
                 win.out_pixels * out_ch * f_h * f_w,
                 {**win.info(), "per_channel": per_channel, "dtype": "int16x8"})


def lower_fully_connected_s16(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """FULLY_CONNECTED 16x8 -> ``tm_fully_connected_s16`` (per-tensor or per-channel)."""
    x, w, b, y = _io(op, index)
    require_types(ctx, op, index, _S16, [x, y])
    require_types(ctx, op, index, _S8, [w])
    f_shape, out_shape = ctx.tensor(w).shape, ctx.tensor(y).shape
    if len(f_shape) != 2 or not out_shape:
        raise fail(op, index, f"filter shape {f_shape} must be 2-D")
    out_depth, accum = f_shape
    if out_shape[-1] != out_depth or ctx.tensor(x).numel % accum:
        raise fail(op, index, f"shapes do not match: input {tuple(ctx.tensor(x).shape)}, "
                              f"filter {tuple(f_shape)}, output {tuple(out_shape)}")
    batches = ctx.tensor(x).numel // accum
    s_in, s_out = _symmetric(ctx, op, index, x, y)
    fq = _filter_quant(ctx, op, index, w, 0)
    with naming_operator(op, index):
        if len(fq.scale) > 1:
            mults, shifts = quant.conv_per_channel_multipliers(s_in, fq.scale, s_out, out_depth)
        else:
            m, s = quant.conv_per_tensor_multiplier(s_in, fq.scale[0], s_out)
            mults, shifts = [m] * out_depth, [s] * out_depth
    mult_sym, shift_sym = _per_channel_arrays(ctx, mults, shifts, index)
    lo, hi = _act16(op, index, s_out)
    bias, acc64 = _bias16(ctx, op, index, b, out_depth)
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "filter": ctx.ptr(w), "bias": bias, "output": ctx.ptr(y),
        "out_mult": mult_sym, "out_shift": shift_sym, "act_min": lo, "act_max": hi,
        "acc64": acc64, "batches": batches, "accum_depth": accum, "out_depth": out_depth,
    }
    return Layer(index, op.opcode, "tm_fully_connected_s16", "tm_fully_connected_s16_params",
                 params, batches * out_depth * accum, {"batches": batches, "dtype": "int16x8"})


# --------------------------------------------------------------------------- ADD / MUL


def _binary(ctx: LowerContext, op: Operator, index: int) -> tuple[int, int, int, BroadcastPlan]:
    (a, b), y = single_output_operands(op, index, 2)
    require_types(ctx, op, index, _S16, [a, b, y])
    return a, b, y, operand_broadcast_plan(ctx, op, index, a, b, y)


def lower_add_s16(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """ADD 16x8 -> ``tm_add_s16`` (ADD's int8 formula with left shift 15)."""
    a, b, y, plan = _binary(ctx, op, index)
    s1, s2, so = _symmetric(ctx, op, index, a, b, y)
    with naming_operator(op, index):
        q = quant.add_quant_params(s1, s2, so, left_shift=15)
    lo, hi = _act16(op, index, so)
    params: dict[str, CValue] = {
        "input1": ctx.ptr(a), "input2": ctx.ptr(b), "output": ctx.ptr(y),
        "left_shift": q.left_shift,
        "input1_multiplier": q.input1_multiplier, "input1_shift": q.input1_shift,
        "input2_multiplier": q.input2_multiplier, "input2_shift": q.input2_shift,
        "output_multiplier": q.output_multiplier, "output_shift": q.output_shift,
        "act_min": lo, "act_max": hi, **plan.params(),
    }
    return Layer(index, op.opcode, "tm_add_s16", "tm_add_s16_params", params,
                 plan.size, {"broadcast": plan.broadcast, "dtype": "int16"})


def lower_mul_s16(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """MUL 16x8 -> ``tm_mul_s16`` (MBQM(a * b) with the int8 multiplier)."""
    a, b, y, plan = _binary(ctx, op, index)
    s1, s2, so = _symmetric(ctx, op, index, a, b, y)
    with naming_operator(op, index):
        m, s = quant.mul_multiplier(s1, s2, so)
    lo, hi = _act16(op, index, so)
    params: dict[str, CValue] = {
        "input1": ctx.ptr(a), "input2": ctx.ptr(b), "output": ctx.ptr(y),
        "output_multiplier": m, "output_shift": s, "act_min": lo, "act_max": hi, **plan.params(),
    }
    return Layer(index, op.opcode, "tm_mul_s16", "tm_mul_s16_params", params,
                 plan.size, {"broadcast": plan.broadcast, "dtype": "int16"})


# --------------------------------------------------------------------------- pooling


def _lower_pool_s16(ctx: LowerContext, op: Operator, index: int, kernel: str) -> Layer:
    (x,), y = single_output_operands(op, index, 1)
    require_types(ctx, op, index, _S16, [x, y])
    s_in, s_out = _symmetric(ctx, op, index, x, y)
    if quant.f32(s_in) != quant.f32(s_out):
        raise fail(op, index, "input and output quantization differ (TFLM requires equal)")
    win = pool_window(ctx, op, index, x, y)
    lo, hi = _act16(op, index, s_out)
    params: dict[str, CValue] = {"input": ctx.ptr(x), "output": ctx.ptr(y), "act_min": lo,
                                 "act_max": hi, "channels": win.in_ch,
                                 **win.params(dilation=False)}
    return Layer(index, op.opcode, kernel, "tm_pool_s16_params", params,
                 win.out_pixels * win.in_ch * win.filter_h * win.filter_w,
                 {**win.info(), "dtype": "int16"})


def lower_avgpool_s16(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """AVERAGE_POOL_2D int16 -> ``tm_avgpool_s16``."""
    return _lower_pool_s16(ctx, op, index, "tm_avgpool_s16")


def lower_maxpool_s16(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """MAX_POOL_2D int16 -> ``tm_maxpool_s16``."""
    return _lower_pool_s16(ctx, op, index, "tm_maxpool_s16")


# --------------------------------------------------------------------------- QUANTIZE


_RANGES = {TensorType.INT8: (-128, 127), TensorType.INT16: (INT16_MIN, INT16_MAX)}


def lower_quantize_16(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """QUANTIZE to/from int16: float -> int16 (``tm_quantize_f32_s16``) or an integer
    requantization int8/int16 -> int8/int16 (``tm_requantize_int``)."""
    (x,), y = single_output_operands(op, index, 1)
    tx, ty = ctx.tensor(x), ctx.tensor(y)
    require_types(ctx, op, index, (TensorType.FLOAT32, TensorType.INT8, TensorType.INT16), [x])
    require_types(ctx, op, index, (TensorType.INT8, TensorType.INT16), [y])
    n = tx.numel
    if ty.numel != n:
        raise fail(op, index, "input and output element counts differ")
    s_out, z_out = per_tensor_qparams(ctx, op, index, y)
    lo, hi = _RANGES[ty.dtype]
    if tx.dtype == TensorType.FLOAT32:
        if ty.dtype != TensorType.INT16:
            raise fail(op, index, "float -> int8 QUANTIZE belongs to the int8 lowering")
        params: dict[str, CValue] = {"input": ctx.ptr(x), "output": ctx.ptr(y), "size": n,
                                     "scale": float(quant.f32(s_out)), "zero_point": z_out}
        return Layer(index, op.opcode, "tm_quantize_f32_s16", "tm_quantize_f32_s16_params",
                     params, n, {"from": "float32", "to": "int16"})
    s_in, z_in = per_tensor_qparams(ctx, op, index, x)
    mult, shift = quant.requantize_multiplier(s_in, s_out)
    if shift > 30:
        raise fail(op, index, f"requantization scale {s_in / s_out} too large")
    params = {"input": f"(const void *){ctx.ptr(x)}", "output": f"(void *){ctx.ptr(y)}",
              "size": n, "in_bytes": tx.dtype.itemsize, "out_bytes": ty.dtype.itemsize,
              "input_zero_point": z_in, "output_zero_point": z_out, "multiplier": mult,
              "shift": shift, "out_min": lo, "out_max": hi}
    return Layer(index, op.opcode, "tm_requantize_int", "tm_requantize_int_params", params, n,
                 {"from": tx.dtype.name.lower(), "to": ty.dtype.name.lower()})


def lower_dequantize_s16(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """DEQUANTIZE int16 -> float (``tm_dequantize_s16_f32``: scale * (x - zp))."""
    (x,), y = single_output_operands(op, index, 1)
    require_types(ctx, op, index, _S16, [x])
    require_types(ctx, op, index, (TensorType.FLOAT32,), [y])
    n = ctx.tensor(x).numel
    if ctx.tensor(y).numel != n:
        raise fail(op, index, "input and output element counts differ")
    s, z = per_tensor_qparams(ctx, op, index, x)
    params: dict[str, CValue] = {"input": ctx.ptr(x), "output": ctx.ptr(y), "size": n,
                                 "scale": float(quant.f32(s)), "zero_point": z}
    return Layer(index, op.opcode, "tm_dequantize_s16_f32", "tm_dequantize_s16_f32_params",
                 params, n, {"from": "int16", "to": "float32"})


# --------------------------------------------------------------------------- SOFTMAX


def _round_f32(x: np.float32) -> np.float32:
    """``TfLiteRound`` on float (half away from zero), as float32."""
    return np.float32(quant.tfl_round(float(x)))


def gen_lut_s16(func: Callable[[np.float32], np.float32], input_min: float,
                input_max: float) -> list[int]:
    """TFLM's ``gen_lut<float, int16_t, int16_t>`` over [input_min, input_max] with
    output range [-1, 1]: 512 interpolation bases, each biased by half the
    midpoint interpolation error, plus the end value (513 entries), in float32."""
    f32 = np.float32
    lo, hi = f32(input_min), f32(input_max)
    step = (hi - lo) / f32(512)
    half = step / f32(2)
    scale = f32(65536.0) / (f32(1.0) - f32(-1.0))
    lut = []
    for i in range(512):
        x = lo + f32(i) * step
        val, mid, nxt = func(x), func(x + half), func(lo + f32(i + 1) * step)
        sample = _round_f32(val * scale)
        interp = _round_f32((nxt * scale + _round_f32(val * scale)) / f32(2))
        bias = _round_f32((interp - _round_f32(mid * scale)) / f32(2))
        lut.append(int(min(max(sample - bias, f32(INT16_MIN)), f32(INT16_MAX))))
    lut.append(int(min(max(_round_f32(func(hi) * scale), f32(INT16_MIN)), f32(INT16_MAX))))
    return lut


def _expf(x: np.float32) -> np.float32:
    return np.float32(math.exp(float(x)))


def _one_over_one_plus_x(x: np.float32) -> np.float32:
    return np.float32(1.0) / (np.float32(1.0) + x)


def lower_softmax_s16(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """SOFTMAX int16 -> ``tm_softmax_s16`` (TFLM's SoftmaxInt16: exp and 1/(1+x) LUTs)."""
    (x,), y = single_output_operands(op, index, 1)
    require_types(ctx, op, index, _S16, [x, y])
    s_in, s_out = _symmetric(ctx, op, index, x, y)
    if abs(float(quant.f32(s_out)) - 1.0 / 32768) > 0.001 / 32768:
        raise fail(op, index, f"output scale {s_out} must be 1/32768 (TFLM requires it)")
    shape = tuple(ctx.tensor(x).shape)
    if not shape or tuple(ctx.tensor(y).shape) != shape:
        raise fail(op, index, "input and output shapes must match")
    beta = float(quant.f32(float(op.options.get("beta", 1.0))))
    mult, shift = quant.quantize_multiplier(float(quant.f32(s_in)) * beta / (10.0 / 65535.0))
    depth = shape[-1]
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "output": ctx.ptr(y), "outer_size": math.prod(shape) // depth,
        "depth": depth, "input_multiplier": mult, "input_left_shift": shift,
        "exp_lut": ctx.const_array("int16_t", gen_lut_s16(_expf, -10.0, 0.0), "exp_lut"),
        "one_over_one_plus_x_lut": ctx.const_array(
            "int16_t", gen_lut_s16(_one_over_one_plus_x, 0.0, 1.0), "recip_lut"),
    }
    return Layer(index, op.opcode, "tm_softmax_s16", "tm_softmax_s16_params", params,
                 math.prod(shape), {"depth": depth, "dtype": "int16"})


# --------------------------------------------------------------------------- LOGISTIC / TANH


def _lower_sigmoid16(ctx: LowerContext, op: Operator, index: int, tanh: bool) -> Layer:
    (x,), y = single_output_operands(op, index, 1)
    require_types(ctx, op, index, _S16, [x, y])
    s_in, s_out = _symmetric(ctx, op, index, x, y)
    log2_out, pot_out = quant.checked_log2(s_out)
    if not pot_out or log2_out != -15:
        raise fail(op, index, f"output scale {s_out} must be 2^-15 (TFLM requires it)")
    n = ctx.tensor(x).numel
    if ctx.tensor(y).numel != n:
        raise fail(op, index, "input and output element counts differ")
    with naming_operator(op, index):
        mult, shift = quant.sigmoid16_input_params(s_in, tanh)
    params: dict[str, CValue] = {"input": ctx.ptr(x), "output": ctx.ptr(y), "size": n,
                                 "input_multiplier": mult, "input_shift": shift}
    kernel = "tm_tanh_s16" if tanh else "tm_logistic_s16"
    return Layer(index, op.opcode, kernel, "tm_sigmoid_s16_params", params, n,
                 {"dtype": "int16", "input_multiplier": mult, "input_shift": shift})


def lower_logistic_s16(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """LOGISTIC int16 -> ``tm_logistic_s16`` (TFLM's sigmoid-table interpolation)."""
    return _lower_sigmoid16(ctx, op, index, tanh=False)


def lower_tanh_s16(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """TANH int16 -> ``tm_tanh_s16`` (the sigmoid table at twice the resolution)."""
    return _lower_sigmoid16(ctx, op, index, tanh=True)


#: Lowerings chosen when an op's first input is int16 (see lower/__init__.py).
INT16_LOWERINGS: dict[str, Lowering] = {
    "CONV_2D": lower_conv2d_s16,
    "DEPTHWISE_CONV_2D": lower_depthwise_conv2d_s16,
    "FULLY_CONNECTED": lower_fully_connected_s16,
    "ADD": lower_add_s16,
    "MUL": lower_mul_s16,
    "AVERAGE_POOL_2D": lower_avgpool_s16,
    "MAX_POOL_2D": lower_maxpool_s16,
    "QUANTIZE": lower_quantize_16,
    "DEQUANTIZE": lower_dequantize_s16,
    "SOFTMAX": lower_softmax_s16,
    "LOGISTIC": lower_logistic_s16,
    "TANH": lower_tanh_s16,
}
