/* elementwise kernels: parameter structs and entry points.
 *
 * ADD int8 with TFLM's reference arithmetic (reference_integer_ops::AddFunc):
 *   a = (in1 + input1_offset) << left_shift, b likewise,
 *   a' = MultiplyByQuantizedMultiplierSmallerThanOneExp(a, input1_multiplier, input1_shift)
 *   out = clamp(MBQMSmallerThanOneExp(a' + b', output_multiplier, output_shift)
 *               + output_offset, act_min, act_max)
 * Shifts are <= 0 (right shifts). Broadcasting follows numpy / TFLM
 * (BroadcastAdd6DSlow): the host folds the shapes into at most
 * TM_ADD_MAX_DIMS output dims with per-input element strides, 0 along a
 * broadcast dimension. broadcast == 0 means both inputs have the output's
 * element count and are walked flat. */
#ifndef TM_OPS_ELEMENTWISE_H
#define TM_OPS_ELEMENTWISE_H

#include "tm_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TM_ADD_MAX_DIMS 6

typedef struct {
  const int8_t *input1;
  const int8_t *input2;
  int8_t *output;
  int32_t input1_offset;     /* -input1_zero_point */
  int32_t input2_offset;     /* -input2_zero_point */
  int32_t output_offset;     /* output_zero_point */
  int32_t left_shift;        /* 20 for int8 */
  int32_t input1_multiplier, input1_shift;
  int32_t input2_multiplier, input2_shift;
  int32_t output_multiplier, output_shift;
  int32_t act_min, act_max;
  int32_t size;              /* output elements */
  int32_t broadcast;         /* 0: flat element-wise loop over size */
  int32_t dims[TM_ADD_MAX_DIMS];     /* output shape, leading dims padded with 1 */
  int32_t strides1[TM_ADD_MAX_DIMS]; /* input1 element stride per output dim */
  int32_t strides2[TM_ADD_MAX_DIMS]; /* input2 element stride per output dim */
} tm_add_s8_params;

void tm_add_s8(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_ELEMENTWISE_H */
