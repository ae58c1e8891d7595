"""Lowerings of the ReLU-like activation family (see base.py for the contract).

RELU, RELU6, LEAKY_RELU (int8 and float32) and PRELU (int8 and float32, alpha
broadcast over the input as TFLM's ``BroadcastPrelu4DSlow`` does).

An int8 unary activation is a function of one int8 value, so the host evaluates
TFLM's integer arithmetic (``ReluQuantized``, ``Relu6Quantized``,
``QuantizeLeakyRelu`` with the multipliers of ``CalculateReluOpData`` /
``CalculateOpDataLeakyRelu``) for all 256 inputs and the device looks the result
up (``tm_lut_s8``): bit-exact by construction and a few cycles per element. PRELU
has a second (alpha) operand and runs TFLM's arithmetic on the device.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

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
from tinymeter.firmware.lower.elementwise import BroadcastPlan, operand_broadcast_plan
from tinymeter.models.tflite import Operator, TensorType

log = logging.getLogger(__name__)

_INT8 = (TensorType.INT8,)
_F32 = (TensorType.FLOAT32,)
#: TFLM's PRELU walks NdArrayDesc<4>.
PRELU_MAX_DIMS = 4


# --------------------------------------------------------------------------- TFLM integer maths


def _wrap32(x: int) -> int:
    return (x + 2**31) % 2**32 - 2**31


def sat_rounding_doubling_high_mul(a: int, b: int) -> int:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values."""
    if a == b == quant.INT32_MIN:
        return quant.INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    return -((-v) >> 31) if v < 0 else v >> 31  # C division truncates toward zero


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp ``RoundingDivideByPOT`` (half away from zero)."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLM ``MultiplyByQuantizedMultiplier`` (double rounding; the left shift wraps in
    int32 as TFLM's int multiply does on its targets)."""
    left, right = max(shift, 0), max(-shift, 0)
    return rounding_divide_by_pot(
        sat_rounding_doubling_high_mul(_wrap32(x << left), multiplier), right)


def float_to_quantized_s8(value: float, scale: float, zero_point: int) -> int:
    """TFLM ``FloatToQuantizedType<int8_t>``: round(value / scale) + zp in float, clamped."""
    q = quant.tfl_round(float(np.float32(value) / np.float32(scale))) + zero_point
    return min(max(q, quant.INT8_MIN), quant.INT8_MAX)


def _table(fn: Callable[[int], int]) -> list[int]:
    """The int8 -> int8 lookup table of *fn*, indexed by ``x + 128``."""
    return [min(max(fn(x), quant.INT8_MIN), quant.INT8_MAX) for x in range(-128, 128)]


def relu_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> list[int]:
    """RELU int8 (``CalculateReluOpData`` + ``ReluQuantized``): requantize, clamp at
    ``max(-128, out_zp)`` from below."""
    mult, shift = quant.quantize_multiplier(float(quant.f32(in_scale)) /
                                            float(quant.f32(out_scale)))
    lo = max(quant.INT8_MIN, out_zp)
    return _table(lambda x: max(lo, out_zp + multiply_by_quantized_multiplier(
        x - in_zp, mult, shift)))


def relu6_table(in_scale: float, in_zp: int) -> list[int]:
    """RELU6 int8 (``Relu6Prepare`` + ``Relu6Quantized``): clamp the stored value to
    [zero point, quantized 6] in the input's quantization, no requantization."""
    six = float_to_quantized_s8(6.0, in_scale, in_zp)
    return _table(lambda x: six if x > six else (in_zp if x < in_zp else x))


def leaky_relu_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                     alpha: float) -> list[int]:
    """LEAKY_RELU int8 (``CalculateOpDataLeakyRelu`` + ``QuantizeLeakyRelu``); both
    multipliers are float32 expressions widened to double, as TFLM computes them."""
    s_in, s_out, a = quant.f32(in_scale), quant.f32(out_scale), quant.f32(alpha)
    m_a, sh_a = quant.quantize_multiplier(float(np.float32(s_in * a) / s_out))
    m_i, sh_i = quant.quantize_multiplier(float(np.float32(s_in / s_out)))

    def one(x: int) -> int:
        v = x - in_zp
        m, sh = (m_i, sh_i) if v >= 0 else (m_a, sh_a)
        return out_zp + multiply_by_quantized_multiplier(v, m, sh)

    return _table(one)


# --------------------------------------------------------------------------- unary lowerings


def _unary(ctx: LowerContext, op: Operator, index: int, types: tuple[TensorType, ...]
           ) -> tuple[int, int, int]:
    (x,), y = single_output_operands(op, index, 1)
    require_types(ctx, op, index, types, [x, y])
    if ctx.tensor(x).dtype != ctx.tensor(y).dtype:
        raise fail(op, index, "input and output types differ")
    n = ctx.tensor(x).numel
    if ctx.tensor(y).numel != n or tuple(ctx.tensor(x).shape) != tuple(ctx.tensor(y).shape):
        raise fail(op, index, f"input shape {tuple(ctx.tensor(x).shape)} and output shape "
                              f"{tuple(ctx.tensor(y).shape)} differ")
    return x, y, n


def _lut_layer(ctx: LowerContext, op: Operator, index: int, table: list[int],
               info: dict[str, object]) -> Layer:
    x, y, n = _unary(ctx, op, index, _INT8)
    sym = ctx.const_array("int8_t", table, op.opcode.lower())
    params: dict[str, CValue] = {"input": ctx.ptr(x), "output": ctx.ptr(y), "size": n,
                                 "table": sym}
    return Layer(index, op.opcode, "tm_lut_s8", "tm_lut_s8_params", params, n,
                 {**info, "dtype": "int8"})


def _f32_layer(ctx: LowerContext, op: Operator, index: int, kernel: str,
               alpha: float = 0.0) -> Layer:
    x, y, n = _unary(ctx, op, index, _F32)
    params: dict[str, CValue] = {"input": ctx.ptr(x), "output": ctx.ptr(y), "size": n,
                                 "alpha": float(quant.f32(alpha))}
    return Layer(index, op.opcode, kernel, "tm_relu_f32_params", params, n, {"dtype": "float32"})


def _qparams(ctx: LowerContext, op: Operator, index: int) -> tuple[float, int, float, int]:
    (x,), y = single_output_operands(op, index, 1)
    require_types(ctx, op, index, _INT8, [x, y])
    return (*per_tensor_qparams(ctx, op, index, x), *per_tensor_qparams(ctx, op, index, y))


def lower_relu(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """RELU int8 -> ``tm_lut_s8`` with the ReluQuantized table."""
    s_in, z_in, s_out, z_out = _qparams(ctx, op, index)
    return _lut_layer(ctx, op, index, relu_table(s_in, z_in, s_out, z_out), {})


def lower_relu6(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """RELU6 int8 -> ``tm_lut_s8`` (clamp in the input's quantization, as TFLM does)."""
    s_in, z_in, _, _ = _qparams(ctx, op, index)
    return _lut_layer(ctx, op, index, relu6_table(s_in, z_in), {})


def lower_leaky_relu(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """LEAKY_RELU int8 -> ``tm_lut_s8`` with the QuantizeLeakyRelu table."""
    s_in, z_in, s_out, z_out = _qparams(ctx, op, index)
    alpha = float(op.options.get("alpha", 0.0))
    return _lut_layer(ctx, op, index, leaky_relu_table(s_in, z_in, s_out, z_out, alpha),
                      {"alpha": alpha})


def lower_relu_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """RELU float -> ``tm_relu_f32`` (``x < 0 ? 0 : x``)."""
    return _f32_layer(ctx, op, index, "tm_relu_f32")


def lower_relu6_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """RELU6 float -> ``tm_relu6_f32`` (``x > 6 ? 6 : x < 0 ? 0 : x``)."""
    return _f32_layer(ctx, op, index, "tm_relu6_f32")


def lower_leaky_relu_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """LEAKY_RELU float -> ``tm_leaky_relu_f32`` (``x > 0 ? x : x * alpha``)."""
    return _f32_layer(ctx, op, index, "tm_leaky_relu_f32", float(op.options.get("alpha", 0.0)))


# --------------------------------------------------------------------------- PRELU


def _prelu_plan(ctx: LowerContext, op: Operator, index: int, types: tuple[TensorType, ...]
                ) -> tuple[int, int, int, BroadcastPlan]:
    (x, alpha), y = single_output_operands(op, index, 2)
    require_types(ctx, op, index, types, [x, alpha, y])
    ranks = [len(ctx.tensor(t).shape) for t in (x, alpha, y)]
    if max(ranks) > PRELU_MAX_DIMS:
        raise fail(op, index, f"{max(ranks)}-D operands; TFLM's PRELU supports at most "
                              f"{PRELU_MAX_DIMS} dims")
    return x, alpha, y, operand_broadcast_plan(ctx, op, index, x, alpha, y)


def lower_prelu(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """PRELU int8 -> ``tm_prelu_s8`` (``CalculatePreluParams`` + BroadcastPrelu4DSlow)."""
    x, alpha, y, plan = _prelu_plan(ctx, op, index, _INT8)
    s_in, z_in = per_tensor_qparams(ctx, op, index, x)
    s_a, z_a = per_tensor_qparams(ctx, op, index, alpha)
    s_out, z_out = per_tensor_qparams(ctx, op, index, y)
    f_in, f_a, f_out = (float(quant.f32(s)) for s in (s_in, s_a, s_out))
    with naming_operator(op, index):
        m1, sh1 = quant.quantize_multiplier(f_in / f_out)
        m2, sh2 = quant.quantize_multiplier(f_in * f_a / f_out)
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "alpha": ctx.ptr(alpha), "output": ctx.ptr(y),
        "input_offset": -z_in, "alpha_offset": -z_a, "output_offset": z_out,
        "output_multiplier_1": m1, "output_shift_1": sh1,
        "output_multiplier_2": m2, "output_shift_2": sh2, **plan.params(),
    }
    return Layer(index, op.opcode, "tm_prelu_s8", "tm_prelu_s8_params", params,
                 plan.size, {"broadcast": plan.broadcast, "dtype": "int8"})


def lower_prelu_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """PRELU float -> ``tm_prelu_f32`` (``x >= 0 ? x : x * alpha``)."""
    x, alpha, y, plan = _prelu_plan(ctx, op, index, _F32)
    params: dict[str, CValue] = {"input1": ctx.ptr(x), "input2": ctx.ptr(alpha),
                                 "output": ctx.ptr(y), "act_min": -quant.FLT_MAX,
                                 "act_max": quant.FLT_MAX, **plan.params()}
    return Layer(index, op.opcode, "tm_prelu_f32", "tm_binary_f32_params", params,
                 plan.size, {"broadcast": plan.broadcast, "dtype": "float32"})


LOWERINGS: dict[str, Lowering] = {
    "RELU": lower_relu,
    "RELU6": lower_relu6,
    "LEAKY_RELU": lower_leaky_relu,
    "PRELU": lower_prelu,
}

FLOAT_LOWERINGS: dict[str, Lowering] = {
    "RELU": lower_relu_f32,
    "RELU6": lower_relu6_f32,
    "LEAKY_RELU": lower_leaky_relu_f32,
    "PRELU": lower_prelu_f32,
}
