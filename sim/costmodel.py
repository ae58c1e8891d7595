"""From executed blocks to cycles, milliseconds and energy: the per-core cost model.

Two halves, each a mechanism with a source:

* **static, per distinct block** (this module, once per block): the core cycles of one
  execution from the core's Technical Reference Manual: per-class instruction timings,
  per-register cycles of LDM/STM/PUSH/POP, loads pipelined behind a neighbouring load or
  store (Cortex-M3/M4/M33 TRM "load/store timings"), per-mnemonic overrides (divide,
  FPU), and the pipeline refill of the block's end branch when it is taken;
* **dynamic, per execution** (the native hook, ``sim/native/counthook.c``): whether each
  conditional end branch was taken (the successor block tells), instruction fetch
  through the flash accelerator's or L1 instruction cache and the flash prefetch stream,
  and data loads from their real addresses (address programs, :mod:`.addrprog`) through
  the flash data cache or L1 data cache; misses stall by the board file's wait states.

:func:`timing_config` turns the board's memory system into the hook's configuration.
Every number is a parameter of :class:`CostParameters` or a board-file value, reported
with each estimate and refined by calibration (which fits one weight per stall
mechanism, so a calibration run says which mechanism was off); there is no global scale.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tinymeter.core.boards import Board, CacheGeometry
from tinymeter.core.calibrations import CalibrationChoice, calibration_file
from tinymeter.core.errors import ConfigError
from tinymeter.sim.blocks import HEAD_ALU, HEAD_LOAD, BlockInfo, BlockProfile
from tinymeter.sim.classes import CLASSES, classify
from tinymeter.sim.energy import EnergyParameters, board_energy_parameters
from tinymeter.sim.native_hook import (
    ACCESS_BUCKETS,
    CACHE_POLICIES,
    CYCLE_SCALE,
    END_CONDITIONAL,
    END_NONE,
    END_PREDICTED,
    END_TAKEN,
    MAX_REGIONS,
    MEMORY_KINDS,
    PREDICTORS,
    STAT,
    TAIL_PAIRS,
    UNALIGNED_AHB,
    UNALIGNED_FAULT,
    UNALIGNED_PAIR,
    BlockCost,
    TimingConfig,
)

if TYPE_CHECKING:
    from tinymeter.sim.emulator import RunResult

log = logging.getLogger(__name__)

COST_MODEL_VERSION = 3


@dataclass(frozen=True)
class CostParameters:
    """Timing parameters of one core on one board (all in CPU cycles)."""

    #: Cycles per instruction of each class (see ``sim.classes.CLASSES``).
    cpi: dict[str, float]
    #: Extra cycles per register moved by LDM/STM/PUSH/POP (on top of the class CPI).
    per_register: float = 1.0
    #: Pipeline refill cycles of a taken branch (on top of the branch's own cycle).
    branch_refill: float = 2.0
    #: Cycles of a single load issued right after a load or store it pipelines with
    #: (address not produced by the previous load); ``cpi.load`` otherwise.
    pipelined_load: float = 2.0
    #: Per-mnemonic cycle overrides (e.g. vdiv, vsqrt, mla on M3).
    mnemonic_cycles: dict[str, float] = field(default_factory=dict)
    #: Cycles of an ALU instruction issued together with its predecessor on a dual-issue
    #: core (Cortex-M7: 0); None = the core issues one instruction per cycle.
    dual_issue_alu: float | None = None
    #: Weights of the simulated stall mechanisms (1 = as the board's wait states say;
    #: calibration fits them, and how far they move says which mechanism was off).
    ifetch_weight: float = 1.0
    data_weight: float = 1.0
    #: Register dependencies between neighbouring instructions (:mod:`.hazards`): cycles
    #: a load/store waits for an address the previous data-processing instruction
    #: computed, an instruction for the result of a byte/halfword load right before it,
    #: and an instruction for the result of an FPU arithmetic instruction right before it.
    agu_stall: float = 0.0
    narrow_load_use: float = 0.0
    fp_result_stall: float = 0.0
    #: Cycles of a mispredicted conditional end branch on a core that predicts them (the
    #: native hook keeps a 2-bit counter per block end; a correct prediction costs 0);
    #: None = the core does not predict (a taken branch pays ``branch_refill``).
    branch_mispredict: float | None = None
    #: How the hook predicts (``native_hook.PREDICTORS``): "2bit" is the model's; the
    #: virtual silicon's hidden predictor starts its counters weakly taken ("2bit-taken"),
    #: an organisation the model does not have ("1bit" is a harder variant).
    branch_predictor: str = "2bit"
    #: Cycles per extra bus transaction of an unaligned LDR/STR/LDRH/STRH the core splits
    #: (the native hook counts the transactions from the real addresses, ``unaligned.*``).
    unaligned: float = 1.0

    def __post_init__(self) -> None:
        # Checked here, where every source of parameters (board defaults, calibration
        # files, fits) passes, so a bad value is one error instead of a crash mid-run.
        for name in ("cpi", "mnemonic_cycles"):
            if not isinstance(getattr(self, name), Mapping):
                raise ConfigError(f"cost parameters: {name} must be a table of numbers, "
                                  f"got {getattr(self, name)!r}")
        values = [(f"cpi.{k}", v) for k, v in self.cpi.items()]
        values += [(f"mnemonic_cycles.{k}", v) for k, v in self.mnemonic_cycles.items()]
        values += [(n, getattr(self, n)) for n in _SCALARS]
        if self.dual_issue_alu is not None:
            values.append(("dual_issue_alu", self.dual_issue_alu))
        if self.branch_mispredict is not None:
            values.append(("branch_mispredict", self.branch_mispredict))
        for name, value in values:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"cost parameters: {name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"cost parameters: {name} must be a finite number >= 0, "
                                  f"got {value!r}")
        if self.branch_predictor not in PREDICTORS:
            raise ConfigError(f"cost parameters: branch_predictor must be one of "
                              f"{sorted(PREDICTORS)}, got {self.branch_predictor!r}")
        unknown = set(self.cpi) - set(CLASSES)
        if unknown:
            raise ConfigError(f"cost parameters: unknown instruction class(es) {sorted(unknown)}")
        missing = set(CLASSES) - set(self.cpi)
        if missing:
            raise ConfigError(f"cost parameters: missing instruction class(es) {sorted(missing)}")


#: Scalar fields of :class:`CostParameters` (calibration files may set each).
_SCALARS = ("per_register", "branch_refill", "pipelined_load", "ifetch_weight", "data_weight",
            "agu_stall", "narrow_load_use", "fp_result_stall", "unaligned")


def _cpi(**kw: float) -> dict[str, float]:
    return {c: float(kw[c]) for c in CLASSES}


#: TRM-derived base timings per core, before board memory effects.
CORE_PARAMETERS: Mapping[str, CostParameters] = {
    # Cortex-M0+ TRM (ARM DDI 0484) / ARMv6-M: 2-stage pipeline, single-cycle multiplier,
    # loads/stores 2 (no pipelining), LDM/STM 1+N, taken branch 2 (B) / 3 (BL); no divider,
    # no FPU.
    "cortex-m0plus": CostParameters(
        cpi=_cpi(alu=1, mul=1, mac=1, mul64=1, load=2, store=2, load_multiple=1,
                 store_multiple=1, branch=1, divide=1, vfp=1, other=1),
        # BL is 3 and POP {..., pc} 3+N: 2 + refill, 1 + N + 1 + refill (the only pop
        # that ends a block writes PC; a mid-block POP is overcharged by one cycle).
        # DDI 0484 3.3 gives fixed cycle counts per instruction, no register interlock:
        # address and load-use dependencies cost 0.  ARMv6-M faults on every unaligned
        # access (ARMv6-M ARM A3.2): nothing to price; the hook reports them as faults.
        per_register=1.0, branch_refill=1.0, pipelined_load=2.0, unaligned=0.0,
        agu_stall=0.0, narrow_load_use=0.0, fp_result_stall=0.0,
        mnemonic_cycles={"bl": 2.0, "pop": 2.0}),
    # Cortex-M3 TRM (ARM DDI 0337) 18.2: MLA 2, long multiplies 3-5, loads 2 with
    # neighbouring loads/stores pipelined to 1, stores buffered, taken branch 1 + 1..3
    # refill, divide 2-12.  DDI 0337I 3.3 "load-store timings": a load or store whose
    # address the preceding data-processing instruction computed stalls 1 cycle (no
    # forwarding path); LDRB/LDRH take the same 2 cycles as LDR (no narrow load-use); an
    # unaligned LDR/STR(H) is split into aligned AHB transactions, one cycle each beyond
    # the first.
    "cortex-m3": CostParameters(
        cpi=_cpi(alu=1, mul=1, mac=1, mul64=4, load=2, store=1, load_multiple=1,
                 store_multiple=1, branch=1, divide=7, vfp=1, other=1),
        per_register=1.0, branch_refill=2.0, pipelined_load=1.0,
        agu_stall=1.0, narrow_load_use=0.0, fp_result_stall=0.0,
        mnemonic_cycles={"mla": 2.0, "mls": 2.0, "umlal": 5.0, "smlal": 5.0}),
    # Cortex-M4 TRM (ARM DDI 0439) 3.3: single-cycle MAC and DSP SIMD, long multiplies 1,
    # loads 2 (1 when pipelined behind a load/store), FPU (FPv4-SP, table 7-1) 1 cycle for
    # add/mul, 3 for (fused) MAC, 14 for divide and sqrt, VLDR/VSTR 2 (pipelined like
    # LDR: 1), VLDM/VSTM/VPUSH/VPOP 1 + N.  3.3.2: an address computed by the preceding
    # data-processing instruction stalls 1 cycle; unaligned LDR/STR(H) one cycle per extra
    # halfword/byte transaction (byte-aligned halfword +1, halfword-aligned word +1,
    # byte-aligned word +2); 7.2.3: FPU arithmetic takes one cycle longer when the next
    # instruction consumes its result.
    "cortex-m4f": CostParameters(
        cpi=_cpi(alu=1, mul=1, mac=1, mul64=1, load=2, store=1, load_multiple=1,
                 store_multiple=1, branch=1, divide=7, vfp=1, other=1),
        per_register=1.0, branch_refill=2.0, pipelined_load=1.0,
        agu_stall=1.0, narrow_load_use=0.0, fp_result_stall=1.0,
        mnemonic_cycles={"vdiv": 14.0, "vsqrt": 14.0, "vmla": 3.0, "vmls": 3.0, "vfma": 3.0,
                         "vfms": 3.0, "vldr": 2.0, "vstr": 2.0, "vmov.core": 2.0}),
    # Cortex-M7 TRM (ARM DDI 0489): 6-stage dual-issue pipeline (an independent ALU
    # instruction issues with its predecessor), branch prediction (taken loop branches
    # mostly predicted), 64-bit loads; an unaligned access is two aligned accesses (one
    # extra cycle).  Branch prediction: the TRM names a branch
    # predictor with a BTAC but gives neither its organisation nor penalties; modelled as
    # a 2-bit counter per conditional branch (in the hook), a correct prediction free, a
    # misprediction 4 cycles (Arm's LLVM model: MispredictPenalty 4); unconditional
    # branches, calls and returns pay the refill of 1.  The TRM publishes no
    # instruction timings; the dependency stalls follow Arm's machine model in LLVM
    # (ARMScheduleM7.td): addresses are read in EX1 a cycle before ALU results exist
    # (1), byte/halfword loads deliver a cycle after words (1), FP results have a
    # latency of 3 (a consumer right behind waits 2).  Calibration owns all three.
    "cortex-m7": CostParameters(
        cpi=_cpi(alu=1, mul=1, mac=1, mul64=1, load=1, store=1, load_multiple=1,
                 store_multiple=1, branch=1, divide=8, vfp=1, other=1),
        per_register=0.5, branch_refill=1.0, pipelined_load=1.0, dual_issue_alu=0.0,
        agu_stall=1.0, narrow_load_use=1.0, fp_result_stall=2.0, branch_mispredict=4.0,
        mnemonic_cycles={"vdiv": 14.0, "vsqrt": 14.0}),
    # Cortex-M33 TRM (ARM 100230): 3-stage pipeline like M4, divide 2-11, FPv5-SP.  The
    # TRM gives no load/store or FPU interlock timings: the Cortex-M4 TRM's (same
    # pipeline shape) are the prior, calibration owns them; likewise for unaligned
    # accesses, "converted into two or more aligned AHB transactions" (no cycle figure).
    "cortex-m33": CostParameters(
        cpi=_cpi(alu=1, mul=1, mac=1, mul64=1, load=2, store=1, load_multiple=1,
                 store_multiple=1, branch=1, divide=6, vfp=1, other=1),
        per_register=1.0, branch_refill=2.0, pipelined_load=1.0,
        agu_stall=1.0, narrow_load_use=0.0, fp_result_stall=1.0,
        mnemonic_cycles={"vdiv": 14.0, "vsqrt": 14.0, "vfma": 3.0, "vfms": 3.0}),
}

#: Last mnemonics that end a block with an always-taken control transfer.
_TAKEN_BRANCHES = frozenset(("b", "bl", "blx", "bx", "tbb", "tbh", "pop"))
_LOAD = CLASSES.index("load")
_ALU = CLASSES.index("alu")


def base_cycles(params: CostParameters, mnemonic: str) -> float:
    """Cycles of *mnemonic* before pipelining: its override, else its class CPI."""
    override = params.mnemonic_cycles.get(mnemonic)
    return override if override is not None else params.cpi[CLASSES[classify(mnemonic)]]


def end_kind(info: BlockInfo) -> int:
    """How *info* ends: END_CONDITIONAL (B<cond>, CBZ, CBNZ), END_TAKEN (B, BL, BX, POP
    {pc}, table branch: always taken) or END_NONE."""
    if not info.mnemonics:
        return END_NONE
    last = info.mnemonics[-1]
    if last in ("cbz", "cbnz") or (last == "b" and info.ends_conditional):
        return END_CONDITIONAL
    if last in _TAKEN_BRANCHES and not info.ends_conditional:
        return END_TAKEN
    if last in _TAKEN_BRANCHES:
        return END_CONDITIONAL  # bxeq lr, popne {pc}: the successor tells
    return END_NONE


@dataclass(frozen=True)
class CostModel:
    """Cost parameters bound to a board, with a name reports can quote."""

    name: str
    core: str
    clock_hz: int
    params: CostParameters
    active_mw: float
    source: str = "datasheet"
    #: Energy by activity (:mod:`tinymeter.sim.energy`); None = constant ``active_mw``.
    energy: EnergyParameters | None = None

    @property
    def energy_parameters(self) -> EnergyParameters:
        """The energy model's parameters (the constant-power model when none are set)."""
        return self.energy if self.energy is not None else EnergyParameters(core_mw=self.active_mw)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "core": self.core, "clock_hz": self.clock_hz,
                "source": self.source, "active_mw": self.active_mw,
                "energy": self.energy_parameters.to_dict(), **asdict(self.params)}

    def core_cycles(self, info: BlockInfo) -> float:
        """Core cycles of one execution of a block, without its end branch's refill or
        memory stalls."""
        p = self.params
        cpi = np.array([p.cpi[c] for c in CLASSES])
        cycles = float(info.classes @ cpi)
        for mnemonic in info.mnemonics:
            extra = p.mnemonic_cycles.get(mnemonic)
            if extra is not None:
                cycles += extra - p.cpi[CLASSES[classify(mnemonic)]]
        cycles += p.per_register * info.multiple_registers
        cycles += (p.pipelined_load - p.cpi["load"]) * info.pipelined_loads
        cycles += (p.pipelined_load - base_cycles(p, "vldr")) * info.vldr_pipelined
        cycles += (p.pipelined_load - base_cycles(p, "vstr")) * info.vstr_pipelined
        cycles += (p.pipelined_load - p.cpi["load_multiple"] - p.per_register) \
            * info.vldm_pipelined
        if p.dual_issue_alu is not None:
            cycles += (p.dual_issue_alu - p.cpi["alu"]) * info.dual_issued
        cycles += p.agu_stall * info.agu_stalls + p.narrow_load_use * info.narrow_load_uses
        cycles += p.fp_result_stall * info.fp_dependent
        return cycles

    def block_cost(self, info: BlockInfo) -> BlockCost:
        """What the native hook needs of a block (fixed point): core cycles, the taken /
        not-taken costs of its end and how it ends (the address program is added by the
        emulator, which owns the code bytes)."""
        kind = end_kind(info)
        # A not-taken conditional branch costs its own cycle only (in the core cycles):
        # M0+/M3/M4/M33 TRMs.  On a predicting core (M7) the hook prices a conditional
        # end by its prediction: either outcome costs the misprediction when it was wrong.
        base = to_fixed(self.core_cycles(info))
        seam = info.seam
        pipe, pair = self.seam_deltas(info)
        taken = to_fixed(self.params.branch_refill) if kind != END_NONE else 0
        not_taken = predictor = 0
        mispredict = self.params.branch_mispredict
        if kind == END_CONDITIONAL and mispredict is not None:
            kind, taken = END_PREDICTED, to_fixed(mispredict)
            not_taken, predictor = taken, PREDICTORS[self.params.branch_predictor]
        return BlockCost(base=base, taken=taken, not_taken=not_taken,
                         end_kind=kind, seam_pipe=round(pipe * CYCLE_SCALE),
                         seam_pair=round(pair * CYCLE_SCALE),
                         head=seam.head | seam.head_regs << 16 if pipe or pair else 0,
                         tail=seam.tail | (TAIL_PAIRS if seam.tail_pairs else 0)
                         | seam.tail_dest << 16,
                         tail_written=seam.tail_written, predictor=predictor)

    def seam_deltas(self, info: BlockInfo) -> tuple[float, float]:
        """Cycle changes of *info* when entered straight from a predecessor its first
        instruction pipelines (load) or pairs (ALU, dual-issue cores) with."""
        p, seam = self.params, info.seam
        pipe = p.pipelined_load - p.cpi["load"] if seam.head == HEAD_LOAD else 0.0
        pair = 0.0
        if seam.head == HEAD_ALU and p.dual_issue_alu is not None:
            pair = (p.dual_issue_alu - p.cpi["alu"]) * (seam.dual_issued_if_paired
                                                         - info.dual_issued)
        return pipe, pair

    def block_cycles(self, info: BlockInfo, taken: float | None = None) -> float:
        """Cycles of one execution of a block without memory stalls; a conditional end
        counts as taken with probability *taken* (default: not taken)."""
        kind = end_kind(info)
        cycles = self.core_cycles(info)
        if kind == END_TAKEN:
            cycles += self.params.branch_refill
        elif kind == END_CONDITIONAL and self.params.branch_mispredict is None:
            cycles += (0.0 if taken is None else taken) * self.params.branch_refill
        return cycles  # a predicting core: as if predicted correctly

    def cycles(self, profile: BlockProfile) -> np.ndarray:
        """Static cycles per table row (per execution), conditional ends not taken: a
        lower bound used where no run statistics exist."""
        per_key = {key: self.block_cycles(info) for key, info in profile.infos.items()}
        return np.array([per_key[(a, s)] for a, s in
                         zip(profile.table.address.tolist(), profile.table.size.tolist())],
                        dtype=np.float64)

    def seconds(self, cycles: float) -> float:
        return cycles / self.clock_hz

    def energy_uj(self, cycles: float) -> float:
        """Energy of *cycles* at the board's constant active power, in microjoules (the
        fallback where no activity counts exist; see :mod:`tinymeter.sim.energy`)."""
        return self.active_mw * 1e-3 * self.seconds(cycles) * 1e6


def to_fixed(cycles: float) -> int:
    """Cycles as the hook's fixed-point integer; the one rounding between the cost model
    (float) and every cycle sum of a run, so all sums are exact integer arithmetic."""
    value = round(cycles * CYCLE_SCALE)
    if value < 0:
        raise ValueError(f"negative block cost {cycles}")
    return value


_KIND_CODE = {"flash": 0, "sram": 1, "tcm": 2}
#: The hook's per-bucket columns of extra transactions of split unaligned accesses.
UNALIGNED_COLUMNS = [STAT[f"unaligned.{b}"] for b in ACCESS_BUCKETS]


def _geometry(cache: CacheGeometry) -> tuple[int, int, int, int]:
    if not cache.size:
        return (0, 0, 0, 0)
    return (cache.line, cache.sets, cache.associativity, CACHE_POLICIES[cache.policy])


def timing_config(board: Board, params: CostParameters,
                  hosts: Mapping[int, int] | None = None) -> TimingConfig:
    """The native timing model's view of *board*'s memory system (regions with wait states
    and access width, flash accelerator, L1 caches) and the stall weights of *params*;
    *hosts* maps region origins to the host address backing them (the hook reads guest
    memory there directly; a region without one reads as unavailable)."""
    if len(board.memory) > MAX_REGIONS:
        raise ConfigError(f"board {board.name}: the timing model takes at most "
                          f"{MAX_REGIONS} memory regions, the board file has {len(board.memory)}")
    cfg = TimingConfig()
    cfg.enabled = 1
    cfg.n_regions = len(board.memory)
    for i, r in enumerate(board.memory):
        region = cfg.regions[i]
        region.origin, region.last = r.origin, r.end - 1
        region.kind = _KIND_CODE.get(r.kind, MEMORY_KINDS.index("other"))
        region.wait_states = r.wait_states
        region.access_shift = r.access_bytes.bit_length() - 1
        region.cacheable = int(r.cacheable)
        region.host = (hosts or {}).get(r.origin, 0)
    accel, l1 = board.flash_accelerator, board.l1_cache
    cfg.prefetch = int(accel.prefetch)
    cfg.unified = int(accel.unified)
    cfg.l1_fill = l1.fill_cycles
    cfg.accel_icache[:] = _geometry(accel.icache)
    cfg.accel_dcache[:] = _geometry(accel.dcache)
    cfg.l1_icache[:] = _geometry(l1.icache)
    cfg.l1_dcache[:] = _geometry(l1.dcache)
    cfg.ifetch_weight = to_fixed(params.ifetch_weight)
    cfg.data_weight = to_fixed(params.data_weight)
    cfg.unaligned_rule = unaligned_rule(board)
    cfg.data_memo = 1
    cfg.unaligned_cycles = to_fixed(params.unaligned)
    return cfg


def unaligned_rule(board: Board) -> int:
    """How *board*'s core executes an unaligned LDR/STR/LDRH/STRH (``UNALIGNED_*``)."""
    if board.core.arch == "armv6-m":
        return UNALIGNED_FAULT
    return UNALIGNED_PAIR if board.core.name == "cortex-m7" else UNALIGNED_AHB


def calibration_path(board: Board) -> Path | None:
    """Where calibrated parameters for *board* live: the user's data directory, keyed by
    board name (:mod:`tinymeter.core.calibrations`), never inside the installed package."""
    return calibration_file(board.name)


def cost_model_for(board: Board, calibration: Path | None = None) -> CostModel:
    """The cost model of *board*: :func:`datasheet_cost_model`, overridden by the
    calibration file *calibration* (default: the one next to the board file) if it exists."""
    model = datasheet_cost_model(board)
    path = calibration if calibration is not None else calibration_path(board)
    if path is not None and path.exists():
        model = load_calibration(model, path)
    return model


def chosen_cost_model(board: Board, choice: CalibrationChoice) -> CostModel:
    """The cost model of *board* with the calibration *choice* applied (``--calibration``:
    a file, or none = the datasheet cost model)."""
    return datasheet_cost_model(board) if choice.path is None else cost_model_for(board, choice.path)


def datasheet_cost_model(board: Board) -> CostModel:
    """TRM timings of the board's core, never a calibration (the prior of a fit, so
    calibrations do not stack).  The board's memory effects are not parameters here:
    the native hook simulates them from the board file (:func:`timing_config`)."""
    params = CORE_PARAMETERS[board.core.name]
    return CostModel(name=f"tm-{board.core.name}-v{COST_MODEL_VERSION}", core=board.core.name,
                     clock_hz=board.clock_hz, params=params, active_mw=board.power.active_mw,
                     energy=board_energy_parameters(board))


def load_calibration(model: CostModel, path: Path) -> CostModel:
    """Override parameters with a calibration file (written by `tinymeter calibrate`)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or not UTF-8
        raise ConfigError(f"calibration file {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"calibration file {path}: expected a JSON object, "
                          f"got {type(raw).__name__}")
    allowed = {"cpi", "mnemonic_cycles", "active_mw", "energy", "dual_issue_alu",
               "branch_mispredict", *_SCALARS}
    unknown = set(raw) - allowed - {"fit"}
    if unknown:
        raise ConfigError(f"calibration file {path}: unknown key(s) {', '.join(sorted(unknown))}")
    raw.pop("fit", None)  # the fit report for humans (errors, models); not a parameter
    active = raw.pop("active_mw", model.active_mw)
    if isinstance(active, bool) or not isinstance(active, (int, float)):
        raise ConfigError(f"calibration file {path}: active_mw must be a number, got {active!r}")
    energy = model.energy
    if "energy" in raw:
        energy = EnergyParameters.from_dict(raw.pop("energy"), f"calibration file {path}")
    elif active != model.active_mw:
        # a constant-power fit (older files): its active power, no energy per access
        energy = EnergyParameters(core_mw=float(active))
    try:
        params = replace(model.params, **raw)
    except ConfigError as exc:
        raise ConfigError(f"calibration file {path}: {exc}") from None
    return replace(model, params=params, active_mw=float(active), energy=energy,
                   source=f"calibrated ({Path(path).name})")


# -- calibration features ---------------------------------------------------------------
#
# The cycles of a run are *linear* in the parameter vector theta: one coefficient per
# instruction class (loads that pipelined excluded), one for pipelined loads, one per
# register of LDM/STM/PUSH/POP, one per overridden mnemonic, one per taken branch (exact
# counts from the run; a not-taken one costs its branch cycle; on a predicting core one per
# mispredicted conditional end instead), and one weight per simulated
# stall mechanism (instruction fetch, data memory) on the raw stall cycles the hook
# summed, and one per extra bus transaction of the unaligned accesses it counted.  So
# ``layer_features(run) @ parameter_vector(p)`` is the per-layer cycle estimate of ``p``
# (exactly, up to the hook's fixed-point rounding), and calibration is a linear
# least-squares problem over per-layer rows.  Every column is separable by some code,
# which is what the calibration microbenchmarks (``tinymeter/apps/microbench.py``) provide.


def feature_names(params: CostParameters) -> tuple[str, ...]:
    """Names of the columns of :func:`block_features` (and entries of theta) for *params*.

    The overridden mnemonics are part of the layout, so features and parameters must be
    built from the same :class:`CostParameters` (the calibration prior).
    """
    dual = ("alu.dual",) if params.dual_issue_alu is not None else ()
    predicted = ("branch.mispredict",) if params.branch_mispredict is not None else ()
    return (*(f"cpi.{c}" for c in CLASSES), "load.pipelined", *dual, "per_register",
            *DEPENDENCIES, *(f"mnemonic.{m}" for m in sorted(params.mnemonic_cycles)),
            *predicted, "branch.taken", "stall.ifetch", "stall.data", "unaligned")


#: Feature names of the dependency stalls, in the order of their parameters
#: (``agu_stall``, ``narrow_load_use``, ``fp_result_stall``).
DEPENDENCIES = ("dep.address", "dep.narrow_load", "dep.fp_result")


def block_features(info: BlockInfo, params: CostParameters) -> np.ndarray:
    """Static feature row of one execution of *info* (the dynamic columns zero):
    ``block_features(b, p) @ parameter_vector(p) == CostModel(..., p).core_cycles(b)``."""
    names = feature_names(params)
    col = {n: i for i, n in enumerate(names)}
    row = np.zeros(len(names))
    row[:len(CLASSES)] = info.classes
    row[_LOAD] -= info.pipelined_loads
    row[col["load.pipelined"]] = info.pipelined_loads
    if "alu.dual" in col:
        row[_ALU] -= info.dual_issued
        row[col["alu.dual"]] = info.dual_issued
    row[col["per_register"]] = info.multiple_registers
    for n, mnemonic in ((info.vldr_pipelined, "vldr"), (info.vstr_pipelined, "vstr")):
        if n:  # pipelined: priced as pipelined_load instead of the mnemonic's cycles
            row[col["load.pipelined"]] += n
            base = col.get(f"mnemonic.{mnemonic}") if mnemonic in params.mnemonic_cycles else None
            row[base if base is not None else classify(mnemonic)] -= n
    if info.vldm_pipelined:  # one-register VLDM pipelined: instead of 1 + N
        row[col["load.pipelined"]] += info.vldm_pipelined
        row[CLASSES.index("load_multiple")] -= info.vldm_pipelined
        row[col["per_register"]] -= info.vldm_pipelined
    row[col["dep.address"]] = info.agu_stalls
    row[col["dep.narrow_load"]] = info.narrow_load_uses
    row[col["dep.fp_result"]] = info.fp_dependent
    for mnemonic in info.mnemonics:
        i = col.get(f"mnemonic.{mnemonic}")
        if i is not None and mnemonic in params.mnemonic_cycles:
            row[i] += 1.0
            row[classify(mnemonic)] -= 1.0
    return row


def parameter_vector(params: CostParameters) -> np.ndarray:
    """theta of *params* in the layout of :func:`feature_names`."""
    theta = [params.cpi[c] for c in CLASSES]
    theta.append(params.pipelined_load)
    if params.dual_issue_alu is not None:
        theta.append(params.dual_issue_alu)
    theta.append(params.per_register)
    theta += [params.agu_stall, params.narrow_load_use, params.fp_result_stall]
    theta += [params.mnemonic_cycles[m] for m in sorted(params.mnemonic_cycles)]
    if params.branch_mispredict is not None:
        theta.append(params.branch_mispredict)
    theta += [params.branch_refill, params.ifetch_weight, params.data_weight, params.unaligned]
    return np.array(theta, dtype=np.float64)


def parameters_from_vector(theta: np.ndarray, prior: CostParameters) -> CostParameters:
    """Inverse of :func:`parameter_vector`: the parameters whose vector is *theta*."""
    names = feature_names(prior)
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape != (len(names),):
        raise ConfigError(f"parameter vector has shape {theta.shape}, expected ({len(names)},)")
    value = dict(zip(names, (float(v) for v in theta)))
    return replace(prior, cpi={c: value[f"cpi.{c}"] for c in CLASSES},
                   pipelined_load=value["load.pipelined"], per_register=value["per_register"],
                   dual_issue_alu=value.get("alu.dual", prior.dual_issue_alu),
                   mnemonic_cycles={m: value[f"mnemonic.{m}"] for m in sorted(prior.mnemonic_cycles)},
                   branch_refill=value["branch.taken"], ifetch_weight=value["stall.ifetch"],
                   data_weight=value["stall.data"], agu_stall=value["dep.address"],
                   narrow_load_use=value["dep.narrow_load"],
                   fp_result_stall=value["dep.fp_result"],
                   branch_mispredict=value.get("branch.mispredict", prior.branch_mispredict),
                   unaligned=value["unaligned"])


def row_features(run: RunResult, params: CostParameters) -> np.ndarray:
    """Feature matrix ``[rows of run.blocks, len(feature_names(params))]``, summed over each
    row's executions: static columns x count, dynamic columns from the hook's statistics."""
    profile = run.profile
    if profile is None:
        raise ConfigError("the run has no block profile (counting was disabled)")
    per_key = {key: block_features(info, params) for key, info in profile.infos.items()}
    table = profile.table
    names = feature_names(params)
    out = np.zeros((len(table), len(names)))
    counts = profile.counts.astype(np.float64)
    stats = run.stats
    seams = len(stats) == len(table)
    for i, key in enumerate(zip(table.address.tolist(), table.size.tolist())):
        out[i] = per_key[key] * counts[i]
        if seams:
            out[i] += _seam_features(profile.infos[key], names, int(stats[i, STAT["seam_pipe"]]),
                                     int(stats[i, STAT["seam_pair"]]))
    if len(stats):
        col = {n: i for i, n in enumerate(names)}
        taken = stats[:, STAT["taken"]].astype(np.float64)
        if "branch.mispredict" in col:
            # a predicted end's taken outcomes cost nothing unless mispredicted
            predicted = np.array([end_kind(profile.infos[key]) == END_CONDITIONAL for key in
                                  zip(table.address.tolist(), table.size.tolist())], dtype=bool)
            taken[predicted] = 0.0
            out[:, col["branch.mispredict"]] = stats[:, STAT["mispredict"]]
        out[:, col["branch.taken"]] = taken
        out[:, col["stall.ifetch"]] = stats[:, STAT["ifetch_stall"]] / CYCLE_SCALE
        out[:, col["stall.data"]] = stats[:, STAT["data_stall"]] / CYCLE_SCALE
        out[:, col["unaligned"]] = stats[:, UNALIGNED_COLUMNS].sum(axis=1)
    return out


def _seam_features(info: BlockInfo, names: tuple[str, ...], piped: int, paired: int
                   ) -> np.ndarray:
    """Feature change of the executions that joined their predecessor at the block's
    start: *piped* times its first load pipelined, *paired* times its first ALU
    instruction dual-issued (shifting the pairs after it)."""
    row = np.zeros(len(names))
    if piped:
        row[_LOAD] -= piped
        row[names.index("load.pipelined")] += piped
    if paired and "alu.dual" in names:
        shift = info.seam.dual_issued_if_paired - info.dual_issued
        row[_ALU] -= shift * paired
        row[names.index("alu.dual")] += shift * paired
    return row


def layer_features(run: RunResult, params: CostParameters, n_layers: int) -> np.ndarray:
    """Per-layer feature matrix ``[n_layers, len(feature_names(params))]`` of one run.

    ``layer_features(...) @ parameter_vector(p)`` is the per-layer cycle estimate of
    ``p``; executions outside layers (layer -1) and beyond *n_layers* are left out.
    """
    rows = row_features(run, params)
    out = np.zeros((n_layers, rows.shape[1]))
    layers = run.blocks.layer
    keep = (layers >= 0) & (layers < n_layers)
    np.add.at(out, layers[keep], rows[keep])
    return out
