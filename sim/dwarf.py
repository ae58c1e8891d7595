"""DWARF facts about code addresses: which (inlined) functions contain an address, and
which compilation unit a function came from.

Why: optimized vendor firmware inlines error traps (``Error_Handler``'s ``while (1)``
ends up inside ``SystemClock_Config`` at -O3) and has many functions of one name in
different units (``tflite::(anonymous namespace)::Eval`` of every kernel).  The symbol
table cannot tell those apart; the debug information (the ELF has ``-g``) can.

Everything is parsed lazily and per compilation unit (pyelftools): a question about one
address walks the DIEs of the one unit that contains it, found through
``.debug_aranges`` or the units' own ranges, so a large TFLM ELF costs only what it is
asked.  No debug information is not an error: every answer is then empty.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from elftools.common.exceptions import DWARFError, ELFError
from elftools.dwarf.aranges import ARanges
from elftools.dwarf.compileunit import CompileUnit
from elftools.dwarf.die import DIE
from elftools.dwarf.dwarfinfo import DWARFInfo
from elftools.dwarf.ranges import BaseAddressEntry
from elftools.elf.elffile import ELFFile

log = logging.getLogger(__name__)

_SCOPES = ("DW_TAG_subprogram", "DW_TAG_inlined_subroutine", "DW_TAG_lexical_block")


@dataclass(frozen=True)
class Frame:
    """One function level at an address: *name* (from DWARF), *inlined* if the code is an
    inlined copy, *file* the unit (for a subprogram) or call site file (inlined)."""

    name: str
    inlined: bool
    file: str = ""


class DebugInfo:
    """Lazy view of an ELF's DWARF: :meth:`frames` and :meth:`unit_name` by address."""

    def __init__(self, data: bytes) -> None:
        self._dwarf: DWARFInfo | None = None
        try:
            elf = ELFFile(io.BytesIO(data))
            if elf.has_dwarf_info():
                self._dwarf = elf.get_dwarf_info()
        except (ELFError, DWARFError, ValueError) as exc:
            log.warning("unreadable debug information (%s): no inline/unit names", exc)
        self._units: list[tuple[list[tuple[int, int]], CompileUnit]] | None = None
        #: None = not looked up yet, False = the ELF has no .debug_aranges.
        self._aranges: ARanges | Literal[False] | None = None

    @property
    def available(self) -> bool:
        return self._dwarf is not None

    # -- units -----------------------------------------------------------------------
    def _unit_list(self) -> list[tuple[list[tuple[int, int]], CompileUnit]]:
        if self._units is None:
            self._units = []
            assert self._dwarf is not None
            for cu in self._dwarf.iter_CUs():
                try:
                    self._units.append((self._ranges(cu.get_top_DIE(), cu), cu))
                except (DWARFError, KeyError, ValueError) as exc:
                    log.debug("skipping a compilation unit: %s", exc)
        return self._units

    def _unit_at(self, address: int) -> CompileUnit | None:
        if self._dwarf is None:
            return None
        try:
            if self._aranges is None:
                self._aranges = self._dwarf.get_aranges() or False
            if self._aranges:
                offset = self._aranges.cu_offset_at_addr(address)
                if offset is not None:
                    return self._dwarf.get_CU_at(offset)
        except (DWARFError, KeyError, ValueError):
            pass
        for ranges, cu in self._unit_list():
            if any(lo <= address < hi for lo, hi in ranges):
                return cu
        return None

    def unit_name(self, address: int) -> str:
        """Base name of the source file whose unit holds *address*, or ``""``."""
        cu = self._unit_at(address & ~1)
        if cu is None:
            return ""
        name = cu.get_top_DIE().attributes.get("DW_AT_name")
        return PurePosixPath(_text(name.value)).name if name else ""

    # -- frames ----------------------------------------------------------------------
    def frames(self, address: int) -> list[Frame]:
        """The functions containing *address*, innermost first: inlined copies, then the
        subprogram that holds them.  Empty without debug information for the address."""
        address &= ~1
        cu = self._unit_at(address)
        if cu is None:
            return []
        try:
            chain = list(self._descend(cu.get_top_DIE(), cu, address))
        except (DWARFError, KeyError, ValueError) as exc:
            log.debug("cannot walk DWARF at 0x%08x: %s", address, exc)
            return []
        unit = self.unit_name(address)
        out = [Frame(_die_name(d), d.tag == "DW_TAG_inlined_subroutine", unit)
               for d in chain if d.tag != "DW_TAG_lexical_block"]
        return list(reversed(out))

    def inlined_entries(self, names: frozenset[str],
                        near: Sequence[int]) -> list[tuple[int, str]]:
        """(entry address, name) of every inlined copy of a function named in *names*
        within the units that hold the addresses *near* (the out-of-line definitions of
        those functions: without LTO a function is inlined only in its own unit).
        Reaching a copy is reaching that function, even without a call.  Only those few
        units are walked DIE by DIE, so a large TFLM ELF costs its HAL ``main.c``."""
        out = []
        units = {cu.cu_offset: cu for cu in (self._unit_at(a & ~1) for a in near) if cu}
        for cu in units.values():
            try:
                for die in cu.iter_DIEs():
                    if die.tag != "DW_TAG_inlined_subroutine" or _die_name(die) not in names:
                        continue
                    entry = die.attributes.get("DW_AT_entry_pc")
                    ranges = self._ranges(die, cu)
                    if entry is not None and entry.form == "DW_FORM_addr":
                        out.append((entry.value, _die_name(die)))
                    elif ranges:
                        out.append((min(lo for lo, _hi in ranges), _die_name(die)))
            except (DWARFError, KeyError, ValueError) as exc:
                log.debug("cannot walk a unit for inlined copies: %s", exc)
        return sorted(set(out))

    def _descend(self, die: DIE, cu: CompileUnit, address: int) -> Iterator[DIE]:
        for child in die.iter_children():
            if child.tag not in _SCOPES:
                continue
            if any(lo <= address < hi for lo, hi in self._ranges(child, cu)):
                yield child
                yield from self._descend(child, cu, address)
                return

    def _ranges(self, die: DIE, cu: CompileUnit) -> list[tuple[int, int]]:
        """[lo, hi) address ranges of *die* (low/high pc or a range list)."""
        attrs = die.attributes
        if "DW_AT_low_pc" in attrs and "DW_AT_high_pc" in attrs:
            lo = attrs["DW_AT_low_pc"].value
            high = attrs["DW_AT_high_pc"]
            hi = high.value if high.form == "DW_FORM_addr" else lo + high.value
            return [(lo, hi)]
        if "DW_AT_ranges" not in attrs or self._dwarf is None:
            return []
        lists = self._dwarf.range_lists()
        if lists is None:
            return []
        # pyelftools resolves a DW_FORM_rnglistx index through the unit's offset table when
        # it parses the attribute: the value is a section offset for every form.
        entries = lists.get_range_list_at_offset(attrs["DW_AT_ranges"].value, cu=cu)
        top = cu.get_top_DIE().attributes.get("DW_AT_low_pc")
        base = top.value if top else 0
        out = []
        for entry in entries:
            if isinstance(entry, BaseAddressEntry):
                base = entry.base_address
                continue
            lo, hi = entry.begin_offset, entry.end_offset
            if not entry.is_absolute:
                lo, hi = lo + base, hi + base
            if hi > lo:
                out.append((lo, hi))
        return out


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _die_name(die: DIE, depth: int = 0) -> str:
    """A DIE's name, following abstract origin / specification links (inlined copies and
    out-of-class definitions carry their name on the declaration)."""
    attrs = die.attributes
    if "DW_AT_name" in attrs:
        return _text(attrs["DW_AT_name"].value)
    for link in ("DW_AT_abstract_origin", "DW_AT_specification"):
        if link in attrs and depth < 8:
            try:
                return _die_name(die.get_DIE_from_attribute(link), depth + 1)
            except (DWARFError, KeyError, ValueError):
                break
    return "?"
