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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tinymeter.core.errors import UnsupportedModelError

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


def f32(x: float | np.floating) -> np.float32:
    """A float32 value (as TFLM holds tensor scales); also takes numpy floats, so
    float32 products chain as in TFLM's float32 arithmetic."""
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
    """TFLM ``CalculateActivationRangeQuantized`` for a fused activation function name;
    an empty range (minimum above maximum: a zero point outside the type, a scale of
    the wrong sign) is an error, not a kernel that clamps every value to garbage."""
    low, high = _activation_range(activation, scale, zero_point, qmin, qmax)
    if low > high:
        raise UnsupportedModelError(
            f"{activation} activation clamp is empty: minimum {low} > maximum {high} "
            f"(output scale {scale!r}, zero point {zero_point})")
    return low, high


def _activation_range(activation: str, scale: float, zero_point: int,
                      qmin: int, qmax: int) -> tuple[int, int]:
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


# --- Convolution-family Prepare arithmetic (conv, depthwise conv, fully connected) ---


def conv_per_channel_multipliers(input_scale: float, filter_scales: Sequence[float],
                                 output_scale: float,
                                 num_channels: int) -> tuple[list[int], list[int]]:
    """TFLM ``PopulateConvolutionQuantizationParams`` per-channel multipliers and shifts.

    Each channel's effective scale is ``double(input) * double(filter[c]) / double(output)``
    with every scale first rounded to float32 (TFLM stores tensor scales as float). A
    single filter scale is broadcast over *num_channels*, as TFLM does for per-tensor
    weights. Also used by TFLM's per-channel FULLY_CONNECTED (same formula).
    """
    in_s = float(f32(input_scale))
    out_s = float(f32(output_scale))
    scales = list(filter_scales)
    if len(scales) not in (1, num_channels):
        raise UnsupportedModelError(
            f"{len(scales)} filter scales for {num_channels} output channels")
    mults: list[int] = []
    shifts: list[int] = []
    for c in range(num_channels):
        fs = float(f32(scales[c] if len(scales) > 1 else scales[0]))
        m, s = quantize_multiplier(in_s * fs / out_s)
        mults.append(m)
        shifts.append(s)
    return mults, shifts


def conv_per_tensor_multiplier(input_scale: float, filter_scale: float,
                               output_scale: float) -> tuple[int, int]:
    """TFLM ``GetQuantizedConvolutionMultipler`` + ``QuantizeMultiplier`` (per-tensor FC).

    Unlike the per-channel path, TFLM multiplies input and filter scale *in float32*
    (``static_cast<double>(input->params.scale * filter->params.scale)``) before
    widening, so the product is rounded to float32 once; this matters bit-wise.
    """
    product = float(f32(input_scale) * f32(filter_scale))
    if product < 0:
        raise UnsupportedModelError(f"negative input*filter scale {product!r}")
    return quantize_multiplier(product / float(f32(output_scale)))


def bias_scale_matches(input_scale: float, filter_scale: float, bias_scale: float,
                       output_scale: float) -> bool:
    """TFLM's bias-scale sanity check in ``GetQuantizedConvolutionMultipler`` (with bias).

    Prepare fails unless ``|in*filter - bias_scale| / out_scale <= 0.02`` (doubles of the
    float32 scales), so a model TFLM rejects is rejected here too.
    """
    product = float(f32(input_scale)) * float(f32(filter_scale))
    diff = abs(product - float(f32(bias_scale)))
    return diff / float(f32(output_scale)) <= 0.02


def _c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero), unlike Python's floor division."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def compute_out_size(padding: str, image_size: int, filter_size: int, stride: int,
                     dilation: int = 1) -> int:
    """TFLM ``ComputeOutSize`` (matches TensorFlow's GetWindowedOutputSize), C int maths."""
    effective = (filter_size - 1) * dilation + 1
    if stride == 0:
        return 0
    if padding == "SAME":
        return _c_div(image_size + stride - 1, stride)
    if padding == "VALID":
        return _c_div(image_size + stride - effective, stride)
    return 0


def compute_padding_with_offset(stride: int, dilation: int, in_size: int, filter_size: int,
                                out_size: int) -> tuple[int, int]:
    """TFLM ``ComputePaddingWithOffset``: (leading padding, extra trailing padding)."""
    effective = (filter_size - 1) * dilation + 1
    total = (out_size - 1) * stride + effective - in_size
    total = total if total > 0 else 0
    return total // 2, total % 2


@dataclass(frozen=True)
class PaddingValues:
    """TFLM ``TfLitePaddingValues`` plus the output size ComputePaddingHeightWidth derives."""

    height: int
    width: int
    height_offset: int
    width_offset: int
    out_height: int
    out_width: int


def compute_padding_height_width(stride_h: int, stride_w: int, dilation_h: int, dilation_w: int,
                                 in_h: int, in_w: int, filter_h: int, filter_w: int,
                                 padding: str) -> PaddingValues:
    """TFLM ``ComputePaddingHeightWidth``: geometry every windowed op's Prepare derives.

    Kernels only use the leading (top/left) padding; offsets are kept for completeness.
    """
    out_w = compute_out_size(padding, in_w, filter_w, stride_w, dilation_w)
    out_h = compute_out_size(padding, in_h, filter_h, stride_h, dilation_h)
    pad_h, off_h = compute_padding_with_offset(stride_h, dilation_h, in_h, filter_h, out_h)
    pad_w, off_w = compute_padding_with_offset(stride_w, dilation_w, in_w, filter_w, out_w)
    return PaddingValues(pad_h, pad_w, off_h, off_w, out_h, out_w)


# --- Softmax and ADD Prepare arithmetic ---

#: TFLM's kScaledDiffIntegerBits for the int8 softmax (Q5.26 exp() input).
SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5


def preprocess_softmax_scaling(beta: float, input_scale: float,
                               input_integer_bits: int = SOFTMAX_SCALED_DIFF_INTEGER_BITS
                               ) -> tuple[int, int]:
    """TFLM ``PreprocessSoftmaxScaling`` (double rounding build): (multiplier, left_shift).

    ``beta`` and ``input_scale`` are float32 in TFLM (builtin option and tensor
    scale) widened to double; the product is formed in double, capped at 2^31 - 1,
    and must exceed one (``QuantizeMultiplierGreaterThanOne`` aborts otherwise).
    """
    b = float(f32(beta))
    s = float(f32(input_scale))
    real = min(b * s * float(1 << (31 - input_integer_bits)), float((1 << 31) - 1))
    if not real > 1.0:
        raise UnsupportedModelError(
            f"softmax beta {b!r} x input scale {s!r} is too small: the scaled multiplier "
            f"{real!r} must exceed 1 (TFLM rejects it too)")
    return quantize_multiplier_greater_than_one(real)


def calculate_input_radius(input_integer_bits: int, input_left_shift: int,
                           total_signed_bits: int = 31) -> int:
    """TFLM ``CalculateInputRadius`` (non-emulated float): largest |diff| still scaled in range."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1)
                          * float(1 << (total_signed_bits - input_integer_bits))
                          / float(1 << input_left_shift))
    return math.floor(max_input_rescaled)


@dataclass(frozen=True)
class AddParams:
    """The integers TFLM's ``CalculateOpDataAdd`` derives for a quantized ADD."""

    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int


def add_quant_params(input1_scale: float, input2_scale: float, output_scale: float,
                     left_shift: int = 20) -> AddParams:
    """TFLM ``CalculateOpDataAdd`` for int8 (left_shift 20; int16 would use 15).

    ``std::max`` picks the larger *float32* scale before it is doubled in double;
    every multiplier then goes through ``QuantizeMultiplierSmallerThanOneExp``,
    which TFLM aborts on unless it lies in (0, 1) -- e.g. an output scale below
    2 * max_input_scale / 2^20 is rejected here as it would be there.
    """
    s1 = float(f32(input1_scale))
    s2 = float(f32(input2_scale))
    so = float(f32(output_scale))
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(s1 / twice_max)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(s2 / twice_max)
    mo, sho = quantize_multiplier_smaller_than_one_exp(twice_max / (float(1 << left_shift) * so))
    for shift in (sh1, sh2, sho):
        if shift > 0:
            raise UnsupportedModelError(f"ADD multiplier shift {shift} > 0")
    return AddParams(left_shift, m1, sh1, m2, sh2, mo, sho)


# --- Float kernels and the misc op family (QUANTIZE, MEAN, MUL, LOGISTIC, ...) ---

#: std::numeric_limits<float>::max(), the bound TFLM's float "no activation" range uses.
FLT_MAX = float(np.finfo(np.float32).max)


def activation_range_float_tflm(activation: str) -> tuple[float, float]:
    """TFLM ``CalculateActivationRange<float>`` exactly: unbounded sides are +-FLT_MAX.

    Unlike :func:`activation_range_float` (+-inf), this reproduces TFLM clamping an
    infinite result to +-FLT_MAX, which the bit-exact float kernels need.
    """
    lo, hi = activation_range_float(activation)
    return (max(lo, -FLT_MAX), min(hi, FLT_MAX))


def requantize_multiplier(input_scale: float, output_scale: float) -> tuple[int, int]:
    """TFLM QUANTIZE / MEAN Prepare: ``QuantizeMultiplier(double(in) / double(out))``."""
    return quantize_multiplier(float(f32(input_scale)) / float(f32(output_scale)))


def mul_multiplier(input1_scale: float, input2_scale: float,
                   output_scale: float) -> tuple[int, int]:
    """TFLM ``CalculateOpDataMul``: ``QuantizeMultiplier(double(s1) * double(s2) / double(so))``."""
    return quantize_multiplier(float(f32(input1_scale)) * float(f32(input2_scale))
                               / float(f32(output_scale)))


#: kInputIntegerBits of TFLM's int8 LOGISTIC and TANH (Q4.27 inputs).
SIGMOID_INPUT_INTEGER_BITS = 4


def sigmoid_input_params(input_scale: float) -> tuple[int, int, int]:
    """TFLM int8 LOGISTIC / TANH Prepare: (input_multiplier, input_left_shift, range_radius).

    ``frexp(double(scale) * 2^27)`` split into a Q31 mantissa (``TfLiteRound``) and
    exponent, then ``CalculateInputRadius(4, left_shift, 31)``. TFLM casts a mantissa
    that rounds up to 2^31 to int32 (undefined behaviour); such scales are rejected.
    """
    real = float(f32(input_scale)) * float(1 << (31 - SIGMOID_INPUT_INTEGER_BITS))
    mantissa, left_shift = math.frexp(real)
    mult = tfl_round(mantissa * float(1 << 31))
    if mult >= 1 << 31:
        raise UnsupportedModelError(
            f"input scale {input_scale!r}: the Q31 multiplier rounds to 2^31 (overflows in TFLM)")
    radius = calculate_input_radius(SIGMOID_INPUT_INTEGER_BITS, left_shift, 31)
    return mult, left_shift, radius


def checked_log2(x: float) -> tuple[int, bool]:
    """TFLM ``CheckedLog2`` on a float32: (log2 rounded half away from zero, whether
    *x* is a power of two within 1e-3 in the exponent), in float32 as TFLM computes."""
    x_log2 = f32(f32(math.log(float(f32(x)))) * f32(f32(1.0) / f32(math.log(2.0))))
    rounded = f32(tfl_round(float(x_log2)))
    return int(rounded), bool(abs(float(f32(x_log2 - rounded))) < float(f32(1e-3)))


def sigmoid16_input_params(input_scale: float, tanh: bool) -> tuple[int, int]:
    """TFLM's int16 LOGISTIC / TANH Prepare as (multiplier, shift) of the device's
    ``(x * multiplier + round) >> shift``: a power-of-two input scale whose left shift
    ``12 + log2(scale)`` is 0 (LOGISTIC) or 0/1 (TANH) takes TFLM's multiplier-0 path,
    folded here to ``3 << shift`` with shift 0 as the kernel does; any other scale
    gets ``scale * 3 * 4096`` doubled until above 16383.5 (at most 31 times), truncated."""
    log2, pot = checked_log2(input_scale)
    left_shift = 12 + log2
    pot = pot and left_shift in ((0, 1) if tanh else (0,))
    if pot:
        return 3 << left_shift, 0
    multiplier = float(f32(input_scale)) * 4096.0 * 3.0
    shift = 0
    while multiplier <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        multiplier *= 2.0
    if multiplier > 32767.0:
        raise UnsupportedModelError(
            f"input scale {input_scale!r} is too large for TFLM's int16 sigmoid/tanh "
            f"(its multiplier {int(multiplier)} exceeds 32767)")
    return int(multiplier), shift


def downscale_int32_to_int16_multiplier(multiplier: int) -> int:
    """TFLM ``DownScaleInt32ToInt16Multiplier``: Q31 -> Q15 with rounding, saturating."""
    if multiplier < 0:
        raise UnsupportedModelError(f"negative multiplier {multiplier}")
    rounding = 1 << 15
    if multiplier >= INT32_MAX - rounding:
        return 2**15 - 1
    return (multiplier + rounding) >> 16


@dataclass(frozen=True)
class HardSwishParams:
    """The integers TFLM's int8 ``HardSwishPrepare`` derives."""

    output_multiplier_fixedpoint_int16: int
    output_multiplier_exponent: int
    reluish_multiplier_fixedpoint_int16: int
    reluish_multiplier_exponent: int


def hard_swish_params(input_scale: float, output_scale: float) -> HardSwishParams:
    """TFLM ``HardSwishPrepare`` for int8, with its float32 intermediate products.

    ``hires_input_scale = (1/128) * input_scale`` and both ratios are computed in
    float32 before widening to double, as TFLM writes them. TFLM requires the output
    exponent to be <= 0.
    """
    hires = f32(1.0 / 128.0) * f32(input_scale)
    reluish_scale = f32(3.0) / f32(32768.0)
    out_m, out_e = quantize_multiplier(float(hires / f32(output_scale)))
    rel_m, rel_e = quantize_multiplier(float(hires / reluish_scale))
    if out_e > 0:
        raise UnsupportedModelError(
            f"HARD_SWISH output multiplier exponent {out_e} > 0 (TFLM rejects it)")
    return HardSwishParams(downscale_int32_to_int16_multiplier(out_m), out_e,
                           downscale_int32_to_int16_multiplier(rel_m), rel_e)
