/* EXP / LOG / SQRT / RSQRT / L2_NORMALIZATION float32
 * (firmware/lower/unary_math.py). The element-wise ones take tm_unary_f32_params. */
#ifndef TM_OPS_UNARY_MATH_H
#define TM_OPS_UNARY_MATH_H

#include "tm_ops_float.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Correctly rounded square root (bit-identical to any IEEE sqrtf). */
float tm_sqrtf(float x);
/* Natural log in double precision rounded once (within 1 ULP of glibc's logf). */
float tm_logf(float x);

typedef struct {
  const float *input;
  float *output;
  int32_t outer_size;
  int32_t depth;
} tm_l2_normalization_f32_params;

/* L2_NORMALIZATION int8 (reference_integer_ops::L2Normalization): per row, the sum
 * of squared (x - zp), its inverse square root in fixed point (TFLM's
 * GetInvSqrtQuantizedMultiplierExp), each element rescaled to 1/128. */
typedef struct {
  const int8_t *input;
  int8_t *output;
  int32_t outer_size;
  int32_t depth;
  int32_t input_zero_point;
} tm_l2_normalization_s8_params;

void tm_l2_normalization_s8(const void *params);
void tm_exp_f32(const void *params);
void tm_log_f32(const void *params);
void tm_sqrt_f32(const void *params);
void tm_rsqrt_f32(const void *params);
void tm_l2_normalization_f32(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_UNARY_MATH_H */
