"""Kernel-set benchmark: instructions per inference, reference vs optimized kernels.

Why: the optimized (DSP SIMD) kernel set exists to reach CMSIS-NN-class speed on
Cortex-M4/M7 while staying bit-exact with TFLM. This script measures that claim on
the MLPerf Tiny reference models: it builds and emulates one inference per model and
kernel set (``tinymeter.apps.estimate.estimate``), and reports

* instructions per inference for each set, next to the TFLM + CMSIS-NN figure we
  aim for (``CMSIS_NN_TARGETS``, optimized must be within ``TARGET_SLACK`` of it);
* the optimized/reference speedup per layer type (CONV_2D by kernel size,
  DEPTHWISE_CONV_2D, FULLY_CONNECTED, ...), summed over all models, because a
  model total hides which kernel is slow.

Instruction counts (not cycles) are compared: they are what the emulator measures
exactly, independent of the cost model's calibration. Layer types are read from the
lowering (``Layer.info["kernel_size"]``), since the estimate only carries op names.

Usable alone (``python benchmarks/bench_kernels.py --out bench-results``) and from
``benchmarks/run_all.py`` (the "kernels" section of ``bench.json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tinymeter.apps.estimate import estimate
from tinymeter.core.boards import DEFAULT_BOARD, load_board
from tinymeter.firmware.build import KERNEL_SETS, BuildConfig
from tinymeter.firmware.codegen import generate
from tinymeter.models.tflite import load_tflite

log = logging.getLogger("bench.kernels")

MLPERF_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "mlperf-tiny"

#: TFLM + CMSIS-NN instructions per inference on the M4 board (MLPerf Tiny reference
#: models); the optimized set is on target when within TARGET_SLACK of these.
CMSIS_NN_TARGETS: dict[str, int] = {
    "kws_ref_model.tflite": 7_700_000,
    "vww_96_int8.tflite": 24_100_000,
    "pretrainedResnet_quant.tflite": 29_900_000,
    "ad01_int8.tflite": 580_000,
}
TARGET_SLACK = 1.2


def layer_types(model_path: Path) -> list[str]:
    """Report label per layer: the op name, plus the kernel size for CONV_2D.

    1x1 and kxk convolutions run different optimized paths with very different
    arithmetic intensity, so they are reported separately.
    """
    gen = generate(load_tflite(model_path), name=model_path.stem)
    labels = []
    for layer in gen.layers:
        if layer.op_name == "CONV_2D":
            labels.append(f"CONV_2D {layer.info.get('kernel_size', '?')}")
        else:
            labels.append(layer.op_name)
    return labels


def bench_model(model_path: Path, board_name: str,
                kernel_sets: Sequence[str] = KERNEL_SETS) -> dict[str, Any]:
    """Instructions per inference and per layer for each kernel set of one model."""
    board = load_board(board_name)
    labels = layer_types(model_path)
    result: dict[str, Any] = {"model": model_path.name, "board": board_name, "sets": {}}
    for kernels in kernel_sets:
        t0 = time.perf_counter()
        est = estimate(model_path, board, BuildConfig(kernels=kernels),
                       budget_instructions=10**10, timeout_s=1200)
        result["sets"][kernels] = {
            "instructions": est.instructions,
            "cycles": est.cycles,
            "flash_bytes": est.flash_bytes,
            "stack_bytes": est.stack_bytes,
            "seconds": time.perf_counter() - t0,
            "layers": [{"index": r.index, "op": r.op, "type": labels[r.index], "macs": r.macs,
                        "instructions": r.instructions} for r in est.layers],
        }
        log.info("%s %s: %d instructions", model_path.name, kernels, est.instructions)
    sets = result["sets"]
    if "reference" in sets and "optimized" in sets:
        ref, opt = sets["reference"]["instructions"], sets["optimized"]["instructions"]
        result["speedup"] = ref / opt if opt else None
    target = CMSIS_NN_TARGETS.get(model_path.name)
    if target is not None and "optimized" in sets:
        ratio = sets["optimized"]["instructions"] / target
        result["cmsis_nn_target"] = target
        result["ratio_to_target"] = ratio
        result["on_target"] = ratio <= TARGET_SLACK
    return result


def speedups_by_type(models: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Reference/optimized instruction totals and speedup per layer type, over all models."""
    totals: dict[str, dict[str, int]] = {}
    for m in models:
        sets = m["sets"]
        if "reference" not in sets or "optimized" not in sets:
            continue
        for r, o in zip(sets["reference"]["layers"], sets["optimized"]["layers"]):
            t = totals.setdefault(r["type"], {"layers": 0, "macs": 0, "reference": 0,
                                              "optimized": 0})
            t["layers"] += 1
            t["macs"] += r["macs"]
            t["reference"] += r["instructions"]
            t["optimized"] += o["instructions"]
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(totals):
        t = totals[name]
        out[name] = dict(t, speedup=t["reference"] / t["optimized"] if t["optimized"] else None,
                         optimized_per_mac=t["optimized"] / t["macs"] if t["macs"] else None)
    return out


def run(models: Sequence[Path], board_name: str = DEFAULT_BOARD) -> dict[str, Any]:
    """The "kernels" section: per-model results and per-layer-type speedups.

    A model that fails to build or run (e.g. an op not implemented yet) is reported
    with its error instead of aborting the whole benchmark.
    """
    results, errors = [], []
    for path in models:
        try:
            results.append(bench_model(path, board_name))
        except Exception as exc:  # report it and continue with the other models
            log.warning("%s: %s", path.name, exc)
            errors.append({"model": path.name, "error": f"{type(exc).__name__}: {exc}"})
    return {"board": board_name, "target_slack": TARGET_SLACK, "models": results,
            "by_layer_type": speedups_by_type(results), "errors": errors}


def default_models() -> list[Path]:
    """The MLPerf Tiny reference models that exist in the shared model folder."""
    return [MLPERF_DIR / name for name in CMSIS_NN_TARGETS if (MLPERF_DIR / name).exists()]


def format_summary(section: dict[str, Any]) -> str:
    """A human-readable table of the section (per model, then per layer type)."""
    lines = [f"{'model':32} {'reference':>12} {'optimized':>12} {'speedup':>8} "
             f"{'target':>12} {'opt/target':>10}"]
    for m in section["models"]:
        sets = m["sets"]
        ref = sets.get("reference", {}).get("instructions", 0)
        opt = sets.get("optimized", {}).get("instructions", 0)
        lines.append(f"{m['model']:32} {ref:12,d} {opt:12,d} {m.get('speedup') or 0:8.2f} "
                     f"{m.get('cmsis_nn_target', 0):12,d} {m.get('ratio_to_target') or 0:10.2f}")
    lines.append("")
    lines.append(f"{'layer type':24} {'layers':>6} {'reference':>12} {'optimized':>12} "
                 f"{'speedup':>8} {'opt/MAC':>8}")
    for name, t in section["by_layer_type"].items():
        lines.append(f"{name:24} {t['layers']:6d} {t['reference']:12,d} {t['optimized']:12,d} "
                     f"{t['speedup'] or 0:8.2f} {t['optimized_per_mac'] or 0:8.2f}")
    for e in section["errors"]:
        lines.append(f"error: {e['model']}: {e['error']}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path, help="default: the MLPerf Tiny models")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    ap.add_argument("--board", default=DEFAULT_BOARD)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    section = run(args.models or default_models(), args.board)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "bench_kernels.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(section, indent=2) + "\n")
    os.replace(tmp, out)
    print(format_summary(section))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
