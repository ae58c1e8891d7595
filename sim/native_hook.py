"""ctypes glue between the unicorn Python binding and the native counting hook.

All knowledge of binding internals lives here (the engine handle attribute, the
ctypes library object, the C struct layout), so a unicorn upgrade that moves them
breaks exactly one small module.  Why ctypes instead of ``Uc.hook_add``: the binding
only accepts Python callables, and a Python block hook is 20-100x slower than the
native one.
"""

from __future__ import annotations

import ctypes
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from unicorn import UC_HOOK_BLOCK, Uc, UcError
from unicorn.unicorn_py3 import unicorn as _ucbinding

#: Fractional bits of the hook's fixed-point cycle values (``TM_CYCLE_FRAC_BITS``): a
#: fact of the firmware ABI (:mod:`tinymeter.abi`), checked against the C hook at load.
from tinymeter.abi import CYCLE_FRAC_BITS
from tinymeter.abi import CYCLE_SCALE as CYCLE_SCALE  # re-exported: sim modules price with it
from tinymeter.sim import _counthook

log = logging.getLogger(__name__)

#: Marker for "no address" in the C struct (no block starts at 2**64-1).
NO_ADDR = (1 << 64) - 1
FLAG_BUDGET = 1
FLAG_OOM = 2
FLAG_COST = 4
FLAG_ALARM = 8
_ABI_VERSION = 6
_INITIAL_CAPACITY = 1 << 14
MAX_REGIONS = 8
#: How the core treats an unaligned single load/store (``TM_UNALIGNED_*``): ARMv6-M faults
#: on every one; Cortex-M3/M4/M33 split it into aligned halfword/byte transactions; the
#: Cortex-M7 into two aligned accesses.
UNALIGNED_FAULT, UNALIGNED_AHB, UNALIGNED_PAIR = 0, 1, 2
#: Cache replacement policies (``TM_POLICY_*``), by board-file name.
CACHE_POLICIES = {"lru": 0, "fifo": 1, "random": 2}

#: How a block ends (``tm_block_desc.end_kind``).
END_NONE, END_TAKEN, END_CONDITIONAL = 0, 1, 2
#: A block that never executes (an intercepted ABI entry): counted, costs nothing.
END_SKIP = 3
#: A conditional end the core predicts (a 2-bit counter per block end in the hook): only a
#: misprediction costs (``taken`` / ``not_taken``: the cost of each mispredicted outcome).
END_PREDICTED = 4
#: Predictor organisations of END_PREDICTED ends (``TM_PREDICT_*``): a 2-bit saturating
#: counter per block end starting weakly not-taken, one bit repeating the last outcome, a
#: 2-bit counter starting weakly taken.
PREDICTORS = {"2bit": 0, "1bit": 1, "2bit-taken": 2}
#: Entries of the hook's branch predictor table (direct-mapped by branch end address).
PREDICT_ENTRIES = 4096
#: ``tm_block_desc.tail`` flag: the last instruction may pair with an ALU successor.
TAIL_PAIRS = 4
#: Memory kinds of ``tm_region.kind`` and access buckets of the statistics (the last
#: bucket: accesses whose address the block's address program could not resolve).
MEMORY_KINDS = ("flash", "sram", "tcm", "peripheral", "other")
ACCESS_BUCKETS = (*MEMORY_KINDS, "unresolved")
#: Columns of the per-row statistics matrix (``TM_S_*`` in counthook.c).
STAT_COLUMNS: tuple[str, ...] = (
    "count", "cycles", "taken", "not_taken", "branch", "ifetch_stall", "data_stall",
    "icache_hit", "icache_miss", "dcache_hit", "dcache_miss", "seam_pipe", "seam_pair",
    "mispredict",
    *(f"loads.{b}" for b in ACCESS_BUCKETS), *(f"stores.{b}" for b in ACCESS_BUCKETS),
    *(f"load_bytes.{b}" for b in ACCESS_BUCKETS),
    # extra bus transactions of unaligned loads/stores the core splits, per memory kind
    *(f"unaligned.{b}" for b in ACCESS_BUCKETS),
    # unaligned accesses that fault on the core (LDM/LDRD/VLDR/exclusives; any on ARMv6-M)
    "align_faults",
    # reads of the flash array in access units (fetch misses, prefetches, data misses, fills)
    "flash_reads",
)
STAT = {name: i for i, name in enumerate(STAT_COLUMNS)}
#: Columns holding fixed-point cycles (the rest are counts).
FIXED_POINT_STATS = frozenset(("cycles", "branch", "ifetch_stall", "data_stall"))


class BlockDesc(ctypes.Structure):
    """Mirror of ``tm_block_desc``: what the cost callback tells about one block."""

    _fields_ = [
        ("base", ctypes.c_uint64),
        ("taken", ctypes.c_uint64),
        ("not_taken", ctypes.c_uint64),
        ("seam_pipe", ctypes.c_int64),
        ("seam_pair", ctypes.c_int64),
        ("ops", ctypes.c_void_p),
        ("n_ops", ctypes.c_uint32),
        ("regs_mask", ctypes.c_uint32),
        ("end_kind", ctypes.c_uint32),
        ("error", ctypes.c_uint32),
        ("head", ctypes.c_uint32),
        ("tail", ctypes.c_uint32),
        ("tail_written", ctypes.c_uint32),
        ("predictor", ctypes.c_uint32),
    ]


#: ``void cost(void *user, uint32_t addr, uint32_t size, tm_block_desc *out)``.
CostCallback = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32,
                                ctypes.POINTER(BlockDesc))


class Region(ctypes.Structure):
    """Mirror of ``tm_region``."""

    _fields_ = [("origin", ctypes.c_uint32), ("last", ctypes.c_uint32),
                ("kind", ctypes.c_uint32), ("wait_states", ctypes.c_uint32),
                ("access_shift", ctypes.c_uint32), ("cacheable", ctypes.c_uint32),
                ("host", ctypes.c_uint64)]


class TimingConfig(ctypes.Structure):
    """Mirror of ``tm_timing_config``: the board's memory system for the native timing model."""

    _fields_ = [
        ("enabled", ctypes.c_uint32),
        ("n_regions", ctypes.c_uint32),
        ("regions", Region * MAX_REGIONS),
        ("prefetch", ctypes.c_uint32),
        ("l1_fill", ctypes.c_uint32),
        ("unified", ctypes.c_uint32),
        ("unaligned_rule", ctypes.c_uint32),
        ("data_memo", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
        ("unaligned_cycles", ctypes.c_uint64),
        ("accel_icache", ctypes.c_uint32 * 4),
        ("accel_dcache", ctypes.c_uint32 * 4),
        ("l1_icache", ctypes.c_uint32 * 4),
        ("l1_dcache", ctypes.c_uint32 * 4),
        ("ifetch_weight", ctypes.c_uint64),
        ("data_weight", ctypes.c_uint64),
    ]


class CacheState(ctypes.Structure):
    """Mirror of ``tm_cache`` (C-owned memory; Python only sizes it)."""

    _fields_ = [("line_shift", ctypes.c_uint32), ("set_mask", ctypes.c_uint32),
                ("ways", ctypes.c_uint32), ("unit_shift", ctypes.c_uint32),
                ("policy", ctypes.c_uint32), ("rng", ctypes.c_uint32),
                ("tags", ctypes.c_void_p), ("units", ctypes.c_void_p),
                ("stamp", ctypes.c_void_p), ("tick", ctypes.c_uint64),
                ("epoch", ctypes.c_uint64), ("hint", ctypes.c_uint32 * 64)]


class CountContext(ctypes.Structure):
    """Mirror of ``struct tm_ctx`` in ``native/counthook.c`` (keep the two in sync)."""

    _fields_ = [
        ("prof_begin_addr", ctypes.c_uint64),
        ("prof_end_addr", ctypes.c_uint64),
        ("evt_begin_addr", ctypes.c_uint64),
        ("evt_end_addr", ctypes.c_uint64),
        ("budget_insns", ctypes.c_uint64),
        ("reg_read", ctypes.c_void_p),
        ("emu_stop", ctypes.c_void_p),
        ("cost_fn", ctypes.c_void_p),
        ("cost_user", ctypes.c_void_p),
        ("evt_tags", ctypes.c_void_p),
        ("evt_tags_cap", ctypes.c_uint64),
        ("mem_read", ctypes.c_void_p),
        ("reg_read_batch", ctypes.c_void_p),
        ("executed_bytes", ctypes.c_uint64),
        ("blocks_executed", ctypes.c_uint64),
        ("cycles", ctypes.c_uint64),
        ("costs", ctypes.c_void_p),
        ("cost_capacity", ctypes.c_uint64),
        ("cost_used", ctypes.c_uint64),
        ("table", ctypes.c_void_p),
        ("capacity", ctypes.c_uint64),
        ("used", ctypes.c_uint64),
        ("last", ctypes.c_void_p),
        ("stream_ready", ctypes.c_uint64),
        ("flash_free", ctypes.c_uint64),
        ("alarm_cycles", ctypes.c_uint64),
        ("align_faults", ctypes.c_uint64),
        ("stream_unit", ctypes.c_uint32),
        ("stream_valid", ctypes.c_uint32),
        ("l1_enabled", ctypes.c_uint32),
        ("code_region", ctypes.c_uint32),
        ("current_layer", ctypes.c_int32),
        ("evt_counter", ctypes.c_uint32),
        ("evt_wrap", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("align_fault_pc", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
        ("timing", TimingConfig),
        ("accel_icache", CacheState),
        ("accel_dcache", CacheState),
        ("l1_icache", CacheState),
        ("l1_dcache", CacheState),
        ("predict", ctypes.c_uint8 * PREDICT_ENTRIES),
    ]


#: The compiled hook (an extension module only so that setuptools builds and installs it).
_LIBRARY_PATH = str(getattr(_counthook, "__file__", ""))


def _load_library() -> ctypes.CDLL:
    lib = ctypes.CDLL(_LIBRARY_PATH)
    for name in ("tm_ctx_size", "tm_timing_config_size", "tm_block_desc_size"):
        getattr(lib, name).restype = ctypes.c_uint64
    lib.tm_abi_version.restype = ctypes.c_uint32
    lib.tm_cycle_frac_bits.restype = ctypes.c_uint32
    lib.tm_stat_columns.restype = ctypes.c_uint32
    lib.tm_ctx_init.argtypes = [ctypes.POINTER(CountContext), ctypes.c_uint64]
    lib.tm_ctx_init.restype = ctypes.c_int
    lib.tm_ctx_configure_timing.argtypes = [ctypes.POINTER(CountContext),
                                            ctypes.POINTER(TimingConfig)]
    lib.tm_ctx_configure_timing.restype = ctypes.c_int
    lib.tm_ctx_release.argtypes = [ctypes.POINTER(CountContext)]
    lib.tm_ctx_release.restype = None
    lib.tm_ctx_break_chain.argtypes = [ctypes.POINTER(CountContext)]
    lib.tm_ctx_break_chain.restype = None
    lib.tm_ctx_export.argtypes = [
        ctypes.POINTER(CountContext),
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
        ctypes.c_void_p, ctypes.c_uint64,
    ]
    lib.tm_ctx_export.restype = ctypes.c_uint64
    if (lib.tm_abi_version() != _ABI_VERSION or lib.tm_ctx_size() != ctypes.sizeof(CountContext)
            or lib.tm_timing_config_size() != ctypes.sizeof(TimingConfig)
            or lib.tm_block_desc_size() != ctypes.sizeof(BlockDesc)
            or lib.tm_stat_columns() != len(STAT_COLUMNS)
            or lib.tm_cycle_frac_bits() != CYCLE_FRAC_BITS):
        raise ImportError(
            f"tinymeter.sim._counthook at {_LIBRARY_PATH} does not match native_hook.py "
            f"(abi {lib.tm_abi_version()}, struct {lib.tm_ctx_size()} bytes vs "
            f"{ctypes.sizeof(CountContext)}); rebuild with `pip install -e .`")
    return lib


_LIB = _load_library()  # immutable after import: a loaded library handle, not run state


def engine_handle(uc: Uc) -> ctypes.c_void_p:
    """The ``uc_engine *`` behind a binding ``Uc`` object."""
    return ctypes.c_void_p(uc._uch.value if isinstance(uc._uch, ctypes.c_void_p) else uc._uch)


def _function_address(name: str) -> int:
    addr = ctypes.cast(getattr(_ucbinding.uclib, name), ctypes.c_void_p).value
    if not addr:
        raise ImportError(f"unicorn library has no symbol {name}")
    return addr


def add_native_hook(uc: Uc, hook_type: int, function: int, user_data: int,
                    begin: int = 1, end: int = 0, keepalive: object = None) -> int:
    """Register a C function (by address) as a Unicorn hook; returns the hook handle.

    Unicorn treats ``begin > end`` as "whole address space", hence the 1, 0 default.
    *keepalive* (the owner of *user_data*) is stored in the binding's per-hook
    reference table, so the C memory the hook writes cannot be freed by the garbage
    collector while the engine can still call the hook.
    """
    handle = ctypes.c_size_t()
    status = _ucbinding.uclib.uc_hook_add(
        engine_handle(uc), ctypes.byref(handle), hook_type,
        ctypes.c_void_p(function), ctypes.c_void_p(user_data),
        ctypes.c_uint64(begin), ctypes.c_uint64(end))
    if status != 0:
        raise UcError(status)
    uc._callbacks[handle.value] = keepalive
    return handle.value


def remove_native_hook(uc: Uc, handle: int) -> None:
    """Unregister a hook added by :func:`add_native_hook`."""
    status = _ucbinding.uclib.uc_hook_del(engine_handle(uc), ctypes.c_size_t(handle))
    if status != 0:
        raise UcError(status)
    uc._callbacks.pop(handle, None)


def _block_address(address: int | None) -> int:
    """A function's entry as the hook compares it (block start, Thumb bit cleared)."""
    return NO_ADDR if address is None else address & ~1


@dataclass(frozen=True)
class BlockCost:
    """What the cost model says about one block, handed to the native hook (fixed point).

    ``base`` is one execution's core cycles without memory stalls; ``taken`` the extra
    cycles when its end branch is taken (``end_kind`` END_TAKEN: always, END_CONDITIONAL:
    as the successor block shows), ``not_taken`` when a conditional end falls through.
    ``ops``/``regs_mask`` are the block's address program (:mod:`tinymeter.sim.addrprog`).
    """

    base: int
    taken: int = 0
    not_taken: int = 0
    end_kind: int = END_NONE
    ops: np.ndarray | None = None
    regs_mask: int = 0
    #: Cycle change when the block is entered straight from its predecessor and its first
    #: load pipelines / first ALU instruction pairs with it (``head``/``tail`` encodings
    #: of ``tm_block_desc``; see :class:`tinymeter.sim.blocks.Seam`).
    seam_pipe: int = 0
    seam_pair: int = 0
    head: int = 0
    tail: int = 0
    tail_written: int = 0
    #: END_PREDICTED: the predictor's organisation (:data:`PREDICTORS`).
    predictor: int = 0


@dataclass(frozen=True)
class CounterSnapshot:
    """The counting hook's results, copied out of C memory."""

    address: np.ndarray  # uint32
    size: np.ndarray     # uint32
    layer: np.ndarray    # int32
    count: np.ndarray    # uint64
    executed_bytes: int
    blocks_executed: int
    budget_exceeded: bool
    out_of_memory: bool
    #: Static core cycles of one execution of each row's block, fixed point (x ``CYCLE_SCALE``).
    cost: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    #: Cycles summed by the hook per row, fixed point: ``count * cost`` plus the row's
    #: branch outcomes and weighted memory stalls.
    cycles: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    #: Per-row statistics, ``[rows, len(STAT_COLUMNS)]`` uint64 (see :data:`STAT_COLUMNS`).
    stats: np.ndarray = field(default_factory=lambda: np.zeros((0, len(STAT_COLUMNS)), np.uint64))
    #: Running cycle counter at the end of the run, fixed point (sum of ``cycles`` plus
    #: rows the caller may drop later, e.g. intercepted entries, which cost 0).
    total_cycles: int = 0
    cost_failed: bool = False
    #: Tag pointer (``r1`` at BeginEvent) per event id, when tags were recorded.
    event_tags: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    events: int = 0
    #: Unaligned accesses of instructions that fault on the core when unaligned (every
    #: unaligned access on ARMv6-M), summed over the run, and the first one's address.
    align_faults: int = 0
    align_fault_pc: int | None = None


class BlockCounter:
    """Owns one ``tm_ctx`` and its C hash table; attaches the native hook to an engine.

    The C table is freed by :meth:`close` or, as a safety net, by a finalizer, so a
    crashed run cannot leak it.  While attached, the engine holds a reference to the
    counter, so dropping the Python reference cannot free memory the hook still uses.
    """

    def __init__(self, *, prof_begin: int | None = None, prof_end: int | None = None,
                 event_begin: int | None = None, event_end: int | None = None,
                 event_wrap: int = 0, budget_instructions: int = 0,
                 capacity: int = _INITIAL_CAPACITY,
                 cost: Callable[[int, int], BlockCost] | None = None,
                 event_tags: int = 0, timing: TimingConfig | None = None) -> None:
        """*cost* (``(address, size) -> BlockCost``) is called once per distinct
        block from inside the hook; an exception in it stops the run (``cost_failed``)
        and is kept in :attr:`cost_error` for the emulator to raise.  *event_tags* > 0 records the tag
        pointer of up to that many BeginEvent calls.  *timing* switches on the dynamic
        memory-system model (instruction fetch, data accesses, caches)."""
        self._ctx = CountContext()
        if _LIB.tm_ctx_init(ctypes.byref(self._ctx), capacity) != 0:
            raise MemoryError("cannot allocate the block-count table")
        self._finalizer = weakref.finalize(self, _LIB.tm_ctx_release, ctypes.byref(self._ctx))
        ctx = self._ctx
        ctx.prof_begin_addr = _block_address(prof_begin)
        ctx.prof_end_addr = _block_address(prof_end)
        ctx.evt_begin_addr = _block_address(event_begin)
        ctx.evt_end_addr = _block_address(event_end)
        ctx.evt_wrap = event_wrap
        ctx.budget_insns = budget_instructions
        ctx.reg_read = _function_address("uc_reg_read")
        ctx.emu_stop = _function_address("uc_emu_stop")
        ctx.mem_read = _function_address("uc_mem_read")
        ctx.reg_read_batch = _function_address("uc_reg_read_batch")
        if timing is not None and _LIB.tm_ctx_configure_timing(ctypes.byref(ctx),
                                                               ctypes.byref(timing)) != 0:
            raise MemoryError("cannot configure the timing model (caches or regions)")
        self._cost_error: BaseException | None = None
        self._cost_cb = None
        if cost is not None:
            self._cost_cb = CostCallback(self._make_cost_trampoline(cost))
            ctx.cost_fn = ctypes.cast(self._cost_cb, ctypes.c_void_p).value
        self._tags = np.zeros(max(event_tags, 0), dtype=np.uint32)
        if event_tags > 0:
            ctx.evt_tags = self._tags.ctypes.data
            ctx.evt_tags_cap = event_tags
        self._hook_fn = ctypes.cast(_LIB.tm_block_hook, ctypes.c_void_p).value
        self._attached: tuple[Uc, int] | None = None

    def _make_cost_trampoline(self, cost: Callable[[int, int], BlockCost]
                              ) -> Callable[[int | None, int, int, Any], None]:
        """Wrap *cost* so no exception crosses the C boundary (ctypes would print and
        carry on, silently costing the block nothing)."""
        def trampoline(_user: int | None, address: int, size: int, out: Any) -> None:
            desc = out.contents
            if self._cost_error is not None:
                desc.error = 1
                return
            try:
                block = cost(address, size)
                for name in ("base", "taken", "not_taken"):
                    value = int(getattr(block, name))
                    if not 0 <= value < 1 << 63:
                        raise ValueError(f"block {name} cost {value} out of range")
                    setattr(desc, name, value)
                if block.base + min(block.seam_pipe, block.seam_pair, 0) < 0:
                    raise ValueError("negative block cost at a seam")
                for name in ("end_kind", "seam_pipe", "seam_pair", "head", "tail",
                             "tail_written", "predictor"):
                    setattr(desc, name, int(getattr(block, name)))
                if block.ops is not None and len(block.ops):
                    ops = np.ascontiguousarray(block.ops, dtype=np.int32)
                    desc.ops = ops.ctypes.data  # C copies it before this returns
                    desc.n_ops = ops.shape[0]
                    desc.regs_mask = block.regs_mask
                    self._ops_alive = ops
            except BaseException as exc:  # re-raised after the run by the emulator
                self._cost_error = exc
                desc.error = 1
        return trampoline

    @property
    def cost_error(self) -> BaseException | None:
        """The exception the cost callback raised, if it did (the run was stopped)."""
        return self._cost_error

    @property
    def cycles(self) -> int:
        """Live estimated cycles (whole cycles, rounded down): what CYCCNT reads."""
        return int(self._ctx.cycles) >> CYCLE_FRAC_BITS

    @property
    def cycles_address(self) -> int:
        """Host address of the running counter (uint64, fixed point): C peripheral
        models (:mod:`.native_periph`) read it on every register access."""
        return ctypes.addressof(self._ctx) + CountContext.cycles.offset

    def set_alarm(self, cycle: int | None) -> None:
        """Stop emulation at the first block starting at or after whole cycle *cycle*
        (None: no alarm); that block is not counted until emulation resumes at it."""
        self._ctx.alarm_cycles = 0 if cycle is None else max(int(cycle), 1) << CYCLE_FRAC_BITS

    def advance(self, cycles: int) -> None:
        """Let *cycles* whole cycles pass without executing (the core sleeps in WFI):
        the running counter moves, no block row does."""
        self._ctx.cycles += max(int(cycles), 0) << CYCLE_FRAC_BITS

    def take_alarm(self) -> bool:
        """Whether the last stop was the alarm (and clear that)."""
        fired = bool(self._ctx.flags & FLAG_ALARM)
        self._ctx.flags &= ~FLAG_ALARM
        return fired

    @property
    def align_fault_pc(self) -> int | None:
        """Address of the first access the core would fault on for its misalignment."""
        return int(self._ctx.align_fault_pc) if self._ctx.align_faults else None

    @property
    def current_layer(self) -> int:
        return int(self._ctx.current_layer)

    def break_chain(self) -> None:
        """Forget the predecessor block: execution was redirected (an intercepted ABI
        entry returned to its caller), so the next block says nothing about a branch."""
        _LIB.tm_ctx_break_chain(ctypes.byref(self._ctx))

    def attach(self, uc: Uc) -> None:
        """Register ``tm_block_hook`` on every block of *uc*."""
        if self._attached is not None:
            raise RuntimeError("BlockCounter is already attached")
        assert self._hook_fn is not None  # tm_block_hook is exported by the library
        handle = add_native_hook(uc, UC_HOOK_BLOCK, self._hook_fn,
                                 ctypes.addressof(self._ctx), keepalive=self)
        self._attached = (uc, handle)

    def detach(self) -> None:
        if self._attached is not None:
            uc, handle = self._attached
            remove_native_hook(uc, handle)
            self._attached = None

    def snapshot(self) -> CounterSnapshot:
        """Copy the (address, size, layer) -> count table into numpy arrays."""
        n = int(self._ctx.used)
        address = np.zeros(n, dtype=np.uint32)
        size = np.zeros(n, dtype=np.uint32)
        layer = np.zeros(n, dtype=np.int32)
        base = np.zeros(n, dtype=np.uint64)
        stats = np.zeros((n, len(STAT_COLUMNS)), dtype=np.uint64)
        written = _LIB.tm_ctx_export(
            ctypes.byref(self._ctx), address.ctypes.data, size.ctypes.data,
            layer.ctypes.data, base.ctypes.data, stats.ctypes.data, n)
        if written != n:
            raise RuntimeError(f"block table export wrote {written} of {n} entries")
        order = np.lexsort((layer, size, address))
        stats = stats[order]
        return CounterSnapshot(
            address=address[order], size=size[order], layer=layer[order],
            count=stats[:, STAT["count"]].copy(),
            executed_bytes=int(self._ctx.executed_bytes),
            blocks_executed=int(self._ctx.blocks_executed),
            budget_exceeded=bool(self._ctx.flags & FLAG_BUDGET),
            out_of_memory=bool(self._ctx.flags & FLAG_OOM),
            cost=base[order], cycles=stats[:, STAT["cycles"]].copy(), stats=stats,
            total_cycles=int(self._ctx.cycles),
            cost_failed=bool(self._ctx.flags & FLAG_COST),
            event_tags=self._tags[:min(int(self._ctx.evt_counter), len(self._tags))].copy(),
            events=int(self._ctx.evt_counter),
            align_faults=int(self._ctx.align_faults),
            align_fault_pc=int(self._ctx.align_fault_pc) if self._ctx.align_faults else None,
        )

    def close(self) -> None:
        """Detach (if needed) and free the C table; the counter is unusable afterwards."""
        self.detach()
        self._finalizer()
