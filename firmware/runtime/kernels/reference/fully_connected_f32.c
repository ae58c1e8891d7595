/* FULLY_CONNECTED float reference kernel: TFLM's reference_ops::FullyConnected
 * (float): per output, products added to 0.f in input order, then
 * `total + bias` (0.f without bias) clamped. */
#include "tm_ops_float.h"

void tm_fully_connected_f32(const void *params) {
  const tm_fully_connected_f32_params *p = (const tm_fully_connected_f32_params *)params;
  const int32_t depth = p->accum_depth;
  float *out = p->output;
  for (int32_t b = 0; b < p->batches; ++b) {
    const float *in = p->input + b * depth;
    const float *w = p->filter;
    for (int32_t o = 0; o < p->out_depth; ++o, w += depth) {
      float total = 0.f;
      for (int32_t d = 0; d < depth; ++d) {
        const float prod = in[d] * w[d];
        total += prod;
      }
      const float bias = p->bias ? p->bias[o] : 0.0f;
      *out++ = tm_act_f32(total + bias, p->act_min, p->act_max);
    }
  }
}
