"""One candidate, as a worker runs it: train, convert, inspect, then estimate on every
target (own runtime or a registered TFLM library). Picklable jobs and results: they
travel to spawned processes and Dask workers."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinymeter.apps.estimate import estimate
from tinymeter.apps.sweep.space import TFLM_KERNEL_SETS, Target
from tinymeter.apps.tflm import estimate_tflm
from tinymeter.core.boards import load_board
from tinymeter.core.errors import TinymeterError
from tinymeter.firmware.build import BuildConfig
from tinymeter.firmware.lower import lowerings
from tinymeter.firmware.tflmconfig import resolve_library
from tinymeter.models.digits import (
    Candidate,
    DigitsData,
    TrainRecipe,
    build_keras,
    convert,
    load_digits_split,
    tflite_accuracy,
    train,
)
from tinymeter.models.inspect import inspect_model
from tinymeter.models.tflite import parse_tflite

log = logging.getLogger(__name__)


def supported_head() -> str:
    """"softmax" when the firmware runtime lowers RESHAPE and SOFTMAX, else "logits".

    The deployed classifier ends in a conv whose kernel covers the whole feature map
    (1x1x10 logits). Softmax does not change the arg-max, so while the runtime lacks
    RESHAPE/SOFTMAX the sweep deploys logits and still measures the whole network
    body; the head is part of the candidate hash, so results never mix the two.
    """
    ops = lowerings()
    return "softmax" if "RESHAPE" in ops and "SOFTMAX" in ops else "logits"


@dataclass(frozen=True)
class CandidateJob:
    """What a worker needs; picklable (goes to spawned processes or Dask workers).

    ``tflite`` is set when the candidate was trained by an earlier run and only some
    targets are missing: then the worker only emulates.
    """

    key: str
    candidate: Candidate
    recipe: TrainRecipe
    head: str
    targets: tuple[Target, ...]
    tflite: bytes | None = None
    metrics: Mapping[str, Any] | None = None


@dataclass
class CandidateResult:
    """A worker's answer: training metrics and one summary (or error) per target."""

    key: str
    metrics: dict[str, Any] = field(default_factory=dict)
    tflite: bytes | None = None
    error: str | None = None
    #: target label -> estimate summary
    estimates: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: target label -> error message
    estimate_errors: dict[str, str] = field(default_factory=dict)


def estimate_summary(est: Any) -> dict[str, Any]:
    """The fields of an :class:`~tinymeter.analysis.report.Estimate` a sweep keeps per target."""
    return {"ms": est.ms, "cycles": est.cycles, "energy_uj": est.energy_uj, "instructions": est.instructions,
            "cost_model": est.cost_model,
            "arena_bytes": est.arena_bytes, "flash_bytes": est.flash_bytes, "ram_bytes": est.ram_bytes,
            "weight_bytes": est.weight_bytes, "layers": [
                {"op": r.op, "macs": r.macs, "cycles": r.cycles, "ms": r.ms} for r in est.layers]}


def train_candidate(candidate: Candidate, recipe: TrainRecipe, head: str,
                    data: DigitsData | None = None) -> tuple[bytes, dict[str, Any]]:
    """Train, convert to int8 and measure host accuracy: (tflite bytes, metrics)."""
    data = data or load_digits_split(recipe.test_fraction, recipe.seed)
    t0 = time.monotonic()
    train_model, deploy = build_keras(candidate, head, recipe.seed)
    float_acc = train(train_model, data, recipe)
    tflite = convert(deploy, data, "int8")
    acc = tflite_accuracy(tflite, data.x_test, data.y_test)
    summary = inspect_model(parse_tflite(tflite))
    return tflite, {"accuracy": acc, "float_accuracy": float_acc, "macs": summary.total_macs,
                    "params": summary.total_params, "train_seconds": time.monotonic() - t0}


def estimate_tflite(tflite: bytes, target: Target) -> dict[str, Any]:
    """Emulate a .tflite on one target and return :func:`estimate_summary`."""
    board = load_board(target.board)
    with tempfile.TemporaryDirectory(prefix="tm-nas-") as tmp:
        path = Path(tmp) / "candidate.tflite"
        path.write_bytes(tflite)
        if target.kernels in TFLM_KERNEL_SETS:
            library = resolve_library(board.core.name, kernels=target.kernels[5:] or None)
            est = estimate_tflm(path, board, library)
        else:
            est = estimate(path, board, BuildConfig(kernels=target.kernels))
    return estimate_summary(est)


def evaluate_candidate(job: CandidateJob) -> CandidateResult:
    """Worker entry point: train if needed, then emulate on every requested target.

    Never raises for a user-level failure: errors are returned so one bad candidate
    (say, an op the runtime lacks) is recorded and the sweep goes on.
    """
    result = CandidateResult(job.key)
    if job.tflite is None:
        try:
            result.tflite, result.metrics = train_candidate(job.candidate, job.recipe, job.head)
        except TinymeterError as exc:
            result.error = f"training/conversion failed: {exc}"
            return result
    else:
        result.tflite, result.metrics = job.tflite, dict(job.metrics or {})
    for target in job.targets:
        try:
            result.estimates[target.label] = estimate_tflite(result.tflite, target)
        except TinymeterError as exc:
            result.estimate_errors[target.label] = str(exc)
    return result
