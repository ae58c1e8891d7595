/* CONV_2D float reference kernel: TFLM's reference_ops::Conv (float) operation
 * for operation. For each output channel the products are added to a 0.f
 * accumulator in TFLM's order (filter row, filter column, input channel),
 * out-of-image taps are skipped, then `total + bias` (0.f without bias) is
 * clamped. Only the bounds checks are hoisted out of the loops. */
#include "tm_ops_float.h"

/* First/one-past-last tap k with origin + dilation * k inside [0, size). */
static inline void tm_taps_f32(int32_t origin, int32_t dilation, int32_t taps, int32_t size,
                               int32_t *first, int32_t *last) {
  int32_t k0 = 0;
  int32_t k1 = taps;
  while (k0 < k1 && origin + dilation * k0 < 0) ++k0;
  while (k1 > k0 && origin + dilation * (k1 - 1) >= size) --k1;
  *first = k0;
  *last = k1;
}

void tm_conv2d_f32(const void *params) {
  const tm_conv2d_f32_params *p = (const tm_conv2d_f32_params *)params;
  const int32_t in_h = p->in_h, in_w = p->in_w, in_ch = p->in_ch;
  const int32_t out_h = p->out_h, out_w = p->out_w, out_ch = p->out_ch;
  const int32_t fh = p->filter_h, fw = p->filter_w, fic = p->filter_in_ch;
  const int32_t groups = in_ch / fic;
  const int32_t per_group = out_ch / groups;
  float *out = p->output;
  for (int32_t b = 0; b < p->batches; ++b) {
    const float *in_b = p->input + b * in_h * in_w * in_ch;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      const int32_t iy0 = oy * p->stride_h - p->pad_h;
      int32_t ky0, ky1;
      tm_taps_f32(iy0, p->dilation_h, fh, in_h, &ky0, &ky1);
      for (int32_t ox = 0; ox < out_w; ++ox) {
        const int32_t ix0 = ox * p->stride_w - p->pad_w;
        int32_t kx0, kx1;
        tm_taps_f32(ix0, p->dilation_w, fw, in_w, &kx0, &kx1);
        for (int32_t oc = 0; oc < out_ch; ++oc) {
          const int32_t g = oc / per_group;
          const float *filt = p->filter + oc * fh * fw * fic;
          float total = 0.f;
          for (int32_t ky = ky0; ky < ky1; ++ky) {
            const int32_t iy = iy0 + p->dilation_h * ky;
            for (int32_t kx = kx0; kx < kx1; ++kx) {
              const int32_t ix = ix0 + p->dilation_w * kx;
              const float *ip = in_b + (iy * in_w + ix) * in_ch + g * fic;
              const float *fp = filt + (ky * fw + kx) * fic;
              for (int32_t c = 0; c < fic; ++c) {
                const float prod = ip[c] * fp[c];
                total += prod;
              }
            }
          }
          const float bias = p->bias ? p->bias[oc] : 0.0f;
          *out++ = tm_act_f32(total + bias, p->act_min, p->act_max);
        }
      }
    }
  }
}
