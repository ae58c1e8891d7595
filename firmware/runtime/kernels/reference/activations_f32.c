/* LOGISTIC / TANH / HARD_SWISH float reference kernels.
 *  - LOGISTIC: TFLM's reference_ops::Logistic: 1 above 16.619047..., exp(x)
 *    below -9, else 1 / (1 + exp(-x));
 *  - TANH: std::tanh (tm_tanhf, within 2 ULP of glibc's tanhf);
 *  - HARD_SWISH: TFLM's reference_ops::HardSwish:
 *    in * std::min(6, std::max(0, in + 3)) / 6, evaluated left to right. */
#include "tm_ops_float.h"

void tm_logistic_f32(const void *params) {
  const tm_unary_f32_params *p = (const tm_unary_f32_params *)params;
  const float cutoff_upper = 16.619047164916992188f;
  const float cutoff_lower = -9.f;
  for (int32_t i = 0; i < p->size; ++i) {
    const float v = p->input[i];
    float r;
    if (v > cutoff_upper) {
      r = 1.0f;
    } else if (v < cutoff_lower) {
      r = tm_expf(v);
    } else {
      r = 1.f / (1.f + tm_expf(-v));
    }
    p->output[i] = r;
  }
}

void tm_tanh_f32(const void *params) {
  const tm_unary_f32_params *p = (const tm_unary_f32_params *)params;
  for (int32_t i = 0; i < p->size; ++i) p->output[i] = tm_tanhf(p->input[i]);
}

void tm_hard_swish_f32(const void *params) {
  const tm_unary_f32_params *p = (const tm_unary_f32_params *)params;
  for (int32_t i = 0; i < p->size; ++i) {
    const float in = p->input[i];
    const float s = in + 3.0f;
    const float relu = (0.0f < s) ? s : 0.0f;    /* std::max(0, in + 3) */
    const float relu6 = (relu < 6.0f) ? relu : 6.0f; /* std::min(6, .)   */
    const float prod = in * relu6;
    p->output[i] = prod / 6.0f;
  }
}
