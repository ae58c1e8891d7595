/* SVDF reference kernels: TFLM's EvalIntegerSvdfReference / EvalFloatSvdfReference
 * without the scratch buffers (each unit's rank sum is formed directly; for float
 * in TFLM's order: bias, then each filter's time dot product). */
#include <string.h>

#include "tm_fixedpoint.h"
#include "tm_ops_svdf.h"

void tm_svdf_s8(const void *params) {
  const tm_svdf_s8_params *p = (const tm_svdf_s8_params *)params;
  const int32_t total = p->batch * p->filters * p->memory;
  const int32_t esz = p->state_int16 ? 2 : 1;
  const int32_t lo = p->state_int16 ? -32768 : -128, hi = p->state_int16 ? 32767 : 127;
  uint8_t *state = (uint8_t *)p->state;
  memmove(state, state + esz, (size_t)(total - 1) * (size_t)esz); /* shift left by one */
  for (int32_t b = 0; b < p->batch; ++b) {
    const int8_t *in = p->input + b * p->input_size;
    for (int32_t r = 0; r < p->filters; ++r) {
      const int8_t *w = p->weights_feature + r * p->input_size;
      int32_t dot = 0;
      for (int32_t c = 0; c < p->input_size; ++c) dot += w[c] * (in[c] - p->input_zero_point);
      dot = tm_multiply_by_quantized_multiplier(dot, p->multiplier_1, (int)p->shift_1) +
            p->state_zero_point;
      dot = dot < lo ? lo : (dot > hi ? hi : dot);
      const int32_t at = (b * p->filters + r) * p->memory + p->memory - 1;
      if (p->state_int16) {
        ((int16_t *)state)[at] = (int16_t)dot;
      } else {
        ((int8_t *)state)[at] = (int8_t)dot;
      }
    }
  }
  for (int32_t b = 0; b < p->batch; ++b) {
    for (int32_t u = 0; u < p->units; ++u) {
      int32_t acc = p->bias ? p->bias[u] : 0;
      for (int32_t k = 0; k < p->rank; ++k) {
        const int32_t f = u * p->rank + k;
        const int32_t base = (b * p->filters + f) * p->memory;
        int32_t s = 0;
        for (int32_t j = 0; j < p->memory; ++j) {
          const int32_t wt = p->state_int16 ? ((const int16_t *)p->weights_time)[f * p->memory + j]
                                            : ((const int8_t *)p->weights_time)[f * p->memory + j];
          const int32_t sv = p->state_int16 ? ((const int16_t *)state)[base + j]
                                            : ((const int8_t *)state)[base + j];
          s += wt * (sv - p->state_zero_point);
        }
        acc += s;
      }
      const int32_t v = tm_multiply_by_quantized_multiplier(acc, p->multiplier_2, (int)p->shift_2) +
                        p->output_zero_point;
      p->output[b * p->units + u] = tm_clamp_s8(v, -128, 127);
    }
  }
}

static float tm_svdf_act(int32_t act, float x) {
  switch (act) {
    case 1: return (0.0f < x) ? x : 0.0f;                  /* std::max(0.f, x) */
    case 2: {                                              /* max(-1, min(x, 1)) */
      const float m = (1.0f < x) ? 1.0f : x;
      return (-1.0f < m) ? m : -1.0f;
    }
    case 3: {                                              /* max(0, min(x, 6)) */
      const float m = (6.0f < x) ? 6.0f : x;
      return (0.0f < m) ? m : 0.0f;
    }
    default: return x;
  }
}

void tm_svdf_f32(const void *params) {
  const tm_svdf_f32_params *p = (const tm_svdf_f32_params *)params;
  const int32_t total = p->batch * p->filters * p->memory;
  memmove(p->state, p->state + 1, (size_t)(total - 1) * sizeof(float));
  for (int32_t b = 0; b < p->batch; ++b) {
    const float *in = p->input + b * p->input_size;
    for (int32_t r = 0; r < p->filters; ++r) {
      const float *w = p->weights_feature + r * p->input_size;
      float dot = 0.0f;
      for (int32_t c = 0; c < p->input_size; ++c) dot += w[c] * in[c];
      p->state[(b * p->filters + r) * p->memory + p->memory - 1] = dot;
    }
  }
  for (int32_t b = 0; b < p->batch; ++b) {
    for (int32_t u = 0; u < p->units; ++u) {
      float acc = p->bias ? p->bias[u] : 0.0f;
      for (int32_t k = 0; k < p->rank; ++k) {
        const int32_t f = u * p->rank + k;
        const float *s = p->state + (b * p->filters + f) * p->memory;
        const float *wt = p->weights_time + f * p->memory;
        float d = 0.0f;
        for (int32_t j = 0; j < p->memory; ++j) d += wt[j] * s[j];
        acc += d;
      }
      p->output[b * p->units + u] = tm_svdf_act(p->activation, acc);
    }
  }
}
