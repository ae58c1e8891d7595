/* Quantization-boundary, data-movement and int8 element-wise kernels:
 * QUANTIZE, DEQUANTIZE, CONCATENATION, PAD, MEAN, MUL, LOGISTIC, TANH,
 * HARD_SWISH. Every integer parameter is derived on the host exactly as TFLM's
 * Prepare derives it (firmware/lower/misc.py); the kernels run TFLM's
 * reference arithmetic. */
#ifndef TM_OPS_MISC_H
#define TM_OPS_MISC_H

#include "tm_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* QUANTIZE float -> int8 (reference_ops::AffineQuantize):
 * clamp(round(x / scale) + zero_point), the division in float. */
typedef struct {
  const float *input;
  int8_t *output;
  int32_t size;
  float scale;
  int32_t zero_point;
} tm_quantize_f32_s8_params;

/* QUANTIZE int8 -> int8 (reference_ops::Requantize):
 * clamp(MultiplyByQuantizedMultiplier(x - input_zp, mult, shift) + output_zp). */
typedef struct {
  const int8_t *input;
  int8_t *output;
  int32_t size;
  int32_t input_zero_point;
  int32_t output_zero_point;
  int32_t multiplier;
  int32_t shift;
} tm_requantize_s8_params;

/* DEQUANTIZE int8 -> float (reference_ops::Dequantize): scale * (float)(x - zp). */
typedef struct {
  const int8_t *input;
  float *output;
  int32_t size;
  float scale;
  int32_t zero_point;
} tm_dequantize_s8_f32_params;

#define TM_CONCAT_MAX_INPUTS 10

/* CONCATENATION of any element type (reference_ops::Concatenation): for each of
 * `outer` slices, copy every input's slice of copy_bytes[i] bytes in turn. TFLM
 * copies int8 data unchanged too, whatever the input quantizations. */
typedef struct {
  const void *inputs[TM_CONCAT_MAX_INPUTS];
  uint32_t copy_bytes[TM_CONCAT_MAX_INPUTS];
  int32_t num_inputs;
  int32_t outer;
  void *output;
} tm_concat_params;

#define TM_PAD_MAX_DIMS 5

/* PAD / PADV2 with a constant value for 1-, 2- or 4-byte elements
 * (reference_ops::Pad over shapes extended to 5 dims). pad_value holds the
 * element's bytes (little-endian). */
typedef struct {
  const void *input;
  void *output;
  int32_t elem_bytes;
  int32_t out_dims[TM_PAD_MAX_DIMS];
  int32_t left[TM_PAD_MAX_DIMS];
  int32_t right[TM_PAD_MAX_DIMS];
  uint32_t pad_value;
} tm_pad_params;

#define TM_MEAN_S8_MAX_DIMS 5

/* MEAN int8 (reduce_common.cc EvalMeanHelper -> integer QuantizedMeanOrSum):
 * the int32 sum of each output's inputs, then
 *   clamp(MBQM(sum - input_zp * count, multiplier, shift) + output_zp)
 * where the host folded 1/count into QuantizeMultiplier(in_scale / out_scale).
 * The walk is the same as tm_mean_f32. */
typedef struct {
  const int8_t *input;
  int8_t *output;
  int32_t outer_dims[TM_MEAN_S8_MAX_DIMS];
  int32_t outer_strides[TM_MEAN_S8_MAX_DIMS];
  int32_t inner_dims[TM_MEAN_S8_MAX_DIMS];
  int32_t inner_strides[TM_MEAN_S8_MAX_DIMS];
  int32_t count;
  int32_t input_zero_point;
  int32_t multiplier;
  int32_t shift;
  int32_t output_zero_point;
} tm_mean_s8_params;

#define TM_MUL_MAX_DIMS 6

/* MUL int8 (reference_integer_ops::Mul / BroadcastMul4DSlow):
 * clamp(output_offset + MBQM((a + input1_offset) * (b + input2_offset), mult, shift)).
 * Broadcast walk as tm_add_s8. */
typedef struct {
  const int8_t *input1;
  const int8_t *input2;
  int8_t *output;
  int32_t input1_offset;
  int32_t input2_offset;
  int32_t output_offset;
  int32_t output_multiplier;
  int32_t output_shift;
  int32_t act_min, act_max;
  int32_t size;
  int32_t broadcast;
  int32_t dims[TM_MUL_MAX_DIMS];
  int32_t strides1[TM_MUL_MAX_DIMS];
  int32_t strides2[TM_MUL_MAX_DIMS];
} tm_mul_s8_params;

/* LOGISTIC / TANH int8 (reference_integer_ops::Logistic / Tanh): inputs beyond
 * +-input_range_radius saturate, the rest are rescaled to Q4.27 and evaluated
 * with gemmlowp's fixed-point logistic / tanh. Output quantization is the one
 * TFLM assumes: logistic 1/256 with zero point -128, tanh 1/128 with 0. */
typedef struct {
  const int8_t *input;
  int8_t *output;
  int32_t size;
  int32_t input_zero_point;
  int32_t input_range_radius;
  int32_t input_multiplier;
  int32_t input_left_shift;
} tm_sigmoid_s8_params;

/* HARD_SWISH int8 (reference_ops::HardSwish, quantized) in int16 fixed point. */
typedef struct {
  const int8_t *input;
  int8_t *output;
  int32_t size;
  int32_t input_zero_point;
  int32_t output_zero_point;
  int32_t output_multiplier_fixedpoint_int16;
  int32_t output_multiplier_exponent;
  int32_t reluish_multiplier_fixedpoint_int16;
  int32_t reluish_multiplier_exponent;
} tm_hard_swish_s8_params;

void tm_quantize_f32_s8(const void *params);
void tm_requantize_s8(const void *params);
void tm_dequantize_s8_f32(const void *params);
void tm_concat(const void *params);
void tm_pad(const void *params);
void tm_mean_s8(const void *params);
void tm_mul_s8(const void *params);
void tm_logistic_s8(const void *params);
void tm_tanh_s8(const void *params);
void tm_hard_swish_s8(const void *params);

#ifdef __cplusplus
}
#endif

#endif /* TM_OPS_MISC_H */
