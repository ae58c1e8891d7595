"""Lowerings of float32 kernels (see base.py for the contract).

Float models need no quantization arithmetic, but bit-exactness with TFLM's
reference float kernels still depends on the host: the activation range must be
TFLM's ``CalculateActivationRange<float>`` (+-FLT_MAX, not +-inf, so an overflow
to infinity is clamped as in TFLM), the window geometry must be TFLM's, and the
kernels (``runtime/kernels/reference/*_f32.c``) must add in TFLM's order.

The registry in ``__init__`` dispatches an op to these lowerings when its first
input is float32. RESHAPE needs no float version: its lowering (reshape.py) is a
byte copy for every type. CONCATENATION, PAD, QUANTIZE and DEQUANTIZE handle both
types in misc.py.
"""

from __future__ import annotations

import logging
import math

from tinymeter.firmware import quant
from tinymeter.firmware.lower.base import (
    CValue,
    Layer,
    LowerContext,
    Lowering,
    activation_range_float,
    bias_ptr,
    conv_window,
    fail,
    pool_window,
    require_types,
    shape4,
    single_output_operands,
)
from tinymeter.firmware.lower.elementwise import operand_broadcast_plan
from tinymeter.firmware.lower.misc import mean_plan
from tinymeter.models.tflite import Operator, TensorType

log = logging.getLogger(__name__)

_F32 = (TensorType.FLOAT32,)
_I32 = (TensorType.INT32,)


def _conv_operands(ctx: LowerContext, op: Operator, index: int) -> tuple[int, int, int, int]:
    if len(op.inputs) not in (2, 3) or len(op.outputs) != 1 or min(op.inputs[:2]) < 0:
        raise fail(op, index, "expects input, filter, optional bias and 1 output")
    x, w = op.inputs[0], op.inputs[1]
    b = op.inputs[2] if len(op.inputs) == 3 else -1
    y = op.outputs[0]
    require_types(ctx, op, index, _F32, [x, w, b, y])
    return x, w, b, y


def lower_conv2d_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """CONV_2D float -> ``tm_conv2d_f32`` (TFLM reference_ops::Conv)."""
    x, w, b, y = _conv_operands(ctx, op, index)
    out_ch, fh, fw, f_in = shape4(ctx, op, index, w, "filter")
    win = conv_window(ctx, op, index, x, y, (fh, fw), out_ch)
    if win.in_ch % f_in or out_ch % (win.in_ch // f_in):
        raise fail(op, index, f"channels {win.in_ch} -> {out_ch} do not form groups of filter "
                              f"depth {f_in}")
    lo, hi = activation_range_float(op, index)
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "filter": ctx.ptr(w), "bias": bias_ptr(ctx, op, index, b, out_ch),
        "output": ctx.ptr(y), "act_min": lo, "act_max": hi, "in_ch": win.in_ch,
        "out_ch": out_ch, "filter_in_ch": f_in, **win.params(),
    }
    return Layer(index, op.opcode, "tm_conv2d_f32", "tm_conv2d_f32_params", params,
                 win.out_pixels * out_ch * fh * fw * f_in, {**win.info(), "dtype": "float32"})


def lower_depthwise_conv2d_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """DEPTHWISE_CONV_2D float -> ``tm_depthwise_conv2d_f32`` (reference_ops::DepthwiseConv)."""
    x, w, b, y = _conv_operands(ctx, op, index)
    one, fh, fw, out_ch = shape4(ctx, op, index, w, "filter")
    win = conv_window(ctx, op, index, x, y, (fh, fw), out_ch)
    dm = int(op.options.get("depth_multiplier", 1) or 1)
    if one != 1 or dm < 1 or out_ch != win.in_ch * dm:
        raise fail(op, index, f"filter shape {(one, fh, fw, out_ch)} does not match input "
                              f"channels {win.in_ch} x depth_multiplier {dm}")
    lo, hi = activation_range_float(op, index)
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "filter": ctx.ptr(w), "bias": bias_ptr(ctx, op, index, b, out_ch),
        "output": ctx.ptr(y), "act_min": lo, "act_max": hi, "in_ch": win.in_ch,
        "out_ch": out_ch, "depth_multiplier": dm, **win.params(),
    }
    return Layer(index, op.opcode, "tm_depthwise_conv2d_f32", "tm_depthwise_conv2d_f32_params",
                 params, win.out_pixels * out_ch * fh * fw,
                 {**win.info(), "depth_multiplier": dm, "dtype": "float32"})


def lower_fully_connected_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """FULLY_CONNECTED float -> ``tm_fully_connected_f32`` (reference_ops::FullyConnected)."""
    x, w, b, y = _conv_operands(ctx, op, index)
    fmt = str(op.options.get("weights_format", "DEFAULT"))
    if fmt != "DEFAULT":
        raise fail(op, index, f"weights_format {fmt} is not supported")
    f_shape = tuple(ctx.tensor(w).shape)
    out_shape = tuple(ctx.tensor(y).shape)
    if len(f_shape) < 2 or not out_shape or min(*f_shape, *out_shape) <= 0:
        raise fail(op, index, f"filter shape {f_shape} / output shape {out_shape} unsupported")
    accum, out_depth = f_shape[-1], out_shape[-1]
    if out_depth != f_shape[-2]:
        raise fail(op, index, f"output depth {out_depth} != filter rows {f_shape[-2]}")
    batches = math.prod(out_shape) // out_depth
    if ctx.tensor(x).numel != batches * accum:
        raise fail(op, index, f"input has {ctx.tensor(x).numel} elements, expected "
                              f"{batches} x {accum}")
    lo, hi = activation_range_float(op, index)
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "filter": ctx.ptr(w), "bias": bias_ptr(ctx, op, index, b, out_depth),
        "output": ctx.ptr(y), "act_min": lo, "act_max": hi, "batches": batches,
        "accum_depth": accum, "out_depth": out_depth,
    }
    return Layer(index, op.opcode, "tm_fully_connected_f32", "tm_fully_connected_f32_params",
                 params, batches * out_depth * accum, {"batches": batches, "dtype": "float32"})


def _lower_pool_f32(ctx: LowerContext, op: Operator, index: int, kernel: str) -> Layer:
    (x,), y = single_output_operands(op, index, 1)
    require_types(ctx, op, index, _F32, [x, y])
    win = pool_window(ctx, op, index, x, y)
    lo, hi = activation_range_float(op, index)
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "output": ctx.ptr(y), "act_min": lo, "act_max": hi,
        "channels": win.in_ch, **win.params(dilation=False),
    }
    return Layer(index, op.opcode, kernel, "tm_pool_f32_params", params,
                 win.out_pixels * win.in_ch * win.filter_h * win.filter_w,
                 {**win.info(), "dtype": "float32"})


def lower_average_pool2d_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """AVERAGE_POOL_2D float -> ``tm_avgpool_f32`` (reference_ops::AveragePool)."""
    return _lower_pool_f32(ctx, op, index, "tm_avgpool_f32")


def lower_max_pool2d_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """MAX_POOL_2D float -> ``tm_maxpool_f32`` (reference_ops::MaxPool)."""
    return _lower_pool_f32(ctx, op, index, "tm_maxpool_f32")


def lower_softmax_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """SOFTMAX float -> ``tm_softmax_f32`` over the last dimension (reference_ops::Softmax)."""
    (x,), y = single_output_operands(op, index, 1)
    require_types(ctx, op, index, _F32, [x, y])
    shape = tuple(ctx.tensor(x).shape)
    if not shape or any(d <= 0 for d in shape) or tuple(ctx.tensor(y).shape) != shape:
        raise fail(op, index, f"input shape {shape} and output shape "
                              f"{tuple(ctx.tensor(y).shape)} must match and be non-empty")
    beta = float(quant.f32(float(op.options.get("beta", 1.0))))
    depth, outer = shape[-1], math.prod(shape[:-1])
    params: dict[str, CValue] = {"input": ctx.ptr(x), "output": ctx.ptr(y), "outer_size": outer,
                                 "depth": depth, "beta": beta}
    return Layer(index, op.opcode, "tm_softmax_f32", "tm_softmax_f32_params", params,
                 outer * depth, {"rows": outer, "depth": depth, "beta": beta, "dtype": "float32"})


def _lower_binary_f32(ctx: LowerContext, op: Operator, index: int, kernel: str) -> Layer:
    (a, b), y = single_output_operands(op, index, 2)
    require_types(ctx, op, index, _F32, [a, b, y])
    plan = operand_broadcast_plan(ctx, op, index, a, b, y)
    lo, hi = activation_range_float(op, index)
    params: dict[str, CValue] = {
        "input1": ctx.ptr(a), "input2": ctx.ptr(b), "output": ctx.ptr(y),
        "act_min": lo, "act_max": hi, "size": plan.size, "broadcast": int(plan.broadcast),
        "dims": list(plan.dims), "strides1": list(plan.strides1), "strides2": list(plan.strides2),
    }
    return Layer(index, op.opcode, kernel, "tm_binary_f32_params", params, plan.size,
                 {"broadcast": plan.broadcast, "dtype": "float32"})


def lower_add_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """ADD float -> ``tm_add_f32`` (reference_ops::Add / BroadcastAdd6DSlow)."""
    return _lower_binary_f32(ctx, op, index, "tm_add_f32")


def lower_mul_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """MUL float -> ``tm_mul_f32`` (reference_ops::Mul / BroadcastMul6DSlow)."""
    return _lower_binary_f32(ctx, op, index, "tm_mul_f32")


def _lower_unary_f32(ctx: LowerContext, op: Operator, index: int, kernel: str) -> Layer:
    (x,), y = single_output_operands(op, index, 1)
    require_types(ctx, op, index, _F32, [x, y])
    n = ctx.tensor(x).numel
    if ctx.tensor(y).numel != n:
        raise fail(op, index, "input and output element counts differ")
    params: dict[str, CValue] = {"input": ctx.ptr(x), "output": ctx.ptr(y), "size": n}
    return Layer(index, op.opcode, kernel, "tm_unary_f32_params", params, n, {"dtype": "float32"})


def lower_logistic_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """LOGISTIC float -> ``tm_logistic_f32`` (reference_ops::Logistic with its cutoffs)."""
    return _lower_unary_f32(ctx, op, index, "tm_logistic_f32")


def lower_tanh_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """TANH float -> ``tm_tanh_f32`` (std::tanh; within 2 ULP of TFLM's x86 glibc result)."""
    return _lower_unary_f32(ctx, op, index, "tm_tanh_f32")


def lower_hard_swish_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """HARD_SWISH float -> ``tm_hard_swish_f32`` (reference_ops::HardSwish)."""
    return _lower_unary_f32(ctx, op, index, "tm_hard_swish_f32")


def lower_mean_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """MEAN float -> ``tm_mean_f32`` (reference_ops::Mean; the 4-D axes-{1,2} special
    case TFLM takes sums in the same order, so one kernel covers both)."""
    (x, axis), y = single_output_operands(op, index, 2)
    require_types(ctx, op, index, _F32, [x, y])
    require_types(ctx, op, index, _I32, [axis])
    plan = mean_plan(ctx, op, index, x, axis, y)
    params: dict[str, CValue] = {"input": ctx.ptr(x), "output": ctx.ptr(y), **plan.params()}
    return Layer(index, op.opcode, "tm_mean_f32", "tm_mean_f32_params", params,
                 ctx.tensor(x).numel, {"axes": plan.axes, "dtype": "float32"})


FLOAT_LOWERINGS: dict[str, Lowering] = {
    "CONV_2D": lower_conv2d_f32,
    "DEPTHWISE_CONV_2D": lower_depthwise_conv2d_f32,
    "FULLY_CONNECTED": lower_fully_connected_f32,
    "AVERAGE_POOL_2D": lower_average_pool2d_f32,
    "MAX_POOL_2D": lower_max_pool2d_f32,
    "SOFTMAX": lower_softmax_f32,
    "ADD": lower_add_f32,
    "MUL": lower_mul_f32,
    "LOGISTIC": lower_logistic_f32,
    "TANH": lower_tanh_f32,
    "HARD_SWISH": lower_hard_swish_f32,
    "MEAN": lower_mean_f32,
}
