"""Benchmark: address programs (issue 10) on the MLPerf Tiny models.

For each (board, kernels, model): emulate one inference with the counting hook, then
compile every distinct executed block into its address program and report
* CPU time per block of ``decode_block`` + ``address_program`` (the work the cost
  callback adds once per distinct block), beside ``blocks.disassemble_block``'s;
* data accesses per inference and the share left unresolved, with a memory reader for
  LOAD ops (``tm_ap_eval_mem``) and without (``tm_ap_eval``): block counts x each
  program's static resolution, exact because resolution never depends on values;
* program ops and LOAD ops per executed block (the native evaluator's work).
Prints JSON; ``run_all.py`` includes it as "addrprog".

Usage: ``python benchmarks/bench_addrprog.py [--model PATH ...] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tinymeter.apps.estimate import build_model
from tinymeter.core.boards import load_board
from tinymeter.firmware.build import BuildConfig
from tinymeter.sim.addrprog import LOAD, address_program, static_resolution
from tinymeter.sim.blocks import disassemble_block, make_disassembler
from tinymeter.sim.decode import Decoder, decode_block
from tinymeter.sim.elf import ElfImage
from tinymeter.sim.emulator import Emulator

MLPERF = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "mlperf-tiny"
#: (board, kernels) pairs: M4 optimized and reference, M0+ (reference: no DSP).
CONFIGS = (("nucleo-l4r5zi", "optimized"), ("nucleo-l4r5zi", "reference"),
           ("nucleo-g0b1re", "reference"))


def measure(model: Path, board_name: str, kernels: str) -> dict:
    """The figures of one model on one board (see the module docstring)."""
    board = load_board(board_name)
    fw = build_model(model, board, BuildConfig(kernels=kernels))
    run = Emulator(board).run(fw.elf, [[]], budget_instructions=10**10, timeout_s=1800)
    image = ElfImage.load(fw.elf)
    keys = sorted(set(zip(run.blocks.address.tolist(), run.blocks.size.tolist())))
    codes = {k: image.read_code(*k) for k in keys}

    def literal(address: int, size: int) -> int:
        return int.from_bytes(image.read_code(address, size), "little")

    decoder, programs = Decoder(), {}
    start = time.process_time()
    for key in keys:
        insns = decode_block(codes[key], key[0], decoder)
        programs[key] = (insns, address_program(insns, literal))
    compile_s = time.process_time() - start
    md = make_disassembler()
    start = time.process_time()
    for key in keys:
        disassemble_block(codes[key], key[0], md)
    disasm_s = time.process_time() - start
    totals = np.zeros(5, dtype=np.int64)  # accesses, unresolved, no-reader, ops, loads
    executions = 0
    for address, size, count in zip(run.blocks.address.tolist(), run.blocks.size.tolist(),
                                    run.blocks.count.tolist()):
        insns, program = programs[(address, size)]
        total, unresolved, _ = static_resolution(insns, program)
        without = static_resolution(insns, program, loads=False)[1]
        loads = int((program.ops[:, 0] == LOAD).sum())
        totals += count * np.array([total, unresolved, without, len(program), loads])
        executions += count
    accesses = max(int(totals[0]), 1)
    return {
        "model": model.name, "board": board_name, "kernels": kernels,
        "instructions": run.instructions, "accesses": int(totals[0]),
        "unresolved_share": int(totals[1]) / accesses,
        "unresolved_share_without_memory_reader": int(totals[2]) / accesses,
        "ops_per_block_execution": int(totals[3]) / max(executions, 1),
        "loads_per_block_execution": int(totals[4]) / max(executions, 1),
        "distinct_blocks": len(keys),
        "us_per_block_decode_and_program": compile_s / len(keys) * 1e6,
        "us_per_block_disassemble_block": disasm_s / len(keys) * 1e6,
    }


def run(models: list[Path] | None = None, quick: bool = False) -> list[dict]:
    models = models or [MLPERF / "kws_ref_model.tflite"]
    configs = CONFIGS[:1] if quick else CONFIGS
    return [measure(m, b, k) for m in models if m.exists() for b, k in configs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, action="append", help="a .tflite (repeatable)")
    ap.add_argument("--quick", action="store_true", help="M4 optimized only")
    args = ap.parse_args()
    print(json.dumps(run(args.model, args.quick), indent=2))


if __name__ == "__main__":
    main()
