/* SVDF int8 and float32 (firmware/lower/svdf.py; TFLM svdf_common.cc). The state
 * [batch][filters * memory] lives in the arena for the whole run, so it carries
 * over between inferences as in TFLM; it starts at 0. */
#ifndef TM_OPS_SVDF_H
#define TM_OPS_SVDF_H

#include "tm_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TM_SVDF_GEOMETRY \
  int32_t batch;         \
  int32_t input_size;    \
  int32_t filters;       \
  int32_t memory;        \
  int32_t rank;          \
  int32_t units

typedef struct {
  const int8_t *input;
  const int8_t *weights_feature;   /* [filters][input_size] */
  const void *weights_time;        /* [filters][memory], int16 or int8 like the state */
  const int32_t *bias;             /* [units] or NULL */
  void *state;                     /* int16 (state_int16) or int8 */
  int8_t *output;                  /* [batch][units] */
  int32_t state_int16;
  int32_t input_zero_point, state_zero_point, output_zero_point;
  int32_t multiplier_1, shift_1;   /* input * feature -> state */
  int32_t multiplier_2, shift_2;   /* state * time -> output */
  TM_SVDF_GEOMETRY;
} tm_svdf_s8_params;

typedef struct {
  const float *input;
  const float *weights_feature;
  const float *weights_time;
  const float *bias;
  float *state;
  float *output;
  int32_t activation;              /* 0 none, 1 relu, 2 relu_n1_to_1, 3 relu6 */
  TM_SVDF_GEOMETRY;
} tm_svdf_f32_params;

void tm_svdf_s8(const void *params);
void tm_svdf_f32(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_SVDF_H */
