/* Bare-metal Cortex-M platform: cycle counter and semihosting output/exit.
 *
 * Cycle counting uses the DWT CYCCNT on ARMv7-M/ARMv8-M.Main; ARMv6-M (M0+) has no
 * CYCCNT, so SysTick (24-bit, down-counting) is used there and is only valid for
 * layers shorter than 2^24 cycles. */
#include "tm_runtime.h"

#define TM_REG(addr) (*(volatile uint32_t *)(addr))
#define DEMCR 0xE000EDFCu
#define DWT_CTRL 0xE0001000u
#define DWT_CYCCNT 0xE0001004u
#define SYST_CSR 0xE000E010u
#define SYST_RVR 0xE000E014u
#define SYST_CVR 0xE000E018u

#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__)
#define TM_HAVE_DWT 1
#else
#define TM_HAVE_DWT 0
#endif

void tm_platform_init(void) {
#if TM_HAVE_DWT
  TM_REG(DEMCR) |= (1u << 24); /* TRCENA */
  TM_REG(DWT_CYCCNT) = 0u;
  TM_REG(DWT_CTRL) |= 1u; /* CYCCNTENA */
#else
  TM_REG(SYST_RVR) = 0x00FFFFFFu;
  TM_REG(SYST_CVR) = 0u;
  TM_REG(SYST_CSR) = 5u; /* processor clock, enabled, no interrupt */
#endif
}

uint32_t tm_platform_cycles(void) {
#if TM_HAVE_DWT
  return TM_REG(DWT_CYCCNT);
#else
  return (0x00FFFFFFu - TM_REG(SYST_CVR)) & 0x00FFFFFFu;
#endif
}

/* ARM semihosting call: r0 = operation, r1 = argument block. */
static int tm_semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

#define SYS_WRITE 0x05
#define SYS_EXIT 0x18
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

void tm_platform_write(const char *s, uint32_t len) {
  uint32_t block[3] = {1u /* stdout */, (uint32_t)s, len};
  (void)tm_semihost(SYS_WRITE, block);
}

void tm_platform_exit(int code) {
  uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
  if (code == 0) {
    (void)tm_semihost(SYS_EXIT, (const void *)ADP_STOPPED_APPLICATION_EXIT);
  } else {
    (void)tm_semihost(SYS_EXIT_EXTENDED, block);
  }
  for (;;) {
  }
}
