/* int16x8 kernels: int16 activations (zero point 0), int8 weights
 * (firmware/lower/int16.py). Conv-family kernels accumulate in int64 and
 * requantize with TFLM's 64-bit MultiplyByQuantizedMultiplier when acc64 is
 * set (int64 bias, what the converter writes); otherwise in int32 with the
 * 32-bit double-rounding one (int32 bias or none), as TFLM does. */
#ifndef TM_OPS_INT16_H
#define TM_OPS_INT16_H

#include "tm_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CONV_2D (depth_multiplier 0; grouped when in_ch = groups * filter_in_ch) and
 * DEPTHWISE_CONV_2D (depth_multiplier >= 1; filter [1][h][w][out_ch]). */
typedef struct {
  const int16_t *input;
  const int8_t *filter;
  const void *bias;          /* int64 [out_ch] if acc64, int32 [out_ch] else; or NULL */
  int16_t *output;
  const int32_t *out_mult;
  const int32_t *out_shift;
  int32_t act_min, act_max;
  int32_t acc64;
  int32_t batches;
  int32_t in_h, in_w;
  int32_t out_h, out_w;
  int32_t filter_h, filter_w;
  int32_t stride_h, stride_w;
  int32_t pad_h, pad_w;
  int32_t dilation_h, dilation_w;
  int32_t in_ch, out_ch, filter_in_ch, depth_multiplier;
} tm_conv_s16_params;

typedef struct {
  const int16_t *input;
  const int8_t *filter;      /* [out_depth][accum_depth] */
  const void *bias;
  int16_t *output;
  const int32_t *out_mult;   /* [out_depth] (per-tensor: repeated) */
  const int32_t *out_shift;
  int32_t act_min, act_max;
  int32_t acc64;
  int32_t batches, accum_depth, out_depth;
} tm_fully_connected_s16_params;

#define TM_S16_MAX_DIMS 6

/* ADD int16: ADD's int8 formula with left_shift 15 and no offsets. */
typedef struct {
  const int16_t *input1;
  const int16_t *input2;
  int16_t *output;
  int32_t left_shift;
  int32_t input1_multiplier, input1_shift;
  int32_t input2_multiplier, input2_shift;
  int32_t output_multiplier, output_shift;
  int32_t act_min, act_max;
  int32_t size;
  int32_t broadcast;
  int32_t dims[TM_S16_MAX_DIMS];
  int32_t strides1[TM_S16_MAX_DIMS];
  int32_t strides2[TM_S16_MAX_DIMS];
} tm_add_s16_params;

/* MUL int16: clamp(MBQM(a * b, multiplier, shift)). */
typedef struct {
  const int16_t *input1;
  const int16_t *input2;
  int16_t *output;
  int32_t output_multiplier, output_shift;
  int32_t act_min, act_max;
  int32_t size;
  int32_t broadcast;
  int32_t dims[TM_S16_MAX_DIMS];
  int32_t strides1[TM_S16_MAX_DIMS];
  int32_t strides2[TM_S16_MAX_DIMS];
} tm_mul_s16_params;

typedef struct {
  const int16_t *input;
  int16_t *output;
  int32_t act_min, act_max;
  int32_t channels;
  int32_t batches;
  int32_t in_h, in_w;
  int32_t out_h, out_w;
  int32_t filter_h, filter_w;
  int32_t stride_h, stride_w;
  int32_t pad_h, pad_w;
} tm_pool_s16_params;

typedef struct {
  const float *input;
  int16_t *output;
  int32_t size;
  float scale;
  int32_t zero_point;
} tm_quantize_f32_s16_params;

/* Requantize between int8/int16 (element sizes in_bytes/out_bytes):
 * clamp(MBQM(x - input_zp, multiplier, shift) + output_zp, out_min, out_max). */
typedef struct {
  const void *input;
  void *output;
  int32_t size;
  int32_t in_bytes, out_bytes;
  int32_t input_zero_point, output_zero_point;
  int32_t multiplier, shift;
  int32_t out_min, out_max;
} tm_requantize_int_params;

typedef struct {
  const int16_t *input;
  float *output;
  int32_t size;
  float scale;
  int32_t zero_point;
} tm_dequantize_s16_f32_params;

/* SOFTMAX int16 (reference_ops::SoftmaxInt16): exp(x - max) through a 513-entry
 * LUT over [-10, 0], the sum's reciprocal through a 1/(1 + x) LUT over [0, 1]
 * (both generated on the host as TFLM's gen_lut does), output Q0.15. */
typedef struct {
  const int16_t *input;
  int16_t *output;
  int32_t outer_size, depth;
  int32_t input_multiplier, input_left_shift;
  const int16_t *exp_lut;
  const int16_t *one_over_one_plus_x_lut;
} tm_softmax_s16_params;

/* LOGISTIC / TANH int16 (tm_sigmoid_s16.h): input scaled by
 * (x * input_multiplier + round) >> input_shift, table-interpolated, output Q0.15. */
typedef struct {
  const int16_t *input;
  int16_t *output;
  int32_t size;
  int32_t input_multiplier, input_shift;
} tm_sigmoid_s16_params;

void tm_softmax_s16(const void *params);
void tm_logistic_s16(const void *params);
void tm_tanh_s16(const void *params);
void tm_conv2d_s16(const void *params);
void tm_depthwise_conv2d_s16(const void *params);
void tm_fully_connected_s16(const void *params);
void tm_add_s16(const void *params);
void tm_mul_s16(const void *params);
void tm_avgpool_s16(const void *params);
void tm_maxpool_s16(const void *params);
void tm_quantize_f32_s16(const void *params);
void tm_requantize_int(const void *params);
void tm_dequantize_s16_f32(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_INT16_H */
