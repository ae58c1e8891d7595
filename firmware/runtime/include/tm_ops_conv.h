/* conv kernels: parameter structs and entry points.
 *
 * Every quantization integer is computed on the host exactly like TFLM's Prepare
 * (firmware/lower/conv.py), so the kernels only run the integer arithmetic of the
 * TFLM reference int8 kernels:
 *   acc = sum(filter * (input + input_offset)) [+ bias]
 *   out = clamp(MultiplyByQuantizedMultiplier(acc, mult[c], shift[c]) + output_offset,
 *               act_min, act_max)
 * Shifts follow TFLM's per-channel convention: shift > 0 shifts left before the
 * multiply, shift < 0 is a rounding right shift after it.
 *
 * Tensors are NHWC. Sizes are int32_t: the structs live in flash once per layer,
 * and full-width fields avoid narrowing casts in the kernels. */
#ifndef TM_OPS_CONV_H
#define TM_OPS_CONV_H

#include "tm_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CONV_2D, int8 activations and weights, int32 bias, per-channel requantization.
 * filter layout: [out_ch][filter_h][filter_w][filter_in_ch]. Grouped convolution
 * (in_ch = groups * filter_in_ch) is supported like TFLM's reference kernel. */
typedef struct {
  const int8_t *input;       /* [batches][in_h][in_w][in_ch] */
  const int8_t *filter;      /* [out_ch][filter_h][filter_w][filter_in_ch] */
  const int32_t *bias;       /* [out_ch], or NULL */
  int8_t *output;            /* [batches][out_h][out_w][out_ch] */
  const int32_t *out_mult;   /* [out_ch] Q31 multipliers */
  const int32_t *out_shift;  /* [out_ch] */
  int32_t input_offset;      /* -input_zero_point */
  int32_t output_offset;     /* output_zero_point */
  int32_t act_min, act_max;  /* fused activation clamp, in output quanta */
  int32_t batches;
  int32_t in_h, in_w, in_ch;
  int32_t out_h, out_w, out_ch;
  int32_t filter_h, filter_w, filter_in_ch;
  int32_t stride_h, stride_w;
  int32_t dilation_h, dilation_w;
  int32_t pad_h, pad_w;      /* top/left padding (TFLM ComputePaddingHeightWidth) */
  const int32_t *kernel_sums; /* [out_ch] bias + input_offset * sum(filter[oc]) (host,
                                exact int32); used by the optimized kernels only */
} tm_conv2d_s8_params;

/* DEPTHWISE_CONV_2D, int8, per-channel. out_ch = in_ch * depth_multiplier;
 * output channel c = ic * depth_multiplier + m reads input channel ic.
 * filter layout: [1][filter_h][filter_w][out_ch]. */
typedef struct {
  const int8_t *input;       /* [batches][in_h][in_w][in_ch] */
  const int8_t *filter;      /* [1][filter_h][filter_w][out_ch] */
  const int32_t *bias;       /* [out_ch], or NULL */
  int8_t *output;            /* [batches][out_h][out_w][out_ch] */
  const int32_t *out_mult;   /* [out_ch] */
  const int32_t *out_shift;  /* [out_ch] */
  int32_t input_offset;
  int32_t output_offset;
  int32_t act_min, act_max;
  int32_t batches;
  int32_t in_h, in_w, in_ch;
  int32_t out_h, out_w, out_ch;
  int32_t depth_multiplier;
  int32_t filter_h, filter_w;
  int32_t stride_h, stride_w;
  int32_t dilation_h, dilation_w;
  int32_t pad_h, pad_w;
  const int32_t *kernel_sums; /* [out_ch] bias + input_offset * sum of the channel's taps:
                                the accumulator start of windows fully inside the image */
} tm_depthwise_conv2d_s8_params;

/* FULLY_CONNECTED, int8. The input is viewed as [batches][accum_depth] and the
 * output as [batches][out_depth] (keep_num_dims only changes the tensor shape).
 * per_channel == 0: TFLM's per-tensor kernel, out_mult[0]/out_shift[0] for every
 * channel and filter_offset (-filter_zero_point) applied to the weights.
 * per_channel == 1: TFLM's per-channel kernel, one multiplier/shift per output
 * channel, filter_offset is 0. */
typedef struct {
  const int8_t *input;       /* [batches][accum_depth] */
  const int8_t *filter;      /* [out_depth][accum_depth] */
  const int32_t *bias;       /* [out_depth], or NULL */
  int8_t *output;            /* [batches][out_depth] */
  const int32_t *out_mult;   /* [out_depth] or [1] */
  const int32_t *out_shift;  /* [out_depth] or [1] */
  int32_t input_offset;
  int32_t filter_offset;
  int32_t output_offset;
  int32_t act_min, act_max;
  int32_t batches;
  int32_t accum_depth;
  int32_t out_depth;
  int32_t per_channel;
  const int32_t *kernel_sums; /* [out_depth] bias + input_offset * sum(filter row); valid
                                when filter_offset == 0 (optimized kernels only) */
} tm_fully_connected_s8_params;

void tm_conv2d_s8(const void *params);
void tm_depthwise_conv2d_s8(const void *params);
void tm_fully_connected_s8(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_CONV_H */
