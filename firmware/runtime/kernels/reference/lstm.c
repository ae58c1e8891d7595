/* UNIDIRECTIONAL_SEQUENCE_LSTM reference kernels: TFLM's lstm_eval (LstmStep /
 * CalculateLstmGate / UpdateLstmCell / UpdateLstmHidden) for int8 and int16
 * activations with an int16 cell state, and for float32; one batch row at a time
 * (see tm_ops_lstm.h). */
#include <string.h>

#include "tm_fixedpoint.h"
#include "tm_ops_float.h"
#include "tm_ops_lstm.h"
#include "tm_sigmoid_s16.h"

enum { TM_GATE_INPUT = 0, TM_GATE_FORGET = 1, TM_GATE_CELL = 2, TM_GATE_OUTPUT = 3 };

static TM_ALWAYS_INLINE int32_t tm_lstm_clamp(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/* reference_integer_ops::FullyConnected into int16 (output offset 0, clamp to
 * int16): int8 x (int32 sums and bias, 32-bit requantization) or, act16, int16 x
 * (int64 sums and bias, TFLM's 64-bit requantization). */
static void tm_lstm_fc_q(int32_t act16, const void *x, int32_t x_offset, const int8_t *w,
                         int32_t w_offset, const void *bias, int32_t n_in, int32_t n_out,
                         int32_t mult, int32_t shift, int16_t *out) {
  for (int32_t o = 0; o < n_out; ++o) {
    const int8_t *row = w + o * n_in;
    int32_t v;
    if (act16) {
      const int16_t *x16 = (const int16_t *)x;
      int64_t acc = 0;
      for (int32_t d = 0; d < n_in; ++d) acc += (row[d] + w_offset) * (x16[d] + x_offset);
      if (bias) acc += ((const int64_t *)bias)[o];
      v = tm_multiply_by_quantized_multiplier_s64(acc, mult, shift);
    } else {
      const int8_t *x8 = (const int8_t *)x;
      int32_t acc = 0;
      for (int32_t d = 0; d < n_in; ++d) acc += (row[d] + w_offset) * (x8[d] + x_offset);
      if (bias) acc += ((const int32_t *)bias)[o];
      v = tm_multiply_by_quantized_multiplier(acc, mult, (int)shift);
    }
    out[o] = (int16_t)tm_lstm_clamp(v, -32768, 32767);
  }
}

/* act(FC(x) + FC(h)) into out (tmp: the recurrent FC's buffer). The gate input
 * has scale 2^-12, which makes TFLM's int16 sigmoid and tanh take multiplier 3. */
static void tm_lstm_gate_s8(const tm_lstm_s8_params *p, int g, const void *x, const void *h,
                            int16_t *out, int16_t *tmp, int use_tanh) {
  const int32_t n = p->state_size;
  tm_lstm_fc_q(p->act16, x, p->input_offset, p->w_in[g], p->in_w_offset[g], p->bias[g],
               p->input_size, n, p->in_mult[g], p->in_shift[g], out);
  tm_lstm_fc_q(p->act16, h, p->hidden_offset, p->w_rec[g], p->rec_w_offset[g], 0, n, n,
               p->rec_mult[g], p->rec_shift[g], tmp);
  for (int32_t i = 0; i < n; ++i) {
    const int32_t s = tm_lstm_clamp((int32_t)out[i] + tmp[i], -32768, 32767);
    out[i] = use_tanh ? tm_tanh_s16_one(s, 3, 0) : tm_logistic_s16_one(s, 3, 0);
  }
}

/* reference_integer_ops::MulElementwise on int16 inputs (offsets 0). */
static TM_ALWAYS_INLINE int32_t tm_lstm_mul(int32_t a, int32_t b, int32_t mult, int32_t shift) {
  return tm_multiply_by_quantized_multiplier(a * b, mult, (int)shift);
}

/* Cell update (forget * cell + input * cell_gate, clipped) and the new hidden row
 * (output_gate * tanh(cell)) from the gate buffers; the output gate's buffer is
 * passed in, tanh(cell) reuses the forget gate's buffer as TFLM does. */
static void tm_lstm_update_s8(const tm_lstm_s8_params *p, int16_t *forget, int16_t *input,
                              const int16_t *cell_gate, int16_t *c) {
  for (int32_t i = 0; i < p->state_size; ++i) {
    const int32_t kept = tm_lstm_clamp(tm_lstm_mul(forget[i], c[i], p->forget_mult, p->forget_shift),
                                       -32768, 32767);
    const int32_t added = tm_lstm_clamp(
        tm_lstm_mul(input[i], cell_gate[i], p->update_mult, p->update_shift), -32768, 32767);
    int32_t v = tm_lstm_clamp(kept + added, -32768, 32767);
    if (p->clip) v = tm_lstm_clamp(v, -p->cell_clip, p->cell_clip);
    c[i] = (int16_t)v;
  }
}

static void tm_lstm_hidden_s8(const tm_lstm_s8_params *p, const int16_t *c, const int16_t *out_gate,
                              int16_t *tanh_cell, void *h, void *y) {
  const int32_t n = p->state_size;
  for (int32_t i = 0; i < n; ++i) {
    tanh_cell[i] = tm_tanh_s16_one(c[i], p->tanh_mult, p->tanh_shift);
    const int32_t v = p->hidden_zero_point +
                      tm_lstm_mul(tanh_cell[i], out_gate[i], p->hidden_mult, p->hidden_shift);
    if (p->act16) {
      ((int16_t *)h)[i] = (int16_t)tm_lstm_clamp(v, -32768, 32767);
    } else {
      ((int8_t *)h)[i] = (int8_t)tm_lstm_clamp(v, -128, 127);
    }
  }
  memcpy(y, h, (size_t)n * (p->act16 ? 2u : 1u));
}

static void tm_lstm_step_s8(const tm_lstm_s8_params *p, const void *x, void *h, int16_t *c,
                            void *y) {
  const int32_t n = p->state_size;
  int16_t *forget = p->scratch, *input = p->scratch + n, *cell_gate = p->scratch + 2 * n;
  int16_t *tmp = p->scratch + 3 * n;
  tm_lstm_gate_s8(p, TM_GATE_FORGET, x, h, forget, tmp, 0);
  tm_lstm_gate_s8(p, TM_GATE_INPUT, x, h, input, tmp, 0);
  tm_lstm_gate_s8(p, TM_GATE_CELL, x, h, cell_gate, tmp, 1);
  tm_lstm_update_s8(p, forget, input, cell_gate, c);
  tm_lstm_gate_s8(p, TM_GATE_OUTPUT, x, h, input, tmp, 0);
  tm_lstm_hidden_s8(p, c, input, forget, h, y);
}

/* Row of (batch b, step t) in the input/output tensors. */
static TM_ALWAYS_INLINE int32_t tm_lstm_row(int32_t time_major, int32_t batch, int32_t time,
                                            int32_t b, int32_t t) {
  return time_major ? t * batch + b : b * time + t;
}

/* TFLM's AllocateTensors resets int8 variables to their zero point (others to 0,
 * which the zeroed arena already holds). */
static void tm_lstm_reset_s8(const tm_lstm_s8_params *p) {
  if (!*p->ready) {
    if (!p->act16) memset(p->hidden, p->hidden_zero_point, (size_t)(p->batch * p->state_size));
    *p->ready = 1u;
  }
}

void tm_lstm_s8(const void *params) {
  const tm_lstm_s8_params *p = (const tm_lstm_s8_params *)params;
  const int32_t n = p->state_size;
  const int32_t es = p->act16 ? 2 : 1;
  tm_lstm_reset_s8(p);
  for (int32_t b = 0; b < p->batch; ++b) {
    for (int32_t t = 0; t < p->time; ++t) {
      const int32_t row = tm_lstm_row(p->time_major, p->batch, p->time, b, t);
      tm_lstm_step_s8(p, (const uint8_t *)p->input + row * p->input_size * es,
                      (uint8_t *)p->hidden + b * n * es, p->cell + b * n,
                      (uint8_t *)p->output + row * n * es);
    }
  }
}

/* 16x8: the same kernel with act16 set (a separate name for reports). */
void tm_lstm_s16(const void *params) { tm_lstm_s8(params); }

/* ------------------------------------------------------------------ float32 */

/* ActivationFunctionWithMinMax(x, -FLT_MAX, FLT_MAX) with std::max / std::min. */
static TM_ALWAYS_INLINE float tm_lstm_clamp_f32(float x) {
  const float lo = -3.40282346638528859812e+38f, hi = 3.40282346638528859812e+38f;
  const float m = (x < lo) ? lo : x;
  return (hi < m) ? hi : m;
}

/* reference_ops::Logistic (float) with its cutoffs. */
static TM_ALWAYS_INLINE float tm_lstm_sigmoid_f32(float v) {
  if (v > 16.619047164916992188f) return 1.0f;
  if (v < -9.f) return tm_expf(v);
  return 1.f / (1.f + tm_expf(-v));
}

static void tm_lstm_fc_f32(const float *x, const float *w, const float *bias, int32_t n_in,
                           int32_t n_out, float *out) {
  for (int32_t o = 0; o < n_out; ++o) {
    const float *row = w + o * n_in;
    float total = 0.f;
    for (int32_t d = 0; d < n_in; ++d) total += x[d] * row[d];
    out[o] = tm_lstm_clamp_f32(total + (bias ? bias[o] : 0.0f));
  }
}

static void tm_lstm_gate_f32(const tm_lstm_f32_params *p, int g, const float *x, const float *h,
                             float *out, float *tmp, int use_tanh) {
  const int32_t n = p->state_size;
  tm_lstm_fc_f32(x, p->w_in[g], p->bias[g], p->input_size, n, out);
  tm_lstm_fc_f32(h, p->w_rec[g], 0, n, n, tmp);
  for (int32_t i = 0; i < n; ++i) {
    const float s = out[i] + tmp[i];
    out[i] = use_tanh ? tm_tanhf(s) : tm_lstm_sigmoid_f32(s);
  }
}

static void tm_lstm_step_f32(const tm_lstm_f32_params *p, const float *x, float *h, float *c,
                             float *y) {
  const int32_t n = p->state_size;
  float *forget = p->scratch, *input = p->scratch + n, *cell_gate = p->scratch + 2 * n;
  float *tmp = p->scratch + 3 * n;
  tm_lstm_gate_f32(p, TM_GATE_FORGET, x, h, forget, tmp, 0);
  tm_lstm_gate_f32(p, TM_GATE_INPUT, x, h, input, tmp, 0);
  tm_lstm_gate_f32(p, TM_GATE_CELL, x, h, cell_gate, tmp, 1);
  const float clip = p->cell_clip;
  for (int32_t i = 0; i < n; ++i) {
    float v = tm_lstm_clamp_f32(forget[i] * c[i]) + tm_lstm_clamp_f32(input[i] * cell_gate[i]);
    if (clip > 0.0f) {
      const float m = (v < clip) ? v : clip;
      v = (m < -clip) ? -clip : m;
    }
    c[i] = v;
  }
  tm_lstm_gate_f32(p, TM_GATE_OUTPUT, x, h, input, tmp, 0);
  for (int32_t i = 0; i < n; ++i) h[i] = tm_lstm_clamp_f32(tm_tanhf(c[i]) * input[i]);
  memcpy(y, h, (size_t)n * sizeof(float));
}

void tm_lstm_f32(const void *params) {
  const tm_lstm_f32_params *p = (const tm_lstm_f32_params *)params;
  const int32_t n = p->state_size;
  for (int32_t b = 0; b < p->batch; ++b) {
    for (int32_t t = 0; t < p->time; ++t) {
      const int32_t row = tm_lstm_row(p->time_major, p->batch, p->time, b, t);
      tm_lstm_step_f32(p, p->input + row * p->input_size, p->hidden + b * n, p->cell + b * n,
                       p->output + row * n);
    }
  }
}
