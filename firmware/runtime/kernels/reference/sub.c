/* SUB int8 (reference_ops::Sub / BroadcastQuantSubSlow: ADD's rescaling with
 * the rescaled inputs subtracted) and float32 (a - b, then the fused
 * activation clamp with std::min/max semantics). */
#include "tm_broadcast.h"
#include "tm_fixedpoint.h"
#include "tm_ops_binary.h"

static TM_ALWAYS_INLINE int32_t tm_sub_scale(int32_t x, int32_t off, int32_t left_shift,
                                             int32_t mult, int32_t shift) {
  return tm_multiply_by_quantized_multiplier_smaller_than_one_exp((x + off) * (1 << left_shift),
                                                                  mult, (int)shift);
}

static TM_ALWAYS_INLINE int8_t tm_sub_one(int32_t x, int32_t y, const tm_add_s8_params *p) {
  const int32_t a = tm_sub_scale(x, p->input1_offset, p->left_shift, p->input1_multiplier,
                                 p->input1_shift);
  const int32_t b = tm_sub_scale(y, p->input2_offset, p->left_shift, p->input2_multiplier,
                                 p->input2_shift);
  const int32_t raw = tm_multiply_by_quantized_multiplier_smaller_than_one_exp(
                          a - b, p->output_multiplier, (int)p->output_shift) +
                      p->output_offset;
  return tm_clamp_s8(raw, p->act_min, p->act_max);
}

void tm_sub_s8(const void *params) {
  const tm_add_s8_params *p = (const tm_add_s8_params *)params;
  TM_BROADCAST_FOR_EACH(p, TM_ADD_MAX_DIMS, int8_t, p->input1, int8_t, p->input2, int8_t,
                        p->output, a, b, o, *o = tm_sub_one(*a, *b, p));
}

void tm_sub_f32(const void *params) {
  const tm_binary_f32_params *p = (const tm_binary_f32_params *)params;
  const float lo = p->act_min, hi = p->act_max;
  TM_BROADCAST_FOR_EACH(p, TM_BINARY_F32_MAX_DIMS, float, p->input1, float, p->input2, float,
                        p->output, a, b, o, *o = tm_act_f32(*a - *b, lo, hi));
}
