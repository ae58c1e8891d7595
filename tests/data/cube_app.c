/*
 * A small STM32CubeL4-style application for NUCLEO-L4R5ZI, written here so the
 * emulator is tested on firmware it must run unpatched (issue 11): its own vector
 * table and startup, HAL-like clock setup polling ready flags with HAL_GetTick
 * timeouts (PWR VOSF, HSI48 in RCC_CRRCR, HSI, PLL off/on, flash latency readback,
 * clock-switch status), SysTick at 1 kHz with HAL_IncTick/HAL_Delay, LPUART1 init
 * waiting for TEACK/REACK and a printf over it, an LED on PB7, TIM2 timing a
 * workload (the firmware prints its own cycle count), TIM3 update interrupts, and an
 * Error_Handler that the compiler inlines.  Register addresses and values from
 * RM0432; the structure follows what CubeMX generates (main.c, stm32l4xx_it.c).
 *
 * Build options: -DNO_DELAY (no HAL_Delay: runs without interrupt delivery),
 * -DFLASH_LATENCY_EXPECTED=n (a readback check that fails: Error_Handler),
 * -DTIM3_TICKS=n (wait for n TIM3 update interrupts before the workload).
 */
#include <stdarg.h>
#include <stdint.h>

#define REG(a) (*(volatile uint32_t *)(a))
#define RCC_CR REG(0x40021000u)
#define RCC_CFGR REG(0x40021008u)
#define RCC_PLLCFGR REG(0x4002100Cu)
#define RCC_AHB2ENR REG(0x4002104Cu)
#define RCC_APB1ENR1 REG(0x40021058u)
#define RCC_APB1ENR2 REG(0x4002105Cu)
#define RCC_CRRCR REG(0x40021098u)
#define FLASH_ACR REG(0x40022000u)
#define PWR_CR2 REG(0x40007004u)
#define PWR_SR2 REG(0x40007014u)
#define PWR_CR5 REG(0x40007080u)
#define TIM2 0x40000000u
#define TIM3 0x40000400u
#define TIM_CR1(t) REG((t) + 0x00u)
#define TIM_DIER(t) REG((t) + 0x0Cu)
#define TIM_SR(t) REG((t) + 0x10u)
#define TIM_EGR(t) REG((t) + 0x14u)
#define TIM_CNT(t) REG((t) + 0x24u)
#define TIM_PSC(t) REG((t) + 0x28u)
#define TIM_ARR(t) REG((t) + 0x2Cu)
#define LPUART1_CR1 REG(0x40008000u)
#define LPUART1_BRR REG(0x4000800Cu)
#define LPUART1_ISR REG(0x4000801Cu)
#define LPUART1_TDR REG(0x40008028u)
#define GPIOB_MODER REG(0x48000400u)
#define GPIOB_BSRR REG(0x48000418u)
#define GPIOG_MODER REG(0x48001800u)
#define GPIOG_AFRL REG(0x48001820u)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define SCB_SHPR3 REG(0xE000ED20u)
#define SCB_CPACR REG(0xE000ED88u)
#define NVIC_ISER0 REG(0xE000E100u)
#define NVIC_IPR(n) (*(volatile uint8_t *)(0xE000E400u + (n)))
#define TIM3_IRQn 29u

#ifndef FLASH_LATENCY_EXPECTED
#define FLASH_LATENCY_EXPECTED 5u
#endif

volatile uint32_t uwTick;
volatile uint32_t tim3_updates;
uint32_t SystemCoreClock = 4000000u;
int8_t input[2048];
int8_t weights[2048];

/* -- stm32l4xx_it.c ------------------------------------------------------------ */
void SysTick_Handler(void) { uwTick += 1u; } /* HAL_IncTick */

void TIM3_IRQHandler(void) {
  if (TIM_SR(TIM3) & 1u) {
    TIM_SR(TIM3) = ~1u;
    tim3_updates += 1u;
  }
}

/* -- HAL-like services ------------------------------------------------------- */
uint32_t HAL_GetTick(void) { return uwTick; }

void HAL_Delay(uint32_t delay) {
  uint32_t start = HAL_GetTick();
  uint32_t wait = delay + 1u; /* HAL_MAX_DELAY semantics: at least delay ms */
  while ((HAL_GetTick() - start) < wait) {
  }
}

static void HAL_InitTick(void) {
  SYST_RVR = SystemCoreClock / 1000u - 1u;
  SYST_CVR = 0u;
  SCB_SHPR3 = (SCB_SHPR3 & 0x00FFFFFFu) | (0xF0u << 24); /* lowest priority */
  SYST_CSR = 7u; /* processor clock, interrupt, enable */
}

void Error_Handler(void) {
  __asm__ volatile("cpsid i" ::: "memory");
  while (1) {
  }
}

static int wait_flag(volatile uint32_t *reg, uint32_t mask, uint32_t value, uint32_t ms) {
  uint32_t start = HAL_GetTick();
  while ((*reg & mask) != value) {
    if (HAL_GetTick() - start > ms) {
      return 1; /* HAL_TIMEOUT */
    }
  }
  return 0;
}

/* -- main.c ------------------------------------------------------------------------ */
void SystemClock_Config(void) {
  RCC_APB1ENR1 |= 1u << 28; /* PWREN */
  PWR_CR5 &= ~(1u << 8);    /* range 1 boost */
  if (wait_flag(&PWR_SR2, 1u << 10, 0u, 2u)) Error_Handler();
  RCC_CRRCR |= 1u; /* HSI48 for USB */
  if (wait_flag(&RCC_CRRCR, 2u, 2u, 2u)) Error_Handler();
  RCC_CR |= 1u << 8; /* HSION */
  if (wait_flag(&RCC_CR, 1u << 10, 1u << 10, 2u)) Error_Handler();
  if ((RCC_CFGR & 0xCu) == 0xCu) Error_Handler(); /* the PLL clocks the system */
  RCC_CR &= ~(1u << 24);                           /* PLL off before configuring */
  if (wait_flag(&RCC_CR, 1u << 25, 0u, 2u)) Error_Handler();
  RCC_PLLCFGR = 0x01000F02u; /* HSI16 /1 x15 /2 = 120 MHz, R output on */
  RCC_CR |= 1u << 24;
  if (wait_flag(&RCC_CR, 1u << 25, 1u << 25, 2u)) Error_Handler();
  FLASH_ACR = (FLASH_ACR & ~0xFu) | 5u;
  if ((FLASH_ACR & 0xFu) != FLASH_LATENCY_EXPECTED) Error_Handler();
  RCC_CFGR = (RCC_CFGR & ~0xF0u) | 0x80u; /* AHB /2 across the switch */
  RCC_CFGR = (RCC_CFGR & ~3u) | 3u;
  if (wait_flag(&RCC_CFGR, 0xCu, 0xCu, 5u)) Error_Handler();
  RCC_CFGR &= ~0xF0u;
  SystemCoreClock = 120000000u;
  HAL_InitTick();
}

static void MX_GPIO_Init(void) {
  RCC_AHB2ENR |= (1u << 1) | (1u << 6); /* GPIOB, GPIOG */
  GPIOB_MODER = (GPIOB_MODER & ~(3u << 14)) | (1u << 14); /* PB7 (LD2) output */
}

static void MX_LPUART1_UART_Init(void) {
  RCC_APB1ENR2 |= 1u;
  PWR_CR2 |= 1u << 9; /* VDDIO2 valid: port G */
  GPIOG_MODER = (GPIOG_MODER & ~(3u << 14)) | (2u << 14);
  GPIOG_AFRL = (GPIOG_AFRL & ~(0xFu << 28)) | (8u << 28);
  LPUART1_BRR = (uint32_t)((256ull * 120000000ull) / 115200ull);
  LPUART1_CR1 = (1u << 3) | (1u << 2);
  LPUART1_CR1 |= 1u;
  if (wait_flag(&LPUART1_ISR, 3u << 21, 3u << 21, 100u)) Error_Handler();
}

static void MX_TIM3_Init(void) {
  RCC_APB1ENR1 |= 1u << 1;
  TIM_PSC(TIM3) = 119u;  /* 1 MHz */
  TIM_ARR(TIM3) = 999u;  /* update every 1 ms */
  TIM_EGR(TIM3) = 1u;
  TIM_SR(TIM3) = 0u;
  TIM_DIER(TIM3) = 1u;
  NVIC_IPR(TIM3_IRQn) = 0x40u;
  NVIC_ISER0 = 1u << TIM3_IRQn;
  TIM_CR1(TIM3) = 1u;
}

int __io_putchar(int ch) {
  while (!(LPUART1_ISR & (1u << 7))) {
  }
  LPUART1_TDR = (uint32_t)ch;
  return ch;
}

static void put_unsigned(uint32_t value) {
  char digits[10];
  int n = 0;
  do {
    digits[n++] = (char)('0' + value % 10u);
    value /= 10u;
  } while (value);
  while (n) __io_putchar(digits[--n]);
}

/* printf with %s, %u, %lu, %d, %ld: what this application prints */
void uart_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  for (; *fmt; ++fmt) {
    if (*fmt != '%') {
      __io_putchar(*fmt);
      continue;
    }
    ++fmt;
    if (*fmt == 'l') ++fmt;
    if (*fmt == 's') {
      for (const char *s = va_arg(ap, const char *); *s; ++s) __io_putchar(*s);
    } else if (*fmt == 'd') {
      int32_t v = va_arg(ap, int32_t);
      if (v < 0) {
        __io_putchar('-');
        v = -v;
      }
      put_unsigned((uint32_t)v);
    } else {
      put_unsigned(va_arg(ap, uint32_t));
    }
  }
  va_end(ap);
}

__attribute__((noinline)) void start_timer(void) {
  RCC_APB1ENR1 |= 1u; /* TIM2 clock */
  TIM_PSC(TIM2) = 0u;
  TIM_ARR(TIM2) = 0xFFFFFFFFu;
  TIM_EGR(TIM2) = 1u;
  TIM_SR(TIM2) = 0u;
  TIM_CNT(TIM2) = 0u;
  TIM_CR1(TIM2) = 1u;
}

__attribute__((noinline)) uint32_t stop_timer_and_measure(void) {
  uint32_t cycles = TIM_CNT(TIM2);
  TIM_CR1(TIM2) = 0u;
  return cycles;
}

__attribute__((noinline)) int32_t workload(void) {
  int32_t acc = 0;
  for (uint32_t r = 0; r < 16u; ++r) {
    for (uint32_t i = 0; i < sizeof input; ++i) {
      acc += (int32_t)input[i] * weights[(i + r) & (sizeof weights - 1u)];
    }
  }
  return acc;
}

int main(void) {
  FLASH_ACR |= (1u << 8) | (1u << 9) | (1u << 10); /* HAL_Init: prefetch, caches */
  HAL_InitTick();
  SystemClock_Config();
  MX_GPIO_Init();
  MX_LPUART1_UART_Init();
  for (uint32_t i = 0; i < sizeof input; ++i) {
    input[i] = (int8_t)(i * 7u);
    weights[i] = (int8_t)(i * 13u + 5u);
  }
  uart_printf("boot at %lu Hz\r\n", SystemCoreClock);
#ifndef NO_DELAY
  uint32_t before = HAL_GetTick();
  HAL_Delay(3u);
  uart_printf("delay 3 ms: %lu ticks\r\n", HAL_GetTick() - before);
#endif
#ifdef TIM3_TICKS
  MX_TIM3_Init();
  while (tim3_updates < TIM3_TICKS) {
  }
  uart_printf("tim3 %lu updates at tick %lu\r\n", tim3_updates, HAL_GetTick());
#endif
  GPIOB_BSRR = 1u << 7;
  start_timer();
  int32_t result = workload();
  uint32_t cycles = stop_timer_and_measure();
  GPIOB_BSRR = 1u << (7 + 16);
  uart_printf("workload %ld: %lu cycles\r\n", result, cycles);
  while (1) {
    __asm__ volatile("wfi");
  }
}

/* -- startup_stm32l4r5xx.s, in C ---------------------------------------------------- */
extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;

void Reset_Handler(void) {
  for (uint32_t *src = &_sidata, *dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (uint32_t *dst = &_sbss; dst < &_ebss;) *dst++ = 0u;
  SCB_CPACR |= 0xFu << 20; /* SystemInit: FPU */
  __asm__ volatile("dsb\n isb");
  main();
  while (1) {
  }
}

void Default_Handler(void) {
  while (1) {
  }
}

void HardFault_Handler(void) {
  while (1) {
  }
}

__attribute__((section(".vectors"), used)) const void *const g_pfnVectors[16 + 64] = {
    [0] = &_estack,
    [1] = (const void *)Reset_Handler,
    [2] = (const void *)Default_Handler,
    [3] = (const void *)HardFault_Handler,
    [4 ... 14] = (const void *)Default_Handler,
    [15] = (const void *)SysTick_Handler,
    [16 ... 16 + 63] = (const void *)Default_Handler,
    [16 + TIM3_IRQn] = (const void *)TIM3_IRQHandler,
};
