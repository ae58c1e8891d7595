"""Turn the native hook's (block, layer) -> count table into instruction statistics.

The hook only records which translated blocks ran how often; this module
disassembles each distinct (address, size) block once with capstone and multiplies.
Counting from block contents (not per-instruction hooks) is deliberate: Unicorn's
code hook skips IT-block instructions whose condition fails, while the hardware still
issues them.  The instruction classes (:mod:`tinymeter.sim.classes`) map mnemonics to
classes; the cycle cost model consumes the per-class counts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import capstone
import numpy as np

from tinymeter.sim.classes import CLASS_INDEX, CLASSES, classify
from tinymeter.sim.decode import insn_facts
from tinymeter.sim.hazards import HazardTracker

log = logging.getLogger(__name__)

_MULTIPLE = frozenset(("ldm", "ldmdb", "stm", "stmdb"))
_PUSH_POP = frozenset(("push", "pop"))
_FP_MULTIPLE = frozenset(("vldmia", "vldmdb", "vstmia", "vstmdb", "vpush", "vpop"))


class CodeReader(Protocol):
    """Source of code bytes at run addresses (``ElfImage`` implements it)."""

    def read_code(self, address: int, size: int) -> bytes: ...


class SymbolLookup(Protocol):
    def describe(self, address: int) -> str: ...

    def symbol_at(self, address: int) -> object | None: ...


@dataclass(frozen=True)
class BlockTable:
    """Raw hook output: one row per (block address, block size, layer); layer -1 = outside."""

    address: np.ndarray  # uint32
    size: np.ndarray     # uint32
    layer: np.ndarray    # int32
    count: np.ndarray    # uint64

    def __len__(self) -> int:
        return int(self.address.shape[0])

    @classmethod
    def empty(cls) -> BlockTable:
        return cls(np.zeros(0, np.uint32), np.zeros(0, np.uint32), np.zeros(0, np.int32),
                   np.zeros(0, np.uint64))


@dataclass(frozen=True)
class BlockInfo:
    """Static facts of one translated block."""

    address: int
    size: int
    instructions: int
    classes: np.ndarray          # int64[len(CLASSES)]
    multiple_registers: int      # registers moved by LDM/STM/PUSH/POP in this block
    #: The last instruction is conditional (a conditional branch ends most loop blocks).
    ends_conditional: bool = False
    mnemonics: tuple[str, ...] = field(repr=False, default=())
    #: Single loads issued right behind a load or store they pipeline with (Cortex-M3/M4
    #: TRM "load/store timings"): counted in ``classes["load"]`` too.
    pipelined_loads: int = 0
    #: ALU instructions that can issue in the same cycle as the instruction before them on
    #: a dual-issue core (Cortex-M7): counted in ``classes["alu"]`` too.
    dual_issued: int = 0
    #: What the first instruction needs of a predecessor to pipeline or pair with it, and
    #: what the last one offers a successor (:class:`Seam`): the emulator splits straight
    #: code into blocks at places the core does not, so the native hook joins a block to
    #: the one that fell through into it.
    seam: Seam = field(default_factory=lambda: Seam())
    #: Register dependencies between neighbouring instructions (:mod:`.hazards`): loads
    #: and stores whose address the previous data-processing instruction computed ...
    agu_stalls: int = 0
    #: ... uses of a byte/halfword load's result by the next instruction ...
    narrow_load_uses: int = 0
    #: ... uses of an FPU arithmetic result by the next instruction ...
    fp_dependent: int = 0
    #: ... and single-precision VLDR / VSTR pipelined behind a load or store (counted in
    #: their mnemonic or class too, like ``pipelined_loads``).
    vldr_pipelined: int = 0
    vstr_pipelined: int = 0
    #: ... and one-register VLDMs pipelined likewise (counted in ``load_multiple``).
    vldm_pipelined: int = 0


@dataclass(frozen=True)
class Seam:
    """Pipelining and dual-issue facts at a block's edges, register sets as bit masks
    (r0-r12 = bits 0-12, sp = 13, lr = 14).

    ``head``: HEAD_LOAD if the first instruction is a single load (``head_regs``: its
    address registers), HEAD_ALU if it is an unconditional ALU instruction (``head_regs``:
    every register it names).  ``tail``: TAIL_LOAD after a single load (``tail_dest``: its
    destination), TAIL_STORE_IMM after an immediate-offset single store (a load may
    pipeline behind either); ``tail_pairs``: the last instruction may pair with an ALU
    successor that names none of ``tail_written``.  ``dual_issued_if_paired``: the
    block's dual-issued count when its first instruction pairs with the predecessor
    (the pairs after it shift).
    """

    head: int = 0
    head_regs: int = 0
    tail: int = 0
    tail_dest: int = 0
    tail_pairs: bool = False
    tail_written: int = 0
    dual_issued_if_paired: int = 0


HEAD_LOAD, HEAD_ALU = 1, 2
TAIL_LOAD, TAIL_STORE_IMM = 1, 2
_REGISTER_BITS = {**{f"r{i}": i for i in range(13)}, "sb": 9, "sl": 10, "fp": 11, "ip": 12,
                  "sp": 13, "lr": 14}


def register_mask(names: object) -> int:
    """Bit mask of the core registers among *names* (others, e.g. ``pc``, ignored)."""
    mask = 0
    for name in names:  # type: ignore[attr-defined]
        bit = _REGISTER_BITS.get(str(name))
        if bit is not None:
            mask |= 1 << bit
    return mask


#: Condition suffixes of Thumb mnemonics (``bne``, ``addeq``, ``bxgt``).
_CONDITIONS = frozenset(("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls",
                         "ge", "lt", "gt", "le"))


def _is_conditional(mnemonic: str, name: str) -> bool:
    """Whether the printed *mnemonic* carries a condition code on top of *name*.

    capstone prints ``<name>[s]<cond>[.w|.f32...]``; reading the condition from the
    text avoids capstone's detail mode (about 3x slower per instruction), which matters
    because the native hook's cost callback disassembles blocks while the emulator runs.
    """
    if name == "it":
        return True  # capstone gives IT its first condition (never AL in compiled code)
    base = mnemonic.split(".", 1)[0]
    if not base.startswith(name) or base == name:
        return False
    suffix = base[len(name):]
    return suffix in _CONDITIONS or (suffix[:1] == "s" and suffix[1:] in _CONDITIONS)


class Disassembler:
    """A capstone handle without operand details (fast); see :func:`_is_conditional`."""

    def __init__(self) -> None:
        self.fast = capstone.Cs(capstone.CS_ARCH_ARM,
                                capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
        #: (name, mnemonic, operand text) -> (core registers read, written, address
        #: registers): the same instruction text recurs across a firmware's blocks
        self.registers: dict[tuple[str, str, str], tuple[frozenset[int], frozenset[int],
                                                         frozenset[int]]] = {}

    def register_facts(self, name: str, mnemonic: str, op_str: str
                       ) -> tuple[frozenset[int], frozenset[int], frozenset[int]]:
        """Core registers an instruction reads, writes and addresses memory with."""
        key = (name, mnemonic, op_str)
        facts = self.registers.get(key)
        if facts is None:
            facts = self.registers[key] = insn_facts(name, mnemonic, op_str)
        return facts


def _register_list_length(op_str: str) -> int:
    """Registers in a ``{r4, r5, lr}`` list (capstone prints each register, no ranges);
    a double-precision ``d<n>`` counts as two single-precision transfers."""
    start, end = op_str.find("{"), op_str.rfind("}")
    if start < 0 or end <= start:
        return 0
    inner = op_str[start + 1:end].strip()
    if not inner:
        return 0
    return sum(2 if t.strip()[:1] == "d" else 1 for t in inner.split(","))


#: Single-register loads and stores whose address and data phases the M3/M4/M33 pipeline
#: overlaps with a neighbour (LDRD/LDM and exclusive accesses do not pipeline).
_SINGLE_LOADS = frozenset(["ldr", "ldrb", "ldrh", "ldrsb", "ldrsh"])
_SINGLE_STORES = frozenset(["str", "strb", "strh"])


def _address_registers(op_str: str) -> tuple[str, ...]:
    """Registers inside the ``[...]`` of a load/store operand string."""
    start, end = op_str.find("["), op_str.find("]")
    if start < 0 or end < start:
        return ()
    return tuple(t.strip().split(" ")[0] for t in op_str[start + 1:end].split(","))


class _Pipeline:
    """Tracks whether the next single load pipelines behind the previous instruction:
    it does after a single load whose destination it does not use as an address, and
    after a single store with an immediate offset (nothing pipelines behind a
    register-offset store)."""

    def __init__(self) -> None:
        self.previous: tuple[str, str, tuple[str, ...]] | None = None  # name, dest, addr regs

    def step(self, name: str, op_str: str) -> bool:
        dest = op_str.split(",", 1)[0].strip()
        regs = _address_registers(op_str)
        pipelined = False
        if name in _SINGLE_LOADS and self.previous is not None and not dest.startswith("pc"):
            prev_name, prev_dest, prev_regs = self.previous
            if prev_name in _SINGLE_LOADS:
                pipelined = prev_dest not in regs
            else:
                pipelined = len(prev_regs) < 2 or prev_regs[1].startswith("#")
        single = name in _SINGLE_LOADS or name in _SINGLE_STORES
        self.previous = (name, dest, regs) if single and regs[:1] != ("pc",) else None
        return pipelined


_PAIRABLE = frozenset(CLASS_INDEX[c] for c in ("alu", "mul", "mac", "load", "store"))
#: The mnemonic a block lists for a VMOV between core and FPU registers (``vmov r0, s3``,
#: ``vmov s4, r1``, ``vmov r0, r1, d2``): Cortex-M4 TRM table 7-1 gives it 2 cycles where a
#: VMOV within the FPU (register or immediate) takes 1; an FPU-class name of its own so
#: the cost model can price it apart.
VMOV_CORE = "vmov.core"
_REGISTER = re.compile(r"\b(r1[0-2]|r[0-9]|sb|sl|fp|ip|sp|lr)\b")


class _DualIssue:
    """Which ALU instructions a dual-issue core (Cortex-M7 TRM, "dual issue") starts in the
    same cycle as their predecessor: the predecessor is a single-cycle-class instruction
    (ALU, multiply, MAC, single load/store) that is not itself the second of a pair, the ALU
    instruction reads no register the predecessor writes, and neither is conditional."""

    def __init__(self) -> None:
        self.previous: tuple[int, frozenset[str]] | None = None  # class, registers written

    def step(self, cls: int, name: str, op_str: str, conditional: bool) -> bool:
        regs = _REGISTER.findall(op_str)
        written = frozenset(regs[:1]) if cls != CLASS_INDEX["store"] and regs else frozenset()
        if "!" in op_str or "], #" in op_str:  # writeback of a load/store base
            base = _address_registers(op_str)[:1]
            written |= frozenset(base)
        # conservative: any register the ALU instruction names (read or written) must not
        # be one the predecessor writes
        paired = (cls == CLASS_INDEX["alu"] and not conditional and name != "it"
                  and self.previous is not None and not set(regs) & self.previous[1])
        self.previous = None if paired or conditional or cls not in _PAIRABLE else (cls, written)
        return paired


def _head(cls: int, name: str, op_str: str, conditional: bool) -> tuple[int, int]:
    """(HEAD_* kind, register mask) of a block's first instruction."""
    if name in _SINGLE_LOADS and not op_str.split(",", 1)[0].strip().startswith("pc"):
        return HEAD_LOAD, register_mask(_address_registers(op_str))
    if cls == CLASS_INDEX["alu"] and not conditional and name != "it":
        return HEAD_ALU, register_mask(_REGISTER.findall(op_str))
    return 0, 0


def _seam(head: tuple[int, int], pipeline: _Pipeline, dual: _DualIssue,
          dual_if_paired: int) -> Seam:
    tail, dest = 0, 0
    if pipeline.previous is not None:
        name, prev_dest, regs = pipeline.previous
        if name in _SINGLE_LOADS:
            tail, dest = TAIL_LOAD, register_mask([prev_dest])
        elif len(regs) < 2 or regs[1].startswith("#"):
            tail = TAIL_STORE_IMM
    return Seam(head=head[0], head_regs=head[1], tail=tail, tail_dest=dest,
                tail_pairs=dual.previous is not None,
                tail_written=register_mask(dual.previous[1]) if dual.previous else 0,
                dual_issued_if_paired=dual_if_paired)


def disassemble_block(code: bytes, address: int, md: Disassembler | None = None) -> BlockInfo:
    """Disassemble one block into instruction and class counts."""
    md = md or make_disassembler()
    classes = np.zeros(len(CLASSES), dtype=np.int64)
    regs = 0
    names: list[str] = []
    conditional = False
    offset = 0
    pipeline = _Pipeline()
    dual = _DualIssue()
    paired_head = _DualIssue()
    pipelined = dual_issued = dual_if_paired = 0
    head: tuple[int, int] | None = None
    hazards = HazardTracker()
    while offset < len(code):
        progressed = False
        for insn in md.fast.disasm(code[offset:], address + offset):
            name = insn.insn_name()
            cls = classify(name)
            classes[cls] += 1
            cond = _is_conditional(insn.mnemonic, name)
            if head is None:
                head = _head(cls, name, insn.op_str, cond)
                paired_head.previous = (CLASS_INDEX["alu"], frozenset())  # pairs with anything
            pipelined += pipeline.step(name, insn.op_str)
            dual_issued += dual.step(cls, name, insn.op_str, cond)
            dual_if_paired += paired_head.step(cls, name, insn.op_str, cond)
            if name in _PUSH_POP or name in _MULTIPLE or name in _FP_MULTIPLE:
                regs += _register_list_length(insn.op_str)
            read, written, addressed = md.register_facts(name, insn.mnemonic, insn.op_str)
            hazards.step(name, insn.op_str, cls, read, written, addressed)
            conditional = _is_conditional(insn.mnemonic, name)
            offset += insn.size
            names.append(VMOV_CORE if name == "vmov" and _REGISTER.search(insn.op_str) else name)
            progressed = True
        if offset < len(code) and not progressed:
            # capstone cannot decode it (the CPU evidently could): count one unknown
            # halfword rather than failing a whole model run over one opcode.
            log.warning("capstone cannot decode 0x%08x; counted as 'other'", address + offset)
            classes[CLASS_INDEX["other"]] += 1
            pipeline.previous = None
            dual.previous = paired_head.previous = None
            head = head or (0, 0)
            hazards.reset()
            names.append("?")
            conditional = False
            offset += 2
    found = hazards.result()
    return BlockInfo(address=address, size=len(code), instructions=len(names), classes=classes,
                     multiple_registers=regs, mnemonics=tuple(names),
                     ends_conditional=conditional, pipelined_loads=pipelined,
                     dual_issued=dual_issued,
                     seam=_seam(head or (0, 0), pipeline, dual, dual_if_paired),
                     agu_stalls=found.agu, narrow_load_uses=found.narrow_load_use,
                     fp_dependent=found.fp_dependent, vldr_pipelined=found.vldr_pipelined,
                     vstr_pipelined=found.vstr_pipelined,
                     vldm_pipelined=found.vldm_pipelined)


def make_disassembler() -> Disassembler:
    return Disassembler()


class BlockProfile:
    """Block table joined with per-block disassembly; every aggregation is a numpy sum.

    Arrays are row-aligned with the table: ``instructions[i]`` and ``classes[i, :]`` are
    per *execution* of row *i*; multiply by ``table.count`` for totals.
    """

    def __init__(self, table: BlockTable, infos: Mapping[tuple[int, int], BlockInfo],
                 symbols: SymbolLookup | None = None) -> None:
        self.table = table
        self.infos = dict(infos)
        self._symbols = symbols
        n = len(table)
        self.instructions = np.zeros(n, dtype=np.int64)
        self.classes = np.zeros((n, len(CLASSES)), dtype=np.int64)
        self.multiple_registers = np.zeros(n, dtype=np.int64)
        for i, (a, s) in enumerate(zip(table.address.tolist(), table.size.tolist())):
            info = self.infos[(a, s)]
            self.instructions[i] = info.instructions
            self.classes[i] = info.classes
            self.multiple_registers[i] = info.multiple_registers
        self.counts = table.count.astype(np.int64)

    @property
    def total_instructions(self) -> int:
        return int(np.dot(self.instructions, self.counts))

    def instructions_per_layer(self) -> dict[int, int]:
        """Executed instructions per layer index; key -1 = outside any layer."""
        return self._sum_by(self.table.layer, self.instructions * self.counts)

    def classes_per_layer(self) -> dict[int, dict[str, int]]:
        """Executed instructions per (layer, class)."""
        weighted = self.classes * self.counts[:, None]
        out: dict[int, dict[str, int]] = {}
        for layer in np.unique(self.table.layer).tolist():
            row = weighted[self.table.layer == layer].sum(axis=0)
            out[int(layer)] = {c: int(v) for c, v in zip(CLASSES, row.tolist())}
        return out

    def classes_total(self) -> dict[str, int]:
        row = (self.classes * self.counts[:, None]).sum(axis=0)
        return {c: int(v) for c, v in zip(CLASSES, row.tolist())}

    def multiple_registers_per_layer(self) -> dict[int, int]:
        return self._sum_by(self.table.layer, self.multiple_registers * self.counts)

    def instructions_per_function(self) -> dict[str, int]:
        """Executed instructions per function containing the block start (``??`` if none)."""
        if self._symbols is None:
            raise ValueError("BlockProfile was built without a symbol table")
        names = [self._function_name(a) for a in self.table.address.tolist()]
        out: dict[str, int] = {}
        for name, n in zip(names, (self.instructions * self.counts).tolist()):
            out[name] = out.get(name, 0) + int(n)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def _function_name(self, address: int) -> str:
        assert self._symbols is not None
        found = self._symbols.symbol_at(address)
        if found is None:
            return "??"
        return str(found[0].name)  # type: ignore[index]

    @staticmethod
    def _sum_by(keys: np.ndarray, values: np.ndarray) -> dict[int, int]:
        out: dict[int, int] = {}
        for k in np.unique(keys).tolist():
            out[int(k)] = int(values[keys == k].sum())
        return out


def analyze(table: BlockTable, code: CodeReader, symbols: SymbolLookup | None = None,
            cache: dict[tuple[int, int], BlockInfo] | None = None) -> BlockProfile:
    """Disassemble every distinct (address, size) of *table* once and build the profile.

    *cache* may be shared between runs of the same image to skip re-disassembly.
    """
    cache = {} if cache is None else cache
    md = make_disassembler()
    keys = set(zip(table.address.tolist(), table.size.tolist()))
    for key in sorted(keys - cache.keys()):
        address, size = key
        cache[key] = disassemble_block(code.read_code(address, size), address, md)
    log.debug("analyzed %d distinct blocks", len(keys))
    return BlockProfile(table, {k: cache[k] for k in keys}, symbols)
