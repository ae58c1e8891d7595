"""Benchmark: emulated MIPS while firmware spins on a status register (issue 11).

Vendor firmware polls peripheral registers (HAL waits on RCC/PWR flags, UART status,
timer or DWT delays).  Plain peripheral registers are RAM pages preloaded with reset
values; registers with behaviour sit on ``mmio_map`` pages served by C callbacks
(:mod:`tinymeter.sim.native_periph`), never Python.  The same poll loop (6 instructions,
one register read per iteration) reads: SRAM (upper bound), a plain register (PWR_SR2
of NUCLEO-L4R5ZI), and registers with behaviour: RCC_CR (ready flags follow enables),
TIM2_CNT (a timer on the estimated cycles), the UART status, DWT_CYCCNT, SysTick CSR
(what LL_mDelay polls for COUNTFLAG).  Each runs
with the counting hook (the estimate) and without any hook (raw Unicorn, the
baseline); MIPS of the uncounted run use the counted run's instruction count.  Before
the C callbacks a behaviour register cost a Python call per access (about 0.3 MIPS).
Prints JSON.

Usage: ``python benchmarks/bench_polling.py [--reads 2000000]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from tinymeter.core.boards import UART_LAYOUTS, load_board
from tinymeter.sim.emulator import Emulator
from tinymeter.sim.testfw import build_program

PROGRAM = r"""
static volatile uint32_t ram_flag;
__attribute__((noinline)) uint32_t poll(volatile uint32_t *reg, uint32_t n) {
    uint32_t seen = 0;
    for (uint32_t i = 0; i < n; i++) seen += (*reg >> 10) & 1u;
    return seen;
}
int main(void) {
    volatile uint32_t *reg = ADDRESS ? (volatile uint32_t *)ADDRESS : &ram_flag;
    return (int)(poll(reg, READS) & 0);
}
"""

def targets(board_name: str) -> dict[str, int]:
    """Register addresses polled (0: a variable in SRAM)."""
    board = load_board(board_name)
    out = {"sram": 0, "plain_register_PWR_SR2": 0x40007014,
           "follow_register_RCC_CR": 0x40021000, "timer_register_TIM2_CNT": 0x40000024,
           "dwt_CYCCNT": 0xE0001004, "systick_CSR": 0xE000E010}
    if board.uart.kind:
        out["uart_status"] = board.uart.base + UART_LAYOUTS[board.uart.kind].status
    return out


def _timed(elf: Path, board_name: str, count: bool, repeat: int) -> tuple[int, float]:
    """Instructions and the best wall time of *repeat* runs (a shared machine's load
    only ever slows a run down)."""
    board = load_board(board_name)
    best, instructions = float("inf"), 0
    for _ in range(max(repeat, 1)):
        result = Emulator(board).run(elf, [], budget_instructions=10**9, timeout_s=600,
                                     count=count)
        best, instructions = min(best, result.wall_time_s), result.instructions
    return instructions, best


def run(board_name: str = "nucleo-l4r5zi", reads: int = 2_000_000, repeat: int = 3) -> dict:
    """MIPS of the poll loop per target (same instructions, different memory), with the
    counting hook and without hooks."""
    board = load_board(board_name)
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, address in targets(board_name).items():
            elf = build_program(board, PROGRAM, Path(tmp) / name, opt="-O2",
                                extra_flags=(f"-DADDRESS=0x{address:08x}u",
                                             f"-DREADS={reads}u"))
            instructions, counted = _timed(elf, board_name, True, repeat)
            _none, raw = _timed(elf, board_name, False, repeat)
            out[name] = {"address": f"0x{address:08x}", "instructions": instructions,
                         "seconds": counted, "mips": instructions / counted / 1e6,
                         "seconds_no_hook": raw, "mips_no_hook": instructions / raw / 1e6}
    base, raw_base = out["sram"]["mips"] or 1.0, out["sram"]["mips_no_hook"] or 1.0
    for entry in out.values():
        entry["speed_vs_sram"] = entry["mips"] / base
        entry["speed_vs_sram_no_hook"] = entry["mips_no_hook"] / raw_base
    return {"board": board_name, "reads": reads, "repeat": repeat, "targets": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="nucleo-l4r5zi")
    ap.add_argument("--reads", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per target (best time)")
    args = ap.parse_args()
    print(json.dumps(run(args.board, args.reads, args.repeat), indent=2))


if __name__ == "__main__":
    main()
