/* QUANTIZE / DEQUANTIZE with int16 (TFLM reference_ops::AffineQuantize,
 * Requantize, Dequantize). */
#include "tm_fixedpoint.h"
#include "tm_ops_float.h"
#include "tm_ops_int16.h"

void tm_quantize_f32_s16(const void *params) {
  const tm_quantize_f32_s16_params *p = (const tm_quantize_f32_s16_params *)params;
  for (int32_t i = 0; i < p->size; ++i) {
    const float r = tm_roundf(p->input[i] / p->scale);
    int32_t q = INT32_MIN; /* x86 cvttss2si of an out-of-range value, as TFLM's host */
    if (r < 2147483648.0f && r >= -2147483648.0f) q = (int32_t)r;
    q = (int32_t)((uint32_t)q + (uint32_t)p->zero_point);
    p->output[i] = (int16_t)(q < -32768 ? -32768 : (q > 32767 ? 32767 : q));
  }
}

void tm_requantize_int(const void *params) {
  const tm_requantize_int_params *p = (const tm_requantize_int_params *)params;
  for (int32_t i = 0; i < p->size; ++i) {
    const int32_t x = p->in_bytes == 2 ? ((const int16_t *)p->input)[i]
                                       : ((const int8_t *)p->input)[i];
    int32_t y = tm_multiply_by_quantized_multiplier(x - p->input_zero_point, p->multiplier,
                                                    (int)p->shift) + p->output_zero_point;
    y = y < p->out_min ? p->out_min : (y > p->out_max ? p->out_max : y);
    if (p->out_bytes == 2) {
      ((int16_t *)p->output)[i] = (int16_t)y;
    } else {
      ((int8_t *)p->output)[i] = (int8_t)y;
    }
  }
}

void tm_dequantize_s16_f32(const void *params) {
  const tm_dequantize_s16_f32_params *p = (const tm_dequantize_s16_f32_params *)params;
  for (int32_t i = 0; i < p->size; ++i) {
    p->output[i] = p->scale * (float)((int32_t)p->input[i] - p->zero_point);
  }
}
