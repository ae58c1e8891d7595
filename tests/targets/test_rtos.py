"""RTOS-style exceptions on the emulated core: threads on the process stack (PSP),
EXC_RETURN 0xFFFFFFFD / 0xFFFFFFED, the FPU's extended frame, SVC and PendSV.

The firmware is a two-task round-robin scheduler written here in the style of
FreeRTOS's Cortex-M4F port: ``svc 0`` starts the first task, SysTick pends PendSV, the
PendSV handler saves r4-r11 (and s16-s31 when EXC_RETURN says the task used the FPU) on
the task's process stack, switches the PSP and returns with the other task's
EXC_RETURN.  Each task runs an integer and float workload whose result must be
bit-identical to the same workload run in main before the scheduler started: a frame
stacked or unstacked wrongly (wrong stack, missing FP registers) changes it.
"""

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
#define ICSR REG(0xE000ED04u)
#define SHPR2 REG(0xE000ED1Cu)
#define SHPR3 REG(0xE000ED20u)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define PENDSVSET (1u << 28)

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;

typedef struct { uint32_t *sp; } tcb_t;
static uint32_t stacks[2][512] __attribute__((aligned(8)));
tcb_t tcbs[2];
tcb_t *volatile current_tcb;
volatile uint32_t switches, ticks, svc_calls, doubled;
volatile uint32_t done[2], progress[2];
volatile uint32_t results[2], reference[2];

static void exit_with(uint32_t code) {
  uint32_t block[2] = {0x20026u, code};
  register int r0 __asm__("r0") = 0x20;
  register const void *r1 __asm__("r1") = block;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
}

/* integer and float state live in registers across many preemptions */
__attribute__((noinline)) uint32_t work(uint32_t seed, uint32_t n, volatile uint32_t *where) {
  uint32_t h = seed, a = seed ^ 0x5555u, b = 7u;
#ifdef USE_FP
  float x = (float)(seed & 15u), y = 0.25f, z = 1.0f;
#endif
  for (uint32_t i = 0; i < n; ++i) {
    h = h * 1664525u + 1013904223u;
    a += h >> 3;
    b ^= a + i;
#ifdef USE_FP
    x = x * 0.999f + y;
    y = y * 0.5f + (float)(h & 7u);
    z = z * 0.75f + x * 0.001f;
#endif
    *where = i;
  }
#ifdef USE_FP
  union { float f; uint32_t u; } ux = {x}, uy = {y}, uz = {z};
  return h ^ a ^ b ^ ux.u ^ (uy.u << 1) ^ (uz.u << 2);
#else
  return h ^ a ^ b;
#endif
}

static uint32_t svc_double(uint32_t v) {
  register uint32_t r0 __asm__("r0") = v;
  __asm__ volatile("svc 1" : "+r"(r0) : : "memory");
  return r0;
}

/* called by SVC_Handler for svc n != 0 with the stacked frame: r0 = r0 * 2 */
void svc_service(uint32_t *frame) {
  svc_calls += 1u;
  frame[0] *= 2u;
}

void switch_context(void) {
  switches += 1u;
  current_tcb = current_tcb == &tcbs[0] ? &tcbs[1] : &tcbs[0];
}

static void task(uint32_t k) {
  if (k == 0u) doubled = svc_double(21u);  /* an SVC from a thread on PSP */
  results[k] = work(1000u + k, N_ITER, &progress[k]);
  done[k] = 1u;
  while (!(done[0] && done[1])) {
  }
  __asm__ volatile("cpsid i" ::: "memory");
  uint32_t control;
  __asm__ volatile("mrs %0, control" : "=r"(control));
  tm_print_u("psp ", (control >> 1) & 1u);
  tm_print_u("switches ", switches);
  tm_print_u("svc ", svc_calls);
  tm_print_u("doubled ", doubled);
  tm_print_u("same ", results[0] == reference[0] && results[1] == reference[1]);
  exit_with(0u);
}
static void task0(void) { task(0u); }
static void task1(void) { task(1u); }

static void task_init(uint32_t k, void (*entry)(void)) {
  uint32_t *sp = &stacks[k][512];
  *--sp = 0x01000000u;               /* xPSR: Thumb */
  *--sp = (uint32_t)entry;           /* PC */
  *--sp = 0xFFFFFFFFu;               /* LR: tasks never return */
  for (int i = 0; i < 5; ++i) *--sp = 0u;  /* r12, r3-r0 */
  *--sp = 0xFFFFFFFDu;               /* EXC_RETURN: thread, PSP, basic frame */
  for (int i = 0; i < 8; ++i) *--sp = 0u;  /* r11-r4 */
  tcbs[k].sp = sp;
}

#if defined(__ARM_ARCH_6M__)
/* ARMv6-M (Cortex-M0+): no stmdb/ldmia of high registers, no IT blocks; the same
   saved-context layout (r4-r11, EXC_RETURN from the lowest address up), as FreeRTOS's
   CM0 port does it */
#define RESTORE_CONTEXT \
      "ldr r1, [r3]\n"    /* r3 = &current_tcb */ \
      "ldr r0, [r1]\n" \
      "adds r0, #16\n" \
      "ldmia r0!, {r4-r7}\n" \
      "mov r8, r4\n mov r9, r5\n mov r10, r6\n mov r11, r7\n" \
      "ldmia r0!, {r4}\n" \
      "mov lr, r4\n" \
      "msr psp, r0\n" \
      "subs r0, #36\n" \
      "ldmia r0!, {r4-r7}\n" \
      "bx lr\n" \
      ".syntax divided\n"  /* what GCC uses for ARMv6-M */

__attribute__((naked)) void SVC_Handler(void) {
  __asm__ volatile(
      ".syntax unified\n"
      "movs r0, #4\n"
      "mov r1, lr\n"
      "tst r0, r1\n"
      "beq 2f\n"
      "mrs r0, psp\n"
      "b 3f\n"
      "2:\n"
      "mrs r0, msp\n"
      "3:\n"
      "ldr r1, [r0, #24]\n"
      "subs r1, #2\n"
      "ldrb r1, [r1]\n"
      "cmp r1, #0\n"
      "beq 1f\n"
      "ldr r2, =svc_service\n"
      "bx r2\n"
      "1:\n"
      "ldr r3, =current_tcb\n"
      RESTORE_CONTEXT);
}

__attribute__((naked)) void PendSV_Handler(void) {
  __asm__ volatile(
      ".syntax unified\n"
      "mrs r0, psp\n"
      "ldr r3, =current_tcb\n"
      "ldr r2, [r3]\n"
      "subs r0, #36\n"
      "str r0, [r2]\n"
      "stmia r0!, {r4-r7}\n"
      "mov r4, r8\n mov r5, r9\n mov r6, r10\n mov r7, r11\n"
      "stmia r0!, {r4-r7}\n"
      "mov r4, lr\n"
      "stmia r0!, {r4}\n"
      "push {r3, r4}\n"
      "bl switch_context\n"
      "pop {r3, r4}\n"
      RESTORE_CONTEXT);
}
#else
__attribute__((naked)) void SVC_Handler(void) {
  __asm__ volatile(
      "tst lr, #4\n"
      "ite eq\n"
      "mrseq r0, msp\n"
      "mrsne r0, psp\n"
      "ldr r1, [r0, #24]\n"      /* stacked PC: after the svc */
      "ldrb r1, [r1, #-2]\n"     /* its immediate */
      "cbz r1, 1f\n"
      "b svc_service\n"
      "1:\n"                     /* svc 0: start the first task */
      "ldr r3, =current_tcb\n"
      "ldr r1, [r3]\n"
      "ldr r0, [r1]\n"
      "ldmia r0!, {r4-r11, lr}\n"
      "msr psp, r0\n"
      "isb\n"
      "bx lr\n");
}

__attribute__((naked)) void PendSV_Handler(void) {
  __asm__ volatile(
      "mrs r0, psp\n"
      "isb\n"
      "ldr r3, =current_tcb\n"
      "ldr r2, [r3]\n"
#ifdef USE_FP
      "tst lr, #0x10\n"
      "it eq\n"
      "vstmdbeq r0!, {s16-s31}\n"
#endif
      "stmdb r0!, {r4-r11, lr}\n"
      "str r0, [r2]\n"
      "push {r3, lr}\n"
      "bl switch_context\n"
      "pop {r3, lr}\n"
      "ldr r1, [r3]\n"
      "ldr r0, [r1]\n"
      "ldmia r0!, {r4-r11, lr}\n"
#ifdef USE_FP
      "tst lr, #0x10\n"
      "it eq\n"
      "vldmiaeq r0!, {s16-s31}\n"
#endif
      "msr psp, r0\n"
      "isb\n"
      "bx lr\n");
}
#endif

void SysTick_Handler(void) {
  ticks += 1u;
  ICSR = PENDSVSET;  /* round robin: switch at every tick */
}

int main(void) {
  uint32_t scratch;
  reference[0] = work(1000u, N_ITER, &scratch);
  reference[1] = work(1001u, N_ITER, &scratch);
  task_init(0u, task0);
  task_init(1u, task1);
  current_tcb = &tcbs[0];
  SHPR2 = 0x00u << 24;              /* SVCall: highest */
  SHPR3 = (0xF0u << 24) | (0xF0u << 16);  /* SysTick, PendSV: lowest */
  SYST_RVR = 997u - 1u;
  SYST_CVR = 0u;
  SYST_CSR = 7u;
  __asm__ volatile("svc 0" ::: "memory");
  return 1;  /* never reached */
}

void Reset_Handler(void) {
  for (uint32_t *s = &_sidata, *d = &_sdata; d < &_edata;) *d++ = *s++;
  for (uint32_t *d = &_sbss; d < &_ebss;) *d++ = 0u;
#ifdef USE_FP
  REG(0xE000ED88u) |= 0xFu << 20;  /* CPACR: FPU on */
  __asm__ volatile("dsb\n isb");
#endif
  exit_with(main());
  while (1) {
  }
}

__attribute__((section(".vectors"), used)) const void *const vectors[16] = {
    [0] = &_estack, [1] = (const void *)Reset_Handler,
    [11] = (const void *)SVC_Handler, [14] = (const void *)PendSV_Handler,
    [15] = (const void *)SysTick_Handler,
};
"""


def run(board: Board, tmp_path: Path, *defines: str) -> str:
    from tinymeter.sim.emulator import Emulator

    elf = build_program(board, PROGRAM, tmp_path, name="rtos", opt="-O2",
                        extra_flags=("-DN_ITER=4000u", *(f"-D{d}" for d in defines)),
                        startup=False)
    return Emulator(board).run(elf, [], budget_instructions=10**7, timeout_s=60).stdout


def _value(out: str, label: str) -> int:
    m = re.search(rf"^{re.escape(label)}(\d+)$", out, re.MULTILINE)
    assert m, out
    return int(m.group(1))


@pytest.mark.parametrize(("board_name", "fp"), [
    ("nucleo-l4r5zi", False), ("nucleo-l4r5zi", True), ("nucleo-f767zi", True),
    ("nucleo-f207zg", False), ("nucleo-g0b1re", False)],
    ids=["m4-integer", "m4f-extended-frame", "m7-extended-frame", "m3-integer",
         "m0plus-armv6m"])
def test_round_robin_scheduler_on_psp(tmp_path: Path, board_name: str, fp: bool) -> None:
    out = run(load_board(board_name), tmp_path, *(("USE_FP",) if fp else ()))
    assert _value(out, "psp ") == 1  # the tasks run on the process stack
    assert _value(out, "switches ") > 20  # many preemptions inside the workloads
    assert _value(out, "svc ") == 1 and _value(out, "doubled ") == 42  # SVC frame on PSP
    assert _value(out, "same ") == 1  # both workloads bit-identical to the reference


def test_masked_svc_is_a_fault(tmp_path: Path) -> None:
    from tinymeter.core.errors import FirmwareFault
    from tinymeter.sim.emulator import Emulator

    board = load_board("nucleo-l4r5zi")
    program = PROGRAM.replace('__asm__ volatile("svc 0" ::: "memory");',
                              '__asm__ volatile("cpsid i\\n svc 0" ::: "memory");')
    elf = build_program(board, program, tmp_path, name="rtos", opt="-O2",
                        extra_flags=("-DN_ITER=10u",), startup=False)
    with pytest.raises(FirmwareFault, match=r"SVC at 0x[0-9a-f]+ with SVCall priority 0 not "
                       r"above the execution priority 0 \(escalates to HardFault\)"):
        Emulator(board).run(elf, [], budget_instructions=10**6, timeout_s=30)
