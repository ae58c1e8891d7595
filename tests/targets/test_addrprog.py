"""Address programs (sim/decode.py, sim/addrprog.py, sim/native/tm_addrprog.h).

Unit tests assemble Thumb snippets with the Arm toolchain and check decoding, the
compiled program and the accesses it evaluates to, derived by hand from the snippet
and the register values at block entry.  The C evaluator is compiled with the host C
compiler and must agree with the Python reference on random programs.  The ground
truth test (``test_ground_truth_*``) runs real firmware with Python block and memory
hooks and requires every resolved access to equal the real one.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from tinymeter.core.errors import BuildError
from tinymeter.sim import addrprog as ap
from tinymeter.sim.addrprog import Access, AddressProgram, address_program, evaluate
from tinymeter.sim.decode import DB, IA, POST, PRE, Decoder, MemOp, decode_block
from tinymeter.sim.testfw import assemble, assemble_argv, toolchain_available

needs_gcc = pytest.mark.skipif(not toolchain_available(), reason="arm-none-eabi-gcc missing")

BASE = 0x08000000
#: Register values at block entry: r_i = 0x20000000 + 0x100 * i, SP = 0x20008000.
REGS = [0x20000000 + 0x100 * i for i in range(16)]
REGS[13] = 0x20008000


@pytest.fixture(scope="module")
def asm(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("asm")
    count = iter(range(1 << 30))

    def _asm(text: str, cpu: str = "cortex-m4") -> bytes:
        fpu = "fpv4-sp-d16" if cpu == "cortex-m4" else None
        return assemble(text, root / str(next(count)), cpu=cpu, fpu=fpu)

    return _asm


def _compile(code: bytes) -> tuple[tuple, AddressProgram]:
    insns = decode_block(code, BASE)

    def literal(address: int, size: int) -> int:
        offset = address - BASE
        if not 0 <= offset <= len(code) - size:
            raise LookupError(f"no literal at 0x{address:08x}")
        return int.from_bytes(code[offset:offset + size], "little")

    return insns, address_program(insns, literal)


def _acc(address: int, size: int, store: bool = False, cond: bool = False,
         strict: bool = False) -> Access:
    return Access(address=address, bytes=size, is_store=store, resolved=True, conditional=cond,
                  strict=strict)


UNRESOLVED_LOAD4 = Access(address=0, bytes=4, is_store=False, resolved=False, conditional=False)


# ---------------------------------------------------------------------------------------
# decode_block


def test_assemble_argv_is_exact() -> None:
    assert assemble_argv(Path("a.s"), Path("a.o"), "cortex-m0plus") == [
        "arm-none-eabi-gcc", "-mcpu=cortex-m0plus", "-mthumb", "-c", "-x", "assembler", "a.s",
        "-o", "a.o"]
    assert assemble_argv(Path("a.s"), Path("a.o"), "cortex-m4", "fpv4-sp-d16")[3:5] == [
        "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]


@needs_gcc
def test_decode_addressing_modes(asm) -> None:
    insns = decode_block(asm("""
        ldr r0, [r1, #4]
        ldr r0, [r1], #-4
        ldrb r0, [r1, #-8]!
        ldr.w r0, [r1, r2, lsl #2]
        ldrd r4, r5, [r2, #8]
        push {r4, r5, lr}
        vldmdb r0!, {d0-d1}
        strex r2, r0, [r1]
    """), BASE)
    m = [i.mem for i in insns]
    assert [i.name for i in insns] == ["ldr", "ldr", "ldrb", "ldr", "ldrd", "push", "vldmdb",
                                       "strex"]
    assert m[0] == MemOp(base=1, index=None, shift=0, offset=4, subtract_index=False,
                         mode="offset", writeback=False, width=4, count=1, is_store=False,
                         direction=IA, regs=(0,))
    assert (m[1].mode, m[1].offset, m[1].writeback) == (POST, -4, True)
    assert (m[2].mode, m[2].offset, m[2].width) == (PRE, -8, 1)
    assert (m[3].index, m[3].shift) == (2, 2)
    assert (m[4].width, m[4].count, m[4].regs) == (4, 2, (4, 5))
    assert (m[5].base, m[5].count, m[5].direction, m[5].is_store) == (13, 3, DB, True)
    assert (m[6].base, m[6].count, m[6].width, m[6].direction, m[6].writeback) == (0, 4, 4, DB,
                                                                                   True)
    assert (m[7].is_store, m[7].regs) == (True, (0,))
    assert insns[1].regs_written == {0, 1} and insns[1].regs_read == {1}
    assert insns[5].regs_read == {4, 5, 13, 14} and insns[5].regs_written == {13}
    assert insns[7].regs_written == {2}  # strex status register


@needs_gcc
def test_decode_conditional_and_undecodable(asm) -> None:
    code = asm("""
        cmp r0, #0
        it eq
        ldreq r1, [r2]
        bne 1f
        1: nop
    """)
    insns = decode_block(code + b"\xff\xff", BASE)
    assert [i.conditional for i in insns] == [False, False, True, True, False, False]
    assert insns[-1].name == "?" and insns[-1].size == 2 and insns[-1].mem is None


# ---------------------------------------------------------------------------------------
# address_program + evaluate, Thumb-2 (M4)


@needs_gcc
def test_single_transfers_and_writeback(asm) -> None:
    _, prog = _compile(asm("""
        ldr r3, [r1, #4]
        ldr r3, [r1], #-4
        ldrb r3, [r1, #-8]!
        ldrsh r3, [r1, #2]
        str r3, [r2, r4, lsl #2]
        ldrd r6, r7, [r2, #8]
        strd r6, r7, [sp, #-8]!
        ldr r0, [r0]
        ldr r0, [r0]
    """))
    r1 = REGS[1]
    assert evaluate(prog, REGS) == [
        _acc(r1 + 4, 4), _acc(r1, 4), _acc(r1 - 4 - 8, 1), _acc(r1 - 12 + 2, 2),
        _acc(REGS[2] + 4 * REGS[4] & 0xFFFFFFFF, 4, store=True),
        _acc(REGS[2] + 8, 8, strict=True),  # LDRD/STRD fault when unaligned
        _acc(REGS[13] - 8, 8, store=True, strict=True),
        _acc(REGS[0], 4), UNRESOLVED_LOAD4]  # r0 was loaded: the second address is data
    assert prog.regs_mask == (1 << 0) | (1 << 1) | (1 << 2) | (1 << 4) | (1 << 13)


@needs_gcc
def test_multiples_push_pop_and_vfp(asm) -> None:
    _, prog = _compile(asm("""
        push {r4, r5, r6, lr}
        vpush {s16-s17}
        sub sp, #16
        vldr s0, [r1, #8]
        vldr d1, [r1, #-8]
        vldmia r0!, {s0-s3}
        vstmdb r0!, {d0-d1}
        vstr s0, [sp, #4]
        ldm r2!, {r3, r8}
        stmdb r2!, {r3, r8}
        add sp, #16
        vpop {s16-s17}
        pop {r4, r5, r6, pc}
    """))
    sp, r0 = REGS[13], REGS[0]
    assert evaluate(prog, REGS) == [
        _acc(sp - 16, 16, store=True, strict=True), _acc(sp - 24, 8, store=True, strict=True),
        _acc(REGS[1] + 8, 4, strict=True), _acc(REGS[1] - 8, 8, strict=True),
        _acc(r0, 16, strict=True), _acc(r0 + 16 - 16, 16, store=True, strict=True),
        _acc(sp - 40 + 4, 4, store=True, strict=True),
        _acc(REGS[2], 8, strict=True), _acc(REGS[2], 8, store=True, strict=True),
        _acc(sp - 24, 8, strict=True), _acc(sp - 16, 16, strict=True)]
    ops = prog.ops
    # push: ACCESS sp-16 then ADDI sp, sp, -16 (the writeback follows its access)
    assert ops[0].tolist() == [ap.ACCESS, 13, -1, 0, -16, 16 | ap.FLAG_STORE | ap.FLAG_STRICT]
    assert ops[1].tolist() == [ap.ADDI, 13, 13, 0, -16, 0]


@needs_gcc
def test_literal_pool_movw_movt_and_adr(asm) -> None:
    code = asm("""
        ldr r0, 1f
        ldr r1, [r0, #4]
        movw r2, #0x1234
        movt r2, #0x2000
        ldrh r3, [r2, #2]
        adr r4, 1f
        ldr r5, [r4]
        vldr s0, 1f
        b 2f
        .align 2
        1: .word 0x20004000
        2: nop
    """)
    insns, prog = _compile(code)
    pool = next(i.address for i in insns if i.name == "b") + 2
    pool = (pool + 3) & ~3
    assert evaluate(prog, REGS) == [
        _acc(pool, 4), _acc(0x20004004, 4), _acc(0x20001236, 2), _acc(pool, 4),
        _acc(pool, 4, strict=True)]  # VLDR must be word aligned
    assert prog.regs_mask == 0  # everything is static
    assert set(prog.ops[:, 0].tolist()) == {ap.ACCESS_ABS}


@needs_gcc
def test_pointer_arithmetic(asm) -> None:
    _, prog = _compile(asm("""
        add.w r0, r1, r2, lsl #2
        ldr r3, [r0]
        sub.w r0, r0, r2, lsl #1
        ldr r3, [r0, #-4]
        adds r5, r1, #12
        subs r5, #4
        ldrb r3, [r5]
        mov r6, r1
        add r6, r2
        ldrb r3, [r6, #1]
        add r7, sp, #8
        ldr r3, [r7]
        lsl r8, r2, #3
        ldr r3, [r1, r8]
        lsls r2, r2, #2
        ldr r3, [r1, r2]
        mul r9, r1, r2
        ldr r3, [r9]
        udiv r9, r1, r2
        ldr r3, [r9]
    """))
    r1, r2 = REGS[1], REGS[2]
    mask = 0xFFFFFFFF
    assert evaluate(prog, REGS) == [
        _acc(r1 + 4 * r2 & mask, 4), _acc(r1 + 2 * r2 - 4 & mask, 4), _acc(r1 + 8, 1),
        _acc(r1 + r2 + 1 & mask, 1), _acc(REGS[13] + 8, 4), _acc(r1 + 8 * r2 & mask, 4),
        _acc(r1 + 4 * r2 & mask, 4), _acc(r1 * (4 * r2) & mask, 4),
        UNRESOLVED_LOAD4]  # udiv is not modelled


@needs_gcc
def test_masked_and_extended_indices(asm) -> None:
    """Table lookups: and/uxtb/sxth/lsr/asr/eor/orr/bic/rsb/neg feeding an address."""
    _, prog = _compile(asm("""
        and r0, r1, #15
        ldr r2, [r3, r0, lsl #2]
        uxtb r4, r5
        ldrb r2, [r3, r4]
        sxth r4, r5
        ldrh r2, [r3, r4]
        lsrs r4, r5, #3
        asr r6, r5, r0
        eor r7, r4, r6
        orr r7, r7, #1
        bic r7, r7, #2
        ldr r2, [r3, r7]
        rsb r4, r1, #64
        negs r6, r1
        add r6, r4
        ldr r2, [r3, r6]
    """))
    r1, r3, r5 = REGS[1], REGS[3], 0xFFFF8123
    regs = list(REGS)
    regs[5] = r5
    m = 0xFFFFFFFF
    shifted = (r5 - (1 << 32)) >> (r1 & 15)
    mixed = (((r5 >> 3) ^ (shifted & m)) | 1) & ~2
    assert evaluate(prog, regs) == [
        _acc(r3 + 4 * (r1 & 15), 4), _acc(r3 + 0x23, 1), _acc(r3 + 0xFFFF8123 & m, 2),
        _acc(r3 + mixed & m, 4), _acc(r3 + (64 - r1) - r1 & m, 4)]
    assert ap.ALU in prog.ops[:, 0].tolist()


@needs_gcc
def test_bitfields_and_shifted_operands(asm) -> None:
    """The optimized im2col's index arithmetic: asr/ubfx/sbfx and shifted mov/add."""
    _, prog = _compile(asm("""
        mov.w ip, r2, asr #2
        and.w r3, r2, #1
        add.w r3, r3, ip, lsl #1
        ubfx ip, r2, #1, #1
        add.w r3, ip, r3, lsl #1
        strh.w r6, [r0, r3, lsl #1]
        sbfx r4, r5, #4, #8
        ldrb r6, [r1, r4]
        add.w r4, r1, r5, lsr #4
        ldrb r6, [r4]
        sub.w r4, r1, r5, asr #28
        ldrb r6, [r4]
    """))
    regs = list(REGS)
    regs[2], regs[5] = 0x37, 0x80000F70
    r2, r5 = regs[2], regs[5]
    index = ((r2 & 1) + ((r2 >> 2) << 1) << 1) + ((r2 >> 1) & 1)
    field = ((r5 >> 4) & 0xFF) - 0x100 if (r5 >> 4) & 0x80 else (r5 >> 4) & 0xFF
    m = 0xFFFFFFFF
    assert evaluate(prog, regs) == [
        _acc(REGS[0] + 2 * index, 2, store=True), _acc(REGS[1] + field & m, 1),
        _acc(REGS[1] + (r5 >> 4) & m, 1), _acc(REGS[1] - (-8) & m, 1)]


@needs_gcc
def test_loaded_pointers_spills_and_static_resolution(asm) -> None:
    """LOAD reads pointers the block loads; a spill/reload forwards the register; a
    store that may alias kills; static_resolution counts what stays unresolved."""
    insns, prog = _compile(asm("""
        ldr r3, [r0, #0x44]
        ldrb r4, [r3, #2]
        str r1, [sp, #8]
        ldr r2, [sp, #8]
        ldr r4, [r2]
        str r5, [r6, r7]
        ldr r2, [r6, #4]
        ldr r4, [r2]
        ldr r2, [r0, #0x48]
        ldrsb r4, [r1, r2]
    """))
    memory = {REGS[0] + 0x44: 0x20001000, REGS[0] + 0x48: 0xFFFFFFF0}

    def read(address: int, size: int) -> int | None:
        return memory.get(address)

    got = evaluate(prog, REGS, None, read)
    assert got[1] == _acc(0x20001002, 1)            # through the loaded pointer
    assert got[4] == _acc(REGS[1], 4)               # reload of the spill: r1 forwarded
    assert got[7] == UNRESOLVED_LOAD4               # r6 + 4 may have been stored just before
    assert got[9] == _acc(REGS[1] - 16 & 0xFFFFFFFF, 1)
    assert [a.resolved for a in evaluate(prog, REGS)] == [  # no memory reader: LOAD kills
        True, False, True, True, True, True, True, False, True, False]
    assert ap.static_resolution(insns, prog)[:2] == (10, 1)
    total, unresolved, which = ap.static_resolution(insns, prog, loads=False)
    assert (total, unresolved) == (10, 3)
    assert [i.op_str for i in which] == ["r4, [r3, #2]", "r4, [r2]", "r4, [r1, r2]"]


@needs_gcc
def test_table_branches_read_memory(asm) -> None:
    code = asm("tbb [pc, r1]")
    _, prog = _compile(code)
    assert evaluate(prog, [0] + [3] + [0] * 14) == [_acc(BASE + 4 + 3, 1)]
    _, prog = _compile(asm("nop\ntbh [pc, r2, lsl #1]"))
    assert evaluate(prog, [0, 0, 5] + [0] * 13) == [_acc(BASE + 2 + 4 + 10, 2)]
    _, prog = _compile(asm("tbh [r0, r1, lsl #1]"))
    assert evaluate(prog, [0x100, 7] + [0] * 14) == [_acc(0x100 + 14, 2)]
    assert prog.regs_mask == 0b11


@needs_gcc
def test_it_block_access_is_conditional_and_its_writes_invalidate(asm) -> None:
    _, prog = _compile(asm("""
        cmp r0, #0
        itt eq
        ldreq r1, [r2], #4
        addeq r3, #4
        ldr r4, [r2]
        ldr r4, [r3]
        ldr r4, [r5]
    """))
    assert evaluate(prog, REGS) == [
        _acc(REGS[2], 4, cond=True), UNRESOLVED_LOAD4, UNRESOLVED_LOAD4, _acc(REGS[5], 4)]


@needs_gcc
def test_dead_ops_are_dropped_and_mask_is_minimal(asm) -> None:
    _, prog = _compile(asm("""
        adds r0, r0, #1
        mul r1, r2, r3
        ldr r4, [r5, #4]!
        ldr r6, [r7]
    """))
    # the add/mul/writeback feed no later access: only the two accesses remain, each with
    # its instruction's byte offset in the block (ADDS 2 + MUL.W 4 bytes, LDR.W 4 more)
    offset = 1 << ap.FLAG_OFFSET_SHIFT
    assert prog.ops.tolist() == [[ap.ACCESS, 5, -1, 0, 4, 4 | 6 * offset],
                                 [ap.ACCESS, 7, -1, 0, 0, 4 | 10 * offset]]
    assert prog.regs_mask == (1 << 5) | (1 << 7)


# ---------------------------------------------------------------------------------------
# Thumb-1 (ARMv6-M)


@needs_gcc
def test_armv6m_forms(asm) -> None:
    _, prog = _compile(asm("""
        push {r4, r5, r6, lr}
        ldm r0!, {r1, r2}
        lsls r4, r3, #2
        adds r4, r5, r4
        ldr r6, [r4, r0]
        add r5, sp, #8
        ldrsb r6, [r5, r3]
        subs r5, #1
        strb r6, [r5]
        ldm r0, {r0, r3}
        ldr r6, [r0, #4]
        add r8, r5
        mov r7, r8
        ldr r6, [r7]
        pop {r4, r5, r6, pc}
    """, cpu="cortex-m0plus"))
    r0, r3, r5, sp = REGS[0], REGS[3], REGS[5], REGS[13]
    mask = 0xFFFFFFFF
    assert evaluate(prog, REGS) == [
        _acc(sp - 16, 16, store=True, strict=True), _acc(r0, 8, strict=True),
        _acc(r5 + 4 * r3 + r0 + 8 & mask, 4),
        _acc(sp - 8 + r3 & mask, 1), _acc(sp - 9, 1, store=True), _acc(r0 + 8, 8, strict=True),
        UNRESOLVED_LOAD4,  # r0 was loaded by the ldm without writeback
        _acc(REGS[8] + sp - 9 & mask, 4), _acc(sp - 16, 16, strict=True)]


# ---------------------------------------------------------------------------------------
# the C evaluator agrees with the Python reference


_HARNESS = r"""
#include <stdint.h>
#include "tm_addrprog.h"
typedef struct { uint32_t n; uint32_t rec[4096][3]; } tm_log;
static void tm_log_access(void *user, uint32_t a, uint32_t b, uint32_t f) {
    tm_log *log = (tm_log *)user;
    if (log->n < 4096) { log->rec[log->n][0] = a; log->rec[log->n][1] = b;
                         log->rec[log->n][2] = f; log->n++; }
}
static int tm_test_read(void *user, uint32_t address, uint32_t bytes, uint32_t *value) {
    (void)user; (void)bytes;
    if ((address >> 28) == 0xFu) return 0;
    *value = address * 2654435761u;
    return 1;
}
void tm_test_eval(const int32_t *ops, uint32_t n, uint32_t *regs, uint8_t *valid,
                  tm_log *log, int with_memory) {
    if (with_memory) tm_ap_eval_mem(ops, n, regs, valid, tm_log_access, log, tm_test_read, 0);
    else tm_ap_eval(ops, n, regs, valid, tm_log_access, log);
}
"""


@pytest.fixture(scope="module")
def c_eval(tmp_path_factory: pytest.TempPathFactory):
    cc = sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()[0]
    if shutil.which(cc) is None:
        pytest.skip("no host C compiler")
    root = tmp_path_factory.mktemp("capeval")
    (root / "harness.c").write_text(_HARNESS)
    lib = root / "harness.so"
    header_dir = Path(ap.__file__).resolve().parent / "native"
    proc = subprocess.run([cc, "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared",
                           "-fPIC", "-I", str(header_dir), str(root / "harness.c"), "-o",
                           str(lib)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(proc.stderr)
    return ctypes.CDLL(str(lib))


def _random_program(rng: np.random.Generator, n: int) -> AddressProgram:
    rows = []
    for _ in range(n):
        code = int(rng.integers(1, 10))
        r = [int(x) for x in rng.integers(0, 16, 3)]
        flags = int(rng.integers(1, 64)) | int(rng.integers(0, 8)) << 12
        imm = int(rng.integers(-(1 << 31), 1 << 31))
        rows.append({
            ap.ACCESS: [1, r[0], r[1] if rng.random() < 0.5 else -1, int(rng.integers(0, 4)),
                        imm, flags],
            ap.ACCESS_ABS: [2, 0, 0, 0, imm, flags],
            ap.ADDI: [3, r[0], r[1], 0, imm, 0],
            ap.ADDR: [4, r[0], r[1], r[2], int(rng.integers(0, 4)), int(rng.choice([-1, 1]))],
            ap.CONST: [5, r[0], 0, 0, imm, 0],
            ap.KILL: [6, r[0], 0, 0, 0, 0],
            ap.UNKNOWN: [7, 0, 0, 0, 0, flags],
            ap.LOAD: [8, r[0], r[1] if rng.random() < 0.8 else -1,
                      r[2] if rng.random() < 0.4 else -1, imm,
                      int(rng.integers(0, 4)) | int(rng.choice([1, 2, 3, 4])) << 8
                      | int(rng.integers(0, 2)) * ap.LOAD_SIGNED],
            ap.ALU: [9, r[0], r[1], r[2] if rng.random() < 0.5 else -1,
                     int(rng.choice([imm, int(rng.integers(0, 40))])), int(rng.integers(1, 14))],
        }[code])
    return AddressProgram(ops=np.array(rows, dtype=np.int32).reshape(n, 6), regs_mask=0xFFFF)


def test_c_evaluator_matches_python(c_eval) -> None:
    class Log(ctypes.Structure):
        _fields_ = [("n", ctypes.c_uint32), ("rec", (ctypes.c_uint32 * 3) * 4096)]

    def read(address: int, _size: int) -> int | None:
        return None if address >> 28 == 0xF else address * 2654435761 & 0xFFFFFFFF

    rng = np.random.default_rng(10)
    for trial in range(400):
        prog = _random_program(rng, int(rng.integers(1, 40)))
        regs = [int(x) for x in rng.integers(0, 1 << 32, 16, dtype=np.uint64)]
        valid = [bool(x) for x in rng.random(16) < 0.8]
        with_memory = trial % 2
        expected = evaluate(prog, regs, valid, read if with_memory else None)
        c_regs = (ctypes.c_uint32 * 16)(*regs)
        c_valid = (ctypes.c_uint8 * 16)(*valid)
        log = Log()
        ops = np.ascontiguousarray(prog.ops)
        c_eval.tm_test_eval(ops.ctypes.data_as(ctypes.c_void_p), len(prog), c_regs, c_valid,
                            ctypes.byref(log), with_memory)
        got = [tuple(log.rec[i]) for i in range(log.n)]
        want = [(a.address, a.bytes, int(a.is_store) | int(a.resolved) << 1
                 | int(a.conditional) << 2) for a in expected]
        assert got == want, f"trial {trial}: {prog.ops.tolist()}"


# ---------------------------------------------------------------------------------------
# ground truth: real firmware, Python block + memory hooks (see tests/addrprog_truth.py)

MLPERF_KWS = (Path(__file__).resolve().parents[2].parent / "shared" / "models" / "mlperf-tiny"
              / "kws_ref_model.tflite")
#: KWS layers traced: conv, depthwise, pointwise, average pool, fully connected, softmax.
KWS_LAYERS = (0, 1, 2, 10, 11, 12)
KWS_WINDOW = 8000

TRUTH_PROGRAM = r"""
typedef struct node { struct node *next; int32_t value; int16_t half[2]; } node;
typedef struct { int32_t a, b, c, d; } quad;
static node nodes[16];
static quad quads[8];
static int64_t wide[8];
static uint8_t lut[256];
static int8_t bytes[64];
static float floats[16];
static volatile int32_t sink;

__attribute__((noinline)) int32_t chase(const node *n) {
    int32_t s = 0;
    while (n) { s += n->value + n->half[1]; n = n->next; }
    return s;
}
__attribute__((noinline)) int32_t dispatch(int32_t k) {
    switch (k & 7) {
    case 0: return lut[k & 255];
    case 1: return bytes[k & 63] * 3;
    case 2: return nodes[k & 15].half[0];
    case 3: return (int32_t)wide[k & 7];
    case 4: return quads[k & 7].c;
    case 5: return (int32_t)floats[k & 15];
    case 6: return k << 2;
    default: return -k;
    }
}
__attribute__((noinline)) int32_t big_switch(int32_t k) {
    switch (k % 300) {
    case 0: return 1; case 17: return 5; case 40: return 9; case 77: return 2;
    case 101: return 8; case 150: return 3; case 201: return 7; case 299: return 4;
    case 250: return 11; case 260: return 13; case 270: return 17; case 280: return 19;
    default: return 0;
    }
}
__attribute__((noinline)) void copy_quads(quad *dst, const quad *src, int n) {
    for (int i = 0; i < n; i++) dst[i] = src[n - 1 - i];
}
__attribute__((noinline)) int64_t sum_wide(const int64_t *w, int n) {
    int64_t s = 0;
    for (int i = 0; i < n; i++) s += w[i];
    return s;
}
__attribute__((noinline)) void saturate(int8_t *out, const int32_t *in, int n, int32_t lo,
                                        int32_t hi) {
    for (int i = 0; i < n; i++) {
        int32_t v = in[i];
        if (v < lo) v = lo;
        if (v > hi) v = hi;
        out[i] = (int8_t)v;
    }
}
__attribute__((noinline)) float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
__attribute__((noinline)) uint32_t lookup(const uint8_t *idx, int n) {
    uint32_t s = 0;
    for (int i = 0; i < n; i++) s += lut[idx[i]] + (uint32_t)bytes[idx[i] & 63];
    return s;
}
#if defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_7M__)
__attribute__((noinline)) int32_t atomic_add(volatile int32_t *p, int32_t v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
#else
__attribute__((noinline)) int32_t atomic_add(volatile int32_t *p, int32_t v) {
    int32_t o = *p;
    *p = o + v;
    return o;
}
#endif

int main(void) {
    int32_t acc[64];
    for (int i = 0; i < 16; i++) {
        nodes[i].next = i < 15 ? &nodes[i + 1] : 0;
        nodes[i].value = i * 7;
        nodes[i].half[0] = (int16_t)-i;
        nodes[i].half[1] = (int16_t)i;
        floats[i] = (float)i * 0.5f;
    }
    for (int i = 0; i < 256; i++) lut[i] = (uint8_t)(i * 13);
    for (int i = 0; i < 64; i++) { bytes[i] = (int8_t)(i * 5 - 100); acc[i] = i * 9 - 250; }
    for (int i = 0; i < 8; i++) {
        wide[i] = (int64_t)i << 33;
        quads[i] = (quad){i, 2 * i, 3 * i, 4 * i};
    }
    quad tmp[8];
    int32_t total = 0;
    for (int round = 0; round < 5; round++) {
        total += chase(&nodes[round & 7]);
        for (int k = 0; k < 40; k++) total += dispatch(k + round) + big_switch(k * 37 + round);
        copy_quads(tmp, quads, 8);
        total += tmp[round & 7].b + (int32_t)sum_wide(wide, 8);
        saturate(bytes, acc, 64, -100 + round, 100 - round);
        total += (int32_t)dot(floats, floats + 4, 12);
        total += (int32_t)lookup((const uint8_t *)bytes, 64);
        atomic_add(&sink, total);
    }
    sink = total;
    return 0;
}
"""


def _engine_at(board, elf: Path, layer: int | None):
    """A fresh engine stopped at the entry of tm_prof_begin(layer) (or at reset)."""
    from addrprog_truth import STOP, pc_of

    from tinymeter.sim.emulator import Emulator

    emu = Emulator(board)
    image = emu.load(elf)
    if layer is None:
        return emu.uc, image, emu.reset_pc
    begin = image.require_symbol("tm_prof_begin").address & ~1
    pc = emu.reset_pc
    for k in range(layer + 1):
        emu.uc.emu_start(pc, begin)
        assert pc_of(emu.uc) & ~1 == begin, f"firmware ended before layer {layer}"
        if k < layer:
            emu.uc.emu_start(begin | 1, STOP, count=1)
            pc = pc_of(emu.uc) | 1
    return emu.uc, image, begin


def _trace(board, elf: Path, windows: list[tuple[int | None, int]]):
    """Trace each (layer, instructions) window on a fresh engine, against a hook-free
    shadow engine; the statistics of all windows."""
    from addrprog_truth import Tracer

    def readable(address: int, size: int) -> bool:
        region = board.region_of(address)
        return region is not None and region.contains(address, size)

    tracer = None
    for layer, count in windows:
        uc, image, start = _engine_at(board, elf, layer)
        shadow, _image, _start = _engine_at(board, elf, layer)
        tracer = tracer or Tracer(image.read_code, image.describe, readable)
        tracer.run_window(uc, start, count, shadow)
    assert tracer is not None
    return tracer.stats


def _assert_truth(stats, *, divergence_allowed: bool) -> None:
    assert not stats.mismatches, "\n".join(stats.mismatches[:10])
    assert stats.accesses > 1000
    assert stats.unresolved_share < 0.01, stats.unresolved_by.most_common(10)
    if not divergence_allowed:
        assert not stats.divergences
        assert stats.blocks >= stats.traced - 2 * 8  # only each window's cut last block
    else:
        assert stats.blocks > stats.traced // 2, stats.divergences


@pytest.fixture(scope="module")
def truth_elfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[object, Path]]:
    """The truth program built -O2 for an M4F and an M0+ board."""
    if not toolchain_available():
        pytest.skip("arm-none-eabi-gcc missing")
    from tinymeter.core.boards import load_board
    from tinymeter.sim.testfw import build_program

    out = {}
    for name in ("nucleo-l4r5zi", "nucleo-g0b1re"):
        board = load_board(name)
        out[name] = (board, build_program(board, TRUTH_PROGRAM, tmp_path_factory.mktemp(name),
                                          name="truth", opt="-O2"))
    return out


def _check_fast_decoder(elf: Path) -> int:
    """decode_block (operand text) equals decode_block_detailed (capstone detail mode) on
    every instruction of a whole image, except where capstone's register lists are wrong:
    it omits accumulator reads (smlal/umlal), the third operand of sxtab16 and ssat's
    source, so the fast path's reads must be a superset there.  Returns the count."""
    from tinymeter.sim.decode import decode_block_detailed
    from tinymeter.sim.elf import ElfImage

    image = ElfImage.load(elf)
    dec = Decoder()
    checked = 0
    for sym in image.functions:
        if sym.size <= 0:
            continue
        address = sym.address & ~1
        code = image.read_code(address, sym.size)
        for fast, ref in zip(decode_block(code, address, dec),
                             decode_block_detailed(code, address, dec), strict=True):
            where = f"{fast.mnemonic} {fast.op_str} at 0x{fast.address:08x}"
            assert (fast.address, fast.size, fast.name, fast.conditional, fast.mem) == (
                ref.address, ref.size, ref.name, ref.conditional, ref.mem), where
            assert [(k, v & 0xFFFFFFFF, *rest) for k, v, *rest in fast.operands] == [
                (k, v & 0xFFFFFFFF, *rest) for k, v, *rest in ref.operands], where
            assert fast.regs_written - {15} == ref.regs_written - {15}, where
            assert fast.regs_read >= ref.regs_read - {15}, where
            checked += 1
    return checked


@pytest.mark.parametrize("board_name", ["nucleo-l4r5zi", "nucleo-g0b1re"])
def test_fast_decoder_matches_capstone_detail(board_name: str, truth_elfs) -> None:
    assert _check_fast_decoder(truth_elfs[board_name][1]) > 300


@needs_gcc
@pytest.mark.parametrize("board_name", ["nucleo-l4r5zi", "nucleo-g0b1re"])
def test_ground_truth_test_program(board_name: str, truth_elfs) -> None:
    board, elf = truth_elfs[board_name]
    stats = _trace(board, elf, [(None, 400_000)])
    _assert_truth(stats, divergence_allowed=False)
    assert stats.unresolved == 0, stats.unresolved_by.most_common(10)


@pytest.mark.slow
@needs_gcc
@pytest.mark.skipif(not MLPERF_KWS.exists(), reason="MLPerf Tiny models not present")
@pytest.mark.parametrize("board_name,kernels", [
    ("nucleo-l4r5zi", "optimized"), ("nucleo-l4r5zi", "reference"),
    ("nucleo-g0b1re", "reference")])
def test_ground_truth_kws(board_name: str, kernels: str) -> None:
    """Every resolved access of the KWS kernels equals Unicorn's; none is unresolved.

    The reference M4 kernels hit Unicorn's memory-hook IT-state bug (see
    addrprog_truth.py) inside conv2d: those windows are checked up to the divergence."""
    from tinymeter.apps.estimate import build_model
    from tinymeter.core.boards import load_board
    from tinymeter.firmware.build import BuildConfig

    board = load_board(board_name)
    fw = build_model(MLPERF_KWS, board, BuildConfig(kernels=kernels))
    assert _check_fast_decoder(fw.elf) > 1000
    stats = _trace(board, fw.elf, [(layer, KWS_WINDOW) for layer in KWS_LAYERS])
    _assert_truth(stats, divergence_allowed=(board_name, kernels) == ("nucleo-l4r5zi",
                                                                      "reference"))
    assert stats.unresolved == 0, stats.unresolved_by.most_common(10)


def test_evaluate_rejects_unknown_opcode() -> None:
    prog = AddressProgram(ops=np.array([[12, 0, 0, 0, 0, 0]], dtype=np.int32), regs_mask=0)
    with pytest.raises(ValueError, match="opcode 12"):
        evaluate(prog, [0] * 16)


def test_decoder_handle_is_reusable() -> None:
    d = Decoder()
    code = bytes.fromhex("4868")  # ldr r0, [r1, #4]
    assert decode_block(code, BASE, d) == decode_block(code, BASE)
