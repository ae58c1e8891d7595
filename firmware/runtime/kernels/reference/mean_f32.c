/* MEAN float reference kernel: TFLM's reference_ops::Mean (float). TFLM adds
 * every input element, in the input's row-major order, into its output slot
 * (initialised to 0) and divides by the element count as float. Per output
 * element that is the sum, from 0, of its inputs in row-major order of the
 * reduced coordinates, which is what the nested odometer below visits. */
#include "tm_ops_float.h"

/* Advance a TM_MEAN_MAX_DIMS-digit odometer; returns the change of the input offset. */
static int32_t tm_mean_step(int32_t *idx, const int32_t *dims, const int32_t *strides) {
  int32_t delta = 0;
  for (int32_t d = TM_MEAN_MAX_DIMS - 1; d >= 0; --d) {
    delta += strides[d];
    if (++idx[d] < dims[d]) return delta;
    delta -= strides[d] * dims[d];
    idx[d] = 0;
  }
  return delta;
}

void tm_mean_f32(const void *params) {
  const tm_mean_f32_params *p = (const tm_mean_f32_params *)params;
  int32_t n_out = 1;
  for (int32_t d = 0; d < TM_MEAN_MAX_DIMS; ++d) n_out *= p->outer_dims[d];
  int32_t oidx[TM_MEAN_MAX_DIMS] = {0};
  int32_t base = 0;
  const float count = (float)p->count;
  for (int32_t o = 0; o < n_out; ++o) {
    int32_t iidx[TM_MEAN_MAX_DIMS] = {0};
    int32_t off = base;
    float sum = 0.f;
    for (int32_t k = 0; k < p->count; ++k) {
      sum += p->input[off];
      off += tm_mean_step(iidx, p->inner_dims, p->inner_strides);
    }
    p->output[o] = sum / count;
    base += tm_mean_step(oidx, p->outer_dims, p->outer_strides);
  }
}
