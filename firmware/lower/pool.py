"""Lowerings of the pool op family (see base.py for the contract).

AVERAGE_POOL_2D and MAX_POOL_2D, int8. Mirrors TFLM's ``PoolingPrepare``
(``pooling_common.cc``): window geometry from ``ComputePaddingHeightWidth`` with
dilation 1, input and output must share their quantization (the kernels never
requantize), and the fused activation clamp is computed from the output
quantization. The device kernels are ``runtime/kernels/*/pooling.c``.
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
    activation_range_quantized,
    check_output_geometry,
    fail,
    fused_activation,
    per_tensor_qparams,
    require_types,
    shape4,
    single_output_operands,
)
from tinymeter.models.tflite import Operator, TensorType

log = logging.getLogger(__name__)

_INT8 = (TensorType.INT8,)


def _lower_pool(ctx: LowerContext, op: Operator, index: int, kernel: str) -> Layer:
    """Shared validation and parameter computation of both pooling ops."""
    (x,), y = single_output_operands(op, index)
    require_types(ctx, op, index, _INT8, [x, y])
    batches, in_h, in_w, channels = shape4(ctx, op, index, x, "input")
    out_shape = shape4(ctx, op, index, y, "output")
    o = op.options
    padding = str(o.get("padding", "SAME"))
    if padding not in ("SAME", "VALID"):
        raise fail(op, index, f"padding {padding} is not supported")
    sh, sw = int(o.get("stride_h", 0)), int(o.get("stride_w", 0))
    fh, fw = int(o.get("filter_height", 0)), int(o.get("filter_width", 0))
    if min(sh, sw, fh, fw) < 1:
        raise fail(op, index, f"strides ({sh}, {sw}) and filter size ({fh}, {fw}) must be >= 1")
    pad = quant.compute_padding_height_width(sh, sw, 1, 1, in_h, in_w, fh, fw, padding)
    # With the output matching this geometry every window overlaps the input by at
    # least one tap (SAME pads less than a filter; VALID windows lie inside), so the
    # average kernel never divides by zero -- TFLM would fail at Eval otherwise.
    check_output_geometry(op, index, out_shape, batches, pad, channels)
    in_scale, in_zp = per_tensor_qparams(ctx, op, index, x)
    out_scale, out_zp = per_tensor_qparams(ctx, op, index, y)
    # TFLM PoolingPrepare: |double(in) - double(out)| <= 1e-6 and equal zero points.
    if abs(float(quant.f32(in_scale)) - float(quant.f32(out_scale))) > 1.0e-6 or in_zp != out_zp:
        raise fail(op, index, f"input quantization (scale {in_scale}, zero point {in_zp}) "
                              f"must equal output quantization (scale {out_scale}, zero point "
                              f"{out_zp})")
    act = fused_activation(op)
    act_min, act_max = activation_range_quantized(op, index, out_scale, out_zp)
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "output": ctx.ptr(y), "act_min": act_min, "act_max": act_max,
        "batches": batches, "in_h": in_h, "in_w": in_w, "channels": channels,
        "out_h": pad.out_height, "out_w": pad.out_width, "filter_h": fh, "filter_w": fw,
        "stride_h": sh, "stride_w": sw, "pad_h": pad.height, "pad_w": pad.width,
    }
    info = {"kernel_size": f"{fh}x{fw}", "stride": f"{sh}x{sw}", "padding": padding,
            "activation": act}
    # "MACs" here: one add/compare per window tap, the work the kernel does.
    macs = math.prod(out_shape) * fh * fw
    log.debug("op %d %s: %s", index, op.opcode, info)
    return Layer(index, op.opcode, kernel, "tm_pool_s8_params", params, macs, info)


def lower_average_pool2d(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """AVERAGE_POOL_2D -> ``tm_avgpool_s8`` (TFLM ``PoolingPrepare`` + ``AveragePool``)."""
    return _lower_pool(ctx, op, index, "tm_avgpool_s8")


def lower_max_pool2d(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """MAX_POOL_2D -> ``tm_maxpool_s8`` (TFLM ``PoolingPrepare`` + ``MaxPool``)."""
    return _lower_pool(ctx, op, index, "tm_maxpool_s8")


LOWERINGS: dict[str, Lowering] = {
    "AVERAGE_POOL_2D": lower_average_pool2d,
    "MAX_POOL_2D": lower_max_pool2d,
}
