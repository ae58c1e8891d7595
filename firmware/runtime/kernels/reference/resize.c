/* RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR reference kernels (TFLM's
 * reference_ops::ResizeNearestNeighbor, ResizeBilinearInteger, ResizeBilinear)
 * with the host-computed geometry tables of tm_ops_resize.h. */
#include <string.h>

#include "tm_ops_resize.h"

void tm_resize_nearest(const void *params) {
  const tm_resize_nearest_params *p = (const tm_resize_nearest_params *)params;
  const uint8_t *in = (const uint8_t *)p->input;
  uint8_t *out = (uint8_t *)p->output;
  const int32_t esz = p->elem_bytes;
  for (int32_t b = 0; b < p->batches; ++b) {
    const uint8_t *in_b = in + (size_t)b * (size_t)p->batch_stride * (size_t)esz;
    for (int32_t y = 0; y < p->out_h; ++y) {
      const uint8_t *row = in_b + (size_t)p->y_offsets[y] * (size_t)esz;
      for (int32_t x = 0; x < p->out_w; ++x) {
        memcpy(out, row + (size_t)p->x_offsets[x] * (size_t)esz, (size_t)p->pixel_bytes);
        out += p->pixel_bytes;
      }
    }
  }
}

void tm_resize_bilinear_s8(const void *params) {
  const tm_resize_bilinear_s8_params *p = (const tm_resize_bilinear_s8_params *)params;
  int8_t *out = p->output;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *in = p->input + b * p->batch_stride;
    for (int32_t y = 0; y < p->out_h; ++y) {
      const int32_t dy = p->fy[y];
      const int8_t *r0 = in + p->y0[y];
      const int8_t *r1 = in + p->y1[y];
      for (int32_t x = 0; x < p->out_w; ++x) {
        const int32_t dx = p->fx[x];
        const int8_t *a = r0 + p->x0[x], *bq = r1 + p->x0[x];
        const int8_t *c = r0 + p->x1[x], *d = r1 + p->x1[x];
        const int64_t w_ll = (int64_t)(1024 - dy) * (1024 - dx);
        const int64_t w_lu = (int64_t)dy * (1024 - dx);
        const int64_t w_rl = (int64_t)(1024 - dy) * dx;
        const int64_t w_ru = (int64_t)dy * dx;
        for (int32_t ch = 0; ch < p->depth; ++ch) {
          const int64_t v = a[ch] * w_ll + bq[ch] * w_lu + c[ch] * w_rl + d[ch] * w_ru;
          const int64_t round = v > 0 ? (INT64_C(1) << 19) : -(INT64_C(1) << 19);
          *out++ = (int8_t)((v + round) / (INT64_C(1) << 20));
        }
      }
    }
  }
}

void tm_resize_bilinear_f32(const void *params) {
  const tm_resize_bilinear_f32_params *p = (const tm_resize_bilinear_f32_params *)params;
  float *out = p->output;
  for (int32_t b = 0; b < p->batches; ++b) {
    const float *in = p->input + b * p->batch_stride;
    for (int32_t y = 0; y < p->out_h; ++y) {
      const float dy = p->fy[y], ey = 1.0f - dy;
      const float *r0 = in + p->y0[y];
      const float *r1 = in + p->y1[y];
      for (int32_t x = 0; x < p->out_w; ++x) {
        const float dx = p->fx[x], ex = 1.0f - dx;
        const float *a = r0 + p->x0[x], *bq = r1 + p->x0[x];
        const float *c = r0 + p->x1[x], *d = r1 + p->x1[x];
        for (int32_t ch = 0; ch < p->depth; ++ch) {
          *out++ = a[ch] * ey * ex + bq[ch] * dy * ex + c[ch] * ey * dx + d[ch] * dy * dx + 0.0f;
        }
      }
    }
  }
}
