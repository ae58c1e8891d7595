"""Quantization arithmetic done on the host exactly as TFLite Micro's Prepare does it.

The device kernels only consume integers (multipliers, shifts, offsets, clamps). To
be bit-exact with TFLM every one of those integers must be derived with the same
floating-point operations in the same precision TFLM uses: some products are formed
in float32 before widening to double, rounding is half-away-from-zero, and mantissas
come from ``frexp``. Python floats are IEEE doubles, so double maths carries over;
float32 steps are reproduced with numpy.float32.
"""

from __future__ import annotations

import math

import numpy as np

from tinymeter.errors import UnsupportedModelError

INT8_MIN = -128
INT8_MAX = 127
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def tfl_round(x: float) -> int:
    """``TfLiteRound``/``std::round``: round half away from zero.

    Exact for float32 inputs and for the doubles QuantizeMultiplier rounds (their
    fractional part never needs more than the spare mantissa bits when 0.5 is added).
    """
    r = math.floor(abs(x) + 0.5)
    return int(-r if x < 0 else r)


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLM ``QuantizeMultiplier``: real = multiplier * 2^(shift - 31), multiplier in Q31."""
    if real_multiplier == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real_multiplier)
    q_fixed = tfl_round(mantissa * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    return int(q_fixed), int(shift)


def quantize_multiplier_smaller_than_one_exp(real_multiplier: float) -> tuple[int, int]:
    """TFLM ``QuantizeMultiplierSmallerThanOneExp``: requires 0 < real < 1, shift <= 0."""
    if not 0.0 < real_multiplier < 1.0:
        raise UnsupportedModelError(
            f"quantized multiplier {real_multiplier!r} outside (0, 1) required by the kernel")
    mult, shift = quantize_multiplier(real_multiplier)
    return mult, shift


def quantize_multiplier_greater_than_one(real_multiplier: float) -> tuple[int, int]:
    """TFLM ``QuantizeMultiplierGreaterThanOne``: requires real > 1, shift >= 0."""
    if not real_multiplier > 1.0:
        raise UnsupportedModelError(
            f"quantized multiplier {real_multiplier!r} must be greater than one")
    return quantize_multiplier(real_multiplier)


def f32(x: float) -> np.float32:
    """A float32 value (as TFLM holds tensor scales)."""
    return np.float32(x)


def quantize_value_f32(scale: float, zero_point: int, value: float) -> int:
    """TFLM's ``Quantize`` helper used for activation clamps: ``zp + round(f / scale)`` in float32."""
    tmp = float(np.float32(value) / np.float32(scale))
    if not math.isfinite(tmp):
        raise UnsupportedModelError(f"activation clamp {value} / scale {scale} overflows")
    q = tfl_round(tmp)
    if q < INT32_MIN or q > INT32_MAX:
        raise UnsupportedModelError(f"activation clamp {value} / scale {scale} overflows int32")
    return zero_point + q


def activation_range_quantized(activation: str, scale: float, zero_point: int,
                               qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """TFLM ``CalculateActivationRangeQuantized`` for a fused activation function name."""
    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize_value_f32(scale, zero_point, 0.0)), qmax
    if activation == "RELU6":
        return (max(qmin, quantize_value_f32(scale, zero_point, 0.0)),
                min(qmax, quantize_value_f32(scale, zero_point, 6.0)))
    if activation == "RELU_N1_TO_1":
        return (max(qmin, quantize_value_f32(scale, zero_point, -1.0)),
                min(qmax, quantize_value_f32(scale, zero_point, 1.0)))
    raise UnsupportedModelError(f"fused activation {activation} is not supported")


def activation_range_float(activation: str) -> tuple[float, float]:
    """TFLM ``CalculateActivationRange`` for float kernels."""
    inf = float("inf")
    ranges = {"NONE": (-inf, inf), "RELU": (0.0, inf), "RELU6": (0.0, 6.0),
              "RELU_N1_TO_1": (-1.0, 1.0)}
    try:
        return ranges[activation]
    except KeyError:
        raise UnsupportedModelError(f"fused activation {activation} is not supported") from None
