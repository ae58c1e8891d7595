/* GATHER and ARG_MAX / ARG_MIN (firmware/lower/indexing.py). */
#ifndef TM_OPS_INDEXING_H
#define TM_OPS_INDEXING_H

#include "tm_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* GATHER (TFLM gather.cc): for batch, outer, coord: copy inner_bytes from
 * input block ((batch * outer_size + outer) * axis_size + pos) to output block
 * ((batch * outer_size + outer) * coord_size + coord), pos =
 * positions[batch * coord_size + coord] clamped into [0, axis_size) (TFLM
 * fails the inference instead). */
typedef struct {
  const void *input;
  const int32_t *positions;
  void *output;
  int32_t batch_size, outer_size, coord_size, axis_size;
  int32_t inner_bytes;
} tm_gather_params;

/* ARG_MAX / ARG_MIN over the middle axis of (outer, axis, inner); the first
 * index of the extreme value wins (TFLM updates only on a strict compare). */
typedef struct {
  const int8_t *input;
  int32_t *output;
  int32_t outer_size, axis_size, inner_size;
} tm_arg_minmax_s8_params;

typedef struct {
  const float *input;
  int32_t *output;
  int32_t outer_size, axis_size, inner_size;
} tm_arg_minmax_f32_params;

void tm_gather(const void *params);
void tm_arg_max_s8(const void *params);
void tm_arg_min_s8(const void *params);
void tm_arg_max_f32(const void *params);
void tm_arg_min_f32(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_INDEXING_H */
