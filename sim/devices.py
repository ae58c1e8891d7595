"""Register models of the MCU peripherals a board file describes (:mod:`tinymeter.core.devicemap`).

Pure table building (no Unicorn): the board data become the per-word rules of a native
register device (:mod:`.native_periph`, semantics in ``native/periph.c``), whose
``read``/``write`` the unit tests call and whose C callbacks the engine calls through
``mmio_map``, so firmware spinning on a register with behaviour runs without any Python
per access.  Only the pages of peripherals with a behaviour are served here; pages of
plain peripherals are mapped by the emulator as RAM preloaded with their reset values.

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

from tinymeter.core.devicemap import DeviceMap, Peripheral
from tinymeter.sim.native_periph import (
    CLEAR,
    FOLLOW,
    GPIO,
    GPIO_BRR,
    GPIO_BSRR,
    GPIO_ODR,
    MARK,
    OR,
    TIMER,
    NativeRegisters,
    RegisterTable,
    Rule,
)
from tinymeter.sim.peripherals import PAGE, MarkEvent

log = logging.getLogger(__name__)

# STM32 general-purpose timer registers (RM0432 39.4, same on F2/F4/F7/G0/L5).
TIM_CR1, TIM_DIER, TIM_SR, TIM_EGR, TIM_CNT, TIM_PSC, TIM_ARR = 0x00, 0x0C, 0x10, 0x14, 0x24, 0x28, 0x2C
# STM32 GPIO output registers (RM0432 8.5).
GPIO_ODR_OFFSET, GPIO_BSRR_OFFSET, GPIO_BRR_OFFSET = 0x14, 0x18, 0x28


class Timer:
    """An up-counting STM32 timer driven by the estimated cycle count (state in C)."""

    def __init__(self, spec: Peripheral, index: int, device: NativeRegisters) -> None:
        self.spec = spec
        self._index = index
        self._device = device

    def next_update_cycle(self, now: int) -> int | None:
        """Cycle of the next overflow (update event) if the counter runs, else None."""
        return self._device.timer_next_update(self._index, now)

    def next_update_if_enabled(self, now: int) -> int | None:
        """Next update cycle when its interrupt is enabled (DIER.UIE), else None."""
        if not self._device.timer_interrupt_enabled(self._index):
            return None
        return self.next_update_cycle(now)

    def pending_update(self, now: int) -> bool:
        """Update interrupt pending: UIF set (or newly set) and enabled in DIER."""
        return self._device.timer_pending(self._index, now)


def _gpio_prefix(port: Peripheral) -> str:
    upper = port.name.upper()
    return "P" + port.name[4:] if upper.startswith("GPIO") else port.name + "."


def device_table(devices: DeviceMap, marks: dict[tuple[int, int], tuple[str, int]],
                 exclude: Callable[[int], bool]) -> tuple[RegisterTable, list[Peripheral]]:
    """The register table of the behaviour peripherals' pages, and the timers in order."""
    pages: set[int] = set()
    for p in devices.peripherals:
        if p.has_behaviour:
            pages.update(range(p.base & ~(PAGE - 1), p.end, PAGE))
    table = RegisterTable(pages=tuple(sorted(page for page in pages if not exclude(page))))
    timers: list[Peripheral] = []
    gpio_ports = 0
    for p in devices.peripherals:
        if not any(table.serves(page) for page in range(p.base & ~(PAGE - 1), p.end, PAGE)):
            continue
        table.reset.update(p.reset)
        for rule in p.follow:
            table.rules.append(Rule(rule.to, FOLLOW, rule.from_, rule.from_mask, rule.to_mask,
                                    rule.shift()))
        table.rules += [Rule(address, CLEAR, mask) for address, mask in p.self_clearing]
        table.rules += [Rule(address, OR, mask) for address, mask in p.always_set]
        if p.model == "timer":
            index = len(timers)
            timers.append(p)
            table.timers.append((p.bits, p.clock_ratio))
            table.rules += [Rule(p.base + off, TIMER, index, off)
                            for off in (TIM_CR1, TIM_DIER, TIM_SR, TIM_EGR, TIM_CNT, TIM_PSC,
                                        TIM_ARR)]
        elif p.model == "gpio":
            port = gpio_ports
            gpio_ports += 1
            prefix = _gpio_prefix(p)
            while len(table.names) < 16 * port:
                table.names.append("?")
            table.names += [f"{prefix}{pin}" for pin in range(16)]
            odr = p.base + GPIO_ODR_OFFSET
            for offset, kind in ((GPIO_ODR_OFFSET, GPIO_ODR), (GPIO_BSRR_OFFSET, GPIO_BSRR),
                                 (GPIO_BRR_OFFSET, GPIO_BRR)):
                table.rules.append(Rule(p.base + offset, GPIO, port, kind, odr))
            for (address, value), (name, level) in marks.items():
                if p.base <= address < p.base + 0x400:
                    table.rules.append(Rule(address, MARK, value, table.name_id(name), level))
    return table, timers


class DeviceRegisters:
    """The pages of the board's behaviour peripherals, as one native MMIO device.

    *marks* maps (address, written word) to a board marker (name, level); *exclude*
    pages are served by another model.  Registers without a model are storage with
    their reset values.
    """

    def __init__(self, devices: DeviceMap, cycles: Callable[[], int],
                 marks: dict[tuple[int, int], tuple[str, int]] | None = None,
                 exclude: Callable[[int], bool] = lambda _page: False) -> None:
        table, timers = device_table(devices, marks or {}, exclude)
        #: Called after a timer register write (may move the next interrupt).
        self.on_change: Callable[[], None] = lambda: None
        self.native = NativeRegisters(table, cycles, on_timer=lambda: self.on_change())
        self.timers = [Timer(spec, i, self.native) for i, spec in enumerate(timers)]

    def pages(self) -> tuple[int, ...]:
        return self.native.pages()

    @property
    def events(self) -> list[MarkEvent]:
        return [MarkEvent(e.cycle, e.name, e.level) for e in self.native.events]

    def read(self, page: int, offset: int, size: int) -> int:
        return self.native.read(page, offset, size)

    def write(self, page: int, offset: int, size: int, value: int) -> None:
        self.native.write(page, offset, size, value)
