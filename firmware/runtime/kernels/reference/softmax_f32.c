/* SOFTMAX float reference kernel: TFLM's reference_ops::Softmax (float). Per
 * row: max from -FLT_MAX with std::max, exp((x - max) * beta) stored in the
 * output and summed in order, then each divided by the sum. */
#include "tm_ops_float.h"

void tm_softmax_f32(const void *params) {
  const tm_softmax_f32_params *p = (const tm_softmax_f32_params *)params;
  const int32_t depth = p->depth;
  const float beta = p->beta;
  for (int32_t i = 0; i < p->outer_size; ++i) {
    const float *in = p->input + i * depth;
    float *out = p->output + i * depth;
    float max = -3.40282346638528859812e+38f;
    for (int32_t c = 0; c < depth; ++c) {
      max = (max < in[c]) ? in[c] : max;
    }
    float sum = 0.f;
    for (int32_t c = 0; c < depth; ++c) {
      const float e = tm_expf((in[c] - max) * beta);
      out[c] = e;
      sum += e;
    }
    for (int32_t c = 0; c < depth; ++c) {
      out[c] = out[c] / sum;
    }
  }
}
