/* ADD int8, DSP-core build (Cortex-M4/M7/M33): the reference kernel with a
 * cheaper, still exact, requantization (about half the instructions per element).
 *
 * gemmlowp's SaturatingRoundingDoublingHighMul computes
 * trunc((a*b + nudge) / 2^31) with nudge = 2^30 for a*b >= 0 and 1 - 2^30
 * otherwise. For a*b < 0 the truncation of the (negative) quotient equals
 * floor((a*b + 1 - 2^30 + 2^31 - 1) / 2^31) = floor((a*b + 2^30) / 2^31), which
 * is also the value for a*b >= 0; so the whole function is one SMULL, a 64-bit
 * add and an arithmetic shift -- no sign branch. Its only saturating case
 * (a == b == INT32_MIN) cannot occur here: ADD's operands are at most
 * 255 << 20 in magnitude (or sums of two rescaled ones) and the multipliers are
 * positive. */
#include "tm_fixedpoint.h"
#include "tm_ops_elementwise.h"

#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)

static TM_ALWAYS_INLINE int32_t tm_add_srdhm(int32_t a, int32_t b) {
  return (int32_t)(((int64_t)a * (int64_t)b + (INT64_C(1) << 30)) >> 31);
}

/* TFLM's MultiplyByQuantizedMultiplierSmallerThanOneExp. A right shift folds both
 * roundings into one multiply-accumulate (tm_requantize_right: exact for
 * multipliers in [0, 2^31), which ADD's are); shift 0 is the bare high multiply.
 * The shift is loop-invariant, so the constants and the branch stay predictable. */
static TM_ALWAYS_INLINE int32_t tm_add_mbqm_smaller_than_one_exp(int32_t x, int32_t multiplier,
                                                                int left_shift) {
  if (left_shift == 0) return tm_add_srdhm(x, multiplier);
  uint32_t c_lo;
  int32_t c_hi;
  tm_requantize_right_constants(-left_shift, &c_lo, &c_hi);
  return tm_requantize_right(x, multiplier, c_lo, c_hi, -left_shift);
}

#define tm_multiply_by_quantized_multiplier_smaller_than_one_exp tm_add_mbqm_smaller_than_one_exp
#include "../reference/add.c"
#undef tm_multiply_by_quantized_multiplier_smaller_than_one_exp

#else /* no DSP extension: the reference kernel */
#include "../reference/add.c"
#endif
