/* AVERAGE_POOL_2D / MAX_POOL_2D int16 reference kernels (TFLM
 * reference_integer_ops AveragePool / MaxPool for int16): taps outside the input
 * are skipped; the average rounds half away from zero with C division. */
#include "tm_fixedpoint.h"
#include "tm_ops_int16.h"

static void tm_pool_s16(const tm_pool_s16_params *p, int32_t is_max) {
  int16_t *out = p->output;
  const int32_t ch = p->channels;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int16_t *in_b = p->input + b * p->in_h * p->in_w * ch;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t y0 = oy * p->stride_h - p->pad_h;
      const int32_t fy0 = tm_max_i32(0, -y0), fy1 = tm_min_i32(p->filter_h, p->in_h - y0);
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        const int32_t fx0 = tm_max_i32(0, -x0), fx1 = tm_min_i32(p->filter_w, p->in_w - x0);
        const int32_t count = (fy1 - fy0) * (fx1 - fx0);
        for (int32_t c = 0; c < ch; ++c) {
          int32_t acc = is_max ? -32768 : 0;
          for (int32_t fy = fy0; fy < fy1; ++fy) {
            for (int32_t fx = fx0; fx < fx1; ++fx) {
              const int32_t v = in_b[((y0 + fy) * p->in_w + x0 + fx) * ch + c];
              acc = is_max ? (v > acc ? v : acc) : acc + v;
            }
          }
          if (!is_max) acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
          acc = acc < p->act_min ? p->act_min : (acc > p->act_max ? p->act_max : acc);
          *out++ = (int16_t)acc;
        }
      }
    }
  }
}

void tm_avgpool_s16(const void *params) { tm_pool_s16((const tm_pool_s16_params *)params, 0); }

void tm_maxpool_s16(const void *params) { tm_pool_s16((const tm_pool_s16_params *)params, 1); }
