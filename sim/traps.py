"""Where a firmware gave up, and how it got there: error traps and call paths.

Pure logic over an :class:`~tinymeter.sim.elf.ElfImage` and a word reader, so it is
tested without an engine.  Why this exists: vendor firmware built at -O3 inlines its
error traps (``Error_Handler``'s ``while (1)`` inside ``SystemClock_Config``), so a run
that "ends in an idle loop" may really have failed; judging by the symbol name alone
gave a report of 0 cycles without an error.  The inline chain from DWARF and a call
path recovered from the stack name the real place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from tinymeter.sim.dwarf import Frame
from tinymeter.sim.elf import ElfImage

#: Functions whose entry (out of line or inlined) means the firmware failed.
TRAP_FUNCTIONS = ("Error_Handler", "HardFault_Handler", "MemManage_Handler",
                  "BusFault_Handler", "UsageFault_Handler", "abort", "__assert_func",
                  "__assert_fail", "__stack_chk_fail")
#: Names of functions whose idle loop means the firmware gave up (fault handlers,
#: ``abort``, failed assertions, ``Default_Handler`` of unexpected interrupts).
ERROR_TRAP = re.compile(r"error|fault|abort|assert|panic|default_handler", re.IGNORECASE)

_MAX_STACK_WORDS = 512


def trap_frame(frames: Sequence[Frame]) -> Frame | None:
    """The first frame (innermost first) whose function is an error trap, if any."""
    for frame in frames:
        if ERROR_TRAP.search(frame.name.split("(", 1)[0]):
            return frame
    return None


def _is_call_before(read_half: Callable[[int], int | None], ret: int) -> bool:
    """Whether the instruction before return address *ret* is a BL or BLX."""
    h = read_half(ret - 2)
    if h is not None and (h & 0xFF87) == 0x4780:  # blx rm
        return True
    first, second = read_half(ret - 4), h
    return (first is not None and second is not None and (first & 0xF800) == 0xF000
            and (second & 0xD000) in (0xD000, 0xC000))  # bl / blx imm


def call_path(image: ElfImage, read_word: Callable[[int], int | None], pc: int, lr: int,
              sp: int, stack_top: int, limit: int = 8) -> list[str]:
    """Best-effort call path at *pc*, innermost first: the inline chain at *pc*, then the
    callers found as return addresses on the stack (words that point just after a BL/BLX
    in the image's code), each with its own inline chain.  Heuristic (a stale return
    address left on the stack can appear), which is why it only decorates errors."""
    def read_half(address: int) -> int | None:
        word = read_word(address & ~3)
        if word is None:
            return None
        return (word >> (16 * ((address >> 1) & 1))) & 0xFFFF

    path = [image.describe_frames(pc)]
    here = image.symbol_at(pc)
    there = image.symbol_at(lr & ~1) if lr & 1 else None
    # LR inside the trapping function itself is a stale return from one of its callees
    candidates = [lr] if there is not None and (here is None or there[0] != here[0]) else []
    address = sp & ~3
    while address < stack_top and address < sp + 4 * _MAX_STACK_WORDS:
        word = read_word(address)
        if word is not None:
            candidates.append(word)
        address += 4
    seen_last = path[0]
    for word in candidates:
        if len(path) >= limit:
            break
        if not word & 1 or image.symbol_at(word & ~1) is None:
            continue
        ret = word & ~1
        if not _is_call_before(read_half, ret):
            continue
        where = image.describe_frames(ret - 2)
        if where != seen_last:
            path.append(where)
            seen_last = where
    return path
