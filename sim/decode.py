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
import re
from collections.abc import Callable
from dataclasses import dataclass

import capstone
from capstone import arm_const as A

from tinymeter.sim.classes import classify

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
for _w, _group in ((1, "ldrb ldrsb ldrbt ldrsbt strb strbt ldrexb strexb ldab stlb ldaexb "
                       "stlexb tbb"),
                   (2, "ldrh ldrsh ldrht ldrsht strh strht ldrexh strexh ldah stlh ldaexh "
                       "stlexh tbh"),
                   (4, "ldr ldrt str strt ldrex strex lda stl ldaex stlex ldrd strd")):
    for _n in _group.split():
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
    """capstone handles (plain, and detail mode on first use); create one per run and
    pass it to :func:`decode_block` to avoid re-opening capstone per block (it caches
    no instructions)."""

    def __init__(self) -> None:
        self.cs = capstone.Cs(capstone.CS_ARCH_ARM,
                              capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
        self._detailed: capstone.Cs | None = None
        #: (mnemonic, opcode bits) -> capstone insn_name(): ``disasm_lite`` gives no name,
        #: and a name lookup per instruction would cost as much as the rest of the decode.
        #: The mnemonic alone is ambiguous (``movs r0, r0`` is capstone's ``movs``,
        #: ``movs r0, #0`` its ``mov``); the first halfword's opcode bits settle it.
        self._names: dict[tuple[str, int], str] = {}
        #: (name, mnemonic, operand text) -> the Insn fields after address and size:
        #: the same instruction text recurs across a firmware's blocks
        self.facts: dict[tuple[str, str, str], tuple] = {}

    def name_of(self, mnemonic: str, raw: bytes, address: int) -> str:
        """capstone's ``insn_name()`` of the instruction *raw* printed as *mnemonic*."""
        first = raw[0] | raw[1] << 8
        key = (mnemonic, first >> 4 if len(raw) == 4 else (first >> 6) | 0x10000)
        name = self._names.get(key)
        if name is None:
            insn = next(self.cs.disasm(raw, address, 1))
            name = self._names[key] = insn.insn_name()
        return name

    @property
    def detailed(self) -> capstone.Cs:
        if self._detailed is None:
            self._detailed = capstone.Cs(capstone.CS_ARCH_ARM,
                                         capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
            self._detailed.detail = True
        return self._detailed


def _core(regs: tuple[int, ...] | list[int]) -> frozenset[int]:
    return frozenset(_CORE_REG[r] for r in regs if r in _CORE_REG)


#: Names whose operands :mod:`.addrprog` interprets (everything else only kills).
ARITH_NAMES = _names("""add addw sub subw mov movs movw movt adr lsl mvn and orr eor bic lsr asr
                        mul rsb neg sxtb sxth uxtb uxth ubfx sbfx""")


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
        regs: tuple[int, ...] = ()
        width, count = 4, 2 if is_double else 1
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


def _decode(cs: capstone.Cs, make: Callable[[capstone.CsInsn], Insn], code: bytes,
            address: int) -> tuple[Insn, ...]:
    out: list[Insn] = []
    offset = 0
    while offset < len(code):
        progressed = False
        for raw in cs.disasm(code[offset:], address + offset):
            out.append(make(raw))
            offset += raw.size
            progressed = True
        if offset < len(code) and not progressed:
            log.debug("capstone cannot decode 0x%08x", address + offset)
            out.append(Insn(address=address + offset, size=2, name="?", mnemonic="?",
                            op_str="", klass=classify("?"), conditional=False,
                            regs_read=frozenset(), regs_written=frozenset()))
            offset += 2
    return tuple(out)


def decode_block(code: bytes, address: int, decoder: Decoder | None = None) -> tuple[Insn, ...]:
    """Decode *code* (one block's bytes, run address *address*) instruction by instruction.

    Undecodable halfwords become an ``Insn`` named ``?`` (no exception): the CPU ran
    them, so the block must stay complete.  Conditions come from the printed mnemonic
    (capstone prints IT-block instructions with their condition, ``ldreq``), so
    instructions inside an IT block come out ``conditional``.  Registers and addressing
    modes come from the operand text (fast); :func:`decode_block_detailed` is the
    capstone-detail reference the tests compare it with.
    """
    dec = decoder or Decoder()
    out: list[Insn] = []
    offset = 0
    while offset < len(code):
        progressed = False
        for at, size, mnemonic, op_str in dec.cs.disasm_lite(code[offset:], address + offset):
            name = dec.name_of(mnemonic, code[at - address:at - address + size], at)
            key = (name, mnemonic, op_str)
            facts = dec.facts.get(key)
            if facts is None:
                facts = dec.facts[key] = _facts_fast(name, mnemonic, op_str)
            out.append(Insn(at, size, *facts))
            offset += size
            progressed = True
        if offset < len(code) and not progressed:
            log.debug("capstone cannot decode 0x%08x", address + offset)
            out.append(Insn(address=address + offset, size=2, name="?", mnemonic="?",
                            op_str="", klass=classify("?"), conditional=False,
                            regs_read=frozenset(), regs_written=frozenset()))
            offset += 2
    return tuple(out)


def decode_block_detailed(code: bytes, address: int, decoder: Decoder | None = None
                          ) -> tuple[Insn, ...]:
    """:func:`decode_block` from capstone's detail mode (operand objects and
    ``regs_access()``): ~10x slower, kept as the reference of the fast path."""
    return _decode((decoder or Decoder()).detailed, _insn, code, address)


# ---------------------------------------------------------------------------------------
# Fast path: capstone without detail + the operand text.  Detail mode costs ~50 us per
# instruction in Python (operand objects, regs_access); the printed operands carry the
# same facts at a fraction of the cost.  tests/targets/test_addrprog.py checks this path against
# decode_block_detailed on whole firmware images.

_REG_NAMES: dict[str, int] = {f"r{i}": i for i in range(13)}
_REG_NAMES.update({"sb": 9, "sl": 10, "fp": 11, "ip": 12, "sp": SP, "lr": LR, "pc": PC,
                   "r13": SP, "r14": LR, "r15": PC})
_SHIFTS = {"lsl": A.ARM_SFT_LSL, "lsr": A.ARM_SFT_LSR, "asr": A.ARM_SFT_ASR,
           "ror": A.ARM_SFT_ROR, "rrx": A.ARM_SFT_RRX}
#: Core register names in operand text, in order (``apsr``/``fpscr`` do not match).
_CORE_NAME = re.compile(r"\b(r1[0-5]|r[0-9]|sb|sl|fp|ip|sp|lr|pc)\b")
_TOKENS = re.compile(r"\[[^\]]*\]!?|\{[^}]*\}|[^,\s][^,]*")
_CONDITIONS = _names("eq ne cs hs cc lo mi pl vs vc hi ls ge lt gt le")
#: Instructions that write no core register (besides PC for branches).
_NO_WRITE = _names("""
    cmp cmn tst teq b bx bxns cbz cbnz it nop hint msr dmb dsb isb bkpt wfi wfe sev yield
    cps pld pli udf vcmp vcmpe vmsr tbb tbh clrex dbg csdb ssbb pssbb sevl""")
#: Instructions writing their first two (core) operands.
_TWO_DEST = _names("""
    smull umull smlal umlal umaal smlalbb smlalbt smlaltb smlaltt smlald smlaldx smlsld
    smlsldx""")
#: Destination registers that are also read (accumulators, bitfield inserts, movt).
_READS_DEST = _names("""
    movt bfi bfc smlal umlal umaal smlalbb smlalbt smlaltb smlaltt smlald smlaldx smlsld
    smlsldx""")
#: Two-operand ALU forms ``op Rdn, Rm/#imm`` read their destination.
_BINARY = _names("""
    add adc sub sbc rsb and orr eor bic orn lsl lsr asr ror mul""")


def _imm(text: str) -> int | None:
    try:
        return int(text[1:], 0)
    except ValueError:
        return None


def _tokens(op_str: str) -> list[str]:
    return [t.strip() for t in _TOKENS.findall(op_str)]


def _arith_operands(tokens: list[str]) -> tuple[tuple[str, int, int, int, bool], ...]:
    """``r0, r1, r2, lsl #2`` / ``r0, #4`` as (kind, value, shift type, shift, False)."""
    out: list[tuple[str, int, int, int, bool]] = []
    for tok in tokens:
        if tok[0] == "#":
            value = _imm(tok)
            if value is None:
                return ()
            out.append(("i", value, 0, 0, False))
            continue
        reg = _REG_NAMES.get(tok)
        if reg is not None:
            out.append(("r", reg, 0, 0, False))
            continue
        kind, _, amount = tok.partition(" ")
        shift_type = _SHIFTS.get(kind)
        value = _imm(amount) if amount.startswith("#") else None
        if shift_type is None or value is None or not out or out[-1][0] != "r":
            return ()  # register-shifted register, or not a core operand
        out[-1] = ("r", out[-1][1], shift_type, value, False)
    return tuple(out)


def _mem_fast_multiple(name: str, tokens: list[str]) -> MemOp | None:
    """MemOp from the printed operands of LDM/STM/PUSH/POP and their VFP forms."""
    base: int | None
    if name in ("push", "pop", "vpush", "vpop"):
        base, writeback, listed = SP, True, tokens[0] if tokens else ""
    else:
        if len(tokens) != 2:
            return None
        base_tok = tokens[0]
        writeback = base_tok.endswith("!")
        base = _REG_NAMES.get(base_tok.rstrip("!"))
        listed = tokens[1]
    if base is None:
        return None
    names = [t.strip() for t in listed.strip("{}").split(",")]
    regs: tuple[int, ...] = ()
    if name in _FP_MULTIPLE:
        count = sum(2 if t[:1] == "d" else 1 for t in names)
    else:
        regs = tuple(_REG_NAMES[t] for t in names if t in _REG_NAMES)
        count = len(regs)
    direction = DB if name in ("ldmdb", "stmdb", "push", "vstmdb", "vldmdb", "vpush") else IA
    return MemOp(base=base, index=None, shift=0, offset=0, subtract_index=False,
                 mode=OFFSET, writeback=writeback, width=4, count=count,
                 is_store=name in _STORES, direction=direction, regs=regs)


def _mem_fast(name: str, tokens: list[str]) -> MemOp | None:
    """MemOp from the printed operands of a load/store (see :func:`_mem_single`)."""
    if name in _CORE_MULTIPLE or name in _FP_MULTIPLE:
        return _mem_fast_multiple(name, tokens)
    mem_i = next((i for i, t in enumerate(tokens) if t[0] == "["), None)
    if mem_i is None:
        return None
    mem = tokens[mem_i]
    pre = mem.endswith("!")
    parts = [p.strip() for p in mem.rstrip("!")[1:-1].split(",")]
    base = _REG_NAMES.get(parts[0])
    if base is None:
        return None
    index, shift, offset = None, 0, 0
    for part in parts[1:]:
        if part[0] == "#":
            value = _imm(part)
            if value is None:
                return None
            offset = value
        elif part in _REG_NAMES:
            index = _REG_NAMES[part]
        elif part.startswith("lsl #"):
            value = _imm(part[4:])
            if value is None:
                return None
            shift = value
        else:
            return None
    mode, writeback = (PRE, True) if pre else (OFFSET, False)
    post = tokens[mem_i + 1:]
    if post:
        value = _imm(post[0]) if post[0][0] == "#" else None
        if value is None:
            return None  # register post-index: ARM state only
        mode, writeback, offset = POST, True, value
    transfer = tokens[:mem_i]
    if name in _STORE_EXCLUSIVE:
        transfer = transfer[1:]
    regs: tuple[int, ...] = ()
    if name in _FP_SINGLE:
        width, count = 4, 2 if transfer and transfer[0][:1] == "d" else 1
    else:
        width = _SINGLE_WIDTH[name]
        regs = tuple(_REG_NAMES[t] for t in transfer if t in _REG_NAMES)
        count = 2 if name in ("ldrd", "strd") else 1
    return MemOp(base=base, index=index, shift=shift, offset=offset, subtract_index=False,
                 mode=mode, writeback=writeback, width=width, count=count,
                 is_store=name in _STORES, direction=IA, regs=regs)


def _registers_fast(name: str, op_str: str, tokens: list[str], mem: MemOp | None
                    ) -> tuple[frozenset[int], frozenset[int]]:
    """(read, written) core registers from the printed operands."""
    mentioned = [_REG_NAMES[r] for r in _CORE_NAME.findall(op_str)]
    if mem is not None:
        return _mem_registers(name, mem, mentioned)
    for k, tok in enumerate(tokens):  # writeback of unmodelled forms: ldc [r4, #8]!, [r4], #8
        post_index = k + 1 < len(tokens) and tokens[k + 1][0] == "#"
        if tok[0] == "[" and (tok[-1] == "!" or post_index):
            base = _REG_NAMES.get(tok_base(tok))
            return frozenset(mentioned), frozenset(() if base is None else (base,))
    if name in _NO_WRITE:
        return frozenset(mentioned), frozenset({PC} if name in _BRANCHES else ())
    if name in ("bl", "blx", "blxns", "svc"):  # svc: capstone's view (exception return)
        return frozenset(mentioned), frozenset((LR, PC))
    leading = []
    for tok in tokens:
        reg = _REG_NAMES.get(tok)
        if reg is None:
            break
        leading.append(reg)
    if name in _TWO_DEST:
        dests = leading[:2]
    elif name == "vmov" and len(leading) < len(tokens):
        dests = leading
    else:
        dests = leading[:1]
    keep_dest = name in _READS_DEST or (name in _BINARY and len(tokens) == 2)
    read = set(mentioned[len(dests):]) | (set(dests) if keep_dest else set())
    # a base with writeback in an unmodelled form (``fldmdbx ip!, {...}``)
    written = set(dests) | {_REG_NAMES[t[:-1]] for t in tokens
                            if t[-1] == "!" and t[:-1] in _REG_NAMES}
    return frozenset(read), frozenset(written)


_BRANCHES = _names("b bx cbz cbnz")


def tok_base(mem_token: str) -> str:
    """Base register name of a ``[rN, ...]`` operand."""
    return mem_token.strip("[]!").split(",", 1)[0].split(":", 1)[0].strip()


def _mem_registers(name: str, mem: MemOp, mentioned: list[int]
                   ) -> tuple[frozenset[int], frozenset[int]]:
    written = {mem.base} if mem.writeback else set()
    read = {mem.base} | ({mem.index} if mem.index is not None else set())
    if mem.is_store:
        read |= set(mem.regs)
        if name in _STORE_EXCLUSIVE:
            written.add(mentioned[0])
    else:
        written |= set(mem.regs)
    return frozenset(read), frozenset(written)


def _facts_fast(name: str, mnemonic: str, op_str: str) -> tuple:
    """Every :class:`Insn` field after address and size, from the printed instruction
    (nothing in them depends on the address: PC-relative operands print as offsets)."""
    tokens = _tokens(op_str)
    mem = (_mem_fast(name, tokens) if name in _SINGLE_WIDTH or name in _FP_SINGLE
           or name in _CORE_MULTIPLE or name in _FP_MULTIPLE else None)
    read, written = _registers_fast(name, op_str, tokens, mem)
    base = mnemonic.split(".", 1)[0]
    tail = base[len(name):] if base.startswith(name) else ""
    if tail[:1] == "w" and name in ("mov", "add", "sub"):
        tail = tail[1:]  # movw/addw/subw are capstone's mov/add/sub
    flag_cond = tail[:1] == "s" and tail[1:] in _CONDITIONS
    conditional = (name != "it" and (tail in _CONDITIONS or flag_cond)) or name in ("cbz",
                                                                                     "cbnz")
    return (name, mnemonic, op_str, classify(name), conditional, read, written, mem,
            _arith_operands(tokens) if name in ARITH_NAMES else (),
            tail[:1] == "s" and tail[1:] in _CONDITIONS | {""})


def insn_facts(name: str, mnemonic: str, op_str: str
               ) -> tuple[frozenset[int], frozenset[int], frozenset[int]]:
    """(core registers read, written, address registers) of one printed instruction:
    what :mod:`.hazards` needs to find dependencies between neighbours."""
    facts = _facts_fast(name, mnemonic, op_str)
    read, written, mem = facts[5], facts[6], facts[7]
    address: frozenset[int] = frozenset()
    if mem is not None:
        address = frozenset((mem.base,) if mem.index is None else (mem.base, mem.index))
    return read, written, address
