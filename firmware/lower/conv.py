"""Lowerings of the conv op family (see base.py for the contract).

CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED with int8 activations and weights
and int32 bias. Every integer the kernels consume is derived here exactly as TFLM's
Prepare derives it (``conv_common.cc``, ``depthwise_conv_common.cc``,
``fully_connected_common.cc``, ``kernel_util.cc``), so the device kernels in
``runtime/kernels/*/conv2d.c`` etc. are bit-exact with the TFLM reference kernels.

Validation mirrors TFLM's acceptance where TFLM checks, and is stricter where TFLM
would silently read out of bounds or ignore a parameter (e.g. output shapes that do
not match the computed window geometry, non-zero conv weight zero points, which TFLM
ignores): such models are rejected with an error naming the operator and the defect.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from tinymeter.core.errors import UnsupportedModelError
from tinymeter.firmware import quant
from tinymeter.firmware.lower.base import (
    CValue,
    Layer,
    LowerContext,
    Lowering,
    activation_range_quantized,
    bias_ptr,
    conv_window,
    fail,
    per_tensor_qparams,
    require_types,
    shape4,
)
from tinymeter.models.tflite import Operator, Quantization, TensorType

log = logging.getLogger(__name__)

_INT8 = (TensorType.INT8,)
_INT32 = (TensorType.INT32,)


def _io(op: Operator, index: int) -> tuple[int, int, int, int]:
    """(input, filter, bias or -1, output) tensor indices, checking the operand count."""
    if len(op.inputs) not in (2, 3) or len(op.outputs) != 1:
        raise fail(op, index, f"expects 2 or 3 inputs and 1 output, has {len(op.inputs)} "
                              f"inputs and {len(op.outputs)} outputs")
    if op.inputs[0] < 0 or op.inputs[1] < 0:
        raise fail(op, index, "input and filter operands are required")
    bias = op.inputs[2] if len(op.inputs) == 3 else -1
    return op.inputs[0], op.inputs[1], bias, op.outputs[0]


def _filter_quant(ctx: LowerContext, op: Operator, index: int, filt: int,
                  channel_dim: int) -> Quantization:
    """The weights' quantization, checked the way TFLM's Prepare checks it.

    Per-channel scales must number the output channels (filter dimension
    *channel_dim*) and the quantized dimension must have that many entries too
    (``PopulateConvolutionQuantizationParams``). Zero points must be 0: TFLM's
    int8 conv kernels ignore them, so honouring a non-zero one would differ from
    TFLM and ignoring it would be silently wrong.
    """
    t = ctx.tensor(filt)
    q = t.quantization
    if q is None or not q.scale:
        raise fail(op, index, f"filter tensor {filt} ({t.name}) is not quantized")
    channels = t.shape[channel_dim]
    if len(q.scale) > 1:
        if len(q.scale) != channels:
            raise fail(op, index, f"filter tensor {filt} has {len(q.scale)} scales for "
                                  f"{channels} output channels")
        if not 0 <= q.quantized_dimension < len(t.shape) or \
                t.shape[q.quantized_dimension] != channels:
            raise fail(op, index, f"filter tensor {filt} quantized dimension "
                                  f"{q.quantized_dimension} does not have {channels} entries")
    if any(z != 0 for z in q.zero_point):
        raise fail(op, index, f"filter tensor {filt} has non-zero zero point(s); int8 "
                              "weights must be symmetric")
    return q


def _bias(ctx: LowerContext, op: Operator, index: int, bias: int, channels: int) -> CValue:
    """C expression for the int32 bias data (``0`` = NULL when the bias is omitted)."""
    require_types(ctx, op, index, _INT32, [bias])
    return bias_ptr(ctx, op, index, bias, channels)


def _per_channel_arrays(ctx: LowerContext, mults: Sequence[int], shifts: Sequence[int],
                        index: int) -> tuple[str, str]:
    for s in shifts:
        if s > 30:
            raise UnsupportedModelError(
                f"operator {index}: requantization scale too large (shift {s} > 30)")
    return (ctx.const_array("int32_t", mults, f"l{index}_mult"),
            ctx.const_array("int32_t", shifts, f"l{index}_shift"))


def _wrap_int32(values: Sequence[int]) -> list[int]:
    """Python ints reduced modulo 2^32 into the int32 range."""
    return [((int(v) + 2**31) % 2**32) - 2**31 for v in values]


def _kernel_sums(ctx: LowerContext, index: int, w: int, b: int, axis: int | None,
                 channels: int, input_offset: int) -> str:
    """``bias[c] + input_offset * sum(filter[c])`` per output channel, as an int32 array.

    Why: sum(w * (x + off)) + bias == sum(w * x) + (bias + off * sum(w)), so the
    optimized kernels start each accumulator at this value and never add the input
    offset in their inner loops (CMSIS-NN's "kernel sums"). Computed here with exact
    Python integers and reduced modulo 2^32: int32 addition is associative modulo
    2^32, so the device's accumulator ends bit-identical to TFLM's in-order sum.
    Reference kernels ignore the array. *axis* is the filter's output-channel
    dimension; None means rows of the last dimension (FULLY_CONNECTED, whose kernel
    reads row c at c * accum_depth whatever the filter's rank).
    """
    filt = ctx.tensor(w).array().astype(np.int64)
    if axis is None:
        rows = filt.reshape(-1, filt.shape[-1])
    else:
        rows = np.moveaxis(filt, axis, 0).reshape(filt.shape[axis], -1)
    sums = rows.sum(axis=1)[:channels]
    bias = np.zeros(channels, np.int64)
    if b >= 0:
        bias = ctx.tensor(b).array().astype(np.int64).reshape(-1)[:channels]
    total = [int(bv) + int(input_offset) * int(sv) for bv, sv in zip(bias, sums)]
    return ctx.const_array("int32_t", _wrap_int32(total), f"l{index}_ksum")


def _conv_common(ctx: LowerContext, op: Operator, index: int,
                 operands: tuple[int, int, int, int], out_ch: int,
                 channel_dim: int) -> tuple[dict[str, CValue], Quantization, int]:
    """The operand and requantization fields CONV_2D and DEPTHWISE_CONV_2D share.

    Returns (fields in struct order, the filter quantization, input_offset). Per-channel
    multipliers as TFLM's ``PopulateConvolutionQuantizationParams``; *channel_dim* is
    the filter's output-channel dimension (0 for conv, 3 for depthwise).
    """
    x, w, b, y = operands
    in_scale, in_zp = per_tensor_qparams(ctx, op, index, x)
    out_scale, out_zp = per_tensor_qparams(ctx, op, index, y)
    fq = _filter_quant(ctx, op, index, w, channel_dim)
    mults, shifts = quant.conv_per_channel_multipliers(in_scale, fq.scale, out_scale, out_ch)
    act_min, act_max = activation_range_quantized(op, index, out_scale, out_zp)
    mult_sym, shift_sym = _per_channel_arrays(ctx, mults, shifts, index)
    head: dict[str, CValue] = {
        "input": ctx.ptr(x), "filter": ctx.ptr(w), "bias": _bias(ctx, op, index, b, out_ch),
        "output": ctx.ptr(y), "out_mult": mult_sym, "out_shift": shift_sym,
        "input_offset": -in_zp, "output_offset": out_zp, "act_min": act_min, "act_max": act_max,
    }
    return head, fq, -in_zp


def lower_conv2d(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """CONV_2D -> ``tm_conv2d_s8`` (TFLM ``ConvPrepare`` + ``ConvPerChannel``)."""
    x, w, b, y = _io(op, index)
    require_types(ctx, op, index, _INT8, [x, w, y])
    out_ch, f_h, f_w, f_in_ch = shape4(ctx, op, index, w, "filter")
    win = conv_window(ctx, op, index, x, y, (f_h, f_w), out_ch)
    if win.in_ch % f_in_ch:
        raise fail(op, index, f"input channels {win.in_ch} are not a multiple of filter "
                              f"input channels {f_in_ch}")
    groups = win.in_ch // f_in_ch
    if out_ch % groups:
        raise fail(op, index, f"output channels {out_ch} are not divisible by {groups} groups")
    head, fq, input_offset = _conv_common(ctx, op, index, (x, w, b, y), out_ch, 0)
    params: dict[str, CValue] = {
        **head, **win.params(), "in_ch": win.in_ch, "out_ch": out_ch, "filter_in_ch": f_in_ch,
        "kernel_sums": _kernel_sums(ctx, index, w, b, 0, out_ch, input_offset),
    }
    macs = win.out_pixels * out_ch * f_h * f_w * f_in_ch
    info = {**win.info(), "dilation": f"{win.dilation_h}x{win.dilation_w}", "groups": groups,
            "per_channel": len(fq.scale) > 1}
    return Layer(index, op.opcode, "tm_conv2d_s8", "tm_conv2d_s8_params", params, macs, info)


def lower_depthwise_conv2d(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """DEPTHWISE_CONV_2D -> ``tm_depthwise_conv2d_s8`` (TFLM ``DepthwiseConvPrepare``)."""
    x, w, b, y = _io(op, index)
    require_types(ctx, op, index, _INT8, [x, w, y])
    f_shape = shape4(ctx, op, index, w, "filter")
    f_one, f_h, f_w, out_ch = f_shape
    if f_one != 1:
        raise fail(op, index, f"filter shape {f_shape} must start with 1")
    win = conv_window(ctx, op, index, x, y, (f_h, f_w), out_ch)
    dm = int(op.options.get("depth_multiplier", 1) or 1)
    if dm < 1 or out_ch != win.in_ch * dm:
        raise fail(op, index, f"output channels {out_ch} != input channels {win.in_ch} x "
                              f"depth_multiplier {dm}")
    head, fq, input_offset = _conv_common(ctx, op, index, (x, w, b, y), out_ch, 3)
    params: dict[str, CValue] = {
        **head, **win.params(), "in_ch": win.in_ch, "out_ch": out_ch, "depth_multiplier": dm,
        "kernel_sums": _kernel_sums(ctx, index, w, b, 3, out_ch, input_offset),
    }
    macs = win.out_pixels * out_ch * f_h * f_w
    info = {**win.info(), "dilation": f"{win.dilation_h}x{win.dilation_w}",
            "depth_multiplier": dm, "per_channel": len(fq.scale) > 1}
    return Layer(index, op.opcode, "tm_depthwise_conv2d_s8", "tm_depthwise_conv2d_s8_params",
                 params, macs, info)


def _fc_multipliers(ctx: LowerContext, op: Operator, index: int, w: int, b: int,
                    in_scale: float, out_scale: float,
                    out_depth: int) -> tuple[bool, list[int], list[int], int]:
    """(per_channel, multipliers, shifts, filter_offset) of a FULLY_CONNECTED layer.

    Per-tensor weights use TFLM's per-tensor multiplier (float32 scale product) and
    weights offset, and TFLM rejects a bias whose scale is not input*filter scale;
    per-channel weights use the per-channel formula and must be symmetric.
    """
    f_shape = ctx.tensor(w).shape
    out_shape = ctx.tensor(op.outputs[0]).shape
    wt = ctx.tensor(w)
    fq = wt.quantization
    if fq is None or not fq.scale:
        raise fail(op, index, f"filter tensor {w} ({wt.name}) is not quantized")
    if len(fq.scale) > 1:
        if not 0 <= fq.quantized_dimension < len(f_shape) or \
                f_shape[fq.quantized_dimension] != len(fq.scale):
            raise fail(op, index, f"filter tensor {w} has {len(fq.scale)} scales but dimension "
                                  f"{fq.quantized_dimension} of shape {f_shape}")
        if len(out_shape) != 2:
            # TFLM's per-channel kernel reads batches/depth from dims 0/1 only.
            raise fail(op, index, "per-channel weights need a 2-D output (keep_num_dims off)")
        if len(fq.scale) < out_depth:
            raise fail(op, index, f"{len(fq.scale)} filter scales for {out_depth} outputs")
        if any(z != 0 for z in fq.zero_point):
            raise fail(op, index, "per-channel weights must have zero point 0")
        mults, shifts = quant.conv_per_channel_multipliers(in_scale, fq.scale, out_scale,
                                                           len(fq.scale))
        return True, list(mults), list(shifts), 0
    f_scale = float(fq.scale[0])
    if b >= 0:
        bq = ctx.tensor(b).quantization
        b_scale = float(bq.scale[0]) if bq is not None and bq.scale else 0.0
        if not quant.bias_scale_matches(in_scale, f_scale, b_scale, out_scale):
            raise fail(op, index, f"bias scale {b_scale} differs from input*filter scale "
                                  f"{in_scale * f_scale} (TFLM rejects this)")
    m, s = quant.conv_per_tensor_multiplier(in_scale, f_scale, out_scale)
    return False, [m], [s], -(int(fq.zero_point[0]) if fq.zero_point else 0)


def lower_fully_connected(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """FULLY_CONNECTED -> ``tm_fully_connected_s8`` (TFLM ``CalculateOpDataFullyConnected``).

    Per-tensor weights use TFLM's per-tensor multiplier (float32 scale product) and
    weights offset; per-channel weights use the per-channel formula.
    """
    x, w, b, y = _io(op, index)
    require_types(ctx, op, index, _INT8, [x, w, y])
    fmt = str(op.options.get("weights_format", "DEFAULT"))
    if fmt != "DEFAULT":
        raise fail(op, index, f"weights_format {fmt} is not supported")
    f_shape = ctx.tensor(w).shape
    out_shape = ctx.tensor(y).shape
    if len(f_shape) < 2 or len(out_shape) < 1:
        raise fail(op, index, f"filter shape {f_shape} / output shape {out_shape} too small")
    accum_depth = f_shape[-1]
    out_depth = out_shape[-1]
    if accum_depth <= 0 or out_depth <= 0:
        raise fail(op, index, "empty filter or output")
    if out_depth > f_shape[-2]:
        raise fail(op, index, f"output depth {out_depth} exceeds filter rows {f_shape[-2]}")
    batches = math.prod(out_shape) // out_depth
    in_elems = ctx.tensor(x).numel
    if in_elems != batches * accum_depth:
        raise fail(op, index, f"input has {in_elems} elements, expected {batches} batches x "
                              f"{accum_depth}")
    in_scale, in_zp = per_tensor_qparams(ctx, op, index, x)
    out_scale, out_zp = per_tensor_qparams(ctx, op, index, y)
    per_channel, mults, shifts, filter_offset = _fc_multipliers(ctx, op, index, w, b, in_scale,
                                                                out_scale, out_depth)
    act_min, act_max = activation_range_quantized(op, index, out_scale, out_zp)
    mult_sym, shift_sym = _per_channel_arrays(ctx, mults, shifts, index)
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "filter": ctx.ptr(w), "bias": _bias(ctx, op, index, b, out_depth),
        "output": ctx.ptr(y), "out_mult": mult_sym, "out_shift": shift_sym,
        "input_offset": -in_zp, "filter_offset": filter_offset, "output_offset": out_zp,
        "act_min": act_min, "act_max": act_max,
        "batches": batches, "accum_depth": accum_depth, "out_depth": out_depth,
        "per_channel": 1 if per_channel else 0,
        "kernel_sums": _kernel_sums(ctx, index, w, b, None, out_depth, -in_zp),
    }
    macs = batches * out_depth * accum_depth
    info = {"batches": batches, "per_channel": per_channel,
            "keep_num_dims": bool(op.options.get("keep_num_dims", False))}
    return Layer(index, op.opcode, "tm_fully_connected_s8", "tm_fully_connected_s8_params",
                 params, macs, info)


LOWERINGS: dict[str, Lowering] = {
    "CONV_2D": lower_conv2d,
    "DEPTHWISE_CONV_2D": lower_depthwise_conv2d,
    "FULLY_CONNECTED": lower_fully_connected,
}
