"""Tests of tinymeter.sim: exact counting, layer attribution, ABI hooks, faults, cores.

Firmware-level tests compile tiny C programs with arm-none-eabi-gcc (runtime from
``tinymeter.sim.testfw``) so the simulator is tested independently of the real
firmware runtime.  Loops whose instruction counts are asserted exactly are written
in naked inline asm, so the expected count does not depend on the compiler.
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tinymeter.core.boards import Board, load_board
from tinymeter.core.errors import BudgetExceeded, EmulationError, FirmwareFault
from tinymeter.sim import blocks as blk
from tinymeter.sim.semihosting import (
    ADP_STOPPED_APPLICATION_EXIT,
    SYS_EXIT,
    SYS_EXIT_EXTENDED,
    SYS_HEAPINFO,
    SYS_OPEN,
    SYS_WRITE,
    SYS_WRITE0,
    SYS_WRITEC,
    Semihosting,
    SemihostingError,
)
from tinymeter.sim.testfw import build_program, toolchain_available

#: One board per supported core.
CORE_BOARDS = {
    "cortex-m0plus": "nucleo-g0b1re",
    "cortex-m3": "nucleo-f207zg",
    "cortex-m4f": "nucleo-l4r5zi",
    "cortex-m7": "nucleo-f767zi",
    "cortex-m33": "nucleo-l552ze-q",
}
BUDGET = 50_000_000
TIMEOUT = 20.0

needs_gcc = pytest.mark.skipif(not toolchain_available(), reason="arm-none-eabi-gcc missing")

# ---------------------------------------------------------------------------------------
# test programs

KNOWN_LOOP = r"""
/* exactly 4 instructions per iteration + 1 (bx lr): 4n + 1 in total */
__attribute__((naked, noinline)) void known_loop(uint32_t n) {
    __asm__ volatile(
        ".syntax unified\n"
        "1: adds r1, r1, #1\n"
        "   adds r2, r2, #3\n"
        "   subs r0, r0, #1\n"
        "   bne 1b\n"
        "   bx lr\n");
}
"""

LOOP_PROGRAM = KNOWN_LOOP + r"""
static volatile uint32_t iterations = ITERATIONS;
int main(void) { known_loop(iterations); return 0; }
"""

IT_PROGRAM = r"""
/* 6 instructions per iteration, one of them an IT-skipped addne: 6n + 1 */
__attribute__((naked, noinline)) void it_loop(uint32_t n) {
    __asm__ volatile(
        ".syntax unified\n"
        "1: cmp r0, r0\n"
        "   ite ne\n"
        "   addne r1, r1, #1\n"
        "   addeq r2, r2, #1\n"
        "   subs r0, r0, #1\n"
        "   bne 1b\n"
        "   bx lr\n");
}
int main(void) { it_loop(250); return 0; }
"""

LAYERS_PROGRAM = KNOWN_LOOP + r"""
int main(void) {
    for (uint32_t l = 0; l < 3; l++) {
        tm_prof_begin(l);
        known_loop(100 * (l + 1));
        tm_prof_end(l);
    }
    return 0;
}
"""

IO_PROGRAM = r"""
static uint8_t in0[16] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
static uint8_t in1[4];
static uint8_t out0[16];
static uint32_t out1;
int main(void) {
    while (tm_io_next()) {
        tm_io_input_hook(0, in0, sizeof in0);
        tm_io_input_hook(1, in1, sizeof in1);
        tm_prof_begin(0);
        for (int i = 0; i < 16; i++) out0[i] = (uint8_t)(in0[i] + in1[0]);
        tm_prof_end(0);
        tm_prof_begin(1);
        out1 = 0;
        for (int i = 0; i < 16; i++) out1 += in0[i];
        tm_prof_end(1);
        tm_io_output_hook(0, out0, sizeof out0);
        tm_io_output_hook(1, (const uint8_t *)&out1, sizeof out1);
    }
    return 0;
}
"""

SEMIHOSTING_PROGRAM = r"""
static int exit_code = EXIT_CODE;
int main(void) {
    tm_puts("hello from write0\n");
    static const char msg[] = "via SYS_WRITE\n";
    uint32_t open_args[3] = {(uint32_t)":tt", 4, 3};
    int fd = tm_semihost(0x01, open_args);
    uint32_t write_args[3] = {(uint32_t)fd, (uint32_t)msg, sizeof msg - 1};
    tm_semihost(0x05, write_args);
    char c = '!';
    tm_semihost(0x03, &c);
    tm_puts("\nlast line\n");
    if (exit_code == 100) {  /* plain SYS_EXIT with ADP_Stopped_ApplicationExit */
        tm_semihost(0x18, (const void *)0x20026u);
    }
    return exit_code;
}
"""

FAULT_PROGRAM = r"""
__attribute__((noinline)) uint32_t bad_reader(uint32_t offset) {
    return *(volatile uint32_t *)(0x60000000u + offset);
}
int main(void) {
    uint32_t acc = 0;
    for (uint32_t l = 0; l < 3; l++) {
        tm_prof_begin(l);
        acc += l == 2 ? bad_reader(acc) : l;
        tm_prof_end(l);
    }
    return (int)acc;
}
"""

HANG_PROGRAM = r"""
__attribute__((noinline)) void spin(void) { for (;;) { __asm__ volatile(""); } }
int main(void) { spin(); return 0; }
"""

BKPT_PROGRAM = r"""
int main(void) { __asm__ volatile("bkpt 0x01"); return 0; }
"""

CORE_PROGRAM = r"""
static uint32_t which;
static uint32_t result;
__attribute__((naked, noinline)) uint32_t do_smlad(uint32_t a, uint32_t b) {
    /* smlad r1, r0, r1, r0 ; mov r0, r1 */
    __asm__ volatile(".syntax unified\n .inst.w 0xfb200101\n mov r0, r1\n bx lr\n");
}
__attribute__((naked, noinline)) void do_vadd_f64(void) {
    __asm__ volatile(".syntax unified\n .inst.w 0xee300b01\n bx lr\n"); /* vadd.f64 d0,d0,d1 */
}
__attribute__((naked, noinline)) void do_vadd_f32(void) {
    __asm__ volatile(".syntax unified\n .inst.w 0xee300a20\n bx lr\n"); /* vadd.f32 s0,s0,s1 */
}
__attribute__((naked, noinline)) uint32_t do_tt(uint32_t a) {
    __asm__ volatile(".syntax unified\n .inst.w 0xe841f000\n bx lr\n"); /* tt r0, r1 */
}
int main(void) {
    while (tm_io_next()) {
        tm_io_input_hook(0, (uint8_t *)&which, 4);
        if (which == 0) result = do_smlad(0x00030002u, 0x00050004u);
        else if (which == 1) { do_vadd_f32(); result = 1; }
        else if (which == 2) { do_vadd_f64(); result = 1; }
        else { do_tt(0x20000000u); result = 1; }
        tm_io_output_hook(0, (const uint8_t *)&result, 4);
    }
    return 0;
}
"""


# ---------------------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="session")
def boards() -> dict[str, Board]:
    return {core: load_board(name) for core, name in CORE_BOARDS.items()}


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Compile a test program for a board, memoized per (board, source)."""
    if not toolchain_available():
        pytest.skip("arm-none-eabi-gcc not installed")
    root = tmp_path_factory.mktemp("simfw")
    cache: dict[tuple[str, str], Path] = {}

    def _build(board: Board, source: str, name: str = "prog") -> Path:
        key = (board.name, source)
        if key not in cache:
            cache[key] = build_program(board, source, root / f"{board.name}-{len(cache)}",
                                       name=name)
        return cache[key]

    return _build


@pytest.fixture()
def m4(boards: dict[str, Board]) -> Board:
    return boards["cortex-m4f"]


def _emulator(board: Board):  # local import keeps pure tests runnable without unicorn
    from tinymeter.sim.emulator import Emulator

    return Emulator(board)


def _run(board: Board, elf: Path, inputs=((),), **kw):
    kw.setdefault("budget_instructions", BUDGET)
    kw.setdefault("timeout_s", TIMEOUT)
    return _emulator(board).run(elf, [list(x) for x in inputs], **kw)


# ---------------------------------------------------------------------------------------
# exact counting

@needs_gcc
@pytest.mark.parametrize("core", list(CORE_BOARDS))
def test_known_loop_count_is_exact(core: str, boards, build) -> None:
    board = boards[core]
    per_fn = {}
    totals = {}
    for n in (1000, 3000):
        elf = build(board, LOOP_PROGRAM.replace("ITERATIONS", str(n)))
        result = _run(board, elf)
        assert result.exit_code == 0
        per_fn[n] = result.profile.instructions_per_function()["known_loop"]
        totals[n] = result.instructions
    assert per_fn == {1000: 4 * 1000 + 1, 3000: 4 * 3000 + 1}
    assert totals[3000] - totals[1000] == 4 * 2000
    # the raw table is consistent with the totals
    assert result.blocks.count.dtype == np.uint64
    assert int((result.profile.instructions * result.blocks.count).sum()) == totals[3000]


@needs_gcc
@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4f", "cortex-m7", "cortex-m33"])
def test_it_block_skipped_instructions_are_counted(core: str, boards, build) -> None:
    board = boards[core]
    result = _run(board, build(board, IT_PROGRAM))
    assert result.profile.instructions_per_function()["it_loop"] == 6 * 250 + 1


@needs_gcc
def test_per_layer_attribution(m4: Board, build) -> None:
    result = _run(m4, build(m4, LAYERS_PROGRAM))
    per_layer = result.profile.instructions_per_layer()
    assert set(per_layer) == {-1, 0, 1, 2}
    # identical call overhead per layer, so differences are exactly the extra iterations
    assert per_layer[1] - per_layer[0] == 4 * 100
    assert per_layer[2] - per_layer[1] == 4 * 100
    overhead = per_layer[0] - (4 * 100 + 1)
    assert 0 < overhead < 20
    classes = result.profile.classes_per_layer()
    assert classes[2]["alu"] >= 3 * 300 and classes[2]["branch"] >= 300
    assert sum(classes[0].values()) == per_layer[0]
    assert sum(per_layer.values()) == result.instructions


@needs_gcc
def test_count_false_runs_without_statistics(m4: Board, build) -> None:
    result = _run(m4, build(m4, LOOP_PROGRAM.replace("ITERATIONS", "1000")), count=False)
    assert result.exit_code == 0 and result.instructions == 0 and result.profile is None
    assert len(result.blocks) == 0


# ---------------------------------------------------------------------------------------
# firmware ABI hooks

@needs_gcc
def test_io_hooks_round_trip(m4: Board, build) -> None:
    elf = build(m4, IO_PROGRAM)
    inputs = [[bytes(range(16)), bytes([1, 0, 0, 0])],
              [bytes(range(100, 116)), bytes([5, 0, 0, 0])],
              [bytes(16), bytes([0, 0, 0, 0])]]
    result = _run(m4, elf, inputs)
    assert result.inferences == 3
    for (x, y), (out0, out1) in zip(inputs, result.outputs):
        assert out0 == bytes((v + y[0]) & 0xFF for v in x)
        assert struct.unpack("<I", out1)[0] == sum(x)
    # both layers ran three times; the 16-iteration loops dominate
    per_layer = result.profile.instructions_per_layer()
    assert per_layer[0] > 3 * 16 * 3 and per_layer[1] > 3 * 16 * 3


@needs_gcc
def test_io_default_inputs_and_zero_inferences(m4: Board, build) -> None:
    elf = build(m4, IO_PROGRAM)
    default = _run(m4, elf, [[]])
    assert default.outputs == [[bytes([9] * 16), struct.pack("<I", 9 * 16)]]
    none = _run(m4, elf, [])
    assert none.outputs == [] and none.inferences == 0


@needs_gcc
def test_io_input_size_mismatch_names_sizes(m4: Board, build) -> None:
    elf = build(m4, IO_PROGRAM)
    with pytest.raises(EmulationError, match=r"input 0 of inference 0 has 8 bytes.* 16"):
        _run(m4, elf, [[bytes(8), bytes(4)]])
    with pytest.raises(EmulationError, match=r"input 1 of inference 0.*only 1 input"):
        _run(m4, elf, [[bytes(16)]])


# ---------------------------------------------------------------------------------------
# semihosting and exit codes

@needs_gcc
def test_semihosting_output_and_success(m4: Board, build) -> None:
    result = _run(m4, build(m4, SEMIHOSTING_PROGRAM.replace("EXIT_CODE", "0")))
    assert result.stdout == "hello from write0\nvia SYS_WRITE\n!\nlast line\n"
    assert result.exit_code == 0


@needs_gcc
def test_plain_sys_exit_application_exit_is_success(m4: Board, build) -> None:
    result = _run(m4, build(m4, SEMIHOSTING_PROGRAM.replace("EXIT_CODE", "100")))
    assert result.exit_code == 0


@needs_gcc
def test_nonzero_exit_names_code_and_last_line(m4: Board, build) -> None:
    with pytest.raises(EmulationError, match=r"exited with code 3.*'last line'"):
        _run(m4, build(m4, SEMIHOSTING_PROGRAM.replace("EXIT_CODE", "3")))


# ---------------------------------------------------------------------------------------
# faults and hangs

@needs_gcc
def test_unmapped_read_names_symbol_layer_and_address(m4: Board, build) -> None:
    with pytest.raises(FirmwareFault) as info:
        _run(m4, build(m4, FAULT_PROGRAM))
    msg = str(info.value)
    assert msg.startswith("firmware fault: UC_ERR_READ_UNMAPPED")
    assert "(bad_reader" in msg and "in layer 2" in msg and "0x6000000" in msg
    assert "pc=0x080" in msg


@needs_gcc
def test_non_semihosting_bkpt_is_a_fault(m4: Board, build) -> None:
    with pytest.raises(FirmwareFault, match=r"BKPT 0x01.*\(main"):
        _run(m4, build(m4, BKPT_PROGRAM))


@needs_gcc
def test_hung_firmware_hits_budget_quickly(m4: Board, build) -> None:
    import time

    start = time.perf_counter()
    with pytest.raises(BudgetExceeded,
                       match=r"within 1000000 instructions \(likely hung\) at pc=.*\(spin"):
        _run(m4, build(m4, HANG_PROGRAM), budget_instructions=1_000_000)
    assert time.perf_counter() - start < 5


@needs_gcc
def test_hung_firmware_hits_timeout_without_counting(m4: Board, build) -> None:
    with pytest.raises(BudgetExceeded, match=r"0.3 s timeout"):
        _run(m4, build(m4, HANG_PROGRAM), count=False, timeout_s=0.3)


# ---------------------------------------------------------------------------------------
# cores

#: (SMLAD, VADD.F32, VADD.F64, TT) per core: Thumb-2 DSP on M3+ (see note), single FPU on
#: M4F/M7/M33, double FPU on M7, v8-M on M33.  Together they tell all five models apart.
#: Note: Unicorn 2.1.4's Cortex-M3 model executes SMLAD although a real M3 has no DSP
#: extension (QEMU does not gate it), so the emulator cannot catch DSP kernels built for
#: an M3; the firmware build must choose kernels from ``Core.dsp``.
CORE_FEATURES = {
    "cortex-m0plus": (False, False, False, False),
    "cortex-m3": (True, False, False, False),
    "cortex-m4f": (True, True, False, False),
    "cortex-m7": (True, True, True, False),
    "cortex-m33": (True, True, False, True),
}


@needs_gcc
@pytest.mark.parametrize("core", list(CORE_BOARDS))
def test_core_selects_unicorn_cpu_model(core: str, boards, build) -> None:
    board = boards[core]
    elf = build(board, CORE_PROGRAM)
    for which, supported in enumerate(CORE_FEATURES[core]):
        selector = [[struct.pack("<I", which)]]
        if supported:
            result = _run(board, elf, selector)
            value = struct.unpack("<I", result.outputs[0][0])[0]
            if which == 0:
                assert value == 3 * 5 + 2 * 4 + 0x00030002  # smlad r1, r0, r1, r0
            else:
                assert value == 1
        else:
            with pytest.raises(FirmwareFault, match=r"firmware fault: .* at pc=.*\(do_"):
                _run(board, elf, selector)


@needs_gcc
def test_wrong_board_elf_is_rejected(boards, build) -> None:
    elf = build(boards["cortex-m7"], LOOP_PROGRAM.replace("ITERATIONS", "1"))
    other = load_board("nucleo-g0b1re")  # flash is 512 KiB there but the ELF fits; RAM differs
    with pytest.raises(EmulationError, match="stack pointer|outside the memory"):
        _run(other, elf)


# ---------------------------------------------------------------------------------------
# native hook: table growth and the event-profiler pair

@needs_gcc
def test_native_table_grows_without_losing_counts(m4: Board, build) -> None:
    from tinymeter.sim.native_hook import BlockCounter

    elf = build(m4, IO_PROGRAM)
    em = _emulator(m4)
    snapshots = []
    for capacity in (16, 1 << 16):
        image = em.load(elf)
        counter = BlockCounter(prof_begin=image.require_symbol("tm_prof_begin").address,
                               prof_end=image.require_symbol("tm_prof_end").address,
                               capacity=capacity)
        counter.attach(em.uc)
        em.uc.emu_start(em.reset_pc, image.require_symbol("tm_exit").address)
        snapshots.append(counter.snapshot())
        counter.close()
    small, big = snapshots
    assert len(small.address) > 2 * 16  # the 16-entry table had to grow twice
    for field in ("address", "size", "layer", "count"):
        assert np.array_equal(getattr(small, field), getattr(big, field))
    assert small.executed_bytes == big.executed_bytes and not small.out_of_memory


EVENT_PROGRAM = KNOWN_LOOP + r"""
/* stand-ins for tflite::MicroProfiler::BeginEvent(const char *tag) / EndEvent */
__attribute__((noipa)) void evt_begin(const char *tag) { (void)tag; }
__attribute__((noipa)) void evt_end(void) {}
int main(void) {
    for (uint32_t l = 0; l < 3; l++) {
        evt_begin("op");
        known_loop(100 * (l + 1));
        evt_end();
    }
    return 0;
}
"""


@needs_gcc
def test_event_profiler_pair_numbers_layers(m4: Board, build) -> None:
    from tinymeter.sim.emulator import Emulator

    em = Emulator(m4, event_profiler=("evt_begin", "evt_end"), event_wrap=2)
    result = em.run(build(m4, EVENT_PROGRAM), [[]], budget_instructions=BUDGET,
                    timeout_s=TIMEOUT)
    per_layer = result.profile.instructions_per_layer()
    # events 0 and 2 wrap onto layer 0 (100 + 300 iterations), event 1 is layer 1 (200)
    assert set(per_layer) == {-1, 0, 1}
    assert per_layer[0] == 2 * per_layer[1]
    assert per_layer[1] > 4 * 200


# ---------------------------------------------------------------------------------------
# pure modules: semihosting, blocks, elf

class FakeMemory:
    def __init__(self, size: int = 0x1000) -> None:
        self.data = bytearray(size)

    def read(self, address: int, size: int) -> bytes:
        if address + size > len(self.data):
            raise IndexError(address)
        return bytes(self.data[address:address + size])

    def write(self, address: int, data: bytes) -> None:
        self.data[address:address + len(data)] = data


def test_semihosting_console_operations() -> None:
    mem = FakeMemory()
    sh = Semihosting(mem)
    mem.write(0x100, b"hi there\0")
    assert sh.handle(SYS_WRITE0, 0x100) == 0
    mem.write(0x200, b"X")
    sh.handle(SYS_WRITEC, 0x200)
    mem.write(0x300, b":tt\0")
    mem.write(0x400, struct.pack("<3I", 0x300, 4, 3))
    fd = sh.handle(SYS_OPEN, 0x400)
    mem.write(0x500, b"payload\n")
    mem.write(0x410, struct.pack("<3I", fd, 0x500, 8))
    assert sh.handle(SYS_WRITE, 0x410) == 0
    assert sh.stdout == "hi thereXpayload\n"
    assert sh.last_line() == "hi therexpayload".replace("x", "X")
    mem.write(0x600, b"/etc/passwd")
    mem.write(0x420, struct.pack("<3I", 0x600, 0, 11))
    assert sh.handle(SYS_OPEN, 0x420) == 0xFFFFFFFF  # host files are refused
    assert not sh.exited


def test_semihosting_heapinfo() -> None:
    mem = FakeMemory()
    sh = Semihosting(mem, heap_info=(1, 2, 3, 4))
    mem.write(0x10, struct.pack("<I", 0x80))
    sh.handle(SYS_HEAPINFO, 0x10)
    assert struct.unpack("<4I", mem.read(0x80, 16)) == (1, 2, 3, 4)


@pytest.mark.parametrize(("op", "setup", "arg", "code"), [
    (SYS_EXIT, None, ADP_STOPPED_APPLICATION_EXIT, 0),
    (SYS_EXIT, None, 3, 3),
    (SYS_EXIT, None, 0xFFFFFFFF, -1),
    (SYS_EXIT, None, 0x20023, 0x20023),  # ADP_Stopped_RunTimeErrorUnknown
    (SYS_EXIT, (ADP_STOPPED_APPLICATION_EXIT, 7), 0x40, 7),  # AArch64-style block
    (SYS_EXIT_EXTENDED, (ADP_STOPPED_APPLICATION_EXIT, 0), 0x40, 0),
    (SYS_EXIT_EXTENDED, (ADP_STOPPED_APPLICATION_EXIT, 5), 0x40, 5),
    (SYS_EXIT_EXTENDED, (0x20023, 0), 0x40, 0x20023),
])
def test_semihosting_exit_codes(op, setup, arg, code) -> None:
    mem = FakeMemory()
    if setup is not None:
        mem.write(0x40, struct.pack("<2I", *setup))
    sh = Semihosting(mem)
    sh.handle(op, arg)
    assert sh.exited and sh.exit_code == code


def test_semihosting_unsupported_operation() -> None:
    with pytest.raises(SemihostingError, match="0x99"):
        Semihosting(FakeMemory()).handle(0x99, 0)


def test_block_classification_and_register_counts() -> None:
    code = bytes.fromhex(
        "2de9f04f"  # push.w {r4-r11, lr}       store_multiple, 9 regs
        "0b44"      # add r3, r1                alu
        "20fb0101"  # smlad r1, r0, r1, r0      mac
        "90fbf1f0"  # sdiv r0, r0, r1           divide
        "30ee010b"  # vadd.f64 d0, d0, d1       vfp
        "0868"      # ldr r0, [r1]              load
        "81fb0201"  # smull r0, r1, r1, r2      mul64
        "bde8f08f"  # pop.w {r4-r11, pc}        load_multiple, 9 regs
    )
    info = blk.disassemble_block(code, 0x08000000)
    counts = dict(zip(blk.CLASSES, info.classes.tolist()))
    assert info.instructions == 8
    assert counts == {**dict.fromkeys(blk.CLASSES, 0), "store_multiple": 1, "alu": 1, "mac": 1,
                      "divide": 1, "vfp": 1, "load": 1, "mul64": 1, "load_multiple": 1}
    assert info.multiple_registers == 18


def test_block_profile_aggregations() -> None:
    class Code:
        def read_code(self, address: int, size: int) -> bytes:
            return {0x100: bytes.fromhex("0b44" "0868"), 0x200: bytes.fromhex("0b44")}[address]

    table = blk.BlockTable(address=np.array([0x100, 0x100, 0x200], np.uint32),
                           size=np.array([4, 4, 2], np.uint32),
                           layer=np.array([-1, 0, 0], np.int32),
                           count=np.array([1, 10, 5], np.uint64))
    profile = blk.analyze(table, Code())
    assert profile.total_instructions == 2 + 20 + 5
    assert profile.instructions_per_layer() == {-1: 2, 0: 25}
    assert profile.classes_per_layer()[0]["load"] == 10
    assert profile.classes_total()["alu"] == 16


@needs_gcc
def test_elf_symbols(m4: Board, build) -> None:
    from tinymeter.sim.elf import ElfImage

    image = ElfImage.load(build(m4, FAULT_PROGRAM))
    sym = image.require_symbol("bad_reader")
    assert sym.is_function and sym.address % 2 == 0 and sym.size > 0
    assert image.symbol_at(sym.address | 1) == (sym, 0)
    assert image.describe(sym.address + 2) == "bad_reader+0x2"
    assert image.describe(0x7FFFFFF0) == "??"
    with pytest.raises(EmulationError, match="no symbol 'tm_missing'"):
        image.require_symbol("tm_missing")
    text = [s for s in image.segments if s.executable]
    assert text and text[0].paddr == m4.text.origin


@pytest.mark.skipif(not toolchain_available(), reason="arm-none-eabi-gcc not installed")
def test_test_programs_are_built_once_per_content(m4: Board, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The second build of the same program copies the cached ELF (no compiler run); a
    change of source or flags builds anew."""
    cache = tmp_path / "cache"
    source = "int main(void) { return 3; }\n"
    first = build_program(m4, source, tmp_path / "a", cache_dir=cache)
    runs: list[list[str]] = []
    real_run = subprocess.run

    def counting_run(cmd: list[str], *args: object, **kwargs: object) -> object:
        runs.append(cmd)
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr("tinymeter.sim.testfw.subprocess.run", counting_run)
    again = build_program(m4, source, tmp_path / "b", cache_dir=cache)
    assert runs == [] and again == tmp_path / "b" / "prog.elf"
    assert again.read_bytes() == first.read_bytes()
    build_program(m4, source, tmp_path / "c", cache_dir=cache, opt="-O2")
    build_program(m4, source.replace("3", "4"), tmp_path / "d", cache_dir=cache)
    assert len(runs) == 2
    assert len(list((cache / "testfw").glob("prog-*.elf"))) == 3
