/* UNIDIRECTIONAL_SEQUENCE_LSTM int8, DSP-optimized (Cortex-M4/M7/M33).
 *
 * The eight gate FCs of a step are where the time goes. Each step widens the input
 * row and the hidden row once into (x0, x2) / (x1, x3) halfword pairs (SXTB16 /
 * SXTB16 ROR #8), shared by the four gates; each FC then runs four weight rows at
 * a time through SMLAD, starting from the host's row sums (bias + offset *
 * sum(row)), so the zero-point offsets never enter the loop. The int32 sums are
 * the reference's exactly (modulo 2^32), and everything after the sums -- TFLM's
 * requantization, the int16 table sigmoid/tanh, the cell and hidden updates -- is
 * the reference code. Weights with a non-zero zero point, rows longer than
 * TM_LSTM_MAX_DEPTH, int16 activations and non-DSP cores use the reference kernel;
 * float32 is the reference kernel. */
#include "tm_fixedpoint.h"
#include "tm_ops_lstm.h"

#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)

#define tm_lstm_s8 tm_lstm_s8_generic
#include "../reference/lstm.c"
#undef tm_lstm_s8

#include <arm_acle.h>

#include "tm_simd.h"

void tm_lstm_s8_generic(const void *params);

/* Longest input or state row widened on the stack (2 KiB each at most). */
#define TM_LSTM_MAX_DEPTH 1024

/* x (k int8) as 2 * (k / 4) words of sign-extended halfword pairs. */
static void tm_lstm_widen(const int8_t *x, int32_t k, uint32_t *xw) {
  for (int32_t g = 0; g < (k >> 2); ++g) {
    const uint32_t raw = tm_ld4(x + 4 * g);
    xw[2 * g] = (uint32_t)__sxtb16((int8x4_t)raw);
    xw[2 * g + 1] = (uint32_t)tm_sxtb16_ror8(raw);
  }
}

/* TFLM's requantization into int16: for a right shift (right = -shift >= 1) the
 * one-SMLAL form of tm_fixedpoint.h with its constants formed once per FC. */
static TM_ALWAYS_INLINE int16_t tm_lstm_out16(int32_t acc, int32_t mult, int32_t shift, int right,
                                              uint32_t c_lo, int32_t c_hi) {
  const int32_t v = right ? tm_requantize_right(acc, mult, c_lo, c_hi, right)
                          : tm_multiply_by_quantized_multiplier(acc, mult, (int)shift);
  return (int16_t)tm_lstm_clamp(v, -32768, 32767);
}

/* out[o] = requant(sums[o] + w[o] . x) for n_out rows of k weights, four rows per
 * pass over the widened x (rows r + 1..3 addressed k bytes apart from row r). */
static void tm_lstm_fc_dsp(const int8_t *w, const int32_t *sums, const uint32_t *xw,
                           const int8_t *x, int32_t k, int32_t n_out, int32_t mult,
                           int32_t shift, int16_t *out) {
  const int32_t groups = k >> 2;
  const int32_t k4 = k & ~3;
  const int right = shift < 0 ? -(int)shift : 0;
  uint32_t c_lo = 0;
  int32_t c_hi = 0;
  if (right) tm_requantize_right_constants(right, &c_lo, &c_hi);
  int32_t o = 0;
  for (; o + 3 < n_out; o += 4) {
    const int8_t *w0 = w + o * k;
    int32_t a0 = sums[o], a1 = sums[o + 1], a2 = sums[o + 2], a3 = sums[o + 3];
    const uint32_t *xp = xw;
    const int8_t *wp = w0;
    for (int32_t g = 0; g < groups; ++g, xp += 2, wp += 4) {
      const int32_t xe = (int32_t)xp[0], xo = (int32_t)xp[1];
      uint32_t v = tm_ld4(wp);
      a0 = __smlad(tm_sxtb16_ror8(v), xo, __smlad(__sxtb16((int8x4_t)v), xe, a0));
      v = tm_ld4(wp + k);
      a1 = __smlad(tm_sxtb16_ror8(v), xo, __smlad(__sxtb16((int8x4_t)v), xe, a1));
      v = tm_ld4(wp + 2 * k);
      a2 = __smlad(tm_sxtb16_ror8(v), xo, __smlad(__sxtb16((int8x4_t)v), xe, a2));
      v = tm_ld4(wp + 3 * k);
      a3 = __smlad(tm_sxtb16_ror8(v), xo, __smlad(__sxtb16((int8x4_t)v), xe, a3));
    }
    for (int32_t i = k4; i < k; ++i) {
      const int32_t xv = x[i];
      a0 += w0[i] * xv;
      a1 += w0[k + i] * xv;
      a2 += w0[2 * k + i] * xv;
      a3 += w0[3 * k + i] * xv;
    }
    out[o] = tm_lstm_out16(a0, mult, shift, right, c_lo, c_hi);
    out[o + 1] = tm_lstm_out16(a1, mult, shift, right, c_lo, c_hi);
    out[o + 2] = tm_lstm_out16(a2, mult, shift, right, c_lo, c_hi);
    out[o + 3] = tm_lstm_out16(a3, mult, shift, right, c_lo, c_hi);
  }
  for (; o < n_out; ++o) {
    const int8_t *w0 = w + o * k;
    int32_t a0 = sums[o];
    for (int32_t g = 0; g < groups; ++g) {
      const uint32_t v0 = tm_ld4(w0 + 4 * g);
      a0 = __smlad(tm_sxtb16_ror8(v0), (int32_t)xw[2 * g + 1],
                   __smlad(__sxtb16((int8x4_t)v0), (int32_t)xw[2 * g], a0));
    }
    for (int32_t i = k4; i < k; ++i) a0 += w0[i] * x[i];
    out[o] = tm_lstm_out16(a0, mult, shift, right, c_lo, c_hi);
  }
}

static void tm_lstm_gate_dsp(const tm_lstm_s8_params *p, int g, const int8_t *x,
                             const uint32_t *xw, const int8_t *h, const uint32_t *hw,
                             int16_t *out, int16_t *tmp, int use_tanh) {
  const int32_t n = p->state_size;
  tm_lstm_fc_dsp(p->w_in[g], p->in_sums[g], xw, x, p->input_size, n, p->in_mult[g],
                 p->in_shift[g], out);
  tm_lstm_fc_dsp(p->w_rec[g], p->rec_sums[g], hw, h, n, n, p->rec_mult[g], p->rec_shift[g], tmp);
  for (int32_t i = 0; i < n; ++i) {
    const int32_t s = tm_lstm_clamp((int32_t)out[i] + tmp[i], -32768, 32767);
    out[i] = use_tanh ? tm_tanh_s16_one(s, 3, 0) : tm_logistic_s16_one(s, 3, 0);
  }
}

static void tm_lstm_step_dsp(const tm_lstm_s8_params *p, const int8_t *x, int8_t *h, int16_t *c,
                             int8_t *y, uint32_t *xw, uint32_t *hw) {
  const int32_t n = p->state_size;
  int16_t *forget = p->scratch, *input = p->scratch + n, *cell_gate = p->scratch + 2 * n;
  int16_t *tmp = p->scratch + 3 * n;
  tm_lstm_widen(x, p->input_size, xw);
  tm_lstm_widen(h, n, hw);
  tm_lstm_gate_dsp(p, TM_GATE_FORGET, x, xw, h, hw, forget, tmp, 0);
  tm_lstm_gate_dsp(p, TM_GATE_INPUT, x, xw, h, hw, input, tmp, 0);
  tm_lstm_gate_dsp(p, TM_GATE_CELL, x, xw, h, hw, cell_gate, tmp, 1);
  tm_lstm_update_s8(p, forget, input, cell_gate, c);
  tm_lstm_gate_dsp(p, TM_GATE_OUTPUT, x, xw, h, hw, input, tmp, 0);
  tm_lstm_hidden_s8(p, c, input, forget, h, y);
}

void tm_lstm_s8(const void *params) {
  const tm_lstm_s8_params *p = (const tm_lstm_s8_params *)params;
  int offsets = 0;
  for (int g = 0; g < 4; ++g) offsets |= p->in_w_offset[g] | p->rec_w_offset[g];
  if (__builtin_expect(p->act16 || offsets != 0 || p->input_size > TM_LSTM_MAX_DEPTH ||
                       p->state_size > TM_LSTM_MAX_DEPTH, 0)) {
    tm_lstm_s8_generic(params);
    return;
  }
  const int32_t n = p->state_size;
  uint32_t xw[p->input_size >= 4 ? 2 * (p->input_size >> 2) : 1];
  uint32_t hw[n >= 4 ? 2 * (n >> 2) : 1];
  tm_lstm_reset_s8(p);
  const int8_t *input = (const int8_t *)p->input;
  int8_t *hidden = (int8_t *)p->hidden, *output = (int8_t *)p->output;
  for (int32_t b = 0; b < p->batch; ++b) {
    for (int32_t t = 0; t < p->time; ++t) {
      const int32_t row = tm_lstm_row(p->time_major, p->batch, p->time, b, t);
      tm_lstm_step_dsp(p, input + row * p->input_size, hidden + b * n, p->cell + b * n,
                       output + row * n, xw, hw);
    }
  }
}

#else /* no DSP extension: the reference kernel is the optimized kernel */
#include "../reference/lstm.c"
#endif
