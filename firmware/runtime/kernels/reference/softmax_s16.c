/* SOFTMAX int16 reference kernel: TFLM's reference_ops::SoftmaxInt16 with its
 * 513-entry LUT interpolation (LUTLookup). The exp values are cached in the
 * output row, as TFLM does. */
#include "tm_fixedpoint.h"
#include "tm_ops_int16.h"

/* Interpolated LUT lookup: 512 bases over the int16 range, 7 fractional bits. */
static TM_ALWAYS_INLINE int16_t tm_lut16(int16_t value, const int16_t *lut) {
  const uint16_t index = (uint16_t)(256 + (value >> 7));
  const int32_t offset = value & 0x7f;
  const int32_t base = lut[index];
  const int32_t slope = lut[index + 1] - lut[index];
  return (int16_t)(base + ((slope * offset + 64) >> 7));
}

static TM_ALWAYS_INLINE int16_t tm_sat16(int32_t v) {
  return (int16_t)(v < -32768 ? -32768 : (v > 32767 ? 32767 : v));
}

void tm_softmax_s16(const void *params) {
  const tm_softmax_s16_params *p = (const tm_softmax_s16_params *)params;
  for (int32_t i = 0; i < p->outer_size; ++i) {
    const int16_t *in = p->input + i * p->depth;
    int16_t *out = p->output + i * p->depth;
    int16_t max_in_row = INT16_MIN;
    for (int32_t c = 0; c < p->depth; ++c) max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
    int32_t sum = 0;
    for (int32_t c = 0; c < p->depth; ++c) {
      const int32_t diff = (int32_t)in[c] - max_in_row;
      const int32_t scaled = tm_multiply_by_quantized_multiplier(diff, p->input_multiplier,
                                                                 (int)p->input_left_shift);
      out[c] = tm_lut16(tm_sat16(scaled + 32767), p->exp_lut);
      sum += out[c];
    }
    const int32_t headroom_plus_one = __builtin_clz((uint32_t)sum);
    const int32_t shifted = (int32_t)((((int64_t)sum << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
    const int16_t recip =
        tm_lut16(tm_sat16(shifted - ((1 << 15) + (1 << 16))), p->one_over_one_plus_x_lut);
    const int32_t right_shift = 31 - headroom_plus_one;
    const int64_t round = (int64_t)1 << (right_shift - 1);
    for (int32_t c = 0; c < p->depth; ++c) {
      const int32_t r = (int32_t)(((int64_t)out[c] * recip + round) >> right_shift);
      out[c] = (int16_t)(r < 0 ? 0 : (r > 32767 ? 32767 : r));
    }
  }
}
