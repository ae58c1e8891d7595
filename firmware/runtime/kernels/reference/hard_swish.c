/* HARD_SWISH int8 reference kernel: TFLM's reference_ops::HardSwish (quantized),
 * int16 fixed point. The int16 helpers reproduce gemmlowp's int16 overloads
 * and TFLM's SaturatingLeftShift / SaturatingDoublingHighMul, including their
 * int16 wrap-around on conversion. */
#include "tm_ops_misc.h"

static int16_t tm_sat_left_shift_s16(int16_t v, int amount) {
  int64_t r = (int64_t)v * ((int64_t)1 << amount);
  if (r > INT16_MAX) r = INT16_MAX;
  if (r < INT16_MIN) r = INT16_MIN;
  return (int16_t)r;
}

/* gemmlowp SaturatingRoundingDoublingHighMul<int16_t>. */
static int16_t tm_srdhm_s16(int16_t a, int16_t b) {
  if (a == b && a == INT16_MIN) return INT16_MAX;
  const int32_t ab = (int32_t)a * (int32_t)b;
  const int16_t nudge = ab >= 0 ? (int16_t)(1 << 14) : (int16_t)(1 - (1 << 14));
  return (int16_t)((ab + nudge) / (1 << 15));
}

/* TFLM SaturatingDoublingHighMul (truncating). */
static int16_t tm_sdhm_s16(int16_t a, int16_t b) {
  if (a == b && a == INT16_MIN) return INT16_MAX;
  const int32_t ab = (int32_t)a * (int32_t)b;
  return (int16_t)(ab / (1 << 15));
}

/* gemmlowp RoundingDivideByPOT<int16_t>. */
static int16_t tm_rdpot_s16(int16_t x, int exponent) {
  const int16_t mask = (int16_t)((INT64_C(1) << exponent) - 1);
  const int16_t remainder = (int16_t)(x & mask);
  const int16_t threshold = (int16_t)((mask >> 1) + (x < 0 ? 1 : 0));
  return (int16_t)((x >> exponent) + (remainder > threshold ? 1 : 0));
}

void tm_hard_swish_s8(const void *params) {
  const tm_hard_swish_s8_params *p = (const tm_hard_swish_s8_params *)params;
  const int16_t out_mult = (int16_t)p->output_multiplier_fixedpoint_int16;
  const int16_t relu_mult = (int16_t)p->reluish_multiplier_fixedpoint_int16;
  const int relu_exp = (int)p->reluish_multiplier_exponent;
  const int out_exp = (int)p->output_multiplier_exponent;
  for (int32_t i = 0; i < p->size; ++i) {
    const int16_t in_value = (int16_t)((int32_t)p->input[i] - p->input_zero_point);
    const int16_t in_hires = (int16_t)(in_value * (1 << 7));
    const int16_t in_preshift = tm_srdhm_s16(in_hires, out_mult);
    int16_t reluish = in_hires;
    if (relu_exp > 0) reluish = tm_sat_left_shift_s16(reluish, relu_exp - 1);
    reluish = tm_srdhm_s16(reluish, relu_mult);
    if (relu_exp > 0) reluish = tm_sat_left_shift_s16(reluish, 1);
    if (relu_exp < 0) reluish = tm_rdpot_s16(reluish, -relu_exp);
    reluish = (int16_t)(((int32_t)reluish + (1 << 15)) >> 1);
    const int16_t preshift_out = tm_sdhm_s16(reluish, in_preshift);
    int16_t out = tm_rdpot_s16(preshift_out, -out_exp);
    out = (int16_t)(out + p->output_zero_point);
    if (out > 127) out = 127;
    if (out < -128) out = -128;
    p->output[i] = (int8_t)out;
  }
}
