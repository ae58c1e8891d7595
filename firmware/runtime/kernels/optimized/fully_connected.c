/* FULLY_CONNECTED int8, DSP-optimized (Cortex-M4/M7/M33).
 *
 * Main path (symmetric weights, accum_depth <= TM_FC_MAX_DEPTH): each input row is
 * widened once into a stack buffer as the (x0, x2) / (x1, x3) halfword pairs that
 * SXTB16 / SXTB16 ROR #8 make of 4 int8 weights; then four weight rows at a time
 * run through an inline-asm loop where one LDRD fetches the input words of four
 * SMLAD pairs (21 instructions per 16 MACs). The accumulators start at the host's
 * kernel sums (bias + input_offset * sum(row)), so the input offset never enters
 * the loop. Leftover rows and the accum_depth % 4 tail run in C; larger depths the
 * 2x2-blocked SMLAD kernel below.
 *
 * Same exact int32 sums (modulo 2^32, so reordering is exact) and TFLM's
 * double-rounding requantization as the reference; weights with a non-zero zero
 * point and non-DSP cores use the reference arithmetic. */
#include "tm_fixedpoint.h"
#include "tm_ops_conv.h"

#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)

#define tm_fully_connected_s8 tm_fully_connected_s8_generic
#include "../reference/fully_connected.c"
#undef tm_fully_connected_s8

#include <arm_acle.h>

#include "tm_simd.h"

void tm_fully_connected_s8_generic(const void *params);

/* Dot products of rows x0 (and x1 when nx == 2) with w0 (and w1 when nw == 2).
 * acc = {x0w0, x0w1, x1w0, x1w1}; unused entries stay 0. nx/nw are constants at
 * every call site, so the unused work is compiled away. */
static TM_ALWAYS_INLINE void tm_fc_dot(const int8_t *x0, const int8_t *x1, const int8_t *w0,
                                        const int8_t *w1, int nx, int nw, int32_t len,
                                        int32_t off, int32_t off2, int32_t acc[4]) {
  int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
  for (int32_t n = len >> 2; n > 0; --n) {
    const uint32_t av = tm_ld4(x0);
    x0 += 4;
    const int32_t ae = __sxtab16(off2, (int8x4_t)av);
    const int32_t ao = tm_sxtab16_ror8(off2, av);
    int32_t be = 0, bo = 0;
    if (nx == 2) {
      const uint32_t bv = tm_ld4(x1);
      x1 += 4;
      be = __sxtab16(off2, (int8x4_t)bv);
      bo = tm_sxtab16_ror8(off2, bv);
    }
    uint32_t wv = tm_ld4(w0);
    w0 += 4;
    int32_t we = __sxtb16((int8x4_t)wv);
    int32_t wo = tm_sxtb16_ror8(wv);
    s00 = __smlad(wo, ao, __smlad(we, ae, s00));
    if (nx == 2) {
      s10 = __smlad(wo, bo, __smlad(we, be, s10));
    }
    if (nw == 2) {
      wv = tm_ld4(w1);
      w1 += 4;
      we = __sxtb16((int8x4_t)wv);
      wo = tm_sxtb16_ror8(wv);
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

/* 2x2-blocked SMLAD kernel without scratch, for very deep rows. */
static void tm_fc_s8_blocked(const tm_fully_connected_s8_params *p) {
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

/* Deepest row taken through the widened-input stack buffer (2 KiB at most). */
#define TM_FC_MAX_DEPTH 1024

/* One group of 4 inputs against four weight rows (row r + 1 is kk + 4 bytes after
 * row r's post-incremented pointer, rows 0/1 via wa, rows 2/3 via wb). */
#define TM_FC_STEP                                    \
  "ldrd   %[xe], %[xo], [%[xp]], #8\n\t"              \
  "ldr    %[t1], [%[wa]], #4\n\t"                     \
  "sxtb16 %[t2], %[t1]\n\t"                           \
  "sxtb16 %[t1], %[t1], ror #8\n\t"                   \
  "smlad  %[a0], %[t2], %[xe], %[a0]\n\t"             \
  "smlad  %[a0], %[t1], %[xo], %[a0]\n\t"             \
  "ldr    %[t1], [%[wa], %[kk]]\n\t"                  \
  "sxtb16 %[t2], %[t1]\n\t"                           \
  "sxtb16 %[t1], %[t1], ror #8\n\t"                   \
  "smlad  %[a1], %[t2], %[xe], %[a1]\n\t"             \
  "smlad  %[a1], %[t1], %[xo], %[a1]\n\t"             \
  "ldr    %[t1], [%[wb]], #4\n\t"                     \
  "sxtb16 %[t2], %[t1]\n\t"                           \
  "sxtb16 %[t1], %[t1], ror #8\n\t"                   \
  "smlad  %[a2], %[t2], %[xe], %[a2]\n\t"             \
  "smlad  %[a2], %[t1], %[xo], %[a2]\n\t"             \
  "ldr    %[t1], [%[wb], %[kk]]\n\t"                  \
  "sxtb16 %[t2], %[t1]\n\t"                           \
  "sxtb16 %[t1], %[t1], ror #8\n\t"                   \
  "smlad  %[a3], %[t2], %[xe], %[a3]\n\t"             \
  "smlad  %[a3], %[t1], %[xo], %[a3]\n\t"

/* acc[r] += row r (r = 0..3, k bytes apart, from w) . widened input x over
 * `groups` groups of 4. Inline asm: C cannot keep the 12 live values in registers.
 * The loop ends on the input pointer reaching xend (read from the stack, which
 * frees the register a counter would take). */
static TM_ALWAYS_INLINE void tm_fc_mac_4x1(const int8_t *w, int32_t k, const uint32_t *x,
                                            int32_t groups, int32_t acc[4]) {
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  const int8_t *wa = w;
  const int8_t *wb = w + 2 * k;
  const int32_t kk = k - 4;
#if defined(__OPTIMIZE__)
  const uint32_t *const xend = x + 2 * groups;
  uint32_t xe, xo, t1, t2;
  if (groups & 1) {
    __asm__ volatile(TM_FC_STEP
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                       [wa] "+r"(wa), [wb] "+r"(wb), [xp] "+r"(x), [xe] "=&r"(xe),
                       [xo] "=&r"(xo), [t1] "=&r"(t1), [t2] "=&r"(t2)
                     : [kk] "r"(kk)
                     : "memory");
  }
  if (groups > 1) {
    __asm__ volatile(
        "1:\n\t"
        TM_FC_STEP
        TM_FC_STEP
        "ldr    %[t1], %[xend]\n\t"
        "cmp    %[xp], %[t1]\n\t"
        "bne    1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [wa] "+r"(wa),
          [wb] "+r"(wb), [xp] "+r"(x), [xe] "=&r"(xe), [xo] "=&r"(xo), [t1] "=&r"(t1),
          [t2] "=&r"(t2)
        : [kk] "r"(kk), [xend] "m"(xend)
        : "cc", "memory");
  }
#else
  /* -O0 keeps every variable in its own stack slot and cannot free 12 registers
   * for the asm: the same sums in C. */
  const int8_t *wc = w + k;
  const int8_t *wd = w + 3 * k;
  (void)kk;
  for (int32_t g = 0; g < groups; ++g, x += 2, wa += 4, wb += 4, wc += 4, wd += 4) {
    const int32_t xe = (int32_t)x[0], xo = (int32_t)x[1];
    uint32_t v = tm_ld4(wa);
    a0 = __smlad(tm_sxtb16_ror8(v), xo, __smlad(__sxtb16((int8x4_t)v), xe, a0));
    v = tm_ld4(wc);
    a1 = __smlad(tm_sxtb16_ror8(v), xo, __smlad(__sxtb16((int8x4_t)v), xe, a1));
    v = tm_ld4(wb);
    a2 = __smlad(tm_sxtb16_ror8(v), xo, __smlad(__sxtb16((int8x4_t)v), xe, a2));
    v = tm_ld4(wd);
    a3 = __smlad(tm_sxtb16_ror8(v), xo, __smlad(__sxtb16((int8x4_t)v), xe, a3));
  }
#endif
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

static TM_ALWAYS_INLINE int8_t tm_fc_out(const tm_fully_connected_s8_params *p, int32_t acc,
                                         int32_t q) {
  const int32_t shift = p->out_shift[q];
  const int32_t mult = p->out_mult[q];
  int32_t v;
  if (__builtin_expect(shift < 0, 1)) {
    uint32_t c_lo;
    int32_t c_hi;
    tm_requantize_right_constants(-(int)shift, &c_lo, &c_hi);
    v = tm_requantize_right(acc, mult, c_lo, c_hi, -(int)shift);
  } else {
    v = tm_requantize_split(acc, mult, (int)shift, 0, 0);
  }
  v += p->output_offset;
  v = v < p->act_min ? p->act_min : v;
  return (int8_t)(v > p->act_max ? p->act_max : v);
}

static void tm_fc_s8_widened(const tm_fully_connected_s8_params *p) {
  const int32_t k = p->accum_depth;
  const int32_t k4 = k & ~3;
  const int32_t groups = k4 >> 2;
  /* Sized to the layer (2 * accum_depth bytes at most), not to TM_FC_MAX_DEPTH. */
  uint32_t xw[groups > 0 ? 2 * groups : 1];
  const int32_t out_depth = p->out_depth;
  const int32_t q_step = p->per_channel ? 1 : 0;
  const int32_t *const ksum = p->kernel_sums;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *const x = p->input + b * k;
    int8_t *const out = p->output + b * out_depth;
    for (int32_t g = 0; g < groups; ++g) {
      const uint32_t raw = tm_ld4(x + 4 * g);
      xw[2 * g] = (uint32_t)__sxtb16((int8x4_t)raw);
      xw[2 * g + 1] = (uint32_t)tm_sxtb16_ror8(raw);
    }
    const int8_t *w = p->filter;
    int32_t oc = 0;
    for (; oc + 3 < out_depth; oc += 4, w += 4 * k) {
      int32_t acc[4] = {ksum[oc], ksum[oc + 1], ksum[oc + 2], ksum[oc + 3]};
      if (__builtin_expect(groups > 0, 1)) {
        tm_fc_mac_4x1(w, k, xw, groups, acc);
      }
      for (int32_t i = k4; i < k; ++i) {
        const int32_t xv = x[i];
        acc[0] += w[i] * xv;
        acc[1] += w[k + i] * xv;
        acc[2] += w[2 * k + i] * xv;
        acc[3] += w[3 * k + i] * xv;
      }
      out[oc] = tm_fc_out(p, acc[0], oc * q_step);
      out[oc + 1] = tm_fc_out(p, acc[1], (oc + 1) * q_step);
      out[oc + 2] = tm_fc_out(p, acc[2], (oc + 2) * q_step);
      out[oc + 3] = tm_fc_out(p, acc[3], (oc + 3) * q_step);
    }
    for (; oc < out_depth; ++oc, w += k) {
      int32_t acc = ksum[oc];
      for (int32_t g = 0; g < groups; ++g) {
        const uint32_t wv = tm_ld4(w + 4 * g);
        acc = __smlad(__sxtb16((int8x4_t)wv), (int32_t)xw[2 * g], acc);
        acc = __smlad(tm_sxtb16_ror8(wv), (int32_t)xw[2 * g + 1], acc);
      }
      for (int32_t i = k4; i < k; ++i) {
        acc += w[i] * x[i];
      }
      out[oc] = tm_fc_out(p, acc, oc * q_step);
    }
  }
}

void tm_fully_connected_s8(const void *params) {
  const tm_fully_connected_s8_params *p = (const tm_fully_connected_s8_params *)params;
  if (__builtin_expect(p->filter_offset != 0, 0)) {
    tm_fully_connected_s8_generic(params);
    return;
  }
  if (__builtin_expect(p->accum_depth <= TM_FC_MAX_DEPTH && p->kernel_sums != 0, 1)) {
    tm_fc_s8_widened(p);
    return;
  }
  tm_fc_s8_blocked(p);
}

#else /* no DSP extension: the reference kernel is the optimized kernel */
#include "../reference/fully_connected.c"
#endif
