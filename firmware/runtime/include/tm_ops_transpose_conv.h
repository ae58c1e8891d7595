/* TRANSPOSE_CONV int8 and float32 (firmware/lower/transpose_conv.py), NHWC,
 * filter [out_ch][filter_h][filter_w][in_ch]. Output element (oy, ox, oc) sums
 * input (iy, ix, ic) * filter(oc, oy + pad_h - iy * stride_h,
 * ox + pad_w - ix * stride_w, ic) over the taps that land inside the filter, in
 * TFLM's order (iy, ix, ic ascending). */
#ifndef TM_OPS_TRANSPOSE_CONV_H
#define TM_OPS_TRANSPOSE_CONV_H

#include "tm_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TM_TCONV_GEOMETRY                     \
  int32_t batches;                            \
  int32_t in_h, in_w, in_ch;                  \
  int32_t out_h, out_w, out_ch;               \
  int32_t filter_h, filter_w;                 \
  int32_t stride_h, stride_w;                 \
  int32_t pad_h, pad_w

typedef struct {
  const int8_t *input;
  const int8_t *filter;
  const int32_t *bias;       /* or NULL */
  int8_t *output;
  const int32_t *out_mult;
  const int32_t *out_shift;
  int32_t input_offset, output_offset;
  int32_t act_min, act_max;
  TM_TCONV_GEOMETRY;
} tm_transpose_conv_s8_params;

typedef struct {
  const float *input;
  const float *filter;
  const float *bias;
  float *output;
  float act_min, act_max;
  TM_TCONV_GEOMETRY;
} tm_transpose_conv_f32_params;

void tm_transpose_conv_s8(const void *params);
void tm_transpose_conv_f32(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_TRANSPOSE_CONV_H */
