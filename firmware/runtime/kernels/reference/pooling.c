/* AVERAGE_POOL_2D / MAX_POOL_2D int8 reference kernels: the arithmetic of
 * TFLM's reference_integer_ops::AveragePool and MaxPool.
 *
 * TFLM walks channel by channel, striding through the input by `channels`
 * for every tap. Here each output pixel processes a block of up to
 * TM_POOL_CHUNK channels at once with a small accumulator array, so every tap
 * is a contiguous run of loads; the per-channel result is identical because
 * integer sums and maxima do not depend on the visiting order.
 *
 * The host guarantees (output geometry checked against TFLM's
 * ComputePaddingHeightWidth) that every window has at least one in-bounds tap,
 * so the division below never sees a zero count. */
#include "tm_fixedpoint.h"
#include "tm_ops_pool.h"

#define TM_POOL_CHUNK 32

void tm_avgpool_s8(const void *params) {
  const tm_pool_s8_params *p = (const tm_pool_s8_params *)params;
  const int32_t channels = p->channels;
  const int32_t in_h = p->in_h, in_w = p->in_w;
  const int32_t filter_h = p->filter_h, filter_w = p->filter_w;
  const int32_t act_min = p->act_min, act_max = p->act_max;
  const int32_t in_row = in_w * channels;
  int8_t *restrict out = p->output;
  int32_t acc[TM_POOL_CHUNK];

  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *in_b = p->input + b * in_h * in_row;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t y0 = oy * p->stride_h - p->pad_h;
      const int32_t fy0 = tm_max_i32(0, -y0);
      const int32_t fy1 = tm_min_i32(filter_h, in_h - y0);
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        const int32_t fx0 = tm_max_i32(0, -x0);
        const int32_t fx1 = tm_min_i32(filter_w, in_w - x0);
        const int32_t count = (fy1 - fy0) * (fx1 - fx0);
        const int32_t half = count / 2;
        const int8_t *win = in_b + (y0 + fy0) * in_row + (x0 + fx0) * channels;
        for (int32_t c0 = 0; c0 < channels; c0 += TM_POOL_CHUNK) {
          const int32_t n = tm_min_i32(TM_POOL_CHUNK, channels - c0);
          for (int32_t k = 0; k < n; ++k) acc[k] = 0;
          const int8_t *row = win + c0;
          for (int32_t fy = fy0; fy < fy1; ++fy, row += in_row) {
            const int8_t *tap = row;
            for (int32_t fx = fx0; fx < fx1; ++fx, tap += channels) {
              for (int32_t k = 0; k < n; ++k) acc[k] += tap[k];
            }
          }
          for (int32_t k = 0; k < n; ++k) {
            const int32_t s = acc[k];
            /* Round half away from zero, C truncating division like TFLM. */
            const int32_t avg = s > 0 ? (s + half) / count : (s - half) / count;
            *out++ = tm_clamp_s8(avg, act_min, act_max);
          }
        }
      }
    }
  }
}

void tm_maxpool_s8(const void *params) {
  const tm_pool_s8_params *p = (const tm_pool_s8_params *)params;
  const int32_t channels = p->channels;
  const int32_t in_h = p->in_h, in_w = p->in_w;
  const int32_t filter_h = p->filter_h, filter_w = p->filter_w;
  const int32_t act_min = p->act_min, act_max = p->act_max;
  const int32_t in_row = in_w * channels;
  int8_t *restrict out = p->output;
  int8_t mx[TM_POOL_CHUNK];

  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *in_b = p->input + b * in_h * in_row;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t y0 = oy * p->stride_h - p->pad_h;
      const int32_t fy0 = tm_max_i32(0, -y0);
      const int32_t fy1 = tm_min_i32(filter_h, in_h - y0);
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        const int32_t fx0 = tm_max_i32(0, -x0);
        const int32_t fx1 = tm_min_i32(filter_w, in_w - x0);
        const int8_t *win = in_b + (y0 + fy0) * in_row + (x0 + fx0) * channels;
        for (int32_t c0 = 0; c0 < channels; c0 += TM_POOL_CHUNK) {
          const int32_t n = tm_min_i32(TM_POOL_CHUNK, channels - c0);
          for (int32_t k = 0; k < n; ++k) mx[k] = INT8_MIN;
          const int8_t *row = win + c0;
          for (int32_t fy = fy0; fy < fy1; ++fy, row += in_row) {
            const int8_t *tap = row;
            for (int32_t fx = fx0; fx < fx1; ++fx, tap += channels) {
              for (int32_t k = 0; k < n; ++k) mx[k] = tap[k] > mx[k] ? tap[k] : mx[k];
            }
          }
          for (int32_t k = 0; k < n; ++k) *out++ = tm_clamp_s8(mx[k], act_min, act_max);
        }
      }
    }
  }
}
