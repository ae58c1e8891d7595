/* MUL int8 reference kernel: TFLM's reference_integer_ops::MulElementwise /
 * BroadcastMul4DSlow. Broadcast walk: tm_broadcast.h. */
#include "tm_broadcast.h"
#include "tm_fixedpoint.h"
#include "tm_ops_misc.h"

static inline int8_t tm_mul_one(int32_t a, int32_t b, const tm_mul_s8_params *p) {
  const int32_t prod = (a + p->input1_offset) * (b + p->input2_offset);
  const int32_t r = p->output_offset +
                    tm_multiply_by_quantized_multiplier(prod, p->output_multiplier,
                                                        (int)p->output_shift);
  return tm_clamp_s8(r, p->act_min, p->act_max);
}

void tm_mul_s8(const void *params) {
  const tm_mul_s8_params *p = (const tm_mul_s8_params *)params;
  const int8_t *in1 = p->input1;
  const int8_t *in2 = p->input2;
  int8_t *out = p->output;
  if (!p->broadcast) {
    for (int32_t i = 0; i < p->size; ++i) out[i] = tm_mul_one(in1[i], in2[i], p);
    return;
  }
  const int32_t last = TM_MUL_MAX_DIMS - 1;
  const int32_t inner = p->dims[last];
  const int32_t is1 = p->strides1[last];
  const int32_t is2 = p->strides2[last];
  const int32_t outer = p->size / inner;
  int32_t idx[TM_MUL_MAX_DIMS - 1] = {0};
  int32_t o1 = 0, o2 = 0;
  for (int32_t o = 0; o < outer; ++o) {
    const int8_t *a = in1 + o1;
    const int8_t *b = in2 + o2;
    for (int32_t k = 0; k < inner; ++k, a += is1, b += is2) *out++ = tm_mul_one(*a, *b, p);
    tm_broadcast_next_run(last, p->dims, p->strides1, p->strides2, idx, &o1, &o2);
  }
}
