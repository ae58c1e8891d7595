/* SOFTMAX int8 -> int8 reference kernel: TFLM's reference_ops::Softmax
 * (gemmlowp fixed-point path) for int8 input and int8 output.
 *
 * Like TFLM, exp() of each difference is evaluated twice (once for the sum,
 * once for the output) rather than cached: there is no scratch memory, and
 * the output (int8) cannot hold the Q0.31 exponentials. */
#include "tm_fixedpoint.h"
#include "tm_fixedpoint_gemmlowp.h"
#include "tm_ops_softmax.h"

/* Q5.26 input to exp(), as TFLM's kScaledDiffIntegerBits. */
#define TM_SOFTMAX_DIFF_INT_BITS 5
/* Q12.19 accumulator of the exponentials (kAccumulationIntegerBits). */
#define TM_SOFTMAX_ACC_INT_BITS 12

void tm_softmax_s8(const void *params) {
  const tm_softmax_s8_params *p = (const tm_softmax_s8_params *)params;
  const int32_t depth = p->depth;
  const int32_t mult = p->input_multiplier;
  const int shift = (int)p->input_left_shift;
  const int32_t diff_min = p->diff_min;
  const int8_t *in = p->input;
  int8_t *out = p->output;

  for (int32_t r = 0; r < p->outer_size; ++r, in += depth, out += depth) {
    int32_t max_in_row = INT8_MIN;
    for (int32_t c = 0; c < depth; ++c) {
      max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
    }

    uint32_t sum_of_exps = 0; /* Q12.19; wraps like TFLM's int32 sum */
    for (int32_t c = 0; c < depth; ++c) {
      const int32_t diff = (int32_t)in[c] - max_in_row;
      if (diff >= diff_min) {
        const int32_t scaled = tm_multiply_by_quantized_multiplier_greater_than_one(diff, mult, shift);
        const int32_t e = tm_gl_exp_on_negative_values(scaled, TM_SOFTMAX_DIFF_INT_BITS);
        sum_of_exps += (uint32_t)tm_rounding_divide_by_pot(e, TM_SOFTMAX_ACC_INT_BITS);
      }
    }

    int num_bits_over_unit;
    const int32_t shifted_scale =
        tm_get_reciprocal((int32_t)sum_of_exps, TM_SOFTMAX_ACC_INT_BITS, &num_bits_over_unit);
    /* TFLM aborts (TFLITE_CHECK) when this exceeds 31, i.e. when the row's sum
     * of exponentials reaches 512; clamping keeps the shift defined here. */
    int exponent = num_bits_over_unit + 31 - 8;
    exponent = exponent > 31 ? 31 : exponent;

    for (int32_t c = 0; c < depth; ++c) {
      const int32_t diff = (int32_t)in[c] - max_in_row;
      int32_t v = INT8_MIN;
      if (diff >= diff_min) {
        const int32_t scaled = tm_multiply_by_quantized_multiplier_greater_than_one(diff, mult, shift);
        const int32_t e = tm_gl_exp_on_negative_values(scaled, TM_SOFTMAX_DIFF_INT_BITS);
        const int32_t unsat =
            tm_rounding_divide_by_pot(tm_sat_rounding_doubling_high_mul(shifted_scale, e), exponent);
        v = unsat + INT8_MIN;
        v = v > INT8_MAX ? INT8_MAX : v;
      }
      out[c] = (int8_t)v;
    }
  }
}
