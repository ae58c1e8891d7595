"""Lowerings of the softmax op family (see base.py for the contract).

SOFTMAX int8 -> int8 as TFLM's ``SoftmaxPrepare`` / ``CalculateSoftmaxParams``
(``softmax_common.cc``) sets it up: the output must be quantized with zero point
-128 and scale exactly 1/256, ``PreprocessSoftmaxScaling`` (kScaledDiffIntegerBits
= 5) gives the input multiplier and left shift, and ``-CalculateInputRadius`` the
smallest difference to the row maximum that still contributes. The device kernel
is ``runtime/kernels/*/softmax.c``.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from tinymeter.firmware import quant
from tinymeter.firmware.lower.base import (
    CValue,
    Layer,
    LowerContext,
    Lowering,
    fail,
    naming_operator,
    per_tensor_qparams,
    require_types,
    single_output_operands,
)
from tinymeter.models.tflite import Operator, TensorType

log = logging.getLogger(__name__)

_INT8 = (TensorType.INT8,)

#: TFLM aborts (TFLITE_CHECK on the output shift) once a row's sum of
#: exponentials reaches 2^9; only rows this long can get there.
_TFLM_SUM_LIMIT = 512


def lower_softmax(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """SOFTMAX -> ``tm_softmax_s8`` over the last dimension."""
    (x,), y = single_output_operands(op, index)
    require_types(ctx, op, index, _INT8, [x, y])
    shape = tuple(ctx.tensor(x).shape)
    if len(shape) < 1 or any(d <= 0 for d in shape):
        raise fail(op, index, f"input shape {shape} must have at least one non-empty dimension")
    if tuple(ctx.tensor(y).shape) != shape:
        raise fail(op, index, f"output shape {tuple(ctx.tensor(y).shape)} differs from input "
                              f"shape {shape}")
    in_scale, _ = per_tensor_qparams(ctx, op, index, x)
    out_scale, out_zp = per_tensor_qparams(ctx, op, index, y)
    # TFLM: TF_LITE_ENSURE(output->params.scale == 1.f / 256) -- a float32 comparison.
    if out_zp != -128 or quant.f32(out_scale) != np.float32(1.0) / np.float32(256.0):
        raise fail(op, index, f"int8 output must have scale 1/256 and zero point -128, has "
                              f"scale {out_scale!r} and zero point {out_zp}")
    beta = float(op.options.get("beta", 1.0))
    with naming_operator(op, index):
        mult, left_shift = quant.preprocess_softmax_scaling(beta, in_scale)
    radius = quant.calculate_input_radius(quant.SOFTMAX_SCALED_DIFF_INTEGER_BITS, left_shift)
    diff_min = int(-1.0 * radius)
    depth = shape[-1]
    outer = math.prod(shape[:-1])
    if depth >= _TFLM_SUM_LIMIT:
        log.warning("operator %d (SOFTMAX): rows of %d elements; TFLM aborts on rows whose "
                    "sum of exponentials reaches %d, this runtime saturates instead",
                    index, depth, _TFLM_SUM_LIMIT)
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "output": ctx.ptr(y), "outer_size": outer, "depth": depth,
        "input_multiplier": mult, "input_left_shift": left_shift, "diff_min": diff_min,
    }
    info = {"rows": outer, "depth": depth, "beta": float(quant.f32(beta))}
    return Layer(index, op.opcode, "tm_softmax_s8", "tm_softmax_s8_params", params,
                 outer * depth, info)


LOWERINGS: dict[str, Lowering] = {"SOFTMAX": lower_softmax}
