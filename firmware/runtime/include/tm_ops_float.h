/* float32 kernels: parameter structs, entry points and the float helpers they share.
 *
 * Bit-exactness with TFLM's reference float kernels needs three things:
 *  1. the same operation order: every accumulation adds its terms in the order
 *     TFLM's loops visit them, starting from 0.f, and the bias (0.f when absent)
 *     is added afterwards exactly like `total + bias_value`;
 *  2. no contraction of a*b+c into a fused multiply-add. The runtime is built
 *     with -std=c11, in which GCC defaults to -ffp-contract=off, so every
 *     product is rounded before it is added, as in TFLM's x86 build;
 *  3. activation clamps with std::min/std::max semantics
 *     (ActivationFunctionWithMinMax): tm_act_f32 below; the "no activation"
 *     range is [-FLT_MAX, FLT_MAX] (CalculateActivationRange), not +-inf.
 * Transcendentals (exp, tanh) cannot be bit-exact across C libraries; see
 * tm_expf/tm_tanhf. */
#ifndef TM_OPS_FLOAT_H
#define TM_OPS_FLOAT_H

#include "tm_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* std::min(std::max(x, lo), hi) with std:: semantics: std::max(a, b) is
 * (a < b) ? b : a, std::min(a, b) is (b < a) ? b : a. Keeps -0.0 and NaN the
 * way TFLM's template does. */
static inline float tm_act_f32(float x, float lo, float hi) {
  const float v = (x < lo) ? lo : x;
  return (hi < v) ? hi : v;
}

/* Math helpers (kernels/reference/math_f32.c). The firmware links no libm, and
 * newlib's libm differs from the glibc the TFLM host interpreter uses anyway,
 * so the runtime carries its own:
 *  - tm_roundf: std::round (half away from zero), exact;
 *  - tm_expf: the operations of glibc's expf (the std::exp of TFLM's x86
 *    build) in the same order, in double: bit-identical to it;
 *  - tm_tanhf: tanh evaluated in double and rounded once (within 1 ULP of the
 *    true value; glibc's tanhf may differ by up to 2 ULP from it). */
float tm_roundf(float x);
float tm_expf(float x);
float tm_tanhf(float x);

/* CONV_2D float. Layouts as tm_conv2d_s8 (NHWC, filter [out_ch][h][w][in_ch],
 * grouped conv when in_ch = groups * filter_in_ch). */
typedef struct {
  const float *input;
  const float *filter;
  const float *bias;         /* [out_ch], or NULL (then 0.f is added, as TFLM does) */
  float *output;
  float act_min, act_max;
  int32_t batches;
  int32_t in_h, in_w, in_ch;
  int32_t out_h, out_w, out_ch;
  int32_t filter_h, filter_w, filter_in_ch;
  int32_t stride_h, stride_w;
  int32_t dilation_h, dilation_w;
  int32_t pad_h, pad_w;
} tm_conv2d_f32_params;

/* DEPTHWISE_CONV_2D float; filter [1][h][w][out_ch], out_ch = in_ch * depth_multiplier. */
typedef struct {
  const float *input;
  const float *filter;
  const float *bias;
  float *output;
  float act_min, act_max;
  int32_t batches;
  int32_t in_h, in_w, in_ch;
  int32_t out_h, out_w, out_ch;
  int32_t depth_multiplier;
  int32_t filter_h, filter_w;
  int32_t stride_h, stride_w;
  int32_t dilation_h, dilation_w;
  int32_t pad_h, pad_w;
} tm_depthwise_conv2d_f32_params;

/* FULLY_CONNECTED float: input [batches][accum_depth], filter [out_depth][accum_depth]. */
typedef struct {
  const float *input;
  const float *filter;
  const float *bias;
  float *output;
  float act_min, act_max;
  int32_t batches;
  int32_t accum_depth;
  int32_t out_depth;
} tm_fully_connected_f32_params;

/* AVERAGE_POOL_2D / MAX_POOL_2D float, NHWC; taps outside the input are skipped. */
typedef struct {
  const float *input;
  float *output;
  float act_min, act_max;
  int32_t batches;
  int32_t in_h, in_w;
  int32_t channels;
  int32_t out_h, out_w;
  int32_t filter_h, filter_w;
  int32_t stride_h, stride_w;
  int32_t pad_h, pad_w;
} tm_pool_f32_params;

/* SOFTMAX float over the last dimension: max-subtract, exp((x - max) * beta),
 * sum in order, divide. */
typedef struct {
  const float *input;
  float *output;
  int32_t outer_size;
  int32_t depth;
  float beta;
} tm_softmax_f32_params;

#define TM_BINARY_F32_MAX_DIMS 6

/* ADD / MUL float with numpy broadcasting, walked like tm_add_s8: host-folded
 * output dims with per-input element strides (0 along broadcast dims). */
typedef struct {
  const float *input1;
  const float *input2;
  float *output;
  float act_min, act_max;
  int32_t size;
  int32_t broadcast;
  int32_t dims[TM_BINARY_F32_MAX_DIMS];
  int32_t strides1[TM_BINARY_F32_MAX_DIMS];
  int32_t strides2[TM_BINARY_F32_MAX_DIMS];
} tm_binary_f32_params;

/* Element-wise float activations (LOGISTIC, TANH, HARD_SWISH). */
typedef struct {
  const float *input;
  float *output;
  int32_t size;
} tm_unary_f32_params;

#define TM_MEAN_MAX_DIMS 5

/* MEAN float. Each output element is the sum of its input elements visited in
 * the input's row-major order (the order TFLM's Reduce accumulates them in),
 * divided by count as float. outer_* walk the kept dims (output order),
 * inner_* the reduced dims; strides are input element strides; unused leading
 * dims have size 1. */
typedef struct {
  const float *input;
  float *output;
  int32_t outer_dims[TM_MEAN_MAX_DIMS];
  int32_t outer_strides[TM_MEAN_MAX_DIMS];
  int32_t inner_dims[TM_MEAN_MAX_DIMS];
  int32_t inner_strides[TM_MEAN_MAX_DIMS];
  int32_t count;             /* elements per output (product of the reduced dims) */
} tm_mean_f32_params;

void tm_conv2d_f32(const void *params);
void tm_depthwise_conv2d_f32(const void *params);
void tm_fully_connected_f32(const void *params);
void tm_avgpool_f32(const void *params);
void tm_maxpool_f32(const void *params);
void tm_softmax_f32(const void *params);
void tm_add_f32(const void *params);
void tm_mul_f32(const void *params);
void tm_logistic_f32(const void *params);
void tm_tanh_f32(const void *params);
void tm_hard_swish_f32(const void *params);
void tm_mean_f32(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_FLOAT_H */
