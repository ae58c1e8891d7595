/* ARMv7E-M / ARMv8-M DSP helpers shared by the optimized kernels (only with the DSP
 * extension). Inline asm where GCC's ACLE has no single-instruction form (SXTB16 with
 * ROR #8) or where an instruction pair must not be separated (SSUB8 sets the GE flags
 * that SEL reads). */
#ifndef TM_SIMD_H
#define TM_SIMD_H

#include <stdint.h>
#include <string.h>

#include "tm_fixedpoint.h"

#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)

/* Four bytes at any alignment: one LDR / STR (unaligned access is allowed). */
static TM_ALWAYS_INLINE uint32_t tm_ld4(const int8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static TM_ALWAYS_INLINE void tm_st4(int8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Bytes 1 and 3, sign-extended to halfwords. */
static TM_ALWAYS_INLINE int32_t tm_sxtb16_ror8(uint32_t x) {
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}

/* a + bytes 0 and 2 (per halfword), and a + bytes 1 and 3. */
static TM_ALWAYS_INLINE int32_t tm_sxtab16(int32_t a, uint32_t x) {
  int32_t r;
  __asm__("sxtab16 %0, %1, %2" : "=r"(r) : "r"(a), "r"(x));
  return r;
}

static TM_ALWAYS_INLINE int32_t tm_sxtab16_ror8(int32_t a, uint32_t x) {
  int32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
  return r;
}

/* Per-byte signed max / min. */
static TM_ALWAYS_INLINE uint32_t tm_max_s8x4(uint32_t a, uint32_t b) {
  uint32_t t, r;
  __asm__("ssub8 %0, %2, %3\n\tsel %1, %2, %3" : "=&r"(t), "=r"(r) : "r"(a), "r"(b) : "cc");
  (void)t;
  return r;
}

static TM_ALWAYS_INLINE uint32_t tm_min_s8x4(uint32_t a, uint32_t b) {
  uint32_t t, r;
  __asm__("ssub8 %0, %2, %3\n\tsel %1, %3, %2" : "=&r"(t), "=r"(r) : "r"(a), "r"(b) : "cc");
  (void)t;
  return r;
}

/* v (an int8 value) in all four bytes. */
static TM_ALWAYS_INLINE uint32_t tm_pack_s8x4(int32_t v) {
  return (uint32_t)(uint8_t)v * 0x01010101u;
}

#endif /* DSP */
#endif /* TM_SIMD_H */
