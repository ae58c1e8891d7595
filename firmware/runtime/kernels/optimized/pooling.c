/* AVERAGE_POOL_2D / MAX_POOL_2D int8, DSP-optimized (Cortex-M4/M7/M33).
 *
 * Four channels per 32-bit word:
 *  - max pool: SSUB8 sets the GE flag of every byte lane where a >= b, SEL
 *    then picks the larger byte, so one tap costs a load and two DSP ops for
 *    four channels; the activation clamp is the same max/min against packed
 *    bounds.
 *  - average pool: SXTAB16 adds the sign-extended even / odd bytes into two
 *    pairs of 16-bit lane sums. 16-bit lanes are exact while a window has at
 *    most 256 taps (|sum| <= 256 * 128); larger windows use the reference
 *    arithmetic. The division by the tap count becomes a multiply by a
 *    per-window reciprocal m = floor(2^32 / count) + 1, which equals C's
 *    truncating division for numerators below 2^32 / count^2 >= 65536 (here
 *    |sum| + count/2 <= 32896), so results are those of TFLM's
 *    (sum +- count/2) / count.
 * Results are bit-identical to the reference kernels; channel tails (< 4) use
 * the reference per-channel arithmetic. */
#include "tm_fixedpoint.h"
#include "tm_ops_pool.h"

#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)

#define tm_avgpool_s8 tm_avgpool_s8_generic
#define tm_maxpool_s8 tm_maxpool_s8_generic
#include "../reference/pooling.c"
#undef tm_avgpool_s8
#undef tm_maxpool_s8

#include "tm_simd.h"

void tm_avgpool_s8_generic(const void *params);
void tm_maxpool_s8_generic(const void *params);

/* TFLM's rounded average of one lane sum, via the window reciprocal. */
static TM_ALWAYS_INLINE int8_t tm_avg_lane(int32_t s, uint32_t half, uint32_t recip,
                                          int32_t lo, int32_t hi) {
  const uint32_t mag = (uint32_t)(s < 0 ? -s : s) + half;
  const int32_t q = (int32_t)(((uint64_t)mag * recip) >> 32);
  return tm_clamp_s8(s < 0 ? -q : q, lo, hi);
}

void tm_maxpool_s8(const void *params) {
  const tm_pool_s8_params *p = (const tm_pool_s8_params *)params;
  const int32_t channels = p->channels;
  const int32_t in_h = p->in_h, in_w = p->in_w;
  const int32_t filter_h = p->filter_h, filter_w = p->filter_w;
  const int32_t act_min = p->act_min, act_max = p->act_max;
  const uint32_t lo4 = tm_pack_s8x4(act_min), hi4 = tm_pack_s8x4(act_max);
  const int32_t in_row = in_w * channels;
  const int32_t c4 = channels & ~3;
  int8_t *out = p->output;

  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *in_b = p->input + b * in_h * in_row;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t y0 = oy * p->stride_h - p->pad_h;
      const int32_t fy0 = tm_max_i32(0, -y0);
      const int32_t fy1 = tm_min_i32(filter_h, in_h - y0);
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        const int32_t fx0 = tm_max_i32(0, -x0);
        const int32_t fx1 = tm_min_i32(filter_w, in_w - x0);
        const int8_t *win = in_b + (y0 + fy0) * in_row + (x0 + fx0) * channels;
        int32_t c = 0;
        for (; c < c4; c += 4) {
          uint32_t m = 0x80808080u;
          const int8_t *row = win + c;
          for (int32_t fy = fy0; fy < fy1; ++fy, row += in_row) {
            const int8_t *tap = row;
            for (int32_t fx = fx0; fx < fx1; ++fx, tap += channels) {
              m = tm_max_s8x4(m, tm_ld4(tap));
            }
          }
          tm_st4(out, tm_min_s8x4(tm_max_s8x4(m, lo4), hi4));
          out += 4;
        }
        for (; c < channels; ++c) {
          int32_t m = INT8_MIN;
          const int8_t *row = win + c;
          for (int32_t fy = fy0; fy < fy1; ++fy, row += in_row) {
            const int8_t *tap = row;
            for (int32_t fx = fx0; fx < fx1; ++fx, tap += channels) {
              m = *tap > m ? *tap : m;
            }
          }
          *out++ = tm_clamp_s8(m, act_min, act_max);
        }
      }
    }
  }
}

void tm_avgpool_s8(const void *params) {
  const tm_pool_s8_params *p = (const tm_pool_s8_params *)params;
  if (p->filter_h * p->filter_w > 256) {
    tm_avgpool_s8_generic(params); /* 16-bit lane sums could overflow */
    return;
  }
  const int32_t channels = p->channels;
  const int32_t in_h = p->in_h, in_w = p->in_w;
  const int32_t filter_h = p->filter_h, filter_w = p->filter_w;
  const int32_t act_min = p->act_min, act_max = p->act_max;
  const int32_t in_row = in_w * channels;
  const int32_t c4 = channels & ~3;
  int8_t *out = p->output;

  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *in_b = p->input + b * in_h * in_row;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t y0 = oy * p->stride_h - p->pad_h;
      const int32_t fy0 = tm_max_i32(0, -y0);
      const int32_t fy1 = tm_min_i32(filter_h, in_h - y0);
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        const int32_t fx0 = tm_max_i32(0, -x0);
        const int32_t fx1 = tm_min_i32(filter_w, in_w - x0);
        const uint32_t count = (uint32_t)((fy1 - fy0) * (fx1 - fx0));
        const uint32_t half = count / 2u;
        /* floor(2^32 / count) + 1; count == 1 needs the exact 2^32 -> use the
         * 64-bit product below, where 0xFFFFFFFF + 1 wraps, so special-case it. */
        const uint32_t recip = count == 1u ? 0u : (uint32_t)(UINT64_C(0x100000000) / count) + 1u;
        const int8_t *win = in_b + (y0 + fy0) * in_row + (x0 + fx0) * channels;
        int32_t c = 0;
        for (; c < c4; c += 4) {
          int32_t even = 0, odd = 0; /* lanes: {c0, c2} and {c1, c3} */
          const int8_t *row = win + c;
          for (int32_t fy = fy0; fy < fy1; ++fy, row += in_row) {
            const int8_t *tap = row;
            for (int32_t fx = fx0; fx < fx1; ++fx, tap += channels) {
              const uint32_t w = tm_ld4(tap);
              even = tm_sxtab16(even, w);
              odd = tm_sxtab16_ror8(odd, w);
            }
          }
          const int32_t s0 = (int16_t)even, s2 = even >> 16;
          const int32_t s1 = (int16_t)odd, s3 = odd >> 16;
          if (count == 1u) {
            out[0] = tm_clamp_s8(s0, act_min, act_max);
            out[1] = tm_clamp_s8(s1, act_min, act_max);
            out[2] = tm_clamp_s8(s2, act_min, act_max);
            out[3] = tm_clamp_s8(s3, act_min, act_max);
          } else {
            out[0] = tm_avg_lane(s0, half, recip, act_min, act_max);
            out[1] = tm_avg_lane(s1, half, recip, act_min, act_max);
            out[2] = tm_avg_lane(s2, half, recip, act_min, act_max);
            out[3] = tm_avg_lane(s3, half, recip, act_min, act_max);
          }
          out += 4;
        }
        for (; c < channels; ++c) {
          int32_t s = 0;
          const int8_t *row = win + c;
          for (int32_t fy = fy0; fy < fy1; ++fy, row += in_row) {
            const int8_t *tap = row;
            for (int32_t fx = fx0; fx < fx1; ++fx, tap += channels) s += *tap;
          }
          const int32_t n = (int32_t)count, h = (int32_t)half;
          *out++ = tm_clamp_s8(s > 0 ? (s + h) / n : (s - h) / n, act_min, act_max);
        }
      }
    }
  }
}

#else /* no DSP extension: the reference kernels */
#include "../reference/pooling.c"
#endif
