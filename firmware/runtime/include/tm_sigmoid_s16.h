/* TFLM's int16 sigmoid and tanh (reference_integer_ops::Logistic / Tanh on int16):
 * the input is scaled by (x * multiplier + round) >> shift (the host folds TFLM's
 * power-of-two case, multiplier 0, into multiplier 3 << shift, shift 0), then a
 * 256-entry sigmoid table is interpolated on |x| -- 9 fractional bits per entry
 * for the sigmoid, 8 for the tanh (tanh(x) = 2 sigmoid(2x) - 1) -- and mirrored for
 * negative inputs. Output Q0.15. Shared by LOGISTIC/TANH int16 and the integer LSTM
 * gates, so both round identically. */
#ifndef TM_SIGMOID_S16_H
#define TM_SIGMOID_S16_H

#include <stdint.h>

#include "tm_fixedpoint.h"

#ifdef __cplusplus
extern "C" {
#endif

/* sigmoid(k / 24) in 0.16 as TFLM tabulates it (kernels/reference/sigmoid_s16.c). */
extern const uint16_t tm_sigmoid_lut_u16[256];

static TM_ALWAYS_INLINE int32_t tm_sigmoid_s16_scale(int32_t x, int32_t multiplier, int32_t shift) {
  const int32_t round = shift > 0 ? (INT32_C(1) << (shift - 1)) : 0;
  return (x * multiplier + round) >> shift;
}

static TM_ALWAYS_INLINE int16_t tm_logistic_s16_one(int32_t x, int32_t multiplier, int32_t shift) {
  const int32_t v = tm_sigmoid_s16_scale(x, multiplier, shift);
  const uint32_t a = (uint32_t)(v < 0 ? -v : v);
  const uint32_t uh = a >> 9;
  uint32_t r;
  if (uh >= 255u) {
    r = UINT32_C(0x7FFF) << 10;
  } else {
    const uint32_t ua = tm_sigmoid_lut_u16[uh], ub = tm_sigmoid_lut_u16[uh + 1u];
    r = (ua << 9) + (a & 0x1FFu) * (ub - ua);
  }
  r = v >= 0 ? r + (UINT32_C(1) << 9) : (UINT32_C(1) << 25) - r + (UINT32_C(1) << 9) - 1u;
  return (int16_t)(r >> 10);
}

static TM_ALWAYS_INLINE int16_t tm_tanh_s16_one(int32_t x, int32_t multiplier, int32_t shift) {
  const int32_t v = tm_sigmoid_s16_scale(x, multiplier, shift);
  const uint32_t a = (uint32_t)(v < 0 ? -v : v);
  const uint32_t uh = a >> 8;
  int32_t r;
  if (uh >= 255u) {
    r = 0xFFFF << 8;
  } else {
    const uint32_t ua = tm_sigmoid_lut_u16[uh], ub = tm_sigmoid_lut_u16[uh + 1u];
    r = (int32_t)((ua << 8) + (a & 0xFFu) * (ub - ua));
  }
  r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
  return (int16_t)(r >> 8);
}

#ifdef __cplusplus
}
#endif

#endif /* TM_SIGMOID_S16_H */
