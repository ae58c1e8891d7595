"""NVIC and SCB exception state: which exception the core takes next, and when.

Pure logic (no Unicorn).  Why a model of our own: Unicorn's Cortex-M CPU (QEMU's
M-profile core without QEMU's NVIC device) performs no exception entry from
peripherals; it only raises a prefetch abort when a handler branches to an EXC_RETURN
value.  The emulator therefore stacks and unstacks frames itself
(:mod:`tinymeter.sim.emulator`) and asks this model which exception to take.

Modelled: the NVIC registers firmware programs (ISER/ICER, ISPR/ICPR, IABR, IPR byte
priorities), SCB ICSR (PENDSTSET/CLR, PENDSVSET/CLR, VECTACTIVE), VTOR, SHPR1-3 (system
handler priorities: SVCall in SHPR2[31:24], PendSV SHPR3[23:16], SysTick
SHPR3[31:24]); sources: the SysTick zero crossing (an event)
and peripheral interrupt lines (levels: a timer's UIF with UIE stays pending until the
handler clears it).  Choice: the pending, enabled exception with the lowest priority
value (then the lowest number) whose priority is below the current execution priority
(active exceptions, PRIMASK, BASEPRI).  SVC is taken synchronously by the emulator
(:meth:`~tinymeter.sim.exceptions.ExceptionEngine.supervisor_call`).  Not modelled:
priority grouping (AIRCR), fault escalation (a masked SVC is reported as an error),
and the ~12 entry / ~10 return cycles of the hardware.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

SYSTICK = 15
FIRST_IRQ = 16
NVIC_ISER = 0xE000E100
NVIC_ICER = 0xE000E180
NVIC_ISPR = 0xE000E200
NVIC_ICPR = 0xE000E280
NVIC_IABR = 0xE000E300
NVIC_IPR = 0xE000E400
SCB_ICSR = 0xE000ED04
SCB_VTOR = 0xE000ED08
SCB_SHPR = 0xE000ED18  # SHPR1..3: bytes for exceptions 4..15
_NVIC_WORDS = 16  # 512 interrupts
_PENDSTSET = 1 << 26
_PENDSTCLR = 1 << 25
_PENDSVSET = 1 << 28
_PENDSVCLR = 1 << 27
PENDSV = 14
_THREAD_PRIORITY = 256


class Source(Protocol):
    """Something that raises an exception: a timer, SysTick."""

    exception: int

    def asserted(self, now: int) -> bool:
        """Whether it requests its exception at cycle *now* (consumes an event)."""

    def next_cycle(self, now: int) -> int | None:
        """The next cycle at which it will request (None: not scheduled)."""


@dataclass
class ExceptionModel:
    """Register state of the NVIC/SCB and the exception bookkeeping of one run."""

    enabled: set[int] = field(default_factory=set)
    pending: set[int] = field(default_factory=set)
    #: Active exceptions, outermost first.
    active: list[int] = field(default_factory=list)
    priority: dict[int, int] = field(default_factory=dict)
    vtor: int = 0
    sources: list[Source] = field(default_factory=list)

    # -- registers -------------------------------------------------------------------
    def handles(self, address: int) -> bool:
        return (NVIC_ISER <= address < NVIC_IPR + 4 * 124 or address in (SCB_ICSR, SCB_VTOR)
                or SCB_SHPR <= address < SCB_SHPR + 12)

    def _bits(self, base: int, address: int, bits: set[int]) -> int:
        first = 32 * ((address - base) // 4)
        return sum(1 << (n - first) for n in bits if first <= n < first + 32)

    def read_word(self, address: int) -> int:
        for base, bits in ((NVIC_ISER, self.enabled), (NVIC_ICER, self.enabled),
                           (NVIC_ISPR, self.pending), (NVIC_ICPR, self.pending)):
            if base <= address < base + 4 * _NVIC_WORDS:
                return self._bits(base, address, {e - FIRST_IRQ for e in bits if e >= FIRST_IRQ})
        if NVIC_IABR <= address < NVIC_IABR + 4 * _NVIC_WORDS:
            return self._bits(NVIC_IABR, address,
                              {e - FIRST_IRQ for e in self.active if e >= FIRST_IRQ})
        if NVIC_IPR <= address < NVIC_IPR + 4 * 124:
            first = FIRST_IRQ + (address - NVIC_IPR)
            return sum(self.priority.get(first + i, 0) << (8 * i) for i in range(4))
        if SCB_SHPR <= address < SCB_SHPR + 12:
            first = 4 + (address - SCB_SHPR)
            return sum(self.priority.get(first + i, 0) << (8 * i) for i in range(4))
        if address == SCB_VTOR:
            return self.vtor
        if address == SCB_ICSR:
            return ((self.active[-1] if self.active else 0)
                    | (_PENDSTSET if SYSTICK in self.pending else 0)
                    | (_PENDSVSET if PENDSV in self.pending else 0))
        return 0

    def write_word(self, address: int, value: int) -> None:
        irqs = {FIRST_IRQ + 32 * ((address & 0x7F) // 4) + i for i in range(32) if value >> i & 1}
        if NVIC_ISER <= address < NVIC_ISER + 4 * _NVIC_WORDS:
            self.enabled |= irqs
        elif NVIC_ICER <= address < NVIC_ICER + 4 * _NVIC_WORDS:
            self.enabled -= irqs
        elif NVIC_ISPR <= address < NVIC_ISPR + 4 * _NVIC_WORDS:
            self.pending |= irqs
        elif NVIC_ICPR <= address < NVIC_ICPR + 4 * _NVIC_WORDS:
            self.pending -= irqs
        elif NVIC_IPR <= address < NVIC_IPR + 4 * 124 or SCB_SHPR <= address < SCB_SHPR + 12:
            first = (4 + address - SCB_SHPR if address >= SCB_SHPR
                     else FIRST_IRQ + address - NVIC_IPR)
            for i in range(4):
                self.priority[first + i] = (value >> (8 * i)) & 0xFF
        elif address == SCB_VTOR:
            self.vtor = value & 0xFFFFFF80
        elif address == SCB_ICSR:
            if value & _PENDSTSET:
                self.pending.add(SYSTICK)
            if value & _PENDSTCLR:
                self.pending.discard(SYSTICK)
            if value & _PENDSVSET:  # an RTOS's context-switch request
                self.pending.add(PENDSV)
            if value & _PENDSVCLR:
                self.pending.discard(PENDSV)

    # -- decisions -------------------------------------------------------------------
    def poll(self, now: int) -> None:
        """Latch every source requesting at *now* as pending."""
        for source in self.sources:
            if source.asserted(now):
                self.pending.add(source.exception)

    def _runnable(self, exception: int) -> bool:
        return exception < FIRST_IRQ or exception in self.enabled

    def execution_priority(self, primask: int, basepri: int) -> int:
        prio = min((self.priority.get(e, 0) for e in self.active), default=_THREAD_PRIORITY)
        if basepri:
            prio = min(prio, basepri)
        if primask & 1:
            prio = min(prio, 0)
        return prio

    def choose(self, primask: int, basepri: int) -> int | None:
        """The exception to take now, or None."""
        limit = self.execution_priority(primask, basepri)
        ready = [e for e in self.pending if self._runnable(e) and self.priority.get(e, 0) < limit]
        if not ready:
            return None
        return min(ready, key=lambda e: (self.priority.get(e, 0), e))

    def masked_pending(self) -> bool:
        """Something is pending and enabled but cannot run yet (masked or lower priority):
        the emulator re-checks soon, since unmasking (``cpsie i``) is not observable."""
        return any(self._runnable(e) for e in self.pending)

    def enter(self, exception: int) -> None:
        self.pending.discard(exception)
        self.active.append(exception)

    def leave(self) -> int | None:
        return self.active.pop() if self.active else None

    def next_cycle(self, now: int) -> int | None:
        cycles = [c for c in (s.next_cycle(now) for s in self.sources) if c is not None]
        return min(cycles) if cycles else None


@dataclass
class LineSource:
    """A peripheral interrupt line (level): asserted while *level* says so."""

    exception: int
    level: Callable[[int], bool]
    when: Callable[[int], int | None]

    def asserted(self, now: int) -> bool:
        return self.level(now)

    def next_cycle(self, now: int) -> int | None:
        return self.when(now)
