"""Lowering of TRANSPOSE_CONV, int8 and float32 (see base.py for the contract).

TFLM's reference kernel scatters every input element into an output-sized
scratch buffer and requantizes afterwards (``transpose_conv.cc``,
``reference_integer_ops::TransposeConv`` / ``reference_ops::TransposeConv``).
The device kernel gathers instead: each output element sums the input taps that
scatter into it, in the order TFLM adds them (input row, column, channel
ascending), so the float result is bit-identical and no scratch buffer (an
int32 per output element) is needed in RAM. Padding is TFLM's
``ComputePaddingHeightWidth`` over the output size; per-channel multipliers and
the fused-activation clamp are the conv ones.
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
    activation_range_quantized,
    bias_ptr,
    fail,
    per_tensor_qparams,
    require_types,
    shape4,
    window_options,
)
from tinymeter.firmware.lower.conv import _filter_quant, _per_channel_arrays
from tinymeter.models.tflite import Operator, TensorType

log = logging.getLogger(__name__)


def _operands(op: Operator, index: int) -> tuple[int, int, int, int, int]:
    if len(op.inputs) not in (3, 4) or len(op.outputs) != 1 or min(op.inputs[:3]) < 0:
        raise fail(op, index, "expects 3 or 4 inputs (output_shape, weights, input[, bias]) "
                              "and 1 output")
    bias = op.inputs[3] if len(op.inputs) == 4 else -1
    return op.inputs[0], op.inputs[1], op.inputs[2], bias, op.outputs[0]


def _geometry(ctx: LowerContext, op: Operator, index: int, shape_t: int, w: int, x: int,
              y: int) -> dict[str, int]:
    batches, in_h, in_w, in_ch = shape4(ctx, op, index, x, "input")
    out_ch, f_h, f_w, f_in = shape4(ctx, op, index, w, "filter")
    out = shape4(ctx, op, index, y, "output")
    st = ctx.tensor(shape_t)
    # TFLM sizes the output from the output tensor, not from output_shape's values
    # (Keras computes them at run time with SHAPE/STRIDED_SLICE/PACK); a constant
    # that disagrees is a malformed model.
    if st.data is not None and [int(v) for v in st.array().reshape(-1)] != list(out):
        raise fail(op, index, f"output_shape tensor {shape_t} {st.array().tolist()} differs "
                              f"from the output shape {tuple(out)}")
    if f_in != in_ch or out[3] != out_ch or out[0] != batches:
        raise fail(op, index, f"filter {(out_ch, f_h, f_w, f_in)} does not match input "
                              f"{(batches, in_h, in_w, in_ch)} / output {tuple(out)}")
    padding, (sh, sw) = window_options(op, index, ("stride_h", "stride_w"), default=1)
    pad = quant.compute_padding_height_width(sh, sw, 1, 1, out[1], out[2], f_h, f_w, padding)
    return {"batches": batches, "in_h": in_h, "in_w": in_w, "in_ch": in_ch,
            "out_h": out[1], "out_w": out[2], "out_ch": out_ch, "filter_h": f_h,
            "filter_w": f_w, "stride_h": sh, "stride_w": sw, "pad_h": pad.height,
            "pad_w": pad.width}


def lower_transpose_conv(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """TRANSPOSE_CONV int8 -> ``tm_transpose_conv_s8``."""
    shape_t, w, x, b, y = _operands(op, index)
    require_types(ctx, op, index, (TensorType.INT8,), [x, w, y])
    geo = _geometry(ctx, op, index, shape_t, w, x, y)
    in_scale, in_zp = per_tensor_qparams(ctx, op, index, x)
    out_scale, out_zp = per_tensor_qparams(ctx, op, index, y)
    fq = _filter_quant(ctx, op, index, w, 0)
    mults, shifts = quant.conv_per_channel_multipliers(in_scale, fq.scale, out_scale,
                                                       geo["out_ch"])
    mult_sym, shift_sym = _per_channel_arrays(ctx, mults, shifts, index)
    if b >= 0:
        require_types(ctx, op, index, (TensorType.INT32,), [b])
    lo, hi = activation_range_quantized(op, index, out_scale, out_zp)
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "filter": ctx.ptr(w),
        "bias": bias_ptr(ctx, op, index, b, geo["out_ch"]), "output": ctx.ptr(y),
        "out_mult": mult_sym, "out_shift": shift_sym, "input_offset": -in_zp,
        "output_offset": out_zp, "act_min": lo, "act_max": hi, **geo,
    }
    macs = math.prod(geo[k] for k in ("batches", "in_h", "in_w", "in_ch", "filter_h",
                                      "filter_w", "out_ch"))
    return Layer(index, op.opcode, "tm_transpose_conv_s8", "tm_transpose_conv_s8_params",
                 params, macs, {"kernel_size": f"{geo['filter_h']}x{geo['filter_w']}",
                                "stride": f"{geo['stride_h']}x{geo['stride_w']}"})


def lower_transpose_conv_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """TRANSPOSE_CONV float -> ``tm_transpose_conv_f32``."""
    shape_t, w, x, b, y = _operands(op, index)
    require_types(ctx, op, index, (TensorType.FLOAT32,), [x, w, y])
    geo = _geometry(ctx, op, index, shape_t, w, x, y)
    if b >= 0:
        require_types(ctx, op, index, (TensorType.FLOAT32,), [b])
    lo, hi = activation_range_float(op, index)
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "filter": ctx.ptr(w),
        "bias": bias_ptr(ctx, op, index, b, geo["out_ch"]), "output": ctx.ptr(y),
        "act_min": lo, "act_max": hi, **geo,
    }
    macs = math.prod(geo[k] for k in ("batches", "in_h", "in_w", "in_ch", "filter_h",
                                      "filter_w", "out_ch"))
    return Layer(index, op.opcode, "tm_transpose_conv_f32", "tm_transpose_conv_f32_params",
                 params, macs, {"dtype": "float32"})


def lower_transpose_conv_any(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """By the data input's type (input 2: the generic dispatch looks at input 0, which
    here is the int32 output-shape tensor)."""
    x = op.inputs[2] if len(op.inputs) > 2 else -1
    if x >= 0 and ctx.tensor(x).dtype == TensorType.FLOAT32:
        return lower_transpose_conv_f32(ctx, op, index)
    return lower_transpose_conv(ctx, op, index)


LOWERINGS: dict[str, Lowering] = {"TRANSPOSE_CONV": lower_transpose_conv_any}
