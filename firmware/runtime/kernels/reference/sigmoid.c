/* LOGISTIC and TANH int8 reference kernels: TFLM's
 * reference_integer_ops::Logistic / Tanh (LUT-free), i.e. gemmlowp's
 * fixed-point logistic() / tanh() on FixedPoint<int32_t, 4> inputs, built
 * from the gemmlowp helpers the int8 softmax uses. */
#include "tm_fixedpoint.h"
#include "tm_fixedpoint_gemmlowp.h"
#include "tm_ops_misc.h"

#define TM_SIGMOID_INPUT_INTEGER_BITS 4

/* gemmlowp one_minus_x_over_one_plus_x_for_x_in_0_1: (1 - a) / (1 + a) for a in
 * Q0.31, Newton-Raphson in Q2.29, result Q0.31. */
static int32_t tm_gl_one_minus_x_over_one_plus_x(int32_t a) {
  const int32_t half_denominator = tm_gl_rounding_half_sum(a, INT32_MAX);
  const int32_t c48_17 = 1515870810;
  const int32_t cneg32_17 = -1010580540;
  const int32_t f2_one = INT32_C(1) << 29;
  int32_t x = tm_gl_add(c48_17, tm_sat_rounding_doubling_high_mul(half_denominator, cneg32_17));
  for (int i = 0; i < 3; ++i) {
    const int32_t hdx = tm_sat_rounding_doubling_high_mul(half_denominator, x);
    const int32_t one_minus = tm_gl_sub(f2_one, hdx);
    x = tm_gl_add(x, tm_gl_sat_shift_left(tm_sat_rounding_doubling_high_mul(x, one_minus), 2));
  }
  return tm_gl_sat_shift_left(tm_gl_sub(x, f2_one), 2);
}

/* gemmlowp logistic(FixedPoint<int32_t, 4>) -> Q0.31. */
static int32_t tm_gl_logistic_q4(int32_t a) {
  if (a == 0) return INT32_C(1) << 30;
  const int32_t abs_a = a > 0 ? a : tm_gl_sub(0, a);
  const int32_t pos = tm_gl_one_over_one_plus_x_for_x_in_0_1(
      tm_gl_exp_on_negative_values(tm_gl_sub(0, abs_a), TM_SIGMOID_INPUT_INTEGER_BITS));
  return a > 0 ? pos : tm_gl_sub(INT32_MAX, pos);
}

/* gemmlowp tanh(FixedPoint<int32_t, 4>) -> Q0.31. ExactMulByPot<1> keeps the raw
 * value and adds an integer bit, so exp() runs with 5 integer bits. */
static int32_t tm_gl_tanh_q4(int32_t a) {
  if (a == 0) return 0;
  const int32_t n = a < 0 ? a : tm_gl_sub(0, a);
  const int32_t t = tm_gl_one_minus_x_over_one_plus_x(
      tm_gl_exp_on_negative_values(n, TM_SIGMOID_INPUT_INTEGER_BITS + 1));
  return a < 0 ? tm_gl_sub(0, t) : t;
}

/* Both ops saturate outside the input radius (TFLM's input_range_radius) and
 * otherwise rescale to Q4.27 and evaluate in fixed point; they differ only in the
 * function and its output scaling (logistic: 1/256, zero point -128; tanh: 1/128,
 * zero point 0). Inlined with a constant is_tanh, each kernel keeps its own loop. */
static inline void tm_sigmoid_family_s8(const tm_sigmoid_s8_params *p, int is_tanh) {
  for (int32_t i = 0; i < p->size; ++i) {
    const int32_t x = (int32_t)p->input[i] - p->input_zero_point;
    if (x <= -p->input_range_radius) {
      p->output[i] = -128;
    } else if (x >= p->input_range_radius) {
      p->output[i] = 127;
    } else {
      const int32_t q4 = tm_multiply_by_quantized_multiplier(x, p->input_multiplier,
                                                             (int)p->input_left_shift);
      if (is_tanh) {
        const int32_t q24 = tm_rounding_divide_by_pot(tm_gl_tanh_q4(q4), 31 - 7);
        p->output[i] = tm_clamp_s8(q24, -128, 127);
      } else {
        const int32_t q23 = tm_rounding_divide_by_pot(tm_gl_logistic_q4(q4), 31 - 8);
        p->output[i] = tm_clamp_s8(q23 - 128, -128, 127);
      }
    }
  }
}

void tm_logistic_s8(const void *params) {
  tm_sigmoid_family_s8((const tm_sigmoid_s8_params *)params, 0);
}

void tm_tanh_s8(const void *params) {
  tm_sigmoid_family_s8((const tm_sigmoid_s8_params *)params, 1);
}
