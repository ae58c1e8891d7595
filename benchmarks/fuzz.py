"""Long mutational fuzz: model mutants through `estimate` (parse, lower, build, emulate).

The test suite runs a bounded fuzz of the front end (tests/models/test_fuzz.py); this runs
thousands of mutants of the shared MLPerf Tiny models all the way through
``tinymeter.apps.estimate.estimate`` and counts the outcomes: ``ok``, each TinymeterError
class, and ``traceback`` (any other exception: a bug, listed with its seed so it can
be replayed with ``--seed-start SEED --count 1``). Writes ``fuzz.json``; exit status 1
if any traceback was seen.

    make fuzz                        # FUZZ_COUNT=10000 by default
    .venv/bin/python benchmarks/fuzz.py --count 500 --out bench-results
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

from tqdm import tqdm

from tinymeter.apps.estimate import estimate
from tinymeter.core.boards import load_board
from tinymeter.core.errors import TinymeterError
from tinymeter.models.mutate import mutate_bytes, mutate_model
from tinymeter.models.tflite import load_tflite, serialize_tflite

ROOT = Path(__file__).resolve().parents[1]
MLPERF = ROOT / ".." / "shared" / "models" / "mlperf-tiny"
MODELS = ("ad01_int8.tflite", "kws_ref_model.tflite", "pretrainedResnet_quant.tflite",
          "vww_96_int8.tflite")


def mutant_bytes(seed: int) -> tuple[str, bytes | None, list[str]]:
    """The mutant of *seed* (model and mutations are drawn from it): (model, bytes, how)."""
    rng = random.Random(seed)
    name = MODELS[rng.randrange(len(MODELS))]
    if rng.random() < 0.15:
        return name, mutate_bytes((MLPERF / name).read_bytes(), rng, rng.randint(1, 3)), ["bytes"]
    mutant, how = mutate_model(load_tflite(MLPERF / name), rng, rng.randint(1, 3))
    try:
        return name, serialize_tflite(mutant, verify=False), how
    except Exception:  # the writer refuses the mutant: not a product path
        return name, None, how


def run_one(seed: int, work: Path, board: object, timeout_s: float) -> str:
    _name, data, _how = mutant_bytes(seed)
    if data is None:
        return "writer-refused"
    path = work / f"m{seed}.tflite"
    path.write_bytes(data)
    try:
        estimate(path, board, budget_instructions=200_000_000, timeout_s=timeout_s)  # type: ignore[arg-type]
    except TinymeterError as exc:
        return type(exc).__name__
    finally:
        path.unlink(missing_ok=True)
    return "ok"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seed-start", type=int, default=0)
    ap.add_argument("--board", default="nucleo-l4r5zi")
    ap.add_argument("--timeout", type=float, default=30.0, help="wall-clock limit per mutant")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    args = ap.parse_args()
    if not all((MLPERF / m).exists() for m in MODELS):
        print(f"fuzz: the shared MLPerf Tiny models are not in {MLPERF}", file=sys.stderr)
        return 2
    board = load_board(args.board)
    counts: collections.Counter[str] = collections.Counter()
    tracebacks = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tm-fuzz-") as tmp:
        for seed in tqdm(range(args.seed_start, args.seed_start + args.count), unit="mutant",
                         disable=not sys.stderr.isatty()):
            try:
                counts[run_one(seed, Path(tmp), board, args.timeout)] += 1
            except Exception:
                counts["traceback"] += 1
                tracebacks.append({"seed": seed, "how": mutant_bytes(seed)[2],
                                   "traceback": traceback.format_exc().splitlines()[-6:]})
    result = {"mutants": args.count, "seed_start": args.seed_start, "board": args.board,
              "seconds": round(time.monotonic() - t0, 1), "outcomes": dict(sorted(counts.items())),
              "tracebacks": tracebacks}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fuzz.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "tracebacks"}, indent=2))
    return 1 if tracebacks else 0


if __name__ == "__main__":
    raise SystemExit(main())
