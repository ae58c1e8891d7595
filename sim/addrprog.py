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
LOAD        ``[8, d, base, index, imm,     regs[d] = memory at block entry at regs[base]
            meta]``                        (0 if base < 0) + imm + (regs[index] << shift),
                                           meta = shift | width << 8 | signed << 12;
                                           valid iff base/index valid and memory readable
ALU         ``[9, d, s, t, imm, kind]``    regs[d] = regs[s] <kind> (t >= 0 ? regs[t] : imm):
                                           and orr eor bic lsl lsr asr mul rsb (x - s),
                                           sxtb sxth uxtb uxth (of regs[s]); see ``alu``
==========  =============================  ==============================================

``flags`` = bytes moved (bits 0-11) | store << 12 | subtract-index << 13 |
conditional << 14 | strict alignment << 15 (the instruction faults when unaligned: all
but LDR/STR/LDRH/STRH/LDRSH and their T forms, TBH and the byte accesses).  UNKNOWN,
LOAD and ALU are additions to the lead's spec (ALU: masked,
extended and multiplied indices such as ``and r0, #15; add r3, r3, r0, lsl #2`` of table
lookups, or im2col's ``asr``/``ubfx``).  UNKNOWN always emits an unresolved access, so the
share of unresolved accesses stays honest.  LOAD
resolves pointers the block itself loads (spilled pointers reloaded from the stack,
tensor pointers read from a layer's parameter struct, table lookups): the evaluator
reads them from memory *at block entry*, which is only correct because the compiler
emits a LOAD only when no earlier store of the block can have written that memory:
an earlier store to the same symbolic address forwards the stored register instead,
and a possibly overlapping one (same base register, unknown or overlapping offset)
kills the register.  Stores through a different base register are assumed not to
alias the load (compiled NN code does not store through one pointer and reload a
pointer through another within one block); the ground-truth test checks this on real
firmware.  Without a memory reader (``tm_ap_eval``) LOAD acts as KILL: use
``tm_ap_eval_mem`` (without it 3-8% of the KWS kernels' accesses stay unresolved).

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

from tinymeter.core.errors import TinymeterError
from tinymeter.sim.classes import CLASS_INDEX
from tinymeter.sim.decode import DB, PC, POST, PRE, Insn, MemOp

log = logging.getLogger(__name__)

ACCESS, ACCESS_ABS, ADDI, ADDR, CONST, KILL, UNKNOWN, LOAD, ALU = 1, 2, 3, 4, 5, 6, 7, 8, 9
#: ALU kinds (word 5 of an ALU op): x = regs[t] if t >= 0 else imm.
ALU_AND, ALU_ORR, ALU_EOR, ALU_BIC, ALU_LSL, ALU_LSR, ALU_ASR, ALU_MUL, ALU_RSB = range(1, 10)
ALU_SXTB, ALU_SXTH, ALU_UXTB, ALU_UXTH = range(10, 14)
_ALU_OF = {"and": ALU_AND, "orr": ALU_ORR, "eor": ALU_EOR, "bic": ALU_BIC, "lsl": ALU_LSL,
           "lsr": ALU_LSR, "asr": ALU_ASR, "mul": ALU_MUL, "rsb": ALU_RSB, "sxtb": ALU_SXTB,
           "sxth": ALU_SXTH, "uxtb": ALU_UXTB, "uxth": ALU_UXTH}
_ALU_UNARY = frozenset((ALU_SXTB, ALU_SXTH, ALU_UXTB, ALU_UXTH))
#: Immediate shifts of a register operand (``mov.w r0, r1, asr #2``) as ALU kinds.
_SHIFT_KIND = {A.ARM_SFT_LSL: ALU_LSL, A.ARM_SFT_LSR: ALU_LSR, A.ARM_SFT_ASR: ALU_ASR}
OP_WORDS = 6
FLAG_BYTES_MASK = 0xFFF
FLAG_STORE = 1 << 12
FLAG_SUBTRACT = 1 << 13
FLAG_CONDITIONAL = 1 << 14
#: The instruction faults on an unaligned address (alignment unit min(bytes, 4)).
FLAG_STRICT = 1 << 15
#: The only loads/stores that may access an unaligned address on ARMv7-M/ARMv8-M mainline
#: (ARMv7-M ARM A3.2.1; Cortex-M3/M4/M7 generic user guides 3.3.5): every other one takes
#: a UsageFault (UNALIGNED), and on ARMv6-M every unaligned access faults.
UNALIGNED_OK = frozenset(("ldr", "ldrt", "ldrh", "ldrht", "ldrsh", "ldrsht", "str", "strt",
                          "strh", "strht", "tbh", "ldrb", "ldrsb", "ldrbt", "ldrsbt", "strb",
                          "strbt", "tbb"))
#: LOAD word 5: shift (bits 0-7) | width << 8 | LOAD_SIGNED (sign-extend the value).
LOAD_SIGNED = 1 << 12
_MASK = 0xFFFFFFFF
_TABLE_BRANCH = frozenset(("tbb", "tbh"))
_SIGNED_LOADS = frozenset(("ldrsb", "ldrsh", "ldrsbt", "ldrsht"))
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
    #: The instruction faults when the address is not a multiple of min(bytes, 4).
    strict: bool = False


class _Builder:
    """Forward pass: emits ops for every instruction, folding in-block constants.

    Besides ``const`` (values known at compile time) it tracks ``sym``, a symbolic value
    per register (root, offset): ADDI keeps the root, every other write makes a fresh
    root.  Stores of the block are recorded by symbolic address so a later load whose
    result feeds an address is either forwarded from the stored register (a spill and
    its reload), compiled to a LOAD of memory at block entry (nothing in the block
    before it may have written that memory), or killed.
    """

    def __init__(self, read_literal: ReadLiteral) -> None:
        self.ops: list[tuple[int, int, int, int, int, int]] = []
        self.const: list[int | None] = [None] * 16
        self.sym: list[tuple[tuple, int]] = [(("entry", r), 0) for r in range(16)]
        self.fresh = 0
        #: per root: (offset or None, bytes, forwardable source register or None, its sym)
        self.stores: dict[tuple, list[tuple[int | None, int, int | None, tuple | None]]] = {}
        self.clobbered = False  # a store to an unknown address happened
        self.read_literal = read_literal

    # -- primitive emitters (keep const and sym in step with the ops) -----------------
    def new_sym(self, d: int) -> None:
        self.fresh += 1
        self.sym[d] = (("value", self.fresh), 0)

    def set_const(self, d: int, value: int) -> None:
        if d == PC:
            return
        self.ops.append((CONST, d, 0, 0, _s32(value), 0))
        self.const[d] = value & _MASK
        self.sym[d] = (("const",), value & _MASK)

    def kill(self, d: int) -> None:
        if d == PC:
            return
        self.ops.append((KILL, d, 0, 0, 0, 0))
        self.const[d] = None
        self.new_sym(d)

    def addi(self, d: int, s: int, imm: int) -> None:
        if d == PC:
            return
        cs = self.const[s]
        if cs is not None:
            self.set_const(d, cs + imm)
            return
        root, off = self.sym[s]
        if not (d == s and imm & _MASK == 0):
            self.ops.append((ADDI, d, s, 0, _s32(imm), 0))
            self.const[d] = None
        self.sym[d] = (root, (off + imm) & _MASK)

    def addr(self, d: int, s: int, t: int, shift: int, sign: int) -> None:
        cs, ct = self.const[s], self.const[t]
        if ct is not None:
            self.addi(d, s, sign * (ct << shift))
        elif cs is not None and shift == 0 and sign == 1:
            self.addi(d, t, cs)
        elif d != PC:
            self.ops.append((ADDR, d, s, t, shift, sign))
            self.const[d] = None
            self.new_sym(d)

    def fold(self, base: int, index: int | None, shift: int, imm: int, subtract: bool
             ) -> tuple[int, int | None, int, int, bool]:
        """(base, index, shift, imm, subtract) with known registers folded into imm;
        base -1 means an absolute address."""
        cb = self.const[base]
        ci = None if index is None else self.const[index]
        if index is not None and ci is not None:
            step = (ci << shift) & _MASK
            imm += -step if subtract else step
            index, subtract = None, False
        if cb is not None:
            if index is None:
                return -1, None, 0, cb + imm, False
            if shift == 0 and not subtract:
                return index, None, 0, cb + imm, False
        return base, index, shift, imm, subtract

    def access(self, base: int, index: int | None, shift: int, imm: int, flags: int) -> None:
        base, index, shift, imm, subtract = self.fold(base, index, shift, imm,
                                                      bool(flags & FLAG_SUBTRACT))
        flags = (flags & ~FLAG_SUBTRACT) | (FLAG_SUBTRACT if subtract else 0)
        if base < 0:
            self.ops.append((ACCESS_ABS, 0, 0, 0, _s32(imm), flags))
        else:
            self.ops.append((ACCESS, base, -1 if index is None else index, shift, _s32(imm),
                             flags))

    def address_sym(self, base: int, index: int | None, shift: int, imm: int
                    ) -> tuple[tuple, int | None]:
        """Symbolic address (root, offset); offset None when an unknown index adds in."""
        if index is not None and self.const[index] is None:
            return self.sym[base][0], None
        step = 0 if index is None else (self.const[index] or 0) << shift
        root, off = self.sym[base]
        return root, (off + imm + step) & _MASK

    # -- loads feeding addresses ---------------------------------------------------------
    def load(self, d: int, m: MemOp, base: int, index: int | None, imm: int, width: int,
             signed: bool) -> None:
        """Register *d* loaded from [base + imm (+ index << shift)] by a load at this point."""
        if d == PC:
            return
        root, off = self.address_sym(base, index, m.shift, imm)
        source = self.forwarding(root, off, width)
        if source == -1:
            self.kill(d)
            return
        if source is not None:
            self.addi(d, source, 0)
            return
        fb, fi, fshift, fimm, _sub = self.fold(base, index, m.shift, imm, False)
        meta = fshift | width << 8 | (LOAD_SIGNED if signed else 0)
        self.ops.append((LOAD, d, fb, -1 if fi is None else fi, _s32(fimm), meta))
        self.const[d] = None
        self.new_sym(d)

    def forwarding(self, root: tuple, off: int | None, width: int) -> int | None:
        """-1: the load may read memory this block already wrote (kill); a register: the
        load reads back exactly what that register stored (forward); None: memory at
        block entry is what the load reads (LOAD)."""
        if self.clobbered:
            return -1
        # stores through other roots are assumed not to alias (see the module docs)
        for s_off, s_bytes, src, s_sym in reversed(self.stores.get(root, ())):
            if s_off is None or off is None:
                return -1
            if (s_off - off) & _MASK < width or (off - s_off) & _MASK < s_bytes:
                if (s_off == off and s_bytes == width == 4 and src is not None
                        and self.sym[src] == s_sym):
                    return src
                return -1
        return None

    def record_store(self, insn: Insn, m: MemOp, base: int, imm: int) -> None:
        root, off = self.address_sym(base, m.index, m.shift, imm)
        slots = self.stores.setdefault(root, [])
        if off is not None and m.regs and m.width == 4 and not insn.conditional:
            for k, r in enumerate(m.regs):
                slots.append(((off + 4 * k) & _MASK, 4, r, self.sym[r]))
        else:
            slots.append((off, m.bytes_total, None, None))

    # -- instructions ---------------------------------------------------------------------
    def instruction(self, insn: Insn) -> None:
        if insn.mem is not None:
            handled = self.memory(insn, insn.mem)
        elif insn.klass in _MEMORY_CLASSES and insn.name not in _HINTS:
            # a load/store whose addressing decode.py does not model: count it, unresolved
            store = insn.klass in (_STORE, _STORE_MULTIPLE)
            self.ops.append((UNKNOWN, 0, 0, 0, 0, 4 | (FLAG_STORE if store else 0)))
            self.clobbered = self.clobbered or store
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
                 | (FLAG_CONDITIONAL if insn.conditional else 0)
                 | (0 if insn.name in UNALIGNED_OK else FLAG_STRICT))
        if m.base == PC:
            return self.pc_relative(insn, m, flags)
        imm = m.offset if m.mode != POST else 0
        if m.direction == DB:
            imm -= m.bytes_total
        self.access(m.base, m.index, m.shift, imm, flags)
        handled: set[int] = set()
        if m.is_store:
            self.record_store(insn, m, m.base, imm)
        elif not insn.conditional and not m.subtract_index:
            handled = self.loaded_registers(insn, m, imm)
        if m.writeback and not (not m.is_store and m.base in m.regs):
            handled.add(m.base)
            if insn.conditional:
                self.kill(m.base)
            else:
                delta = m.offset if m.mode in (PRE, POST) else (
                    -m.bytes_total if m.direction == DB else m.bytes_total)
                self.addi(m.base, m.base, delta)
        return handled

    def loaded_registers(self, insn: Insn, m: MemOp, imm: int) -> set[int]:
        """LOAD (or forward) each loaded core register; the base/index last, since the
        others' addresses read it."""
        if not m.regs or (m.writeback and m.base in m.regs):
            return set()
        signed = insn.name in _SIGNED_LOADS
        slots = [(r, imm + m.width * k) for k, r in enumerate(m.regs) if r != PC]
        slots.sort(key=lambda slot: slot[0] in (m.base, m.index))
        for r, offset in slots:
            self.load(r, m, m.base, m.index, offset, m.width, signed)
        return {r for r, _ in slots}

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
        if name in _ALU_OF:
            return {d} if self.alu_insn(name, d, src) else set()
        handler = _ARITH.get(name)
        if handler is None or not handler(self, insn, d, src):
            return set()
        return {d}

    def alu_insn(self, name: str, d: int, src: tuple) -> bool:
        """and/orr/eor/bic/lsl (by register)/lsr/asr/mul/rsb/neg and the extends."""
        kind = _ALU_OF[name]
        if kind in _ALU_UNARY:
            if len(src) != 1 or src[0][0] != "r" or src[0][2]:
                return False  # sxtb r0, r1, ror #8: rotation not modelled
            return self.alu(d, src[0][1], None, 0, kind)
        if len(src) == 1:
            src = (("r", d, 0, 0, False), *src)  # two-operand form: Rdn op= x
        if len(src) != 2 or src[0][0] != "r" or src[0][2] or src[1][2] or PC in (
                src[0][1], src[1][1] if src[1][0] == "r" else 0):
            return False
        x = src[1]
        return self.alu(d, src[0][1], x[1] if x[0] == "r" else None,
                        x[1] if x[0] == "i" else 0, kind)

    def alu(self, d: int, s: int, t: int | None, imm: int, kind: int) -> bool:
        cs = self.const[s]
        ct = imm if t is None else self.const[t]
        if cs is not None and ct is not None:
            self.set_const(d, alu(kind, cs, ct))
        elif t is not None and ct is not None:
            self.ops.append((ALU, d, s, -1, _s32(ct), kind))
            self.const[d] = None
            self.new_sym(d)
        else:
            self.ops.append((ALU, d, s, -1 if t is None else t, _s32(imm), kind))
            self.const[d] = None
            self.new_sym(d)
        return True

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
        kind = _SHIFT_KIND.get(shift_type)
        if kind is None or d == s or PC in (s, t):
            return False
        b.alu(d, t, None, shift, kind)  # d = t >> shift, then d = s +- d
        b.addr(d, s, d, 0, sign)
        return True
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
    kind, value, shift_type, shift, _sub = src[0]
    if kind == "i":
        b.set_const(d, value)
    elif shift_type:
        alu_kind = _SHIFT_KIND.get(shift_type)
        if alu_kind is None or value == PC:
            return False
        b.alu(d, value, None, shift, alu_kind)  # mov.w d, s, asr #k
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


def _arith_bitfield(b: _Builder, insn: Insn, d: int, src: tuple) -> bool:
    """``ubfx``/``sbfx d, s, #lsb, #width`` as two shifts (or shift + mask)."""
    if (len(src) != 3 or src[0][0] != "r" or src[0][1] == PC or src[1][0] != "i"
            or src[2][0] != "i" or not 0 < src[2][1] <= 32 - src[1][1]):
        return False
    s, lsb, width = src[0][1], src[1][1], src[2][1]
    if insn.name == "ubfx":
        b.alu(d, s, None, lsb, ALU_LSR)
        b.alu(d, d, None, (1 << width) - 1, ALU_AND)
    else:
        b.alu(d, s, None, 32 - lsb - width, ALU_LSL)
        b.alu(d, d, None, 32 - width, ALU_ASR)
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


_ARITH: dict[str, Callable[[_Builder, Insn, int, tuple], bool]] = {
    "add": _arith_add, "addw": _arith_add, "sub": _arith_add, "subw": _arith_add,
    "mov": _arith_mov, "movs": _arith_mov, "movw": _arith_mov, "mvn": _arith_mvn,
    "movt": _arith_movt, "adr": _arith_adr, "ubfx": _arith_bitfield,
    "sbfx": _arith_bitfield, "neg": lambda b, _i, d, src: (
        len(src) == 1 and src[0][0] == "r" and not src[0][2]
        and b.alu(d, src[0][1], None, 0, ALU_RSB)),
}


def alu(kind: int, a: int, x: int) -> int:
    """regs[d] of an ALU op with a = regs[s], x = regs[t] or imm (32-bit unsigned)."""
    a &= _MASK
    x &= _MASK
    if kind == ALU_AND:
        return a & x
    if kind == ALU_ORR:
        return a | x
    if kind == ALU_EOR:
        return a ^ x
    if kind == ALU_BIC:
        return a & ~x & _MASK
    if kind in (ALU_LSL, ALU_LSR, ALU_ASR):
        n = x & 0xFF  # register shifts use the bottom byte
        if kind == ALU_LSL:
            return (a << n) & _MASK if n < 32 else 0
        if kind == ALU_LSR:
            return a >> n if n < 32 else 0
        signed = a - (1 << 32) if a & 0x80000000 else a
        return (signed >> min(n, 31)) & _MASK
    if kind == ALU_MUL:
        return (a * x) & _MASK
    if kind == ALU_RSB:
        return (x - a) & _MASK
    if kind in (ALU_UXTB, ALU_SXTB):
        v = a & 0xFF
        return (v - 0x100) & _MASK if kind == ALU_SXTB and v & 0x80 else v
    if kind in (ALU_UXTH, ALU_SXTH):
        v = a & 0xFFFF
        return (v - 0x10000) & _MASK if kind == ALU_SXTH and v & 0x8000 else v
    raise ValueError(f"unknown ALU kind {kind}")


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
        elif code in (LOAD, ALU):
            if op[1] not in needed:
                continue
            needed.discard(op[1])
            needed.update(r for r in (op[2], op[3]) if r >= 0)
        kept.append(op)
    kept.reverse()
    if PC in needed:
        raise AssertionError("address program reads PC at block entry")
    return kept, sum(1 << r for r in needed)


#: Access flags bits 16-31: byte offset of the instruction in its block, so the timing
#: model knows when in the block the access happens (contention on the flash port).
FLAG_OFFSET_SHIFT = 16
_ACCESS_OPS = frozenset((ACCESS, ACCESS_ABS, UNKNOWN))


def _stamp_offsets(ops: list[tuple[int, int, int, int, int, int]], first: int,
                   offset: int) -> None:
    """Mark the accesses appended since *first* with their instruction's block offset."""
    stamp = min(offset, 0xFFFF) << FLAG_OFFSET_SHIFT
    for i in range(first, len(ops)):
        op = ops[i]
        if op[0] in _ACCESS_OPS:
            ops[i] = (*op[:5], _s32(op[5] | stamp))


def address_program(insns: Sequence[Insn], read_literal: ReadLiteral) -> AddressProgram:
    """Compile one block's instructions into its address program.

    *read_literal(address, size)* returns the little-endian value of a literal pool word
    (constants loaded with ``ldr rX, [pc, #imm]`` that later address memory); it may raise
    ``LookupError``/``ValueError``/``TinymeterError`` for addresses it cannot read.
    """
    b = _Builder(read_literal)
    start = insns[0].address if insns else 0
    for insn in insns:
        first = len(b.ops)
        b.instruction(insn)
        _stamp_offsets(b.ops, first, insn.address - start)
    ops, mask = _eliminate_dead(b.ops)
    array = np.array(ops, dtype=np.int32).reshape(len(ops), OP_WORDS)
    return AddressProgram(ops=array, regs_mask=mask)


ReadMemory = Callable[[int, int], "int | None"]


def evaluate(program: AddressProgram, regs: Sequence[int],
             valid: Sequence[bool] | None = None,
             read_memory: ReadMemory | None = None) -> list[Access]:
    """Reference evaluator of *program* over *regs* (16 register values at block entry);
    ``valid`` defaults to all registers valid.  *read_memory(address, size)* returns the
    little-endian value in memory at block entry, or None (LOAD then invalidates, as it
    does without a reader).  ``native/tm_addrprog.h`` must agree."""
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
                    step = (r[b] << (c & 31)) & _MASK
                    address += -step if e & FLAG_SUBTRACT else step
            out.append(_access(address, e, resolved))
        elif code == ACCESS_ABS:
            out.append(_access(d, e, True))
        elif code == UNKNOWN:
            out.append(_access(0, e, False))
        elif code == ADDI:
            r[a], ok[a] = (r[b] + d) & _MASK, ok[b]
        elif code == ADDR:
            r[a], ok[a] = (r[b] + e * ((r[c] << (d & 31)) & _MASK)) & _MASK, ok[b] and ok[c]
        elif code == CONST:
            r[a], ok[a] = d & _MASK, True
        elif code == KILL:
            ok[a] = False
        elif code == LOAD:
            r[a], ok[a] = _load(r, ok, b, c, d, e, read_memory)
        elif code == ALU:
            r[a], ok[a] = alu(e, r[b], r[c] if c >= 0 else d), ok[b] and (c < 0 or ok[c])
        else:
            raise ValueError(f"unknown address-program opcode {code}")
    return out


def _load(r: list[int], ok: list[bool], base: int, index: int, imm: int, meta: int,
          read_memory: ReadMemory | None) -> tuple[int, bool]:
    """Value and validity of a LOAD (see the module table)."""
    if read_memory is None or (base >= 0 and not ok[base]) or (index >= 0 and not ok[index]):
        return 0, False
    address = imm + (r[base] if base >= 0 else 0)
    if index >= 0:
        address += (r[index] << (meta & 31)) & _MASK
    width = (meta >> 8) & 0xF
    if width not in (1, 2, 4):
        return 0, False
    value = read_memory(address & _MASK, width)
    if value is None:
        return 0, False
    value &= (1 << (8 * width)) - 1
    if meta & LOAD_SIGNED and value & (1 << (8 * width - 1)):
        value -= 1 << (8 * width)
    return value & _MASK, True


def static_resolution(insns: Sequence[Insn], program: AddressProgram, *,
                      loads: bool = True) -> tuple[int, int, list[Insn]]:
    """(accesses, unresolved accesses, the unresolved instructions) of one execution
    when every entry register is valid and every LOAD reads (``loads=False``: no memory
    reader, as with ``tm_ap_eval``): resolution never depends on register values, so
    block counts x this give a whole run's unresolved share."""
    ok = [True] * 16
    total = 0
    unresolved: list[Insn] = []
    accessing = [i for i in insns if i.mem is not None
                 or (i.klass in _MEMORY_CLASSES and i.name not in _HINTS)]
    for code, a, b, c, _d, _e in program.ops.tolist():
        if code in (ACCESS, ACCESS_ABS, UNKNOWN):
            good = code == ACCESS_ABS or (code == ACCESS and ok[a] and (b < 0 or ok[b]))
            if not good and total < len(accessing):
                unresolved.append(accessing[total])
            total += 1
        elif code == ADDI:
            ok[a] = ok[b]
        elif code == ADDR:
            ok[a] = ok[b] and ok[c]
        elif code == CONST:
            ok[a] = True
        elif code == KILL:
            ok[a] = False
        elif code in (LOAD, ALU):
            ok[a] = (code == ALU or loads) and (b < 0 or ok[b]) and (c < 0 or ok[c])
    return total, len(unresolved), unresolved


def _access(address: int, flags: int, resolved: bool) -> Access:
    return Access(address=address & _MASK if resolved else 0, bytes=flags & FLAG_BYTES_MASK,
                  is_store=bool(flags & FLAG_STORE), resolved=resolved,
                  conditional=bool(flags & FLAG_CONDITIONAL), strict=bool(flags & FLAG_STRICT))
