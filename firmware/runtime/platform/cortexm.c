/* Bare-metal Cortex-M platform: cycle counter, report output and exit.
 *
 * Cycle counting uses the DWT CYCCNT on ARMv7-M/ARMv8-M.Main; ARMv6-M (M0+) has no
 * CYCCNT, so SysTick (24-bit, down-counting) is used there and is only valid for
 * layers shorter than 2^24 cycles.
 *
 * Output: the default build writes through semihosting (the emulator, or a debugger,
 * serves BKPT 0xAB).  The hardware build (TM_IO_UART) runs without a debugger: it
 * performs the board's boot register writes, writes the report to the board's UART,
 * drives the power-monitor marker pins and ends in tm_halt(). */
#include "tm_runtime.h"

#include "tm_board.h"

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

#define SCB_CCR 0xE000ED14u
#define SCB_CCSIDR 0xE000ED80u
#define SCB_CSSELR 0xE000ED84u
#define SCB_ICIALLU 0xE000EF50u
#define SCB_DCISW 0xE000EF60u

#if defined(TM_IO_UART)
/* Polls of the boot writes give up after this many reads (a misconfigured board file
 * must not hang the firmware before it can say anything). */
#define TM_INIT_POLL_LIMIT 1000000u

static void tm_board_boot(void) {
  for (uint32_t i = 0; i < tm_board_init_count; ++i) {
    const tm_reg_init *w = &tm_board_init[i];
    volatile uint32_t *reg = (volatile uint32_t *)w->addr;
    *reg = (*reg & ~w->clear) | w->set;
    if (w->wait_mask != 0u) {
      for (uint32_t n = 0; n < TM_INIT_POLL_LIMIT && (*reg & w->wait_mask) != w->wait_value; ++n) {
      }
    }
  }
}

#endif

/* ARMv7-M L1 caches (Cortex-M7): invalidate, then enable (ARMv7-M ARM B2.2.7).  Both
 * images do it, so the emulated estimate times the same memory system the board runs. */
static void tm_enable_l1_caches(void) {
  if (tm_board_l1_icache != 0u) {
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    TM_REG(SCB_ICIALLU) = 0u;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    TM_REG(SCB_CCR) |= (1u << 17);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
  }
  if (tm_board_l1_dcache != 0u) {
    TM_REG(SCB_CSSELR) = 0u; /* level 1 data cache */
    __asm__ volatile("dsb" ::: "memory");
    const uint32_t ccsidr = TM_REG(SCB_CCSIDR);
    const uint32_t sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    const uint32_t ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    const uint32_t line_shift = (ccsidr & 7u) + 4u;
    /* way index sits in the top bits: shift = 32 - ceil(log2(ways)) */
    uint32_t way_shift = 32u;
    for (uint32_t w = ways - 1u; w != 0u; w >>= 1) --way_shift;
    for (uint32_t set = 0; set < sets; ++set) {
      for (uint32_t way = 0; way < ways; ++way) {
        TM_REG(SCB_DCISW) = (way_shift < 32u ? (way << way_shift) : 0u) | (set << line_shift);
      }
    }
    __asm__ volatile("dsb" ::: "memory");
    TM_REG(SCB_CCR) |= (1u << 16);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
  }
}

#if defined(TM_IO_UART)

static void tm_uart_init(void) {
  const tm_uart_regs *u = &tm_board_uart;
  TM_REG(u->base + u->cr1_off) = 0u;
  TM_REG(u->base + u->brr_off) = u->brr;
  TM_REG(u->base + u->cr1_off) = u->cr1_enable;
}

static void tm_mark(const tm_gpio_mark *m, uint32_t high) {
  if (m->set_addr == 0u) return;
  if (high != 0u) {
    TM_REG(m->set_addr) = m->set_value;
  } else {
    TM_REG(m->clear_addr) = m->clear_value;
  }
}

void tm_platform_mark_inference(uint32_t high) { tm_mark(&tm_board_mark_inference, high); }

void tm_platform_mark_layer(uint32_t high) { tm_mark(&tm_board_mark_layer, high); }
#endif

void tm_platform_init(void) {
#if defined(TM_IO_UART)
  tm_board_boot();
#endif
  tm_enable_l1_caches();
#if defined(TM_IO_UART)
  tm_uart_init();
#endif
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
#if defined(TM_IO_UART) && !TM_HAVE_DWT
  if (tm_board_cycle_counter != 0u) return TM_REG(tm_board_cycle_counter);
#endif
#if TM_HAVE_DWT
  return TM_REG(DWT_CYCCNT);
#else
  return (0x00FFFFFFu - TM_REG(SYST_CVR)) & 0x00FFFFFFu;
#endif
}

#if defined(TM_IO_UART)
void tm_platform_write(const char *s, uint32_t len) {
  const tm_uart_regs *u = &tm_board_uart;
  for (uint32_t i = 0; i < len; ++i) {
    while ((TM_REG(u->base + u->status_off) & u->tx_empty) == 0u) {
    }
    TM_REG(u->base + u->data_off) = (uint8_t)s[i];
  }
}

/* Kept out of line and opaque: the emulator stops at its entry (r0 = code). */
__attribute__((noipa, used, noreturn)) void tm_halt(int code) {
  (void)code;
  for (;;) {
    __asm__ volatile("wfi" ::: "memory");
  }
}

void tm_platform_exit(int code) {
  const tm_uart_regs *u = &tm_board_uart;
  /* Let the last report byte leave the shift register before idling. */
  for (uint32_t n = 0; n < TM_INIT_POLL_LIMIT && (TM_REG(u->base + u->status_off) & u->tx_done) == 0u;
       ++n) {
  }
  tm_halt(code);
}
#else
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
#endif
