/* AVERAGE_POOL_2D / MAX_POOL_2D float reference kernels: TFLM's
 * reference_ops::AveragePool / MaxPool (float). The average adds the in-bounds
 * taps to 0.f in row-major window order and divides by their count (a float,
 * as in TFLM); the max starts at -FLT_MAX and keeps `(max < x) ? x : max`. */
#include "tm_ops_float.h"

static inline int32_t tm_pool_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
static inline int32_t tm_pool_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }

static void tm_pool_f32(const tm_pool_f32_params *p, int is_max) {
  const int32_t in_h = p->in_h, in_w = p->in_w, ch = p->channels;
  float *out = p->output;
  for (int32_t b = 0; b < p->batches; ++b) {
    const float *in_b = p->input + b * in_h * in_w * ch;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t iy0 = oy * p->stride_h - p->pad_h;
      const int32_t fy0 = tm_pool_max_i32(0, -iy0);
      const int32_t fy1 = tm_pool_min_i32(p->filter_h, in_h - iy0);
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const int32_t ix0 = ox * p->stride_w - p->pad_w;
        const int32_t fx0 = tm_pool_max_i32(0, -ix0);
        const int32_t fx1 = tm_pool_min_i32(p->filter_w, in_w - ix0);
        for (int32_t c = 0; c < ch; ++c) {
          float acc = is_max ? -3.40282346638528859812e+38f : 0.f;
          float count = 0.f;
          for (int32_t fy = fy0; fy < fy1; ++fy) {
            const float *row = in_b + ((iy0 + fy) * in_w + ix0) * ch + c;
            for (int32_t fx = fx0; fx < fx1; ++fx) {
              const float v = row[fx * ch];
              if (is_max) {
                acc = (acc < v) ? v : acc;
              } else {
                acc += v;
                count += 1.0f;
              }
            }
          }
          const float r = is_max ? acc : acc / count;
          *out++ = tm_act_f32(r, p->act_min, p->act_max);
        }
      }
    }
  }
}

void tm_avgpool_f32(const void *params) { tm_pool_f32((const tm_pool_f32_params *)params, 0); }

void tm_maxpool_f32(const void *params) { tm_pool_f32((const tm_pool_f32_params *)params, 1); }
