/* DEPTHWISE_CONV_2D float reference kernel: TFLM's reference_ops::DepthwiseConv
 * (float). Per output channel oc = ic * depth_multiplier + m the products are
 * added to 0.f in filter-row, filter-column order (out-of-image taps skipped),
 * then `total + bias` (0.f without bias) is clamped. */
#include "tm_ops_float.h"

void tm_depthwise_conv2d_f32(const void *params) {
  const tm_depthwise_conv2d_f32_params *p = (const tm_depthwise_conv2d_f32_params *)params;
  const int32_t in_h = p->in_h, in_w = p->in_w, in_ch = p->in_ch;
  const int32_t out_ch = p->out_ch, dm = p->depth_multiplier;
  const int32_t fh = p->filter_h, fw = p->filter_w;
  float *out = p->output;
  for (int32_t b = 0; b < p->batches; ++b) {
    const float *in_b = p->input + b * in_h * in_w * in_ch;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t iy0 = oy * p->stride_h - p->pad_h;
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const int32_t ix0 = ox * p->stride_w - p->pad_w;
        for (int32_t ic = 0; ic < in_ch; ++ic) {
          for (int32_t m = 0; m < dm; ++m) {
            const int32_t oc = ic * dm + m;
            float total = 0.f;
            for (int32_t ky = 0; ky < fh; ++ky) {
              const int32_t iy = iy0 + p->dilation_h * ky;
              if (iy < 0 || iy >= in_h) continue;
              for (int32_t kx = 0; kx < fw; ++kx) {
                const int32_t ix = ix0 + p->dilation_w * kx;
                if (ix < 0 || ix >= in_w) continue;
                const float prod = in_b[(iy * in_w + ix) * in_ch + ic] *
                                   p->filter[(ky * fw + kx) * out_ch + oc];
                total += prod;
              }
            }
            const float bias = p->bias ? p->bias[oc] : 0.0f;
            *out++ = tm_act_f32(total + bias, p->act_min, p->act_max);
          }
        }
      }
    }
  }
}
