"""Decode one translated block into instructions with their register and memory facts.

Why a second decoder next to :mod:`.blocks`: the cost model only needs mnemonics
(fast, no capstone detail mode), but reconstructing data addresses needs each
instruction's registers and addressing mode.  This runs once per *distinct* block
(from the native hook's cost callback), so capstone's detail mode is affordable here;
the per-execution work happens in the native evaluator of :mod:`.addrprog`.

Register numbers are Arm core numbers 0-15 (SP = 13, LR = 14, PC = 15).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import capstone
from capstone import arm_const as A

from tinymeter.sim.blocks import classify

log = logging.getLogger(__name__)

#: Addressing modes of :class:`MemOp`.
OFFSET, PRE, POST = "offset", "pre", "post"
#: Multiple-transfer directions: increment after (also every single transfer), decrement before.
IA, DB = "ia", "db"

SP, LR, PC = 13, 14, 15

_CORE_REG: dict[int, int] = {
    getattr(A, f"ARM_REG_R{i}"): i for i in range(13)
}
_CORE_REG.update({A.ARM_REG_SP: SP, A.ARM_REG_LR: LR, A.ARM_REG_PC: PC})
_SREG = frozenset(getattr(A, f"ARM_REG_S{i}") for i in range(32))
_DREG = frozenset(getattr(A, f"ARM_REG_D{i}") for i in range(32))
_NO_CONDITION = (A.ARM_CC_AL, A.ARM_CC_INVALID)

#: Bytes per register of single and dual transfers, by capstone name.
_SINGLE_WIDTH: dict[str, int] = {}
for _w, _names in ((1, "ldrb ldrsb ldrbt ldrsbt strb strbt ldrexb strexb ldab stlb ldaexb "
                       "stlexb tbb"),
                   (2, "ldrh ldrsh ldrht ldrsht strh strht ldrexh strexh ldah stlh ldaexh "
                       "stlexh tbh"),
                   (4, "ldr ldrt str strt ldrex strex lda stl ldaex stlex ldrd strd")):
    for _n in _names.split():
        _SINGLE_WIDTH[_n] = _w


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STORES = _names("str strb strh strd strt strbt strht strex strexb strexh stl stlb stlh "
                 "stlex stlexb stlexh stm stmdb push vstr vstmia vstmdb vpush")
#: Status-result stores: the first register operand is written (success flag), not stored.
_STORE_EXCLUSIVE = _names("strex strexb strexh stlex stlexb stlexh")
_CORE_MULTIPLE = frozenset(("ldm", "ldmdb", "stm", "stmdb", "push", "pop"))
_FP_MULTIPLE = frozenset(("vldmia", "vldmdb", "vstmia", "vstmdb", "vpush", "vpop"))
_FP_SINGLE = frozenset(("vldr", "vstr"))


@dataclass(frozen=True, slots=True)
class MemOp:
    """One memory-accessing instruction's address computation.

    ``offset`` is the signed immediate: added before the access for ``offset``/``pre``
    addressing, the writeback amount for ``post``.  ``width`` x ``count`` is the total
    number of bytes moved (LDRD and VLDR.64 are 2 x 4 bytes, LDM of n registers n x 4).
    ``regs`` are the core registers transferred (loaded or stored), in list order.
    """

    base: int
    index: int | None
    shift: int
    offset: int
    subtract_index: bool
    mode: str
    writeback: bool
    width: int
    count: int
    is_store: bool
    direction: str
    regs: tuple[int, ...] = ()

    @property
    def bytes_total(self) -> int:
        return self.width * self.count


@dataclass(frozen=True, slots=True)
class Insn:
    """One decoded Thumb instruction (``name`` is capstone's ``insn_name()``, ``?`` when
    capstone cannot decode the halfword)."""

    address: int
    size: int
    name: str
    mnemonic: str
    op_str: str
    klass: int
    conditional: bool
    regs_read: frozenset[int]
    regs_written: frozenset[int]
    mem: MemOp | None = None
    #: Register/immediate operands for pointer arithmetic, as (kind, value, shift_type,
    #: shift, subtracted) with kind "r" (core register number) or "i" (immediate);
    #: only filled for instructions :mod:`.addrprog` models (add/sub/mov/...).
    operands: tuple[tuple[str, int, int, int, bool], ...] = ()
    #: Writes the condition flags (``adds``): not needed for addresses, kept for users.
    sets_flags: bool = False


class Decoder:
    """A capstone handle in detail mode; create one per run and pass it to
    :func:`decode_block` to avoid re-opening capstone per block (nothing is cached)."""

    def __init__(self) -> None:
        self.cs = capstone.Cs(capstone.CS_ARCH_ARM,
                              capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
        self.cs.detail = True


def _core(regs: tuple[int, ...] | list[int]) -> frozenset[int]:
    return frozenset(_CORE_REG[r] for r in regs if r in _CORE_REG)


#: Names whose operands :mod:`.addrprog` interprets (everything else only kills).
ARITH_NAMES = frozenset(("add", "addw", "sub", "subw", "mov", "movs", "movw", "movt", "adr",
                         "lsl", "mvn"))


def _operands(insn: capstone.CsInsn) -> tuple[tuple[str, int, int, int, bool], ...]:
    out = []
    for op in insn.operands:
        if op.type == A.ARM_OP_REG:
            reg = _CORE_REG.get(op.reg)
            if reg is None:
                return ()
            out.append(("r", reg, op.shift.type, op.shift.value, bool(op.subtracted)))
        elif op.type == A.ARM_OP_IMM:
            out.append(("i", op.imm, 0, 0, bool(op.subtracted)))
        else:
            return ()
    return tuple(out)


def _mem_single(insn: capstone.CsInsn, name: str, ops: list) -> MemOp | None:
    """LDR/STR/LDRD/STRD/LDREX/TBB/VLDR...: one MEM operand (+ post-index immediate)."""
    mem_i = next((i for i, op in enumerate(ops) if op.type == A.ARM_OP_MEM), None)
    if mem_i is None:
        return None
    mem = ops[mem_i].mem
    base = _CORE_REG.get(mem.base)
    if base is None:
        return None
    index = _CORE_REG.get(mem.index) if mem.index else None
    if mem.index and index is None:
        return None
    shift = 0
    if index is not None:  # capstone fills lshift for TBH but shift.value for LDR
        sh = ops[mem_i].shift
        shift = max(mem.lshift, sh.value if sh.type == A.ARM_SFT_LSL else 0)
    offset, mode = mem.disp, OFFSET
    post = ops[mem_i + 1:] if mem_i + 1 < len(ops) else []
    if insn.writeback:
        mode = PRE
        if post:
            mode = POST
            if post[0].type != A.ARM_OP_IMM:
                return None  # register post-index: ARM state only
            offset = -abs(post[0].imm) if post[0].subtracted else post[0].imm
    transfer = [op for op in ops[:mem_i] if op.type == A.ARM_OP_REG]
    if name in _STORE_EXCLUSIVE:
        transfer = transfer[1:]
    if name in _FP_SINGLE:
        is_double = bool(transfer) and transfer[0].reg in _DREG
        width, count, regs = 4, 2 if is_double else 1, ()
    else:
        width = _SINGLE_WIDTH[name]
        regs = tuple(_CORE_REG[op.reg] for op in transfer if op.reg in _CORE_REG)
        count = 2 if name in ("ldrd", "strd") else 1
    return MemOp(base=base, index=index, shift=shift, offset=offset,
                 subtract_index=bool(ops[mem_i].subtracted) and index is not None,
                 mode=mode, writeback=bool(insn.writeback), width=width, count=count,
                 is_store=name in _STORES, direction=IA, regs=regs)


def _mem_multiple(insn: capstone.CsInsn, name: str, ops: list) -> MemOp | None:
    """LDM/STM/PUSH/POP and their VFP forms: base register + register list."""
    if name in ("push", "pop", "vpush", "vpop"):
        base, writeback, listed = SP, True, ops
    else:
        if not ops or ops[0].type != A.ARM_OP_REG or ops[0].reg not in _CORE_REG:
            return None
        base, writeback, listed = _CORE_REG[ops[0].reg], bool(insn.writeback), ops[1:]
    regs = tuple(_CORE_REG[op.reg] for op in listed
                 if op.type == A.ARM_OP_REG and op.reg in _CORE_REG)
    if name in _FP_MULTIPLE:
        doubles = sum(1 for op in listed if op.type == A.ARM_OP_REG and op.reg in _DREG)
        singles = sum(1 for op in listed if op.type == A.ARM_OP_REG and op.reg in _SREG)
        count, regs = 2 * doubles + singles, ()
    else:
        count = len(regs)
    direction = DB if name in ("ldmdb", "stmdb", "push", "vstmdb", "vldmdb", "vpush") else IA
    return MemOp(base=base, index=None, shift=0, offset=0, subtract_index=False,
                 mode=OFFSET, writeback=writeback, width=4, count=count,
                 is_store=name in _STORES, direction=direction, regs=regs)


def _mem_op(insn: capstone.CsInsn, name: str) -> MemOp | None:
    if name in _CORE_MULTIPLE or name in _FP_MULTIPLE:
        return _mem_multiple(insn, name, insn.operands)
    if name in _SINGLE_WIDTH or name in _FP_SINGLE:
        return _mem_single(insn, name, insn.operands)
    return None


def _insn(insn: capstone.CsInsn) -> Insn:
    name = insn.insn_name()
    read, written = insn.regs_access()
    mem = _mem_op(insn, name)
    regs_read, regs_written = _core(read), _core(written)
    if mem is not None:
        # capstone omits SP for VPUSH/VPOP and the base of some writeback forms
        regs_read |= {mem.base} | ({mem.index} if mem.index is not None else set())
        if mem.writeback:
            regs_written |= {mem.base}
        if not mem.is_store:
            regs_written |= set(mem.regs)
    conditional = (name != "it" and insn.cc not in _NO_CONDITION) or name in ("cbz", "cbnz")
    return Insn(address=insn.address, size=insn.size, name=name, mnemonic=insn.mnemonic,
                op_str=insn.op_str, klass=classify(name), conditional=conditional,
                regs_read=regs_read, regs_written=regs_written, mem=mem,
                operands=_operands(insn) if name in ARITH_NAMES else (),
                sets_flags=bool(insn.update_flags))


def decode_block(code: bytes, address: int, decoder: Decoder | None = None) -> tuple[Insn, ...]:
    """Decode *code* (one block's bytes, run address *address*) instruction by instruction.

    Undecodable halfwords become an ``Insn`` named ``?`` (no exception): the CPU ran
    them, so the block must stay complete.  capstone tracks IT-block state within one
    call, so instructions inside an IT block come out ``conditional``.
    """
    cs = (decoder or Decoder()).cs
    out: list[Insn] = []
    offset = 0
    while offset < len(code):
        progressed = False
        for raw in cs.disasm(code[offset:], address + offset):
            out.append(_insn(raw))
            offset += raw.size
            progressed = True
        if offset < len(code) and not progressed:
            log.debug("capstone cannot decode 0x%08x", address + offset)
            out.append(Insn(address=address + offset, size=2, name="?", mnemonic="?",
                            op_str="", klass=classify("?"), conditional=False,
                            regs_read=frozenset(), regs_written=frozenset()))
            offset += 2
    return tuple(out)
