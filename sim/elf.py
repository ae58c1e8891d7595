"""Firmware ELF reading: loadable segments, entry point and a function symbol table.

Parsing happens once, into plain immutable data, so the emulator, the fault reporter
and the block disassembler share one view of the image and never touch the file
again.  Segments are kept with both addresses: the emulator loads them at
``p_paddr`` (the LMA: ``.data`` initialisers live in flash and startup code copies
them), while disassembly reads code at ``p_vaddr`` (where it executes, which differs
for RAM functions).
"""

from __future__ import annotations

import bisect
import hashlib
import io
import logging
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from tinymeter.core.errors import ConfigError, EmulationError
from tinymeter.sim.dwarf import DebugInfo, Frame

log = logging.getLogger(__name__)

_EM_ARM = "EM_ARM"


@dataclass(frozen=True)
class Segment:
    """One PT_LOAD program header with its file bytes."""

    paddr: int
    vaddr: int
    data: bytes
    memsz: int
    executable: bool


@dataclass(frozen=True)
class Symbol:
    """A function or object symbol; ``address`` has the Thumb bit cleared."""

    name: str
    address: int
    size: int
    is_function: bool
    is_global: bool

    @property
    def end(self) -> int:
        return self.address + self.size


@dataclass(frozen=True)
class Section:
    """An allocated section (used only to read code bytes at their run address)."""

    name: str
    address: int
    data: bytes


class ElfImage:
    """Parsed firmware image: segments, entry, symbols; all lookups are in memory."""

    def __init__(self, *, path: Path | None, entry: int, segments: tuple[Segment, ...],
                 symbols: tuple[Symbol, ...], sections: tuple[Section, ...] = (),
                 digest: str = "", raw: bytes = b"") -> None:
        self.path = path
        self._raw = raw
        self._debug: DebugInfo | None = None
        self._demangled: dict[str, str] | None = None
        #: Content hash, so per-image caches (disassembled blocks) survive reloads safely.
        self.digest = digest
        self.entry = entry
        self.segments = segments
        self.sections = sections
        self._by_name: dict[str, Symbol] = {}
        for sym in symbols:
            prev = self._by_name.get(sym.name)
            # A global definition wins over a local static of the same name.
            if prev is None or (sym.is_global and not prev.is_global):
                self._by_name[sym.name] = sym
        # Address lookup: prefer global functions, then longer, then name order, so
        # aliases (weak handlers) resolve deterministically.
        ordered = sorted(symbols, key=lambda s: (s.address, not s.is_function,
                                                 not s.is_global, -s.size, s.name))
        dedup: list[Symbol] = []
        for sym in ordered:
            if dedup and dedup[-1].address == sym.address:
                continue
            dedup.append(sym)
        self._sorted = dedup
        self._starts = [s.address for s in dedup]

    # -- construction --------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes, path: Path | None = None) -> ElfImage:
        where = str(path) if path else "<bytes>"
        try:
            elf = ELFFile(io.BytesIO(data))
            if elf["e_machine"] != _EM_ARM or elf.elfclass != 32:
                raise EmulationError(f"{where}: not a 32-bit Arm ELF "
                                     f"(machine {elf['e_machine']}, class {elf.elfclass})")
            segments = []
            for seg in elf.iter_segments():
                if seg["p_type"] != "PT_LOAD" or seg["p_memsz"] == 0:
                    continue
                segments.append(Segment(paddr=seg["p_paddr"], vaddr=seg["p_vaddr"],
                                        data=seg.data(), memsz=seg["p_memsz"],
                                        executable=bool(seg["p_flags"] & 1)))
            sections = []
            symbols: list[Symbol] = []
            for sec in elf.iter_sections():
                if (sec["sh_flags"] & SH_FLAGS.SHF_ALLOC and sec["sh_type"] == "SHT_PROGBITS"
                        and sec["sh_size"]):
                    sections.append(Section(sec.name, sec["sh_addr"], sec.data()))
                if isinstance(sec, SymbolTableSection):
                    symbols.extend(_symbols_of(sec))
            entry = elf["e_entry"]
        except ELFError as exc:
            raise EmulationError(f"{where}: invalid ELF file: {exc}") from None
        log.debug("%s: %d segments, %d symbols, entry 0x%08x",
                  where, len(segments), len(symbols), entry)
        return cls(path=path, entry=entry, segments=tuple(segments), symbols=tuple(symbols),
                   sections=tuple(sections), digest=hashlib.sha256(data).hexdigest(),
                   raw=data)

    @classmethod
    def load(cls, path: str | Path) -> ElfImage:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise EmulationError(f"cannot read firmware {path}: {exc.strerror}") from None
        return cls.from_bytes(data, path)

    # -- symbols -------------------------------------------------------------------
    def symbol(self, name: str) -> Symbol | None:
        return self._by_name.get(name)

    def require_symbol(self, name: str) -> Symbol:
        """The symbol *name*, or an error naming it (a firmware built without the ABI)."""
        sym = self._by_name.get(name)
        if sym is None:
            where = str(self.path) if self.path else "firmware image"
            raise EmulationError(f"{where} has no symbol {name!r} (required by the "
                                 "tinymeter firmware ABI)")
        return sym

    def demangled(self, name: str) -> str:
        """The C++ demangled form of symbol *name* (itself for C names)."""
        if self._demangled is None:
            self._demangled = demangle(sorted({s.name for s in self._sorted}
                                              | set(self._by_name)))
        return self._demangled.get(name, name)

    def find_function(self, name: str) -> Symbol | None:
        """The function a user names: its symbol name (mangled or C), its full demangled
        signature (``ns::f(int)``), or its demangled name without parameters (``ns::f``).
        Raises :class:`ConfigError` when the short form names several functions."""
        sym = self._by_name.get(name)
        if sym is not None and (sym.is_global or not sym.is_function):
            return sym
        exact: list[Symbol] = []
        short: list[Symbol] = []
        for s in self.functions:
            full = self.demangled(s.name)
            if s.name == name or full == name:
                exact.append(s)
            elif strip_parameters(full) == name:
                short.append(s)
        found = exact or short
        originals = [s for s in found if "." not in s.name]
        found = originals or found  # GCC clones (f.constprop.0, f.isra.0): see clones_of
        addresses = {s.address for s in found}
        if len(addresses) > 1:
            where = str(self.path) if self.path else "firmware image"
            listed = ", ".join(sorted(self.demangled(s.name) for s in found)[:6])
            raise ConfigError(f"{where}: {name!r} names {len(addresses)} functions ({listed}); "
                              "give the full signature or the mangled name")
        return found[0] if found else None

    def clones_of(self, sym: Symbol) -> list[Symbol]:
        """GCC's specialised copies of *sym* (``name.constprop.0``, ``.isra.0``,
        ``.part.0``): callers may enter one of them instead of *sym* itself."""
        prefix = sym.name + "."
        return [s for s in self.functions if s.name.startswith(prefix)
                and s.address != sym.address]

    @property
    def debug(self) -> DebugInfo:
        """The image's DWARF (lazy; empty answers when the ELF has none)."""
        if self._debug is None:
            self._debug = DebugInfo(self._raw)
        return self._debug

    def frames(self, address: int) -> list[Frame]:
        """Functions containing *address*, innermost first, inlined copies included (from
        DWARF); without debug information the symbol's function alone."""
        frames = self.debug.frames(address)
        if frames:
            return frames
        found = self.symbol_at(address)
        return [Frame(self.demangled(found[0].name), False)] if found else []

    def describe_frames(self, address: int) -> str:
        """``Error_Handler (inlined into SystemClock_Config)`` style place of *address*."""
        frames = self.frames(address)
        if not frames:
            return self.describe(address)
        inner = frames[0].name
        outer: list[str] = []
        for f in frames[1:]:  # GCC's split parts repeat a level: name it once
            if f.name != (outer[-1] if outer else inner):
                outer.append(f.name)
        return inner + (f" (inlined into {' <- '.join(outer)})" if outer else "")

    def symbol_at(self, address: int) -> tuple[Symbol, int] | None:
        """The symbol containing *address* (Thumb bit ignored) and the offset into it.

        Zero-size symbols (hand-written assembly labels) are accepted when no later
        symbol starts before *address*, because that is the best name available.
        """
        address &= ~1
        i = bisect.bisect_right(self._starts, address) - 1
        # A sized symbol containing the address wins, even over a later zero-size label.
        for j in range(i, max(i - 64, -1), -1):
            sym = self._sorted[j]
            if sym.size and sym.address <= address < sym.end:
                return sym, address - sym.address
        if i >= 0 and self._sorted[i].size == 0:
            label = self._sorted[i]
            # Only trust an unsized label (hand-written asm) within its own section;
            # linker-script markers like _estack would otherwise "contain" everything.
            if any(sec.address <= label.address and address < sec.address + len(sec.data)
                   for sec in self.sections):
                return label, address - label.address
        return None

    def describe(self, address: int) -> str:
        """``name+0xoff`` for fault messages, or ``??`` when nothing contains it."""
        found = self.symbol_at(address)
        if found is None:
            return "??"
        sym, offset = found
        return f"{sym.name}+0x{offset:x}" if offset else sym.name

    @property
    def functions(self) -> list[Symbol]:
        return [s for s in self._sorted if s.is_function]

    # -- bytes ---------------------------------------------------------------------
    def read_code(self, address: int, size: int) -> bytes:
        """Bytes at run address *address* (section/VMA view), for disassembly."""
        for sec in self.sections:
            off = address - sec.address
            if off >= 0 and off + size <= len(sec.data):
                return sec.data[off:off + size]
        for seg in self.segments:
            off = address - seg.vaddr
            if off >= 0 and off + size <= len(seg.data):
                return seg.data[off:off + size]
        raise EmulationError(f"no code bytes in the ELF at 0x{address:08x}+{size} "
                             "(code generated or copied at run time?)")


    def idle_loops(self) -> list[int]:
        """Addresses of the idle loops in the code (see :func:`find_idle_loops`): within
        function symbols when the ELF has them, else in the executable segments."""
        return sorted({a for base, code in self._code_chunks()
                       for a in find_idle_loops(code, base)})

    def unmask_points(self) -> list[int]:
        """Addresses right after the instructions that may unmask interrupts (see
        :func:`find_unmask_points`)."""
        return sorted({a for base, code in self._code_chunks()
                       for a in find_unmask_points(code, base)})

    def _code_chunks(self) -> list[tuple[int, bytes]]:
        spans = [(f.address, f.size) for f in self.functions if f.size > 0]
        chunks: list[tuple[int, bytes]] = []
        for address, size in spans:
            try:
                chunks.append((address, self.read_code(address, size)))
            except EmulationError:
                continue  # a function without file bytes (copied to RAM at run time)
        if not spans:
            chunks = [(seg.vaddr, seg.data) for seg in self.segments if seg.executable]
        return chunks


#: Thumb encodings of the loops firmware parks in once its work is done.
_B_SELF = 0xE7FE          # b.n .
_B_BACK_ONE = 0xE7FD      # b.n to the previous halfword
_BW_SELF = (0xF7FF, 0xBFFE)  # b.w .
_WAIT = (0xBF30, 0xBF20)  # wfi, wfe


def find_idle_loops(code: bytes, base: int) -> list[int]:
    """Addresses (in *code* loaded at *base*) where Thumb firmware idles forever:
    ``b .`` (16- or 32-bit) and ``wfi``/``wfe`` followed by a branch back to it.

    Why: firmware that reports over a UART ends in such a loop instead of a
    semihosting exit; reaching one is the end of its work.  Scanned on every halfword,
    so a match may be the second half of a 32-bit instruction: harmless, because only
    an instruction starting there can ever reach it.
    """
    half = [int.from_bytes(code[i:i + 2], "little") for i in range(0, len(code) - 1, 2)]
    out = []
    for i, h in enumerate(half):
        nxt = half[i + 1] if i + 1 < len(half) else None
        if h == _B_SELF or (h, nxt) == _BW_SELF or (h in _WAIT and nxt == _B_BACK_ONE):
            out.append(base + 2 * i)
    return out


def strip_parameters(signature: str) -> str:
    """``ns::f(int) const`` -> ``ns::f``: a demangled signature without its parameter
    list (found from the end, so ``(anonymous namespace)::f(int)`` keeps its prefix)."""
    text = signature.split(" [clone ", 1)[0].rstrip()
    for suffix in (" const", " volatile", " &&", " &"):
        text = text.removesuffix(suffix)
    if not text.endswith(")"):
        return text
    depth = 0
    for i in range(len(text) - 1, -1, -1):
        if text[i] == ")":
            depth += 1
        elif text[i] == "(":
            depth -= 1
            if depth == 0:
                return text[:i]
    return text


def demangle(names: Sequence[str]) -> dict[str, str]:
    """Demangled form of every C++ name in *names* (others map to themselves), through
    binutils' ``c++filt`` in one batch (the Arm toolchain ships it); without it, names
    stay as they are."""
    mangled = [n for n in names if n.startswith("_Z") and "\n" not in n]
    if not mangled:
        return {}
    tool = _cxxfilt()
    if tool is None:
        log.warning("no c++filt found: C++ symbols stay mangled")
        return {}
    try:
        proc = subprocess.run([tool], input="\n".join(mangled) + "\n", capture_output=True,
                              text=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("c++filt failed (%s): C++ symbols stay mangled", exc)
        return {}
    out = proc.stdout.splitlines()
    if len(out) != len(mangled):
        return {}
    return {m: d for m, d in zip(mangled, out) if d != m}


def _cxxfilt() -> str | None:
    return shutil.which("arm-none-eabi-c++filt") or shutil.which("c++filt")


#: ``cpsie i`` / ``cpsie f`` and the second halfword of ``msr PRIMASK|BASEPRI|BASEPRI_MAX|
#: FAULTMASK, rN`` (first halfword 0xF38n).
_CPSIE = (0xB662, 0xB661)
_MSR_MASKS = (0x8810, 0x8811, 0x8812, 0x8813)


def find_unmask_points(code: bytes, base: int) -> list[int]:
    """Addresses just after each instruction that can lower the interrupt mask
    (``cpsie``, ``msr`` to PRIMASK, BASEPRI, BASEPRI_MAX, FAULTMASK).

    Why: an interrupt that became pending while masked must be taken right after the
    firmware unmasks, and the core gives no event for it; a code hook at these few
    addresses costs nothing elsewhere (instead of re-checking every few hundred cycles
    for as long as the firmware keeps interrupts off).  Scanned on every halfword:
    a match inside data or mid-instruction is never executed, so it is harmless.
    """
    half = [int.from_bytes(code[i:i + 2], "little") for i in range(0, len(code) - 1, 2)]
    out = []
    for i, h in enumerate(half):
        if h in _CPSIE:
            out.append(base + 2 * i + 2)
        elif (h & 0xFFF0) == 0xF380 and i + 1 < len(half) and half[i + 1] in _MSR_MASKS:
            out.append(base + 2 * i + 4)
    return out


def _symbols_of(section: SymbolTableSection) -> list[Symbol]:
    out = []
    for sym in section.iter_symbols():
        kind = sym["st_info"]["type"]
        if kind not in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE") or not sym.name:
            continue
        if sym.name.startswith("$") or sym["st_shndx"] in ("SHN_UNDEF", "SHN_ABS"):
            continue  # mapping symbols ($t, $d) and absolute linker values are not code
        if kind == "STT_NOTYPE" and sym["st_size"] == 0 and sym["st_info"]["bind"] == "STB_LOCAL":
            continue  # local labels
        is_function = kind == "STT_FUNC"
        address = sym["st_value"] & ~1 if is_function else sym["st_value"]
        out.append(Symbol(name=sym.name, address=address, size=sym["st_size"],
                          is_function=is_function,
                          is_global=sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")))
    return out
