/* ADD / MUL int16 reference kernels (TFLM reference_ops::Add / BroadcastAdd6DSlow
 * with left_shift 15, reference_integer_ops::Mul int16); broadcast walk of
 * tm_broadcast.h. */
#include "tm_broadcast.h"
#include "tm_fixedpoint.h"
#include "tm_ops_int16.h"

static TM_ALWAYS_INLINE int16_t tm_clamp_s16(int32_t v, int32_t lo, int32_t hi) {
  return (int16_t)(v < lo ? lo : (v > hi ? hi : v));
}

static TM_ALWAYS_INLINE int16_t tm_add_s16_one(int32_t x, int32_t y, const tm_add_s16_params *p) {
  const int32_t a = tm_multiply_by_quantized_multiplier_smaller_than_one_exp(
      x * (1 << p->left_shift), p->input1_multiplier, (int)p->input1_shift);
  const int32_t b = tm_multiply_by_quantized_multiplier_smaller_than_one_exp(
      y * (1 << p->left_shift), p->input2_multiplier, (int)p->input2_shift);
  const int32_t r = tm_multiply_by_quantized_multiplier_smaller_than_one_exp(
      a + b, p->output_multiplier, (int)p->output_shift);
  return tm_clamp_s16(r, p->act_min, p->act_max);
}

void tm_add_s16(const void *params) {
  const tm_add_s16_params *p = (const tm_add_s16_params *)params;
  TM_BROADCAST_FOR_EACH(p, TM_S16_MAX_DIMS, int16_t, p->input1, int16_t, p->input2, int16_t,
                        p->output, a, b, o, *o = tm_add_s16_one(*a, *b, p));
}

void tm_mul_s16(const void *params) {
  const tm_mul_s16_params *p = (const tm_mul_s16_params *)params;
  TM_BROADCAST_FOR_EACH(
      p, TM_S16_MAX_DIMS, int16_t, p->input1, int16_t, p->input2, int16_t, p->output, a, b, o,
      *o = tm_clamp_s16(tm_multiply_by_quantized_multiplier((int32_t)*a * (int32_t)*b,
                                                            p->output_multiplier,
                                                            (int)p->output_shift),
                        p->act_min, p->act_max));
}
