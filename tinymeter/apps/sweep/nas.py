"""Implementation-aware neural architecture search (NAS) on a real, offline dataset.

Why "implementation-aware": on a microcontroller, latency is not a function of MACs.
Kernels have fast paths (the optimized set processes channels in pairs/quads with
SIMD; odd channel counts fall back to scalar tails), layers have fixed overheads, and
flash wait states punish large weights. A search that ranks architectures by MACs
picks the wrong models; this one trains every candidate on scikit-learn's *digits*
(8x8 images, ships with scikit-learn, no download), converts it to int8 and *emulates
the firmware* on each board to get latency, energy, tensor arena and flash, then
keeps the accuracy-vs-latency Pareto front.

Layout, pure logic first:

* search space → deterministic candidate list (:func:`candidates`), candidate hash
  (:func:`candidate_key`), strict configuration (:meth:`SweepConfig.from_mapping`);
* Pareto front and the MACs-vs-latency inversions that show the channel-parity effect
  (:func:`pareto_front`, :func:`non_monotonic_pairs`) — pure, unit-tested;
* TensorFlow parts (data, model, training, conversion, host accuracy), imported
  lazily so the pure parts and the CLI's help work without TF;
* the sweep driver (:func:`run_sweep`): local process pool (``spawn`` context: TF is
  not fork-safe), in-process ``serial``, or a Dask cluster (``dask://HOST:PORT``,
  imported only then). Results are committed one by one to :mod:`tinymeter.apps.sweep.db`, keyed by
  candidate hash, so an interrupted sweep resumes without redoing finished work.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import itertools
import json
import logging
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from tinymeter import __version__
from tinymeter.apps.sweep.db import SweepDB
from tinymeter.core.errors import ConfigError, TinymeterError
from tinymeter.core.texttable import text_table

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras

log = logging.getLogger(__name__)
#: Sweep targets running in a registered TFLM library (``tinymeter tflm add``): the
#: core's preferred one, or the one of a kernel set.
TFLM_KERNEL_SETS = ("tflm", "tflm-cmsis-nn", "tflm-reference")

#: Part of every candidate hash: bump when the model family, training or conversion
#: changes in a way that invalidates stored results.
NAS_VERSION = 1

FAMILIES = ("digits_cnn",)
NUM_CLASSES = 10
INPUT_SHAPE = (8, 8, 1)

#: Metrics a Pareto front can be drawn over (lower is better), as stored per estimate.
COST_METRICS = ("ms", "energy_uj", "arena_bytes", "flash_bytes")


# ============================================================ search space (pure)


def _int_tuple(key: str, value: Any) -> tuple[int, ...]:
    """Accept "4,6,8", 4 or [4, 6, 8]; every entry a positive int."""
    if isinstance(value, str):
        try:
            items = [int(v) for v in value.replace(" ", "").split(",") if v]
        except ValueError:
            raise ConfigError(f"{key} must be a comma-separated list of integers, got {value!r}") from None
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        items = [int(value)]
    elif isinstance(value, (list, tuple)):
        items = []
        for v in value:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ConfigError(f"{key} entries must be integers, got {v!r}")
            items.append(int(v))
    else:
        raise ConfigError(f"{key} must be a list of integers, got {value!r}")
    if not items or any(i < 1 for i in items):
        raise ConfigError(f"{key} must be a non-empty list of positive integers, got {value!r}")
    return tuple(sorted(set(items)))


def _str_tuple(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        raise ConfigError(f"{key} must be a list of names, got {value!r}")
    if not items:
        raise ConfigError(f"{key} must not be empty")
    return tuple(dict.fromkeys(items))  # de-duplicated, order kept


@dataclass(frozen=True)
class SearchSpace:
    """Width (channels), depth (conv blocks) and kernel size of the digits CNN family.

    Odd widths are in the default space on purpose: they are where the optimized
    kernels leave their fast paths, the effect the sweep is meant to expose.
    """

    widths: tuple[int, ...] = (4, 5, 6, 7, 8, 12, 16)
    depths: tuple[int, ...] = (1, 2, 3)
    kernel_sizes: tuple[int, ...] = (3, 5)

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", _int_tuple("widths", self.widths))
        object.__setattr__(self, "depths", _int_tuple("depths", self.depths))
        object.__setattr__(self, "kernel_sizes", _int_tuple("kernel_sizes", self.kernel_sizes))
        if max(self.depths) > 3:
            raise ConfigError("depths must be <= 3 (8x8 digits are down to 2x2 after two strides)")
        if any(k % 2 == 0 for k in self.kernel_sizes):
            raise ConfigError(f"kernel_sizes must be odd, got {list(self.kernel_sizes)}")

    @property
    def size(self) -> int:
        return len(self.widths) * len(self.depths) * len(self.kernel_sizes)


@dataclass(frozen=True, order=True)
class Candidate:
    """One architecture of the family; ordering is the deterministic sweep order."""

    depth: int
    kernel: int
    width: int
    family: str = "digits_cnn"

    @property
    def name(self) -> str:
        return f"w{self.width}-d{self.depth}-k{self.kernel}"

    def params(self) -> dict[str, int]:
        return {"width": self.width, "depth": self.depth, "kernel": self.kernel}


def candidates(space: SearchSpace, max_candidates: int | None = None, seed: int = 0) -> list[Candidate]:
    """The search space as a sorted candidate list; a seeded subset if capped.

    Deterministic for a given (space, cap, seed) so that a resumed sweep asks for the
    same candidates, and sorted so runs and reports list them in the same order.
    """
    grid = sorted(Candidate(depth=d, kernel=k, width=w)
                  for w, d, k in itertools.product(space.widths, space.depths, space.kernel_sizes))
    if max_candidates is None or max_candidates >= len(grid):
        return grid
    if max_candidates < 1:
        raise ConfigError(f"max_candidates must be >= 1, got {max_candidates}")
    picked = np.random.default_rng(seed).permutation(len(grid))[:max_candidates]
    return sorted(grid[i] for i in picked)


@dataclass(frozen=True)
class TrainRecipe:
    """Everything about training that changes the resulting model."""

    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 0.01
    seed: int = 0
    test_fraction: float = 0.25

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be >= 1")
        if not 0.05 <= self.test_fraction <= 0.5:
            raise ConfigError(f"test_fraction must be in [0.05, 0.5], got {self.test_fraction}")
        if self.learning_rate <= 0:
            raise ConfigError("learning_rate must be > 0")


@dataclass(frozen=True)
class Target:
    """Where a candidate is estimated: a board and a kernel set."""

    board: str
    kernels: str

    @property
    def label(self) -> str:
        return f"{self.board}/{self.kernels}"


@dataclass(frozen=True)
class SweepConfig:
    """A whole sweep: space, training recipe, targets, and how many candidates."""

    name: str = "digits"
    space: SearchSpace = field(default_factory=SearchSpace)
    recipe: TrainRecipe = field(default_factory=TrainRecipe)
    boards: tuple[str, ...] = ("nucleo-l4r5zi",)
    kernel_sets: tuple[str, ...] = ("optimized",)
    max_candidates: int | None = None

    def __post_init__(self) -> None:
        from tinymeter.firmware.build import KERNEL_SETS

        object.__setattr__(self, "boards", _str_tuple("boards", self.boards))
        object.__setattr__(self, "kernel_sets", _str_tuple("kernel_sets", self.kernel_sets))
        bad = [k for k in self.kernel_sets if k not in KERNEL_SETS + TFLM_KERNEL_SETS]
        if bad:
            raise ConfigError(f"unknown kernel set(s) {bad}; choose from "
                              f"{list(KERNEL_SETS + TFLM_KERNEL_SETS)}")

    @property
    def targets(self) -> tuple[Target, ...]:
        return tuple(Target(b, k) for b in self.boards for k in self.kernel_sets)

    def candidates(self) -> list[Candidate]:
        return candidates(self.space, self.max_candidates, self.recipe.seed)

    def keyed_candidates(self, head: str) -> list[tuple[str, Candidate]]:
        """(database key, candidate) of every candidate, in sweep order."""
        return [(candidate_key(c, self.recipe, head), c) for c in self.candidates()]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SweepConfig:
        """Build from a flat mapping (JSON config, notebook); unknown keys are errors.

        Flat keys: name, widths, depths, kernel_sizes, epochs, batch_size, learning_rate,
        seed, test_fraction, boards, kernel_sets, max_candidates.
        """
        space_keys = {f.name for f in fields(SearchSpace)}
        recipe_keys = {f.name for f in fields(TrainRecipe)}
        top_keys = {"name", "boards", "kernel_sets", "max_candidates"}
        unknown = sorted(set(data) - space_keys - recipe_keys - top_keys)
        if unknown:
            raise ConfigError(f"unknown sweep config key(s) {unknown}; valid keys: "
                              f"{sorted(space_keys | recipe_keys | top_keys)}")
        try:
            space = SearchSpace(**{k: data[k] for k in space_keys if k in data})
            recipe = TrainRecipe(**{k: data[k] for k in recipe_keys if k in data})
        except TypeError as exc:
            raise ConfigError(f"invalid sweep config: {exc}") from None
        top = {k: data[k] for k in top_keys if k in data}
        return cls(space=space, recipe=recipe, **top)


def candidate_key(candidate: Candidate, recipe: TrainRecipe, head: str) -> str:
    """Hex SHA-256 of everything that determines a trained candidate's .tflite.

    The database is keyed by this, so results survive across sweeps that share
    candidates and a changed recipe never reuses stale models.
    """
    blob = json.dumps({"family": candidate.family, "params": candidate.params(), "recipe": asdict(recipe),
                       "head": head, "nas_version": NAS_VERSION, "tinymeter": __version__},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def channel_parity(width: int) -> str:
    """Fast-path class of a channel count: multiple of 4, even, or odd."""
    if width % 4 == 0:
        return "x4"
    return "even" if width % 2 == 0 else "odd"


# ====================================================== results and analysis (pure)


@dataclass(frozen=True)
class SweepRow:
    """One (candidate, target) result, flat, for tables, CSV and plots."""

    key: str
    name: str
    width: int
    depth: int
    kernel: int
    board: str
    kernels: str
    accuracy: float
    float_accuracy: float
    macs: int
    params: int
    ms: float
    cycles: int
    energy_uj: float
    arena_bytes: int
    flash_bytes: int
    #: Cost model that priced ``cycles`` ("" in a database from before it was recorded).
    cost_model: str = ""

    @property
    def parity(self) -> str:
        return channel_parity(self.width)

    @property
    def cycles_per_mac(self) -> float:
        """Cycles per multiply-accumulate (a MAC-free model counts as one MAC)."""
        return self.cycles / max(self.macs, 1)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points, sorted by cost; point = (cost, accuracy).

    A point is dominated when another has cost <= and accuracy >= with at least one
    strict. Duplicates of a front point are all kept (none dominates the other).
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best_acc = -np.inf
    last: tuple[float, float] | None = None
    for i in order:
        cost, acc = points[i]
        if acc > best_acc:
            front.append(i)
            best_acc = acc
            last = (cost, acc)
        elif last is not None and (cost, acc) == last:
            front.append(i)
    return front


def pareto_rows(rows: Sequence[SweepRow], metric: str = "ms") -> list[SweepRow]:
    """The Pareto-optimal rows (accuracy vs *metric*) of one target's results."""
    if metric not in COST_METRICS:
        raise ConfigError(f"unknown cost metric {metric!r}; choose from {list(COST_METRICS)}")
    idx = pareto_front([(float(getattr(r, metric)), r.accuracy) for r in rows])
    return [rows[i] for i in idx]


def non_monotonic_pairs(rows: Sequence[SweepRow]) -> list[tuple[SweepRow, SweepRow]]:
    """Pairs (a, b) of one target where a has fewer MACs but is *slower* than b.

    Each such pair is a place where ranking by MACs would mislead; with the optimized
    kernels most of them are odd-width candidates losing the SIMD fast path.
    """
    out = []
    for a, b in itertools.permutations(rows, 2):
        if (a.board, a.kernels) == (b.board, b.kernels) and a.macs < b.macs and a.ms > b.ms:
            out.append((a, b))
    return sorted(out, key=lambda p: (p[0].board, p[0].kernels, p[0].macs, p[1].macs))


def parity_inversions(rows: Sequence[SweepRow]) -> list[tuple[SweepRow, SweepRow]]:
    """Width steps (a -> b, same target, depth and kernel) where each MAC got *dearer*.

    Per-layer overheads amortise as width grows, so cycles per MAC should fall
    monotonically with width; a step where it rises instead (typically even -> odd
    with the optimized kernels) is a fast path being lost.
    """
    out: list[tuple[SweepRow, SweepRow]] = []
    for _, target_rows in sorted(group_by_target(rows).items()):
        for _, series in sorted(width_series(target_rows).items()):
            out.extend((a, b) for a, b in itertools.pairwise(series)
                       if b.cycles_per_mac > a.cycles_per_mac)
    return out


def group_by_target(rows: Iterable[SweepRow]) -> dict[tuple[str, str], list[SweepRow]]:
    """Rows per (board, kernel set), in first-seen order."""
    out: dict[tuple[str, str], list[SweepRow]] = {}
    for r in rows:
        out.setdefault((r.board, r.kernels), []).append(r)
    return out


def width_series(rows: Iterable[SweepRow]) -> dict[tuple[int, int], list[SweepRow]]:
    """Rows of one target per (depth, kernel), each sorted by width.

    The unit in which width effects are read: the parity inversions and the
    cost-per-MAC plot both walk these series.
    """
    out: dict[tuple[int, int], list[SweepRow]] = {}
    for r in rows:
        out.setdefault((r.depth, r.kernel), []).append(r)
    return {k: sorted(v, key=lambda r: r.width) for k, v in out.items()}


def rows_csv(rows: Sequence[SweepRow]) -> str:
    buf = io.StringIO()
    names = [f.name for f in fields(SweepRow)]
    w = csv.writer(buf)
    w.writerow([*names, "parity"])
    for r in rows:
        w.writerow([*(getattr(r, n) for n in names), r.parity])
    return buf.getvalue()


def format_rows(rows: Sequence[SweepRow], front: Sequence[SweepRow] = ()) -> str:
    """Terminal table of results; Pareto-optimal rows are starred."""
    on_front = {(r.key, r.board, r.kernels) for r in front}
    headers = ["", "candidate", "target", "acc %", "MACs", "ms", "uJ", "arena B", "flash B"]
    body = [["*" if (r.key, r.board, r.kernels) in on_front else "", r.name, f"{r.board}/{r.kernels}",
             f"{100 * r.accuracy:.1f}", f"{r.macs:,}", f"{r.ms:.3f}", f"{r.energy_uj:.1f}",
             f"{r.arena_bytes:,}", f"{r.flash_bytes:,}"] for r in rows]
    return "\n".join(text_table(headers, body, left=(0, 1, 2)))


# ================================================================ TensorFlow parts


@dataclass(frozen=True)
class DigitsData:
    """scikit-learn digits as NHWC float32 in [0, 1], split deterministically."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> DigitsData:
    """The 1797 8x8 digits (bundled with scikit-learn: works offline), stratified split."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise TinymeterError(f"the digits dataset needs scikit-learn ({exc}); "
                             "install it with `pip install tinymeter[tf]`") from None
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return DigitsData(x_tr, y_tr, x_te, y_te)


def supported_head() -> str:
    """"softmax" when the firmware runtime lowers RESHAPE and SOFTMAX, else "logits".

    The deployed classifier ends in a conv whose kernel covers the whole feature map
    (1x1x10 logits). Softmax does not change the arg-max, so while the runtime lacks
    RESHAPE/SOFTMAX the sweep deploys logits and still measures the whole network
    body; the head is part of the candidate hash, so results never mix the two.
    """
    from tinymeter.firmware.lower import lowerings

    ops = lowerings()
    return "softmax" if "RESHAPE" in ops and "SOFTMAX" in ops else "logits"


def _spatial_after(depth: int) -> int:
    """Feature-map side after *depth* blocks: block 0 keeps 8x8, blocks 1, 2 stride 2."""
    side = INPUT_SHAPE[0]
    for i in range(depth):
        if i >= 1:
            side = (side + 1) // 2
    return side


def build_keras(candidate: Candidate, head: str = "softmax", seed: int = 0
                ) -> tuple[keras.Model, keras.Model]:
    """(training model, deployment model) of a candidate, sharing layers and weights.

    Blocks: conv k x k, ``width`` channels, ReLU; block 0 at stride 1, later blocks at
    stride 2. The classifier is a VALID conv whose kernel covers the remaining map,
    giving 1x1x10 logits: no pooling op needed, and the last conv's input channel
    count is ``width`` too, so the channel-parity effect reaches every conv layer.
    The training model always ends in softmax; the deployment model per *head*.
    """
    if head not in ("softmax", "logits"):
        raise ConfigError(f"unknown head {head!r}; choose 'softmax' or 'logits'")
    from tinymeter.models import convert as _convert

    _convert.seed_everything(seed)
    import keras

    L = keras.layers
    inp = keras.Input(shape=INPUT_SHAPE, name="input")
    x = inp
    for i in range(candidate.depth):
        x = L.Conv2D(candidate.width, candidate.kernel, strides=1 if i == 0 else 2, padding="same",
                     activation="relu", name=f"conv_{i}")(x)
    side = _spatial_after(candidate.depth)
    logits = L.Conv2D(NUM_CLASSES, side, padding="valid", name="classifier")(x)
    flat = L.Lambda(lambda t: keras.ops.reshape(t, (-1, NUM_CLASSES)), output_shape=(NUM_CLASSES,),
                    name="flatten")(logits)
    probs = L.Softmax(name="softmax")(flat)
    train_model = keras.Model(inp, probs, name=f"digits_{candidate.name}")
    deploy = train_model if head == "softmax" else keras.Model(inp, logits, name=f"digits_{candidate.name}")
    return train_model, deploy


def train(model: keras.Model, data: DigitsData, recipe: TrainRecipe) -> float:
    """Train in place with Adam; returns the float test accuracy of the Keras model."""
    from tinymeter.models import convert as _convert

    _convert.seed_everything(recipe.seed)
    import keras

    model.compile(optimizer=keras.optimizers.Adam(recipe.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=recipe.epochs, batch_size=recipe.batch_size,
              shuffle=True, verbose=0)
    probs = model.predict(data.x_test, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(probs, axis=-1) == data.y_test))


def convert(model: keras.Model, data: DigitsData, quantize: str = "int8") -> bytes:
    """int8 (calibrated on training images, int8 I/O) or float32 .tflite bytes."""
    import contextlib

    from tinymeter.models import convert as _convert

    # Keras' export print()s "Saved artifact at ..." through sys.stdout, which the
    # converter's fd-level capture misses inside Jupyter (ipykernel replaces sys.stdout).
    with contextlib.redirect_stdout(io.StringIO()):
        if quantize == "float32":
            return _convert.convert_float32(model)
        return _convert.convert_int8(model, representative_data=data.x_train[:100])


def tflite_accuracy(tflite: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a .tflite on the host (TF Lite interpreter), float or int8 I/O.

    Inputs are quantized with the model's own input scale/zero point, exactly as the
    firmware would receive them; the arg-max of int8 outputs equals that of the
    dequantized ones, so no output dequantization is needed.
    """
    from tinymeter.models import convert as _convert

    tf = _convert.import_tf()
    with _convert._captured_native_output():  # the interpreter chats on stderr from C++
        interp = tf.lite.Interpreter(model_content=tflite)
        interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    xs = np.asarray(x, np.float32)
    if inp["dtype"] == np.int8:
        scale, zp = inp["quantization"]
        xs = np.clip(np.round(xs / scale) + zp, -128, 127).astype(np.int8)
    correct = 0
    for xi, yi in zip(xs, y):
        interp.set_tensor(inp["index"], xi[None])
        interp.invoke()
        correct += int(np.argmax(interp.get_tensor(out["index"]).reshape(-1)) == yi)
    return correct / max(len(y), 1)


# ========================================================= one candidate (worker)


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
    from tinymeter.models.inspect import inspect_model
    from tinymeter.models.tflite import parse_tflite

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
    from tinymeter.apps.estimate import estimate
    from tinymeter.core.boards import load_board
    from tinymeter.firmware.build import BuildConfig

    board = load_board(target.board)
    with tempfile.TemporaryDirectory(prefix="tm-nas-") as tmp:
        path = Path(tmp) / "candidate.tflite"
        path.write_bytes(tflite)
        if target.kernels in TFLM_KERNEL_SETS:
            from tinymeter.apps.tflm import estimate_tflm
            from tinymeter.firmware.tflmconfig import resolve_library

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


# ================================================================== executors


def _worker_init(threads: int) -> None:
    """Spawned-worker setup: quiet TF, and few threads each (workers share the cores).

    Environment variables rather than ``tf.config.threading``: TF reads them when its
    runtime starts, and the worker does not pay for importing TF before a job needs it.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(var, str(threads))


Evaluate = Callable[[CandidateJob], CandidateResult]


def parse_executor(spec: str) -> tuple[str, str | None]:
    """("process", None), ("serial", None) or ("dask", "tcp://HOST:PORT") from a CLI spec."""
    if spec in ("process", "local"):
        return "process", None
    if spec == "serial":
        return "serial", None
    if spec.startswith("dask://"):
        address = spec[len("dask://"):]
        if not address or ":" not in address:
            raise ConfigError(f"executor {spec!r} must look like dask://HOST:PORT")
        return "dask", f"tcp://{address}"
    raise ConfigError(f"unknown executor {spec!r}; use 'process' (default), 'serial' or dask://HOST:PORT")


def _import_dask() -> Any:
    try:
        import dask.distributed as dd
    except ImportError:
        raise ConfigError("the dask executor needs dask.distributed, which is not installed; "
                          "install it with `pip install 'dask[distributed]'` (here and on the workers)"
                          ) from None
    return dd


def _run_jobs(jobs: Sequence[CandidateJob], evaluate: Evaluate, executor: str,
              workers: int) -> Generator[tuple[CandidateJob, CandidateResult | BaseException]]:
    """Yield (job, result or exception) as jobs finish, on the chosen executor.

    A generator so the caller commits each result before the next arrives; closing
    it early (interrupt) cancels whatever has not started.
    """
    kind, address = parse_executor(executor)
    if kind == "serial" or not jobs:
        for job in jobs:
            try:
                yield job, evaluate(job)
            except Exception as exc:
                yield job, exc
        return
    if kind == "process":
        threads = max(1, (os.cpu_count() or 1) // max(workers, 1))
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init, initargs=(threads,))
        futures: dict[Future[CandidateResult], CandidateJob] = {}
        try:
            futures = {pool.submit(evaluate, job): job for job in jobs}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    failure = fut.exception()
                    yield futures[fut], (failure if failure is not None else fut.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    dd = _import_dask()
    try:
        client = dd.Client(address, timeout="20s")
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        dfuts = {client.submit(evaluate, job, key=f"tinymeter-nas-{job.key[:16]}", pure=False): job
                 for job in jobs}
        try:
            for fut in dd.as_completed(list(dfuts)):
                try:
                    yield dfuts[fut], fut.result()
                except Exception as exc:
                    yield dfuts[fut], exc
        finally:
            client.cancel(list(dfuts))
    finally:
        client.close()


def _warm_firmware_cache(targets: Sequence[Target]) -> None:
    """Compile the runtime objects of each (core, kernel set) once, before the pool starts.

    The builder caches runtime objects per (core, config); several workers compiling
    the same set at the same moment would race on the cache directory, so the parent
    builds them first (a one-layer model: about a second per core).
    """
    from tinymeter.core.boards import load_board
    from tinymeter.firmware.build import BuildConfig, FirmwareBuilder
    from tinymeter.firmware.codegen import generate
    from tinymeter.models.testing import bias_tensor, int8_tensor, random_int8, single_op_model_ir

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
    from tinymeter.core.boards import load_board

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
    from tinymeter.apps.sweep import plots as nas_plots

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
