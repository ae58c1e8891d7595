"""Implementation-aware neural architecture search (NAS) on a real, offline dataset.

Why "implementation-aware": on a microcontroller, latency is not a function of MACs.
Kernels have fast paths (the optimized set processes channels in pairs/quads with
SIMD; odd channel counts fall back to scalar tails), layers have fixed overheads, and
flash wait states punish large weights. A search that ranks architectures by MACs
picks the wrong models; this one trains every candidate on scikit-learn's *digits*
(8x8 images, ships with scikit-learn, no download), converts it to int8 and *emulates
the firmware* on each board to get latency, energy, tensor arena and flash, then
keeps the accuracy-vs-latency Pareto front.

The package, pure logic first:

* :mod:`~tinymeter.apps.sweep.space`: search space → deterministic candidate list
  (``candidates``), candidate hash (``candidate_key``), strict configuration
  (``SweepConfig.from_mapping``);
* :mod:`~tinymeter.apps.sweep.pareto`: Pareto front and the MACs-vs-latency inversions
  that show the channel-parity effect (``pareto_front``, ``non_monotonic_pairs``);
* :mod:`tinymeter.models.digits`: the model family (data, architecture, training,
  conversion, host accuracy; TensorFlow imported lazily so the pure parts and the
  CLI's help work without TF);
* :mod:`~tinymeter.apps.sweep.worker` (one candidate) and
  :mod:`~tinymeter.apps.sweep.executors`: local process pool (``spawn`` context: TF is
  not fork-safe), in-process ``serial``, or a Dask cluster (``dask://HOST:PORT``);
* this module, the driver (:func:`run_sweep`): results are committed one by one to
  :mod:`tinymeter.apps.sweep.db`, keyed by candidate hash, so an interrupted sweep
  resumes without redoing finished work; :func:`write_outputs` writes the CSV and the
  plots (:mod:`tinymeter.apps.sweep.plots`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tinymeter.apps.sweep import plots as nas_plots
from tinymeter.apps.sweep.db import SweepDB
from tinymeter.apps.sweep.executors import Evaluate, _import_dask, _run_jobs, parse_executor
from tinymeter.apps.sweep.pareto import SweepRow, group_by_target, pareto_rows, rows_csv
from tinymeter.apps.sweep.space import TFLM_KERNEL_SETS, SweepConfig, Target
from tinymeter.apps.sweep.worker import CandidateJob, CandidateResult, evaluate_candidate, supported_head
from tinymeter.core.boards import load_board
from tinymeter.firmware.build import BuildConfig, FirmwareBuilder
from tinymeter.firmware.codegen import generate
from tinymeter.models.builders import bias_tensor, int8_tensor, random_int8, single_op_model_ir

log = logging.getLogger(__name__)





def _warm_firmware_cache(targets: Sequence[Target]) -> None:
    """Compile the runtime objects of each (core, kernel set) once, before the pool starts.

    The builder caches runtime objects per (core, config); several workers compiling
    the same set at the same moment would race on the cache directory, so the parent
    builds them first (a one-layer model: about a second per core).
    """
    x = int8_tensor("x", (1, 4), 0.05, 0)
    w = int8_tensor("w", (4, 4), 0.01, 0, data=random_int8((4, 4), seed=0))
    b = bias_tensor("b", np.zeros(4, np.int32), input_scale=0.05, weight_scales=w)
    y = int8_tensor("y", (1, 4), 0.2, 0)
    gen = generate(single_op_model_ir("FULLY_CONNECTED", [x, w, b], [y]), name="warmup")
    builder = FirmwareBuilder()
    seen = set()
    for t in targets:
        board = load_board(t.board)
        if (board.core.name, t.kernels) in seen or t.kernels in TFLM_KERNEL_SETS:
            continue  # TFLM targets link the user's library per candidate: nothing shared
        seen.add((board.core.name, t.kernels))
        builder.build(gen, board, BuildConfig(kernels=t.kernels))


# ==================================================================== the sweep


@dataclass
class SweepResult:
    """What a sweep produced (from this run and earlier ones) and what it cost now."""

    config: SweepConfig
    rows: list[SweepRow]
    trained: int = 0
    emulated: int = 0
    reused: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def fronts(self, metric: str = "ms") -> dict[tuple[str, str], list[SweepRow]]:
        return {t: pareto_rows(rs, metric) for t, rs in group_by_target(self.rows).items()}


def plan_jobs(config: SweepConfig, db: SweepDB, head: str, *, retry_failed: bool = False
              ) -> tuple[list[CandidateJob], int]:
    """Jobs still to do for *config* given what *db* holds; also the count reused.

    Finished (candidate, target) pairs are skipped; a trained candidate missing only
    some targets gets an emulation-only job; failed candidates are skipped unless
    *retry_failed*, because their failure is usually deterministic.
    """
    jobs, reused = [], 0
    for key, cand in config.keyed_candidates(head):
        row = db.get_candidate(key)
        if row is not None and row.status == "error" and not retry_failed:
            reused += 1
            continue
        trained = row is not None and row.status == "ok" and row.tflite is not None
        missing = []
        for t in config.targets:
            est = db.get_estimate(key, t.board, t.kernels)
            if est is None or (est.status != "ok" and retry_failed):
                missing.append(t)
        if trained and not missing:
            reused += 1
            continue
        jobs.append(CandidateJob(key, cand, config.recipe, head, tuple(missing),
                                 row.tflite if trained and row else None,
                                 row.metrics if trained and row else None))
    return jobs, reused


def _store(db: SweepDB, job: CandidateJob, result: CandidateResult | BaseException) -> str | None:
    """Commit one worker answer; returns an error message if the candidate failed."""
    put_candidate = functools.partial(db.put_candidate, job.key, job.candidate.family,
                                      job.candidate.params(), {**asdict(job.recipe), "head": job.head})
    if isinstance(result, BaseException):
        message = f"{type(result).__name__}: {result}"
        put_candidate(status="error", error=message)
        return message
    if result.error is not None:
        put_candidate(status="error", error=result.error)
        return result.error
    if job.tflite is None:
        put_candidate(status="ok", metrics=result.metrics, tflite=result.tflite)
    errors = []
    for t in job.targets:
        if t.label in result.estimates:
            db.put_estimate(job.key, t.board, t.kernels, status="ok", summary=result.estimates[t.label])
        else:
            msg = result.estimate_errors.get(t.label, "no result")
            db.put_estimate(job.key, t.board, t.kernels, status="error", error=msg)
            errors.append(f"{t.label}: {msg}")
    return "; ".join(errors) or None


def collect_rows(config: SweepConfig, db: SweepDB, head: str) -> list[SweepRow]:
    """Flat rows of every finished (candidate, target) of *config* in the database."""
    rows = []
    for key, cand in config.keyed_candidates(head):
        c = db.get_candidate(key)
        if c is None or c.status != "ok":
            continue
        for t in config.targets:
            e = db.get_estimate(key, t.board, t.kernels)
            if e is None or e.status != "ok":
                continue
            s, m = e.summary, c.metrics
            rows.append(SweepRow(key=key, name=cand.name, width=cand.width, depth=cand.depth,
                                 kernel=cand.kernel, board=t.board, kernels=t.kernels,
                                 accuracy=float(m["accuracy"]), float_accuracy=float(m["float_accuracy"]),
                                 macs=int(m["macs"]), params=int(m["params"]), ms=float(s["ms"]),
                                 cycles=int(s["cycles"]), energy_uj=float(s["energy_uj"]),
                                 arena_bytes=int(s["arena_bytes"]), flash_bytes=int(s["flash_bytes"]),
                                 cost_model=str(s.get("cost_model", ""))))
    return rows


def run_sweep(config: SweepConfig, db_path: Path | str, *, executor: str = "process",
              workers: int | None = None, evaluate: Evaluate = evaluate_candidate,
              head: str | None = None, retry_failed: bool = False, progress: bool = True,
              on_result: Callable[[CandidateJob], None] | None = None) -> SweepResult:
    """Run (or resume) a sweep; every finished candidate is committed to *db_path*.

    *evaluate* is the worker function (a top-level function: it is pickled for the
    process pool and Dask); tests inject a fake one. *on_result* is called after each
    commit (tests use it to simulate an interruption). *head* defaults to what the
    runtime supports (:func:`supported_head`).
    """
    t0 = time.monotonic()
    kind, _ = parse_executor(executor)
    if kind == "dask":
        _import_dask()  # fail before any work if dask is missing

    for board in config.boards:
        load_board(board)  # unknown boards fail now, not in every worker
    head = head or supported_head()
    workers = workers or max(1, min(os.cpu_count() or 1, 8))
    result = SweepResult(config, [])
    with SweepDB(db_path) as db:
        keys = [key for key, _ in config.keyed_candidates(head)]
        db.add_to_sweep(config.name, keys)
        jobs, result.reused = plan_jobs(config, db, head, retry_failed=retry_failed)
        log.info("sweep %s: %d candidates, %d to run, %d reused from %s", config.name, len(keys),
                 len(jobs), result.reused, db_path)
        if jobs and evaluate is evaluate_candidate:
            _warm_firmware_cache(config.targets)
        bar = tqdm(total=len(jobs), desc=f"sweep {config.name}", unit="cand", disable=not progress)
        stream = _run_jobs(jobs, evaluate, executor, workers)
        try:
            for job, answer in stream:
                error = _store(db, job, answer)
                if error:
                    result.failed[job.candidate.name] = error
                    log.warning("candidate %s: %s", job.candidate.name, error)
                if job.tflite is None and not isinstance(answer, BaseException) and answer.error is None:
                    result.trained += 1
                result.emulated += len(job.targets)
                bar.update(1)
                if on_result is not None:
                    on_result(job)
        finally:
            stream.close()
            bar.close()
        result.rows = collect_rows(config, db, head)
    result.seconds = time.monotonic() - t0
    return result


def write_outputs(result: SweepResult, out_dir: Path | str, metric: str = "ms") -> dict[str, Path]:
    """results.csv, pareto.json, pareto.png and parity.png into *out_dir*."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "results.csv", "pareto_json": out / "pareto.json",
             "pareto_png": out / "pareto.png", "parity_png": out / "parity.png"}
    paths["csv"].write_text(rows_csv(result.rows))
    fronts = result.fronts(metric)
    paths["pareto_json"].write_text(json.dumps(
        {f"{b}/{k}": [asdict(r) for r in rows] for (b, k), rows in fronts.items()}, indent=2) + "\n")
    nas_plots.plot_pareto(result.rows, paths["pareto_png"], metric=metric)
    nas_plots.plot_parity(result.rows, paths["parity_png"])
    return paths
