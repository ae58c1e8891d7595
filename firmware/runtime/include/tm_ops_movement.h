/* Data-movement kernels: TRANSPOSE, SLICE, STRIDED_SLICE, SPLIT, SPLIT_V, PACK,
 * UNPACK and the host-folded SHAPE (firmware/lower/movement.py).
 *
 * One kernel, tm_copy_nd, copies elements of any type (1, 2, 4 or 8 bytes)
 * through a list of parts. Each part is an N-d index box walked in row-major
 * order; the host computes, per dim, the element stride on the input side
 * (negative for a reversed STRIDED_SLICE axis) and on the output side, plus
 * start offsets, exactly as TFLM's index arithmetic selects elements, and
 * merges dims that are contiguous on both sides. Values are copied, never
 * converted, so the results are bit-exact for every type. */
#ifndef TM_OPS_MOVEMENT_H
#define TM_OPS_MOVEMENT_H

#include "tm_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TM_COPY_MAX_DIMS 6

typedef struct {
  const void *input;
  void *output;
  int32_t dims[TM_COPY_MAX_DIMS];        /* leading unused dims are 1 */
  int32_t in_strides[TM_COPY_MAX_DIMS];  /* elements; may be negative */
  int32_t out_strides[TM_COPY_MAX_DIMS];
  int32_t in_start;                      /* element offset of the box's first element */
  int32_t out_start;
} tm_copy_part;

typedef struct {
  const tm_copy_part *parts;
  int32_t num_parts;
  int32_t elem_bytes;
} tm_copy_nd_params;

void tm_copy_nd(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_MOVEMENT_H */
