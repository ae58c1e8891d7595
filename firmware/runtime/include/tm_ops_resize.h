/* RESIZE_NEAREST_NEIGHBOR (any element type) and RESIZE_BILINEAR (int8, float32),
 * NHWC. The host (firmware/lower/resize.py) computes TFLM's per-row and
 * per-column source offsets and weights; the kernels gather and blend. */
#ifndef TM_OPS_RESIZE_H
#define TM_OPS_RESIZE_H

#include "tm_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out[b][y][x][:] = in[b * batch_stride + y_offsets[y] + x_offsets[x]][:]
 * (offsets in elements, pixel_bytes = depth * element size). */
typedef struct {
  const void *input;
  void *output;
  const int32_t *y_offsets;
  const int32_t *x_offsets;
  int32_t batches;
  int32_t batch_stride;
  int32_t out_h, out_w;
  int32_t pixel_bytes;
  int32_t elem_bytes;
} tm_resize_nearest_params;

/* RESIZE_BILINEAR int8 (ResizeBilinearInteger): y0/y1/x0/x1 are element offsets
 * of the two neighbours per output row/column, fy/fx the source position minus
 * 1024 * lower neighbour (10-bit fraction); the four products are summed in
 * int64 and divided by 2^20 rounding half away from zero. */
typedef struct {
  const int8_t *input;
  int8_t *output;
  const int32_t *y0, *y1, *x0, *x1;
  const int32_t *fy, *fx;
  int32_t batches;
  int32_t batch_stride;
  int32_t out_h, out_w, depth;
} tm_resize_bilinear_s8_params;

/* RESIZE_BILINEAR float (ResizeBilinear): fy/fx = source position - lower
 * neighbour (float32, computed on the host as TFLM computes it); the blend is
 * evaluated in TFLM's operation order. */
typedef struct {
  const float *input;
  float *output;
  const int32_t *y0, *y1, *x0, *x1;
  const float *fy, *fx;
  int32_t batches;
  int32_t batch_stride;
  int32_t out_h, out_w, depth;
} tm_resize_bilinear_f32_params;

void tm_resize_nearest(const void *params);
void tm_resize_bilinear_s8(const void *params);
void tm_resize_bilinear_f32(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_RESIZE_H */
