/* GATHER and ARG_MAX / ARG_MIN reference kernels (TFLM gather.cc,
 * reference_ops::ArgMinMax). */
#include <string.h>

#include "tm_ops_indexing.h"

void tm_gather(const void *params) {
  const tm_gather_params *p = (const tm_gather_params *)params;
  const uint8_t *in = (const uint8_t *)p->input;
  uint8_t *out = (uint8_t *)p->output;
  const size_t inner = (size_t)p->inner_bytes;
  for (int32_t b = 0; b < p->batch_size; ++b) {
    const int32_t *pos = p->positions + b * p->coord_size;
    for (int32_t o = 0; o < p->outer_size; ++o) {
      const uint8_t *block = in + (size_t)(b * p->outer_size + o) * (size_t)p->axis_size * inner;
      for (int32_t c = 0; c < p->coord_size; ++c) {
        int32_t k = pos[c];
        k = k < 0 ? 0 : (k >= p->axis_size ? p->axis_size - 1 : k);
        memcpy(out, block + (size_t)k * inner, inner);
        out += inner;
      }
    }
  }
}

#define TM_ARG_KERNEL(name, ptype, ctype, CMP)                                      \
  void name(const void *params) {                                                   \
    const ptype *p = (const ptype *)params;                                         \
    const int32_t inner = p->inner_size, axis = p->axis_size;                       \
    for (int32_t o = 0; o < p->outer_size; ++o) {                                   \
      const ctype *base = p->input + o * axis * inner;                              \
      for (int32_t j = 0; j < inner; ++j) {                                         \
        ctype best = base[j];                                                       \
        int32_t best_i = 0;                                                         \
        for (int32_t i = 1; i < axis; ++i) {                                        \
          const ctype v = base[i * inner + j];                                      \
          if (v CMP best) {                                                         \
            best = v;                                                               \
            best_i = i;                                                             \
          }                                                                         \
        }                                                                           \
        p->output[o * inner + j] = best_i;                                          \
      }                                                                             \
    }                                                                               \
  }

TM_ARG_KERNEL(tm_arg_max_s8, tm_arg_minmax_s8_params, int8_t, >)
TM_ARG_KERNEL(tm_arg_min_s8, tm_arg_minmax_s8_params, int8_t, <)
TM_ARG_KERNEL(tm_arg_max_f32, tm_arg_minmax_f32_params, float, >)
TM_ARG_KERNEL(tm_arg_min_f32, tm_arg_minmax_f32_params, float, <)
