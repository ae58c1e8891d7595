"""The sweep's search space and configuration: candidates, targets, the strict
``SweepConfig`` and the candidate hash. Pure."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from tinymeter import __version__
from tinymeter.core.errors import ConfigError
from tinymeter.firmware.build import KERNEL_SETS
from tinymeter.models.digits import Candidate, TrainRecipe

log = logging.getLogger(__name__)

#: Sweep targets running in a registered TFLM library (``tinymeter tflm add``): the
#: core's preferred one, or the one of a kernel set.
TFLM_KERNEL_SETS = ("tflm", "tflm-cmsis-nn", "tflm-reference")


#: Part of every candidate hash: bump when the model family, training or conversion
#: changes in a way that invalidates stored results.
NAS_VERSION = 1


FAMILIES = ("digits_cnn",)


#: Metrics a Pareto front can be drawn over (lower is better), as stored per estimate.
COST_METRICS = ("ms", "energy_uj", "arena_bytes", "flash_bytes")


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
