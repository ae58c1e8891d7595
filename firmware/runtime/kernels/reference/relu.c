/* RELU / RELU6 / LEAKY_RELU: int8 through the host-computed table (tm_lut_s8),
 * float32 with TFLM's expressions (ReluFloat, Relu6Float, LeakyRelu). */
#include "tm_ops_activations.h"

void tm_lut_s8(const void *params) {
  const tm_lut_s8_params *p = (const tm_lut_s8_params *)params;
  const int8_t *table = p->table + 128;
  for (int32_t i = 0; i < p->size; ++i) p->output[i] = table[p->input[i]];
}

void tm_relu_f32(const void *params) {
  const tm_relu_f32_params *p = (const tm_relu_f32_params *)params;
  for (int32_t i = 0; i < p->size; ++i) {
    const float v = p->input[i];
    p->output[i] = v < 0.0f ? 0.0f : v;
  }
}

void tm_relu6_f32(const void *params) {
  const tm_relu_f32_params *p = (const tm_relu_f32_params *)params;
  for (int32_t i = 0; i < p->size; ++i) {
    const float v = p->input[i];
    p->output[i] = v > 6.0f ? 6.0f : (v < 0.0f ? 0.0f : v);
  }
}

void tm_leaky_relu_f32(const void *params) {
  const tm_relu_f32_params *p = (const tm_relu_f32_params *)params;
  const float alpha = p->alpha;
  for (int32_t i = 0; i < p->size; ++i) {
    const float v = p->input[i];
    p->output[i] = v > 0.0f ? v : v * alpha;
  }
}
