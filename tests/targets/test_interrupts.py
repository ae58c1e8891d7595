"""Exceptions on the emulated core: SysTick and timer update interrupts delivered
through the NVIC model with stacking, EXC_RETURN, nesting by priority, PRIMASK, and
the registers of the interrupted code preserved (integer and FPU)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tinymeter.core.boards import Board, load_board
from tinymeter.sim.testfw import build_program, toolchain_available

pytestmark = pytest.mark.skipif(not toolchain_available(), reason="arm-none-eabi-gcc missing")

PROGRAM = r"""
#include <stdint.h>
#define REG(a) (*(volatile uint32_t *)(a))
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)
#define SHPR3 REG(0xE000ED20u)
#define NVIC_ISER0 REG(0xE000E100u)
#define NVIC_ICER0 REG(0xE000E180u)
#define NVIC_IPR(n) (*(volatile uint8_t *)(0xE000E400u + (n)))
#define TIM3 0x40000400u
#define TIM_CR1 REG(TIM3 + 0x00u)
#define TIM_DIER REG(TIM3 + 0x0Cu)
#define TIM_SR REG(TIM3 + 0x10u)
#define TIM_EGR REG(TIM3 + 0x14u)
#define TIM_PSC REG(TIM3 + 0x28u)
#define TIM_ARR REG(TIM3 + 0x2Cu)

volatile uint32_t ticks, tim3, nested, fp_seen;
volatile float fp_sink;
extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
void tm_exit(int code);
int tm_printf_u(const char *label, uint32_t v);

void SysTick_Handler(void) {
  ticks += 1u;
#ifdef CLOBBER_FP
  float f = (float)ticks * 1.5f; /* uses s-registers the interrupted code may hold */
  fp_sink = f * f;
#endif
#ifdef NESTED
  if (ticks == 3u) { /* wait inside SysTick for the higher-priority TIM3 to run */
    uint32_t before = tim3;
    while (tim3 == before) {
    }
    nested += 1u;
  }
#endif
}

void TIM3_IRQHandler(void) {
  TIM_SR = ~1u;
  tim3 += 1u;
}

static void systick_start(uint32_t period) {
  SYST_RVR = period - 1u;
  SYST_CVR = 0u;
  SHPR3 = 0xF0u << 24;
  SYST_CSR = 7u;
}

static void tim3_start(uint32_t period) {
  TIM_PSC = 0u;
  TIM_ARR = period - 1u;
  TIM_EGR = 1u;
  TIM_SR = 0u;
  TIM_DIER = 1u;
  NVIC_IPR(29) = 0x40u;
  NVIC_ISER0 = 1u << 29;
  TIM_CR1 = 1u;
}

__attribute__((noinline)) uint32_t mix(uint32_t n) {
  /* keeps r0-r3 and r12 live across many blocks while interrupts arrive */
  uint32_t a = 1u, b = 2u, c = 3u, d = 4u;
  for (uint32_t i = 0; i < n; ++i) {
    a = a * 1664525u + 1013904223u;
    b ^= a >> 7;
    c += b * 3u;
    d = (d << 1) ^ c;
  }
  return a ^ b ^ c ^ d;
}

__attribute__((noinline)) float fmix(uint32_t n) {
  float x = 0.5f, y = 1.25f;
  for (uint32_t i = 0; i < n; ++i) {
    x = x * 0.999f + y;
    y = y * 0.5f + 0.25f;
  }
  return x + y;
}

int main(void) {
  DWT_CTRL = 1u;
#if defined(TICK_TIMING)
  systick_start(1000u);
  uint32_t t0 = DWT_CYCCNT;
  while (ticks < 20u) {
  }
  tm_print_u("cycles ", DWT_CYCCNT - t0);
#elif defined(PRIMASK_TEST)
  systick_start(1000u);
  __asm__ volatile("cpsid i" ::: "memory");
  uint32_t t0 = DWT_CYCCNT;
  while (DWT_CYCCNT - t0 < 5000u) {
  }
  tm_print_u("masked ", ticks);
  __asm__ volatile("cpsie i" ::: "memory");
  while (ticks == 0u) {
  }
  tm_print_u("late ", DWT_CYCCNT - t0);
#elif defined(SLEEP)
  systick_start(1000u);
  uint32_t t0 = DWT_CYCCNT;
  while (ticks < 5u) {
    __asm__ volatile("wfi");
  }
  tm_print_u("slept ", DWT_CYCCNT - t0);
#ifdef FOREVER
  SYST_CSR = 0u;
  __asm__ volatile("wfi"); /* nothing can wake it */
#endif
#elif defined(SOFTWARE_PEND)
  NVIC_IPR(29) = 0x40u;
  NVIC_ISER0 = 1u << 29;
  uint32_t t0 = DWT_CYCCNT;
  REG(0xE000E200u) = 1u << 29; /* NVIC_ISPR0: TIM3 interrupt by software */
  while (tim3 == 0u) {
  }
  tm_print_u("pended ", DWT_CYCCNT - t0);
#elif defined(NO_HANDLER)
  NVIC_ISER0 = 1u << 30; /* TIM4: no vector in the table */
  REG(0x40000800u + 0x2Cu) = 99u;
  REG(0x40000800u + 0x0Cu) = 1u;
  REG(0x40000800u) = 1u;
  while (1) {
    ticks += 1u;
  }
#elif defined(NESTED)
  tim3_start(700u);
  systick_start(1000u);
  while (nested == 0u) {
  }
  NVIC_ICER0 = 1u << 29;
  uint32_t frozen = tim3;
  uint32_t t0 = DWT_CYCCNT;
  while (DWT_CYCCNT - t0 < 5000u) {
  }
  tm_print_u("nested ", nested);
  tm_print_u("tim3 stopped ", tim3 == frozen);
#else
  systick_start(97u); /* odd period: interrupts land everywhere in the loops */
  tim3_start(131u);
  tm_print_u("mix ", mix(3000u));
  float f = fmix(3000u);
  tm_print_u("fmix ", (uint32_t)(f * 1000.0f));
  tm_print_u("ticks>", ticks > 100u);
#endif
  return 0;
}

void Reset_Handler(void) {
  for (uint32_t *s = &_sidata, *d = &_sdata; d < &_edata;) *d++ = *s++;
  for (uint32_t *d = &_sbss; d < &_ebss;) *d++ = 0u;
  REG(0xE000ED88u) |= 0xFu << 20;
  __asm__ volatile("dsb\n isb");
  uint32_t block[2] = {0x20026u, (uint32_t)main()};
  register int r0 __asm__("r0") = 0x20;
  register const void *r1 __asm__("r1") = block;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  while (1) {
  }
}

__attribute__((section(".vectors"), used)) const void *const vectors[16 + 32] = {
    [0] = &_estack, [1] = (const void *)Reset_Handler,
    [15] = (const void *)SysTick_Handler,
    [16 + 29] = (const void *)TIM3_IRQHandler,
};
"""


def run(board: Board, tmp_path: Path, *defines: str) -> str:
    from tinymeter.sim.emulator import Emulator

    elf = build_program(board, PROGRAM, tmp_path, name="irq", opt="-O2",
                        extra_flags=tuple(f"-D{d}" for d in defines), startup=False)
    result = Emulator(board).run(elf, [], budget_instructions=10**7, timeout_s=60)
    return result.stdout


@pytest.fixture(scope="module")
def board() -> Board:
    return load_board("nucleo-l4r5zi")


def _value(out: str, label: str) -> int:
    m = re.search(rf"^{re.escape(label)}(\d+)$", out, re.MULTILINE)
    assert m, out
    return int(m.group(1))


def test_interrupted_code_keeps_its_registers(board: Board, tmp_path: Path) -> None:
    plain = run(board, tmp_path / "p", "NO_IRQ_REFERENCE")
    clobber = run(board, tmp_path / "c", "CLOBBER_FP")
    assert _value(clobber, "ticks>") == 1  # many interrupts did happen
    # same results as a host computation of the loops (no interrupt corrupts them)
    a, b, c, d = 1, 2, 3, 4
    for _ in range(3000):
        a = (a * 1664525 + 1013904223) & 0xFFFFFFFF
        b ^= a >> 7
        c = (c + b * 3) & 0xFFFFFFFF
        d = ((d << 1) ^ c) & 0xFFFFFFFF
    assert _value(plain, "mix ") == _value(clobber, "mix ") == a ^ b ^ c ^ d
    assert _value(plain, "fmix ") == _value(clobber, "fmix ")


def test_systick_period_in_estimated_cycles(board: Board, tmp_path: Path) -> None:
    cycles = _value(run(board, tmp_path, "TICK_TIMING"), "cycles ")
    # 20 ticks of 1000 cycles; delivery at a block boundary plus the handler: < 1%
    assert 20_000 <= cycles <= 20_000 + 200


def test_primask_defers_and_cpsie_delivers(board: Board, tmp_path: Path) -> None:
    out = run(board, tmp_path, "PRIMASK_TEST")
    assert _value(out, "masked ") == 0
    assert 5000 <= _value(out, "late ") <= 5000 + 600  # re-checked every 256 cycles


def test_higher_priority_timer_preempts_systick_handler(board: Board, tmp_path: Path) -> None:
    out = run(board, tmp_path, "NESTED")
    assert _value(out, "nested ") == 1
    assert _value(out, "tim3 stopped ") == 1  # NVIC_ICER disabled its interrupt


def test_interrupt_without_handler_is_a_fault(board: Board, tmp_path: Path) -> None:
    from tinymeter.core.errors import FirmwareFault

    with pytest.raises(FirmwareFault, match=r"exception 46 has no Thumb handler in the "
                       r"vector table at 0x08000000 \(entry 0x00000000\)"):
        run(board, tmp_path, "NO_HANDLER")


def test_wfi_sleeps_until_the_next_interrupt(board: Board, tmp_path: Path) -> None:
    from tinymeter.core.errors import EmulationError
    from tinymeter.sim.emulator import Emulator

    elf = build_program(board, PROGRAM, tmp_path / "s", name="irq", opt="-O2",
                        extra_flags=("-DSLEEP",), startup=False)
    result = Emulator(board).run(elf, [], budget_instructions=10**6, timeout_s=30)
    slept = _value(result.stdout, "slept ")
    assert 5000 <= slept <= 5000 + 200  # 5 SysTick periods pass while the core sleeps
    assert result.sleep_cycles > 4000 and result.instructions < 2000  # no busy loop
    assert result.cycles_fixed == int(result.block_cycles.sum()) + result.sleep_cycles * (1 << 16)
    elf = build_program(board, PROGRAM, tmp_path / "f", name="irq", opt="-O2",
                        extra_flags=("-DSLEEP", "-DFOREVER"), startup=False)
    with pytest.raises(EmulationError, match=r"sleeps \(WFI/WFE\) with no interrupt "
                       r"scheduled to wake it at pc=0x[0-9a-f]+ \(main\+"):
        Emulator(board).run(elf, [], budget_instructions=10**6, timeout_s=30)


def test_software_pended_interrupt_is_taken_at_once(board: Board, tmp_path: Path) -> None:
    out = run(board, tmp_path, "SOFTWARE_PEND")
    assert _value(out, "pended ") < 100
