/* TRANSPOSE_CONV reference kernels in gather form (see tm_ops_transpose_conv.h):
 * the same sums as TFLM's scatter kernels, in the same order, without the
 * output-sized scratch buffer. */
#include "tm_fixedpoint.h"
#include "tm_ops_float.h"
#include "tm_ops_transpose_conv.h"

static int32_t tm_floor_div(int32_t a, int32_t b) {
  const int32_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* Input rows (or columns) [first, last] that scatter into output row o. */
static void tm_tconv_range(int32_t o, int32_t pad, int32_t stride, int32_t taps, int32_t size,
                           int32_t *first, int32_t *last) {
  const int32_t lo = tm_floor_div(o + pad - taps, stride) + 1;
  const int32_t hi = tm_floor_div(o + pad, stride);
  *first = lo < 0 ? 0 : lo;
  *last = hi >= size ? size - 1 : hi;
}

#define TM_TCONV_LOOP(P, ACC_T, ACC_INIT, TERM, FINISH)                                    \
  do {                                                                                     \
    for (int32_t b = 0; b < (P)->batches; ++b) {                                           \
      for (int32_t oy = 0; oy < (P)->out_h; ++oy) {                                        \
        int32_t iy0, iy1;                                                                  \
        tm_tconv_range(oy, (P)->pad_h, (P)->stride_h, (P)->filter_h, (P)->in_h, &iy0, &iy1); \
        for (int32_t ox = 0; ox < (P)->out_w; ++ox) {                                      \
          int32_t ix0, ix1;                                                                \
          tm_tconv_range(ox, (P)->pad_w, (P)->stride_w, (P)->filter_w, (P)->in_w, &ix0, &ix1); \
          for (int32_t oc = 0; oc < (P)->out_ch; ++oc) {                                   \
            ACC_T acc = ACC_INIT;                                                          \
            for (int32_t iy = iy0; iy <= iy1; ++iy) {                                      \
              const int32_t fy = oy + (P)->pad_h - iy * (P)->stride_h;                     \
              for (int32_t ix = ix0; ix <= ix1; ++ix) {                                    \
                const int32_t fx = ox + (P)->pad_w - ix * (P)->stride_w;                   \
                const int32_t in_at = ((b * (P)->in_h + iy) * (P)->in_w + ix) * (P)->in_ch; \
                const int32_t w_at =                                                       \
                    ((oc * (P)->filter_h + fy) * (P)->filter_w + fx) * (P)->in_ch;         \
                for (int32_t ic = 0; ic < (P)->in_ch; ++ic) {                              \
                  TERM;                                                                    \
                }                                                                          \
              }                                                                            \
            }                                                                              \
            FINISH;                                                                        \
          }                                                                                \
        }                                                                                  \
      }                                                                                    \
    }                                                                                      \
  } while (0)

void tm_transpose_conv_s8(const void *params) {
  const tm_transpose_conv_s8_params *p = (const tm_transpose_conv_s8_params *)params;
  int8_t *out = p->output;
  TM_TCONV_LOOP(
      p, int32_t, 0,
      acc += ((int32_t)p->input[in_at + ic] + p->input_offset) * (int32_t)p->filter[w_at + ic],
      {
        if (p->bias) acc += p->bias[oc];
        const int32_t v = tm_multiply_by_quantized_multiplier(acc, p->out_mult[oc],
                                                              (int)p->out_shift[oc]) +
                          p->output_offset;
        *out++ = tm_clamp_s8(v, p->act_min, p->act_max);
      });
}

void tm_transpose_conv_f32(const void *params) {
  const tm_transpose_conv_f32_params *p = (const tm_transpose_conv_f32_params *)params;
  float *out = p->output;
  TM_TCONV_LOOP(p, float, 0.0f, acc += p->input[in_at + ic] * p->filter[w_at + ic], {
    if (p->bias) acc += p->bias[oc];
    *out++ = tm_act_f32(acc, p->act_min, p->act_max);
  });
}
