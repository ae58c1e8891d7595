/* Float math for the float32 kernels, without libm (the firmware links none).
 *
 * TFLM's reference kernels call std::round, std::exp and std::tanh on float;
 * the golden reference is TFLM built on x86 with glibc. Rounding is reproduced
 * exactly and exp with glibc's own algorithm (bit-identical; checked against
 * glibc 2.36 on every 7th float). tanh is evaluated in double precision and
 * rounded once to float, which is within 1 ULP of the true value; glibc's
 * fdlibm-derived tanhf is within ~1 ULP too, so the two differ by <= 2 ULP.
 *
 * Double arithmetic is software on the M0+/M4 (libgcc soft-fp, IEEE-exact), so
 * the results do not depend on the core. */
#include "tm_ops_float.h"

typedef union {
  double d;
  uint64_t u;
} tm_f64_bits;

float tm_roundf(float x) {
  const float big = 8388608.0f; /* 2^23: every float at least this large is an integer */
  if (!(x < big && x > -big)) {
    return x; /* also NaN */
  }
  const float t = (float)(int32_t)x; /* truncation, exact in this range */
  const float d = x - t;             /* exact */
  if (d >= 0.5f) {
    return t + 1.0f;
  }
  if (d <= -0.5f) {
    return t - 1.0f;
  }
  if (t == 0.0f && x < 0.0f) {
    return -0.0f; /* std::round keeps the sign of zero */
  }
  return t;
}

/* exp(x) for |x| <= 250 in double: x = k ln2 + r, |r| <= ln2/2, Taylor series of
 * degree 13 for exp(r) (truncation error < 5e-18), then an exact scaling by 2^k. */
static double tm_exp_d(double x) {
  const double inv_ln2 = 1.44269504088896338700e+00;
  const double ln2_hi = 6.93147180369123816490e-01; /* 32 significant bits: k*ln2_hi exact */
  const double ln2_lo = 1.90821492927058770002e-10;
  const double t = x * inv_ln2;
  const int32_t k = (int32_t)(t >= 0.0 ? t + 0.5 : t - 0.5);
  const double r = (x - (double)k * ln2_hi) - (double)k * ln2_lo;
  double p = 1.0 / 6227020800.0;         /* 1/13! */
  p = p * r + 1.0 / 479001600.0;         /* 1/12! */
  p = p * r + 1.0 / 39916800.0;          /* 1/11! */
  p = p * r + 1.0 / 3628800.0;           /* 1/10! */
  p = p * r + 1.0 / 362880.0;            /* 1/9!  */
  p = p * r + 1.0 / 40320.0;             /* 1/8!  */
  p = p * r + 1.0 / 5040.0;              /* 1/7!  */
  p = p * r + 1.0 / 720.0;               /* 1/6!  */
  p = p * r + 1.0 / 120.0;               /* 1/5!  */
  p = p * r + 1.0 / 24.0;                /* 1/4!  */
  p = p * r + 1.0 / 6.0;                 /* 1/3!  */
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  tm_f64_bits scale;
  scale.u = (uint64_t)(int64_t)(k + 1023) << 52;
  return p * scale.d;
}

/* 2^(i/32) as double bits, minus i/32 in the exponent field: the table of the
 * table-driven expf of glibc >= 2.27 (ARM optimized-routines), regenerated from
 * correctly rounded 2^(i/32). */
static const uint64_t tm_exp2_tab[32] = {
    0x3ff0000000000000u, 0x3fefd9b0d3158574u, 0x3fefb5586cf9890fu, 0x3fef9301d0125b51u,
    0x3fef72b83c7d517bu, 0x3fef54873168b9aau, 0x3fef387a6e756238u, 0x3fef1e9df51fdee1u,
    0x3fef06fe0a31b715u, 0x3feef1a7373aa9cbu, 0x3feedea64c123422u, 0x3feece086061892du,
    0x3feebfdad5362a27u, 0x3feeb42b569d4f82u, 0x3feeab07dd485429u, 0x3feea47eb03a5585u,
    0x3feea09e667f3bcdu, 0x3fee9f75e8ec5f74u, 0x3feea11473eb0187u, 0x3feea589994cce13u,
    0x3feeace5422aa0dbu, 0x3feeb737b0cdc5e5u, 0x3feec49182a3f090u, 0x3feed503b23e255du,
    0x3feee89f995ad3adu, 0x3feeff76f2fb5e47u, 0x3fef199bdd85529cu, 0x3fef3720dcef9069u,
    0x3fef5818dcfba487u, 0x3fef7c97337b9b5fu, 0x3fefa4afa2a490dau, 0x3fefd0765b6e4540u,
};

/* expf with the arithmetic of glibc's expf (the TFLM host build's std::exp):
 * x * 32/ln2 = k + r, exp(x) = 2^(k/32) * p(r) with a cubic p, all in double,
 * rounded once to float. Same operations in the same order, so the result is
 * bit-identical to glibc wherever double arithmetic is IEEE (everywhere here:
 * soft-float on M0+/M4, hardware on x86). */
float tm_expf(float x) {
  const double inv_ln2_n = 0x1.71547652b82fep+0 * 32;
  const double shift = 0x1.8p+52;
  const double c0 = 0x1.c6af84b912394p-5 / 32 / 32 / 32;
  const double c1 = 0x1.ebfce50fac4f3p-3 / 32 / 32;
  const double c2 = 0x1.62e42ff0c52d6p-1 / 32;
  if (!(x < 88.0f && x > -88.0f)) {
    if (x != x) {
      return x + x;
    }
    if (x > 0x1.62e42ep6f) {
      return __builtin_inff();
    }
    if (x < -0x1.9fe368p6f) {
      return 0.0f;
    }
  }
  const double xd = (double)x;
  double z = inv_ln2_n * xd;
  /* Round z to an integer with the 1.5 * 2^52 trick (ties to even). */
  tm_f64_bits kb;
  kb.d = z + shift;
  const uint64_t ki = kb.u;
  const double kd = kb.d - shift;
  const double r = z - kd;
  tm_f64_bits s;
  s.u = tm_exp2_tab[ki % 32u] + (ki << 47);
  z = c0 * r + c1;
  const double r2 = r * r;
  double y = c2 * r + 1.0;
  y = z * r2 + y;
  y = y * s.d;
  return (float)y;
}

float tm_tanhf(float x) {
  if (x != x) {
    return x;
  }
  const double xd = (double)x;
  const double ax = xd < 0.0 ? -xd : xd;
  double t;
  if (ax >= 20.0) {
    t = 1.0;
  } else if (ax < 0.25) {
    /* Odd Taylor series to x^13: relative truncation error < 1e-11 here. */
    const double x2 = ax * ax;
    double p = 21844.0 / 6081075.0;
    p = p * x2 - 1382.0 / 155925.0;
    p = p * x2 + 62.0 / 2835.0;
    p = p * x2 - 17.0 / 315.0;
    p = p * x2 + 2.0 / 15.0;
    p = p * x2 - 1.0 / 3.0;
    t = ax + ax * x2 * p;
  } else {
    const double e = tm_exp_d(2.0 * ax);
    t = (e - 1.0) / (e + 1.0);
  }
  const float r = (float)t;
  return x < 0.0f ? -r : r;
}
