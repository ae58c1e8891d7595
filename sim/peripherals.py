"""Register models of the few peripherals the emulator serves through ``mmio_map``.

Pure table building (no Unicorn): each model compiles its registers into the rules of a
native register device (:mod:`.native_periph`, semantics in ``native/periph.c``) and
answers ``read(page, offset, size)`` / ``write(page, offset, size, value)`` through it,
so the models are unit-tested without an engine, and the emulator maps their pages
with C callbacks: polling any of them costs no Python.  Why ``mmio_map`` and not memory
hooks: a memory hook makes Unicorn check every access of the whole program (about 4x
slower); an MMIO page costs only its own accesses.

* :class:`SystemTimers` serves the DWT page (``DWT_CTRL``, ``DWT_CYCCNT``) and the
  System Control Space page (SysTick ``CSR``/``RVR``/``CVR``/``CALIB``; the NVIC/SCB
  words through the Python exception model; ``DEMCR`` and every other SCS register as
  plain storage).  The cycle counts come from the native hook's running estimate, so
  firmware that times itself (``tm_prof_begin/end`` reading CYCCNT, or SysTick on
  ARMv6-M) prints the emulator's estimated cycles.
* :class:`UartTx` serves a board UART's transmit side: status always "transmit empty,
  transmission complete" (and, on USART/LPUART with ISR, TEACK/REACK following
  CR1.TE/RE), every byte written to the data register goes to a sink.
* :class:`BoardRegisters` serves the pages the hardware firmware's boot writes and
  marker pins touch (clock gates, pin multiplexing, flash control, GPIO): plain
  storage, polls answered as the board file says they end, marker writes logged with
  the cycle count at which they happened (an emulated logic-analyser trace).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from tinymeter.core.boards import UART_LAYOUTS, Board
from tinymeter.sim.native_periph import (
    CYCCNT,
    CYCCNT_CTRL,
    CYCLES,
    FOLLOW,
    FORCE,
    MARK,
    OR,
    PYTHON,
    SYST,
    UART_DATA,
    NativeRegisters,
    RegisterTable,
    Rule,
)
from tinymeter.sim.native_periph import SYST_CALIB as SYST_CALIB_REG
from tinymeter.sim.native_periph import SYST_CSR as SYST_CSR_REG
from tinymeter.sim.native_periph import SYST_CVR as SYST_CVR_REG
from tinymeter.sim.native_periph import SYST_RVR as SYST_RVR_REG
from tinymeter.sim.nvic import ExceptionModel

log = logging.getLogger(__name__)

PAGE = 0x1000
DWT_PAGE = 0xE0001000
SCS_PAGE = 0xE000E000

DWT_CTRL = 0xE0001000
DWT_CYCCNT = 0xE0001004
SYST_CSR = 0xE000E010
SYST_RVR = 0xE000E014
SYST_CVR = 0xE000E018
SYST_CALIB = 0xE000E01C
DEMCR = 0xE000EDFC

_MASK32 = 0xFFFFFFFF


def _exception_words(exceptions: ExceptionModel) -> list[int]:
    """Addresses of the SCS words the exception model serves (NVIC, ICSR, VTOR, SHPR)."""
    return [a for a in range(SCS_PAGE, SCS_PAGE + PAGE, 4) if exceptions.handles(a)]


class SystemTimers:
    """DWT cycle counter and SysTick driven by an estimated cycle count.

    *cycles* returns the live estimate in whole cycles (the counting hook's running
    counter).  The counter advances by whole translated blocks: the hook adds a block's
    cost when the block starts, so a read sees the cycles of every instruction of its
    own block, including those after the read.  ``DEMCR.TRCENA`` is stored but not
    required for counting (firmware that forgets it still gets numbers).

    Both pages are served in C (:mod:`.native_periph`: ``DWT_CYCCNT`` and the SysTick
    registers, so delay loops polling CYCCNT, ``CVR`` or ``COUNTFLAG`` cost no Python);
    the NVIC/SCB words of the exception model are passed to it (rare accesses), every
    other SCS register is plain storage.
    """

    def __init__(self, cycles: Callable[[], int], exceptions: ExceptionModel | None = None,
                 on_change: Callable[[], None] = lambda: None) -> None:
        """*exceptions* serves the NVIC/SCB registers (else plain storage); *on_change*
        is called after a write that may move the next interrupt (SysTick, NVIC)."""
        self._exceptions = exceptions
        self.on_change = on_change
        rules = [Rule(DWT_CTRL, CYCCNT_CTRL), Rule(DWT_CYCCNT, CYCCNT, DWT_CTRL),
                 *(Rule(address, SYST, 0, reg) for address, reg in (
                     (SYST_CSR, SYST_CSR_REG), (SYST_RVR, SYST_RVR_REG),
                     (SYST_CVR, SYST_CVR_REG), (SYST_CALIB, SYST_CALIB_REG)))]
        if exceptions is not None:
            rules += [Rule(address, PYTHON) for address in _exception_words(exceptions)]
        self.native = NativeRegisters(RegisterTable(pages=(DWT_PAGE, SCS_PAGE), rules=rules),
                                      cycles, on_timer=lambda: self.on_change(),
                                      python=self._nvic)

    def _nvic(self, is_write: bool, address: int, value: int) -> int:
        assert self._exceptions is not None
        if not is_write:
            return self._exceptions.read_word(address)
        self._exceptions.write_word(address, value)
        self.on_change()
        return 0

    @staticmethod
    def pages() -> tuple[int, ...]:
        """Page addresses this model serves (each :data:`PAGE` bytes)."""
        return (DWT_PAGE, SCS_PAGE)

    # -- SysTick exception ------------------------------------------------------------
    #: Exception number of SysTick (an interrupt source of the exception model).
    exception = 15

    def asserted(self, now: int) -> bool:
        """A SysTick exception is due: a zero crossing not delivered yet (TICKINT)."""
        return self.native.systick_asserted(now)

    def next_cycle(self, _now: int) -> int | None:
        return self.native.systick_next()

    # -- mmio interface ----------------------------------------------------------------
    def read(self, page: int, offset: int, size: int) -> int:
        """Value of a *size*-byte read at *page* + *offset*."""
        return self.native.read(page, offset, size)

    def write(self, page: int, offset: int, size: int, value: int) -> None:
        """A *size*-byte write at *page* + *offset*."""
        self.native.write(page, offset, size, value)


class UartTx:
    """Transmit side of a UART at *base*: bytes written to the data register go to *sink*.

    Every other register of the page is plain storage, so initialization code (baud
    rate, enable bits) works.  The status register always reads "transmit empty,
    transmission complete", and on USART/LPUART with ISR also TEACK/REACK following
    CR1.TE/RE.  Reception is not modelled (reads of the data register return what was
    last written).  Served natively (:mod:`.native_periph`): a TXE poll costs no Python.
    """

    def __init__(self, kind: str, base: int, sink: Callable[[bytes], None]) -> None:
        if kind not in UART_LAYOUTS:
            raise ValueError(f"unknown UART kind {kind!r}; known: {', '.join(UART_LAYOUTS)}")
        self.kind = kind
        self.base = base
        self.page = base & ~(PAGE - 1)
        layout = UART_LAYOUTS[kind]
        status, cr1 = base + layout.status, base + layout.cr1
        table = RegisterTable(pages=(self.page,), rules=[
            Rule(status, OR, layout.tx_empty | layout.tx_done),
            Rule(base + layout.data, UART_DATA)])
        if layout.ack_bits:  # TEACK/REACK follow CR1.TE/RE (HAL_UART_Init waits on them)
            table.rules += [Rule(status, FOLLOW, cr1, 1 << 3, 1 << 21, 18),
                            Rule(status, FOLLOW, cr1, 1 << 2, 1 << 22, 20)]
        self.native = NativeRegisters(table, lambda: 0,
                                      on_uart=lambda byte: sink(bytes([byte])))

    def pages(self) -> tuple[int, ...]:
        return (self.page,)

    def read(self, page: int, offset: int, size: int) -> int:
        return self.native.read(page, offset, size)

    def write(self, page: int, offset: int, size: int, value: int) -> None:
        self.native.write(page, offset, size, value)


@dataclass(frozen=True)
class MarkEvent:
    """A marker pin changing level: at *cycle* (estimated), line *mark* went to *level*."""

    cycle: int
    mark: str
    level: int


def marker_writes(board: Board) -> dict[tuple[int, int], tuple[str, int]]:
    """(register address, written word) -> (marker name, level) of the board's
    ``[markers]``: the writes that raise or lower the power-monitor lines."""
    marks: dict[tuple[int, int], tuple[str, int]] = {}
    for name in ("inference", "layer"):
        mark = getattr(board.markers, name)
        if mark is not None:
            marks[(mark.set_addr, mark.set_value)] = (name, 1)
            marks[(mark.clear_addr, mark.clear_value)] = (name, 0)
    return marks


class BoardRegisters:
    """The board's boot-write and marker registers as storage pages.

    A read of a register the board file polls (``wait_mask``) returns the awaited bits,
    as the hardware would once ready, so the firmware's boot sequence runs straight
    through.  Word writes of a marker's exact set/clear value append a
    :class:`MarkEvent`.  *exclude* pages (served by another model, or memory) are left
    out.  Served natively (:mod:`.native_periph`).
    """

    def __init__(self, board: Board, cycles: Callable[[], int],
                 exclude: Callable[[int], bool] = lambda _page: False) -> None:
        table = RegisterTable()
        # Several writes may poll one register (RCC_CR: HSIRDY, later PLLRDY): every
        # awaited bit reads as awaited.
        polls: dict[int, tuple[int, int]] = {}
        for r in board.init:
            if r.wait_mask:
                mask, value = polls.get(r.addr, (0, 0))
                polls[r.addr] = (mask | r.wait_mask, (value & ~r.wait_mask) | r.wait_value)
        table.rules += [Rule(address, FORCE, mask, value)
                        for address, (mask, value) in polls.items()]
        marks = marker_writes(board)
        table.rules += [Rule(address, MARK, value, table.name_id(name), level)
                        for (address, value), (name, level) in marks.items()]
        addresses = [r.addr for r in board.init] + [a for a, _v in marks]
        counter = board.cycle_counter.addr if board.cycle_counter else None
        if counter is not None:
            addresses.append(counter)
            table.rules.append(Rule(counter, CYCLES))
        table.pages = tuple(page for page in sorted({a & ~(PAGE - 1) for a in addresses})
                            if not exclude(page))
        self.native = NativeRegisters(table, cycles)

    def pages(self) -> tuple[int, ...]:
        return self.native.pages()

    @property
    def events(self) -> list[MarkEvent]:
        return [MarkEvent(e.cycle, e.name, e.level) for e in self.native.events]

    def read(self, page: int, offset: int, size: int) -> int:
        return self.native.read(page, offset, size)

    def write(self, page: int, offset: int, size: int, value: int) -> None:
        self.native.write(page, offset, size, value)
