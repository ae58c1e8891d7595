/* CONV_2D int8, DSP-optimized (Cortex-M4/M7/M33), in the spirit of CMSIS-NN:
 * four int8 values are loaded per LDR, widened to two int16 pairs with SXTB16 /
 * SXTAB16 (the latter adding the input offset to both halves at once) and
 * multiply-accumulated with SMLAD, two products per instruction. Work is blocked
 * so each widened input word feeds two filters (1x2), and the 1x1 fast path also
 * reuses each widened filter word for two pixels (2x2 "matrix multiply").
 *
 * No im2col scratch buffer is needed: with dilation_w == 1 and no groups, the
 * in-image taps of one filter row are contiguous in both the NHWC input and the
 * OHWI filter, so each filter row is a single dot product over taps_x * in_ch bytes.
 *
 * Bit-exactness: SMLAD adds exact 16x16 products into the int32 accumulator, so
 * every accumulator equals TFLM's integer sum; requantization is the same
 * double-rounding tm_multiply_by_quantized_multiplier the reference uses.
 * Configurations outside the fast paths (grouped, dilation_w > 1), and every
 * non-DSP core, run the reference kernel compiled in below. */
#include "tm_fixedpoint.h"
#include "tm_ops_conv.h"

#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)

/* The reference kernel, renamed, is the fallback for unsupported shapes. */
#define tm_conv2d_s8 tm_conv2d_s8_generic
#include "../reference/conv2d.c"
#undef tm_conv2d_s8

#include <arm_acle.h>
#include <string.h>

void tm_conv2d_s8_generic(const void *params);

static TM_ALWAYS_INLINE uint32_t tm_ld4(const int8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4); /* one (unaligned-capable) LDR on ARMv7E-M */
  return v;
}

/* Bytes 1 and 3, sign-extended to halfwords (SXTB16 with ROR #8, which GCC's ACLE
 * cannot express in one instruction). */
static TM_ALWAYS_INLINE int32_t tm_sxtb16_ror8(uint32_t x) {
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}

static TM_ALWAYS_INLINE int32_t tm_sxtab16_ror8(int32_t a, uint32_t x) {
  int32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
  return r;
}

/* s0 += w0 . (x + off), s1 += w1 . (x + off) over len elements. */
static TM_ALWAYS_INLINE void tm_dot_1x2(const int8_t *x, const int8_t *w0, const int8_t *w1,
                                         int32_t len, int32_t off, int32_t off2, int32_t *a0,
                                         int32_t *a1) {
  int32_t s0 = *a0, s1 = *a1;
  for (int32_t n = len >> 2; n > 0; --n) {
    const uint32_t xv = tm_ld4(x);
    x += 4;
    const int32_t xe = __sxtab16(off2, (int8x4_t)xv);
    const int32_t xo = tm_sxtab16_ror8(off2, xv);
    uint32_t wv = tm_ld4(w0);
    w0 += 4;
    s0 = __smlad(__sxtb16((int8x4_t)wv), xe, s0);
    s0 = __smlad(tm_sxtb16_ror8(wv), xo, s0);
    wv = tm_ld4(w1);
    w1 += 4;
    s1 = __smlad(__sxtb16((int8x4_t)wv), xe, s1);
    s1 = __smlad(tm_sxtb16_ror8(wv), xo, s1);
  }
  for (int32_t n = len & 3; n > 0; --n) {
    const int32_t xi = (int32_t)*x++ + off;
    s0 += (int32_t)*w0++ * xi;
    s1 += (int32_t)*w1++ * xi;
  }
  *a0 = s0;
  *a1 = s1;
}

/* s += w . (x + off) over len elements. */
static TM_ALWAYS_INLINE int32_t tm_dot_1x1(const int8_t *x, const int8_t *w, int32_t len,
                                            int32_t off, int32_t off2, int32_t s) {
  for (int32_t n = len >> 2; n > 0; --n) {
    const uint32_t xv = tm_ld4(x);
    x += 4;
    const uint32_t wv = tm_ld4(w);
    w += 4;
    s = __smlad(__sxtb16((int8x4_t)wv), __sxtab16(off2, (int8x4_t)xv), s);
    s = __smlad(tm_sxtb16_ror8(wv), tm_sxtab16_ror8(off2, xv), s);
  }
  for (int32_t n = len & 3; n > 0; --n) {
    s += (int32_t)*w++ * ((int32_t)*x++ + off);
  }
  return s;
}

/* 2 inputs x 2 filters: each widened word is used twice. acc = {x0w0, x0w1, x1w0, x1w1}. */
static TM_ALWAYS_INLINE void tm_dot_2x2(const int8_t *x0, const int8_t *x1, const int8_t *w0,
                                         const int8_t *w1, int32_t len, int32_t off,
                                         int32_t off2, int32_t acc[4]) {
  int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
  for (int32_t n = len >> 2; n > 0; --n) {
    const uint32_t av = tm_ld4(x0);
    const uint32_t bv = tm_ld4(x1);
    x0 += 4;
    x1 += 4;
    const int32_t ae = __sxtab16(off2, (int8x4_t)av);
    const int32_t ao = tm_sxtab16_ror8(off2, av);
    const int32_t be = __sxtab16(off2, (int8x4_t)bv);
    const int32_t bo = tm_sxtab16_ror8(off2, bv);
    uint32_t wv = tm_ld4(w0);
    w0 += 4;
    int32_t we = __sxtb16((int8x4_t)wv);
    int32_t wo = tm_sxtb16_ror8(wv);
    s00 = __smlad(we, ae, s00);
    s00 = __smlad(wo, ao, s00);
    s10 = __smlad(we, be, s10);
    s10 = __smlad(wo, bo, s10);
    wv = tm_ld4(w1);
    w1 += 4;
    we = __sxtb16((int8x4_t)wv);
    wo = tm_sxtb16_ror8(wv);
    s01 = __smlad(we, ae, s01);
    s01 = __smlad(wo, ao, s01);
    s11 = __smlad(we, be, s11);
    s11 = __smlad(wo, bo, s11);
  }
  for (int32_t n = len & 3; n > 0; --n) {
    const int32_t a = (int32_t)*x0++ + off;
    const int32_t b = (int32_t)*x1++ + off;
    const int32_t f0 = *w0++;
    const int32_t f1 = *w1++;
    s00 += f0 * a;
    s01 += f1 * a;
    s10 += f0 * b;
    s11 += f1 * b;
  }
  acc[0] = s00;
  acc[1] = s01;
  acc[2] = s10;
  acc[3] = s11;
}

static TM_ALWAYS_INLINE int8_t tm_requant(const tm_conv2d_s8_params *p, int32_t acc, int32_t oc) {
  if (p->bias) {
    acc += p->bias[oc];
  }
  acc = tm_multiply_by_quantized_multiplier(acc, p->out_mult[oc], (int)p->out_shift[oc]);
  return tm_clamp_s8(acc + p->output_offset, p->act_min, p->act_max);
}

/* 1x1, stride 1, no padding: a [pixels x in_ch] by [out_ch x in_ch]^T product. */
static void tm_conv2d_s8_1x1(const tm_conv2d_s8_params *p) {
  const int32_t k = p->in_ch;
  const int32_t out_ch = p->out_ch;
  const int32_t pixels = p->batches * p->in_h * p->in_w;
  const int32_t off = p->input_offset;
  const int32_t off2 = (int32_t)(((uint32_t)off & 0xFFFFu) | ((uint32_t)off << 16));
  const int8_t *x = p->input;
  int8_t *out = p->output;
  int32_t px = 0;
  for (; px + 1 < pixels; px += 2) {
    const int8_t *const x1 = x + k;
    int8_t *const out1 = out + out_ch;
    const int8_t *w = p->filter;
    int32_t oc = 0;
    for (; oc + 1 < out_ch; oc += 2) {
      int32_t acc[4];
      tm_dot_2x2(x, x1, w, w + k, k, off, off2, acc);
      out[oc] = tm_requant(p, acc[0], oc);
      out[oc + 1] = tm_requant(p, acc[1], oc + 1);
      out1[oc] = tm_requant(p, acc[2], oc);
      out1[oc + 1] = tm_requant(p, acc[3], oc + 1);
      w += 2 * k;
    }
    if (oc < out_ch) {
      /* Odd channel count: the last filter against each of the two pixels. */
      const int32_t a0 = tm_dot_1x1(x, w, k, off, off2, 0);
      const int32_t a1 = tm_dot_1x1(x1, w, k, off, off2, 0);
      out[oc] = tm_requant(p, a0, oc);
      out1[oc] = tm_requant(p, a1, oc);
    }
    x += 2 * k;
    out += 2 * out_ch;
  }
  if (px < pixels) {
    const int8_t *w = p->filter;
    int32_t oc = 0;
    for (; oc + 1 < out_ch; oc += 2) {
      int32_t a0 = 0, a1 = 0;
      tm_dot_1x2(x, w, w + k, k, off, off2, &a0, &a1);
      out[oc] = tm_requant(p, a0, oc);
      out[oc + 1] = tm_requant(p, a1, oc + 1);
      w += 2 * k;
    }
    if (oc < out_ch) {
      out[oc] = tm_requant(p, tm_dot_1x1(x, w, k, off, off2, 0), oc);
    }
  }
}

void tm_conv2d_s8(const void *params) {
  const tm_conv2d_s8_params *p = (const tm_conv2d_s8_params *)params;
  if (p->filter_in_ch != p->in_ch || p->dilation_w != 1) {
    tm_conv2d_s8_generic(params);
    return;
  }
  if (p->filter_h == 1 && p->filter_w == 1 && p->stride_h == 1 && p->stride_w == 1 &&
      p->pad_h == 0 && p->pad_w == 0 && p->out_h == p->in_h && p->out_w == p->in_w) {
    tm_conv2d_s8_1x1(p);
    return;
  }
  const int32_t in_h = p->in_h, in_w = p->in_w, in_ch = p->in_ch;
  const int32_t out_ch = p->out_ch;
  const int32_t filter_h = p->filter_h, filter_w = p->filter_w;
  const int32_t dil_h = p->dilation_h;
  const int32_t off = p->input_offset;
  const int32_t off2 = (int32_t)(((uint32_t)off & 0xFFFFu) | ((uint32_t)off << 16));
  const int32_t in_row_stride = in_w * in_ch;
  const int32_t in_tap_row_step = dil_h * in_row_stride;
  const int32_t filter_row_stride = filter_w * in_ch;
  const int32_t filter_oc_stride = filter_h * filter_row_stride;
  int8_t *out = p->output;

  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *const in_batch = p->input + b * in_h * in_row_stride;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t iy0 = oy * p->stride_h - p->pad_h;
      int32_t ky0, ky1;
      tm_valid_taps(iy0, dil_h, filter_h, in_h, &ky0, &ky1);
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const int32_t ix0 = ox * p->stride_w - p->pad_w;
        int32_t kx0, kx1;
        tm_valid_taps(ix0, 1, filter_w, in_w, &kx0, &kx1);
        const int32_t seg = (kx1 - kx0) * in_ch;
        const int8_t *const in_pix =
            in_batch + (iy0 + dil_h * ky0) * in_row_stride + (ix0 + kx0) * in_ch;
        const int8_t *w = p->filter + ky0 * filter_row_stride + kx0 * in_ch;
        int32_t oc = 0;
        for (; oc + 1 < out_ch; oc += 2) {
          int32_t a0 = 0, a1 = 0;
          const int8_t *xr = in_pix;
          const int8_t *wr = w;
          for (int32_t ky = ky0; ky < ky1; ++ky) {
            tm_dot_1x2(xr, wr, wr + filter_oc_stride, seg, off, off2, &a0, &a1);
            xr += in_tap_row_step;
            wr += filter_row_stride;
          }
          out[oc] = tm_requant(p, a0, oc);
          out[oc + 1] = tm_requant(p, a1, oc + 1);
          w += 2 * filter_oc_stride;
        }
        if (oc < out_ch) {
          int32_t a0 = 0;
          const int8_t *xr = in_pix;
          const int8_t *wr = w;
          for (int32_t ky = ky0; ky < ky1; ++ky) {
            a0 = tm_dot_1x1(xr, wr, seg, off, off2, a0);
            xr += in_tap_row_step;
            wr += filter_row_stride;
          }
          out[oc] = tm_requant(p, a0, oc);
        }
        out += out_ch;
      }
    }
  }
}

#else /* no DSP extension: the reference kernel is the optimized kernel */
#include "../reference/conv2d.c"
#endif
