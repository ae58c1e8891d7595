"""Lowerings of the pool op family (see base.py for the contract).

AVERAGE_POOL_2D and MAX_POOL_2D, int8. Mirrors TFLM's ``PoolingPrepare``
(``pooling_common.cc``): window geometry from ``ComputePaddingHeightWidth`` with
dilation 1, input and output must share their quantization (the kernels never
requantize), and the fused activation clamp is computed from the output
quantization. The device kernels are ``runtime/kernels/*/pooling.c``.
"""

from __future__ import annotations

import logging

from tinymeter.firmware import quant
from tinymeter.firmware.lower.base import (
    CValue,
    Layer,
    LowerContext,
    Lowering,
    activation_range_quantized,
    fail,
    fused_activation,
    per_tensor_qparams,
    pool_window,
    require_types,
    single_output_operands,
)
from tinymeter.models.tflite import Operator, TensorType

log = logging.getLogger(__name__)

_INT8 = (TensorType.INT8,)


def _lower_pool(ctx: LowerContext, op: Operator, index: int, kernel: str) -> Layer:
    """Shared validation and parameter computation of both pooling ops."""
    (x,), y = single_output_operands(op, index)
    require_types(ctx, op, index, _INT8, [x, y])
    win = pool_window(ctx, op, index, x, y)
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
        "channels": win.in_ch, **win.params(dilation=False),
    }
    info = {**win.info(), "activation": act}
    # "MACs" here: one add/compare per window tap, the work the kernel does.
    macs = win.out_pixels * win.in_ch * win.filter_h * win.filter_w
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
