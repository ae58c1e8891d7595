"""Benchmark: emulated MIPS while firmware spins on a status register (issue 11).

Vendor firmware polls peripheral registers (HAL waits on RCC/PWR flags, UART status).
A register on an ``mmio_map`` page costs a Python call per access; the board file's
plain peripherals are RAM pages preloaded with reset values instead, so spinning on
them runs at full speed.  Three runs of the same loop read: SRAM (upper bound), a plain
peripheral register (PWR_SR2 of NUCLEO-L4R5ZI), and a register with behaviour
(RCC_CR, ready flags following enables: an MMIO page).  Prints JSON.

Usage: ``python benchmarks/bench_polling.py [--reads 2000000]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from tinymeter.core.boards import load_board
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

TARGETS = {"sram": 0, "plain_register_PWR_SR2": 0x40007014, "mmio_register_RCC_CR": 0x40021000}


def run(board_name: str = "nucleo-l4r5zi", reads: int = 2_000_000) -> dict:
    """MIPS of the poll loop per target (same instructions, different memory)."""
    board = load_board(board_name)
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, address in TARGETS.items():
            elf = build_program(board, PROGRAM, Path(tmp) / name, opt="-O2",
                                extra_flags=(f"-DADDRESS=0x{address:08x}u",
                                             f"-DREADS={reads}u"))
            result = Emulator(board).run(elf, [], budget_instructions=10**9, timeout_s=600)
            out[name] = {"instructions": result.instructions, "seconds": result.wall_time_s,
                         "mips": result.mips}
    base = out["sram"]["mips"] or 1.0
    for entry in out.values():
        entry["speed_vs_sram"] = entry["mips"] / base
    return {"board": board_name, "reads": reads, "targets": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="nucleo-l4r5zi")
    ap.add_argument("--reads", type=int, default=2_000_000)
    args = ap.parse_args()
    print(json.dumps(run(args.board, args.reads), indent=2))


if __name__ == "__main__":
    main()
