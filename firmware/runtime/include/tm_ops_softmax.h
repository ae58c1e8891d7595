/* softmax kernels: parameter structs and entry points.
 *
 * SOFTMAX int8 -> int8 over the innermost dimension, TFLM's gemmlowp
 * fixed-point path (reference_ops::Softmax<int8_t, int8_t>): per row, the
 * differences to the row maximum are scaled by input_multiplier /
 * input_left_shift into Q5.26 (PreprocessSoftmaxScaling with
 * kScaledDiffIntegerBits = 5), exponentiated with gemmlowp's
 * exp_on_negative_values, summed in Q12.19, inverted with GetReciprocal and
 * the output written with zero point -128 and scale 1/256 (which TFLM's
 * Prepare requires). Differences below diff_min (-CalculateInputRadius)
 * contribute nothing and output -128. */
#ifndef TM_OPS_SOFTMAX_H
#define TM_OPS_SOFTMAX_H

#include "tm_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  const int8_t *input;      /* [outer_size][depth] */
  int8_t *output;           /* [outer_size][depth] */
  int32_t outer_size;       /* product of all but the last dimension */
  int32_t depth;            /* last dimension */
  int32_t input_multiplier; /* Q31, from PreprocessSoftmaxScaling */
  int32_t input_left_shift; /* >= 0 */
  int32_t diff_min;         /* <= 0 */
} tm_softmax_s8_params;

void tm_softmax_s8(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_SOFTMAX_H */
