"""ctypes glue for the native peripheral registers (``native/periph.c``).

Why native: a register with behaviour sits on an ``mmio_map`` page, and a Python MMIO
callback costs microseconds per access, so firmware spinning on a status register
(HAL waiting for PLLRDY, UART TXE, a timer delay) ran at ~0.3 MIPS.  The register
semantics live in C only; Python compiles the board data into a
:class:`RegisterTable` (pages, reset values, per-word rules, timers, event names) and
:class:`NativeRegisters` wires it to an engine with ``uc_mmio_map`` and C callbacks.
The pure register models' unit tests call :meth:`NativeRegisters.read` / ``write``,
which run the same C code the engine calls.

Python is called back only for UART bytes (to the console sink, in order with
semihosting output) and timer register writes (which may move the next interrupt);
never on reads.
"""

from __future__ import annotations

import ctypes
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from unicorn import Uc, UcError
from unicorn.unicorn_py3 import unicorn as _ucbinding

from tinymeter.sim import _periph
from tinymeter.sim.native_hook import CYCLE_FRAC_BITS, BlockCounter, engine_handle

log = logging.getLogger(__name__)

PAGE = 0x1000
_PAGE_WORDS = PAGE // 4
_ABI_VERSION = 2

# Rule kinds (``TM_PV_*`` in periph.c).
(OR, FOLLOW, FORCE, CYCLES, CLEAR, MARK, UART_DATA, GPIO, TIMER, CYCCNT, CYCCNT_CTRL, SYST,
 PYTHON) = range(1, 14)
#: SysTick registers of a SYST rule's ``b``.
SYST_CSR, SYST_RVR, SYST_CVR, SYST_CALIB = 0, 1, 2, 3
#: GPIO register kinds of a GPIO rule's ``b``.
GPIO_ODR, GPIO_BSRR, GPIO_BRR = 0, 1, 2
_NOTIFY_UART, _NOTIFY_TIMER = 1, 2
#: Rule kinds whose ``a`` / ``c`` is an absolute address (turned into a word index).
_ADDRESS_A = frozenset((FOLLOW, CYCCNT))
_ADDRESS_C = frozenset((GPIO,))


class _Rule(ctypes.Structure):
    _fields_ = [("word", ctypes.c_uint32), ("kind", ctypes.c_uint32), ("a", ctypes.c_uint32),
                ("b", ctypes.c_uint32), ("c", ctypes.c_uint32), ("shift", ctypes.c_int32)]


class _TimerSpec(ctypes.Structure):
    _fields_ = [("bits", ctypes.c_uint32), ("pad", ctypes.c_uint32),
                ("clock_ratio", ctypes.c_double)]


_Notify = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32)
#: ``uint32_t python(void *user, uint32_t is_write, uint32_t address, uint32_t value)``.
_Python = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32,
                           ctypes.c_uint32)


def _load_library() -> ctypes.CDLL:
    path = str(getattr(_periph, "__file__", ""))
    lib = ctypes.CDLL(path)
    dev = ctypes.c_void_p
    sigs: dict[str, tuple[object, list[object]]] = {
        "tm_pv_create": (dev, [ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32),
                               ctypes.c_uint32, ctypes.POINTER(_Rule), ctypes.c_uint32,
                               ctypes.POINTER(_TimerSpec)]),
        "tm_pv_set_python": (None, [dev, ctypes.c_void_p, ctypes.c_void_p]),
        "tm_pv_systick_asserted": (ctypes.c_int, [dev, ctypes.c_int64]),
        "tm_pv_systick_next": (ctypes.c_int, [dev, ctypes.POINTER(ctypes.c_int64)]),
        "tm_pv_destroy": (None, [dev]),
        "tm_pv_poke": (None, [dev, ctypes.c_uint32, ctypes.c_uint32]),
        "tm_pv_set_cycles": (None, [dev, ctypes.c_void_p]),
        "tm_pv_set_own_cycles": (None, [dev, ctypes.c_uint64]),
        "tm_pv_set_notify": (None, [dev, ctypes.c_void_p, ctypes.c_void_p]),
        "tm_pv_page_ctx": (ctypes.c_void_p, [dev, ctypes.c_uint32]),
        "tm_pv_read": (ctypes.c_uint64, [dev, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_uint]),
        "tm_pv_write": (None, [dev, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_uint,
                               ctypes.c_uint64]),
        "tm_pv_event_count": (ctypes.c_uint64, [dev]),
        "tm_pv_oom": (ctypes.c_uint32, [dev]),
        "tm_pv_events": (ctypes.c_uint64, [dev, ctypes.c_void_p, ctypes.c_void_p,
                                           ctypes.c_void_p, ctypes.c_uint64]),
        "tm_pv_timer_next_update": (ctypes.c_int, [dev, ctypes.c_uint32, ctypes.c_uint64,
                                                   ctypes.POINTER(ctypes.c_uint64)]),
        "tm_pv_timer_pending": (ctypes.c_int, [dev, ctypes.c_uint32, ctypes.c_uint64]),
        "tm_pv_timer_dier": (ctypes.c_uint32, [dev, ctypes.c_uint32]),
        "tm_pv_abi_version": (ctypes.c_uint32, []),
        "tm_pv_rule_size": (ctypes.c_uint64, []),
        "tm_pv_timer_spec_size": (ctypes.c_uint64, []),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    if (lib.tm_pv_abi_version() != _ABI_VERSION or CYCLE_FRAC_BITS != 16  # TM_PV_FRAC_BITS
            or lib.tm_pv_rule_size() != ctypes.sizeof(_Rule)
            or lib.tm_pv_timer_spec_size() != ctypes.sizeof(_TimerSpec)):
        raise ImportError(f"tinymeter.sim._periph at {path} does not match native_periph.py; "
                          "rebuild with `pip install -e .`")
    return lib


_LIB = _load_library()  # immutable after import: a loaded library handle, not run state
_MMIO_READ = ctypes.cast(_LIB.tm_pv_mmio_read, ctypes.c_void_p).value
_MMIO_WRITE = ctypes.cast(_LIB.tm_pv_mmio_write, ctypes.c_void_p).value


@dataclass(frozen=True)
class Rule:
    """One behaviour of the register word at ``address`` (see ``periph.c`` for the kinds).

    ``a``/``b``/``c``/``shift`` are kind-specific: FOLLOW (source address, source mask,
    status mask, shift), FORCE (mask, value), OR (mask), CLEAR (mask), MARK (written
    value, event name id, level), GPIO (port number, register kind, ODR address), TIMER
    (timer index, register offset), CYCCNT (address of DWT_CTRL), CYCCNT_CTRL, SYST
    (``b``: SYST_CSR/RVR/CVR/CALIB), PYTHON (served by the device's *python* callback)."""

    address: int
    kind: int
    a: int = 0
    b: int = 0
    c: int = 0
    shift: int = 0


@dataclass
class RegisterTable:
    """What a native register device serves: built by the pure register models."""

    pages: tuple[int, ...] = ()
    #: Initial word values (reset values), by absolute address.
    reset: dict[int, int] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    #: (counter bits, timer clock / core clock) per timer, in TIMER rule index order.
    timers: list[tuple[int, float]] = field(default_factory=list)
    #: Event names by id (MARK and GPIO events).
    names: list[str] = field(default_factory=list)

    def name_id(self, name: str) -> int:
        if name not in self.names:
            self.names.append(name)
        return self.names.index(name)

    def serves(self, address: int) -> bool:
        return address & ~(PAGE - 1) in self.pages


@dataclass(frozen=True)
class Event:
    """A logged register event: at *cycle* (estimated), *name* went to *level*."""

    cycle: int
    name: str
    level: int


class NativeRegisters:
    """One C register device built from a :class:`RegisterTable`.

    *cycles* gives the cycle count for accesses made through :meth:`read` / :meth:`write`
    (unit tests) until :meth:`follow_counter` points the device at the counting hook's
    running counter (what the engine's accesses read).  *on_uart* gets every byte
    written to a UART data register; *on_timer* is called after a timer or SysTick
    register write; *python* ``(is_write, address, value) -> value`` serves the words of
    PYTHON rules.
    """

    def __init__(self, table: RegisterTable, cycles: Callable[[], int],
                 on_uart: Callable[[int], None] | None = None,
                 on_timer: Callable[[], None] | None = None,
                 python: Callable[[bool, int, int], int] | None = None) -> None:
        self.table = table
        self._cycles = cycles
        self._page_index = {page: i for i, page in enumerate(table.pages)}
        self.on_uart = on_uart or (lambda _byte: None)
        self.on_timer = on_timer or (lambda: None)
        rules = sorted((r for r in table.rules if table.serves(r.address)
                        and (r.kind not in _ADDRESS_A or table.serves(r.a))
                        and (r.kind not in _ADDRESS_C or table.serves(r.c))),
                       key=lambda r: (self._word(r.address), r.kind != GPIO))
        arr = (_Rule * max(len(rules), 1))()
        for i, r in enumerate(rules):
            a = self._word(r.a) if r.kind in _ADDRESS_A else r.a
            c = self._word(r.c) if r.kind in _ADDRESS_C else r.c
            arr[i] = _Rule(self._word(r.address), r.kind, a & 0xFFFFFFFF, r.b & 0xFFFFFFFF,
                           c & 0xFFFFFFFF, r.shift)
        specs = (_TimerSpec * max(len(table.timers), 1))()
        for i, (bits, ratio) in enumerate(table.timers):
            specs[i] = _TimerSpec(bits, 0, ratio)
        bases = (ctypes.c_uint32 * max(len(table.pages), 1))(*table.pages)
        handle = _LIB.tm_pv_create(len(table.pages), bases, len(rules), arr, len(table.timers),
                                   specs)
        if not handle:
            raise MemoryError("cannot create the native register device")
        self._dev = ctypes.c_void_p(handle)
        self._finalizer = weakref.finalize(self, _LIB.tm_pv_destroy, self._dev)
        for address, value in table.reset.items():
            if table.serves(address):
                _LIB.tm_pv_poke(self._dev, self._word(address & ~3), value & 0xFFFFFFFF)
        self._notify = _Notify(self._on_notify)
        _LIB.tm_pv_set_notify(self._dev, ctypes.cast(self._notify, ctypes.c_void_p), None)
        self._python = python
        self._python_cb = _Python(self._on_python)
        if python is not None:
            _LIB.tm_pv_set_python(self._dev, ctypes.cast(self._python_cb, ctypes.c_void_p),
                                  None)
        self._counter: BlockCounter | None = None

    def _word(self, address: int) -> int:
        """Device word index of *address*, which must be on one of its pages."""
        page = address & ~(PAGE - 1)
        index = self._page_index.get(page)
        if index is None:
            raise ValueError(f"register 0x{address:08x} is not on a page of this device")
        return index * _PAGE_WORDS + ((address & (PAGE - 1)) >> 2)

    def _on_notify(self, _user: int | None, kind: int, value: int) -> None:
        # no exception may cross the C boundary (ctypes would print it and carry on)
        try:
            if kind == _NOTIFY_UART:
                self.on_uart(value)
            elif kind == _NOTIFY_TIMER:
                self.on_timer()
        except Exception:  # logged; the run goes on (no exception may cross into C)
            log.exception("peripheral callback failed")

    def _on_python(self, _user: int | None, is_write: int, address: int, value: int) -> int:
        try:
            assert self._python is not None
            return self._python(bool(is_write), address, value) & 0xFFFFFFFF
        except Exception:  # logged; the run goes on (no exception may cross into C)
            log.exception("register callback failed at 0x%08x", address)
            return 0

    def systick_asserted(self, now: int) -> bool:
        """A SysTick exception is due at *now* (consumes the zero crossing)."""
        return bool(_LIB.tm_pv_systick_asserted(self._dev, int(now)))

    def systick_next(self) -> int | None:
        """Cycle of the next SysTick exception (None: not ticking)."""
        out = ctypes.c_int64()
        return int(out.value) if _LIB.tm_pv_systick_next(self._dev, ctypes.byref(out)) else None

    # -- the pure interface (tests, Python callers) --------------------------------------
    def pages(self) -> tuple[int, ...]:
        return self.table.pages

    def _sync(self) -> int:
        """The cycle count an access made from Python sees (own cell unless following the
        counting hook)."""
        if self._counter is not None:
            return self._counter.cycles
        now = int(self._cycles())
        _LIB.tm_pv_set_own_cycles(self._dev, now)
        return now

    def read(self, page: int, offset: int, size: int) -> int:
        self._sync()
        return int(_LIB.tm_pv_read(self._dev, self._page_index[page], offset, size))

    def write(self, page: int, offset: int, size: int, value: int) -> None:
        self._sync()
        _LIB.tm_pv_write(self._dev, self._page_index[page], offset, size, value)

    @property
    def events(self) -> list[Event]:
        n = int(_LIB.tm_pv_event_count(self._dev))
        if _LIB.tm_pv_oom(self._dev):
            log.warning("register events were dropped (out of host memory)")
        cycles = (ctypes.c_uint64 * max(n, 1))()
        names = (ctypes.c_uint32 * max(n, 1))()
        levels = (ctypes.c_uint32 * max(n, 1))()
        got = int(_LIB.tm_pv_events(self._dev, cycles, names, levels, n))
        return [Event(int(cycles[i]), self.table.names[names[i]], int(levels[i]))
                for i in range(got)]

    def timer_next_update(self, index: int, now: int) -> int | None:
        out = ctypes.c_uint64()
        if not _LIB.tm_pv_timer_next_update(self._dev, index, max(int(now), 0),
                                            ctypes.byref(out)):
            return None
        return int(out.value)

    def timer_pending(self, index: int, now: int) -> bool:
        return bool(_LIB.tm_pv_timer_pending(self._dev, index, max(int(now), 0)))

    def timer_interrupt_enabled(self, index: int) -> bool:
        return bool(_LIB.tm_pv_timer_dier(self._dev, index) & 1)

    # -- the engine --------------------------------------------------------------------
    def follow_counter(self, counter: BlockCounter | None) -> None:
        """Read cycles from *counter*'s running count (None: the own cell again)."""
        self._counter = counter
        if counter is None:
            _LIB.tm_pv_set_cycles(self._dev, None)
            return
        _LIB.tm_pv_set_cycles(self._dev, counter.cycles_address)

    def map_into(self, uc: Uc) -> None:
        """``uc_mmio_map`` every page with the C callbacks; the engine keeps the device
        (and the counter it follows) alive."""
        for i, page in enumerate(self.table.pages):
            user = _LIB.tm_pv_page_ctx(self._dev, i)
            status = _ucbinding.uclib.uc_mmio_map(
                engine_handle(uc), ctypes.c_uint64(page), ctypes.c_uint64(PAGE),
                ctypes.c_void_p(_MMIO_READ), ctypes.c_void_p(user),
                ctypes.c_void_p(_MMIO_WRITE), ctypes.c_void_p(user))
            if status != 0:
                raise UcError(status)
        keep = getattr(uc, "_tm_native_registers", [])
        keep.append(self)
        uc._tm_native_registers = keep  # type: ignore[attr-defined]

