/* FULLY_CONNECTED int8 reference kernel: the arithmetic of TFLM's
 * reference_integer_ops::FullyConnected (per-tensor, with weights offset) and
 * FullyConnectedPerChannel. The common case (symmetric weights) runs a loop
 * without the weights offset add; both compute identical sums. */
#include "tm_fixedpoint.h"
#include "tm_ops_conv.h"

void tm_fully_connected_s8(const void *params) {
  const tm_fully_connected_s8_params *p = (const tm_fully_connected_s8_params *)params;
  const int8_t *const input = p->input;
  const int8_t *const filter = p->filter;
  const int32_t *const bias = p->bias;
  const int32_t *const mult = p->out_mult;
  const int32_t *const shift = p->out_shift;
  int8_t *restrict out = p->output;

  const int32_t input_offset = p->input_offset;
  const int32_t filter_offset = p->filter_offset;
  const int32_t output_offset = p->output_offset;
  const int32_t act_min = p->act_min;
  const int32_t act_max = p->act_max;
  const int32_t accum_depth = p->accum_depth;
  const int32_t out_depth = p->out_depth;
  /* Per-tensor quantization reuses element 0 for every channel. */
  const int32_t q_step = p->per_channel ? 1 : 0;

  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *restrict in_b = input + b * accum_depth;
    const int8_t *restrict fp = filter;
    for (int32_t oc = 0; oc < out_depth; ++oc) {
      int32_t acc = 0;
      if (filter_offset == 0) {
        for (int32_t d = 0; d < accum_depth; ++d) {
          acc += (int32_t)fp[d] * ((int32_t)in_b[d] + input_offset);
        }
      } else {
        for (int32_t d = 0; d < accum_depth; ++d) {
          acc += ((int32_t)fp[d] + filter_offset) * ((int32_t)in_b[d] + input_offset);
        }
      }
      fp += accum_depth;
      if (bias) {
        acc += bias[oc];
      }
      const int32_t q = oc * q_step;
      acc = tm_multiply_by_quantized_multiplier(acc, mult[q], (int)shift[q]);
      acc += output_offset;
      *out++ = tm_clamp_s8(acc, act_min, act_max);
    }
  }
}
