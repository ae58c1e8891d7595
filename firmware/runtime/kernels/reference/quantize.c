/* QUANTIZE (float -> int8, int8 -> int8) and DEQUANTIZE (int8 -> float)
 * reference kernels: TFLM's reference_ops::AffineQuantize, Requantize and
 * Dequantize. */
#include "tm_fixedpoint.h"
#include "tm_ops_float.h"
#include "tm_ops_misc.h"

void tm_quantize_f32_s8(const void *params) {
  const tm_quantize_f32_s8_params *p = (const tm_quantize_f32_s8_params *)params;
  for (int32_t i = 0; i < p->size; ++i) {
    const float r = tm_roundf(p->input[i] / p->scale);
    /* static_cast<int32_t> of an out-of-range float is undefined in C++; TFLM's
     * x86 build yields INT32_MIN (cvttss2si), reproduced here, and the
     * zero-point add then wraps like the x86 integer add. */
    int32_t q = INT32_MIN;
    if (r < 2147483648.0f && r >= -2147483648.0f) {
      q = (int32_t)r;
    }
    q = (int32_t)((uint32_t)q + (uint32_t)p->zero_point);
    p->output[i] = tm_clamp_s8(q, -128, 127);
  }
}

void tm_requantize_s8(const void *params) {
  const tm_requantize_s8_params *p = (const tm_requantize_s8_params *)params;
  for (int32_t i = 0; i < p->size; ++i) {
    const int32_t x = (int32_t)p->input[i] - p->input_zero_point;
    const int32_t y = tm_multiply_by_quantized_multiplier(x, p->multiplier, (int)p->shift) +
                      p->output_zero_point;
    p->output[i] = tm_clamp_s8(y, -128, 127);
  }
}

void tm_dequantize_s8_f32(const void *params) {
  const tm_dequantize_s8_f32_params *p = (const tm_dequantize_s8_f32_params *)params;
  for (int32_t i = 0; i < p->size; ++i) {
    p->output[i] = p->scale * (float)((int32_t)p->input[i] - p->zero_point);
  }
}
