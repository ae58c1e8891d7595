/* BATCH_MATMUL reference kernels (TFLM reference_ops::BatchMatMul semantics, the
 * k sum in ascending order from 0). */
#include "tm_fixedpoint.h"
#include "tm_ops_batch_matmul.h"

#define TM_BMM_LOOP(P, ACC_T, TERM, STORE)                                                 \
  do {                                                                                     \
    for (int32_t b0 = 0; b0 < (P)->batch[0]; ++b0) {                                       \
      for (int32_t b1 = 0; b1 < (P)->batch[1]; ++b1) {                                     \
        for (int32_t b2 = 0; b2 < (P)->batch[2]; ++b2) {                                   \
          const int32_t ab = b0 * (P)->a_batch_strides[0] + b1 * (P)->a_batch_strides[1] + \
                             b2 * (P)->a_batch_strides[2];                                 \
          const int32_t bb = b0 * (P)->b_batch_strides[0] + b1 * (P)->b_batch_strides[1] + \
                             b2 * (P)->b_batch_strides[2];                                 \
          for (int32_t i = 0; i < (P)->rows; ++i) {                                        \
            for (int32_t j = 0; j < (P)->cols; ++j) {                                      \
              int32_t ai = ab + i * (P)->a_row_stride;                                     \
              int32_t bi = bb + j * (P)->b_col_stride;                                     \
              ACC_T acc = 0;                                                               \
              for (int32_t k = 0; k < (P)->depth;                                          \
                   ++k, ai += (P)->a_k_stride, bi += (P)->b_k_stride) {                    \
                TERM;                                                                      \
              }                                                                            \
              STORE;                                                                       \
            }                                                                              \
          }                                                                                \
        }                                                                                  \
      }                                                                                    \
    }                                                                                      \
  } while (0)

void tm_batch_matmul_s8(const void *params) {
  const tm_batch_matmul_s8_params *p = (const tm_batch_matmul_s8_params *)params;
  int8_t *out = p->output;
  TM_BMM_LOOP(p, int32_t, acc += ((int32_t)p->a[ai] + p->a_offset) * ((int32_t)p->b[bi] + p->b_offset),
              *out++ = tm_clamp_s8(tm_multiply_by_quantized_multiplier(acc, p->multiplier,
                                                                       (int)p->shift) +
                                       p->output_offset,
                                   -128, 127));
}

void tm_batch_matmul_f32(const void *params) {
  const tm_batch_matmul_f32_params *p = (const tm_batch_matmul_f32_params *)params;
  float *out = p->output;
  TM_BMM_LOOP(p, float, acc += p->a[ai] * p->b[bi], *out++ = acc);
}
