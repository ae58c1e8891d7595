/* pool kernels: parameter structs and entry points.
 *
 * AVERAGE_POOL_2D and MAX_POOL_2D, int8, NHWC, with TFLM reference arithmetic
 * (reference_integer_ops::AveragePool / MaxPool). Input and output share one
 * quantization (TFLM's Prepare requires it), so the kernels work on raw int8
 * values: the average is the window sum divided by the number of in-bounds
 * taps, rounded half away from zero; the max starts at -128. Both then clamp
 * to the fused activation range. Padding is the top/left padding from TFLM's
 * ComputePaddingHeightWidth; taps outside the input are skipped (not zeros). */
#ifndef TM_OPS_POOL_H
#define TM_OPS_POOL_H

#include "tm_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Shared by tm_avgpool_s8 and tm_maxpool_s8. */
typedef struct {
  const int8_t *input;      /* [batches][in_h][in_w][channels] */
  int8_t *output;           /* [batches][out_h][out_w][channels] */
  int32_t act_min, act_max; /* fused activation clamp, in output quanta */
  int32_t batches;
  int32_t in_h, in_w;
  int32_t channels;
  int32_t out_h, out_w;
  int32_t filter_h, filter_w;
  int32_t stride_h, stride_w;
  int32_t pad_h, pad_w;     /* top/left padding */
} tm_pool_s8_params;

typedef tm_pool_s8_params tm_avgpool_s8_params;
typedef tm_pool_s8_params tm_maxpool_s8_params;

void tm_avgpool_s8(const void *params);
void tm_maxpool_s8(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_POOL_H */
