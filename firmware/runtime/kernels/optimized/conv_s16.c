/* CONV_2D / FULLY_CONNECTED 16x8, DSP-core build (Cortex-M4/M7/M33): the int8
 * weights are sign-extended in pairs (SXTB16) and multiplied with pairs of int16
 * activations into a 64-bit accumulator (SMLALD, two MACs per instruction). The
 * products and their sum are exactly the reference kernel's (an int64 sum of the
 * same terms; the int32 path takes the low 32 bits, i.e. the wrapping int32 sum),
 * so results stay bit-exact. DEPTHWISE_CONV_2D keeps the reference kernel. */
#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)

#define tm_conv2d_s16 tm_conv2d_s16_generic
#define tm_fully_connected_s16 tm_fully_connected_s16_generic
#include "../reference/conv_s16.c"
#undef tm_conv2d_s16
#undef tm_fully_connected_s16

#include <string.h>

#include "tm_simd.h"

void tm_conv2d_s16(const void *params);
void tm_fully_connected_s16(const void *params);

static TM_ALWAYS_INLINE int64_t tm_smlald(uint32_t a, uint32_t b, int64_t acc) {
  __asm__("smlald %Q0, %R0, %1, %2" : "+r"(acc) : "r"(a), "r"(b));
  return acc;
}

/* sum(w[k] * x[k]) for k < n, added to acc. */
static TM_ALWAYS_INLINE int64_t tm_dot_s16_s8(const int16_t *x, const int8_t *w, int32_t n,
                                              int64_t acc) {
  int32_t k = 0;
  for (; k + 4 <= n; k += 4) {
    const uint32_t wv = tm_ld4(w + k);
    const uint32_t w02 = (uint32_t)tm_sxtab16(0, wv);      /* (w0, w2) */
    const uint32_t w13 = (uint32_t)tm_sxtb16_ror8(wv);     /* (w1, w3) */
    const uint32_t w01 = (w02 & 0xffffu) | (w13 << 16);
    const uint32_t w23 = (w02 >> 16) | (w13 & 0xffff0000u);
    uint32_t x01, x23;
    memcpy(&x01, x + k, 4);
    memcpy(&x23, x + k + 2, 4);
    acc = tm_smlald(w01, x01, acc);
    acc = tm_smlald(w23, x23, acc);
  }
  for (; k < n; ++k) acc += (int32_t)w[k] * (int32_t)x[k];
  return acc;
}

void tm_fully_connected_s16(const void *params) {
  const tm_fully_connected_s16_params *p = (const tm_fully_connected_s16_params *)params;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int16_t *in = p->input + b * p->accum_depth;
    int16_t *out = p->output + b * p->out_depth;
    for (int32_t oc = 0; oc < p->out_depth; ++oc) {
      const int64_t acc = tm_dot_s16_s8(in, p->filter + oc * p->accum_depth, p->accum_depth, 0);
      out[oc] = tm_requant_s16(acc, p->acc64, p->bias, oc, p->out_mult[oc], p->out_shift[oc],
                               p->act_min, p->act_max);
    }
  }
}

void tm_conv2d_s16(const void *params) {
  const tm_conv_s16_params *p = (const tm_conv_s16_params *)params;
  const int32_t in_ch = p->in_ch, out_ch = p->out_ch, fin = p->filter_in_ch;
  const int32_t per_group = out_ch / (in_ch / fin);
  int16_t *out = p->output;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int16_t *in_b = p->input + b * p->in_h * p->in_w * in_ch;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t iy0 = oy * p->stride_h - p->pad_h;
      int32_t ky0, ky1;
      tm_valid_taps(iy0, p->dilation_h, p->filter_h, p->in_h, &ky0, &ky1);
      for (int32_t ox = 0; ox < p->out_w; ++ox, out += out_ch) {
        const int32_t ix0 = ox * p->stride_w - p->pad_w;
        int32_t kx0, kx1;
        tm_valid_taps(ix0, p->dilation_w, p->filter_w, p->in_w, &kx0, &kx1);
        for (int32_t oc = 0; oc < out_ch; ++oc) {
          const int32_t goff = (oc / per_group) * fin;
          int64_t acc = 0;
          for (int32_t ky = ky0; ky < ky1; ++ky) {
            const int32_t iy = iy0 + p->dilation_h * ky;
            const int8_t *w = p->filter + ((oc * p->filter_h + ky) * p->filter_w + kx0) * fin;
            for (int32_t kx = kx0; kx < kx1; ++kx, w += fin) {
              const int16_t *px = in_b + (iy * p->in_w + ix0 + p->dilation_w * kx) * in_ch;
              acc = tm_dot_s16_s8(px + goff, w, fin, acc);
            }
          }
          out[oc] = tm_requant_s16(acc, p->acc64, p->bias, oc, p->out_mult[oc],
                                   p->out_shift[oc], p->act_min, p->act_max);
        }
      }
    }
  }
}

#else /* no DSP extension: the reference kernels */
#include "../reference/conv_s16.c"
#endif
