/* BATCH_MATMUL int8 and float32 (firmware/lower/batch_matmul.py): for each of the
 * batch[0] x batch[1] x batch[2] matrices (element strides per operand, 0 where it
 * is broadcast), out[i][j] = sum over k ascending of A(i, k) * B(k, j), with A(i, k)
 * at a_row_stride * i + a_k_stride * k and B(k, j) at b_k_stride * k +
 * b_col_stride * j (adj_x / adj_y are strides). */
#ifndef TM_OPS_BATCH_MATMUL_H
#define TM_OPS_BATCH_MATMUL_H

#include "tm_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TM_BMM_GEOMETRY                         \
  int32_t batch[3];                             \
  int32_t a_batch_strides[3];                   \
  int32_t b_batch_strides[3];                   \
  int32_t rows, cols, depth;                    \
  int32_t a_row_stride, a_k_stride;             \
  int32_t b_k_stride, b_col_stride

typedef struct {
  const int8_t *a;
  const int8_t *b;
  int8_t *output;
  int32_t a_offset, b_offset, output_offset;
  int32_t multiplier, shift;
  TM_BMM_GEOMETRY;
} tm_batch_matmul_s8_params;

typedef struct {
  const float *a;
  const float *b;
  float *output;
  TM_BMM_GEOMETRY;
} tm_batch_matmul_f32_params;

void tm_batch_matmul_s8(const void *params);
void tm_batch_matmul_f32(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_BATCH_MATMUL_H */
