/* EXP / LOG / SQRT / RSQRT / L2_NORMALIZATION float32 (TFLM's std::exp, std::log,
 * std::sqrt, 1.f / std::sqrt and reference_ops::L2Normalization). */
#include <string.h>

#include "tm_fixedpoint.h"
#include "tm_ops_unary_math.h"

static uint32_t tm_f2u(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

static float tm_u2f(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

#if defined(__ARM_FP) && (__ARM_FP & 4)
/* VSQRT.F32 is IEEE correctly rounded. */
float tm_sqrtf(float x) {
  float r;
  __asm__("vsqrt.f32 %0, %1" : "=t"(r) : "t"(x));
  return r;
}
#else
/* floor(sqrt(n)) for n < 2^48, remainder n - root^2 in *rem. */
static uint32_t tm_isqrt48(uint64_t n, uint64_t *rem) {
  uint64_t root = 0, bit = (uint64_t)1 << 46;
  while (bit > n) bit >>= 2;
  while (bit) {
    if (n >= root + bit) {
      n -= root + bit;
      root = (root >> 1) + bit;
    } else {
      root >>= 1;
    }
    bit >>= 2;
  }
  *rem = n;
  return (uint32_t)root;
}

/* x = m * 2^e with m in [2^23, 2^24); N = m << s (s in {23, 24} so e - s is even)
 * lies in [2^46, 2^48) and sqrt(x) = sqrt(N) * 2^((e - s) / 2). The 24-bit integer
 * root rounds up iff the remainder exceeds the root (no ties are possible). */
float tm_sqrtf(float x) {
  const uint32_t u = tm_f2u(x);
  if ((u & 0x7fffffffu) == 0 || (u >> 23) == 0xffu) return x; /* +-0, +inf, +NaN */
  if (u >> 31) return tm_u2f(0x7fc00000u);                    /* negative: NaN */
  int32_t e = (int32_t)(u >> 23);
  uint32_t m = u & 0x7fffffu;
  if (e == 0) { /* subnormal: normalise */
    e = 1;
    while (!(m & 0x800000u)) {
      m <<= 1;
      --e;
    }
  } else {
    m |= 0x800000u;
  }
  e -= 150;
  const int32_t s = (e & 1) ? 23 : 24;
  uint64_t rem;
  uint32_t r = tm_isqrt48((uint64_t)m << s, &rem);
  int32_t k = (e - s) / 2;
  if (rem > r) ++r;
  if (r == (1u << 24)) {
    r >>= 1;
    ++k;
  }
  return tm_u2f(((uint32_t)(k + 150) << 23) | (r & 0x7fffffu));
}
#endif

/* log(x) = e ln2 + 2 atanh(s), s = (m - 1) / (m + 1), m in [sqrt(1/2), sqrt(2)):
 * |s| <= 0.1716, the odd series to s^25 has a truncation error < 1e-19. */
float tm_logf(float x) {
  const uint32_t u = tm_f2u(x);
  if (x != x) return x;
  if ((u & 0x7fffffffu) == 0) return -__builtin_inff();
  if (u >> 31) return tm_u2f(0x7fc00000u);
  if (u == 0x7f800000u) return x;
  int32_t e = (int32_t)(u >> 23);
  uint32_t mb = u & 0x7fffffu;
  if (e == 0) {
    e = 1;
    while (!(mb & 0x800000u)) {
      mb <<= 1;
      --e;
    }
    mb &= 0x7fffffu;
  }
  e -= 127;
  double m = 1.0 + (double)mb / 8388608.0;
  if (m > 1.4142135623730951) {
    m *= 0.5;
    ++e;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  double p = 1.0 / 25;
  for (int32_t k = 23; k >= 1; k -= 2) p = p * s2 + 1.0 / k;
  const double ln2 = 0.69314718055994530942;
  return (float)((double)e * ln2 + 2.0 * s * p);
}

void tm_exp_f32(const void *params) {
  const tm_unary_f32_params *p = (const tm_unary_f32_params *)params;
  for (int32_t i = 0; i < p->size; ++i) p->output[i] = tm_expf(p->input[i]);
}

void tm_log_f32(const void *params) {
  const tm_unary_f32_params *p = (const tm_unary_f32_params *)params;
  for (int32_t i = 0; i < p->size; ++i) p->output[i] = tm_logf(p->input[i]);
}

void tm_sqrt_f32(const void *params) {
  const tm_unary_f32_params *p = (const tm_unary_f32_params *)params;
  for (int32_t i = 0; i < p->size; ++i) p->output[i] = tm_sqrtf(p->input[i]);
}

void tm_rsqrt_f32(const void *params) {
  const tm_unary_f32_params *p = (const tm_unary_f32_params *)params;
  for (int32_t i = 0; i < p->size; ++i) p->output[i] = 1.0f / tm_sqrtf(p->input[i]);
}

void tm_l2_normalization_f32(const void *params) {
  const tm_l2_normalization_f32_params *p = (const tm_l2_normalization_f32_params *)params;
  for (int32_t i = 0; i < p->outer_size; ++i) {
    const float *in = p->input + i * p->depth;
    float *out = p->output + i * p->depth;
    float sum = 0.0f;
    for (int32_t c = 0; c < p->depth; ++c) sum += in[c] * in[c];
    float norm = tm_sqrtf(sum);
    norm = norm < 1e-6f ? 1e-6f : norm; /* std::max(l2_norm, epsilon) */
    for (int32_t c = 0; c < p->depth; ++c) out[c] = in[c] / norm;
  }
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<e> for e > 0: saturating x * 2^e. */
static int32_t tm_sat_shl(int32_t x, int32_t e) {
  const int32_t threshold = (int32_t)((1u << (31 - e)) - 1u);
  if (x > threshold) return INT32_MAX;
  if (x < -threshold) return INT32_MIN;
  return (int32_t)((uint32_t)x << e);
}

/* TFLM's GetInvSqrtQuantizedMultiplierExp(input, kReverseShift = -1): 1/sqrt(input)
 * as a Q31 multiplier and a shift, by five Newton steps in Q3.28 fixed point. */
static void tm_inv_sqrt_q(int32_t input, int32_t *mult, int32_t *shift) {
  if (input <= 1) {
    *mult = INT32_MAX;
    *shift = 0;
    return;
  }
  int32_t s = 11;
  while (input >= (1 << 29)) {
    input /= 4;
    ++s;
  }
  const uint32_t max_left_shift_bits = (uint32_t)__builtin_clz((uint32_t)input) - 1u;
  const uint32_t pairs = max_left_shift_bits / 2u - 1u;
  s -= (int32_t)pairs;
  input <<= 2u * pairs;
  const int32_t fx = input >> 1;                                /* F3 */
  const int32_t half = tm_rounding_divide_by_pot(fx, 1);        /* F3: input / 2 */
  const int32_t half_three = (1 << 28) + (1 << 27);             /* F3: 1.5 */
  int32_t x = 1 << 28;                                          /* F3: 1.0 */
  for (int32_t i = 0; i < 5; ++i) {
    const int32_t x2 = tm_sat_rounding_doubling_high_mul(x, x);       /* F6 */
    const int32_t x3 = tm_sat_shl(tm_sat_rounding_doubling_high_mul(x2, x), 6); /* F9->F3 */
    const int32_t t = tm_sat_rounding_doubling_high_mul(half_three, x) -
                      tm_sat_rounding_doubling_high_mul(half, x3); /* F6 */
    x = tm_sat_shl(t, 3);                                             /* F6->F3 */
  }
  x = tm_sat_rounding_doubling_high_mul(x, 1518500250); /* * sqrt(2)/2, F3 */
  if (s < 0) {
    x = (int32_t)((uint32_t)x << -s);
    s = 0;
  }
  *mult = x;
  *shift = -s;
}

void tm_l2_normalization_s8(const void *params) {
  const tm_l2_normalization_s8_params *p = (const tm_l2_normalization_s8_params *)params;
  for (int32_t i = 0; i < p->outer_size; ++i) {
    const int8_t *in = p->input + i * p->depth;
    int8_t *out = p->output + i * p->depth;
    int32_t acc = 0;
    for (int32_t c = 0; c < p->depth; ++c) {
      const int32_t v = in[c] - p->input_zero_point;
      acc += v * v;
    }
    int32_t mult, shift;
    tm_inv_sqrt_q(acc, &mult, &shift);
    for (int32_t c = 0; c < p->depth; ++c) {
      const int32_t v = tm_multiply_by_quantized_multiplier(in[c] - p->input_zero_point, mult,
                                                            (int)(shift + 7));
      out[c] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
    }
  }
}
