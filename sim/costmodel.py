"""From executed instructions to cycles, milliseconds and energy: the per-core cost model.

Cycles of one execution of a translated block = sum over its instructions of the
cycles of their class on this core (Technical Reference Manual timings), plus
per-register cycles of load/store-multiple, plus the pipeline refill of the branch
that ends the block when it is taken, plus flash wait-state stalls the board's
prefetch/cache does not hide. The cost per distinct block is computed once; totals
are dot products with the execution counts the native hook collected, so cycle
estimates come at counting speed.

Every number here is a parameter of :class:`CostParameters`, reported with each
estimate and replaceable by calibration against a real board.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from tinymeter.boards import Board
from tinymeter.errors import ConfigError
from tinymeter.sim.blocks import CLASSES, BlockInfo, BlockProfile, classify

log = logging.getLogger(__name__)

COST_MODEL_VERSION = 1


@dataclass(frozen=True)
class CostParameters:
    """Timing parameters of one core on one board (all in CPU cycles)."""

    #: Cycles per instruction of each class (see ``sim.blocks.CLASSES``).
    cpi: dict[str, float]
    #: Extra cycles per register moved by LDM/STM/PUSH/POP (on top of the class CPI).
    per_register: float = 1.0
    #: Pipeline refill cycles of a taken branch.
    branch_refill: float = 2.0
    #: Fraction of block-ending conditional branches assumed taken (loop back-edges dominate).
    taken_fraction: float = 0.75
    #: Mean stall cycles per taken branch from flash wait states not hidden by prefetch/cache.
    flash_branch_stall: float = 0.0
    #: Mean extra cycles per load from memory wait states (weights read from flash).
    load_stall: float = 0.0
    #: Per-mnemonic cycle overrides (e.g. vdiv, vsqrt, mla on M3).
    mnemonic_cycles: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Checked here, where every source of parameters (board defaults, calibration
        # files, fits) passes, so a bad value is one error instead of a crash mid-run.
        for name in ("cpi", "mnemonic_cycles"):
            if not isinstance(getattr(self, name), Mapping):
                raise ConfigError(f"cost parameters: {name} must be a table of numbers, "
                                  f"got {getattr(self, name)!r}")
        values = [(f"cpi.{k}", v) for k, v in self.cpi.items()]
        values += [(f"mnemonic_cycles.{k}", v) for k, v in self.mnemonic_cycles.items()]
        values += [(n, getattr(self, n)) for n in ("per_register", "branch_refill",
                                                   "taken_fraction", "flash_branch_stall",
                                                   "load_stall")]
        for name, value in values:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"cost parameters: {name} must be a number, got {value!r}")
        unknown = set(self.cpi) - set(CLASSES)
        if unknown:
            raise ConfigError(f"cost parameters: unknown instruction class(es) {sorted(unknown)}")
        missing = set(CLASSES) - set(self.cpi)
        if missing:
            raise ConfigError(f"cost parameters: missing instruction class(es) {sorted(missing)}")


def _cpi(**kw: float) -> dict[str, float]:
    return {c: float(kw[c]) for c in CLASSES}


#: TRM-derived base timings per core, before board memory effects.
CORE_PARAMETERS: Mapping[str, CostParameters] = {
    # Cortex-M0+ TRM (ARM DDI 0484) / ARMv6-M: 2-stage pipeline, single-cycle multiplier,
    # loads/stores 2, LDM/STM 1+N, taken branch 2 (B) / 3 (BL); no divider, no FPU.
    "cortex-m0plus": CostParameters(
        cpi=_cpi(alu=1, mul=1, mac=1, mul64=1, load=2, store=2, load_multiple=1,
                 store_multiple=1, branch=1, divide=1, vfp=1, other=1),
        # BL is 3 and POP {..., pc} 3+N: 2 + refill, 1 + N + 1 + refill (the only pop
        # that ends a block writes PC; a mid-block POP is overcharged by one cycle).
        per_register=1.0, branch_refill=1.0, mnemonic_cycles={"bl": 2.0, "pop": 2.0}),
    # Cortex-M3 TRM (ARM DDI 0337): MLA 2, long multiplies 3-5, loads 2 (pipelined
    # neighbours 1), stores buffered, taken branch 1 + 1..3 refill, divide 2-12.
    "cortex-m3": CostParameters(
        cpi=_cpi(alu=1, mul=1, mac=1, mul64=4, load=2, store=1, load_multiple=1,
                 store_multiple=1, branch=1, divide=7, vfp=1, other=1),
        per_register=1.0, branch_refill=2.0,
        mnemonic_cycles={"mla": 2.0, "mls": 2.0, "umlal": 5.0, "smlal": 5.0}),
    # Cortex-M4 TRM (ARM DDI 0439): single-cycle MAC and DSP SIMD, long multiplies 1,
    # FPU (FPv4-SP) 1 cycle for add/mul, 3 for fused MAC, 14 for divide and sqrt.
    "cortex-m4f": CostParameters(
        cpi=_cpi(alu=1, mul=1, mac=1, mul64=1, load=2, store=1, load_multiple=1,
                 store_multiple=1, branch=1, divide=7, vfp=1, other=1),
        per_register=1.0, branch_refill=2.0,
        mnemonic_cycles={"vdiv": 14.0, "vsqrt": 14.0, "vmla": 3.0, "vmls": 3.0, "vfma": 3.0,
                         "vfms": 3.0, "vldr": 2.0, "vstr": 2.0}),
    # Cortex-M7 TRM (ARM DDI 0489): 6-stage dual-issue pipeline, branch prediction,
    # 64-bit loads; the effective CPI of simple ALU ops is below one.
    "cortex-m7": CostParameters(
        cpi=_cpi(alu=0.6, mul=1, mac=1, mul64=1, load=1, store=1, load_multiple=1,
                 store_multiple=1, branch=1, divide=8, vfp=1, other=1),
        per_register=0.5, branch_refill=1.0, taken_fraction=0.25,
        mnemonic_cycles={"vdiv": 14.0, "vsqrt": 14.0}),
    # Cortex-M33 TRM (ARM 100230): 3-stage pipeline like M4, divide 2-11, FPv5-SP.
    "cortex-m33": CostParameters(
        cpi=_cpi(alu=1, mul=1, mac=1, mul64=1, load=2, store=1, load_multiple=1,
                 store_multiple=1, branch=1, divide=6, vfp=1, other=1),
        per_register=1.0, branch_refill=2.0,
        mnemonic_cycles={"vdiv": 14.0, "vsqrt": 14.0, "vfma": 3.0, "vfms": 3.0}),
}


@dataclass(frozen=True)
class CostModel:
    """Cost parameters bound to a board, with a name reports can quote."""

    name: str
    core: str
    clock_hz: int
    params: CostParameters
    active_mw: float
    source: str = "datasheet"

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "core": self.core, "clock_hz": self.clock_hz,
                "source": self.source, "active_mw": self.active_mw, **asdict(self.params)}

    def block_cycles(self, info: BlockInfo) -> float:
        """Cycles of one execution of a block."""
        p = self.params
        cpi = np.array([p.cpi[c] for c in CLASSES])
        cycles = float(info.classes @ cpi)
        for mnemonic in info.mnemonics:
            extra = p.mnemonic_cycles.get(mnemonic)
            if extra is not None:
                cycles += extra - p.cpi[CLASSES[classify(mnemonic)]]
        cycles += p.per_register * info.multiple_registers
        cycles += p.load_stall * float(info.classes[CLASSES.index("load")])
        cycles += self._branch_cycles(info)
        return cycles

    def _branch_cycles(self, info: BlockInfo) -> float:
        if not info.mnemonics:
            return 0.0
        last = info.mnemonics[-1]
        p = self.params
        if last in ("cbz", "cbnz") or (last == "b" and info.ends_conditional):
            taken = p.taken_fraction
        elif last in ("b", "bl", "blx", "bx", "tbb", "tbh", "pop"):
            taken = 1.0  # unconditional branch or return
        else:
            return 0.0
        return taken * (p.branch_refill + p.flash_branch_stall)

    def cycles(self, profile: BlockProfile) -> np.ndarray:
        """Cycles per table row (per execution) of a block profile."""
        per_key = {key: self.block_cycles(info) for key, info in profile.infos.items()}
        return np.array([per_key[(a, s)] for a, s in
                         zip(profile.table.address.tolist(), profile.table.size.tolist())],
                        dtype=np.float64)

    def seconds(self, cycles: float) -> float:
        return cycles / self.clock_hz

    def energy_uj(self, cycles: float) -> float:
        """Energy of *cycles* at the board's active power, in microjoules."""
        return self.active_mw * 1e-3 * self.seconds(cycles) * 1e6


def calibration_path(board: Board) -> Path | None:
    """Where calibrated parameters for *board* live: the user's data directory, keyed by
    board name (:mod:`tinymeter.calibrations`), never inside the installed package."""
    from tinymeter.calibrations import calibration_file

    return calibration_file(board.name)


def cost_model_for(board: Board, calibration: Path | None = None) -> CostModel:
    """The cost model of *board*: :func:`datasheet_cost_model`, overridden by the
    calibration file *calibration* (default: the one next to the board file) if it exists."""
    model = datasheet_cost_model(board)
    path = calibration if calibration is not None else calibration_path(board)
    if path is not None and path.exists():
        model = load_calibration(model, path)
    return model


def datasheet_cost_model(board: Board) -> CostModel:
    """TRM timings + the board's memory effects, never a calibration (the prior of a fit,
    so calibrations do not stack).

    Flash wait states stall taken branches unless prefetch/instruction cache hides
    them; the miss fraction shrinks with the cache size. Loads of weights from flash
    pay a share of the wait states the data cache does not hide.
    """
    base = CORE_PARAMETERS[board.core.name]
    ws = board.text.wait_states
    accel = board.flash_accelerator
    if accel.icache_bytes >= 4096:
        miss = 0.05
    elif accel.icache_bytes >= 512:
        miss = 0.25
    else:
        miss = 0.6 if accel.prefetch else 1.0
    dmiss = 0.05 if accel.dcache_bytes >= 4096 else (0.2 if accel.dcache_bytes > 0 else 0.4)
    params = replace(base, flash_branch_stall=ws * miss, load_stall=ws * dmiss * 0.5)
    return CostModel(name=f"tm-{board.core.name}-v{COST_MODEL_VERSION}", core=board.core.name,
                     clock_hz=board.clock_hz, params=params, active_mw=board.power.active_mw)


def load_calibration(model: CostModel, path: Path) -> CostModel:
    """Override parameters with a calibration file (written by `tinymeter calibrate`)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or not UTF-8
        raise ConfigError(f"calibration file {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"calibration file {path}: expected a JSON object, "
                          f"got {type(raw).__name__}")
    allowed = {"cpi", "per_register", "branch_refill", "taken_fraction", "flash_branch_stall",
               "load_stall", "mnemonic_cycles", "active_mw"}
    unknown = set(raw) - allowed - {"fit"}
    if unknown:
        raise ConfigError(f"calibration file {path}: unknown key(s) {', '.join(sorted(unknown))}")
    raw.pop("fit", None)  # the fit report for humans (errors, models); not a parameter
    active = raw.pop("active_mw", model.active_mw)
    if isinstance(active, bool) or not isinstance(active, (int, float)):
        raise ConfigError(f"calibration file {path}: active_mw must be a number, got {active!r}")
    try:
        params = replace(model.params, **raw)
    except ConfigError as exc:
        raise ConfigError(f"calibration file {path}: {exc}") from None
    return replace(model, params=params, active_mw=float(active), source=f"calibrated ({Path(path).name})")


# -- calibration features ---------------------------------------------------------------
#
# Given the static facts of a block, the cycles above are *linear* in a reparameterized
# vector theta: one coefficient per instruction class, per register of LDM/STM/PUSH/POP,
# per overridden mnemonic, per block ending in a taken branch and per block ending in a
# conditional branch.  ``load_stall`` is folded into the load coefficients and the
# taken fraction into the conditional-branch coefficient, because data can only ever
# see those sums and products; :func:`parameters_from_vector` splits them back using
# the prior's ``load_stall`` and ``flash_branch_stall``.  Calibration is therefore an
# exact linear least-squares problem over per-layer feature rows.
#
# Every remaining entry of theta is separable by some code, which is what the
# calibration microbenchmarks (``hw/microbench.py``) provide: the class and mnemonic
# columns by loops of one instruction; ``per_register`` by LDM/STM with different
# register counts; ``cpi.branch`` versus ``branch.taken`` by POP {..., PC} block ends
# (taken, but no branch instruction) versus BX/B ends; ``branch.conditional`` by
# conditional-branch loops.  In NN layers alone the branch columns are nearly
# collinear (every block-ending branch is a branch instruction), hence the benchmarks.

#: Last mnemonics that end a block with an always-taken control transfer.
_TAKEN_BRANCHES = frozenset(("b", "bl", "blx", "bx", "tbb", "tbh", "pop"))
_LOAD = CLASSES.index("load")


def feature_names(params: CostParameters) -> tuple[str, ...]:
    """Names of the columns of :func:`block_features` (and entries of theta) for *params*.

    The overridden mnemonics are part of the layout, so features and parameters must be
    built from the same :class:`CostParameters` (the calibration prior).
    """
    return (*(f"cpi.{c}" for c in CLASSES), "per_register",
            *(f"mnemonic.{m}" for m in sorted(params.mnemonic_cycles)),
            "branch.taken", "branch.conditional")


def block_features(info: BlockInfo, params: CostParameters) -> np.ndarray:
    """Feature row of one execution of *info*: ``block_features(b, p) @ parameter_vector(p)``
    equals ``CostModel(..., params=p).block_cycles(b)`` exactly."""
    overrides = sorted(params.mnemonic_cycles)
    n_classes = len(CLASSES)
    row = np.zeros(n_classes + 1 + len(overrides) + 2)
    row[:n_classes] = info.classes
    if overrides:
        index = {m: n_classes + 1 + i for i, m in enumerate(overrides)}
        for mnemonic in info.mnemonics:
            col = index.get(mnemonic)
            if col is not None:
                row[col] += 1.0
                row[classify(mnemonic)] -= 1.0
    row[n_classes] = info.multiple_registers
    if info.mnemonics:
        last = info.mnemonics[-1]
        if last in ("cbz", "cbnz") or (last == "b" and info.ends_conditional):
            row[-1] = 1.0
        elif last in _TAKEN_BRANCHES:
            row[-2] = 1.0
    return row


def parameter_vector(params: CostParameters) -> np.ndarray:
    """theta of *params* in the layout of :func:`feature_names` (see the section comment)."""
    overrides = sorted(params.mnemonic_cycles)
    theta = [params.cpi[c] for c in CLASSES]
    theta[_LOAD] += params.load_stall
    theta.append(params.per_register)
    for m in overrides:
        extra = params.mnemonic_cycles[m]
        theta.append(extra + (params.load_stall if classify(m) == _LOAD else 0.0))
    taken = params.branch_refill + params.flash_branch_stall
    theta += [taken, params.taken_fraction * taken]
    return np.array(theta, dtype=np.float64)


def parameters_from_vector(theta: np.ndarray, prior: CostParameters) -> CostParameters:
    """Inverse of :func:`parameter_vector`: the parameters whose vector is *theta*.

    The parts data cannot separate keep the prior's split: ``load_stall`` and
    ``flash_branch_stall`` stay, the load CPI and the branch refill absorb the rest, and
    the taken fraction is the ratio of the conditional to the taken coefficient (the
    prior's if the taken coefficient is zero).  ``parameter_vector`` of the result is
    *theta* again whenever the taken coefficient is non-zero.
    """
    names = feature_names(prior)
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape != (len(names),):
        raise ConfigError(f"parameter vector has shape {theta.shape}, expected ({len(names)},)")
    n_classes = len(CLASSES)
    cpi = {c: float(theta[i]) for i, c in enumerate(CLASSES)}
    cpi["load"] -= prior.load_stall
    overrides = sorted(prior.mnemonic_cycles)
    mnemonic_cycles = {}
    for i, m in enumerate(overrides):
        value = float(theta[n_classes + 1 + i])
        mnemonic_cycles[m] = value - (prior.load_stall if classify(m) == _LOAD else 0.0)
    taken, conditional = float(theta[-2]), float(theta[-1])
    fraction = conditional / taken if abs(taken) > 1e-12 else prior.taken_fraction
    return replace(prior, cpi=cpi, per_register=float(theta[n_classes]),
                   mnemonic_cycles=mnemonic_cycles,
                   branch_refill=taken - prior.flash_branch_stall, taken_fraction=fraction)


def layer_features(profile: BlockProfile, params: CostParameters, n_layers: int) -> np.ndarray:
    """Per-layer feature matrix ``[n_layers, len(feature_names(params))]`` of one run.

    Row *l* summed over every execution attributed to layer *l*, so
    ``layer_features(...) @ parameter_vector(p)`` is the per-layer cycle estimate of
    ``p``; executions outside layers (layer -1) and beyond *n_layers* are left out.
    """
    per_key = {key: block_features(info, params) for key, info in profile.infos.items()}
    width = len(feature_names(params))
    out = np.zeros((n_layers, width))
    layers = profile.table.layer.tolist()
    counts = profile.counts.tolist()
    for a, s, layer, n in zip(profile.table.address.tolist(), profile.table.size.tolist(),
                              layers, counts):
        if 0 <= layer < n_layers:
            out[layer] += per_key[(a, s)] * n
    return out
