/* CONV_2D int8, DSP-optimized (Cortex-M4/M7/M33), in the spirit of CMSIS-NN.
 *
 * Main path (no groups, filter_h * filter_w * in_ch <= TM_CONV_MAX_K): im2col of
 * four output pixels at a time into a stack buffer of int16, then a 1 filter x 4
 * pixel matrix-multiply core:
 *  - each group of 4 im2col elements of a pixel is stored as two words, (e0, e2)
 *    and (e1, e3), exactly the halfword pairs SXTB16 / SXTB16 ROR #8 make of 4 int8
 *    weights; the 4 pixels' words are interleaved, so one LDM fetches the operand of
 *    four SMLADs and each widened weight word serves four pixels: 15 instructions
 *    per 16 MACs in the inner loop (an inline-asm loop, unrolled twice);
 *  - the accumulators start at the host-computed kernel sums, bias + input_offset *
 *    sum(filter[oc]), so the input offset never enters the inner loop; padded taps
 *    hold the input zero point, which makes their contribution cancel to 0 exactly
 *    as TFLM's skipped taps;
 *  - requantization prepares the per-channel constants once for the four pixels;
 *    right shifts (the common case) fold TFLM's two roundings into one SMLAL
 *    (tm_requantize_right), left shifts use tm_requantize_split.
 * 1x1 convolutions take the same path: their im2col is just the int8->int16
 * widening of the input pixel, so it is a plain matrix multiply over all pixels.
 *
 * Fallbacks: larger windows use the direct SMLAD dot products below (no scratch:
 * with dilation_w == 1 a filter row is one contiguous dot product), grouped
 * convolutions and non-DSP cores the reference kernel.
 *
 * Bit-exactness: SMLAD adds exact 16x16 products into the int32 accumulator;
 * int32 addition is associative modulo 2^32, so reordering the sum (and starting
 * it at the kernel sum) leaves TFLM's integer result unchanged; requantization is
 * TFLM's double rounding. */
#include "tm_fixedpoint.h"
#include "tm_ops_conv.h"

#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)

/* The reference kernel, renamed, is the fallback for unsupported shapes. */
#define tm_conv2d_s8 tm_conv2d_s8_generic
#include "../reference/conv2d.c"
#undef tm_conv2d_s8

#include <arm_acle.h>

#include "tm_simd.h"

void tm_conv2d_s8_generic(const void *params);

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

/* Direct path for windows too large for the im2col buffer (dilation_w == 1). */
static void tm_conv2d_s8_direct(const tm_conv2d_s8_params *p) {
  if (p->filter_h == 1 && p->filter_w == 1 && p->stride_h == 1 && p->stride_w == 1 &&
      p->pad_h == 0 && p->pad_w == 0 && p->out_h == p->in_h && p->out_w == p->in_w) {
    tm_conv2d_s8_1x1(p);
    return;
  }
  const int32_t in_h = p->in_h, in_w = p->in_w, in_ch = p->in_ch;
  const int32_t out_ch = p->out_ch;
  const int32_t filter_h = p->filter_h, filter_w = p->filter_w;
  const int32_t dil_h = p->dilation_h;
  const int8_t *const in_base = p->input;
  const int32_t off = p->input_offset;
  const int32_t off2 = (int32_t)(((uint32_t)off & 0xFFFFu) | ((uint32_t)off << 16));
  const int32_t in_row_stride = in_w * in_ch;
  const int32_t in_tap_row_step = dil_h * in_row_stride;
  const int32_t filter_row_stride = filter_w * in_ch;
  const int32_t filter_oc_stride = filter_h * filter_row_stride;
  int8_t *out = p->output;

  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *const in_batch = in_base + b * in_h * in_row_stride;
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

/* ---------------------------------------------------------------- im2col path */

/* Output pixels per im2col block and the largest window (filter_h * filter_w *
 * in_ch) taken through the stack buffer: 4 x 576 int16 = 4.5 KiB (ResNet-8's
 * 3x3x64) plus the 576-byte gather buffer at most. */
#define TM_CONV_PX 4
#define TM_CONV_MAX_K 576

/* Half-word slot of im2col element e of pixel px: elements come in groups of 4
 * stored as 16 halfwords, words 0..3 = (e0, e2) of pixels 0..3 and words 4..7 =
 * (e1, e3). k is rounded up to a whole group (kp); the pad elements are 0. */
static TM_ALWAYS_INLINE int16_t *tm_col_slot(int16_t *col, int32_t e, int32_t px) {
  return col + (e >> 2) * 16 + (e & 1) * 8 + 2 * px + ((e >> 1) & 1);
}

/* im2col elements [e, e + len) of pixel px from len contiguous input bytes
 * (src != NULL), or the zero point for padded taps (src == NULL). Aligned runs of
 * 4 are widened with SXTB16 straight into the two interleaved words. */
static void tm_col_put(int16_t *col, int32_t px, int32_t e, const int8_t *src, int32_t len,
                       int32_t zp) {
  const uint32_t zp2 = ((uint32_t)zp & 0xFFFFu) | ((uint32_t)zp << 16);
  while (len > 0 && (e & 3) != 0) {
    *tm_col_slot(col, e++, px) = (int16_t)(src ? *src++ : zp);
    --len;
  }
  {
    int32_t groups = len >> 2;
    uint32_t *dst = (uint32_t *)(void *)(col + (e >> 2) * 16 + 2 * px);
    e += groups * 4;
    len -= groups * 4;
    if (src) {
      for (; groups > 0; --groups) {
        const uint32_t raw = tm_ld4(src);
        src += 4;
        dst[0] = (uint32_t)__sxtb16((int8x4_t)raw);
        dst[4] = (uint32_t)tm_sxtb16_ror8(raw);
        dst += 8;
      }
    } else {
      for (; groups > 0; --groups) {
        dst[0] = zp2;
        dst[4] = zp2;
        dst += 8;
      }
    }
  }
  while (len > 0) {
    *tm_col_slot(col, e++, px) = (int16_t)(src ? *src++ : zp);
    --len;
  }
}

/* A word store to any byte address: one STR on ARMv7E-M. */
typedef uint32_t tm_u32_unaligned __attribute__((aligned(1), may_alias));

/* n bytes from src to dst, a word at a time (unaligned LDR/STR are fine on
 * ARMv7E-M; newlib-nano's memcpy goes byte by byte). */
static TM_ALWAYS_INLINE void tm_copy_bytes(int8_t *dst, const int8_t *src, int32_t n) {
  for (; n >= 4; n -= 4, src += 4, dst += 4) {
    *(tm_u32_unaligned *)(void *)dst = tm_ld4(src);
  }
  for (; n > 0; --n) {
    *dst++ = *src++;
  }
}

/* The raw int8 window of a pixel (padded taps = zero point) in filter order. Used
 * when in_ch % 4 != 0, where the window's runs do not start on a group of 4 and
 * widening element by element would cost several times the gather. */
__attribute__((optimize("no-tree-loop-distribute-patterns"))) /* no memcpy/memset calls */
static void tm_gather_window(const tm_conv2d_s8_params *p, int8_t *raw, const int8_t *in_batch,
                             int32_t iy0, int32_t ix0, int32_t zp) {
  const int32_t in_ch = p->in_ch, in_w = p->in_w;
  const int32_t fw = p->filter_w, dw = p->dilation_w;
  const int32_t seg = fw * in_ch;
  const int full_x = dw == 1 && ix0 >= 0 && ix0 + fw <= in_w;
  for (int32_t ky = 0; ky < p->filter_h; ++ky, raw += seg) {
    const int32_t iy = iy0 + ky * p->dilation_h;
    if (iy < 0 || iy >= p->in_h) {
      for (int32_t i = 0; i < seg; ++i) {
        raw[i] = (int8_t)zp;
      }
      continue;
    }
    const int8_t *const row = in_batch + iy * in_w * in_ch;
    if (__builtin_expect(full_x, 1)) {
      tm_copy_bytes(raw, row + ix0 * in_ch, seg);
      continue;
    }
    for (int32_t kx = 0; kx < fw; ++kx) {
      const int32_t ix = ix0 + kx * dw;
      if (ix >= 0 && ix < in_w) {
        tm_copy_bytes(raw + kx * in_ch, row + ix * in_ch, in_ch);
      } else {
        for (int32_t i = 0; i < in_ch; ++i) {
          raw[kx * in_ch + i] = (int8_t)zp;
        }
      }
    }
  }
}

/* The im2col column of output pixel px whose window starts at (iy0, ix0); raw is
 * a k-byte gather buffer for channel counts that are not a multiple of 4. */
static void tm_col_pixel(const tm_conv2d_s8_params *p, int16_t *col, int8_t *raw, int32_t px,
                         const int8_t *in_batch, int32_t iy0, int32_t ix0, int32_t zp) {
  const int32_t in_ch = p->in_ch, in_w = p->in_w;
  const int32_t fw = p->filter_w, dw = p->dilation_w;
  const int32_t seg = fw * in_ch;
  if (in_ch & 3) {
    tm_gather_window(p, raw, in_batch, iy0, ix0, zp);
    tm_col_put(col, px, 0, raw, p->filter_h * seg, zp);
    return;
  }
  const int full_x = dw == 1 && ix0 >= 0 && ix0 + fw <= in_w;
  int32_t e = 0;
  for (int32_t ky = 0; ky < p->filter_h; ++ky, e += seg) {
    const int32_t iy = iy0 + ky * p->dilation_h;
    if (iy < 0 || iy >= p->in_h) {
      tm_col_put(col, px, e, 0, seg, zp);
      continue;
    }
    const int8_t *const row = in_batch + iy * in_w * in_ch;
    if (__builtin_expect(full_x, 1)) {
      tm_col_put(col, px, e, row + ix0 * in_ch, seg, zp);
      continue;
    }
    for (int32_t kx = 0; kx < fw; ++kx) {
      const int32_t ix = ix0 + kx * dw;
      const int in_image = ix >= 0 && ix < in_w;
      tm_col_put(col, px, e + kx * in_ch, in_image ? row + ix * in_ch : 0, in_ch, zp);
    }
  }
}

/* One SMLAD step of the 1x4 core: 4 weights against 4 pixels' interleaved words. */
#define TM_MAC_STEP                                   \
  "ldr    %[wr], [%[w]], #4\n\t"                      \
  "ldmia  %[c]!, {%[q0], %[q1], %[q2], %[q3]}\n\t"    \
  "sxtb16 %[we], %[wr]\n\t"                           \
  "sxtb16 %[wr], %[wr], ror #8\n\t"                   \
  "smlad  %[a0], %[we], %[q0], %[a0]\n\t"             \
  "smlad  %[a1], %[we], %[q1], %[a1]\n\t"             \
  "smlad  %[a2], %[we], %[q2], %[a2]\n\t"             \
  "smlad  %[a3], %[we], %[q3], %[a3]\n\t"             \
  "ldmia  %[c]!, {%[q0], %[q1], %[q2], %[q3]}\n\t"    \
  "smlad  %[a0], %[wr], %[q0], %[a0]\n\t"             \
  "smlad  %[a1], %[wr], %[q1], %[a1]\n\t"             \
  "smlad  %[a2], %[wr], %[q2], %[a2]\n\t"             \
  "smlad  %[a3], %[wr], %[q3], %[a3]\n\t"

/* acc[0..3] += filter row (groups x 4 int8 at w) . im2col columns of 4 pixels.
 * Inline asm because the LDM into four fixed registers is what makes the loop
 * short, and C cannot ask for it. */
static TM_ALWAYS_INLINE void tm_mac_1x4(const int8_t *w, const int16_t *c, int32_t groups,
                                         int32_t acc[4]) {
  register uint32_t q0 __asm__("r8");
  register uint32_t q1 __asm__("r9");
  register uint32_t q2 __asm__("r10");
  register uint32_t q3 __asm__("r11");
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  uint32_t wr, we;
  __asm__ volatile(
      "lsrs   %[g], %[g], #1\n\t"
      "bcc    2f\n\t"
      TM_MAC_STEP
      "2:\n\t"
      "cmp    %[g], #0\n\t"
      "beq    4f\n"
      "3:\n\t"
      TM_MAC_STEP
      TM_MAC_STEP
      "subs   %[g], %[g], #1\n\t"
      "bne    3b\n"
      "4:\n\t"
      : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w), [c] "+r"(c),
        [g] "+r"(groups), [wr] "=&r"(wr), [we] "=&r"(we), [q0] "=&r"(q0), [q1] "=&r"(q1),
        [q2] "=&r"(q2), [q3] "=&r"(q3)
      :
      : "cc", "memory");
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

/* Clamp a requantized value to the fused activation range. */
static TM_ALWAYS_INLINE int8_t tm_conv_clamp(int32_t v, int32_t act_min, int32_t act_max) {
  v = v < act_min ? act_min : v;
  return (int8_t)(v > act_max ? act_max : v);
}

static void tm_conv2d_s8_im2col(const tm_conv2d_s8_params *p, int32_t k) {
  /* Sized to this layer's window (k <= TM_CONV_MAX_K), so the stack grows by
   * 8 * ceil(k / 4) + k bytes only while a convolution runs. */
  int16_t col[TM_CONV_PX * ((k + 3) & ~3)] __attribute__((aligned(4)));
  int8_t raw[k];
  const int32_t k4 = k & ~3;
  const int32_t tail = k - k4;
  /* Filter rows are k bytes apart, so every row but the last may read its padded
   * last group straight from memory: the bytes past the row end meet zeros. The
   * last row must not read past the array: its tail is done element-wise. */
  const int32_t groups_all = (k + 3) >> 2;
  const int32_t groups_last = k4 >> 2;
  const int32_t out_ch = p->out_ch;
  const int32_t zp = -p->input_offset;
  const int32_t out_off = p->output_offset;
  const int32_t act_min = p->act_min, act_max = p->act_max;
  const int32_t *const ksum = p->kernel_sums;
  const int32_t *const mults = p->out_mult;
  const int32_t *const shifts = p->out_shift;
  const int32_t out_w = p->out_w;
  const int32_t total = p->batches * p->out_h * out_w;
  const int32_t batch_stride = p->in_h * p->in_w * p->in_ch;
  if (tail) {
    /* The pad elements of the last group stay 0 for the whole layer. */
    for (int32_t q = 0; q < TM_CONV_PX; ++q) {
      for (int32_t e = k; e < 4 * groups_all; ++e) {
        *tm_col_slot(col, e, q) = 0;
      }
    }
  }
  int32_t b = 0, oy = 0, ox = 0; /* coordinates of the next pixel to load */
  for (int32_t n = 0; n < total; n += TM_CONV_PX) {
    const int32_t np = total - n < TM_CONV_PX ? total - n : TM_CONV_PX;
    for (int32_t q = 0; q < np; ++q) {
      tm_col_pixel(p, col, raw, q, p->input + b * batch_stride, oy * p->stride_h - p->pad_h,
                   ox * p->stride_w - p->pad_w, zp);
      if (++ox == out_w) {
        ox = 0;
        if (++oy == p->out_h) {
          oy = 0;
          ++b;
        }
      }
    }
    for (int32_t q = np; q < TM_CONV_PX; ++q) {
      tm_col_put(col, q, 0, 0, k, zp); /* defined values for the unused lanes */
    }
    int8_t *const out = p->output + n * out_ch;
    const int8_t *w = p->filter;
    for (int32_t oc = 0; oc < out_ch; ++oc, w += k) {
      const int32_t s = ksum[oc];
      int32_t acc[4] = {s, s, s, s};
      if (__builtin_expect(oc + 1 < out_ch, 1)) {
        tm_mac_1x4(w, col, groups_all, acc);
      } else {
        if (groups_last > 0) {
          tm_mac_1x4(w, col, groups_last, acc);
        }
        for (int32_t t = 0; t < tail; ++t) {
          const int32_t wv = w[k4 + t];
          for (int32_t q = 0; q < TM_CONV_PX; ++q) {
            acc[q] += wv * *tm_col_slot(col, k4 + t, q);
          }
        }
      }
      const int32_t mult = mults[oc];
      const int32_t shift = shifts[oc];
      int8_t *o = out + oc;
      if (__builtin_expect(shift < 0, 1)) {
        /* Right shift: both roundings in one SMLAL (tm_requantize_right). */
        const int right = -(int)shift;
        uint32_t c_lo;
        int32_t c_hi;
        tm_requantize_right_constants(right, &c_lo, &c_hi);
        if (__builtin_expect(np == TM_CONV_PX, 1)) {
          o[0] = tm_conv_clamp(tm_requantize_right(acc[0], mult, c_lo, c_hi, right) + out_off,
                               act_min, act_max);
          o[out_ch] = tm_conv_clamp(
              tm_requantize_right(acc[1], mult, c_lo, c_hi, right) + out_off, act_min, act_max);
          o[2 * out_ch] = tm_conv_clamp(
              tm_requantize_right(acc[2], mult, c_lo, c_hi, right) + out_off, act_min, act_max);
          o[3 * out_ch] = tm_conv_clamp(
              tm_requantize_right(acc[3], mult, c_lo, c_hi, right) + out_off, act_min, act_max);
        } else {
          for (int32_t q = 0; q < np; ++q, o += out_ch) {
            *o = tm_conv_clamp(tm_requantize_right(acc[q], mult, c_lo, c_hi, right) + out_off,
                               act_min, act_max);
          }
        }
        continue;
      }
      const int left = (int)shift;
      const int right = 0;
      const int32_t mask = 0;
      for (int32_t q = 0; q < np; ++q, o += out_ch) {
        *o = tm_conv_clamp(tm_requantize_split(acc[q], mult, left, right, mask) + out_off, act_min,
                           act_max);
      }
    }
  }
}

void tm_conv2d_s8(const void *params) {
  const tm_conv2d_s8_params *p = (const tm_conv2d_s8_params *)params;
  if (__builtin_expect(p->filter_in_ch != p->in_ch, 0)) {
    tm_conv2d_s8_generic(params);
    return;
  }
  const int32_t k = p->filter_h * p->filter_w * p->in_ch;
  if (__builtin_expect(k <= TM_CONV_MAX_K && p->kernel_sums != 0, 1)) {
    tm_conv2d_s8_im2col(p, k);
    return;
  }
  if (p->dilation_w != 1) {
    tm_conv2d_s8_generic(params);
    return;
  }
  tm_conv2d_s8_direct(p);
}

#else /* no DSP extension: the reference kernel is the optimized kernel */
#include "../reference/conv2d.c"
#endif
