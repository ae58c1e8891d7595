/* DEPTHWISE_CONV_2D int8, DSP-optimized (Cortex-M4/M7/M33).
 *
 * With depth_multiplier 1, output channel c only reads input channel c, so four
 * neighbouring channels are processed together: one LDR fetches four input bytes,
 * SXTB16 / SXTB16 ROR #8 widen them into channel pairs (0,2) and (1,3), and
 * SMLABB/SMLATT accumulate each channel separately (products must not be summed
 * across channels, so SMLAD does not apply here).
 *
 * The loop order is channel group outer, pixels inner, so everything that depends
 * only on the channels is prepared once per group instead of once per pixel: the
 * widened weights of every tap (a small stack table, one LDRD per tap in the inner
 * loop), the requantization constants (one SMLAL per output for right shifts,
 * tm_requantize_right), and the kernel sums (bias + input_offset
 * * sum of the channel's taps, computed on the host) that start the accumulators,
 * so the input offset never enters the tap loop of windows inside the image; a 3x3
 * window (the MobileNet / DS-CNN case) is fully unrolled there. 3x3 border windows
 * stay unrolled, with taps outside the image reading the input zero point: its
 * product cancels the kernel sum's offset term, so they add exactly TFLM's 0.
 * Other border windows visit only their in-image taps (TFLM skips the others),
 * starting at the bias and adding the offset while widening (SXTAB16).
 *
 * Bit-exact with TFLM: every accumulator is the same int32 sum modulo 2^32 and the
 * requantization is TFLM's double rounding. Other depth multipliers, fewer than 4
 * channels, windows over TM_DW_MAX_TAPS and non-DSP cores use the reference
 * arithmetic; leftover channels (in_ch % 4) a scalar loop. */
#include "tm_fixedpoint.h"
#include "tm_ops_conv.h"

#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)

#define tm_depthwise_conv2d_s8 tm_depthwise_conv2d_s8_generic
#include "../reference/depthwise_conv2d.c"
#undef tm_depthwise_conv2d_s8

#include <arm_acle.h>

#include "tm_simd.h"

void tm_depthwise_conv2d_s8_generic(const void *params);

static TM_ALWAYS_INLINE int8_t tm_dw_requant(const tm_depthwise_conv2d_s8_params *p, int32_t acc,
                                              int32_t c) {
  if (p->bias) {
    acc += p->bias[c];
  }
  acc = tm_multiply_by_quantized_multiplier(acc, p->out_mult[c], (int)p->out_shift[c]);
  return tm_clamp_s8(acc + p->output_offset, p->act_min, p->act_max);
}

/* Largest window (filter_h * filter_w) of the fast path: the stack table holds
 * two widened words per tap. */
#define TM_DW_MAX_TAPS 49

/* Per-channel requantization with the shift split once per channel group. */
typedef struct {
  int32_t mult;
  int32_t left;
  int32_t right;
  int32_t mask;
  uint32_t c_lo; /* tm_requantize_right constants (right >= 1) */
  int32_t c_hi;
  int32_t shr; /* right - 1 */
} tm_dw_rq;

static TM_ALWAYS_INLINE int8_t tm_dw_out(int32_t acc, const tm_dw_rq *rq, int32_t out_off,
                                         int32_t act_min, int32_t act_max) {
  int32_t v = tm_requantize_split(acc, rq->mult, (int)rq->left, (int)rq->right, rq->mask) +
              out_off;
  v = v < act_min ? act_min : v;
  return (int8_t)(v > act_max ? act_max : v);
}

/* Requantization of a channel with a right shift: one SMLAL (tm_requantize_right). */
static TM_ALWAYS_INLINE int32_t tm_dw_rq_right(int32_t acc, const tm_dw_rq *rq) {
  return tm_requantize_right_shr(acc, rq->mult, rq->c_lo, rq->c_hi, (int)rq->shr);
}

/* One tap of four channels: xv = 4 raw input bytes, w = widened weights {(0,2), (1,3)}. */
#define TM_DW_TAP(xv_expr, w)                                  \
  do {                                                         \
    const uint32_t xv_ = (xv_expr);                            \
    const int32_t xe_ = __sxtb16((int8x4_t)xv_);               \
    const int32_t xo_ = tm_sxtb16_ror8(xv_);                \
    s0 = __smlabb((int32_t)(w)[0], xe_, s0);                   \
    s2 = __smlatt((int32_t)(w)[0], xe_, s2);                   \
    s1 = __smlabb((int32_t)(w)[1], xo_, s1);                   \
    s3 = __smlatt((int32_t)(w)[1], xo_, s3);                   \
  } while (0)

/* Channels [c, c + 4) of every output pixel. */
static void tm_dw_group4(const tm_depthwise_conv2d_s8_params *p, int32_t c) {
  const int32_t in_h = p->in_h, in_w = p->in_w, ch = p->in_ch;
  const int32_t fh = p->filter_h, fw = p->filter_w;
  const int32_t dil_h = p->dilation_h, dil_w = p->dilation_w;
  const int32_t row_step = dil_h * in_w * ch;
  const int32_t col_step = dil_w * ch;
  const int32_t taps = fh * fw;
  const int32_t off = p->input_offset;
  const int32_t off2 = (int32_t)(((uint32_t)off & 0xFFFFu) | ((uint32_t)off << 16));
  const uint32_t zp4 = ((uint32_t)(-off) & 0xFFu) * 0x01010101u;
  const int32_t out_off = p->output_offset;
  const int32_t act_min = p->act_min, act_max = p->act_max;
  const uint32_t lo4 = tm_pack_s8x4(act_min), hi4 = tm_pack_s8x4(act_max);
  uint32_t wx[2 * TM_DW_MAX_TAPS];
  for (int32_t t = 0; t < taps; ++t) {
    const uint32_t raw = tm_ld4(p->filter + t * ch + c);
    wx[2 * t] = (uint32_t)__sxtb16((int8x4_t)raw);
    wx[2 * t + 1] = (uint32_t)tm_sxtb16_ror8(raw);
  }
  tm_dw_rq rq[4];
  int all_right = 1;
  for (int32_t i = 0; i < 4; ++i) {
    const int32_t shift = p->out_shift[c + i];
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = left - shift;
    rq[i].mult = p->out_mult[c + i];
    rq[i].left = left;
    rq[i].right = right;
    rq[i].mask = (int32_t)((UINT32_C(1) << right) - 1u);
    rq[i].c_lo = 0;
    rq[i].c_hi = 0;
    rq[i].shr = right - 1;
    if (right >= 1) {
      tm_requantize_right_constants((int)right, &rq[i].c_lo, &rq[i].c_hi);
    } else {
      all_right = 0;
    }
  }
  const int32_t k0 = p->kernel_sums[c], k1 = p->kernel_sums[c + 1];
  const int32_t k2 = p->kernel_sums[c + 2], k3 = p->kernel_sums[c + 3];
  const int32_t *const bias = p->bias;
  const int32_t b0 = bias ? bias[c] : 0, b1 = bias ? bias[c + 1] : 0;
  const int32_t b2 = bias ? bias[c + 2] : 0, b3 = bias ? bias[c + 3] : 0;
  const int is3x3 = fh == 3 && fw == 3;
  int8_t *out = p->output + c;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *const in_b = p->input + b * in_h * in_w * ch + c;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t iy0 = oy * p->stride_h - p->pad_h;
      const int rows_in = iy0 >= 0 && iy0 + (fh - 1) * dil_h < in_h;
      for (int32_t ox = 0; ox < p->out_w; ++ox, out += ch) {
        const int32_t ix0 = ox * p->stride_w - p->pad_w;
        int32_t s0 = k0, s1 = k1, s2 = k2, s3 = k3;
        const int8_t *const ip = in_b + (iy0 * in_w + ix0) * ch;
        if (__builtin_expect(rows_in && ix0 >= 0 && ix0 + (fw - 1) * dil_w < in_w, 1)) {
          if (is3x3) {
            const int8_t *r = ip;
            TM_DW_TAP(tm_ld4(r), wx + 0);
            TM_DW_TAP(tm_ld4(r + col_step), wx + 2);
            TM_DW_TAP(tm_ld4(r + 2 * col_step), wx + 4);
            r += row_step;
            TM_DW_TAP(tm_ld4(r), wx + 6);
            TM_DW_TAP(tm_ld4(r + col_step), wx + 8);
            TM_DW_TAP(tm_ld4(r + 2 * col_step), wx + 10);
            r += row_step;
            TM_DW_TAP(tm_ld4(r), wx + 12);
            TM_DW_TAP(tm_ld4(r + col_step), wx + 14);
            TM_DW_TAP(tm_ld4(r + 2 * col_step), wx + 16);
          } else {
            const uint32_t *w = wx;
            const int8_t *r = ip;
            for (int32_t ky = 0; ky < fh; ++ky, r += row_step) {
              const int8_t *x = r;
              for (int32_t kx = 0; kx < fw; ++kx, x += col_step, w += 2) {
                TM_DW_TAP(tm_ld4(x), w);
              }
            }
          }
        } else if (is3x3) {
          /* 3x3 border: taps outside the image read the zero point, whose product
           * cancels against the kernel sum's offset term (contributes 0, exactly
           * TFLM's skipped tap). */
          const int ry0 = iy0 >= 0 && iy0 < in_h;
          const int ry1 = iy0 + dil_h >= 0 && iy0 + dil_h < in_h;
          const int ry2 = iy0 + 2 * dil_h >= 0 && iy0 + 2 * dil_h < in_h;
          const int cx0 = ix0 >= 0 && ix0 < in_w;
          const int cx1 = ix0 + dil_w >= 0 && ix0 + dil_w < in_w;
          const int cx2 = ix0 + 2 * dil_w >= 0 && ix0 + 2 * dil_w < in_w;
          const int8_t *r = ip;
          TM_DW_TAP(ry0 && cx0 ? tm_ld4(r) : zp4, wx + 0);
          TM_DW_TAP(ry0 && cx1 ? tm_ld4(r + col_step) : zp4, wx + 2);
          TM_DW_TAP(ry0 && cx2 ? tm_ld4(r + 2 * col_step) : zp4, wx + 4);
          r += row_step;
          TM_DW_TAP(ry1 && cx0 ? tm_ld4(r) : zp4, wx + 6);
          TM_DW_TAP(ry1 && cx1 ? tm_ld4(r + col_step) : zp4, wx + 8);
          TM_DW_TAP(ry1 && cx2 ? tm_ld4(r + 2 * col_step) : zp4, wx + 10);
          r += row_step;
          TM_DW_TAP(ry2 && cx0 ? tm_ld4(r) : zp4, wx + 12);
          TM_DW_TAP(ry2 && cx1 ? tm_ld4(r + col_step) : zp4, wx + 14);
          TM_DW_TAP(ry2 && cx2 ? tm_ld4(r + 2 * col_step) : zp4, wx + 16);
        } else {
          /* Border: only the in-image taps, with the input offset added while
           * widening (SXTAB16) and the accumulators starting at the bias. */
          int32_t ky0, ky1, kx0, kx1;
          tm_valid_taps(iy0, dil_h, fh, in_h, &ky0, &ky1);
          tm_valid_taps(ix0, dil_w, fw, in_w, &kx0, &kx1);
          s0 = b0;
          s1 = b1;
          s2 = b2;
          s3 = b3;
          const int8_t *r = ip + ky0 * row_step + kx0 * col_step;
          const uint32_t *wr = wx + 2 * (ky0 * fw + kx0);
          for (int32_t ky = ky0; ky < ky1; ++ky, r += row_step, wr += 2 * fw) {
            const int8_t *x = r;
            const uint32_t *w = wr;
            for (int32_t kx = kx0; kx < kx1; ++kx, x += col_step, w += 2) {
              const uint32_t xv = tm_ld4(x);
              const int32_t xe = __sxtab16(off2, (int8x4_t)xv);
              const int32_t xo = tm_sxtab16_ror8(off2, xv);
              s0 = __smlabb((int32_t)w[0], xe, s0);
              s2 = __smlatt((int32_t)w[0], xe, s2);
              s1 = __smlabb((int32_t)w[1], xo, s1);
              s3 = __smlatt((int32_t)w[1], xo, s3);
            }
          }
        }
        if (__builtin_expect(all_right, 1)) {
          /* Saturate each to int8 (SSAT), pack the four bytes, clamp all four to the
           * activation range at once (SSUB8/SEL) and store one word: the same bytes as
           * clamping each int32 (the activation range lies inside int8). */
          const uint32_t v0 = (uint8_t)__ssat(tm_dw_rq_right(s0, &rq[0]) + out_off, 8);
          const uint32_t v1 = (uint8_t)__ssat(tm_dw_rq_right(s1, &rq[1]) + out_off, 8);
          const uint32_t v2 = (uint8_t)__ssat(tm_dw_rq_right(s2, &rq[2]) + out_off, 8);
          const uint32_t v3 = (uint32_t)__ssat(tm_dw_rq_right(s3, &rq[3]) + out_off, 8);
          const uint32_t packed = v0 | (v1 << 8) | (v2 << 16) | (v3 << 24);
          tm_st4(out, tm_min_s8x4(tm_max_s8x4(packed, lo4), hi4));
        } else {
          out[0] = tm_dw_out(s0, &rq[0], out_off, act_min, act_max);
          out[1] = tm_dw_out(s1, &rq[1], out_off, act_min, act_max);
          out[2] = tm_dw_out(s2, &rq[2], out_off, act_min, act_max);
          out[3] = tm_dw_out(s3, &rq[3], out_off, act_min, act_max);
        }
      }
    }
  }
}

/* Channels [c0, in_ch) (fewer than 4), one at a time with the reference arithmetic. */
static void tm_dw_channels_scalar(const tm_depthwise_conv2d_s8_params *p, int32_t c0) {
  const int32_t in_h = p->in_h, in_w = p->in_w, ch = p->in_ch;
  const int32_t filter_h = p->filter_h, filter_w = p->filter_w;
  const int32_t dil_h = p->dilation_h, dil_w = p->dilation_w;
  const int32_t off = p->input_offset;
  const int32_t in_row_stride = in_w * ch;
  const int32_t f_row_stride = filter_w * ch;
  int8_t *out = p->output;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *const in_batch = p->input + b * in_h * in_row_stride;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t iy0 = oy * p->stride_h - p->pad_h;
      int32_t ky0, ky1;
      tm_valid_taps(iy0, dil_h, filter_h, in_h, &ky0, &ky1);
      for (int32_t ox = 0; ox < p->out_w; ++ox, out += ch) {
        const int32_t ix0 = ox * p->stride_w - p->pad_w;
        int32_t kx0, kx1;
        tm_valid_taps(ix0, dil_w, filter_w, in_w, &kx0, &kx1);
        const int8_t *const in_pix =
            in_batch + (iy0 + dil_h * ky0) * in_row_stride + (ix0 + dil_w * kx0) * ch;
        const int8_t *const f_tap0 = p->filter + ky0 * f_row_stride + kx0 * ch;
        for (int32_t c = c0; c < ch; ++c) {
          const int8_t *in_row = in_pix + c;
          const int8_t *f_row = f_tap0 + c;
          int32_t acc = 0;
          for (int32_t ky = ky0; ky < ky1; ++ky) {
            const int8_t *ip = in_row;
            const int8_t *fp = f_row;
            for (int32_t kx = kx0; kx < kx1; ++kx) {
              acc += (int32_t)*fp * ((int32_t)*ip + off);
              ip += dil_w * ch;
              fp += ch;
            }
            in_row += dil_h * in_row_stride;
            f_row += f_row_stride;
          }
          out[c] = tm_dw_requant(p, acc, c);
        }
      }
    }
  }
}

void tm_depthwise_conv2d_s8(const void *params) {
  const tm_depthwise_conv2d_s8_params *p = (const tm_depthwise_conv2d_s8_params *)params;
  if (__builtin_expect(p->depth_multiplier != 1 || p->in_ch < 4 || p->kernel_sums == 0 ||
                           p->filter_h * p->filter_w > TM_DW_MAX_TAPS, 0)) {
    tm_depthwise_conv2d_s8_generic(params);
    return;
  }
  const int32_t ch4 = p->in_ch & ~3;
  for (int32_t c = 0; c < ch4; c += 4) {
    tm_dw_group4(p, c);
  }
  if (ch4 < p->in_ch) {
    tm_dw_channels_scalar(p, ch4);
  }
}

#else /* no DSP extension: the reference kernel is the optimized kernel */
#include "../reference/depthwise_conv2d.c"
#endif
