/* reshape kernels: parameter structs and entry points.
 *
 * RESHAPE only changes the shape metadata, so on the device it is a byte copy
 * (TFLM copies too unless input and output share memory). The kernel is
 * type-agnostic; it does nothing when the planner aliased both tensors. */
#ifndef TM_OPS_RESHAPE_H
#define TM_OPS_RESHAPE_H

#include "tm_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  const void *input;
  void *output;
  uint32_t bytes;
} tm_reshape_params;

void tm_reshape(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_RESHAPE_H */
