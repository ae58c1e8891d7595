"""Lowerings of the float32 math family (see base.py for the contract).

EXP, LOG, SQRT, RSQRT and L2_NORMALIZATION, float32 (the only type TFLM's
kernels take for EXP, LOG and SQRT). TFLM evaluates ``std::exp``, ``std::log`` and
``std::sqrt`` on float; the runtime carries its own (no libm in the firmware):
``tm_expf`` is glibc's algorithm (bit-identical), ``tm_sqrtf`` is correctly
rounded like every IEEE sqrt (bit-identical: the FPU's VSQRT on M4/M7, an exact
integer square root elsewhere), ``tm_logf`` is a double-precision log rounded
once, within 1 ULP of glibc's logf (which is not correctly rounded). RSQRT is
``1.f / sqrt(x)`` and L2_NORMALIZATION ``x / max(sqrt(sum(x*x)), 1e-6f)`` over the
last axis, in TFLM's operation order. For negative inputs the NaN's sign bit may
differ from x86's (the value is NaN either way).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from tinymeter.firmware import quant
from tinymeter.firmware.lower.activations import (
    _lut_layer,
    rounding_divide_by_pot,
    sat_rounding_doubling_high_mul,
)
from tinymeter.firmware.lower.activations import multiply_by_quantized_multiplier as mbqm
from tinymeter.firmware.lower.base import (
    CValue,
    Layer,
    LowerContext,
    Lowering,
    fail,
    fused_activation,
    per_tensor_qparams,
    require_types,
    single_output_operands,
)
from tinymeter.models.tflite import Operator, TensorType

log = logging.getLogger(__name__)

_F32 = (TensorType.FLOAT32,)
_KERNELS = {"EXP": "tm_exp_f32", "LOG": "tm_log_f32", "SQRT": "tm_sqrt_f32",
            "RSQRT": "tm_rsqrt_f32"}


def _same_shape(ctx: LowerContext, op: Operator, index: int) -> tuple[int, int, int]:
    (x,), y = single_output_operands(op, index, 1)
    require_types(ctx, op, index, _F32, [x, y])
    sx, sy = tuple(ctx.tensor(x).shape), tuple(ctx.tensor(y).shape)
    if sx != sy or any(d <= 0 for d in sx):
        raise fail(op, index, f"input shape {sx} and output shape {sy} must match and be "
                              "non-empty")
    return x, y, math.prod(sx)


def lower_unary_math_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """EXP / LOG / SQRT / RSQRT float -> ``tm_{exp,log,sqrt,rsqrt}_f32``."""
    x, y, n = _same_shape(ctx, op, index)
    params: dict[str, CValue] = {"input": ctx.ptr(x), "output": ctx.ptr(y), "size": n}
    return Layer(index, op.opcode, _KERNELS[op.opcode], "tm_unary_f32_params", params, n,
                 {"dtype": "float32"})


def lower_l2_normalization_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """L2_NORMALIZATION float over the last axis -> ``tm_l2_normalization_f32``."""
    x, y, n = _same_shape(ctx, op, index)
    if fused_activation(op) != "NONE":
        raise fail(op, index, "fused activations are not supported (TFLM ignores them)")
    depth = ctx.tensor(x).shape[-1]
    params: dict[str, CValue] = {"input": ctx.ptr(x), "output": ctx.ptr(y),
                                 "outer_size": n // depth, "depth": depth}
    return Layer(index, op.opcode, "tm_l2_normalization_f32", "tm_l2_normalization_f32_params",
                 params, n, {"depth": depth, "dtype": "float32"})


def _srdhm(a: int, b: int) -> int:
    return sat_rounding_doubling_high_mul(a, b)


def _sat_shl(x: int, e: int) -> int:
    """gemmlowp SaturatingRoundingMultiplyByPOT<e> for e > 0."""
    threshold = (1 << (31 - e)) - 1
    if x > threshold:
        return quant.INT32_MAX
    if x < -threshold:
        return quant.INT32_MIN
    return x << e


def inv_sqrt_quantized(value: int) -> tuple[int, int]:
    """TFLM ``GetInvSqrtQuantizedMultiplierExp(value, kReverseShift)``: (multiplier,
    shift) of 1/sqrt(value), five Newton steps in Q3.28 (the device's tm_inv_sqrt_q)."""
    if value <= 1:
        return quant.INT32_MAX, 0
    s = 11
    while value >= 1 << 29:
        value //= 4
        s += 1
    pairs = (32 - value.bit_length() - 1) // 2 - 1
    s -= pairs
    value <<= 2 * pairs
    half = rounding_divide_by_pot(value >> 1, 1)
    half_three = (1 << 28) + (1 << 27)
    x = 1 << 28
    for _ in range(5):
        x3 = _sat_shl(_srdhm(_srdhm(x, x), x), 6)
        x = _sat_shl(_srdhm(half_three, x) - _srdhm(half, x3), 3)
    x = _srdhm(x, 1518500250)
    if s < 0:
        x, s = ((x << -s) + 2**31) % 2**32 - 2**31, 0
    return x, -s


def rsqrt_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> list[int]:
    """RSQRT int8 as TFLM's ``RsqrtEvalQuantized`` for each of the 256 inputs (TFLM
    fails an inference with an input below the zero point; those entries are 127)."""
    mult, shift = quant.quantize_multiplier(
        1.0 / (math.sqrt(float(quant.f32(in_scale))) * float(quant.f32(out_scale))))
    table = []
    for i in range(-128, 128):
        v = i - in_zp
        if v <= 0:
            table.append(127)
            continue
        m, sh = inv_sqrt_quantized(v)
        data = mbqm(1, m, sh + 20)
        table.append(min(max(mbqm(data, mult, shift - 20) + out_zp, -128), 127))
    return table


def lower_rsqrt_s8(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """RSQRT int8 -> ``tm_lut_s8`` with TFLM's integer arithmetic tabulated on the host."""
    (x,), y = single_output_operands(op, index, 1)
    require_types(ctx, op, index, (TensorType.INT8,), [x, y])
    s_in, z_in = per_tensor_qparams(ctx, op, index, x)
    s_out, z_out = per_tensor_qparams(ctx, op, index, y)
    return _lut_layer(ctx, op, index, rsqrt_table(s_in, z_in, s_out, z_out), {})


def lower_l2_normalization_s8(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """L2_NORMALIZATION int8 -> ``tm_l2_normalization_s8`` (TFLM's integer kernel: a
    fixed-point Newton inverse square root per row; output scale 1/128, zero point 0)."""
    (x,), y = single_output_operands(op, index, 1)
    require_types(ctx, op, index, (TensorType.INT8,), [x, y])
    sx, sy = tuple(ctx.tensor(x).shape), tuple(ctx.tensor(y).shape)
    if sx != sy or not sx or any(d <= 0 for d in sx):
        raise fail(op, index, f"input shape {sx} and output shape {sy} must match")
    _, z_in = per_tensor_qparams(ctx, op, index, x)
    s_out, z_out = per_tensor_qparams(ctx, op, index, y)
    if float(np.float32(s_out)) != 1.0 / 128 or z_out != 0:
        raise fail(op, index, f"output quantization ({s_out}, {z_out}) must be (1/128, 0) "
                              "(TFLM requires it)")
    depth = sx[-1]
    params: dict[str, CValue] = {"input": ctx.ptr(x), "output": ctx.ptr(y),
                                 "outer_size": math.prod(sx) // depth, "depth": depth,
                                 "input_zero_point": z_in}
    return Layer(index, op.opcode, "tm_l2_normalization_s8", "tm_l2_normalization_s8_params",
                 params, math.prod(sx), {"depth": depth, "dtype": "int8"})


LOWERINGS: dict[str, Lowering] = {"L2_NORMALIZATION": lower_l2_normalization_s8,
                                   "RSQRT": lower_rsqrt_s8}

FLOAT_LOWERINGS: dict[str, Lowering] = {
    "EXP": lower_unary_math_f32,
    "LOG": lower_unary_math_f32,
    "SQRT": lower_unary_math_f32,
    "RSQRT": lower_unary_math_f32,
    "L2_NORMALIZATION": lower_l2_normalization_f32,
}
