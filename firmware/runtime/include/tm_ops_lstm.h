/* UNIDIRECTIONAL_SEQUENCE_LSTM, int8 (int16 cell state, int8 weights, int32 bias),
 * 16x8 (int16 activations, int64 bias) and float32 (firmware/lower/lstm.py; TFLM's lstm_eval: the standard LSTM without
 * peephole, projection or layer norm, which is all TFLM's kernel accepts).
 *
 * Per time step and batch row, in TFLM's order: forget, input and cell gates
 * (each act(FC(x) + FC(h)), the input FC with the gate bias, the recurrent one
 * without), cell = forget * cell + input * cell_gate (clipped when cell_clip > 0),
 * then the output gate, hidden = output_gate * tanh(cell), copied to the output.
 * Rows are independent, so walking batch then time visits the same values as
 * TFLM's time-major batch-wide steps. Hidden and cell state live in the arena for
 * the whole run and carry over between inferences as in TFLM; the int8 hidden state
 * starts at its zero point (set on the first call, *ready flags it done). Gate
 * arrays are indexed in TFLM's tensor order: 0 input, 1 forget, 2 cell, 3 output. */
#ifndef TM_OPS_LSTM_H
#define TM_OPS_LSTM_H

#include "tm_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TM_LSTM_GEOMETRY   \
  int32_t batch;           \
  int32_t time;            \
  int32_t input_size;      \
  int32_t state_size;      \
  int32_t time_major

/* Integer LSTM: int8 activations (tm_lstm_s8: int32 bias, int32 FC sums) or, with
 * act16, int16 activations (tm_lstm_s16, TFLM's 16x8 LSTM: int64 bias and sums,
 * 64-bit requantization). */
typedef struct {
  const void *input;               /* [batch][time][input] or [time][batch][input] */
  void *output;                    /* same layout, [..][state] */
  void *hidden;                    /* [batch][state], variable */
  int16_t *cell;                   /* [batch][state], variable */
  uint8_t *ready;                  /* 0 until the hidden state holds its zero point */
  int16_t *scratch;                /* 4 x state_size */
  int32_t act16;                   /* int16 activations (else int8) */
  const int8_t *w_in[4];           /* [state][input] */
  const int8_t *w_rec[4];          /* [state][state] */
  const void *bias[4];             /* [state], int32 (int8) or int64 (act16) */
  /* Row sums folded with the offsets (optimized kernels; weights with zero point 0):
   * in_sums = bias + input_offset * sum(w_in row), rec_sums = hidden_offset * sum(w_rec row). */
  const int32_t *in_sums[4];
  const int32_t *rec_sums[4];
  int32_t in_mult[4], in_shift[4];   /* input FC -> gate (2^-12) */
  int32_t rec_mult[4], rec_shift[4]; /* recurrent FC -> gate (2^-12) */
  int32_t in_w_offset[4], rec_w_offset[4];
  int32_t input_offset;            /* -input zero point */
  int32_t hidden_offset;           /* -hidden zero point */
  int32_t hidden_zero_point;
  int32_t forget_mult, forget_shift; /* forget gate x cell -> cell */
  int32_t update_mult, update_shift; /* input gate x cell gate -> cell */
  int32_t hidden_mult, hidden_shift; /* output gate x tanh(cell) -> hidden */
  int32_t cell_clip;               /* quantized clip; used when clip is set */
  int32_t clip;
  int32_t tanh_mult, tanh_shift;   /* tanh(cell) input scaling (cell scale 2^-p) */
  TM_LSTM_GEOMETRY;
} tm_lstm_s8_params;

typedef struct {
  const float *input;
  float *output;
  float *hidden;
  float *cell;
  float *scratch;                  /* 4 x state_size */
  const float *w_in[4];
  const float *w_rec[4];
  const float *bias[4];
  float cell_clip;                 /* > 0: clip the cell state to +-cell_clip */
  TM_LSTM_GEOMETRY;
} tm_lstm_f32_params;

void tm_lstm_s8(const void *params);
void tm_lstm_s16(const void *params);
void tm_lstm_f32(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_LSTM_H */
