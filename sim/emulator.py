"""Run tinymeter firmware in Unicorn: the thin I/O layer of the simulator.

Everything that can be pure lives elsewhere (ELF parsing in :mod:`.elf`, semihosting
in :mod:`.semihosting`, instruction statistics in :mod:`.blocks`); this module owns the
Unicorn engine, the hooks, and the translation of engine failures into
``tinymeter.core.errors`` with messages that name PC, symbol and layer.

Hooks and their cost (why each is the way it is):

* counting: the native C block hook (:mod:`.native_hook`), never a Python one;
* firmware ABI (``tm_io_next``, ``tm_io_input_hook``, ``tm_io_output_hook``): Python
  code hooks each bounded to a single address; Unicorn instruments only instructions
  inside a bounded hook's range, so they cost nothing elsewhere (benchmarked in
  ``benchmarks/bench_sim.py``);
* semihosting and faults: a Python interrupt hook, called only on exceptions;
* invalid memory: a Python hook called only on failing accesses, to name the address;
* cycles: the native hook sums the cost model's cycles of every executed block (the
  cost of a block is asked once from Python through a ctypes callback), so estimates
  come at counting speed;
* DWT/SysTick and the board UART: ``mmio_map`` pages served by the register models of
  :mod:`.peripherals` (a memory hook would slow every access of the program ~4x);
  DWT ``CYCCNT`` and SysTick read the hook's live cycle estimate.  The UART, the board
  file's behaviour peripherals and boot-poll registers have C callbacks
  (:mod:`.native_periph`), so polling them costs no Python.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import re
import struct
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import unicorn
from unicorn import Uc, UcError, arm_const, unicorn_const

from tinymeter.abi import (
    HALT,
    IO_INPUT,
    IO_NEXT,
    IO_OUTPUT,
    LIBC_EXIT,
    PROF_BEGIN,
    PROF_END,
)
from tinymeter.core.boards import Board
from tinymeter.core.devicemap import DeviceMap
from tinymeter.core.errors import (
    BudgetExceeded,
    ConfigError,
    EmulationError,
    FirmwareFault,
    TinymeterError,
)
from tinymeter.core.svd import merge, parse_svd, read_svd
from tinymeter.sim.addrprog import AddressProgram, address_program
from tinymeter.sim.blocks import (
    BlockInfo,
    BlockProfile,
    BlockTable,
    analyze,
    disassemble_block,
    make_disassembler,
)
from tinymeter.sim.costmodel import CostModel, cost_model_for, timing_config
from tinymeter.sim.decode import Decoder, decode_block
from tinymeter.sim.devices import DeviceRegisters
from tinymeter.sim.dwarf import Frame
from tinymeter.sim.elf import ElfImage, Symbol
from tinymeter.sim.exceptions import EXC_RETURN_MIN, ExceptionEngine
from tinymeter.sim.native_hook import (
    CYCLE_SCALE,
    END_SKIP,
    STAT_COLUMNS,
    BlockCost,
    BlockCounter,
    CounterSnapshot,
)
from tinymeter.sim.native_periph import NativeRegisters
from tinymeter.sim.nvic import FIRST_IRQ, ExceptionModel, LineSource
from tinymeter.sim.peripherals import (
    PAGE,
    BoardRegisters,
    MarkEvent,
    SystemTimers,
    UartTx,
    marker_writes,
)
from tinymeter.sim.semihosting import SEMIHOSTING_BKPT, Semihosting, SemihostingError
from tinymeter.sim.traps import TRAP_FUNCTIONS, call_path, trap_frame

log = logging.getLogger(__name__)

#: Private peripheral bus / system control space (SCB, NVIC, CPACR, DWT, SysTick).
SYSTEM_SPACE = (0xE0000000, 0x00100000)
#: Longest wall-clock limit of a run (a year): threading.Timer overflows on inf.
MAX_TIMEOUT_S = 365 * 24 * 3600.0
#: Never-executed stop address handed to ``emu_start`` (execution stops via hooks).
_STOP_ADDRESS = 0xF0000000

# QEMU exception numbers delivered to UC_HOOK_INTR on Arm.
_EXCP_BKPT = 7
_EXCP_PREFETCH_ABORT = 3
_EXCP_SWI = 2
_EXCP_EXCEPTION_EXIT = 8
_EXCEPTION_NAMES = {
    1: "undefined instruction (UDEF)", 2: "SVC", 3: "prefetch abort", 4: "data abort",
    5: "IRQ", 6: "FIQ", 7: "BKPT", 8: "exception exit", 16: "semihosting trap",
    17: "coprocessor access (FPU disabled or absent: NOCP)", 18: "invalid state (INVSTATE)",
    19: "stack overflow (STKOF)", 20: "lazy FP state", 21: "lazy FP state error",
    22: "unaligned access",
}
_MEM_ACCESS = {
    unicorn.UC_MEM_READ_UNMAPPED: "read", unicorn.UC_MEM_WRITE_UNMAPPED: "write",
    unicorn.UC_MEM_FETCH_UNMAPPED: "fetch", unicorn.UC_MEM_READ_PROT: "read",
    unicorn.UC_MEM_WRITE_PROT: "write", unicorn.UC_MEM_FETCH_PROT: "fetch",
}

#: TFLM ``tflite::MicroProfiler::BeginEvent(const char*)`` / ``EndEvent(uint32_t)``,
#: matched on mangled names (``uint32_t`` is ``unsigned long`` (m) on arm-none-eabi,
#: ``unsigned int`` (j) elsewhere); any enclosing inline namespace is allowed.
_TFLM_BEGIN = re.compile(r"_ZN(?:\d+\w+?)*6tflite13MicroProfiler10BeginEventEPKc")
_TFLM_END = re.compile(r"_ZN(?:\d+\w+?)*6tflite13MicroProfiler8EndEventE[mj]")
#: BeginEvent tag pointers recorded per run (events beyond this keep their counts only).
_MAX_EVENT_TAGS = 1 << 16




def tflm_profiler_symbols(image: ElfImage) -> tuple[str, str] | None:
    """Mangled names of TFLM's ``MicroProfiler::BeginEvent``/``EndEvent`` in *image*."""
    names = [s.name for s in image.functions]
    begin = next((n for n in names if _TFLM_BEGIN.fullmatch(n)), None)
    end = next((n for n in names if _TFLM_END.fullmatch(n)), None)
    return (begin, end) if begin and end else None


@dataclass(frozen=True)
class RunResult:
    """Everything one emulated run produced.

    ``outputs[k][i]`` is output tensor *i* of inference *k*.  ``instructions`` is exact
    (block contents x counts, IT-skipped instructions included) when ``count=True``;
    with ``count=False`` it is 0 and ``blocks`` is empty.
    """

    outputs: list[list[bytes]]
    stdout: str
    exit_code: int
    instructions: int
    wall_time_s: float
    blocks: BlockTable
    profile: BlockProfile | None
    inferences: int
    executed_bytes: int = 0
    #: Estimated cycles of the whole run, fixed point (x ``CYCLE_SCALE``), as summed by the
    #: native hook (0 without counting).
    cycles_fixed: int = 0
    #: Per table row of ``blocks``: static core cycles of one execution and cycles of all
    #: executions (fixed point): ``block_cycles == blocks.count * block_cost`` plus the
    #: row's branch-outcome costs and weighted memory stalls (``stats``).
    block_cost: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    block_cycles: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    #: Per table row: the hook's statistics (columns ``native_hook.STAT_COLUMNS``: branch
    #: outcomes, stall cycles, cache hits and misses, loads and stores by memory kind).
    stats: np.ndarray = field(default_factory=lambda: np.zeros((0, len(STAT_COLUMNS)),
                                                                np.uint64))
    cost_model: CostModel | None = None
    #: Layer names from the TFLM profiler's BeginEvent tags (event id -> tag).
    layer_names: dict[int, str] = field(default_factory=dict)
    #: Marker-pin changes of the hardware image, at estimated cycles (see
    #: :class:`~tinymeter.sim.peripherals.BoardRegisters`).
    marks: list[MarkEvent] = field(default_factory=list)
    #: "semihosting exit", "tm_halt", "stop at NAME", "idle loop at SYMBOL+OFF" or
    #: "span START:END completed N time(s)".
    stop_reason: str = "semihosting exit"
    #: Spans completed (``Emulator(span=...)``): layer ids 0..spans-1 are the iterations.
    spans: int = 0
    #: Cycles the core slept in WFI/WFE until an interrupt (in ``cycles_fixed``, which is
    #: then ``block_cycles.sum()`` plus these, and in what timers read; in no block row).
    sleep_cycles: int = 0
    #: Unaligned accesses that fault on the real core (LDM/STM/LDRD/STRD/VLDR/VSTR/
    #: exclusives at any misalignment; every unaligned access on ARMv6-M), which the
    #: emulator executed; on silicon the first one takes a UsageFault/HardFault.  The
    #: first one's instruction address (None: none).  Per row: ``stats`` "align_faults".
    align_faults: int = 0
    align_fault_pc: int | None = None

    @property
    def cycles(self) -> float:
        """Estimated cycles of the whole run (cost model of ``cost_model``)."""
        return self.cycles_fixed / CYCLE_SCALE

    def row_cycles(self) -> np.ndarray:
        """Estimated cycles of each row of ``blocks`` (all its executions), as floats."""
        return self.block_cycles.astype(np.float64) / CYCLE_SCALE

    def cycles_per_layer(self) -> dict[int, float]:
        """Estimated cycles per layer index; key -1 = outside any layer."""
        out: dict[int, int] = {}
        for layer, c in zip(self.blocks.layer.tolist(), self.block_cycles.tolist()):
            out[int(layer)] = out.get(int(layer), 0) + int(c)
        return {k: v / CYCLE_SCALE for k, v in sorted(out.items())}

    @property
    def mips(self) -> float:
        """Emulated million instructions per wall-clock second (0 without counting)."""
        return self.instructions / self.wall_time_s / 1e6 if self.wall_time_s > 0 else 0.0


@dataclass
class _Bus:
    """Per-engine wiring of the MMIO models: what they read cycles from and where UART
    bytes go.  ``load()`` creates it with neutral sources; ``run()`` points them at the
    counting hook and the semihosting console."""

    cycles: Callable[[], int] = lambda: 0
    sink: Callable[[bytes], None] = lambda _data: None
    timers: SystemTimers | None = None
    uart: UartTx | None = None
    registers: BoardRegisters | None = None
    #: The board file's behaviour peripherals (``[[peripheral]]`` with follow/model).
    mcu: DeviceRegisters | None = None
    #: NVIC/SCB state and interrupt sources (SysTick, board timers with an ``irq``).
    exceptions: ExceptionModel = field(default_factory=ExceptionModel)
    #: Called when a register write may move the next interrupt (set by ``run()``).
    reschedule: Callable[[], None] = lambda: None

    def native(self) -> list[NativeRegisters]:
        """The register models, each served by C callbacks (:mod:`.native_periph`)."""
        return [dev.native for dev in (self.timers, self.uart, self.mcu, self.registers)
                if dev is not None]

    def pages(self) -> list[int]:
        """Every MMIO page (no two models share one)."""
        return [page for native in self.native() for page in native.pages()]


class _UcMemory:
    """Adapter giving the semihosting handler byte access to the engine."""

    def __init__(self, uc: Uc) -> None:
        self._uc = uc

    def read(self, address: int, size: int) -> bytes:
        return bytes(self._uc.mem_read(address, size))

    def write(self, address: int, data: bytes) -> None:
        self._uc.mem_write(address, data)


@dataclass
class _Session:
    """Mutable state of one run, shared by the hooks (kept off the Emulator on purpose)."""

    inputs: Sequence[Sequence[bytes]]
    semihost: Semihosting
    counter: BlockCounter | None
    next_inference: int = 0
    outputs: list[list[bytes | None]] = field(default_factory=list)
    error: TinymeterError | None = None
    bad_access: str = ""
    intercepted: list[int] = field(default_factory=list)
    timed_out: bool = False
    #: How the run ended when not by semihosting: "tm_halt", "stop at NAME", "idle loop at ...".
    stop_reason: str = ""
    #: Span bookkeeping (``Emulator(span=...)``): a START entry is open, spans completed.
    span_open: bool = False
    spans_done: int = 0
    #: Exception entry/return on the core (None without the counting hook).
    exceptions: ExceptionEngine | None = None
    sleep_cycles: int = 0

    @property
    def inference(self) -> int:
        return self.next_inference - 1

    def layer(self) -> int | None:
        return None if self.counter is None else self.counter.current_layer


class Emulator:
    """Emulates one board's core and memory map running a firmware ELF.

    Each :meth:`load` creates a fresh engine, so runs never see each other's memory.
    ``event_profiler`` names an optional second pair of layer-switch functions whose
    layer ids are consecutive (TFLM ``MicroProfiler::BeginEvent``/``EndEvent``,
    mangled names), wrapping at ``event_wrap`` when non-zero.

    A run ends at a semihosting exit, at ``tm_halt`` (the hardware image), at the entry
    of any function named in ``stop_at``, or, with ``stop_on_idle``, when the firmware
    reaches an idle loop (``b .``, ``wfi`` loop: how UART-only firmware ends).
    """

    def __init__(self, board: Board, *, event_profiler: tuple[str, str] | None = None,
                 event_wrap: int = 0, cost_model: CostModel | None = None,
                 stop_at: Sequence[str] = (), stop_on_idle: bool = False,
                 span: tuple[str, str] | None = None, span_count: int = 1) -> None:
        """*cost_model* prices every block for the hook's cycle sums (default: the board's,
        :func:`~tinymeter.sim.costmodel.cost_model_for`).

        *span* ``(START, END)`` (function names, C++ demangled accepted) makes the
        hook's layers the spans instead of profiler events: layer *k* is everything
        from the *k*-th entry of START to the next entry of END; the run stops at the
        END entry that completes *span_count* spans (0: run to the firmware's end).
        Symbol names in *stop_at* and *span* are looked up like ``--stop-at``:
        mangled, full demangled signature, or demangled name without parameters."""
        if span is not None and event_profiler is not None:
            raise ValueError("a span replaces the profiler events: give one, not both")
        self.board = board
        self.event_profiler = event_profiler
        self.event_wrap = event_wrap
        self.cost_model = cost_model
        self.stop_at = tuple(stop_at)
        self.stop_on_idle = stop_on_idle
        self.span = span
        self.span_count = span_count
        self.uc: Uc | None = None
        self.bus = _Bus()
        self.image: ElfImage | None = None
        self.initial_sp = 0
        self.reset_pc = 0
        #: (start, end, host address) of every RAM range mapped into the engine.
        self._host: list[tuple[int, int, int]] = []
        self._block_cache: dict[tuple[int, int], BlockInfo] = {}
        self._program_cache: dict[tuple[int, int], AddressProgram] = {}
        self._cache_key = ""
        self._device_map: DeviceMap | None = None

    # -- engine setup ----------------------------------------------------------------
    def _cpu_model(self) -> int:
        name = self.board.core.unicorn_cpu
        try:
            return int(getattr(arm_const, name))
        except AttributeError:
            raise EmulationError(f"core {self.board.core.name}: unicorn has no CPU model "
                                 f"{name}") from None

    def _in_memory(self, page: int) -> bool:
        return any(r.origin < page + PAGE and page < r.end for r in self.board.memory)

    def _peripherals(self) -> _Bus:
        """The register models of this board (system timers, board UART, boot-write and
        marker registers), each on pages no other model or memory region has."""
        bus = _Bus()
        bus.timers = SystemTimers(lambda: bus.cycles(), bus.exceptions,
                                  on_change=lambda: bus.reschedule())
        bus.exceptions.sources.append(bus.timers)
        taken = set(bus.timers.pages())
        uart = self.board.uart
        if uart.kind:
            bus.uart = UartTx(uart.kind, uart.base, lambda data: bus.sink(data))
            if any(self._in_memory(page) for page in bus.uart.pages()):
                raise EmulationError(f"board {self.board.name}: UART base 0x{uart.base:08x} "
                                     "lies inside a memory region")
            taken.update(bus.uart.pages())
        bus.mcu = DeviceRegisters(self._devices(), lambda: bus.cycles(),
                                  marker_writes(self.board),
                                  exclude=lambda page: page in taken or self._in_memory(page))
        taken.update(bus.mcu.pages())
        bus.mcu.on_change = lambda: bus.reschedule()
        for timer in bus.mcu.timers:
            if timer.spec.irq >= 0:
                bus.exceptions.sources.append(LineSource(
                    FIRST_IRQ + timer.spec.irq, timer.pending_update,
                    timer.next_update_if_enabled))
        bus.registers = BoardRegisters(
            self.board, lambda: bus.cycles(),
            exclude=lambda page: (page in taken or self._in_memory(page)
                                  or self._in_device_storage(page)))
        return bus

    def _devices(self) -> DeviceMap:
        """The board's peripherals, with those of its SVD (parsed once per emulator)."""
        if self._device_map is None:
            devices = self.board.devices
            if devices.svd:
                data, label = read_svd(devices.svd, self.board.path.parent
                                       if self.board.path else None)
                devices = replace(devices, peripherals=merge(parse_svd(data, label),
                                                             devices.peripherals))
            self._device_map = devices
        return self._device_map

    def _storage_ranges(self) -> list[tuple[int, int]]:
        """Page ranges of the board's plain peripheral registers (RAM in the engine):
        ``[peripheral_space]`` and the pages of the peripherals (board file and SVD)
        outside the board's memory and the system space."""
        devices = self._devices()
        out = list(devices.ranges)
        for p in devices.peripherals:
            start, end = p.base & ~(PAGE - 1), -(-p.end // PAGE) * PAGE
            if not self._in_memory(start) and not start >= SYSTEM_SPACE[0]:
                out.append((start, end))
        return out

    def _in_device_storage(self, page: int) -> bool:
        return any(start <= page < end for start, end in self._storage_ranges())

    def _load_reset_values(self, uc: Uc, mmio_pages: set[int]) -> None:
        """Reset values of the plain peripheral registers mapped as RAM."""
        mapped = self._storage_ranges()
        for p in self._devices().peripherals:
            for address, value in p.reset:
                page = address & ~(PAGE - 1)
                if page not in mmio_pages and any(a <= page < b for a, b in mapped):
                    uc.mem_write(address, struct.pack("<I", value))

    def _memory_map(self, mmio_pages: Sequence[int]) -> list[tuple[int, int, int]]:
        """Page-aligned, merged (start, end, perms) RAM ranges: board memories + system
        space, minus *mmio_pages* (``mem_map`` and ``mmio_map`` must not overlap)."""
        merged = self._merged_ranges()
        for page in mmio_pages:
            split: list[tuple[int, int, int]] = []
            for start, end, perms in merged:
                if start <= page < end:
                    if start < page:
                        split.append((start, page, perms))
                    if page + PAGE < end:
                        split.append((page + PAGE, end, perms))
                else:
                    split.append((start, end, perms))
            merged = split
        return merged

    def _merged_ranges(self) -> list[tuple[int, int, int]]:
        ranges = []
        for r in self.board.memory:
            perms = unicorn.UC_PROT_ALL
            if r.kind == "flash":
                perms = unicorn.UC_PROT_READ | unicorn.UC_PROT_EXEC
            ranges.append((r.origin & ~(PAGE - 1), -(-r.end // PAGE) * PAGE, perms))
        base, size = SYSTEM_SPACE
        ranges.append((base, base + size, unicorn.UC_PROT_READ | unicorn.UC_PROT_WRITE))
        for start, end in self._storage_ranges():
            ranges.append((start, end, unicorn.UC_PROT_READ | unicorn.UC_PROT_WRITE))
        ranges.sort()
        merged: list[tuple[int, int, int]] = []
        for start, end, perms in ranges:
            if merged and start < merged[-1][1]:
                p_start, p_end, p_perms = merged[-1]
                merged[-1] = (p_start, max(end, p_end), p_perms | perms)
            else:
                merged.append((start, end, perms))
        return merged

    def load(self, elf: str | Path | ElfImage) -> ElfImage:
        """Create a fresh engine, map the board, load *elf* by LMA and set SP/PC from the
        vector table at the start of the board's text region."""
        image = elf if isinstance(elf, ElfImage) else ElfImage.load(elf)
        where = str(image.path) if image.path else "firmware"
        # the CPU model must be chosen before anything is mapped (the binding's stubs do not
        # declare the third argument)
        uc = Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB, self._cpu_model())  # type: ignore[call-arg]
        bus = self._peripherals()
        mmio_pages = bus.pages()
        self._host = _map_host_memory(uc, self._memory_map(mmio_pages))
        for native in bus.native():
            native.map_into(uc)  # C callbacks: no Python per access
        self._load_reset_values(uc, set(mmio_pages))
        self.bus = bus
        for seg in image.segments:
            region = self.board.region_of(seg.paddr)
            if region is None or not region.contains(seg.paddr, max(len(seg.data), 1)):
                raise EmulationError(
                    f"{where}: segment at 0x{seg.paddr:08x} ({len(seg.data)} bytes) is outside "
                    f"the memory of board {self.board.name} (linked for another board?)")
            if seg.vaddr != seg.paddr and not self.board.region_of(seg.vaddr):
                raise EmulationError(f"{where}: segment run address 0x{seg.vaddr:08x} is "
                                     f"outside the memory of board {self.board.name}")
            if seg.data:
                uc.mem_write(seg.paddr, seg.data)
        text = self.board.text
        sp, reset = struct.unpack("<II", bytes(uc.mem_read(text.origin, 8)))
        if not self.board.region_of(reset & ~1) or not reset & 1:
            raise EmulationError(
                f"{where}: no vector table at 0x{text.origin:08x} (board {self.board.name} "
                f"text region): reset vector 0x{reset:08x} is not a Thumb address in memory")
        if self.board.region_of(sp - 4) is None:
            raise EmulationError(f"{where}: initial stack pointer 0x{sp:08x} from the vector "
                                 f"table is outside the memory of board {self.board.name}")
        uc.reg_write(arm_const.UC_ARM_REG_SP, sp)
        uc.reg_write(arm_const.UC_ARM_REG_PC, reset)
        self.uc, self.image = uc, image
        self.initial_sp, self.reset_pc = sp, reset
        if image.digest != self._cache_key or not image.digest:
            self._block_cache = {}
            self._program_cache = {}
            self._cache_key = image.digest
        log.debug("loaded %s on %s: sp=0x%08x reset=0x%08x", where, self.board.name, sp, reset)
        return image

    # -- the run ---------------------------------------------------------------------
    def run(self, elf_path: str | Path | ElfImage, inputs: Sequence[Sequence[bytes]], *,
            budget_instructions: int, timeout_s: float, count: bool = True) -> RunResult:
        """Run the firmware ABI loop once per element of *inputs* until the firmware exits.

        ``inputs[k][i]`` is input tensor *i* of inference *k*; an empty ``inputs[k]``
        keeps the firmware's default inputs.  ``count=False`` runs without the native
        hook (raw speed; no instruction budget, no statistics; only *timeout_s* bounds it).
        """
        if not (0 < timeout_s <= MAX_TIMEOUT_S):  # also NaN; inf overflows the timer thread
            raise ConfigError(f"timeout must be between 0 and {MAX_TIMEOUT_S:g} s, got {timeout_s!r}")
        image = self.load(elf_path)
        uc = self.uc
        assert uc is not None
        semihost = Semihosting(_UcMemory(uc), heap_info=self._heap_info(image))
        session = _Session(inputs=inputs, semihost=semihost, counter=None)
        model = (self.cost_model or cost_model_for(self.board)) if count else None
        if model is not None:
            # the cost callback sees session.intercepted filled by the ABI hooks below
            session.counter = self._make_counter(
                image, budget_instructions, self.cost_function(image, model, session.intercepted))
        self._install_hooks(uc, image, session)
        engine_error, wall = self._execute(uc, session, timeout_s)
        counter = session.counter
        snapshot = counter.snapshot() if counter is not None else None
        try:
            self._check_outcome(uc, session, engine_error, snapshot, budget_instructions,
                                timeout_s)
        finally:
            if counter is not None:
                counter.close()
        result = self._result(uc, image, session, snapshot, model, wall)
        log.info("%s: %d inferences, %d instructions in %.3f s (%.0f MIPS)",
                 image.path, result.inferences, result.instructions, wall, result.mips)
        return result

    def _install_hooks(self, uc: Uc, image: ElfImage, session: _Session) -> None:
        """Wire the MMIO models to this run and register every hook of the run."""
        counter = session.counter
        self.bus.sink = session.semihost.emit
        if counter is not None:
            self.bus.cycles = lambda: counter.cycles
            # interrupts need the cycle alarm of the counting hook
            session.exceptions = ExceptionEngine(self.bus.exceptions, self.board.text.origin,
                                                 self.board.core.has_fpu)
            self.bus.reschedule = lambda: self._schedule(session, soon=True)
            for native in self.bus.native():
                native.follow_counter(counter)  # C reads the running count directly
        self._install_abi_hooks(uc, image, session)
        uc.hook_add(unicorn.UC_HOOK_INTR, self._on_interrupt, session)
        uc.hook_add(unicorn.UC_HOOK_MEM_INVALID, self._on_invalid_memory, session)
        if counter is not None:
            counter.attach(uc)

    def _execute(self, uc: Uc, session: _Session, timeout_s: float) -> tuple[UcError | None, float]:
        """Run the engine from reset under the wall-clock limit; the engine's own error
        (if any) and the wall time.  Errors raised inside hooks land in ``session.error``."""
        # Wall-clock limit from our own timer thread rather than emu_start's timeout
        # argument: Unicorn's timeout slowed emulation by 30-60% in bench_sim.py, a
        # timer calling uc_emu_stop (what Unicorn's watchdog does) costs nothing.
        timer = threading.Timer(timeout_s, self._on_timeout, (uc, session))
        timer.daemon = True
        start = time.perf_counter()
        engine_error: UcError | None = None
        timer.start()
        pc = self.reset_pc
        try:
            while True:
                uc.emu_start(pc, _STOP_ADDRESS)
                # the cycle alarm stopped the engine: deliver due interrupts, go on
                if not self._alarm(uc, session):
                    break
                pc = uc.reg_read(arm_const.UC_ARM_REG_PC) | 1
        except UcError as exc:
            engine_error = exc
        except TinymeterError as exc:  # raised inside a hook and re-raised by the binding
            session.error = session.error or exc
        finally:
            timer.cancel()
            timer.join()
        return engine_error, time.perf_counter() - start

    def _alarm(self, uc: Uc, session: _Session) -> bool:
        """After ``emu_start`` returned: if the counting hook's cycle alarm stopped it, or
        the core went to sleep (WFI/WFE: Unicorn returns after it), and nothing else ended
        the run, service interrupts and say to resume."""
        counter, engine = session.counter, session.exceptions
        if counter is None or engine is None:
            return False
        alarm = counter.take_alarm()
        if (session.error is not None or session.timed_out or session.semihost.exited
                or session.stop_reason):
            return False
        if not alarm:
            if not self._sleeping(uc):
                return False
            now = counter.cycles
            wake = engine.next_alarm(now)
            if wake is None:
                session.error = EmulationError(
                    f"firmware sleeps (WFI/WFE) with no interrupt scheduled to wake it at "
                    f"{self._where(uc, session)}")
                return False
            counter.advance(wake - now)
            counter.break_chain()  # what runs after the sleep is no branch successor
            session.sleep_cycles += max(wake - now, 0)
        engine.service(uc, counter.cycles)
        self._schedule(session)
        return True

    @staticmethod
    def _sleeping(uc: Uc) -> bool:
        """Whether the engine stopped right after a WFI or WFE instruction."""
        pc = uc.reg_read(arm_const.UC_ARM_REG_PC) & ~1
        try:
            before = struct.unpack("<H", bytes(uc.mem_read(pc - 2, 2)))[0]
        except UcError:
            return False
        return before in (0xBF30, 0xBF20)

    def _schedule(self, session: _Session, soon: bool = False) -> None:
        """Set the counting hook's alarm at the next interrupt event (*soon*: a register
        write may have made one deliverable now: look again at the next block)."""
        counter, engine = session.counter, session.exceptions
        if counter is not None and engine is not None:
            engine.recheck_soon = engine.recheck_soon or soon
            counter.set_alarm(engine.next_alarm(counter.cycles))

    def _result(self, uc: Uc, image: ElfImage, session: _Session,
                snapshot: CounterSnapshot | None, model: CostModel | None,
                wall: float) -> RunResult:
        """The run's outputs and, when counted, its block table, profile and cycles."""
        outputs = self._collect_outputs(session)
        marks = sorted([*(self.bus.registers.events if self.bus.registers else ()),
                        *(self.bus.mcu.events if self.bus.mcu else ())], key=lambda m: m.cycle)
        common: dict[str, Any] = dict(outputs=outputs, stdout=session.semihost.stdout,
                      exit_code=session.semihost.exit_code or 0, wall_time_s=wall,
                      inferences=session.next_inference, cost_model=model, marks=marks,
                      stop_reason=session.stop_reason or "semihosting exit",
                      spans=session.spans_done, sleep_cycles=session.sleep_cycles)
        if snapshot is None:
            return RunResult(instructions=0, blocks=BlockTable.empty(), profile=None, **common)
        # Blocks at intercepted entries were counted by the block hook before the
        # code hook redirected to LR: they never executed, so drop them.
        keep = ~np.isin(snapshot.address, np.array(session.intercepted, dtype=np.uint32))
        table = BlockTable(snapshot.address[keep], snapshot.size[keep],
                           snapshot.layer[keep], snapshot.count[keep])
        profile = analyze(table, image, image, self._block_cache)
        if snapshot.align_faults:
            pc = snapshot.align_fault_pc or 0
            log.warning("%s: %d unaligned access(es) that fault on the %s (first at pc=0x%08x, "
                        "%s); the emulator executed them, silicon would not: the estimate "
                        "does not hold for this firmware", image.path, snapshot.align_faults,
                        self.board.core.name, pc, image.describe(pc))
        return RunResult(instructions=profile.total_instructions, blocks=table, profile=profile,
                         align_faults=snapshot.align_faults,
                         align_fault_pc=snapshot.align_fault_pc,
                         executed_bytes=snapshot.executed_bytes,
                         cycles_fixed=snapshot.total_cycles, block_cost=snapshot.cost[keep],
                         block_cycles=snapshot.cycles[keep], stats=snapshot.stats[keep],
                         layer_names=self._event_names(uc, snapshot.event_tags), **common)

    def cost_function(self, image: ElfImage, model: CostModel,
                      intercepted: Collection[int] = ()) -> Callable[[int, int], BlockCost]:
        """The hook's cost callback: disassemble a block once (shared cache with
        :func:`~tinymeter.sim.blocks.analyze`), price it with *model* and attach its
        address program.  Blocks at intercepted ABI entries cost 0: the hook sees them,
        but they never execute."""
        md = make_disassembler()
        decoder = Decoder()
        cache = self._block_cache
        programs = self._program_cache

        def read_literal(address: int, size: int) -> int:
            return int.from_bytes(image.read_code(address, size), "little")

        def cost(address: int, size: int) -> BlockCost:
            if address in intercepted:
                return BlockCost(base=0, end_kind=END_SKIP)
            code = image.read_code(address, size)
            info = cache.get((address, size))
            if info is None:
                info = disassemble_block(code, address, md)
                cache[(address, size)] = info
            block = model.block_cost(info)
            program = programs.get((address, size))
            if program is None:
                program = address_program(decode_block(code, address, decoder), read_literal)
                programs[(address, size)] = program
            if not len(program):
                return block
            return replace(block, ops=program.ops, regs_mask=program.regs_mask)

        return cost

    @staticmethod
    def _event_names(uc: Uc, tags: np.ndarray) -> dict[int, str]:
        """BeginEvent tag strings (read from target memory after the run)."""
        names: dict[int, str] = {}
        strings: dict[int, str] = {}
        for i, ptr in enumerate(tags.tolist()):
            if ptr not in strings:
                try:
                    raw = bytes(uc.mem_read(ptr, 64)) if ptr else b""
                except UcError:
                    raw = b""
                strings[ptr] = raw.split(b"\0", 1)[0].decode("ascii", "replace") or "?"
            names[i] = strings[ptr]
        return names

    def _make_counter(self, image: ElfImage, budget: int,
                      cost: Callable[[int, int], BlockCost] | None = None) -> BlockCounter:
        begin, end = image.symbol(PROF_BEGIN), image.symbol(PROF_END)
        if begin is None or end is None:
            log.debug("no %s/%s in the firmware: no per-layer attribution", PROF_BEGIN, PROF_END)
        ev_begin = ev_end = None
        pair = self.span or self.event_profiler
        if pair is not None:
            ev_begin, ev_end = (self._function(image, name).address for name in pair)
        tags = self.span is None and ev_begin is not None
        model = self.cost_model or cost_model_for(self.board)
        return BlockCounter(
            prof_begin=begin.address if begin and end else None,
            prof_end=end.address if begin and end else None,
            event_begin=ev_begin, event_end=ev_end, event_wrap=self.event_wrap,
            budget_instructions=budget, cost=cost,
            event_tags=_MAX_EVENT_TAGS if tags else 0,
            timing=(timing_config(self.board, model.params, self._region_hosts())
                    if cost is not None else None))

    def _region_hosts(self) -> dict[int, int]:
        """Host address of each board memory region's first byte (origin -> address):
        the native hook reads guest memory there without a Unicorn call."""
        out = {}
        for r in self.board.memory:
            for start, end, address in self._host:
                if start <= r.origin and r.end <= end:
                    out[r.origin] = address + (r.origin - start)
        return out

    @staticmethod
    def _function(image: ElfImage, name: str) -> Symbol:
        """The function a user named (mangled, demangled, or without parameters)."""
        sym = image.find_function(name)
        if sym is None:
            where = str(image.path) if image.path else "firmware image"
            raise ConfigError(f"{where}: no function {name!r}")
        return sym

    def _heap_info(self, image: ElfImage) -> tuple[int, int, int, int]:
        """SYS_HEAPINFO answer: heap from the linker's ``end`` symbol up to the stack."""
        data = self.board.data
        end = next((s for s in (image.symbol(n) for n in ("end", "_end", "__end__")) if s),
                   None)
        heap_base = end.address if end else data.origin
        return heap_base, self.initial_sp, self.initial_sp, data.origin

    # -- hooks -----------------------------------------------------------------------
    def _install_abi_hooks(self, uc: Uc, image: ElfImage, session: _Session) -> None:
        io = {IO_NEXT: self._on_io_next, IO_INPUT: self._on_io_input,
              IO_OUTPUT: self._on_io_output}
        handlers = {**io, HALT: self._on_halt}
        if self.stop_on_idle:
            handlers[LIBC_EXIT] = self._on_halt
        for name, handler in handlers.items():
            required = session.inputs and name in io
            sym = image.require_symbol(name) if required else image.symbol(name)
            if sym is None:
                continue
            uc.hook_add(unicorn.UC_HOOK_CODE, handler, session, begin=sym.address,
                        end=sym.address)
            session.intercepted.append(sym.address)
        for name in self.stop_at:
            sym = self._function(image, name)
            for address in {sym.address, *(c.address for c in image.clones_of(sym))}:
                uc.hook_add(unicorn.UC_HOOK_CODE, self._on_stop_symbol, (session, name),
                            begin=address, end=address)
                session.intercepted.append(address)
        if self.span is not None:
            self._install_span_hooks(uc, image, session)
        if session.exceptions is not None:
            for address in image.unmask_points():
                uc.hook_add(unicorn.UC_HOOK_CODE, self._on_unmask, session, begin=address,
                            end=address)
        if self.stop_on_idle:
            for address in image.idle_loops():
                uc.hook_add(unicorn.UC_HOOK_CODE, self._on_idle, session, begin=address,
                            end=address)
            self._install_trap_hooks(uc, image, session)

    def _install_span_hooks(self, uc: Uc, image: ElfImage, session: _Session) -> None:
        """Span bookkeeping at START and END entries; entries of their GCC clones are
        errors (the counting hook watches one address each: a clone would be missed)."""
        assert self.span is not None
        start, end = (self._function(image, name) for name in self.span)
        uc.hook_add(unicorn.UC_HOOK_CODE, self._on_span_start, session, begin=start.address,
                    end=start.address)
        uc.hook_add(unicorn.UC_HOOK_CODE, self._on_span_end, session, begin=end.address,
                    end=end.address)
        for sym in (start, end):
            for clone in image.clones_of(sym):
                uc.hook_add(unicorn.UC_HOOK_CODE, self._on_span_clone, (session, clone.name),
                            begin=clone.address, end=clone.address)

    def _on_span_clone(self, uc: Uc, _address: int, _size: int,
                       where: tuple[_Session, str]) -> None:
        session, name = where
        self._fail(uc, session, ConfigError(
            f"the firmware entered {name}, a compiler clone of a --span function, not the "
            f"function itself: give the clone's name in --span ({name})"))

    def _install_trap_hooks(self, uc: Uc, image: ElfImage, session: _Session) -> None:
        """Entries of the error traps, out of line (symbols) and inlined (DWARF): reaching
        one ends the run with an error and the call path, never with a report."""
        entries = {sym.address: name for name in TRAP_FUNCTIONS
                   if (sym := image.symbol(name)) is not None and sym.is_function}
        for address, name in image.debug.inlined_entries(frozenset(TRAP_FUNCTIONS),
                                                         list(entries)):
            entries.setdefault(address, name)
        for address, name in sorted(entries.items()):
            uc.hook_add(unicorn.UC_HOOK_CODE, self._on_trap, (session, name), begin=address,
                        end=address)

    def _on_trap(self, uc: Uc, address: int, _size: int, where: tuple[_Session, str]) -> None:
        session, name = where
        self._fail(uc, session, self._fault(
            uc, session, f"firmware reached the error trap {name}; call path: "
            f"{self._call_path(uc, address)}", address))

    def _call_path(self, uc: Uc, pc: int) -> str:
        assert self.image is not None

        def read_word(address: int) -> int | None:
            try:
                return struct.unpack("<I", bytes(uc.mem_read(address, 4)))[0]
            except UcError:
                return None

        path = call_path(self.image, read_word, pc, uc.reg_read(arm_const.UC_ARM_REG_LR),
                         uc.reg_read(arm_const.UC_ARM_REG_SP), self.initial_sp)
        return " <- ".join(path)

    def _on_unmask(self, uc: Uc, _address: int, _size: int, session: _Session) -> None:
        """Right after ``cpsie`` / ``msr PRIMASK|BASEPRI``: take a pending interrupt now
        that it may be unmasked (only when one is pending: the common case costs a
        set lookup)."""
        engine, counter = session.exceptions, session.counter
        if engine is None or counter is None or not engine.model.pending:
            return
        before = engine.delivered
        try:
            engine.service(uc, counter.cycles)
        except TinymeterError as exc:
            self._fail(uc, session, exc)
            return
        if engine.delivered != before:
            counter.break_chain()  # the handler is no branch successor of this block
        self._schedule(session)

    def _on_span_start(self, uc: Uc, _address: int, _size: int, session: _Session) -> None:
        if session.span_open:
            assert self.span is not None
            self._fail(uc, session, EmulationError(
                f"span {self.span[0]}:{self.span[1]}: {self.span[0]} entered again before "
                f"{self.span[1]} (spans must not nest or repeat their start) at "
                f"{self._where(uc, session)}"))
        session.span_open = True

    def _on_span_end(self, uc: Uc, _address: int, _size: int, session: _Session) -> None:
        if not session.span_open:
            return
        session.span_open = False
        session.spans_done += 1
        if self.span_count and session.spans_done >= self.span_count:
            assert self.span is not None
            session.semihost.exit_code = 0
            session.stop_reason = (f"span {self.span[0]}:{self.span[1]} completed "
                                   f"{session.spans_done} time(s)")
            uc.emu_stop()

    def _pending(self, session: _Session) -> str:
        """What the user asked to reach that has not been reached yet ("" when nothing)."""
        if self.stop_at:
            return f"the stop symbol {' or '.join(self.stop_at)}"
        if self.span is not None:
            needed = self.span_count or 1
            if session.span_open or session.spans_done < needed:
                return (f"the end of span {self.span[0]}:{self.span[1]} "
                        f"({session.spans_done} of {needed} completed)")
        return ""

    @staticmethod
    def _return(uc: Uc, session: _Session | None = None) -> None:
        """Return from an intercepted ABI entry to its caller (the block that called it
        and the block after the return are not branch neighbours for the hook)."""
        uc.reg_write(arm_const.UC_ARM_REG_PC, uc.reg_read(arm_const.UC_ARM_REG_LR) | 1)
        if session is not None and session.counter is not None:
            session.counter.break_chain()

    def _on_io_next(self, uc: Uc, _address: int, _size: int, session: _Session) -> None:
        more = session.next_inference < len(session.inputs)
        if more:
            session.next_inference += 1
            session.outputs.append([])
        uc.reg_write(arm_const.UC_ARM_REG_R0, int(more))
        self._return(uc, session)

    def _on_io_input(self, uc: Uc, _address: int, _size: int, session: _Session) -> None:
        index = uc.reg_read(arm_const.UC_ARM_REG_R0)
        buf = uc.reg_read(arm_const.UC_ARM_REG_R1)
        nbytes = uc.reg_read(arm_const.UC_ARM_REG_R2)
        k = session.inference
        given = session.inputs[k] if 0 <= k < len(session.inputs) else ()
        if given:
            if index >= len(given):
                return self._fail(uc, session, EmulationError(
                    f"firmware asked for input {index} of inference {k}, but only "
                    f"{len(given)} input tensor(s) were given"))
            data = given[index]
            if len(data) != nbytes:
                return self._fail(uc, session, EmulationError(
                    f"input {index} of inference {k} has {len(data)} bytes, the firmware "
                    f"tensor has {nbytes}"))
            uc.mem_write(buf, bytes(data))
        self._return(uc, session)
        return None

    def _on_io_output(self, uc: Uc, _address: int, _size: int, session: _Session) -> None:
        index = uc.reg_read(arm_const.UC_ARM_REG_R0)
        buf = uc.reg_read(arm_const.UC_ARM_REG_R1)
        nbytes = uc.reg_read(arm_const.UC_ARM_REG_R2)
        if not session.outputs:
            session.outputs.append([])  # output without tm_io_next: default-input firmware
        slot = session.outputs[-1]
        slot.extend([None] * (index + 1 - len(slot)))
        slot[index] = bytes(uc.mem_read(buf, nbytes))
        self._return(uc, session)

    def _on_halt(self, uc: Uc, address: int, _size: int, session: _Session) -> None:
        """``tm_halt`` (the hardware image idles there after its report) or the C
        library's ``_exit``: the end of the run, r0 = exit code."""
        code = uc.reg_read(arm_const.UC_ARM_REG_R0)
        session.semihost.exit_code = code - (1 << 32) if code & 0x80000000 else code
        assert self.image is not None
        session.stop_reason = self.image.describe(address)
        uc.emu_stop()

    @staticmethod
    def _on_stop_symbol(uc: Uc, _address: int, _size: int,
                        where: tuple[_Session, str]) -> None:
        session, name = where
        session.semihost.exit_code = 0
        session.stop_reason = f"stop at {name}"
        uc.emu_stop()

    def _on_idle(self, uc: Uc, address: int, _size: int, session: _Session) -> None:
        """An idle loop: the firmware has nothing left to do (it executes once, counted),
        unless the loop is an error trap (``Error_Handler``, ``*Fault*``, ``abort``...)."""
        assert self.image is not None
        where = self.image.describe(address)
        frames = self.image.frames(address)
        place = self.image.describe_frames(address)
        trap = trap_frame(frames) or trap_frame([Frame(where.split("+", 1)[0], False)])
        if trap is not None:
            return self._fail(uc, session, self._fault(
                uc, session, f"firmware stopped in the error loop {trap.name} ({place}); "
                f"call path: {self._call_path(uc, address)}", address))
        pending = self._pending(session)
        if pending:
            return self._fail(uc, session, EmulationError(
                f"firmware parked in an idle loop in {place} before reaching {pending} at "
                f"{self._where(uc, session, address)}; call path: "
                f"{self._call_path(uc, address)}"))
        session.semihost.exit_code = 0
        session.stop_reason = f"idle loop at {where}"
        log.info("firmware reached an %s", session.stop_reason)
        uc.emu_stop()
        return None

    def _on_interrupt(self, uc: Uc, intno: int, session: _Session) -> None:
        pc = uc.reg_read(arm_const.UC_ARM_REG_PC)
        if (intno in (_EXCP_PREFETCH_ABORT, _EXCP_EXCEPTION_EXIT) and pc >= EXC_RETURN_MIN
                and session.exceptions):
            # a handler returned (bx lr / pop {pc} / ldm with EXC_RETURN): unstack.  QEMU
            # reports a prefetch abort, or an exception exit when it translated the
            # branch in handler mode
            assert session.counter is not None
            try:
                session.exceptions.leave(uc, pc | 1, session.counter.cycles)
            except TinymeterError as exc:
                return self._fail(uc, session, exc)
            session.counter.break_chain()  # the return target is no branch successor
            self._schedule(session)
            return None
        if intno == _EXCP_SWI and session.exceptions:  # svc: PC is past the instruction
            assert session.counter is not None
            try:
                session.exceptions.supervisor_call(uc, pc)
            except TinymeterError as exc:
                return self._fail(uc, session, exc)
            session.counter.break_chain()  # the handler is no branch successor
            self._schedule(session)
            return None
        if intno == _EXCP_BKPT:
            insn = struct.unpack("<H", bytes(uc.mem_read(pc & ~1, 2)))[0]
            if insn == SEMIHOSTING_BKPT:
                op = uc.reg_read(arm_const.UC_ARM_REG_R0)
                arg = uc.reg_read(arm_const.UC_ARM_REG_R1)
                try:
                    result = session.semihost.handle(op, arg)
                except (SemihostingError, UcError) as exc:
                    return self._fail(uc, session, self._fault(
                        uc, session, f"semihosting call failed ({exc})", pc))
                uc.reg_write(arm_const.UC_ARM_REG_R0, result)
                if session.semihost.exited:
                    uc.emu_stop()
                else:
                    uc.reg_write(arm_const.UC_ARM_REG_PC, (pc + 2) | 1)
                return None
            what = f"BKPT 0x{insn & 0xFF:02x} (breakpoint, not semihosting)"
        else:
            what = _EXCEPTION_NAMES.get(intno, f"CPU exception {intno}")
            counter = session.counter
            if counter is not None and counter.align_fault_pc == pc & ~1:
                what += (f": an unaligned access the {self.board.core.name} does not allow "
                         f"(UsageFault/HardFault on silicon)")
        return self._fail(uc, session, self._fault(uc, session, what, pc))

    def _on_invalid_memory(self, _uc: Uc, access: int, address: int, size: int, _value: int,
                           session: _Session) -> bool:
        kind = _MEM_ACCESS.get(access, "access")
        session.bad_access = f"{kind} of {size} bytes at 0x{address:08x}"
        return False  # let the engine raise the matching UC_ERR_*

    @staticmethod
    def _on_timeout(uc: Uc, session: _Session) -> None:
        """Timer-thread callback: stop the engine (uc_emu_stop is safe from another thread)."""
        session.timed_out = True
        try:
            uc.emu_stop()
        except UcError:  # emulation already finished
            log.debug("timeout fired after emulation ended")

    @staticmethod
    def _fail(uc: Uc, session: _Session, error: TinymeterError) -> None:
        if session.error is None:
            session.error = error
        uc.emu_stop()

    # -- outcome ---------------------------------------------------------------------
    def _where(self, uc: Uc, session: _Session, pc: int | None = None) -> str:
        if pc is None:
            pc = uc.reg_read(arm_const.UC_ARM_REG_PC)
        assert self.image is not None
        layer = session.layer()
        place = ("" if layer is None else
                 " outside any layer" if layer < 0 else f" in layer {layer}")
        return f"pc=0x{pc:08x} ({self.image.describe(pc)}){place}"

    def _fault(self, uc: Uc, session: _Session, what: str, pc: int | None = None) -> FirmwareFault:
        return FirmwareFault(f"firmware fault: {what} at {self._where(uc, session, pc)}")

    def _check_outcome(self, uc: Uc, session: _Session, engine_error: UcError | None,
                       snapshot: CounterSnapshot | None, budget: int, timeout_s: float) -> None:
        """Raise the error that ended the run, the first cause first; return if the
        firmware exited with code 0."""
        counter = session.counter
        if counter is not None and counter.cost_error is not None and session.error is None:
            err = counter.cost_error
            session.error = (err if isinstance(err, TinymeterError) else EmulationError(
                f"cost model failed on a block: {type(err).__name__}: {err}"))
        if session.error is not None:
            raise session.error
        if engine_error is not None:
            name = _uc_error_name(engine_error.errno)
            fault = self._fault(uc, session, name)
            if session.bad_access:
                fault = FirmwareFault(f"{fault}: {session.bad_access}")
            raise fault
        if snapshot is not None and snapshot.budget_exceeded:
            raise BudgetExceeded(f"firmware did not finish within {budget} instructions "
                                 f"(likely hung) at {self._where(uc, session)}")
        if snapshot is not None and snapshot.out_of_memory:
            raise EmulationError("block-count table could not grow (out of host memory)")
        semihost = session.semihost
        if semihost.exited:
            if semihost.exit_code:
                last = semihost.last_line()
                raise EmulationError(f"firmware exited with code {semihost.exit_code}"
                                     + (f"; last output: {last!r}" if last else
                                        " (no output)"))
            return
        if session.timed_out:
            raise BudgetExceeded(f"firmware did not finish within the {timeout_s:g} s timeout "
                                 f"(likely hung) at {self._where(uc, session)}")
        raise EmulationError(f"emulation stopped without the firmware exiting at "
                             f"{self._where(uc, session)}")

    @staticmethod
    def _collect_outputs(session: _Session) -> list[list[bytes]]:
        out = []
        for k, tensors in enumerate(session.outputs):
            missing = [i for i, t in enumerate(tensors) if t is None]
            if missing:
                raise EmulationError(f"inference {k}: firmware never reported output(s) "
                                     f"{missing}")
            out.append([t for t in tensors if t is not None])
        return out


def _map_host_memory(uc: Uc, ranges: Sequence[tuple[int, int, int]]
                     ) -> list[tuple[int, int, int]]:
    """Map *ranges* (start, end, perms) into *uc* backed by anonymous host mappings the
    process owns, so the native hook can read guest memory directly (address programs
    follow pointers a block loads itself).  The mappings live as long as the engine:
    they hang off the ``Uc`` object, so no run can outlive its memory."""
    hosts: list[tuple[int, int, int]] = []
    keep: list[mmap.mmap] = []
    for start, end, perms in ranges:
        buf = mmap.mmap(-1, end - start)  # zero-filled, committed lazily
        address = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        uc.mem_map_ptr(start, end - start, perms, address)
        keep.append(buf)
        hosts.append((start, end, address))
    uc._tm_host_memory = keep  # type: ignore[attr-defined]
    return hosts


def _uc_error_name(errno: int) -> str:
    for name in dir(unicorn_const):
        if name.startswith("UC_ERR_") and getattr(unicorn_const, name) == errno:
            return name
    return f"unicorn error {errno}"
