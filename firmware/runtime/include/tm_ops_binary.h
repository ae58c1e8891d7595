/* SUB / MAXIMUM / MINIMUM, int8 and float32, with numpy broadcasting
 * (firmware/lower/binary.py). SUB int8 uses ADD's parameter struct
 * (tm_add_s8_params: TFLM computes both the same way); the float kernels use
 * tm_binary_f32_params; MAXIMUM/MINIMUM int8 compare stored values. */
#ifndef TM_OPS_BINARY_H
#define TM_OPS_BINARY_H

#include "tm_runtime.h"
#include "tm_ops_elementwise.h"
#include "tm_ops_float.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TM_MINMAX_MAX_DIMS 6

typedef struct {
  const int8_t *input1;
  const int8_t *input2;
  int8_t *output;
  int32_t size;
  int32_t broadcast;
  int32_t dims[TM_MINMAX_MAX_DIMS];
  int32_t strides1[TM_MINMAX_MAX_DIMS];
  int32_t strides2[TM_MINMAX_MAX_DIMS];
} tm_minmax_s8_params;

void tm_sub_s8(const void *params);      /* tm_add_s8_params */
void tm_sub_f32(const void *params);     /* tm_binary_f32_params */
void tm_maximum_s8(const void *params);  /* tm_minmax_s8_params */
void tm_minimum_s8(const void *params);
void tm_maximum_f32(const void *params); /* tm_binary_f32_params */
void tm_minimum_f32(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_BINARY_H */
