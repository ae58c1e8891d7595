"""Address programs: every data address of a block, from the registers at block entry.

Why: a per-access Unicorn memory hook costs ~1 us per access (a 10x slowdown measured
here), yet the cache and flash-interface simulation needs the address of every load
and store.  A block's addresses are a function of a few registers at its entry, so
this module compiles each distinct block once (Python, from :func:`.decode.decode_block`)
into a tiny straight-line program that the native block hook evaluates on every
execution (``native/tm_addrprog.h``).  :func:`evaluate` is the pure-Python reference
of the same semantics.

Program format (``AddressProgram.ops``, int32 rows of 6 words, word 0 = opcode):

==========  =============================  ==============================================
ACCESS      ``[1, base, index, shift, imm,  address = regs[base] + imm
            flags]``                       + (index >= 0 ? +-(regs[index] << shift) : 0)
ACCESS_ABS  ``[2, 0, 0, 0, addr, flags]``  absolute address (PC-relative literals)
ADDI        ``[3, d, s, 0, imm, 0]``       regs[d] = regs[s] + imm; valid[d] = valid[s]
ADDR        ``[4, d, s, t, shift, sign]``  regs[d] = regs[s] + sign * (regs[t] << shift)
CONST       ``[5, d, 0, 0, value, 0]``     regs[d] = value; valid[d] = 1
KILL        ``[6, d, 0, 0, 0, 0]``         valid[d] = 0
UNKNOWN     ``[7, 0, 0, 0, 0, flags]``     an access whose address form is not modelled
==========  =============================  ==============================================

``flags`` = bytes moved (bits 0-11) | store << 12 | subtract-index << 13 |
conditional << 14.  UNKNOWN (an addition to the lead's spec) always emits an
unresolved access, so the share of unresolved accesses stays honest.

Deliberate choice beyond the spec: an instruction inside an IT block still emits its
access (flagged conditional), but its *register* updates (writeback, arithmetic)
invalidate the register instead of assuming the condition passed, so a failed
condition can make later addresses unresolved but never wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from capstone import arm_const as A

from tinymeter.errors import TinymeterError
from tinymeter.sim.blocks import CLASS_INDEX
from tinymeter.sim.decode import DB, PC, POST, PRE, Insn, MemOp

log = logging.getLogger(__name__)

ACCESS, ACCESS_ABS, ADDI, ADDR, CONST, KILL, UNKNOWN = 1, 2, 3, 4, 5, 6, 7
OP_WORDS = 6
FLAG_BYTES_MASK = 0xFFF
FLAG_STORE = 1 << 12
FLAG_SUBTRACT = 1 << 13
FLAG_CONDITIONAL = 1 << 14
_MASK = 0xFFFFFFFF
#: Longest in-block ``lsl`` modelled as repeated doubling when source == destination.
_MAX_DOUBLINGS = 4
_TABLE_BRANCH = frozenset(("tbb", "tbh"))
_STORE, _STORE_MULTIPLE = CLASS_INDEX["store"], CLASS_INDEX["store_multiple"]
_MEMORY_CLASSES = frozenset((CLASS_INDEX["load"], _STORE, CLASS_INDEX["load_multiple"],
                             _STORE_MULTIPLE))
#: Preload hints: no architectural access (a cache model may want them later).
_HINTS = frozenset(("pld", "pli"))

ReadLiteral = Callable[[int, int], int]


def _s32(value: int) -> int:
    """*value* as the signed 32-bit word stored in an int32 op field."""
    value &= _MASK
    return value - (1 << 32) if value & 0x80000000 else value


@dataclass(frozen=True)
class AddressProgram:
    """One block's address program; ``regs_mask`` bit r = register r at entry is read."""

    ops: np.ndarray  # int32 [n, 6]
    regs_mask: int

    def __len__(self) -> int:
        return int(self.ops.shape[0])

    @property
    def accesses(self) -> int:
        """Accesses one execution emits (resolved or not)."""
        return int(np.isin(self.ops[:, 0], (ACCESS, ACCESS_ABS, UNKNOWN)).sum())


@dataclass(frozen=True, slots=True)
class Access:
    """One data access of an evaluated program (address 0 when not resolved)."""

    address: int
    bytes: int
    is_store: bool
    resolved: bool
    conditional: bool


class _Builder:
    """Forward pass: emits ops for every instruction, folding in-block constants."""

    def __init__(self, read_literal: ReadLiteral) -> None:
        self.ops: list[tuple[int, int, int, int, int, int]] = []
        self.const: list[int | None] = [None] * 16
        self.read_literal = read_literal

    # -- primitive emitters (keep self.const in step with the ops) --------------------
    def set_const(self, d: int, value: int) -> None:
        if d == PC:
            return
        self.ops.append((CONST, d, 0, 0, _s32(value), 0))
        self.const[d] = value & _MASK

    def kill(self, d: int) -> None:
        if d == PC:
            return
        self.ops.append((KILL, d, 0, 0, 0, 0))
        self.const[d] = None

    def addi(self, d: int, s: int, imm: int) -> None:
        if d == PC:
            return
        cs = self.const[s]
        if cs is not None:
            self.set_const(d, cs + imm)
        elif not (d == s and imm & _MASK == 0):
            self.ops.append((ADDI, d, s, 0, _s32(imm), 0))
            self.const[d] = None

    def addr(self, d: int, s: int, t: int, shift: int, sign: int) -> None:
        cs, ct = self.const[s], self.const[t]
        if ct is not None:
            self.addi(d, s, sign * (ct << shift))
        elif cs is not None and shift == 0 and sign == 1:
            self.addi(d, t, cs)
        elif d != PC:
            self.ops.append((ADDR, d, s, t, shift, sign))
            self.const[d] = None

    def access(self, base: int, index: int | None, shift: int, imm: int, flags: int) -> None:
        cb = self.const[base]
        ci = None if index is None else self.const[index]
        if index is not None and ci is not None:
            step = (ci << shift) & _MASK
            imm += -step if flags & FLAG_SUBTRACT else step
            index, flags = None, flags & ~FLAG_SUBTRACT
        if index is None and cb is not None:
            self.ops.append((ACCESS_ABS, 0, 0, 0, _s32(cb + imm), flags))
        elif index is not None and cb is not None and shift == 0 and not flags & FLAG_SUBTRACT:
            self.ops.append((ACCESS, index, -1, 0, _s32(cb + imm), flags))
        else:
            self.ops.append((ACCESS, base, -1 if index is None else index, shift, _s32(imm),
                             flags))

    # -- instructions ---------------------------------------------------------------------
    def instruction(self, insn: Insn) -> None:
        if insn.mem is not None:
            handled = self.memory(insn, insn.mem)
        elif insn.klass in _MEMORY_CLASSES and insn.name not in _HINTS:
            # a load/store whose addressing decode.py does not model: count it, unresolved
            store = FLAG_STORE if insn.klass in (_STORE, _STORE_MULTIPLE) else 0
            self.ops.append((UNKNOWN, 0, 0, 0, 0, 4 | store))
            handled = set()
        elif insn.operands and not insn.conditional:
            handled = self.arithmetic(insn)
        else:
            handled = set()
        for r in sorted(insn.regs_written - handled):
            self.kill(r)

    def memory(self, insn: Insn, m: MemOp) -> set[int]:
        """Emit the access and the register effects of a load/store; registers handled."""
        flags = (m.bytes_total | (FLAG_STORE if m.is_store else 0)
                 | (FLAG_SUBTRACT if m.subtract_index else 0)
                 | (FLAG_CONDITIONAL if insn.conditional else 0))
        if m.base == PC:
            return self.pc_relative(insn, m, flags)
        imm = m.offset if m.mode != POST else 0
        if m.direction == DB:
            imm -= m.bytes_total
        self.access(m.base, m.index, m.shift, imm, flags)
        handled: set[int] = set()
        if m.writeback and not (not m.is_store and m.base in m.regs):
            handled.add(m.base)
            if insn.conditional:
                self.kill(m.base)
            else:
                delta = m.offset if m.mode in (PRE, POST) else (
                    -m.bytes_total if m.direction == DB else m.bytes_total)
                self.addi(m.base, m.base, delta)
        return handled

    def pc_relative(self, insn: Insn, m: MemOp, flags: int) -> set[int]:
        """Literal loads (Align(PC, 4) + imm) and TBB/TBH tables (PC + Rm [<< 1])."""
        if insn.name in _TABLE_BRANCH:
            if m.index is None:
                self.ops.append((UNKNOWN, 0, 0, 0, 0, flags))
                return set()
            pc = insn.address + 4
            saved = self.const[PC]
            self.const[PC] = pc  # fold PC as a known base; restored below
            try:
                self.access(PC, m.index, m.shift, 0, flags)
            finally:
                self.const[PC] = saved
            if self.ops[-1][0] == ACCESS and self.ops[-1][1] == PC:
                # shift 1 (TBH): address = pc + 2 * Rm = (Rm + Rm) + pc
                self.ops[-1] = (ACCESS, m.index, m.index, 0, _s32(pc), flags)
            return set()
        address = ((insn.address + 4) & ~3) + m.offset
        self.ops.append((ACCESS_ABS, 0, 0, 0, _s32(address), flags))
        if m.is_store or m.width != 4 or insn.conditional:
            return set()
        handled = set()
        for k, r in enumerate(m.regs):
            try:
                value = self.read_literal(address + 4 * k, 4)
            except (LookupError, ValueError, TinymeterError) as exc:
                log.debug("literal at 0x%08x unreadable (%s)", address + 4 * k, exc)
                continue
            self.set_const(r, value)
            handled.add(r)
        return handled

    def arithmetic(self, insn: Insn) -> set[int]:
        """Pointer arithmetic: add/sub (imm or LSL-shifted reg), mov, movw/movt, adr, lsl."""
        ops = insn.operands
        if not ops or ops[0][0] != "r":
            return set()
        d = ops[0][1]
        name = insn.name
        src = ops[1:]
        if name in ("add", "addw", "sub", "subw") and len(src) == 1:
            src = (("r", d, 0, 0, False), *src)  # two-operand form: Rdn op= x
        handler = _ARITH.get(name)
        if handler is None or not handler(self, insn, d, src):
            return set()
        return {d}

    def pc_value(self, insn: Insn, aligned: bool) -> int:
        pc = insn.address + 4
        return pc & ~3 if aligned else pc


def _arith_add(b: _Builder, insn: Insn, d: int, src: tuple) -> bool:
    if len(src) != 2 or src[0][0] != "r":
        return False
    sign = -1 if insn.name in ("sub", "subw") else 1
    s, x = src[0][1], src[1]
    if x[0] == "i":
        if s == PC:  # ADDW/SUBW Rd, PC, #imm (ADR)
            b.set_const(d, b.pc_value(insn, True) + sign * x[1])
        else:
            b.addi(d, s, sign * x[1])
        return True
    t, shift_type, shift = x[1], x[2], x[3]
    if shift_type not in (0, A.ARM_SFT_LSL):
        return False
    if PC in (s, t):
        saved = b.const[PC]
        b.const[PC] = b.pc_value(insn, False)  # ADD Rdn, PC reads PC unaligned
        try:
            b.addr(d, s, t, shift, sign)
        finally:
            b.const[PC] = saved
        return True
    b.addr(d, s, t, shift, sign)
    return True


def _arith_mov(b: _Builder, insn: Insn, d: int, src: tuple) -> bool:
    if len(src) != 1:
        return False
    kind, value, shift_type, _shift, _sub = src[0]
    if kind == "i":
        b.set_const(d, value)
    elif shift_type:
        return False
    elif value == PC:
        b.set_const(d, b.pc_value(insn, False))
    else:
        b.addi(d, value, 0)
    return True


def _arith_mvn(b: _Builder, insn: Insn, d: int, src: tuple) -> bool:
    if len(src) != 1 or src[0][0] != "i":
        return False
    b.set_const(d, ~src[0][1])
    return True


def _arith_movt(b: _Builder, insn: Insn, d: int, src: tuple) -> bool:
    low = b.const[d]
    if len(src) != 1 or src[0][0] != "i" or low is None:
        return False
    b.set_const(d, (low & 0xFFFF) | ((src[0][1] & 0xFFFF) << 16))
    return True


def _arith_adr(b: _Builder, insn: Insn, d: int, src: tuple) -> bool:
    if len(src) != 1 or src[0][0] != "i":
        return False
    b.set_const(d, b.pc_value(insn, True) + src[0][1])
    return True


def _arith_lsl(b: _Builder, insn: Insn, d: int, src: tuple) -> bool:
    """``lsl d, s, #k`` as adds: d = s + (s << k) - s, or k doublings when d == s."""
    if len(src) != 2 or src[0][0] != "r" or src[1][0] != "i" or src[0][1] == PC:
        return False
    s, k = src[0][1], src[1][1]
    cs = b.const[s]
    if cs is not None:
        b.set_const(d, cs << k)
    elif k == 0:
        b.addi(d, s, 0)
    elif d != s:
        b.addr(d, s, s, k, 1)
        b.addr(d, d, s, 0, -1)
    elif k <= _MAX_DOUBLINGS:
        for _ in range(k):
            b.addr(d, d, d, 0, 1)
    else:
        return False
    return True


_ARITH: dict[str, Callable[[_Builder, Insn, int, tuple], bool]] = {
    "add": _arith_add, "addw": _arith_add, "sub": _arith_add, "subw": _arith_add,
    "mov": _arith_mov, "movs": _arith_mov, "movw": _arith_mov, "mvn": _arith_mvn,
    "movt": _arith_movt, "adr": _arith_adr, "lsl": _arith_lsl,
}


def _eliminate_dead(ops: list[tuple[int, int, int, int, int, int]]
                    ) -> tuple[list[tuple[int, int, int, int, int, int]], int]:
    """Drop register ops whose result no later op reads; the registers read at entry."""
    needed: set[int] = set()
    kept = []
    for op in reversed(ops):
        code = op[0]
        if code == ACCESS:
            needed.add(op[1])
            if op[2] >= 0:
                needed.add(op[2])
        elif code in (ADDI, ADDR, CONST, KILL):
            if op[1] not in needed:
                continue
            needed.discard(op[1])
            if code == ADDI:
                needed.add(op[2])
            elif code == ADDR:
                needed.update((op[2], op[3]))
        kept.append(op)
    kept.reverse()
    if PC in needed:
        raise AssertionError("address program reads PC at block entry")
    return kept, sum(1 << r for r in needed)


def address_program(insns: Sequence[Insn], read_literal: ReadLiteral) -> AddressProgram:
    """Compile one block's instructions into its address program.

    *read_literal(address, size)* returns the little-endian value of a literal pool word
    (constants loaded with ``ldr rX, [pc, #imm]`` that later address memory); it may raise
    ``LookupError``/``ValueError``/``TinymeterError`` for addresses it cannot read.
    """
    b = _Builder(read_literal)
    for insn in insns:
        b.instruction(insn)
    ops, mask = _eliminate_dead(b.ops)
    array = np.array(ops, dtype=np.int32).reshape(len(ops), OP_WORDS)
    return AddressProgram(ops=array, regs_mask=mask)


def evaluate(program: AddressProgram, regs: Sequence[int],
             valid: Sequence[bool] | None = None) -> list[Access]:
    """Reference evaluator of *program* over *regs* (16 register values at block entry);
    ``valid`` defaults to all registers valid.  ``native/tm_addrprog.h`` must agree."""
    r = [int(v) & _MASK for v in regs]
    ok = [True] * 16 if valid is None else [bool(v) for v in valid]
    out: list[Access] = []
    for code, a, b, c, d, e in program.ops.tolist():
        if code == ACCESS:
            resolved = ok[a] and (b < 0 or ok[b])
            address = 0
            if resolved:
                address = r[a] + d
                if b >= 0:
                    step = (r[b] << c) & _MASK
                    address += -step if e & FLAG_SUBTRACT else step
            out.append(_access(address, e, resolved))
        elif code == ACCESS_ABS:
            out.append(_access(d, e, True))
        elif code == UNKNOWN:
            out.append(_access(0, e, False))
        elif code == ADDI:
            r[a], ok[a] = (r[b] + d) & _MASK, ok[b]
        elif code == ADDR:
            r[a], ok[a] = (r[b] + e * ((r[c] << d) & _MASK)) & _MASK, ok[b] and ok[c]
        elif code == CONST:
            r[a], ok[a] = d & _MASK, True
        elif code == KILL:
            ok[a] = False
        else:
            raise ValueError(f"unknown address-program opcode {code}")
    return out


def _access(address: int, flags: int, resolved: bool) -> Access:
    return Access(address=address & _MASK if resolved else 0, bytes=flags & FLAG_BYTES_MASK,
                  is_store=bool(flags & FLAG_STORE), resolved=resolved,
                  conditional=bool(flags & FLAG_CONDITIONAL))
