/* MEAN int8 reference kernel: TFLM's reduce_common.cc EvalMeanHelper for int8,
 * the integer reference_ops::QuantizedMeanOrSum (used for every int8 MEAN,
 * equal input/output quantization included). */
#include "tm_fixedpoint.h"
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
    /* TFLM: static_cast<int32_t>(temp_sum - input_zp * (int64)count). */
    const int64_t centred = (int64_t)sum - (int64_t)p->input_zero_point * (int64_t)p->count;
    const int32_t y = tm_multiply_by_quantized_multiplier((int32_t)centred, p->multiplier,
                                                          (int)p->shift) +
                      p->output_zero_point;
    p->output[o] = tm_clamp_s8(y, -128, 127);
    base += tm_mean_s8_step(oidx, p->outer_dims, p->outer_strides);
  }
}
