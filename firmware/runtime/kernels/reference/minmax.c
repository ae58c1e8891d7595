/* MAXIMUM / MINIMUM (TFLM maximum_minimum.cc: el1 > el2 ? el1 : el2 and
 * el1 < el2 ? el1 : el2 on the stored values, broadcast walk of tm_broadcast.h). */
#include "tm_broadcast.h"
#include "tm_ops_binary.h"

void tm_maximum_s8(const void *params) {
  const tm_minmax_s8_params *p = (const tm_minmax_s8_params *)params;
  TM_BROADCAST_FOR_EACH(p, TM_MINMAX_MAX_DIMS, int8_t, p->input1, int8_t, p->input2, int8_t,
                        p->output, a, b, o, *o = *a > *b ? *a : *b);
}

void tm_minimum_s8(const void *params) {
  const tm_minmax_s8_params *p = (const tm_minmax_s8_params *)params;
  TM_BROADCAST_FOR_EACH(p, TM_MINMAX_MAX_DIMS, int8_t, p->input1, int8_t, p->input2, int8_t,
                        p->output, a, b, o, *o = *a < *b ? *a : *b);
}

void tm_maximum_f32(const void *params) {
  const tm_binary_f32_params *p = (const tm_binary_f32_params *)params;
  TM_BROADCAST_FOR_EACH(p, TM_BINARY_F32_MAX_DIMS, float, p->input1, float, p->input2, float,
                        p->output, a, b, o, *o = *a > *b ? *a : *b);
}

void tm_minimum_f32(const void *params) {
  const tm_binary_f32_params *p = (const tm_binary_f32_params *)params;
  TM_BROADCAST_FOR_EACH(p, TM_BINARY_F32_MAX_DIMS, float, p->input1, float, p->input2, float,
                        p->output, a, b, o, *o = *a < *b ? *a : *b);
}
