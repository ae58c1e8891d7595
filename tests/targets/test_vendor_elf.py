"""Vendor firmware as it is (issue 11): C++ names, per-address profile rows, spans, and
no silent wrong answers at error traps, for ELFs tinymeter did not build.

The program is two C++ units compiled here at -O3 with -g, as a vendor project would be
(each with a function ``Eval`` in an anonymous namespace, as every TFLM kernel has),
with its own vector table; it prints nothing and uses no profiler events.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tinymeter.core.boards import Board, load_board

GXX = "arm-none-eabi-g++"
pytestmark = pytest.mark.skipif(shutil.which(GXX) is None, reason="arm-none-eabi-g++ missing")

UNIT_A = r"""
#include <stdint.h>
namespace {
/* 4n + 1 instructions */
__attribute__((naked, noinline)) void Eval(uint32_t n) {
  __asm__ volatile(".syntax unified\n1: adds r1, r1, #1\n adds r2, r2, #3\n"
                   " subs r0, r0, #1\n bne 1b\n bx lr\n");
}
}  // namespace
void conv_invoke(uint32_t n) { Eval(n); }
"""

UNIT_B = r"""
#include <stdint.h>
namespace {
/* 2n + 1 instructions */
__attribute__((naked, noinline)) void Eval(uint32_t n) {
  __asm__ volatile(".syntax unified\n1: subs r0, r0, #1\n bne 1b\n bx lr\n");
}
}  // namespace
void fc_invoke(uint32_t n) { Eval(n); }
"""

MAIN = r"""
#include <stdint.h>
void conv_invoke(uint32_t n);
void fc_invoke(uint32_t n);
#ifndef CLOCK_READY
#define CLOCK_READY 1u
#endif
__attribute__((noipa)) uint32_t clock_ready() { return CLOCK_READY; }
extern "C" void Error_Handler(void);
namespace app {
__attribute__((noipa)) void start_timer() { __asm__ volatile("" ::: "memory"); }
__attribute__((noipa)) void stop_timer(uint32_t) { __asm__ volatile("" ::: "memory"); }
__attribute__((noinline)) void finish() { __asm__ volatile("" ::: "memory"); }
__attribute__((noipa)) void never() {}
}  // namespace app
/* Error_Handler is inlined here at -O3 (CubeMX's SystemClock_Config pattern) */
__attribute__((noinline)) void clock_config(void) {
  if (!clock_ready()) {
    Error_Handler();
  }
}
extern "C" {
extern uint32_t _estack;
void Error_Handler(void) {
  __asm__ volatile("cpsid i" ::: "memory");
  while (1) {
  }
}
__attribute__((noreturn)) void reset(void) {
  clock_config();
  for (uint32_t i = 0; i < 3; ++i) {
    app::start_timer();
    conv_invoke(100u * (i + 1u));
    fc_invoke(50u);
    app::stop_timer(i);
  }
  app::finish();
#ifdef KEEP_WORKING
  for (;;) {
    conv_invoke(10u);
  }
#endif
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
  .data : {{ *(.data*) . = ALIGN(4); }} > DATA AT > TEXT
  .bss (NOLOAD) : {{ *(.bss*) *(COMMON) }} > DATA
  _estack = ORIGIN(DATA) + LENGTH(DATA);
  /DISCARD/ : {{ *(.ARM.exidx*) *(.ARM.attributes) *(.comment) }}
}}
"""


def build_vendor(board: Board, workdir: Path, *defines: str) -> Path:
    """Compile the three units at -O3 -g (no startup code: nothing in .data/.bss)."""
    workdir.mkdir(parents=True, exist_ok=True)
    sources = []
    for name, text in (("conv.cc", UNIT_A), ("fully_connected.cc", UNIT_B), ("main.cc", MAIN)):
        (workdir / name).write_text(text)
        sources.append(str(workdir / name))
    (workdir / "link.ld").write_text(LINKER.format(
        text=board.text.origin, text_size=board.text.size, data=board.data.origin,
        data_size=board.data.size))
    elf = workdir / "vendor.elf"
    subprocess.run(
        [GXX, *board.core.gcc_flags, "-O3", "-g", "-ffreestanding", "-fno-exceptions",
         "-fno-rtti", "-nostdlib", "-nostartfiles", *[f"-D{d}" for d in defines],
         "-T", str(workdir / "link.ld"), *sources, "-o", str(elf), "-lgcc"],
        check=True, capture_output=True, text=True)
    return elf


@pytest.fixture(scope="module")
def board() -> Board:
    return load_board("nucleo-l4r5zi")


@pytest.fixture(scope="module")
def vendor_elf(board: Board, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_vendor(board, tmp_path_factory.mktemp("vendor"))


def test_demangled_names_and_function_lookup(vendor_elf: Path) -> None:
    from tinymeter.core.errors import ConfigError
    from tinymeter.sim.elf import ElfImage

    elf = ElfImage.load(vendor_elf)
    stop = elf.symbol("_ZN3app10stop_timerEm")
    assert stop is not None
    assert elf.demangled(stop.name) == "app::stop_timer(unsigned long)"
    assert elf.find_function("app::stop_timer") == stop
    assert elf.find_function("app::stop_timer(unsigned long)") == stop
    assert elf.find_function("_ZN3app10stop_timerEm") == stop
    assert elf.find_function("app::nothing") is None
    with pytest.raises(ConfigError, match=r"'\(anonymous namespace\)::Eval' names 2 functions"):
        elf.find_function("(anonymous namespace)::Eval")


def test_inline_frames_from_dwarf(vendor_elf: Path) -> None:
    from tinymeter.sim.elf import ElfImage, find_idle_loops

    elf = ElfImage.load(vendor_elf)
    clock = elf.symbol("_Z12clock_configv")
    assert clock is not None
    loops = find_idle_loops(elf.read_code(clock.address, clock.size), clock.address)
    assert len(loops) == 1
    assert elf.describe_frames(loops[0]) == "Error_Handler (inlined into clock_config)"
    handler = elf.symbol("Error_Handler")
    assert handler is not None
    entries = elf.debug.inlined_entries(frozenset({"Error_Handler"}), [handler.address])
    assert [name for _a, name in entries] == ["Error_Handler"]
    assert clock.address < entries[0][0] <= loops[0]
    assert elf.debug.unit_name(clock.address) == "main.cc"


def test_span_per_iteration_with_separate_eval_rows(board: Board, vendor_elf: Path) -> None:
    from tinymeter.apps.estimate import estimate_elf

    est = estimate_elf(vendor_elf, board, span=("app::start_timer", "app::stop_timer"),
                       span_count=0, budget_instructions=10**6, timeout_s=20)
    assert [r.op for r in est.layers] == [f"app::start_timer:app::stop_timer #{k}"
                                          for k in (1, 2, 3)]
    instr = [r.instructions for r in est.layers]
    # only conv's Eval grows: by 4 instructions per extra loop iteration (100 each)
    assert instr[1] - instr[0] == 400 and instr[2] - instr[1] == 400
    assert est.cycles == sum(r.cycles for r in est.layers) > 0
    assert est.profile_scope == "span app::start_timer:app::stop_timer"
    rows = {f.name: f for f in est.functions}
    conv = rows["(anonymous namespace)::Eval(unsigned long) [conv.cc]"]
    fc = rows["(anonymous namespace)::Eval(unsigned long) [fully_connected.cc]"]
    assert conv.instructions == 4 * (100 + 200 + 300) + 3
    assert fc.instructions == 3 * (2 * 50 + 1)
    assert "reset" in rows and "clock_config()" not in rows  # only code inside the spans


def test_span_stops_after_count_and_idle_before_end_is_an_error(board: Board,
                                                               tmp_path: Path) -> None:
    from tinymeter.apps.estimate import estimate_elf
    from tinymeter.core.errors import EmulationError

    working = build_vendor(board, tmp_path / "w", "KEEP_WORKING")
    one = estimate_elf(working, board, span=("app::start_timer", "app::stop_timer"),
                       budget_instructions=10**6, timeout_s=20)
    assert len(one.layers) == 1
    elf = build_vendor(board, tmp_path / "i")
    with pytest.raises(EmulationError, match=r"parked in an idle loop in reset before reaching "
                       r"the end of span app::start_timer:app::stop_timer \(3 of 4 completed\) "
                       r"at pc=0x[0-9a-f]+ \(reset\+0x[0-9a-f]+\) outside any layer; "
                       r"call path: reset$"):
        estimate_elf(elf, board, span=("app::start_timer", "app::stop_timer"), span_count=4,
                     budget_instructions=10**6, timeout_s=20)
    with pytest.raises(EmulationError, match=r"parked in an idle loop in reset before reaching "
                       r"the end of span app::finish:app::start_timer \(0 of 1 completed\)"):
        estimate_elf(elf, board, span=("app::finish", "app::start_timer"),
                     budget_instructions=10**6, timeout_s=20)
    with pytest.raises(EmulationError, match=r"before reaching the stop symbol app::never"):
        estimate_elf(elf, board, stop_at=("app::never",), budget_instructions=10**6,
                     timeout_s=20)


def test_inlined_error_handler_is_an_error_with_call_path(board: Board, tmp_path: Path) -> None:
    from tinymeter.apps.estimate import estimate_elf
    from tinymeter.core.errors import FirmwareFault

    elf = build_vendor(board, tmp_path, "CLOCK_READY=0u")
    with pytest.raises(FirmwareFault, match=r"firmware reached the error trap Error_Handler; "
                       r"call path: Error_Handler \(inlined into clock_config\) <- reset"):
        estimate_elf(elf, board, budget_instructions=10**6, timeout_s=20)


def test_whole_run_totals_without_profiler_events(board: Board, vendor_elf: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from tinymeter.cli.main import main

    assert main(["estimate", "--elf", str(vendor_elf), "--board", board.name, "-q",
                 "--stop-at", "app::finish", "--profile", "4"]) == 0
    out = capsys.readouterr().out
    assert "whole run" in out and "latency   0.000 ms" not in out
    assert "Eval(unsigned long) [conv.cc]" in out and "top functions (whole run)" in out
    assert main(["estimate", "--elf", str(vendor_elf), "--board", board.name, "-q",
                 "--span", "app::start_timer:app::stop_timer", "--span-count", "2"]) == 0
    out = capsys.readouterr().out
    assert "app::start_timer:app::stop_timer #2" in out
    assert main(["estimate", "--elf", str(vendor_elf), "--board", board.name, "-q",
                 "--span", "app::start_timer"]) == 2
    assert "expected START:END" in capsys.readouterr().err
    assert main(["estimate", "--elf", str(vendor_elf), "--board", board.name, "-q",
                 "--span", "app::start_timer:nothing"]) == 2
    assert "no symbol 'nothing' for the span" in capsys.readouterr().err


def test_parse_span() -> None:
    from tinymeter.apps.estimate import parse_span

    assert parse_span("a::b::c:d") == ("a::b::c", "d")
    assert parse_span("Invoke : ns::stop()") == ("Invoke", "ns::stop()")
