"""Exception entry and return on the emulated Cortex-M core (SysTick, timer interrupts,
PendSV, SVC), from the main or the process stack.

Why here and by hand: Unicorn 2.1's M-profile core has no NVIC device, so nothing
raises a peripheral exception; measured on a tiny program, a handler that returns with
an EXC_RETURN value in LR (``bx lr``, ``pop {pc}``) while IPSR is non-zero stops with a
prefetch abort (QEMU exception 3) at the EXC_RETURN address instead of unstacking.  So
the emulator does what the hardware does (ARMv7-M ARM B1.5.6-B1.5.8), through register
and memory access:

* entry (:meth:`ExceptionEngine.enter`): push r0-r3, r12, lr, pc (the interrupted
  block's address, which has not run yet; for SVC the instruction after it), xPSR on
  the stack in use (the process stack PSP when thread mode runs with CONTROL.SPSEL = 1,
  as RTOS threads do; else the main stack), 8-byte aligned with xPSR bit 9 noting the
  padding; when the FPU is on and the interrupted context has used it (CONTROL.FPCA,
  which the core sets on its first FP instruction), the extended frame adds s0-s15,
  FPSCR and a reserved word.  Then LR = EXC_RETURN (0xFFFFFFF1 handler, 0xFFFFFFF9
  thread/MSP, 0xFFFFFFFD thread/PSP; 0xFFFFFFE1/E9/ED with the FP frame), CONTROL.SPSEL
  and FPCA cleared (handlers run on MSP), IPSR = exception number, PC = the vector at
  VTOR (VTOR 0 means the boot alias: the board's text region);
* return (:meth:`ExceptionEngine.leave`, on that prefetch abort): pop the frame from
  the stack EXC_RETURN names (an RTOS's PendSV handler has switched PSP to another
  thread's stack by then), restore xPSR (IPSR of the interrupted context included),
  CONTROL.SPSEL/FPCA and the stack pointer, continue at the stacked PC, and take the
  next pending exception at once (tail chaining).

The FP frame is written at entry (the hardware's lazy stacking, FPCCR.LSPEN, only
reserves the space and writes it when the handler first uses the FPU: the memory
result after the handler is the same).  Timing: the native hook's cycle alarm stops
emulation at the first block starting at or after the next event (SysTick zero
crossing, timer update), so exceptions arrive at block boundaries, at most one block
late.  Entry/return cycles are not added.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

from unicorn import Uc, UcError, arm_const

from tinymeter.core.errors import FirmwareFault
from tinymeter.sim.nvic import ExceptionModel

log = logging.getLogger(__name__)

EXC_RETURN_HANDLER = 0xFFFFFFF1
EXC_RETURN_THREAD_MSP = 0xFFFFFFF9
EXC_RETURN_THREAD_PSP = 0xFFFFFFFD
#: EXC_RETURN bits: 0 = extended (FP) frame, thread mode, process stack.
_BASIC_FRAME, _TO_THREAD, _TO_PSP = 0x10, 0x8, 0x4
SVCALL = 11
#: PC values at which an exception return is recognised (EXC_RETURN with bit 0 clear).
EXC_RETURN_MIN = 0xFFFFFFE0
#: While an interrupt is pending but masked, re-check this often (cycles).  Unmasking
#: in the ELF's code (``cpsie``, ``msr PRIMASK/BASEPRI``) is caught at once by code hooks
#: after those instructions; this is the safety net for code the ELF does not hold
#: (copied to RAM) or a higher-priority handler returning.
MASKED_RECHECK_CYCLES = 65536

_FRAME_REGS = (arm_const.UC_ARM_REG_R0, arm_const.UC_ARM_REG_R1, arm_const.UC_ARM_REG_R2,
               arm_const.UC_ARM_REG_R3, arm_const.UC_ARM_REG_R12, arm_const.UC_ARM_REG_LR)
_FP_REGS = (*range(arm_const.UC_ARM_REG_S0, arm_const.UC_ARM_REG_S0 + 16),
            arm_const.UC_ARM_REG_FPSCR)
_ALIGNED = 1 << 9
_SPSEL, _FPCA = 2, 4
_BASIC_WORDS, _FP_WORDS = 8, 26


@dataclass
class ExceptionEngine:
    """Delivers the exceptions :class:`~tinymeter.sim.nvic.ExceptionModel` chooses."""

    model: ExceptionModel
    #: Where VTOR = 0 points (the boot alias of the vector table).
    boot_vectors: int
    has_fpu: bool
    delivered: int = 0
    #: A register write may have made an interrupt deliverable (ISPR, UG with UIE, ...):
    #: look at the next block instead of after the masked re-check interval.
    recheck_soon: bool = False

    def service(self, uc: Uc, now: int) -> None:
        """Latch due sources and enter the exception to take now, if any."""
        self.recheck_soon = False
        self.model.poll(now)
        exception = self.model.choose(uc.reg_read(arm_const.UC_ARM_REG_PRIMASK),
                                      uc.reg_read(arm_const.UC_ARM_REG_BASEPRI))
        if exception is not None:
            self.enter(uc, exception)

    def next_alarm(self, now: int) -> int | None:
        """Cycle at which the emulator must look again (None: nothing scheduled)."""
        nxt = self.model.next_cycle(now)
        if self.model.masked_pending():
            soon = now + (1 if self.recheck_soon else MASKED_RECHECK_CYCLES)
            nxt = soon if nxt is None else min(nxt, soon)
        return nxt

    def _vector(self, uc: Uc, exception: int) -> int:
        table = self.model.vtor or self.boot_vectors
        try:
            handler = struct.unpack("<I", bytes(uc.mem_read(table + 4 * exception, 4)))[0]
        except UcError:
            handler = 0
        if not handler & 1:
            raise FirmwareFault(f"firmware fault: exception {exception} has no Thumb handler in "
                                f"the vector table at 0x{table:08x} (entry 0x{handler:08x})")
        return handler

    def enter(self, uc: Uc, exception: int, return_pc: int | None = None) -> None:
        """Stack the interrupted context and branch to the handler of *exception*
        (*return_pc*: where to return, default the current PC)."""
        ipsr = uc.reg_read(arm_const.UC_ARM_REG_IPSR) & 0x1FF
        control = uc.reg_read(arm_const.UC_ARM_REG_CONTROL)
        on_psp = ipsr == 0 and bool(control & _SPSEL)
        fp_frame = self.has_fpu and bool(control & _FPCA)
        handler = self._vector(uc, exception)
        sp = uc.reg_read(arm_const.UC_ARM_REG_SP)  # the stack in use (PSP or MSP)
        xpsr = uc.reg_read(arm_const.UC_ARM_REG_XPSR)
        frame_sp = sp - 4 * (_FP_WORDS if fp_frame else _BASIC_WORDS)
        if frame_sp & 4:
            frame_sp -= 4
            xpsr |= _ALIGNED
        pc = uc.reg_read(arm_const.UC_ARM_REG_PC) if return_pc is None else return_pc
        words = [uc.reg_read(r) for r in _FRAME_REGS] + [pc & ~1, xpsr]
        if fp_frame:
            words += [uc.reg_read(r) for r in _FP_REGS] + [0]
        try:
            uc.mem_write(frame_sp, struct.pack(f"<{len(words)}I", *words))
        except UcError:
            raise FirmwareFault(f"firmware fault: exception {exception}: stacking to "
                                f"0x{frame_sp:08x} ({'PSP' if on_psp else 'MSP'}) failed "
                                "(stack outside memory)") from None
        uc.reg_write(arm_const.UC_ARM_REG_SP, frame_sp)
        if control & (_SPSEL | _FPCA):
            # handlers run on MSP with no FP context; in thread mode this write swaps
            # the banked stack pointers (SP becomes MSP, PSP keeps frame_sp)
            uc.reg_write(arm_const.UC_ARM_REG_CONTROL, control & ~(_SPSEL | _FPCA))
        exc_return = (0xFFFFFFE1 | (0 if fp_frame else _BASIC_FRAME)
                      | (_TO_THREAD if ipsr == 0 else 0) | (_TO_PSP if on_psp else 0))
        uc.reg_write(arm_const.UC_ARM_REG_LR, exc_return)
        uc.reg_write(arm_const.UC_ARM_REG_IPSR, exception)
        uc.reg_write(arm_const.UC_ARM_REG_PC, handler | 1)  # bit 0 sets the Thumb state
        self.model.enter(exception)
        self.delivered += 1

    def supervisor_call(self, uc: Uc, return_pc: int) -> None:
        """``svc``: the SVCall exception at once (synchronous), or the fault the hardware
        escalates to when its priority cannot preempt (a masked SVC is a HardFault)."""
        limit = self.model.execution_priority(uc.reg_read(arm_const.UC_ARM_REG_PRIMASK),
                                              uc.reg_read(arm_const.UC_ARM_REG_BASEPRI))
        if self.model.priority.get(SVCALL, 0) >= limit:
            raise FirmwareFault(f"firmware fault: SVC at 0x{return_pc - 2:08x} with SVCall "
                                f"priority {self.model.priority.get(SVCALL, 0)} not above the "
                                f"execution priority {limit} (escalates to HardFault)")
        self.enter(uc, SVCALL, return_pc)

    def leave(self, uc: Uc, exc_return: int, now: int) -> None:
        """Return from the active exception (the core fetched from *exc_return*)."""
        if not self.model.active:
            raise FirmwareFault(f"firmware fault: branch to EXC_RETURN 0x{exc_return:08x} "
                                "outside any exception handler")
        fp_frame = not exc_return & _BASIC_FRAME
        to_thread, to_psp = bool(exc_return & _TO_THREAD), bool(exc_return & _TO_PSP)
        nested = len(self.model.active) > 1
        if (exc_return | 0x1D) != 0xFFFFFFFD or (to_psp and not to_thread) \
                or (fp_frame and not self.has_fpu):
            raise FirmwareFault(f"firmware fault: invalid EXC_RETURN 0x{exc_return:08x} "
                                f"(INVPC) in exception {self.model.active[-1]}")
        if to_thread and nested:
            raise FirmwareFault(f"firmware fault: EXC_RETURN 0x{exc_return:08x} returns to "
                                f"thread mode from nested exception {self.model.active[-1]} "
                                "(INVPC)")
        self.model.leave()
        sp = uc.reg_read(arm_const.UC_ARM_REG_PSP if to_psp else arm_const.UC_ARM_REG_MSP)
        count = _FP_WORDS if fp_frame else _BASIC_WORDS
        try:
            words = struct.unpack(f"<{count}I", bytes(uc.mem_read(sp, 4 * count)))
        except UcError:
            raise FirmwareFault(f"firmware fault: exception return: unstacking from "
                                f"0x{sp:08x} ({'PSP' if to_psp else 'MSP'}) failed") from None
        for reg, value in zip(_FRAME_REGS, words[:6]):
            uc.reg_write(reg, value)
        if fp_frame:
            for reg, value in zip(_FP_REGS, words[8:8 + len(_FP_REGS)]):
                uc.reg_write(reg, value)
        xpsr = words[7]
        new_sp = sp + 4 * count + (4 if xpsr & _ALIGNED else 0)
        uc.reg_write(arm_const.UC_ARM_REG_XPSR, xpsr & ~_ALIGNED)  # IPSR: back to its mode
        control = uc.reg_read(arm_const.UC_ARM_REG_CONTROL) & ~(_SPSEL | _FPCA)
        control |= (_SPSEL if to_psp else 0) | (_FPCA if fp_frame else 0)
        if to_psp:
            uc.reg_write(arm_const.UC_ARM_REG_PSP, new_sp)
        else:
            uc.reg_write(arm_const.UC_ARM_REG_MSP, new_sp)
        uc.reg_write(arm_const.UC_ARM_REG_CONTROL, control)  # thread: selects the stack
        uc.reg_write(arm_const.UC_ARM_REG_PC, words[6] | 1)
        self.service(uc, now)  # tail chaining: the next pending exception at once
