"""`make bench`: emulator speed and end-to-end estimate time, written as JSON.

Measures, on the default model and board:
* emulation MIPS of the same ELF with the native per-layer counting hook summing
  cost-model cycles (``Emulator.run(count=True)``: one cost callback per distinct
  block, disassembly included in the time) and with no hook at all (instructions are
  the same, so MIPS = counted instructions / time); "cold" uses a fresh emulator per
  run, "warm" reuses one (its disassembly cache), so only the hook itself is measured.
  Target: the full timing model (branch outcomes, instruction fetch, data accesses
  through the caches) keeps >= 30% of the no-hook MIPS (issue 10);
* wall time of a full `estimate` (parse, lower, build from a warm cache, emulate,
  cost model) and of a cold build;
* "polling": MIPS while spinning on SRAM, a plain peripheral register (RAM page) and
  registers with behaviour (MMIO pages served by C callbacks), with the counting hook
  and without hooks (bench_polling.py);
* "kernels": instructions per inference of the MLPerf Tiny models with the reference
  and optimized kernel sets, and the speedup per layer type (bench_kernels.py);
* "ops": the same for one converted Keras model per op family added for user models
  (U-Net with TRANSPOSE_CONV/RESIZE, data movement + activations, int16x8 KWS) and
  the zoo's LSTM keyword spotter (bench_ops.py, needs TensorFlow);
* "timing": per MLPerf Tiny model and board, CPI, the cycle split by mechanism, cache hit
  rates, and the first (static) cost model's estimate beside it; the VWW warm estimate
  time (bench_timing.py);
* "addrprog": address programs on KWS (M4 optimized/reference, M0+): unresolved share
  of data accesses, per-block compile time, ops per executed block (bench_addrprog.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tinymeter.apps.estimate import estimate, resolve_model
from tinymeter.core.boards import load_board
from tinymeter.firmware.build import BuildConfig, FirmwareBuilder
from tinymeter.firmware.codegen import generate
from tinymeter.models.tflite import load_tflite
from tinymeter.sim.emulator import Emulator

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_addrprog
import bench_kernels  # sibling script, importable once its folder is on the path
import bench_ops
import bench_polling
import bench_timing

log = logging.getLogger("bench")


TARGET_SPEED_RATIO = 0.3


def bench_emulation(model_path: Path, board_name: str, kernels: str, repeats: int,
                    inferences: int = 10) -> dict:
    """Median wall time of *inferences* back-to-back inferences per run (one inference
    alone is ~0.1 s, dominated by code translation: too short to time the hook)."""
    board = load_board(board_name)
    batch = [[] for _ in range(inferences)]
    gen = generate(load_tflite(model_path), name=model_path.stem)
    image = FirmwareBuilder().build(gen, board, BuildConfig(kernels=kernels))
    counted, raw, warm = [], [], []
    instructions = 0
    cycles = 0.0
    warm_emulator = Emulator(board)
    warm_emulator.run(image.elf, batch, budget_instructions=10**10, timeout_s=600)
    for _ in range(repeats):
        r = Emulator(board).run(image.elf, batch, budget_instructions=10**10, timeout_s=600)
        instructions, cycles = r.instructions, r.cycles
        counted.append(r.wall_time_s)
        warm.append(warm_emulator.run(image.elf, batch, budget_instructions=10**10,
                                      timeout_s=600).wall_time_s)
        r0 = Emulator(board).run(image.elf, batch, budget_instructions=10**10, timeout_s=600,
                                 count=False)
        raw.append(r0.wall_time_s)
    t_count, t_raw, t_warm = (statistics.median(x) for x in (counted, raw, warm))
    return {
        "model": model_path.name, "board": board_name, "kernels": kernels,
        "inferences_per_run": inferences, "instructions": instructions, "estimated_cycles": cycles,
        "seconds_counting": t_count, "seconds_counting_warm": t_warm,
        "seconds_no_hook": t_raw,
        "mips_counting": instructions / t_count / 1e6,
        "mips_counting_warm": instructions / t_warm / 1e6,
        "mips_no_hook": instructions / t_raw / 1e6,
        "counting_speed_ratio": t_raw / t_count,
        "counting_speed_ratio_warm": t_raw / t_warm,
        "best_of": {"counting": min(counted), "counting_warm": min(warm), "no_hook": min(raw)},
        "target_speed_ratio": TARGET_SPEED_RATIO,
        "meets_target": t_raw / t_count >= TARGET_SPEED_RATIO,
    }


def bench_estimate(model_path: Path, board_name: str) -> dict:
    board = load_board(board_name)
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        estimate(model_path, board, builder=FirmwareBuilder(cache_dir=Path(cache)))
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        est = estimate(model_path, board, builder=FirmwareBuilder(cache_dir=Path(cache)))
        warm = time.perf_counter() - t0
    return {"model": model_path.name, "board": board_name, "estimate_seconds_cold_build": cold,
            "estimate_seconds_warm": warm, "estimated_ms": est.ms, "cycles": est.cycles,
            "instructions": est.instructions}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    ap.add_argument("--board", default="nucleo-l4r5zi")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-kernels", action="store_true",
                    help="skip the per-kernel-set benchmark of the MLPerf Tiny models")
    ap.add_argument("--no-ops", action="store_true",
                    help="skip the op-family models (bench_ops.py; needs TensorFlow)")
    ap.add_argument("--no-timing", action="store_true",
                    help="skip the per-model, per-board timing breakdown (bench_timing.py)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = resolve_model(None)
    result = {
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "platform": platform.platform()},
        "emulation": [bench_emulation(model, args.board, "reference", args.repeats)],
        "estimate": [bench_estimate(model, args.board)],
        "polling": bench_polling.run(),
        "addrprog": bench_addrprog.run(),
    }
    if not args.no_kernels:
        result["kernels"] = bench_kernels.run(bench_kernels.default_models(), args.board)
    if not args.no_ops:
        result["ops"] = bench_ops.run(args.board, args.out)
    if not args.no_timing:
        result["timing"] = bench_timing.run(bench_timing.default_models(),
                                            bench_timing.list_boards())
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "bench.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)
    print(json.dumps({k: v for k, v in result.items() if k not in ("kernels", "ops", "timing")},
                     indent=2))
    if "kernels" in result:
        print(bench_kernels.format_summary(result["kernels"]))
    if "ops" in result:
        print(bench_ops.format_summary(result["ops"]))
    if "timing" in result:
        print(bench_timing.format_summary(result["timing"]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
