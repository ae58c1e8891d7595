/* FULLY_CONNECTED int8, DSP-optimized (Cortex-M4/M7/M33): the conv kernel's
 * SXTB16/SXTAB16 + SMLAD dot products, blocked 2 batches x 2 output channels so
 * each widened input word serves two weight rows and each widened weight word two
 * batch rows. Same exact int32 sums and double-rounding requantization as the TFLM
 * reference; weights with a non-zero zero point and non-DSP cores use the
 * reference arithmetic. */
#include "tm_fixedpoint.h"
#include "tm_ops_conv.h"

#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)

#define tm_fully_connected_s8 tm_fully_connected_s8_generic
#include "../reference/fully_connected.c"
#undef tm_fully_connected_s8

#include <arm_acle.h>
#include <string.h>

void tm_fully_connected_s8_generic(const void *params);

static TM_ALWAYS_INLINE uint32_t tm_fc_ld4(const int8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static TM_ALWAYS_INLINE int32_t tm_fc_sxtb16_ror8(uint32_t x) {
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}

static TM_ALWAYS_INLINE int32_t tm_fc_sxtab16_ror8(int32_t a, uint32_t x) {
  int32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
  return r;
}

/* Dot products of rows x0 (and x1 when nx == 2) with w0 (and w1 when nw == 2).
 * acc = {x0w0, x0w1, x1w0, x1w1}; unused entries stay 0. nx/nw are constants at
 * every call site, so the unused work is compiled away. */
static TM_ALWAYS_INLINE void tm_fc_dot(const int8_t *x0, const int8_t *x1, const int8_t *w0,
                                        const int8_t *w1, int nx, int nw, int32_t len,
                                        int32_t off, int32_t off2, int32_t acc[4]) {
  int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
  for (int32_t n = len >> 2; n > 0; --n) {
    const uint32_t av = tm_fc_ld4(x0);
    x0 += 4;
    const int32_t ae = __sxtab16(off2, (int8x4_t)av);
    const int32_t ao = tm_fc_sxtab16_ror8(off2, av);
    int32_t be = 0, bo = 0;
    if (nx == 2) {
      const uint32_t bv = tm_fc_ld4(x1);
      x1 += 4;
      be = __sxtab16(off2, (int8x4_t)bv);
      bo = tm_fc_sxtab16_ror8(off2, bv);
    }
    uint32_t wv = tm_fc_ld4(w0);
    w0 += 4;
    int32_t we = __sxtb16((int8x4_t)wv);
    int32_t wo = tm_fc_sxtb16_ror8(wv);
    s00 = __smlad(wo, ao, __smlad(we, ae, s00));
    if (nx == 2) {
      s10 = __smlad(wo, bo, __smlad(we, be, s10));
    }
    if (nw == 2) {
      wv = tm_fc_ld4(w1);
      w1 += 4;
      we = __sxtb16((int8x4_t)wv);
      wo = tm_fc_sxtb16_ror8(wv);
      s01 = __smlad(wo, ao, __smlad(we, ae, s01));
      if (nx == 2) {
        s11 = __smlad(wo, bo, __smlad(we, be, s11));
      }
    }
  }
  for (int32_t n = len & 3; n > 0; --n) {
    const int32_t a = (int32_t)*x0++ + off;
    const int32_t f0 = *w0++;
    s00 += f0 * a;
    if (nw == 2) {
      const int32_t f1 = *w1++;
      s01 += f1 * a;
      if (nx == 2) {
        const int32_t b = (int32_t)*x1 + off;
        s10 += f0 * b;
        s11 += f1 * b;
      }
    } else if (nx == 2) {
      s10 += f0 * ((int32_t)*x1 + off);
    }
    if (nx == 2) {
      ++x1;
    }
  }
  acc[0] = s00;
  acc[1] = s01;
  acc[2] = s10;
  acc[3] = s11;
}

static TM_ALWAYS_INLINE int8_t tm_fc_requant(const tm_fully_connected_s8_params *p, int32_t acc,
                                              int32_t oc, int32_t q) {
  if (p->bias) {
    acc += p->bias[oc];
  }
  acc = tm_multiply_by_quantized_multiplier(acc, p->out_mult[q], (int)p->out_shift[q]);
  return tm_clamp_s8(acc + p->output_offset, p->act_min, p->act_max);
}

void tm_fully_connected_s8(const void *params) {
  const tm_fully_connected_s8_params *p = (const tm_fully_connected_s8_params *)params;
  if (p->filter_offset != 0) {
    tm_fully_connected_s8_generic(params);
    return;
  }
  const int32_t k = p->accum_depth;
  const int32_t out_depth = p->out_depth;
  const int32_t q_step = p->per_channel ? 1 : 0;
  const int32_t off = p->input_offset;
  const int32_t off2 = (int32_t)(((uint32_t)off & 0xFFFFu) | ((uint32_t)off << 16));
  int32_t b = 0;
  for (; b + 1 < p->batches; b += 2) {
    const int8_t *const x0 = p->input + b * k;
    const int8_t *const x1 = x0 + k;
    int8_t *const out0 = p->output + b * out_depth;
    int8_t *const out1 = out0 + out_depth;
    const int8_t *w = p->filter;
    int32_t oc = 0;
    int32_t acc[4];
    for (; oc + 1 < out_depth; oc += 2) {
      tm_fc_dot(x0, x1, w, w + k, 2, 2, k, off, off2, acc);
      out0[oc] = tm_fc_requant(p, acc[0], oc, oc * q_step);
      out0[oc + 1] = tm_fc_requant(p, acc[1], oc + 1, (oc + 1) * q_step);
      out1[oc] = tm_fc_requant(p, acc[2], oc, oc * q_step);
      out1[oc + 1] = tm_fc_requant(p, acc[3], oc + 1, (oc + 1) * q_step);
      w += 2 * k;
    }
    if (oc < out_depth) {
      tm_fc_dot(x0, x1, w, w, 2, 1, k, off, off2, acc);
      out0[oc] = tm_fc_requant(p, acc[0], oc, oc * q_step);
      out1[oc] = tm_fc_requant(p, acc[2], oc, oc * q_step);
    }
  }
  if (b < p->batches) {
    const int8_t *const x0 = p->input + b * k;
    int8_t *const out0 = p->output + b * out_depth;
    const int8_t *w = p->filter;
    int32_t oc = 0;
    int32_t acc[4];
    for (; oc + 1 < out_depth; oc += 2) {
      tm_fc_dot(x0, x0, w, w + k, 1, 2, k, off, off2, acc);
      out0[oc] = tm_fc_requant(p, acc[0], oc, oc * q_step);
      out0[oc + 1] = tm_fc_requant(p, acc[1], oc + 1, (oc + 1) * q_step);
      w += 2 * k;
    }
    if (oc < out_depth) {
      tm_fc_dot(x0, x0, w, w, 1, 1, k, off, off2, acc);
      out0[oc] = tm_fc_requant(p, acc[0], oc, oc * q_step);
    }
  }
}

#else /* no DSP extension: the reference kernel is the optimized kernel */
#include "../reference/fully_connected.c"
#endif
