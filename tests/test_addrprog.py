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

from tinymeter.errors import BuildError
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


def _acc(address: int, size: int, store: bool = False, cond: bool = False) -> Access:
    return Access(address=address, bytes=size, is_store=store, resolved=True, conditional=cond)


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
        _acc(REGS[2] + 4 * REGS[4] & 0xFFFFFFFF, 4, store=True), _acc(REGS[2] + 8, 8),
        _acc(REGS[13] - 8, 8, store=True),
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
        _acc(sp - 16, 16, store=True), _acc(sp - 24, 8, store=True),
        _acc(REGS[1] + 8, 4), _acc(REGS[1] - 8, 8),
        _acc(r0, 16), _acc(r0 + 16 - 16, 16, store=True), _acc(sp - 40 + 4, 4, store=True),
        _acc(REGS[2], 8), _acc(REGS[2], 8, store=True),
        _acc(sp - 24, 8), _acc(sp - 16, 16)]
    ops = prog.ops
    # push: ACCESS sp-16 then ADDI sp, sp, -16 (the writeback follows its access)
    assert ops[0].tolist() == [ap.ACCESS, 13, -1, 0, -16, 16 | ap.FLAG_STORE]
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
        _acc(pool, 4), _acc(0x20004004, 4), _acc(0x20001236, 2), _acc(pool, 4), _acc(pool, 4)]
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
    """))
    r1, r2 = REGS[1], REGS[2]
    mask = 0xFFFFFFFF
    assert evaluate(prog, REGS) == [
        _acc(r1 + 4 * r2 & mask, 4), _acc(r1 + 2 * r2 - 4 & mask, 4), _acc(r1 + 8, 1),
        _acc(r1 + r2 + 1 & mask, 1), _acc(REGS[13] + 8, 4), _acc(r1 + 8 * r2 & mask, 4),
        _acc(r1 + 4 * r2 & mask, 4), UNRESOLVED_LOAD4]


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
    # the add/mul/writeback feed no later access: only the two accesses remain
    assert prog.ops.tolist() == [[ap.ACCESS, 5, -1, 0, 4, 4], [ap.ACCESS, 7, -1, 0, 0, 4]]
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
        _acc(sp - 16, 16, store=True), _acc(r0, 8), _acc(r5 + 4 * r3 + r0 + 8 & mask, 4),
        _acc(sp - 8 + r3 & mask, 1), _acc(sp - 9, 1, store=True), _acc(r0 + 8, 8),
        UNRESOLVED_LOAD4,  # r0 was loaded by the ldm without writeback
        _acc(REGS[8] + sp - 9 & mask, 4), _acc(sp - 16, 16)]


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
void tm_test_eval(const int32_t *ops, uint32_t n, uint32_t *regs, uint8_t *valid,
                  tm_log *log) {
    tm_ap_eval(ops, n, regs, valid, tm_log_access, log);
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
        code = int(rng.integers(1, 8))
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
        }[code])
    return AddressProgram(ops=np.array(rows, dtype=np.int32).reshape(n, 6), regs_mask=0xFFFF)


def test_c_evaluator_matches_python(c_eval) -> None:
    class Log(ctypes.Structure):
        _fields_ = [("n", ctypes.c_uint32), ("rec", (ctypes.c_uint32 * 3) * 4096)]

    rng = np.random.default_rng(10)
    for trial in range(200):
        prog = _random_program(rng, int(rng.integers(1, 40)))
        regs = [int(x) for x in rng.integers(0, 1 << 32, 16, dtype=np.uint64)]
        valid = [bool(x) for x in rng.random(16) < 0.8]
        expected = evaluate(prog, regs, valid)
        c_regs = (ctypes.c_uint32 * 16)(*regs)
        c_valid = (ctypes.c_uint8 * 16)(*valid)
        log = Log()
        ops = np.ascontiguousarray(prog.ops)
        c_eval.tm_test_eval(ops.ctypes.data_as(ctypes.c_void_p), len(prog), c_regs, c_valid,
                            ctypes.byref(log))
        got = [tuple(log.rec[i]) for i in range(log.n)]
        want = [(a.address, a.bytes, int(a.is_store) | int(a.resolved) << 1
                 | int(a.conditional) << 2) for a in expected]
        assert got == want, f"trial {trial}: {prog.ops.tolist()}"


def test_evaluate_rejects_unknown_opcode() -> None:
    prog = AddressProgram(ops=np.array([[9, 0, 0, 0, 0, 0]], dtype=np.int32), regs_mask=0)
    with pytest.raises(ValueError, match="opcode 9"):
        evaluate(prog, [0] * 16)


def test_decoder_handle_is_reusable() -> None:
    d = Decoder()
    code = bytes.fromhex("4868")  # ldr r0, [r1, #4]
    assert decode_block(code, BASE, d) == decode_block(code, BASE)
