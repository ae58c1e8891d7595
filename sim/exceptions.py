"""Exception entry and return on the emulated Cortex-M core (SysTick, timer interrupts).

Why here and by hand: Unicorn 2.1's M-profile core has no NVIC device, so nothing
raises a peripheral exception; measured on a tiny program, a handler that returns with
an EXC_RETURN value in LR (``bx lr``, ``pop {pc}``) while IPSR is non-zero stops with a
prefetch abort (QEMU exception 3) at the EXC_RETURN address instead of unstacking.  So
the emulator does what the hardware does, through register and memory access:

* entry (:meth:`ExceptionEngine.enter`): push r0-r3, r12, lr, pc (the interrupted
  block's address, which has not run yet), xPSR on the main stack (8-byte aligned,
  xPSR bit 9 noting the padding), LR = EXC_RETURN (0xFFFFFFF9 from thread mode,
  0xFFFFFFF1 nested), IPSR = exception number, PC = the vector at VTOR (VTOR 0 means
  the boot alias: the board's text region);
* return (:meth:`ExceptionEngine.leave`, on that prefetch abort): pop the frame,
  restore xPSR (IPSR of the interrupted context included) and SP, continue at the
  stacked PC, and take the next pending exception at once (tail chaining).

The FPU registers s0-s15/FPSCR of the interrupted code are saved on the Python side
(the hardware's lazy extended frame is not reproduced in target memory).  Timing: the
native hook's cycle alarm stops emulation at the first block starting at or after the
next event (SysTick zero crossing, timer update), so exceptions arrive at block
boundaries, at most one block late.  Entry/return cycles are not added.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field

from unicorn import Uc, UcError, arm_const

from tinymeter.core.errors import EmulationError, FirmwareFault
from tinymeter.sim.nvic import ExceptionModel

log = logging.getLogger(__name__)

EXC_RETURN_HANDLER = 0xFFFFFFF1
EXC_RETURN_THREAD_MSP = 0xFFFFFFF9
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


@dataclass
class _Entry:
    exception: int
    fp: tuple[int, ...]


@dataclass
class ExceptionEngine:
    """Delivers the exceptions :class:`~tinymeter.sim.nvic.ExceptionModel` chooses."""

    model: ExceptionModel
    #: Where VTOR = 0 points (the boot alias of the vector table).
    boot_vectors: int
    has_fpu: bool
    stack: list[_Entry] = field(default_factory=list)
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

    def enter(self, uc: Uc, exception: int) -> None:
        """Stack the interrupted context and branch to the handler of *exception*."""
        ipsr = uc.reg_read(arm_const.UC_ARM_REG_IPSR) & 0x1FF
        if ipsr == 0 and uc.reg_read(arm_const.UC_ARM_REG_CONTROL) & 2:
            raise EmulationError("an interrupt arrived while the firmware runs on the process "
                                 "stack (PSP, an RTOS thread): not supported by the emulator")
        handler = self._vector(uc, exception)
        sp = uc.reg_read(arm_const.UC_ARM_REG_SP)
        xpsr = uc.reg_read(arm_const.UC_ARM_REG_XPSR)
        frame_sp = sp - 32
        if frame_sp & 4:
            frame_sp -= 4
            xpsr |= _ALIGNED
        pc = uc.reg_read(arm_const.UC_ARM_REG_PC) & ~1
        words = [uc.reg_read(r) for r in _FRAME_REGS] + [pc, xpsr]
        uc.mem_write(frame_sp, struct.pack("<8I", *words))
        fp = tuple(uc.reg_read(r) for r in _FP_REGS) if self.has_fpu else ()
        uc.reg_write(arm_const.UC_ARM_REG_SP, frame_sp)
        uc.reg_write(arm_const.UC_ARM_REG_LR,
                     EXC_RETURN_THREAD_MSP if ipsr == 0 else EXC_RETURN_HANDLER)
        uc.reg_write(arm_const.UC_ARM_REG_IPSR, exception)
        uc.reg_write(arm_const.UC_ARM_REG_PC, handler | 1)  # bit 0 sets the Thumb state
        self.model.enter(exception)
        self.stack.append(_Entry(exception, fp))
        self.delivered += 1

    def leave(self, uc: Uc, exc_return: int, now: int) -> None:
        """Return from the active exception (the core fetched from *exc_return*)."""
        if not self.stack:
            raise FirmwareFault(f"firmware fault: branch to EXC_RETURN 0x{exc_return:08x} "
                                "outside any exception handler")
        if exc_return & 4:
            raise EmulationError("exception return to the process stack (PSP): not "
                                 "supported by the emulator")
        entry = self.stack.pop()
        self.model.leave()
        sp = uc.reg_read(arm_const.UC_ARM_REG_SP)
        words = struct.unpack("<8I", bytes(uc.mem_read(sp, 32)))
        for reg, value in zip(_FRAME_REGS, words[:6]):
            uc.reg_write(reg, value)
        xpsr = words[7]
        uc.reg_write(arm_const.UC_ARM_REG_SP, sp + 32 + (4 if xpsr & _ALIGNED else 0))
        uc.reg_write(arm_const.UC_ARM_REG_XPSR, xpsr & ~_ALIGNED)
        for reg, value in zip(_FP_REGS, entry.fp):
            uc.reg_write(reg, value)
        uc.reg_write(arm_const.UC_ARM_REG_PC, words[6] | 1)
        self.service(uc, now)  # tail chaining: the next pending exception at once

