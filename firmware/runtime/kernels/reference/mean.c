/* MEAN int8 reference kernel: TFLM's reduce_common.cc EvalMeanHelper for int8
 * (reference_ops::Mean<int8_t, int32_t> when input and output share their
 * quantization, reference_ops::QuantizedMeanOrSum otherwise). */
#include "tm_ops_float.h"
#include "tm_ops_misc.h"

static int32_t tm_mean_s8_step(int32_t *idx, const int32_t *dims, const int32_t *strides) {
  int32_t delta = 0;
  for (int32_t d = TM_MEAN_S8_MAX_DIMS - 1; d >= 0; --d) {
    delta += strides[d];
    if (++idx[d] < dims[d]) return delta;
    delta -= strides[d] * dims[d];
    idx[d] = 0;
  }
  return delta;
}

void tm_mean_s8(const void *params) {
  const tm_mean_s8_params *p = (const tm_mean_s8_params *)params;
  int32_t n_out = 1;
  for (int32_t d = 0; d < TM_MEAN_S8_MAX_DIMS; ++d) n_out *= p->outer_dims[d];
  int32_t oidx[TM_MEAN_S8_MAX_DIMS] = {0};
  int32_t base = 0;
  for (int32_t o = 0; o < n_out; ++o) {
    int32_t iidx[TM_MEAN_S8_MAX_DIMS] = {0};
    int32_t off = base;
    int32_t sum = 0;
    for (int32_t k = 0; k < p->count; ++k) {
      sum += p->input[off];
      off += tm_mean_s8_step(iidx, p->inner_dims, p->inner_strides);
    }
    if (!p->requantize) {
      p->output[o] = (int8_t)(sum / p->count);
    } else {
      const float mean = (float)sum / (float)p->count;
      const float scaled = mean * p->scale;
      float r = tm_roundf(scaled + p->bias) + (float)p->output_zero_point;
      r = (127.0f < r) ? 127.0f : r;   /* TfLiteMin(r, 127) */
      r = (r < -128.0f) ? -128.0f : r; /* TfLiteMax(r, -128) */
      p->output[o] = (int8_t)r;
    }
    base += tm_mean_s8_step(oidx, p->outer_dims, p->outer_strides);
  }
}
