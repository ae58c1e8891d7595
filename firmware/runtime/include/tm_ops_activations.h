/* ReLU-like activations: RELU, RELU6, LEAKY_RELU (int8 through a host-computed
 * lookup table, float32 directly) and PRELU (int8 and float32 with TFLM's
 * broadcast of alpha). Lowerings: firmware/lower/activations.py. */
#ifndef TM_OPS_ACTIVATIONS_H
#define TM_OPS_ACTIVATIONS_H

#include "tm_runtime.h"
#include "tm_ops_float.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Any int8 -> int8 element-wise function: out = table[x + 128]. The host fills
 * the table with TFLM's integer arithmetic for each of the 256 inputs. */
typedef struct {
  const int8_t *input;
  int8_t *output;
  int32_t size;
  const int8_t *table;
} tm_lut_s8_params;

/* RELU / RELU6 / LEAKY_RELU float (alpha used by LEAKY_RELU only). */
typedef struct {
  const float *input;
  float *output;
  int32_t size;
  float alpha;
} tm_relu_f32_params;

#define TM_PRELU_MAX_DIMS 6

/* PRELU int8 (reference_ops::BroadcastPrelu4DSlow): v = x + input_offset;
 * v >= 0 ? MBQM(v, m1, s1) : MBQM(v * (alpha + alpha_offset), m2, s2), plus
 * output_offset, clamped to int8. Walk as tm_add_s8 (input2 = alpha). */
typedef struct {
  const int8_t *input;
  const int8_t *alpha;
  int8_t *output;
  int32_t input_offset;
  int32_t alpha_offset;
  int32_t output_offset;
  int32_t output_multiplier_1;
  int32_t output_shift_1;
  int32_t output_multiplier_2;
  int32_t output_shift_2;
  int32_t size;
  int32_t broadcast;
  int32_t dims[TM_PRELU_MAX_DIMS];
  int32_t strides1[TM_PRELU_MAX_DIMS];
  int32_t strides2[TM_PRELU_MAX_DIMS];
} tm_prelu_s8_params;

void tm_lut_s8(const void *params);
void tm_relu_f32(const void *params);
void tm_relu6_f32(const void *params);
void tm_leaky_relu_f32(const void *params);
void tm_prelu_s8(const void *params);
void tm_prelu_f32(const void *params); /* tm_binary_f32_params, input2 = alpha */

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_ACTIVATIONS_H */
