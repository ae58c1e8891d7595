/* DEPTHWISE_CONV_2D int8, DSP-optimized (Cortex-M4/M7/M33).
 *
 * With depth_multiplier 1, output channel c only reads input channel c, so four
 * neighbouring channels are processed together: one LDR fetches four input bytes
 * and one fetches the four matching weights, SXTAB16/SXTB16 widen them into
 * channel pairs (0,2) and (1,3) with the input offset added in the same
 * instruction, and SMLABB/SMLATT accumulate each channel separately (products
 * must not be summed across channels, so SMLAD does not apply here). A fully
 * in-image 3x3 window (the common MobileNet case) runs a fixed-trip loop the
 * compiler unrolls.
 *
 * Bit-exact with TFLM: every accumulator is the same exact int32 sum and the
 * requantization is the shared double-rounding helper. Other depth multipliers,
 * leftover channels and non-DSP cores use the reference arithmetic. */
#include "tm_fixedpoint.h"
#include "tm_ops_conv.h"

#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)

#define tm_depthwise_conv2d_s8 tm_depthwise_conv2d_s8_generic
#include "../reference/depthwise_conv2d.c"
#undef tm_depthwise_conv2d_s8

#include <arm_acle.h>
#include <string.h>

void tm_depthwise_conv2d_s8_generic(const void *params);

static TM_ALWAYS_INLINE uint32_t tm_dw_ld4(const int8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static TM_ALWAYS_INLINE int32_t tm_dw_sxtb16_ror8(uint32_t x) {
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}

static TM_ALWAYS_INLINE int32_t tm_dw_sxtab16_ror8(int32_t a, uint32_t x) {
  int32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
  return r;
}

/* Four channels over a taps_y x taps_x window; acc[i] is channel c + i. */
static TM_ALWAYS_INLINE void tm_dw_4ch(const int8_t *in, const int8_t *f, int32_t taps_y,
                                        int32_t taps_x, int32_t in_col_step,
                                        int32_t in_row_step, int32_t f_col_step,
                                        int32_t f_row_step, int32_t off2, int32_t acc[4]) {
  int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int32_t ty = 0; ty < taps_y; ++ty) {
    const int8_t *ip = in;
    const int8_t *fp = f;
    for (int32_t tx = 0; tx < taps_x; ++tx) {
      const uint32_t xv = tm_dw_ld4(ip);
      const uint32_t wv = tm_dw_ld4(fp);
      const int32_t xe = __sxtab16(off2, (int8x4_t)xv); /* channels 0, 2 */
      const int32_t xo = tm_dw_sxtab16_ror8(off2, xv);  /* channels 1, 3 */
      const int32_t we = __sxtb16((int8x4_t)wv);
      const int32_t wo = tm_dw_sxtb16_ror8(wv);
      s0 = __smlabb(we, xe, s0);
      s2 = __smlatt(we, xe, s2);
      s1 = __smlabb(wo, xo, s1);
      s3 = __smlatt(wo, xo, s3);
      ip += in_col_step;
      fp += f_col_step;
    }
    in += in_row_step;
    f += f_row_step;
  }
  acc[0] = s0;
  acc[1] = s1;
  acc[2] = s2;
  acc[3] = s3;
}

static TM_ALWAYS_INLINE int8_t tm_dw_requant(const tm_depthwise_conv2d_s8_params *p, int32_t acc,
                                              int32_t c) {
  if (p->bias) {
    acc += p->bias[c];
  }
  acc = tm_multiply_by_quantized_multiplier(acc, p->out_mult[c], (int)p->out_shift[c]);
  return tm_clamp_s8(acc + p->output_offset, p->act_min, p->act_max);
}

void tm_depthwise_conv2d_s8(const void *params) {
  const tm_depthwise_conv2d_s8_params *p = (const tm_depthwise_conv2d_s8_params *)params;
  if (p->depth_multiplier != 1 || p->in_ch < 4) {
    tm_depthwise_conv2d_s8_generic(params);
    return;
  }
  const int32_t in_h = p->in_h, in_w = p->in_w, ch = p->in_ch;
  const int32_t filter_h = p->filter_h, filter_w = p->filter_w;
  const int32_t dil_h = p->dilation_h, dil_w = p->dilation_w;
  const int32_t off = p->input_offset;
  const int32_t off2 = (int32_t)(((uint32_t)off & 0xFFFFu) | ((uint32_t)off << 16));
  const int32_t in_row_stride = in_w * ch;
  const int32_t in_row_step = dil_h * in_row_stride;
  const int32_t in_col_step = dil_w * ch;
  const int32_t f_row_stride = filter_w * ch;
  const int32_t ch4 = ch & ~3;
  int8_t *out = p->output;

  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *const in_batch = p->input + b * in_h * in_row_stride;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t iy0 = oy * p->stride_h - p->pad_h;
      int32_t ky0, ky1;
      tm_dw_valid_taps(iy0, dil_h, filter_h, in_h, &ky0, &ky1);
      const int32_t taps_y = ky1 - ky0;
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const int32_t ix0 = ox * p->stride_w - p->pad_w;
        int32_t kx0, kx1;
        tm_dw_valid_taps(ix0, dil_w, filter_w, in_w, &kx0, &kx1);
        const int32_t taps_x = kx1 - kx0;
        const int8_t *const in_pix =
            in_batch + (iy0 + dil_h * ky0) * in_row_stride + (ix0 + dil_w * kx0) * ch;
        const int8_t *const f_tap0 = p->filter + ky0 * f_row_stride + kx0 * ch;
        const int full3x3 = taps_y == 3 && taps_x == 3;
        int32_t c = 0;
        for (; c < ch4; c += 4) {
          int32_t acc[4];
          if (full3x3) {
            tm_dw_4ch(in_pix + c, f_tap0 + c, 3, 3, in_col_step, in_row_step, ch,
                      f_row_stride, off2, acc);
          } else {
            tm_dw_4ch(in_pix + c, f_tap0 + c, taps_y, taps_x, in_col_step, in_row_step, ch,
                      f_row_stride, off2, acc);
          }
          out[c] = tm_dw_requant(p, acc[0], c);
          out[c + 1] = tm_dw_requant(p, acc[1], c + 1);
          out[c + 2] = tm_dw_requant(p, acc[2], c + 2);
          out[c + 3] = tm_dw_requant(p, acc[3], c + 3);
        }
        for (; c < ch; ++c) {
          const int8_t *in_row = in_pix + c;
          const int8_t *f_row = f_tap0 + c;
          int32_t acc = 0;
          for (int32_t ty = 0; ty < taps_y; ++ty) {
            const int8_t *ip = in_row;
            const int8_t *fp = f_row;
            for (int32_t tx = 0; tx < taps_x; ++tx) {
              acc += (int32_t)*fp * ((int32_t)*ip + off);
              ip += in_col_step;
              fp += ch;
            }
            in_row += in_row_step;
            f_row += f_row_stride;
          }
          out[c] = tm_dw_requant(p, acc, c);
        }
        out += ch;
      }
    }
  }
}

#else /* no DSP extension: the reference kernel is the optimized kernel */
#include "../reference/depthwise_conv2d.c"
#endif
