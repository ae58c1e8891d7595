/* CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED 16x8 reference kernels: TFLM's
 * reference_integer_ops ConvPerChannel / DepthwiseConvPerChannel /
 * FullyConnected for int16 inputs and int8 weights. Taps outside the image are
 * skipped (zero padding, input offset 0). The accumulator is int64 with the
 * 64-bit requantization when acc64 is set (int64 bias), else int32 with the
 * 32-bit one, as TFLM selects by the bias type. */
#include "tm_fixedpoint.h"
#include "tm_ops_int16.h"
#include "tm_window.h"

/* TFLM's MultiplyByQuantizedMultiplier(int64_t x, ...) (tm_fixedpoint.h). */
#define tm_mbqm64 tm_multiply_by_quantized_multiplier_s64

static TM_ALWAYS_INLINE int16_t tm_requant_s16(int64_t acc, int32_t acc64, const void *bias,
                                               int32_t oc, int32_t mult, int32_t shift,
                                               int32_t lo, int32_t hi) {
  int32_t v;
  if (acc64) {
    if (bias) acc += ((const int64_t *)bias)[oc];
    v = tm_mbqm64(acc, mult, shift);
  } else {
    int32_t a = (int32_t)acc;
    if (bias) a += ((const int32_t *)bias)[oc];
    v = tm_multiply_by_quantized_multiplier(a, mult, (int)shift);
  }
  v = v < lo ? lo : (v > hi ? hi : v);
  return (int16_t)v;
}

/* One output pixel of a conv (dm == 0) or depthwise conv (dm >= 1). */
static void tm_conv_s16_pixel(const tm_conv_s16_params *p, const int16_t *in_b, int32_t iy0,
                              int32_t ix0, int16_t *out) {
  int32_t ky0, ky1, kx0, kx1;
  tm_valid_taps(iy0, p->dilation_h, p->filter_h, p->in_h, &ky0, &ky1);
  tm_valid_taps(ix0, p->dilation_w, p->filter_w, p->in_w, &kx0, &kx1);
  const int32_t in_ch = p->in_ch, out_ch = p->out_ch;
  const int32_t dm = p->depth_multiplier;
  const int32_t fin = p->filter_in_ch;
  const int32_t per_group = dm ? 0 : out_ch / (in_ch / fin);
  for (int32_t oc = 0; oc < out_ch; ++oc) {
    int64_t acc = 0;
    for (int32_t ky = ky0; ky < ky1; ++ky) {
      const int32_t iy = iy0 + p->dilation_h * ky;
      for (int32_t kx = kx0; kx < kx1; ++kx) {
        const int16_t *px = in_b + (iy * p->in_w + ix0 + p->dilation_w * kx) * in_ch;
        if (dm) {
          const int8_t w = p->filter[(ky * p->filter_w + kx) * out_ch + oc];
          acc += (int64_t)w * px[oc / dm];
        } else {
          const int16_t *g = px + (oc / per_group) * fin;
          const int8_t *w = p->filter + ((oc * p->filter_h + ky) * p->filter_w + kx) * fin;
          for (int32_t c = 0; c < fin; ++c) acc += (int64_t)w[c] * g[c];
        }
      }
    }
    out[oc] = tm_requant_s16(acc, p->acc64, p->bias, oc, p->out_mult[oc], p->out_shift[oc],
                             p->act_min, p->act_max);
  }
}

static void tm_conv_s16_run(const tm_conv_s16_params *p) {
  int16_t *out = p->output;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int16_t *in_b = p->input + b * p->in_h * p->in_w * p->in_ch;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      for (int32_t ox = 0; ox < p->out_w; ++ox, out += p->out_ch) {
        tm_conv_s16_pixel(p, in_b, oy * p->stride_h - p->pad_h, ox * p->stride_w - p->pad_w,
                          out);
      }
    }
  }
}

void tm_conv2d_s16(const void *params) { tm_conv_s16_run((const tm_conv_s16_params *)params); }

void tm_depthwise_conv2d_s16(const void *params) {
  tm_conv_s16_run((const tm_conv_s16_params *)params);
}

void tm_fully_connected_s16(const void *params) {
  const tm_fully_connected_s16_params *p = (const tm_fully_connected_s16_params *)params;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int16_t *in = p->input + b * p->accum_depth;
    int16_t *out = p->output + b * p->out_depth;
    for (int32_t oc = 0; oc < p->out_depth; ++oc) {
      const int8_t *w = p->filter + oc * p->accum_depth;
      int64_t acc = 0;
      for (int32_t d = 0; d < p->accum_depth; ++d) acc += (int64_t)w[d] * in[d];
      out[oc] = tm_requant_s16(acc, p->acc64, p->bias, oc, p->out_mult[oc], p->out_shift[oc],
                               p->act_min, p->act_max);
    }
  }
}
