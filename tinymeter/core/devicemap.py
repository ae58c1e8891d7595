"""The MCU's peripheral registers as board-file data: what vendor firmware may touch.

Why: firmware tinymeter did not build (STM32Cube HAL projects) reads and writes many
peripherals (RCC, PWR, FLASH, GPIO, SYSCFG, EXTI, timers, USB) and waits on some of
their status bits.  The emulator serves them from this description:

* ``[peripheral_space] ranges``: address ranges that are register storage (reads return
  what was written, 0 at reset), so an access to a peripheral nobody modelled does not
  fault;
* ``[[peripheral]]`` entries: one MCU peripheral each, with its reset values, the
  reference-manual section they come from, and the behaviours firmware waits on:
  ``follow`` rules (a status bit that follows a control bit: oscillator and PLL ready
  flags, clock-switch status, UART acknowledge bits), ``self_clearing`` bits (a reset
  or calibration request that completes at once: USB OTG GRSTCTL.CSRST, ADC CR.ADCAL),
  ``always_set`` bits (a synchronisation flag that reads 1: RTC ISR.RSF) and a
  ``model`` (``timer``: a counter running on the estimated cycles; ``gpio``: output
  changes logged as marks).

No PyPI package ships the CMSIS-SVD of the shipped boards' MCUs (``cmsis-svd`` is a
parser without data; pyOCD's built-in SVDs cover STM32F0/F1/F41x/F429/F439/L0/L4x2/L4x5
only), so the board file lists the registers the firmware needs, with their sections.
Parsing is strict like the rest of the board file: unknown keys are errors.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from tinymeter.core.errors import ConfigError

PERIPHERAL_MODELS = ("", "timer", "gpio")
_MASK32 = 0xFFFFFFFF


@dataclass(frozen=True)
class Follow:
    """Status bits ``to_mask`` of register ``to`` read as the control bits ``from_mask``
    of register ``from_`` (shifted into place), as hardware sets them once ready."""

    what: str
    from_: int
    from_mask: int
    to: int
    to_mask: int

    def shift(self) -> int:
        """Bit shift from the control field to the status field."""
        return _low_bit(self.to_mask) - _low_bit(self.from_mask)


@dataclass(frozen=True)
class Peripheral:
    """One MCU peripheral at ``base`` (``size`` bytes of registers)."""

    name: str
    base: int
    size: int
    section: str = ""
    #: (absolute address, reset value) of the registers whose reset value is not 0.
    reset: tuple[tuple[int, int], ...] = ()
    follow: tuple[Follow, ...] = ()
    #: (absolute register address, mask): bits written 1 read back 0 (done at once).
    self_clearing: tuple[tuple[int, int], ...] = ()
    #: (absolute register address, mask): bits that always read 1.
    always_set: tuple[tuple[int, int], ...] = ()
    model: str = ""
    #: ``timer``: counter width in bits (16 or 32) and timer clock / core clock.
    bits: int = 16
    clock_ratio: float = 1.0
    #: NVIC interrupt number of the peripheral (timer update), -1 = none.
    irq: int = -1

    @property
    def end(self) -> int:
        return self.base + self.size

    @property
    def has_behaviour(self) -> bool:
        """Whether the emulator must see its accesses (else: plain storage pages)."""
        return bool(self.follow or self.model or self.self_clearing or self.always_set)


@dataclass(frozen=True)
class DeviceMap:
    """The board's peripheral description (empty: nothing beyond the board UART,
    ``[[init]]`` and marker registers is mapped, as before)."""

    ranges: tuple[tuple[int, int], ...] = ()
    reference: str = ""
    peripherals: tuple[Peripheral, ...] = ()
    #: CMSIS-SVD the peripherals come from (path or ``pyocd:NAME.svd``; see
    #: :mod:`tinymeter.core.svd`), merged under ``peripherals`` by the emulator.
    svd: str = ""

    def peripheral_at(self, address: int) -> Peripheral | None:
        for p in self.peripherals:
            if p.base <= address < p.end:
                return p
        return None


def _low_bit(mask: int) -> int:
    return (mask & -mask).bit_length() - 1


def _word(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MASK32:
        raise ConfigError(f"{where}: expected a 32-bit value, got {value!r}")
    return value


def _pair(value: Any, where: str) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise ConfigError(f"{where}: expected [offset, value]")
    return _word(value[0], f"{where}[0]"), _word(value[1], f"{where}[1]")


def parse_space(raw: dict[str, Any], where: str,
                take: Any) -> tuple[tuple[tuple[int, int], ...], str, str]:
    """``[peripheral_space]``: ``ranges = [[start, end], ...]`` (page-aligned), the
    ``reference`` (manual section) they come from, and the ``svd`` description."""
    t = take(raw, where, {"ranges": (list,), "reference": (str,), "svd": (str,)})
    ranges = []
    for i, r in enumerate(t.get("ranges", [])):
        start, end = _pair(r, f"{where}.ranges[{i}]")
        if start % 0x1000 or end % 0x1000 or end <= start:
            raise ConfigError(f"{where}.ranges[{i}]: [0x{start:x}, 0x{end:x}] must be "
                              "4 KiB-aligned with end > start")
        ranges.append((start, end))
    return tuple(sorted(ranges)), t.get("reference", ""), t.get("svd", "")


def _parse_follow(entries: list[Any], base: int, size: int, where: str,
                  take: Any) -> tuple[Follow, ...]:
    out = []
    for i, entry in enumerate(entries):
        here = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{here}: must be a table")
        f = take(entry, here, {"what": (str,), "from": (list,), "to": (list,)},
                 required=("what", "from", "to"))
        (src, src_mask), (dst, dst_mask) = _pair(f["from"], f"{here}.from"), _pair(f["to"],
                                                                                 f"{here}.to")
        for off, key in ((src, "from"), (dst, "to")):
            if off % 4 or off >= size:
                raise ConfigError(f"{here}.{key}: offset 0x{off:x} is not a word inside "
                                  f"the peripheral (size 0x{size:x})")
        if not src_mask or bin(src_mask).count("1") != bin(dst_mask).count("1"):
            raise ConfigError(f"{here}: from and to masks must have the same (non-zero) "
                              "number of bits")
        item = Follow(f["what"], base + src, src_mask, base + dst, dst_mask)
        if (src_mask << item.shift() if item.shift() >= 0 else src_mask >> -item.shift()) \
                != dst_mask:
            raise ConfigError(f"{here}: the to mask must be the from mask shifted")
        out.append(item)
    return tuple(out)


def _parse_bits(entries: list[Any], base: int, size: int, where: str,
                take: Any) -> tuple[tuple[int, int], ...]:
    """``[{what = "...", reg = [offset, mask]}, ...]`` -> (address, mask) pairs."""
    out = []
    for i, entry in enumerate(entries):
        here = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{here}: must be a table")
        e = take(entry, here, {"what": (str,), "reg": (list,)}, required=("what", "reg"))
        offset, mask = _pair(e["reg"], f"{here}.reg")
        if offset % 4 or offset >= size or not mask:
            raise ConfigError(f"{here}.reg: offset 0x{offset:x} must be a word inside the "
                              f"peripheral (size 0x{size:x}) and the mask non-zero")
        out.append((base + offset, mask))
    return tuple(out)


def parse_peripherals(entries: list[Any], where: str, take: Any) -> tuple[Peripheral, ...]:
    """``[[peripheral]]`` entries (see the module doc); overlaps are errors."""
    out: list[Peripheral] = []
    for i, entry in enumerate(entries):
        here = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{here}: must be a table")
        p = take(entry, here, {"name": (str,), "base": (int,), "size": (int,),
                               "section": (str,), "reset": (dict,), "follow": (list,),
                               "self_clearing": (list,), "always_set": (list,),
                               "model": (str,), "bits": (int,), "clock_ratio": (float, int),
                               "irq": (int,)},
                 required=("name", "base", "size"))
        base, size = _word(p["base"], f"{here}.base"), p["size"]
        if base % 4 or not 4 <= size <= 0x10000 or size % 4:
            raise ConfigError(f"{here}: base must be word-aligned and size a multiple of 4 "
                              "up to 64 KiB")
        resets = []
        for name, value in p.get("reset", {}).items():
            off, val = _pair(value, f"{here}.reset.{name}")
            if off % 4 or off >= size:
                raise ConfigError(f"{here}.reset.{name}: offset 0x{off:x} outside the "
                                  "peripheral")
            resets.append((base + off, val))
        model = p.get("model", "")
        if model not in PERIPHERAL_MODELS:
            raise ConfigError(f"{here}.model: {model!r} is not one of "
                              f"{', '.join(m for m in PERIPHERAL_MODELS if m)}")
        if p.get("bits", 16) not in (16, 32) or not 0 < p.get("clock_ratio", 1.0) <= 16:
            raise ConfigError(f"{here}: bits must be 16 or 32, clock_ratio in (0, 16]")
        if not -1 <= p.get("irq", -1) < 496:
            raise ConfigError(f"{here}.irq: must be an NVIC interrupt number (0..495)")
        out.append(Peripheral(
            name=p["name"], base=base, size=size, section=p.get("section", ""),
            reset=tuple(sorted(resets)),
            follow=_parse_follow(p.get("follow", []), base, size, f"{here}.follow", take),
            self_clearing=_parse_bits(p.get("self_clearing", []), base, size,
                                      f"{here}.self_clearing", take),
            always_set=_parse_bits(p.get("always_set", []), base, size, f"{here}.always_set",
                                   take),
            model=model, bits=p.get("bits", 16), clock_ratio=float(p.get("clock_ratio", 1.0)),
            irq=p.get("irq", -1)))
    ordered = sorted(out, key=lambda q: q.base)
    for a, b in itertools.pairwise(ordered):
        if a.end > b.base:
            raise ConfigError(f"{where}: peripherals {a.name} and {b.name} overlap")
    return tuple(out)
