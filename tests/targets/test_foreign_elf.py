"""Foreign ELFs: firmware not built by tinymeter, profiled by ``tinymeter estimate --elf``.

The test program is a small freestanding C++ file compiled here with its own vector
table and linker script (no tinymeter runtime).  It defines the real mangled names of
TFLM's ``tflite::MicroProfiler::BeginEvent(const char*)`` / ``EndEvent(uint32_t)`` --
a stand-in, since a real TFLM build is not available offline -- prints through the
board UART registers and through semihosting, and exits through semihosting.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tinymeter.core.boards import Board, load_board

GXX = "arm-none-eabi-g++"
needs_gxx = pytest.mark.skipif(shutil.which(GXX) is None, reason="arm-none-eabi-g++ missing")

PROGRAM = r"""
#include <stdint.h>

#define REG(a) (*(volatile uint32_t *)(a))

namespace tflite {
class MicroProfiler {
 public:
  uint32_t BeginEvent(const char *tag);
  void EndEvent(uint32_t event_handle);
  uint32_t count = 0;
};
__attribute__((noinline)) uint32_t MicroProfiler::BeginEvent(const char *tag) {
  (void)tag;
  __asm__ volatile("" ::: "memory");
  return count++;
}
__attribute__((noinline)) void MicroProfiler::EndEvent(uint32_t event_handle) {
  (void)event_handle;
  __asm__ volatile("" ::: "memory");
}
}  // namespace tflite

extern "C" {
extern uint32_t _estack;
/* 4n + 1 instructions */
__attribute__((naked, noinline)) void work(uint32_t n) {
  __asm__ volatile(".syntax unified\n1: adds r1, r1, #1\n adds r2, r2, #3\n"
                   " subs r0, r0, #1\n bne 1b\n bx lr\n");
}
static int semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}
static void uart_puts(const char *s) {
  for (; *s; ++s) {
    while (!(REG(UART_BASE + UART_STATUS) & (1u << 7))) {
    }
    REG(UART_BASE + UART_DATA) = (uint8_t)*s;
  }
}
__attribute__((noinline)) void done(void) { __asm__ volatile("" ::: "memory"); }
__attribute__((noinline, noreturn)) void _exit(int status) {
  (void)status;
  for (;;) {
  }
}
__attribute__((noinline)) void Error_Handler(void) {
  for (;;) {
  }
}
__attribute__((noreturn)) void reset(void) {
  tflite::MicroProfiler profiler;
  uart_puts("hello from the uart\n");
  static const char *const tags[3] = {"CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"};
  for (uint32_t i = 0; i < 3; ++i) {
    uint32_t h = profiler.BeginEvent(tags[i]);
    work(1000u * (i + 1u));
    profiler.EndEvent(h);
  }
#if defined(END_IDLE) /* UART-only firmware: report, then park */
  uart_puts("done\n");
  for (;;) {
  }
#elif defined(END_WFI)
  uart_puts("done\n");
  for (;;) {
    __asm__ volatile("wfi");
  }
#elif defined(END_CALL) /* keeps working forever: stop at done() */
  done();
  for (;;) {
    work(100u);
  }
#elif defined(END_ERROR)
  Error_Handler();
#elif defined(END_EXIT) /* returned from main into the C library's _exit */
  uart_puts("done\n");
  _exit(END_EXIT);
#endif
  semihost(0x04, "and from semihosting\n");
  semihost(0x18, (const void *)0x20026u);
  for (;;) {
  }
}
__attribute__((section(".vectors"), used)) const void *const vectors[2] = {
    &_estack, (const void *)reset};
}
"""

LINKER = """
MEMORY {{
  TEXT (rx) : ORIGIN = 0x{text:08x}, LENGTH = 0x{text_size:x}
  DATA (rwx) : ORIGIN = 0x{data:08x}, LENGTH = 0x{data_size:x}
}}
ENTRY(reset)
SECTIONS {{
  .text : {{ KEEP(*(.vectors)) *(.text*) *(.rodata*) . = ALIGN(4); }} > TEXT
  .bss (NOLOAD) : {{ *(.bss*) *(COMMON) }} > DATA
  _estack = ORIGIN(DATA) + LENGTH(DATA);
  /DISCARD/ : {{ *(.ARM.exidx*) *(.ARM.attributes) *(.comment) }}
}}
"""

UART_REGS = {"stm32-usart": (0x28, 0x1C), "stm32-lpuart": (0x28, 0x1C),
             "stm32-usart-legacy": (0x04, 0x00)}


def build_foreign(board: Board, workdir: Path, ending: str = "") -> Path:
    """Compile the test program; *ending* ("IDLE", "WFI", "CALL", "ERROR", "EXIT=<code>")
    replaces the semihosting exit by another way a firmware ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    data, status = UART_REGS[board.uart.kind]
    (workdir / "prog.cc").write_text(PROGRAM)
    (workdir / "link.ld").write_text(LINKER.format(
        text=board.text.origin, text_size=board.text.size, data=board.data.origin,
        data_size=board.data.size))
    elf = workdir / "foreign.elf"
    subprocess.run(
        [GXX, *board.core.gcc_flags, "-O2", "-ffreestanding", "-fno-exceptions", "-fno-rtti",
         "-nostdlib", "-nostartfiles", f"-DUART_BASE=0x{board.uart.base:08x}u",
         f"-DUART_DATA=0x{data:x}u", f"-DUART_STATUS=0x{status:x}u",
         *([f"-DEND_{ending}"] if ending else []),
         "-T", str(workdir / "link.ld"), str(workdir / "prog.cc"), "-o", str(elf), "-lgcc"],
        check=True, capture_output=True, text=True)
    return elf


@needs_gxx
@pytest.mark.parametrize("board_name", ["nucleo-l4r5zi", "nucleo-f207zg"])
def test_foreign_elf_uart_and_named_layers(board_name: str, tmp_path: Path) -> None:
    from tinymeter.apps.estimate import estimate_elf
    from tinymeter.sim.elf import ElfImage
    from tinymeter.sim.emulator import tflm_profiler_symbols

    board = load_board(board_name)
    elf = build_foreign(board, tmp_path)
    assert tflm_profiler_symbols(ElfImage.load(elf)) == (
        "_ZN6tflite13MicroProfiler10BeginEventEPKc", "_ZN6tflite13MicroProfiler8EndEventEm")
    est = estimate_elf(elf, board, budget_instructions=10**7, timeout_s=20)
    assert [r.op for r in est.layers] == ["CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"]
    instr = [r.instructions for r in est.layers]
    # identical event overhead per layer: differences are exactly the extra iterations
    assert instr[1] - instr[0] == 4 * 1000 and instr[2] - instr[1] == 4 * 1000
    assert all(r.cycles > r.instructions for r in est.layers)
    assert est.cycles == sum(r.cycles for r in est.layers)
    names = {f.name for f in est.functions}
    assert {"work", "reset"} <= names


@needs_gxx
def test_foreign_elf_output_in_run_result(tmp_path: Path) -> None:
    from tinymeter.sim.emulator import Emulator

    board = load_board("nucleo-l552ze-q")
    elf = build_foreign(board, tmp_path)
    run = Emulator(board).run(elf, [], budget_instructions=10**7, timeout_s=20)
    assert run.stdout == "hello from the uart\nand from semihosting\n"
    assert run.exit_code == 0


@needs_gxx
def test_estimate_cli_elf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tinymeter.cli.main import main

    board = load_board("nucleo-l4r5zi")
    elf = build_foreign(board, tmp_path)
    out_json = tmp_path / "est.json"
    assert main(["estimate", "--elf", str(elf), "--board", board.name, "-q", "--profile", "3",
                 "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "DEPTHWISE_CONV_2D" in text and "top functions" in text and "work" in text
    assert "cost model tm-cortex-m4f" in text
    report = json.loads(out_json.read_text())
    assert report["cost_parameters"]["cpi"]["alu"] == 1.0
    assert [layer["op"] for layer in report["layers"]][-1] == "SOFTMAX"
    assert main(["estimate", "model.tflite", "--elf", str(elf), "-q"]) == 2


def test_find_idle_loops() -> None:
    from tinymeter.sim.elf import find_idle_loops

    code = bytes.fromhex(
        "0020"        # 0x100 movs r0, #0
        "fee7"        # 0x102 b.n .
        "30bf" "fde7"  # 0x104 wfi; b.n 0x104
        "20bf" "fde7"  # 0x108 wfe; b.n 0x108
        "fff7febf"    # 0x10c b.w .
        "30bf" "00bf"  # 0x110 wfi; nop (not a loop)
        "fde7")       # 0x114 b.n 0x112 (back one, but not to a wait)
    assert find_idle_loops(code, 0x100) == [0x102, 0x104, 0x108, 0x10C]
    assert find_idle_loops(b"\xfe", 0) == []


@needs_gxx
@pytest.mark.parametrize(("ending", "reason"), [
    ("IDLE", "idle loop at reset+0x"), ("WFI", "idle loop at reset+0x"),
    ("CALL", "stop at done"), ("EXIT=0", "_exit")])
def test_foreign_elf_without_semihosting_exit(ending: str, reason: str, tmp_path: Path) -> None:
    from tinymeter.apps.estimate import estimate_elf
    from tinymeter.sim.emulator import Emulator

    board = load_board("nucleo-l4r5zi")
    elf = build_foreign(board, tmp_path, ending)
    stop_at = ("done",) if ending == "CALL" else ()
    run = Emulator(board, stop_at=stop_at, stop_on_idle=True).run(
        elf, [], budget_instructions=10**7, timeout_s=20)
    assert run.exit_code == 0 and run.stop_reason.startswith(reason)
    assert run.stdout == ("hello from the uart\n" + ("done\n" if ending != "CALL" else ""))
    est = estimate_elf(elf, board, budget_instructions=10**7, timeout_s=20, stop_at=stop_at)
    assert [r.op for r in est.layers] == ["CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"]
    # the same three layers as with the semihosting ending, instruction for instruction
    ref = estimate_elf(build_foreign(board, tmp_path / "ref"), board,
                       budget_instructions=10**7, timeout_s=20)
    assert [r.instructions for r in est.layers] == [r.instructions for r in ref.layers]


@needs_gxx
def test_foreign_elf_endings_that_are_errors(tmp_path: Path) -> None:
    from tinymeter.apps.estimate import estimate_elf
    from tinymeter.core.errors import BudgetExceeded, ConfigError, EmulationError, FirmwareFault
    from tinymeter.sim.emulator import Emulator

    board = load_board("nucleo-l4r5zi")
    with pytest.raises(FirmwareFault, match=r"error loop Error_Handler.* at pc=0x"):
        estimate_elf(build_foreign(board, tmp_path / "e", "ERROR"), board,
                     budget_instructions=10**7, timeout_s=20)
    calls = build_foreign(board, tmp_path / "c", "CALL")
    with pytest.raises(ConfigError, match="no symbol 'finish' to stop at"):
        estimate_elf(calls, board, stop_at=("finish",))
    with pytest.raises(EmulationError, match=r"firmware exited with code 3; last output: 'done'"):
        estimate_elf(build_foreign(board, tmp_path / "x", "EXIT=3"), board,
                     budget_instructions=10**7, timeout_s=20)
    # without a stop symbol a firmware that keeps working is hung, as before
    with pytest.raises(BudgetExceeded, match="did not finish within 1000000 instructions"):
        estimate_elf(calls, board, budget_instructions=10**6, timeout_s=20)
    # idle loops end a run only when asked: the default is the strict tinymeter ABI
    with pytest.raises(BudgetExceeded):
        Emulator(board).run(build_foreign(board, tmp_path / "i", "IDLE"), [],
                            budget_instructions=10**6, timeout_s=20)


@needs_gxx
def test_estimate_cli_stop_at(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tinymeter.cli.main import main

    board = load_board("nucleo-l4r5zi")
    elf = build_foreign(board, tmp_path, "CALL")
    assert main(["estimate", "--elf", str(elf), "--board", board.name, "-q",
                 "--stop-at", "done"]) == 0
    assert "SOFTMAX" in capsys.readouterr().out
    assert main(["estimate", "--stop-at", "done", "-q"]) == 2
    assert "--stop-at and --span apply to --elf only" in capsys.readouterr().err
