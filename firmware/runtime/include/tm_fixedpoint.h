/* Fixed-point requantization helpers shared by every int8 kernel.
 *
 * These reproduce TensorFlow Lite Micro's default (double-rounding)
 * MultiplyByQuantizedMultiplier bit for bit: a saturating, rounding, doubling
 * high multiply (gemmlowp semantics) followed by a rounding arithmetic right
 * shift that rounds half away from zero. TFLITE_SINGLE_ROUNDING is NOT what
 * TFLM ships by default, so it is not what we reproduce.
 *
 * Everything is static inline so kernels keep the arithmetic in registers; on
 * Cortex-M the 64-bit product compiles to SMULL (M3/M4/M7) or a short libgcc
 * helper (M0+), and the division by 2^31 that TFLM writes is expressed as a
 * bias-and-shift, which is equivalent for signed truncating division but avoids
 * a 64-bit divide call.
 *
 * Relies on '>>' of negative signed integers being arithmetic, which GCC and
 * Clang guarantee (implementation-defined in C11, documented by both). */
#ifndef TM_FIXEDPOINT_H
#define TM_FIXEDPOINT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TM_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define TM_ALWAYS_INLINE inline
#endif

static TM_ALWAYS_INLINE int32_t tm_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
static TM_ALWAYS_INLINE int32_t tm_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }

/* gemmlowp SaturatingRoundingDoublingHighMul: high 32 bits of 2*a*b, rounded
 * half away from zero; the single overflowing case (INT32_MIN * INT32_MIN)
 * saturates to INT32_MAX. */
static TM_ALWAYS_INLINE int32_t tm_sat_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) {
    return INT32_MAX;
  }
  const int64_t ab = (int64_t)a * (int64_t)b;
  /* TFLM: (ab + nudge) / 2^31 with C truncating division, nudge = +-2^30
   * (1 - 2^30 for negative products). Truncation toward zero of a negative
   * value v equals (v + 2^31 - 1) >> 31. */
  int64_t v;
  if (ab >= 0) {
    v = ab + (INT64_C(1) << 30);
  } else {
    /* ab + nudge is always negative here. */
    v = ab + (1 - (INT64_C(1) << 30)) + ((INT64_C(1) << 31) - 1);
  }
  return (int32_t)(v >> 31);
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent rounded half away from zero.
 * exponent must be in [0, 31]. */
static TM_ALWAYS_INLINE int32_t tm_rounding_divide_by_pot(int32_t x, int exponent) {
  const int32_t mask = (int32_t)((UINT32_C(1) << exponent) - 1u);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLM MultiplyByQuantizedMultiplier(int32 x, int32 multiplier, int shift):
 * x * multiplier * 2^(shift - 31) with TFLM's double rounding. A positive shift
 * is applied as a left shift before the multiply (wrapping like TFLM's int32
 * multiply does on every target it runs on), a negative one as a rounding right
 * shift after it. */
static TM_ALWAYS_INLINE int32_t tm_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                                   int shift) {
  const int left_shift = shift > 0 ? shift : 0;
  const int right_shift = shift > 0 ? 0 : -shift;
  const int32_t scaled = (int32_t)((uint32_t)x << left_shift);
  return tm_rounding_divide_by_pot(tm_sat_rounding_doubling_high_mul(scaled, multiplier),
                                   right_shift);
}

/* TFLM MultiplyByQuantizedMultiplier(int64_t x, ...), the 16x8 kernels' int64
 * requantization: the multiplier rounded to 16 bits, then one rounding right shift
 * by 15 - shift. */
static TM_ALWAYS_INLINE int32_t tm_multiply_by_quantized_multiplier_s64(int64_t x,
                                                                       int32_t multiplier,
                                                                       int32_t shift) {
  const int32_t reduced = multiplier < 0x7FFF0000 ? ((multiplier + (1 << 15)) >> 16) : 0x7FFF;
  const int32_t total = 15 - shift;
  const int64_t round = (int64_t)1 << (total - 1);
  return (int32_t)((x * (int64_t)reduced + round) >> total);
}

/* TFLM MultiplyByQuantizedMultiplierSmallerThanOneExp (left_shift <= 0). */
static TM_ALWAYS_INLINE int32_t tm_multiply_by_quantized_multiplier_smaller_than_one_exp(
    int32_t x, int32_t multiplier, int left_shift) {
  return tm_rounding_divide_by_pot(tm_sat_rounding_doubling_high_mul(x, multiplier), -left_shift);
}

/* TFLM MultiplyByQuantizedMultiplierGreaterThanOne (left_shift >= 0). */
static TM_ALWAYS_INLINE int32_t tm_multiply_by_quantized_multiplier_greater_than_one(
    int32_t x, int32_t multiplier, int left_shift) {
  return tm_sat_rounding_doubling_high_mul((int32_t)((uint32_t)x << left_shift), multiplier);
}

/* tm_sat_rounding_doubling_high_mul for a multiplier b != INT32_MIN (every
 * requantization multiplier the host emits is in [0, 2^31)), in one SMLAL.
 * TFLM's (ab + nudge) / 2^31 with nudge = 2^30 for ab >= 0 and 1 - 2^30 otherwise,
 * truncated toward zero, equals floor((ab + 2^30) / 2^31) for either sign: for
 * ab < 0, trunc(v / 2^31) = floor((v + 2^31 - 1) / 2^31) and v + 2^31 - 1 = ab + 2^30.
 * Without the INT32_MIN * INT32_MIN case nothing saturates. */
static TM_ALWAYS_INLINE int32_t tm_rounding_doubling_high_mul_nosat(int32_t a, int32_t b) {
  return (int32_t)(((int64_t)a * (int64_t)b + (INT64_C(1) << 30)) >> 31);
}

/* tm_multiply_by_quantized_multiplier for multiplier != INT32_MIN, with the
 * per-channel shift pre-split by the caller (hoisted out of pixel loops):
 * left = max(shift, 0), right = max(-shift, 0), mask = 2^right - 1. The rounding
 * divide is tm_rounding_divide_by_pot with the threshold formed branch-free. */
static TM_ALWAYS_INLINE int32_t tm_requantize_split(int32_t x, int32_t multiplier, int left,
                                                    int right, int32_t mask) {
  const int32_t hm = tm_rounding_doubling_high_mul_nosat((int32_t)((uint32_t)x << left),
                                                         multiplier);
  const int32_t remainder = hm & mask;
  const int32_t threshold = (mask >> 1) - (hm >> 31);
  return (hm >> right) + (remainder > threshold ? 1 : 0);
}

/* tm_multiply_by_quantized_multiplier for shift <= -1 (a right shift r = -shift >= 1,
 * the common requantization case) and multiplier in [0, 2^31), with both roundings
 * folded into one SMLAL:
 *
 *   q = hi(a*m + C - [a < 0] * 2^31) >> (r - 1),   C = 2^30 + 2^(30 + r)
 *
 * Why it is exact: TFLM's high multiply is x = floor((a*m + 2^30) / 2^31) (see
 * tm_rounding_doubling_high_mul_nosat) and its rounding divide is
 * floor((x + 2^(r-1) - [x < 0]) / 2^r); since floor((floor(y) + n) / d) =
 * floor((y + n) / d) for integers n and d >= 1, q = floor((a*m + 2^30 + 2^(30+r) -
 * [x < 0] * 2^31) / 2^(31+r)). [x < 0] may be replaced by [a < 0]: they differ only
 * for a < 0 with 0 <= a*m + 2^30 <= 2^30 (m >= 0), where both sums lie in
 * [0, 2^(31+r)) and q = 0 either way. Subtracting 2^31 from the 64-bit sum only
 * borrows from the high word when bit 31 of the low word is clear, hence
 * hi -= (a & ~lo) >> 31. Nothing overflows: |a*m| < 2^62.
 * c_lo/c_hi come from tm_requantize_right_constants, once per channel. */
static TM_ALWAYS_INLINE void tm_requantize_right_constants(int right, uint32_t *c_lo,
                                                           int32_t *c_hi) {
  *c_lo = (UINT32_C(1) << 30) + (right == 1 ? (UINT32_C(1) << 31) : 0u);
  *c_hi = right >= 2 ? (int32_t)(INT32_C(1) << (right - 2)) : 0;
}

/* tm_requantize_right with shr = right - 1 precomputed (per channel, out of the loops). */
static TM_ALWAYS_INLINE int32_t tm_requantize_right_shr(int32_t a, int32_t multiplier,
                                                        uint32_t c_lo, int32_t c_hi, int shr) {
  const uint64_t c = ((uint64_t)(uint32_t)c_hi << 32) | c_lo;
  const uint64_t t = (uint64_t)((int64_t)a * (int64_t)multiplier) + c;
  const uint32_t lo = (uint32_t)t;
  const int32_t hi = (int32_t)(uint32_t)(t >> 32) - (int32_t)(((uint32_t)a & ~lo) >> 31);
  return hi >> shr;
}

static TM_ALWAYS_INLINE int32_t tm_requantize_right(int32_t a, int32_t multiplier, uint32_t c_lo,
                                                    int32_t c_hi, int right) {
  return tm_requantize_right_shr(a, multiplier, c_lo, c_hi, right - 1);
}

/* Clamp to the int8 range after the activation clamp has been applied. */
static TM_ALWAYS_INLINE int8_t tm_clamp_s8(int32_t v, int32_t lo, int32_t hi) {
  return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

#ifdef __cplusplus
}
#endif

#endif /* TM_FIXEDPOINT_H */
