"""Benchmark the simulator: emulated MIPS with and without the native counting hook.

Builds a long int8 dot-product loop (the shape of NN inner loops) for a board and runs
it in several hook configurations, printing one JSON document:

* ``raw``: Unicorn with no hooks at all (upper bound);
* ``abi_code_hooks``: plus Python UC_HOOK_CODE hooks bounded to the three
  ``tm_io_*`` entry addresses, to check that bounded code hooks cost nothing outside
  their range (the Emulator relies on this);
* ``native_block_hook``: plus the native C counting hook (no cost model);
* ``native_block_hook_cycles``: the counting hook summing cost-model cycles (one cost
  callback per distinct block, then integer adds per execution);
* ``run_count`` / ``run_nocount``: the full ``Emulator.run`` with ``count=True/False``.

Instruction counts come from the counting run (the program is deterministic).
Usage: ``python benchmarks/bench_sim.py [--board nucleo-l4r5zi] [--reps 20000]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import unicorn

from tinymeter.core.boards import load_board
from tinymeter.sim.costmodel import cost_model_for
from tinymeter.sim.emulator import Emulator
from tinymeter.sim.native_hook import BlockCounter
from tinymeter.sim.testfw import build_program

log = logging.getLogger(__name__)

PROGRAM = r"""
static int8_t a[1024], b[1024];
static volatile int32_t sink;
__attribute__((noinline)) int32_t dot(const int8_t *x, const int8_t *y, int n) {
    int32_t acc = 0;
    for (int i = 0; i < n; i++) acc += x[i] * y[i];
    return acc;
}
int main(void) {
    for (int i = 0; i < 1024; i++) { a[i] = (int8_t)(i * 7); b[i] = (int8_t)(i * 13); }
    while (tm_io_next()) {
        for (uint32_t l = 0; l < 4; l++) {
            tm_prof_begin(l);
            for (int r = 0; r < REPS / 4; r++) sink = dot(a, b, 1024);
            tm_prof_end(l);
        }
    }
    return 0;
}
"""


def _time_raw(board_name: str, elf: Path, setup: Callable[[Emulator], object],
              repeats: int) -> float:
    """Best-of wall time of a bare ``emu_start`` from reset to ``tm_exit`` after *setup*."""
    times = []
    for _ in range(repeats):
        em = Emulator(load_board(board_name))
        image = em.load(elf)
        keep = setup(em)
        stop = image.require_symbol("tm_exit").address
        start = time.perf_counter()
        em.uc.emu_start(em.reset_pc, stop)
        times.append(time.perf_counter() - start)
        if isinstance(keep, BlockCounter):
            keep.close()
    return min(times)


def _no_hooks(_em: Emulator) -> None:
    return None


def _abi_code_hooks(em: Emulator) -> None:
    assert em.image is not None and em.uc is not None

    def on_entry(uc: unicorn.Uc, _addr: int, _size: int, _data: object) -> None:
        # tm_io_next: say "one more" the first time only, like the Emulator
        uc.reg_write(unicorn.arm_const.UC_ARM_REG_R0, 0)
        uc.reg_write(unicorn.arm_const.UC_ARM_REG_PC,
                     uc.reg_read(unicorn.arm_const.UC_ARM_REG_LR) | 1)

    for name in ("tm_io_input_hook", "tm_io_output_hook"):
        addr = em.image.require_symbol(name).address
        em.uc.hook_add(unicorn.UC_HOOK_CODE, on_entry, None, begin=addr, end=addr)
    # tm_io_next itself is left to the firmware (it returns 1 once), so the loop runs.
    addr = em.image.require_symbol("tm_io_next").address
    em.uc.hook_add(unicorn.UC_HOOK_CODE, lambda *a: None, None, begin=addr, end=addr)


def _native_hook(em: Emulator) -> BlockCounter:
    assert em.image is not None and em.uc is not None
    counter = BlockCounter(prof_begin=em.image.require_symbol("tm_prof_begin").address,
                           prof_end=em.image.require_symbol("tm_prof_end").address)
    counter.attach(em.uc)
    return counter


def _native_hook_cycles(em: Emulator) -> BlockCounter:
    assert em.image is not None and em.uc is not None
    cost = em.cost_function(em.image, cost_model_for(em.board))
    counter = BlockCounter(prof_begin=em.image.require_symbol("tm_prof_begin").address,
                           prof_end=em.image.require_symbol("tm_prof_end").address, cost=cost)
    counter.attach(em.uc)
    return counter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="nucleo-l4r5zi")
    parser.add_argument("--reps", type=int, default=20000, help="dot products of 1024")
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings")
    parser.add_argument("--opt", default="-O2")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    board = load_board(args.board)
    with tempfile.TemporaryDirectory() as tmp:
        elf = build_program(board, PROGRAM.replace("REPS", str(args.reps)), Path(tmp),
                            name="bench", opt=args.opt)
        counted = Emulator(board).run(elf, [[]], budget_instructions=10**12, timeout_s=3600)
        insns = counted.instructions
        results: dict[str, dict[str, float]] = {}

        def record(name: str, seconds: float) -> None:
            results[name] = {"seconds": round(seconds, 4), "mips": round(insns / seconds / 1e6, 1)}

        record("raw", _time_raw(args.board, elf, _no_hooks, args.repeats))
        record("abi_code_hooks", _time_raw(args.board, elf, _abi_code_hooks, args.repeats))
        record("native_block_hook", _time_raw(args.board, elf, _native_hook, args.repeats))
        record("native_block_hook_cycles", _time_raw(args.board, elf, _native_hook_cycles,
                                                     args.repeats))
        for name, count in (("run_count", True), ("run_nocount", False)):
            walls = [Emulator(board).run(elf, [[]], budget_instructions=10**12, timeout_s=3600,
                                         count=count).wall_time_s
                     for _ in range(args.repeats)]
            record(name, min(walls))
            results[name]["median_seconds"] = round(statistics.median(walls), 4)
    report = {
        "board": board.name, "core": board.core.name, "opt": args.opt,
        "instructions": insns,
        "distinct_blocks": len(counted.blocks),
        "avg_block_instructions": round(insns / max(int(counted.blocks.count.sum()), 1), 2),
        "results": results,
        "hook_overhead": round(results["native_block_hook"]["seconds"] /
                               results["raw"]["seconds"], 3),
        "cycles_hook_speed_ratio": round(results["raw"]["seconds"] /
                                         results["native_block_hook_cycles"]["seconds"], 3),
        "abi_hook_overhead": round(results["abi_code_hooks"]["seconds"] /
                                   results["raw"]["seconds"], 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
