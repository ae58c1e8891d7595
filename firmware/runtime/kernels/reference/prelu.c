/* PRELU int8 and float32 (TFLM's BroadcastPrelu4DSlow, with the broadcast walk
 * of tm_broadcast.h: input1 = x, input2 = alpha). */
#include "tm_broadcast.h"
#include "tm_fixedpoint.h"
#include "tm_ops_activations.h"

static TM_ALWAYS_INLINE int8_t tm_prelu_one(int32_t x, int32_t a, const tm_prelu_s8_params *p) {
  const int32_t v = x + p->input_offset;
  int32_t r;
  if (v >= 0) {
    r = tm_multiply_by_quantized_multiplier(v, p->output_multiplier_1, (int)p->output_shift_1);
  } else {
    r = tm_multiply_by_quantized_multiplier(v * (a + p->alpha_offset), p->output_multiplier_2,
                                            (int)p->output_shift_2);
  }
  return tm_clamp_s8(r + p->output_offset, -128, 127);
}

void tm_prelu_s8(const void *params) {
  const tm_prelu_s8_params *p = (const tm_prelu_s8_params *)params;
  TM_BROADCAST_FOR_EACH(p, TM_PRELU_MAX_DIMS, int8_t, p->input, int8_t, p->alpha, int8_t,
                        p->output, a, b, o, *o = tm_prelu_one(*a, *b, p));
}

void tm_prelu_f32(const void *params) {
  const tm_binary_f32_params *p = (const tm_binary_f32_params *)params;
  TM_BROADCAST_FOR_EACH(p, TM_BINARY_F32_MAX_DIMS, float, p->input1, float, p->input2, float,
                        p->output, a, b, o, *o = (*a >= 0.0f) ? *a : *a * *b);
}
