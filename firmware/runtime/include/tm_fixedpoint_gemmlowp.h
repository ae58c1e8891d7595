/* gemmlowp fixed-point transcendental helpers used by the int8 SOFTMAX kernel.
 *
 * TFLM's int8 softmax (reference_ops::Softmax, gemmlowp path) evaluates exp()
 * and a reciprocal with gemmlowp's FixedPoint<int32_t, N> arithmetic. To be bit
 * exact we reproduce those exact operation sequences on raw int32 values:
 *   - a FixedPoint product is a SaturatingRoundingDoublingHighMul of the raws
 *     (integer bits add up),
 *   - Rescale<dst>(FixedPoint<src>) is a saturating left shift by (src - dst)
 *     when positive and a rounding right shift when negative,
 *   - + and - are plain (wrapping) int32 adds.
 * Wrapping adds are written through uint32_t so the C code has no signed
 * overflow UB where gemmlowp's C++ would (silently) wrap.
 *
 * Split from tm_fixedpoint.h so the softmax work does not edit the header the
 * conv kernels own. */
#ifndef TM_FIXEDPOINT_GEMMLOWP_H
#define TM_FIXEDPOINT_GEMMLOWP_H

#include <stdint.h>

#include "tm_fixedpoint.h"

#ifdef __cplusplus
extern "C" {
#endif

static TM_ALWAYS_INLINE int32_t tm_gl_add(int32_t a, int32_t b) {
  return (int32_t)((uint32_t)a + (uint32_t)b);
}

static TM_ALWAYS_INLINE int32_t tm_gl_sub(int32_t a, int32_t b) {
  return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* Count of leading zero bits; 32 for 0 (TFLM CountLeadingZeros). */
static TM_ALWAYS_INLINE int tm_clz32(uint32_t x) {
#if defined(__GNUC__)
  return x ? __builtin_clz(x) : 32;
#else
  int n = 0;
  if (x == 0) return 32;
  while (!(x & 0x80000000u)) {
    x <<= 1;
    ++n;
  }
  return n;
#endif
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for exponent > 0: a left
 * shift that saturates to INT32_MIN/INT32_MAX when it would overflow. */
static TM_ALWAYS_INLINE int32_t tm_gl_sat_shift_left(int32_t x, int exponent) {
  const int32_t threshold = (int32_t)((UINT32_C(1) << (31 - exponent)) - 1u);
  if (x > threshold) return INT32_MAX;
  if (x < -threshold) return INT32_MIN;
  return (int32_t)((uint32_t)x << exponent);
}

/* gemmlowp RoundingHalfSum: (a + b) / 2 rounded half away from zero. */
static TM_ALWAYS_INLINE int32_t tm_gl_rounding_half_sum(int32_t a, int32_t b) {
  const int64_t sum = (int64_t)a + (int64_t)b;
  const int64_t sign = sum >= 0 ? 1 : -1;
  return (int32_t)((sum + sign) / 2);
}

/* exp(a) for a in [-1/4, 0), a and result in Q0.31 (gemmlowp
 * exp_on_interval_between_negative_one_quarter_and_0_excl): Taylor expansion
 * around -1/8. */
static TM_ALWAYS_INLINE int32_t tm_gl_exp_on_interval_neg_quarter_0(int32_t a) {
  const int32_t constant_term = 1895147668;    /* exp(-1/8) */
  const int32_t constant_1_over_3 = 715827883; /* 1/3 */
  const int32_t x = tm_gl_add(a, INT32_C(1) << 28);
  const int32_t x2 = tm_sat_rounding_doubling_high_mul(x, x);
  const int32_t x3 = tm_sat_rounding_doubling_high_mul(x2, x);
  const int32_t x4 = tm_sat_rounding_doubling_high_mul(x2, x2);
  const int32_t x4_over_4 = tm_rounding_divide_by_pot(x4, 2);
  const int32_t poly = tm_rounding_divide_by_pot(
      tm_gl_add(tm_sat_rounding_doubling_high_mul(tm_gl_add(x4_over_4, x3), constant_1_over_3),
                x2),
      1);
  return tm_gl_add(constant_term,
                   tm_sat_rounding_doubling_high_mul(constant_term, tm_gl_add(x, poly)));
}

/* gemmlowp exp_on_negative_values for FixedPoint<int32_t, integer_bits> input
 * (a <= 0), result in Q0.31. integer_bits is a compile-time constant at every
 * call site, so the barrel-shifter conditions fold away. Only valid for
 * integer_bits <= 5 (the clamp gemmlowp adds above 5 is not reproduced). */
static TM_ALWAYS_INLINE int32_t tm_gl_exp_on_negative_values(int32_t a, int integer_bits) {
  const int fractional_bits = 31 - integer_bits;
  const int32_t one_quarter = INT32_C(1) << (fractional_bits - 2);
  const int32_t mask = one_quarter - 1;
  const int32_t a_mod_quarter_minus_one_quarter = tm_gl_sub(a & mask, one_quarter);
  int32_t result;
  if (integer_bits > 0) {
    result = tm_gl_exp_on_interval_neg_quarter_0(
        tm_gl_sat_shift_left(a_mod_quarter_minus_one_quarter, integer_bits));
  } else {
    result = tm_gl_exp_on_interval_neg_quarter_0(a_mod_quarter_minus_one_quarter);
  }
  const int32_t remainder = tm_gl_sub(a_mod_quarter_minus_one_quarter, a);
  /* exp(-2^e) in Q0.31 for e = -2 .. 4, applied for every set bit of the
   * multiple-of-a-quarter remainder. */
  static const int32_t kBarrel[7] = {1672461947, 1302514674, 790015084, 290630308,
                                     39332535,   720401,     242};
  for (int e = -2; e <= 4; ++e) {
    if (integer_bits > e && (remainder & (INT32_C(1) << (fractional_bits + e)))) {
      result = tm_sat_rounding_doubling_high_mul(result, kBarrel[e + 2]);
    }
  }
  return a == 0 ? INT32_MAX : result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a) for a in Q0.31,
 * result in Q0.31, by three Newton-Raphson steps in Q2.29. */
static TM_ALWAYS_INLINE int32_t tm_gl_one_over_one_plus_x_for_x_in_0_1(int32_t a) {
  const int32_t half_denominator = tm_gl_rounding_half_sum(a, INT32_MAX);
  const int32_t constant_48_over_17 = 1515870810;
  const int32_t constant_neg_32_over_17 = -1010580540;
  const int32_t f2_one = INT32_C(1) << 29;
  int32_t x = tm_gl_add(constant_48_over_17,
                        tm_sat_rounding_doubling_high_mul(half_denominator,
                                                          constant_neg_32_over_17));
  for (int i = 0; i < 3; ++i) {
    const int32_t half_denominator_times_x = tm_sat_rounding_doubling_high_mul(half_denominator, x);
    const int32_t one_minus = tm_gl_sub(f2_one, half_denominator_times_x);
    x = tm_gl_add(x, tm_gl_sat_shift_left(tm_sat_rounding_doubling_high_mul(x, one_minus), 2));
  }
  return tm_gl_sat_shift_left(x, 1);
}

/* TFLM GetReciprocal: 1/x for x with x_integer_digits integer bits, as a Q0.31
 * scale and the number of bits the value is above one. x must be > 0. */
static TM_ALWAYS_INLINE int32_t tm_get_reciprocal(int32_t x, int x_integer_digits,
                                                  int *num_bits_over_unit) {
  const int headroom_plus_one = tm_clz32((uint32_t)x);
  *num_bits_over_unit = x_integer_digits - headroom_plus_one;
  const int32_t shifted_sum_minus_one =
      (int32_t)(((uint32_t)x << headroom_plus_one) - (UINT32_C(1) << 31));
  return tm_gl_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
}

#ifdef __cplusplus
}
#endif

#endif /* TM_FIXEDPOINT_GEMMLOWP_H */
