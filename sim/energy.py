"""Energy by activity: per-layer energy from time and memory traffic (pure numpy).

The constant-power model (``active_mw x time``) makes every layer's energy share equal
its latency share, so an energy column adds nothing.  Power follows activity: a read of
the flash array costs far more than one of SRAM (STM32 datasheets give a higher run
current per MHz from flash than from SRAM for the same code), so a fully connected layer
streaming its weights from flash draws more power than a convolution working in SRAM.

The model is linear in three parameters (a board file's ``[power]`` section, refined by
``tinymeter calibrate``)::

    E [uJ] = core_mw * t [s] * 1e3  +  flash_read_nj * flash_reads * 1e-3
                                    +  sram_access_nj * sram_accesses * 1e-3

* ``core_mw``: what the chip draws while running, apart from the memory traffic counted
  below (core, clock tree, leakage, regulator);
* ``flash_reads``: reads of the flash array in its access units (``access_bytes`` of the
  region: 8 B on STM32L4/G0/L5, 16 B on F2, 32 B on F7) as the simulated memory system
  issues them (the native hook's ``flash_reads``): instruction fetches the instruction
  cache did not serve, every prefetch (also those a taken branch discards), flash data
  loads the flash data cache did not serve, and L1 line fills from flash (a whole line);
  a load served by the ART or L1 data cache reads no flash;
* ``sram_accesses``: loads and stores to SRAM and TCM.

All access energies 0 and ``core_mw = active_mw`` is today's constant-power model,
exactly (the prior of boards without activity figures).

What is not counted (so is not in the features): store widths and bytes (a store is one
access whatever its width), and SRAM reads of L1 line fills on the Cortex-M7 (loads count
as accesses whether or not the L1 D-cache served them).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tinymeter.core.boards import Board
from tinymeter.core.errors import ConfigError
from tinymeter.sim.native_hook import STAT, STAT_COLUMNS

if TYPE_CHECKING:
    from tinymeter.sim.emulator import RunResult

#: Parameters of :class:`EnergyParameters`, in the order of :func:`energy_features` columns.
ENERGY_PARAMETERS = ("core_mw", "flash_read_nj", "sram_access_nj")
#: Activity counts per row/layer (the last two feature columns).
ACTIVITY = ("flash_reads", "sram_accesses")
#: Memory kinds whose accesses are priced as SRAM accesses.
SRAM_KINDS = ("sram", "tcm")


@dataclass(frozen=True)
class EnergyParameters:
    """Power of the core and energy per memory access of one board (see module doc)."""

    core_mw: float
    flash_read_nj: float = 0.0
    sram_access_nj: float = 0.0

    def __post_init__(self) -> None:
        for name in ENERGY_PARAMETERS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"energy parameters: {name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"energy parameters: {name} must be a finite number >= 0, "
                                  f"got {value!r}")

    @property
    def constant(self) -> bool:
        """True for the constant-power model (no energy per access)."""
        return self.flash_read_nj == 0 and self.sram_access_nj == 0

    def vector(self) -> np.ndarray:
        """theta in the layout of :func:`energy_features` (``features @ theta`` = uJ)."""
        return np.array([getattr(self, n) for n in ENERGY_PARAMETERS], dtype=np.float64)

    @classmethod
    def from_vector(cls, theta: np.ndarray) -> EnergyParameters:
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != (len(ENERGY_PARAMETERS),):
            raise ConfigError(f"energy parameter vector has shape {theta.shape}, "
                              f"expected ({len(ENERGY_PARAMETERS)},)")
        return cls(*(float(v) for v in theta))

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> EnergyParameters:
        """From a calibration file's ``energy`` table: every key known, every value a
        finite number >= 0, ``core_mw`` required."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: energy must be a table of numbers, got {raw!r}")
        unknown = set(raw) - set(ENERGY_PARAMETERS)
        if unknown:
            raise ConfigError(f"{where}: unknown energy key(s) {', '.join(sorted(unknown))}; "
                              f"allowed: {', '.join(ENERGY_PARAMETERS)}")
        if "core_mw" not in raw:
            raise ConfigError(f"{where}: energy needs core_mw")
        try:
            return cls(**raw)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def board_energy_parameters(board: Board) -> EnergyParameters:
    """The board file's prior: ``[power]`` core_mw (default: active_mw) and the access
    energies (default 0, the constant-power model)."""
    p = board.power
    core = p.core_mw if p.core_mw is not None else p.active_mw
    return EnergyParameters(core_mw=core, flash_read_nj=p.flash_read_nj,
                            sram_access_nj=p.sram_access_nj)


def row_activity(stats: np.ndarray) -> np.ndarray:
    """Per table row: ``[flash_reads, sram_accesses]`` of all its executions (see the
    module doc), from the hook's statistics (``native_hook.STAT_COLUMNS``)."""
    if stats.ndim != 2 or stats.shape[1] != len(STAT_COLUMNS):
        raise ValueError(f"statistics have shape {stats.shape}, expected (rows, "
                         f"{len(STAT_COLUMNS)})")
    s = stats.astype(np.float64)
    flash = s[:, STAT["flash_reads"]]
    sram = sum(s[:, STAT[f"{what}.{kind}"]] for what in ("loads", "stores") for kind in SRAM_KINDS)
    return np.stack([flash, sram], axis=1)


def group_activity(activity: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """``[n_groups, 2]`` sums of :func:`row_activity` rows per group index (others left out)."""
    out = np.zeros((n_groups, activity.shape[1]))
    inside = (groups >= 0) & (groups < n_groups)
    np.add.at(out, groups[inside], activity[inside])
    return out


def energy_features(seconds: np.ndarray, activity: np.ndarray) -> np.ndarray:
    """``[n, 3]`` rows with ``rows @ EnergyParameters.vector()`` = energy in uJ:
    time in ms (mW x ms = uJ), thousands of flash reads and of SRAM accesses (nJ x 1e-3)."""
    seconds = np.asarray(seconds, dtype=np.float64).reshape(-1)
    activity = np.asarray(activity, dtype=np.float64).reshape(len(seconds), len(ACTIVITY))
    return np.column_stack([seconds * 1e3, activity * 1e-3])


@dataclass(frozen=True)
class LayerEnergy:
    """Energy of one group (a layer) split by what drew it, with the activity counts."""

    core_uj: float
    flash_uj: float
    sram_uj: float
    flash_reads: int
    sram_accesses: int

    @property
    def total_uj(self) -> float:
        return self.core_uj + self.flash_uj + self.sram_uj

    def to_dict(self) -> dict[str, float | int]:
        return {"core_uj": self.core_uj, "flash_uj": self.flash_uj, "sram_uj": self.sram_uj,
                "flash_reads": self.flash_reads, "sram_accesses": self.sram_accesses}


def layer_energy(seconds: float, flash_reads: float, sram_accesses: float,
                 params: EnergyParameters) -> LayerEnergy:
    """The energy of one layer of *seconds* with that traffic."""
    return LayerEnergy(core_uj=params.core_mw * seconds * 1e3,
                       flash_uj=params.flash_read_nj * flash_reads * 1e-3,
                       sram_uj=params.sram_access_nj * sram_accesses * 1e-3,
                       flash_reads=round(float(flash_reads)), sram_accesses=round(float(sram_accesses)))


def sum_energy(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The :meth:`LayerEnergy.to_dict` of a union of layers (report totals are sums of rows)."""
    if not parts or not all(parts):
        return {}
    return {k: sum(p[k] for p in parts) for k in parts[0]}


def run_layer_activity(run: RunResult, n_layers: int) -> np.ndarray:
    """``[n_layers, 2]`` flash reads and SRAM accesses per layer of an emulated run (its
    board's memory system as the run simulated it; zeros when the run has no statistics,
    e.g. counting off)."""
    blocks = run.blocks
    if len(run.stats) != len(blocks) or not len(blocks):
        return np.zeros((n_layers, len(ACTIVITY)))
    return group_activity(row_activity(run.stats), blocks.layer, n_layers)
