"""Board files: the single description of a board shared by firmware, sim and hw.

A board file is TOML (one file per board, in ``tinymeter/boards/`` or anywhere on
disk). Parsing is strict: unknown keys and wrong types are errors, because a typo in
a wait-state count silently changes every estimate.
"""

from __future__ import annotations

import itertools
import logging
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tinymeter.core.cores import Core, get_core
from tinymeter.core.devicemap import DeviceMap, parse_peripherals, parse_space
from tinymeter.core.errors import ConfigError

log = logging.getLogger(__name__)

#: The board every command uses unless told otherwise (the README's reference board).
DEFAULT_BOARD = "nucleo-l4r5zi"
MEMORY_KINDS = ("flash", "sram", "tcm")


@dataclass(frozen=True)
class UartLayout:
    """Register layout of a UART family: what the hardware firmware programs and polls,
    and what the emulator serves (offsets from the UART base)."""

    data: int
    status: int
    brr: int
    cr1: int
    #: CR1 value enabling the UART and its transmitter.
    cr1_enable: int
    #: Status bits: transmit data register empty, transmission complete.
    tx_empty: int = 1 << 7
    tx_done: int = 1 << 6
    #: BRR = brr_scale * kernel clock / baud rate (16x oversampling USART: 1; LPUART: 256).
    brr_scale: int = 1
    #: Smallest BRR the UART accepts (RM0432 LPUART: 0x300).
    brr_min: int = 16
    #: ISR has TEACK (bit 21) / REACK (bit 22) acknowledging CR1.TE/RE (L4/L5/G0/F7).
    ack_bits: bool = False


#: UART register layouts by ``[uart] kind``.  STM32 L4/L5/G0/F7/H7 USART: TDR 0x28,
#: ISR 0x1C, BRR 0x0C, CR1 0x00 (UE bit 0, TE bit 3); their LPUART has the same map
#: with a 256x baud divider; F1/F2/F4 USART: DR 0x04, SR 0x00, BRR 0x08, CR1 0x0C (UE
#: bit 13, TE bit 3).
UART_LAYOUTS: dict[str, UartLayout] = {
    "stm32-usart": UartLayout(data=0x28, status=0x1C, brr=0x0C, cr1=0x00, cr1_enable=0x9,
                              ack_bits=True),
    "stm32-lpuart": UartLayout(data=0x28, status=0x1C, brr=0x0C, cr1=0x00, cr1_enable=0x9,
                               brr_scale=256, brr_min=0x300, ack_bits=True),
    "stm32-usart-legacy": UartLayout(data=0x04, status=0x00, brr=0x08, cr1=0x0C,
                                     cr1_enable=(1 << 13) | (1 << 3)),
}
#: Accepted ``[uart] kind`` values: "" = no UART the firmware or emulator can use.
UART_KINDS = ("", *UART_LAYOUTS)


@dataclass(frozen=True)
class MemoryRegion:
    """One contiguous memory of the board's address map."""

    name: str
    kind: str
    origin: int
    size: int
    wait_states: int = 0
    #: Bytes one access of the memory's port delivers (a flash "line": 8 on STM32L4/G0/L5,
    #: 16 on F2/F4, 32 on F7); one access costs ``wait_states + 1`` cycles.
    access_bytes: int = 4
    #: Whether the core's L1 caches (Cortex-M7 ``[l1_cache]``) cache this region.
    cacheable: bool = False
    #: Where the timing values come from (reference-manual section).
    source: str = ""

    @property
    def end(self) -> int:
        return self.origin + self.size

    def contains(self, address: int, length: int = 1) -> bool:
        return self.origin <= address and address + length <= self.end


@dataclass(frozen=True)
class CacheGeometry:
    """Size, line and associativity of one cache (``size == 0``: no cache).

    ``ways == 0`` means fully associative (one set), which is what the timing model
    assumes where a manual gives the line count but not the organisation.
    """

    size: int = 0
    line: int = 32
    ways: int = 0
    #: Replacement: "lru", "fifo" or "random" (:data:`CACHE_POLICIES`).
    policy: str = "lru"

    @property
    def lines(self) -> int:
        return self.size // self.line if self.size else 0

    @property
    def associativity(self) -> int:
        return self.ways or self.lines

    @property
    def sets(self) -> int:
        return self.lines // self.associativity if self.size else 0


class _SplitCaches:
    """The I- and D-cache geometry of a cache owner whose fields are named
    ``<kind>_bytes``, ``<kind>_line``, ``<kind>_ways`` and ``<kind>_policy``: the flash
    accelerator and the M7 L1 describe their caches alike, so the simulator reads both
    through one shape."""

    @property
    def icache(self) -> CacheGeometry:
        return self._geometry("icache")

    @property
    def dcache(self) -> CacheGeometry:
        return self._geometry("dcache")

    def _geometry(self, kind: str) -> CacheGeometry:
        return CacheGeometry(*(getattr(self, f"{kind}_{f}") for f in ("bytes", "line", "ways",
                                                                        "policy")))


@dataclass(frozen=True)
class FlashAccelerator(_SplitCaches):
    """Flash prefetch / cache hardware between the core and the flash wait states (ST's ART
    accelerator and its kin): an instruction cache, a data cache for constant loads, and a
    prefetch buffer that reads the next flash line while the current one executes."""

    prefetch: bool = False
    icache_bytes: int = 0
    dcache_bytes: int = 0
    icache_line: int = 32
    icache_ways: int = 0
    dcache_line: int = 32
    dcache_ways: int = 0
    icache_policy: str = "lru"
    dcache_policy: str = "lru"
    #: Data reads from flash go through the instruction cache too (the Cortex-M33 reads
    #: literals and constants over the C-AHB bus, where STM32's ICACHE sits).
    unified: bool = False
    #: Where the values come from (reference-manual section), or why they are assumed.
    source: str = ""


@dataclass(frozen=True)
class L1Cache(_SplitCaches):
    """The core's own L1 caches (Cortex-M7): they cache the regions marked ``cacheable``
    when the firmware enables them (SCB CCR.IC / CCR.DC, read by the emulator)."""

    icache_bytes: int = 0
    icache_line: int = 32
    icache_ways: int = 2
    dcache_bytes: int = 0
    dcache_line: int = 32
    dcache_ways: int = 4
    icache_policy: str = "lru"
    dcache_policy: str = "lru"
    #: Extra cycles of a line fill beyond the region's wait states (bus latency of the
    #: AXI master); calibration owns it where the TRM gives no number.
    fill_cycles: int = 0
    source: str = ""


@dataclass(frozen=True)
class Probe:
    """Debug-probe target names for flashing tools."""

    pyocd_target: str = ""
    openocd_config: str = ""


@dataclass(frozen=True)
class Uart:
    """The UART wired to the debug probe's virtual COM port.

    ``kind`` names its register layout (:data:`UART_LAYOUTS`): the hardware firmware
    writes its report through it and the emulator serves its transmit side; empty = no
    usable UART.  ``kernel_clock_hz`` is the clock of its baud-rate generator once the
    board's ``[[init]]`` writes have run (the reset clock unless they change it).
    """

    name: str = ""
    base: int = 0
    baudrate: int = 115200
    kind: str = ""
    kernel_clock_hz: int = 0

    @property
    def layout(self) -> UartLayout | None:
        return UART_LAYOUTS.get(self.kind)


@dataclass(frozen=True)
class RegisterInit:
    """One boot-time register write of the hardware firmware: ``reg = (reg & ~clear) | set``,
    then, when ``wait_mask`` is set, a bounded wait until ``(reg & wait_mask) == wait_value``.

    Why data and not C: clock gates, pin multiplexing and flash wait states differ per
    chip and board, and a user with another board writes them into its board file.
    """

    what: str
    addr: int
    set: int = 0
    clear: int = 0
    wait_mask: int = 0
    wait_value: int = 0


@dataclass(frozen=True)
class GpioMark:
    """A GPIO line driven by the firmware for a power monitor's digital input: writing
    ``set_value`` to ``set_addr`` raises it, ``clear_value`` to ``clear_addr`` lowers it."""

    pin: str
    set_addr: int
    set_value: int
    clear_addr: int
    clear_value: int


@dataclass(frozen=True)
class CycleCounter:
    """A free-running 32-bit up-counter at the core clock that the hardware image reads
    instead of SysTick on cores without DWT CYCCNT (ARMv6-M), so layers longer than
    2^24 cycles are timed correctly; started by the board's ``[[init]]`` writes."""

    what: str
    addr: int


@dataclass(frozen=True)
class Markers:
    """Power-monitor marks: ``inference`` is high for the duration of each inference
    (monitor channel 0), ``layer`` toggles at every layer boundary (channel 1)."""

    inference: GpioMark | None = None
    layer: GpioMark | None = None


@dataclass(frozen=True)
class Power:
    """Power model priors: constant active and idle power, and the energy-by-activity
    split of the active power (:mod:`tinymeter.sim.energy`; refined by calibration)."""

    voltage: float = 3.3
    #: Run power at ``clock_hz`` (the datasheet's typical run current x voltage).
    active_mw: float = 0.0
    idle_mw: float = 0.0
    #: Power apart from counted memory traffic (None = active_mw: the constant model).
    core_mw: float | None = None
    #: Energy per read of the flash array (one access unit) and per SRAM/TCM access.
    flash_read_nj: float = 0.0
    sram_access_nj: float = 0.0
    #: Where the figures come from (datasheet table, or "assumption: ...").
    source: str = ""


@dataclass(frozen=True)
class Board:
    """A development board: core, clock, memory map and tool names."""

    name: str
    description: str
    core: Core
    clock_hz: int
    memory: tuple[MemoryRegion, ...]
    text_region: str
    data_region: str
    flash_accelerator: FlashAccelerator = field(default_factory=FlashAccelerator)
    l1_cache: L1Cache = field(default_factory=L1Cache)
    probe: Probe = field(default_factory=Probe)
    uart: Uart = field(default_factory=Uart)
    power: Power = field(default_factory=Power)
    init: tuple[RegisterInit, ...] = ()
    markers: Markers = field(default_factory=Markers)
    cycle_counter: CycleCounter | None = None
    #: Core clock of the hardware image once its ``[[init]]`` writes have run, when they
    #: do not reach ``clock_hz`` (0 = they do).  Cycles are unaffected (the flash wait
    #: states are those of ``clock_hz``); measured latency and power are at this clock.
    hw_clock_hz: int = 0
    path: Path | None = None
    #: MCU peripheral registers for firmware not built by tinymeter (``[peripheral_space]``,
    #: ``[[peripheral]]``; see :mod:`tinymeter.core.devicemap`).
    devices: DeviceMap = field(default_factory=DeviceMap)

    @property
    def hardware_clock_hz(self) -> int:
        """The clock the hardware image actually runs at."""
        return self.hw_clock_hz or self.clock_hz

    def region(self, name: str) -> MemoryRegion:
        for r in self.memory:
            if r.name == name:
                return r
        raise ConfigError(f"board {self.name}: no memory region named {name!r}")

    @property
    def text(self) -> MemoryRegion:
        """Region holding code and constant data (weights)."""
        return self.region(self.text_region)

    @property
    def data(self) -> MemoryRegion:
        """Region holding .data, .bss, the tensor arena and the stack."""
        return self.region(self.data_region)

    def region_of(self, address: int) -> MemoryRegion | None:
        for r in self.memory:
            if r.contains(address):
                return r
        return None


def _take(table: dict[str, Any], where: str, spec: dict[str, tuple[type, ...]],
          required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Validate *table* against *spec* (key -> accepted types); reject unknown keys."""
    unknown = sorted(set(table) - set(spec))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(sorted(spec))}")
    missing = [k for k in required if k not in table]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")
    out: dict[str, Any] = {}
    for key, value in table.items():
        types = spec[key]
        if isinstance(value, bool) and bool not in types:
            raise ConfigError(f"{where}.{key}: expected {types[0].__name__}, got a boolean")
        if not isinstance(value, types):
            raise ConfigError(f"{where}.{key}: expected {types[0].__name__}, "
                              f"got {type(value).__name__}")
        out[key] = value
    return out


def _section(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return value


def parse_board(raw: dict[str, Any], where: str = "board", path: Path | None = None) -> Board:
    """Build a :class:`Board` from a parsed TOML table, validating every key."""
    top = _take(
        raw, where,
        {"name": (str,), "description": (str,), "core": (str,), "clock_hz": (int,),
         "hw_clock_hz": (int,),
         "layout": (dict,), "memory": (list,), "flash_accelerator": (dict,), "probe": (dict,),
         "uart": (dict,), "power": (dict,), "init": (list,), "markers": (dict,),
         "cycle_counter": (dict,), "l1_cache": (dict,), "peripheral_space": (dict,),
         "peripheral": (list,)},
        required=("name", "core", "clock_hz", "layout", "memory"),
    )
    if top["clock_hz"] <= 0:
        raise ConfigError(f"{where}.clock_hz: must be positive")
    if top.get("hw_clock_hz", 0) < 0:
        raise ConfigError(f"{where}.hw_clock_hz: must be positive (or absent)")
    regions = []
    for i, entry in enumerate(top["memory"]):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}.memory[{i}]: must be a table")
        m = _take(entry, f"{where}.memory[{i}]",
                  {"name": (str,), "kind": (str,), "origin": (int,), "size": (int,),
                   "wait_states": (int,), "access_bytes": (int,), "cacheable": (bool,),
                   "source": (str,)},
                  required=("name", "kind", "origin", "size"))
        if m["kind"] not in MEMORY_KINDS:
            raise ConfigError(f"{where}.memory[{i}].kind: {m['kind']!r} is not one of "
                              f"{', '.join(MEMORY_KINDS)}")
        if m["size"] <= 0 or m["origin"] < 0 or m.get("wait_states", 0) < 0:
            raise ConfigError(f"{where}.memory[{i}]: origin, size and wait_states must be >= 0")
        if m.get("access_bytes", 4) not in (1, 2, 4, 8, 16, 32, 64):
            raise ConfigError(f"{where}.memory[{i}].access_bytes: must be a power of two "
                              f"from 1 to 64, got {m['access_bytes']}")
        regions.append(MemoryRegion(**m))
    names = [r.name for r in regions]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}.memory: duplicate region names")
    ordered = sorted(regions, key=lambda r: r.origin)
    for a, b in itertools.pairwise(ordered):
        if a.end > b.origin:
            raise ConfigError(f"{where}.memory: regions {a.name} and {b.name} overlap")
    layout = _take(_section(top, "layout", where), f"{where}.layout",
                   {"text": (str,), "data": (str,)}, required=("text", "data"))
    for key in ("text", "data"):
        if layout[key] not in names:
            raise ConfigError(f"{where}.layout.{key}: no memory region named {layout[key]!r}")
    accel = _take(_section(top, "flash_accelerator", where), f"{where}.flash_accelerator",
                  {"prefetch": (bool,), "icache_bytes": (int,), "dcache_bytes": (int,),
                   "icache_line": (int,), "icache_ways": (int,), "dcache_line": (int,),
                   "dcache_ways": (int,), "icache_policy": (str,), "dcache_policy": (str,),
                   "unified": (bool,), "source": (str,)})
    l1 = _take(_section(top, "l1_cache", where), f"{where}.l1_cache",
               {"icache_bytes": (int,), "icache_line": (int,), "icache_ways": (int,),
                "dcache_bytes": (int,), "dcache_line": (int,), "dcache_ways": (int,),
                "icache_policy": (str,), "dcache_policy": (str,), "fill_cycles": (int,),
                "source": (str,)})
    accelerator, l1_cache = FlashAccelerator(**accel), L1Cache(**l1)
    if l1_cache.fill_cycles < 0:
        raise ConfigError(f"{where}.l1_cache.fill_cycles: must be >= 0")
    probe = _take(_section(top, "probe", where), f"{where}.probe",
                  {"pyocd_target": (str,), "openocd_config": (str,)})
    uart = _take(_section(top, "uart", where), f"{where}.uart",
                 {"name": (str,), "base": (int,), "baudrate": (int,), "kind": (str,),
                  "kernel_clock_hz": (int,)})
    if uart.get("kind", "") not in UART_KINDS:
        raise ConfigError(f"{where}.uart.kind: {uart['kind']!r} is not one of "
                          f"{', '.join(k for k in UART_KINDS if k)}")
    if uart.get("baudrate", 1) <= 0 or uart.get("kernel_clock_hz", 0) < 0:
        raise ConfigError(f"{where}.uart: baudrate must be positive, kernel_clock_hz >= 0")
    power = _take(_section(top, "power", where), f"{where}.power",
                  {"voltage": (float, int), "active_mw": (float, int), "idle_mw": (float, int),
                   "core_mw": (float, int), "flash_read_nj": (float, int),
                   "sram_access_nj": (float, int), "source": (str,)})
    _check_values(top, regions, accel, uart, power, where)
    for name, cache in (("flash_accelerator.icache", accelerator.icache),
                        ("flash_accelerator.dcache", accelerator.dcache),
                        ("l1_cache.icache", l1_cache.icache), ("l1_cache.dcache", l1_cache.dcache)):
        _check_cache(cache, f"{where}.{name}")
    return Board(
        name=top["name"],
        description=top.get("description", top["name"]),
        core=get_core(top["core"]),
        clock_hz=top["clock_hz"],
        memory=tuple(regions),
        text_region=layout["text"],
        data_region=layout["data"],
        flash_accelerator=accelerator,
        l1_cache=l1_cache,
        probe=Probe(**probe),
        uart=Uart(**uart),
        power=Power(source=str(power.get("source", "")),
                    **{k: float(v) for k, v in power.items() if k != "source"}),
        init=_parse_init(top.get("init", []), f"{where}.init"),
        markers=_parse_markers(_section(top, "markers", where), f"{where}.markers"),
        cycle_counter=_parse_cycle_counter(top.get("cycle_counter"), f"{where}.cycle_counter"),
        hw_clock_hz=top.get("hw_clock_hz", 0),
        path=path,
        devices=_parse_devices(top, where),
    )


#: Cache replacement policies the timing model simulates.
CACHE_POLICY_NAMES = ("lru", "fifo", "random")


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def _check_cache(cache: CacheGeometry, where: str) -> None:
    """A cache the timing model can simulate: power-of-two line and set count."""
    if cache.policy not in CACHE_POLICY_NAMES:
        raise ConfigError(f"{where}: policy {cache.policy!r} is not one of "
                          f"{', '.join(CACHE_POLICY_NAMES)}")
    if cache.size == 0:
        return
    if cache.size < 0 or not _power_of_two(cache.line) or cache.ways < 0:
        raise ConfigError(f"{where}: size must be >= 0, line a power of two and ways >= 0 "
                          f"(got size {cache.size}, line {cache.line}, ways {cache.ways})")
    if cache.size % cache.line or cache.lines % cache.associativity \
            or not _power_of_two(cache.sets):
        raise ConfigError(f"{where}: {cache.size} bytes in {cache.line}-byte lines and "
                          f"{cache.associativity} ways do not give a power-of-two set count")


def _parse_devices(top: dict[str, Any], where: str) -> DeviceMap:
    ranges: tuple[tuple[int, int], ...] = ()
    reference, svd = "", ""
    if "peripheral_space" in top:
        ranges, reference, svd = parse_space(top["peripheral_space"],
                                             f"{where}.peripheral_space", _take)
    return DeviceMap(ranges=ranges, reference=reference, svd=svd,
                     peripherals=parse_peripherals(top.get("peripheral", []),
                                                   f"{where}.peripheral", _take))


#: A board name is a file-name-safe identifier: it names cache directories and files.
BOARD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
#: Plausible ranges of board figures (inclusive): beyond them a value is a typo (or
#: NaN/inf), and would silently give negative or infinite energy, 0 ms latencies or
#: addresses truncated to 32 bits.
MAX_CLOCK_HZ = 2_000_000_000
_RANGES: dict[str, tuple[float, float]] = {
    "clock_hz": (1, MAX_CLOCK_HZ), "hw_clock_hz": (0, MAX_CLOCK_HZ),
    "wait_states": (0, 64), "icache_bytes": (0, 1 << 24), "dcache_bytes": (0, 1 << 24),
    "baudrate": (1, 100_000_000), "kernel_clock_hz": (0, MAX_CLOCK_HZ),
    "voltage": (0.5, 24.0), "active_mw": (0.0, 100_000.0), "idle_mw": (0.0, 100_000.0),
    "core_mw": (0.0, 100_000.0), "flash_read_nj": (0.0, 1000.0), "sram_access_nj": (0.0, 1000.0),
}


def _check_range(key: str, value: float, where: str) -> None:
    low, high = _RANGES[key]
    if not (low <= value <= high):  # also false for NaN
        raise ConfigError(f"{where}.{key}: {value!r} is outside the plausible range "
                          f"[{low:g}, {high:g}]")


def _check_values(top: dict[str, Any], regions: list[MemoryRegion], accel: dict[str, Any],
                  uart: dict[str, Any], power: dict[str, Any], where: str) -> None:
    """Names and value ranges that the type checks of :func:`_take` cannot see."""
    if not BOARD_NAME.fullmatch(top["name"]):
        raise ConfigError(f"{where}.name: {top['name']!r} is not a board identifier (letters, "
                          "digits, '-', '_', '.', '+'; at most 64; no path separators)")
    for key in ("clock_hz", "hw_clock_hz"):
        if key in top:
            _check_range(key, top[key], where)
    for i, r in enumerate(regions):
        if r.end > 1 << 32:
            raise ConfigError(f"{where}.memory[{i}] ({r.name}): ends at 0x{r.end:x}, beyond "
                              "the 32-bit address space")
        _check_range("wait_states", r.wait_states, f"{where}.memory[{i}]")
    for section, table in (("flash_accelerator", accel), ("uart", uart), ("power", power)):
        for key, value in table.items():
            if key in _RANGES:
                _check_range(key, value, f"{where}.{section}")
    if "base" in uart:
        _register_address(uart["base"], f"{where}.uart.base")


def _register_word(value: int, where: str) -> int:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ConfigError(f"{where}: 0x{value:x} does not fit a 32-bit register")
    return value


def _register_address(value: int, where: str) -> int:
    """A 32-bit, word-aligned register address (the firmware writes whole words)."""
    if _register_word(value, where) % 4:
        raise ConfigError(f"{where}: 0x{value:08x} is not word-aligned")
    return value


def _parse_init(entries: list[Any], where: str) -> tuple[RegisterInit, ...]:
    """``[[init]]`` register writes, each checked to be word-aligned 32-bit values."""
    out = []
    for i, entry in enumerate(entries):
        here = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{here}: must be a table")
        e = _take(entry, here, {"what": (str,), "addr": (int,), "set": (int,), "clear": (int,),
                                "wait_mask": (int,), "wait_value": (int,)},
                  required=("what", "addr"))
        _register_address(e["addr"], f"{here}.addr")
        for key in ("set", "clear", "wait_mask", "wait_value"):
            _register_word(e.get(key, 0), f"{here}.{key}")
        if e.get("wait_value", 0) & ~e.get("wait_mask", 0):
            raise ConfigError(f"{here}: wait_value has bits outside wait_mask")
        out.append(RegisterInit(**e))
    return tuple(out)


def _parse_cycle_counter(raw: dict[str, Any] | None, where: str) -> CycleCounter | None:
    if raw is None:
        return None
    c = _take(raw, where, {"what": (str,), "addr": (int,)}, required=("what", "addr"))
    _register_address(c["addr"], f"{where}.addr")
    return CycleCounter(**c)


def _parse_markers(raw: dict[str, Any], where: str) -> Markers:
    """``[markers]``: optional ``inference`` and ``layer`` GPIO lines."""
    table = _take(raw, where, {"inference": (dict,), "layer": (dict,)})
    marks: dict[str, GpioMark] = {}
    for key, value in table.items():
        m = _take(value, f"{where}.{key}",
                  {"pin": (str,), "set_addr": (int,), "set_value": (int,), "clear_addr": (int,),
                   "clear_value": (int,)},
                  required=("pin", "set_addr", "set_value", "clear_addr", "clear_value"))
        for name in ("set_addr", "clear_addr"):
            _register_address(m[name], f"{where}.{key}.{name}")
        for name in ("set_value", "clear_value"):
            _register_word(m[name], f"{where}.{key}.{name}")
        marks[key] = GpioMark(**m)
    return Markers(**marks)


def _builtin_dir() -> Path:
    return Path(str(resources.files("tinymeter") / "boards"))


def list_boards() -> list[str]:
    """Names of the boards shipped with tinymeter."""
    return sorted(p.stem for p in _builtin_dir().glob("*.toml"))


def load_board(name_or_path: str | Path) -> Board:
    """Load a shipped board by name (``nucleo-l4r5zi``) or any board file by path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        path = candidate
    else:
        path = _builtin_dir() / f"{name_or_path}.toml"
        if not path.exists():
            raise ConfigError(f"unknown board {str(name_or_path)!r}; "
                              f"known boards: {', '.join(list_boards())}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"board file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"board file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
                          f"at offset {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read board file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"board file {path}: invalid TOML: {exc}") from None
    board = parse_board(raw, where=path.name, path=path)
    log.debug("loaded board %s from %s", board.name, path)
    return board


def _cache_text(cache: CacheGeometry) -> str:
    if not cache.size:
        return "none"
    ways = f"{cache.ways}-way" if cache.ways else "fully associative"
    return f"{cache.size} B ({cache.line} B lines, {ways})"


def describe_board(board: Board) -> str:
    """A human-readable sheet of *board*: what the estimates assume and how to wire it for
    ``tinymeter measure`` (UART, power-monitor marker pins, probe names)."""
    lines = [f"{board.name}: {board.description}",
             f"  core         {board.core.name} ({board.core.arch}), {board.clock_hz / 1e6:g} MHz"]
    if board.hardware_clock_hz != board.clock_hz:
        lines.append(f"  hw image     runs at {board.hardware_clock_hz / 1e6:g} MHz (cycles as "
                     f"at {board.clock_hz / 1e6:g} MHz; latency/power measured at the lower clock)")
    for r in board.memory:
        role = [k for k, v in (("text", board.text_region), ("data", board.data_region))
                if v == r.name]
        lines.append(f"  memory       {r.name:8} {r.kind:5} 0x{r.origin:08X} {r.size // 1024:6} KiB "
                     f"{r.wait_states} WS" + (f"  ({', '.join(role)})" if role else ""))
    a = board.flash_accelerator
    lines.append(f"  accelerator  prefetch {'on' if a.prefetch else 'off'}, I-cache "
                 f"{_cache_text(a.icache)}, D-cache {_cache_text(a.dcache)}")
    if board.l1_cache.icache_bytes or board.l1_cache.dcache_bytes:
        lines.append(f"  L1 caches    I {_cache_text(board.l1_cache.icache)}, D "
                     f"{_cache_text(board.l1_cache.dcache)}")
    u = board.uart
    lines.append(f"  uart         {u.name or '-'} {u.kind or '(none)'} at 0x{u.base:08X}, "
                 f"{u.baudrate} baud" if u.kind else "  uart         none (no hardware image)")
    m = board.markers
    for channel, (name, mark) in enumerate((("inference", m.inference), ("layer", m.layer))):
        lines.append(f"  mark {name:9} " + (f"pin {mark.pin} -> power monitor input {channel}"
                                            if mark else "not wired"))
    if board.cycle_counter is not None:
        lines.append(f"  cycle count  {board.cycle_counter.what} at 0x{board.cycle_counter.addr:08X}")
    lines.append(f"  boot writes  {len(board.init)} ([[init]] in the board file)")
    dev = board.devices
    if dev.peripherals or dev.ranges or dev.svd:
        lines.append(f"  peripherals  {len(dev.peripherals)} described"
                     + (f" + SVD {dev.svd}" if dev.svd else "")
                     + (f" ({dev.reference})" if dev.reference else ""))
        groups = (("status follows control", [p.name for p in dev.peripherals if p.follow]),
                  ("timers", [p.name for p in dev.peripherals if p.model == "timer"]),
                  ("gpio marks", [p.name for p in dev.peripherals if p.model == "gpio"]))
        shown = [f"{label}: {' '.join(names)}" for label, names in groups if names]
        if shown:
            lines.append(f"               {'; '.join(shown)}")
    lines.append(f"  probe        pyocd target {board.probe.pyocd_target or '-'}, openocd "
                 f"{board.probe.openocd_config or '-'}")
    pw = board.power
    lines.append(f"  power        {pw.active_mw:g} mW active, {pw.idle_mw:g} mW idle at "
                 f"{pw.voltage:g} V")
    if pw.flash_read_nj or pw.sram_access_nj or pw.core_mw is not None:
        core = pw.core_mw if pw.core_mw is not None else pw.active_mw
        lines.append(f"  energy       core {core:g} mW + {pw.flash_read_nj:g} nJ per flash read "
                     f"+ {pw.sram_access_nj:g} nJ per SRAM access")
    if board.path is not None:
        lines.append(f"  file         {board.path}")
    return "\n".join(lines)
