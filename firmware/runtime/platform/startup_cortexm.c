/* Cortex-M startup: vector table, .data copy, .bss zeroing, FPU enable, main().
 *
 * Symbols come from the generated linker script. Faults print one report line and
 * stop through semihosting, so a crashing kernel is named instead of hanging. */
#include <stdint.h>
#include <string.h>

#include "tm_runtime.h"

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _estack[];
extern uint32_t _sstack[];
int main(void);

#define TM_STACK_PAINT 0xDEADBEEFu

void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);

__attribute__((noreturn)) void Reset_Handler(void) {
  memcpy(_sdata, _sidata, (size_t)((uint8_t *)_edata - (uint8_t *)_sdata));
  memset(_sbss, 0, (size_t)((uint8_t *)_ebss - (uint8_t *)_sbss));
  /* Paint the unused stack so its high-water mark can be measured afterwards. */
  {
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = _sstack; p < sp - 16; ++p) *p = TM_STACK_PAINT;
  }
#if defined(__ARM_FP)
  /* CPACR: full access to CP10/CP11 (the FPU) before any float instruction. */
  *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20);
  __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
  int code = main();
  tm_platform_exit(code);
  for (;;) {
  }
}

void HardFault_Handler(void) {
  static const char msg[] = TM_ABI_FAULT TM_ABI_FAULT_HARDFAULT "\n";
  tm_platform_write(msg, sizeof msg - 1u);
  tm_platform_exit(TM_EXIT_HARDFAULT);
  for (;;) {
  }
}

void Default_Handler(void) {
  static const char msg[] = TM_ABI_FAULT TM_ABI_FAULT_UNEXPECTED "\n";
  tm_platform_write(msg, sizeof msg - 1u);
  tm_platform_exit(TM_EXIT_UNEXPECTED_EXCEPTION);
  for (;;) {
  }
}

typedef void (*tm_vector)(void);

__attribute__((section(".isr_vector"), used)) const tm_vector tm_vectors[16] = {
    (tm_vector)(uintptr_t)_estack,
    Reset_Handler,
    Default_Handler,   /* NMI */
    HardFault_Handler, /* HardFault */
    HardFault_Handler, /* MemManage */
    HardFault_Handler, /* BusFault */
    HardFault_Handler, /* UsageFault */
    HardFault_Handler, /* SecureFault (ARMv8-M) */
    0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    Default_Handler, /* SysTick */
};
