"""Register models of the few peripherals the emulator serves through ``mmio_map``.

Pure logic (no Unicorn): each model answers ``read(offset, size)`` and
``write(offset, size, value)`` for one 4 KiB page, so the models are unit-tested
without an engine and the emulator only wires them to ``Uc.mmio_map``.  Why
``mmio_map`` and not memory hooks: a memory hook makes Unicorn check every access of
the whole program (about 4x slower); an MMIO page costs only its own accesses.

* :class:`SystemTimers` serves the DWT page (``DWT_CTRL``, ``DWT_CYCCNT``; in C, see
  :mod:`.native_periph`) and the System Control Space page (SysTick
  ``CSR``/``RVR``/``CVR``/``CALIB``, ``DEMCR`` and every other SCS register as plain
  storage).  The cycle counts come from the native
  hook's running estimate, so firmware that times itself (``tm_prof_begin/end`` reading
  CYCCNT, or SysTick on ARMv6-M) prints the emulator's estimated cycles.
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
    UART_DATA,
    NativeRegisters,
    RegisterTable,
    Rule,
)
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

_CSR_ENABLE = 1
_CSR_TICKINT = 2
_CSR_COUNTFLAG = 1 << 16
_MASK24 = 0xFFFFFF
_MASK32 = 0xFFFFFFFF


class _Page:
    """4 KiB of little-endian register storage (the registers nobody models)."""

    def __init__(self) -> None:
        self.data = bytearray(PAGE)

    def read(self, offset: int, size: int) -> int:
        return int.from_bytes(self.data[offset:offset + size], "little")

    def write(self, offset: int, size: int, value: int) -> None:
        self.data[offset:offset + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def _merge(old: int, offset: int, size: int, value: int) -> int:
    """Word value after a *size*-byte write at byte *offset* (0..3) into *old*."""
    shift = 8 * (offset & 3)
    mask = ((1 << (8 * size)) - 1) << shift
    return (old & ~mask) | ((value << shift) & mask)


@dataclass
class _SysTick:
    """SysTick down-counter state; the value is computed from the cycle source on read."""

    csr: int = 0
    rvr: int = 0
    #: Counter value and cycle count at the last enable or CVR write.
    start_value: int = 0
    start_cycle: int = 0
    #: Counter value while disabled (frozen).
    frozen: int = 0
    #: Zero-crossings already reported through COUNTFLAG.
    reported_zeros: int = 0
    #: Zero-crossings already turned into SysTick exceptions (TICKINT).
    delivered_zeros: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.csr & _CSR_ENABLE)

    def _zeros(self, elapsed: int) -> int:
        """Transitions 1 -> 0 of the counter within *elapsed* cycles of the last restart."""
        if self.start_value:
            first = self.start_value
        elif self.rvr:
            first = self.rvr + 1  # 0 -> reload RVR -> counts down to 0
        else:
            return 0
        if elapsed < first:
            return 0
        return 1 + ((elapsed - first) // (self.rvr + 1) if self.rvr else 0)

    def value(self, now: int) -> int:
        """Current CVR: counts down one per cycle; from 0 the next cycle reloads RVR."""
        if not self.enabled:
            return self.frozen
        t = now - self.start_cycle
        if t <= self.start_value:
            return self.start_value - t
        if self.rvr == 0:
            return 0
        return self.rvr - ((t - self.start_value - 1) % (self.rvr + 1))

    def restart(self, now: int, value: int) -> None:
        self.start_value, self.start_cycle, self.reported_zeros = value & _MASK24, now, 0
        self.delivered_zeros = 0

    def zero_cycle(self, k: int) -> int | None:
        """Cycle of the *k*-th zero crossing (1-based) since the last restart."""
        first = self.start_value or (self.rvr + 1 if self.rvr else 0)
        if not first or (k > 1 and not self.rvr):
            return None
        return self.start_cycle + first + (k - 1) * (self.rvr + 1)


class SystemTimers:
    """DWT cycle counter and SysTick driven by an estimated cycle count.

    *cycles* returns the live estimate in whole cycles (the counting hook's running
    counter).  The counter advances by whole translated blocks: the hook adds a block's
    cost when the block starts, so a read sees the cycles of every instruction of its
    own block, including those after the read.  ``DEMCR.TRCENA`` is stored but not
    required for counting (firmware that forgets it still gets numbers).
    """

    def __init__(self, cycles: Callable[[], int], exceptions: ExceptionModel | None = None,
                 on_change: Callable[[], None] = lambda: None) -> None:
        """*exceptions* serves the NVIC/SCB registers (else plain storage); *on_change*
        is called after a write that may move the next interrupt (SysTick, NVIC)."""
        self._cycles = cycles
        self._exceptions = exceptions
        self.on_change = on_change
        self._pages = {SCS_PAGE: _Page()}
        #: The DWT page (CYCCNT) is served in C: a delay loop polling CYCCNT costs no
        #: Python per read.
        self.native = NativeRegisters(RegisterTable(pages=(DWT_PAGE,), rules=[
            Rule(DWT_CTRL, CYCCNT_CTRL), Rule(DWT_CYCCNT, CYCCNT, DWT_CTRL)]), cycles)
        self._systick = _SysTick()

    @staticmethod
    def pages() -> tuple[int, ...]:
        """Page addresses this model serves (each :data:`PAGE` bytes)."""
        return (DWT_PAGE, SCS_PAGE)

    # -- SysTick exception ------------------------------------------------------------
    #: Exception number of SysTick (an interrupt source of the exception model).
    exception = 15

    def _ticking(self) -> bool:
        st = self._systick
        return st.enabled and bool(st.csr & _CSR_TICKINT)

    def asserted(self, now: int) -> bool:
        """A SysTick exception is due: a zero crossing not delivered yet (TICKINT)."""
        st = self._systick
        if not self._ticking():
            return False
        zeros = st._zeros(now - st.start_cycle)
        if zeros > st.delivered_zeros:
            st.delivered_zeros = zeros
            return True
        return False

    def next_cycle(self, _now: int) -> int | None:
        st = self._systick
        return st.zero_cycle(st.delivered_zeros + 1) if self._ticking() else None

    # -- registers -------------------------------------------------------------------
    def _read_word(self, address: int) -> int | None:
        if self._exceptions is not None and self._exceptions.handles(address):
            return self._exceptions.read_word(address)
        st = self._systick
        if address == SYST_CSR:
            csr = st.csr & ~_CSR_COUNTFLAG
            if st.enabled:
                zeros = st._zeros(self._cycles() - st.start_cycle)
                if zeros > st.reported_zeros:
                    csr |= _CSR_COUNTFLAG
                    st.reported_zeros = zeros  # COUNTFLAG clears on read
            return csr
        if address == SYST_RVR:
            return st.rvr
        if address == SYST_CVR:
            return st.value(self._cycles())
        if address == SYST_CALIB:
            return 0
        return None

    def _write_word(self, address: int, value: int) -> bool:
        now = self._cycles()
        if self._exceptions is not None and self._exceptions.handles(address):
            self._exceptions.write_word(address, value)
            self.on_change()
            return True
        st = self._systick
        if address == SYST_CSR:
            enable = bool(value & _CSR_ENABLE)
            if enable and not st.enabled:
                st.restart(now, st.frozen)
            elif not enable and st.enabled:
                st.frozen = st.value(now)
            st.csr = value & 0x7
            self.on_change()
            return True
        if address == SYST_RVR:
            st.rvr = value & _MASK24
            self.on_change()
            return True
        if address == SYST_CVR:  # any write clears the counter (and COUNTFLAG)
            st.frozen = 0
            st.restart(now, 0)
            self.on_change()
            return True
        return address == SYST_CALIB  # read-only: ignore writes

    # -- mmio interface ----------------------------------------------------------------
    def read(self, page: int, offset: int, size: int) -> int:
        """Value of a *size*-byte read at *page* + *offset*."""
        if page == DWT_PAGE:
            return self.native.read(page, offset, size)
        address = page + offset
        word = self._read_word(address & ~3)
        if word is None:
            return self._pages[page].read(offset, size)
        return (word >> (8 * (address & 3))) & ((1 << (8 * size)) - 1)

    def write(self, page: int, offset: int, size: int, value: int) -> None:
        """A *size*-byte write at *page* + *offset*."""
        if page == DWT_PAGE:
            self.native.write(page, offset, size, value)
            return
        address = page + offset
        word_address = address & ~3
        old = self._read_word(word_address)
        if old is not None and self._write_word(word_address,
                                                _merge(old, address, size, value)):
            return
        self._pages[page].write(offset, size, value)


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
