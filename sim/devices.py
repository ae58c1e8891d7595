"""Register models of the MCU peripherals a board file describes (:mod:`tinymeter.core.devicemap`).

Pure logic (no Unicorn), like :mod:`.peripherals`.  Only the pages of peripherals with a
behaviour are served here (through ``mmio_map``, so every access is a Python call);
pages of plain peripherals are mapped by the emulator as RAM preloaded with their
reset values, so firmware spinning on such a register runs at full emulation speed.

Behaviours modelled, because firmware waits on them:

* ``follow`` rules: a status field reads as its control field (HSERDY follows HSEON,
  PLLRDY follows PLLON, HSI48RDY in RCC_CRRCR follows HSI48ON, RCC_CFGR.SWS follows SW,
  USART TEACK/REACK follow TE/RE);
* ``timer``: an STM32 general-purpose timer (CR1.CEN, PSC with preload applied at an
  update event, ARR, CNT, SR.UIF, EGR.UG) counting the estimated core cycles times
  the board's timer/core clock ratio, so the firmware's own timer measures what the
  estimate says (it counts from 0 when enabled after reset or a CNT write);
* ``gpio``: output changes (ODR, BSRR, BRR writes) logged as marks with the estimated
  cycle: ``PB7`` style names, or the board's ``[markers]`` names for their writes;
* ``self_clearing`` bits (requests done at once) and ``always_set`` bits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tinymeter.core.devicemap import DeviceMap, Follow, Peripheral
from tinymeter.sim.peripherals import PAGE, MarkEvent

log = logging.getLogger(__name__)

_MASK32 = 0xFFFFFFFF
# STM32 general-purpose timer registers (RM0432 39.4, same on F2/F4/F7/G0/L5).
TIM_CR1, TIM_DIER, TIM_SR, TIM_EGR, TIM_CNT, TIM_PSC, TIM_ARR = 0x00, 0x0C, 0x10, 0x14, 0x24, 0x28, 0x2C
_CEN = _UIF = _UG = _UIE = 1
# STM32 GPIO output registers (RM0432 8.5).
GPIO_ODR, GPIO_BSRR, GPIO_BRR = 0x14, 0x18, 0x28


class Timer:
    """An up-counting STM32 timer driven by the estimated cycle count."""

    def __init__(self, spec: Peripheral, cycles: Callable[[], int]) -> None:
        self.spec = spec
        self._cycles = cycles
        self._top = (1 << spec.bits) - 1
        self.cr1 = self.dier = 0
        self.arr = self._top
        self.psc = self.psc_preload = 0
        #: CNT = (base + ticks since base_cycle) while enabled.
        self._base = 0
        self._base_cycle = 0
        self._sr = 0
        #: Overflows (update events) already reflected in SR.UIF.
        self._seen = 0

    @property
    def enabled(self) -> bool:
        return bool(self.cr1 & _CEN)

    def _raw(self, now: int) -> int:
        if not self.enabled:
            return self._base
        ticks = int((now - self._base_cycle) * self.spec.clock_ratio) // (self.psc + 1)
        return self._base + ticks

    def count(self, now: int) -> int:
        return self._raw(now) % (self.arr + 1)

    def _overflows(self, now: int) -> int:
        return self._raw(now) // (self.arr + 1)

    def _rebase(self, now: int, value: int) -> None:
        self._base, self._base_cycle, self._seen = value, now, 0

    def next_update_cycle(self, now: int) -> int | None:
        """Cycle of the next overflow (update event) if the counter runs, else None."""
        if not self.enabled:
            return None
        period_ticks = (self.arr + 1) * (self._overflows(now) + 1) - self._base
        cycles = period_ticks * (self.psc + 1) / self.spec.clock_ratio
        return self._base_cycle + int(cycles + 0.999999)

    def next_update_if_enabled(self, now: int) -> int | None:
        """Next update cycle when its interrupt is enabled (DIER.UIE), else None."""
        return self.next_update_cycle(now) if self.dier & _UIE else None

    def pending_update(self, now: int) -> bool:
        """Update interrupt pending: UIF set (or newly set) and enabled in DIER."""
        return bool(self.dier & _UIE) and bool(self._status(self._cycles()) & _UIF)

    def _status(self, now: int) -> int:
        """SR, latching UIF for an overflow since the last look (what a read of SR sees)."""
        overflows = self._overflows(now)
        if overflows > self._seen:
            self._sr |= _UIF
            self._seen = overflows
        return self._sr

    def read(self, offset: int) -> int | None:
        now = self._cycles()
        if offset == TIM_CNT:
            return self.count(now)
        if offset == TIM_SR:
            return self._status(now)
        return {TIM_CR1: self.cr1, TIM_DIER: self.dier, TIM_PSC: self.psc_preload,
                TIM_ARR: self.arr, TIM_EGR: 0}.get(offset)

    def write(self, offset: int, value: int) -> bool:
        now = self._cycles()
        if offset == TIM_CR1:
            raw = self._raw(now)
            self.cr1 = value & 0x3FF
            self._rebase(now, raw % (self.arr + 1))
        elif offset == TIM_CNT:
            self._rebase(now, value & self._top)
        elif offset == TIM_PSC:
            self.psc_preload = value & 0xFFFF
        elif offset == TIM_ARR:
            self.arr = value & self._top
            self._rebase(now, self.count(now))
        elif offset == TIM_EGR:
            if value & _UG:  # update event: counter and prescaler restart, PSC loads
                self.psc = self.psc_preload
                self._rebase(now, 0)
                self._sr |= _UIF
        elif offset == TIM_SR:  # rc_w0: writing 0 clears
            self._status(now)
            self._sr &= value
        elif offset == TIM_DIER:
            self.dier = value & 0xFFFF
        else:
            return False
        return True


def _compiled(rule: Follow) -> tuple[int, int, int, int]:
    return rule.from_, rule.from_mask, rule.to_mask, rule.shift()


class DeviceRegisters:
    """The pages of the board's behaviour peripherals, as one MMIO device.

    *marks* maps (address, written word) to a board marker (name, level); *exclude*
    pages are served by another model.  Registers without a model are storage with
    their reset values.
    """

    def __init__(self, devices: DeviceMap, cycles: Callable[[], int],
                 marks: dict[tuple[int, int], tuple[str, int]] | None = None,
                 exclude: Callable[[int], bool] = lambda _page: False) -> None:
        self._cycles = cycles
        self._marks = marks or {}
        self._store: dict[int, int] = {}
        pages: set[int] = set()
        for p in devices.peripherals:
            if p.has_behaviour:
                pages.update(range(p.base & ~(PAGE - 1), p.end, PAGE))
        self._pages = tuple(sorted(page for page in pages if not exclude(page)))
        #: status register -> [(control register, control mask, status mask, shift)]
        self._follow: dict[int, list[tuple[int, int, int, int]]] = {}
        self._clearing: dict[int, int] = {}
        self._set: dict[int, int] = {}
        self.timers: list[Timer] = []
        self._timer_at: dict[int, Timer] = {}
        self._gpio: dict[int, Peripheral] = {}
        for p in devices.peripherals:
            if not any(page in self._pages for page in range(p.base & ~(PAGE - 1), p.end, PAGE)):
                continue
            for address, value in p.reset:
                self._store[address] = value
            for rule in p.follow:
                self._follow.setdefault(rule.to, []).append(_compiled(rule))
            for address, mask in p.self_clearing:
                self._clearing[address] = self._clearing.get(address, 0) | mask
            for address, mask in p.always_set:
                self._set[address] = self._set.get(address, 0) | mask
            if p.model == "timer":
                timer = Timer(p, cycles)
                self.timers.append(timer)
                self._timer_at[p.base] = timer
            elif p.model == "gpio":
                self._gpio[p.base] = p
        self.events: list[MarkEvent] = []
        #: Called after a timer register write (may move the next interrupt).
        self.on_change: Callable[[], None] = lambda: None

    def pages(self) -> tuple[int, ...]:
        return self._pages

    def _owner(self, address: int) -> int | None:
        """Base of the timer or GPIO port whose register block holds *address* (STM32
        register blocks are 1 KiB-aligned)."""
        base = address & ~0x3FF
        return base if base in self._timer_at or base in self._gpio else None

    def _read_word(self, address: int) -> int:
        timer = self._timer_at.get(address & ~0x3FF)
        if timer is not None:
            value = timer.read(address & 0x3FF)
            if value is not None:
                return value
        value = self._store.get(address, 0) | self._set.get(address, 0)
        rules = self._follow.get(address)
        if rules:
            store = self._store
            for src, src_mask, dst_mask, shift in rules:
                bits = store.get(src, 0) & src_mask
                bits = bits << shift if shift >= 0 else bits >> -shift
                value = (value & ~dst_mask) | (bits & dst_mask)
        return value

    def _write_word(self, address: int, value: int) -> None:
        base = self._owner(address)
        if base in self._timer_at and self._timer_at[base].write(address - base, value):
            self.on_change()
            return
        if base in self._gpio:
            self._gpio_write(self._gpio[base], address, value)
            if address - base in (GPIO_BSRR, GPIO_BRR):
                return  # write-only: the effect is in ODR
        self._store[address] = value & ~self._clearing.get(address, 0)

    def _gpio_write(self, port: Peripheral, address: int, value: int) -> None:
        odr_address = port.base + GPIO_ODR
        old = self._store.get(odr_address, 0)
        offset = address - port.base
        if offset == GPIO_ODR:
            new = value & 0xFFFF
        elif offset == GPIO_BSRR:
            new = (old | (value & 0xFFFF)) & ~(value >> 16)
        elif offset == GPIO_BRR:
            new = old & ~(value & 0xFFFF)
        else:
            return
        self._store[odr_address] = new
        now = self._cycles()
        named = self._marks.get((address, value & _MASK32))
        if named is not None:
            self.events.append(MarkEvent(now, *named))
            return
        upper = port.name.upper()
        prefix = "P" + port.name[4:] if upper.startswith("GPIO") else port.name + "."
        for pin in range(16):
            if (old ^ new) >> pin & 1:
                self.events.append(MarkEvent(now, f"{prefix}{pin}", new >> pin & 1))

    # -- mmio interface ----------------------------------------------------------------
    def read(self, page: int, offset: int, size: int) -> int:
        address = page + offset
        word = self._read_word(address & ~3)
        return (word >> (8 * (address & 3))) & ((1 << (8 * size)) - 1)

    def write(self, page: int, offset: int, size: int, value: int) -> None:
        address = page + offset
        word_address = address & ~3
        if size != 4:
            shift = 8 * (address & 3)
            mask = ((1 << (8 * size)) - 1) << shift
            old = self._store.get(word_address, 0)
            value = (old & ~mask) | ((value << shift) & mask)
        self._write_word(word_address, value & _MASK32)
