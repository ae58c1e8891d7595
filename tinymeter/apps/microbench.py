"""Calibration microbenchmarks: a firmware whose "layers" each stress one instruction mix.

Why: per-layer cycles of NN models alone cannot separate the cost model's parameters.
Their layers run the instruction classes in nearly fixed proportions (every loop
back-edge is a conditional branch, push and pop come in pairs, reference kernels never
divide or touch the DSP/FPU), so only a few combinations are identifiable.  Real
boards are calibrated the same way: hand-written loops (``runtime/calib/tm_calib.c``)
of ALU ops, multiplies, loads from RAM and flash, stores, LDM/STM with different
register counts, call chains, taken and conditional branches, divides, DSP and VFP
instructions, each dominating its layer's cycles.

The firmware reuses the harness, platform, startup and linker script of model firmware
(profiler hooks and ``TM1`` report unchanged), so the serial parser, the results
database and the virtual board treat it like any model; only the layer table is
generated here, per core, from the benchmarks that exist on it.

What they separate (each row of the fitted vector, ``sim.costmodel.feature_names``):
ALU/MUL/MLA/MLS/UMULL/SMLAL/UMLAL/SMLAD/UDIV+SDIV/NOP/VFP loops pin their class or
mnemonic column; LDM/STM with 2, 4 (and 8) registers split the class cost from
``per_register``; calls returning with ``BX LR`` (a branch instruction) versus
``POP {..., PC}`` (a taken branch that is no branch instruction) split ``cpi.branch``
from ``branch.taken``; chains of ``B`` versus conditional-branch loops split
``branch.taken`` from ``branch.conditional``.  What stays unidentified is only what
the core cannot execute (:func:`absent_instructions`) plus the splits no per-layer
measurement can make (``analysis.calibrate.NOT_SEPARABLE``).

Limits on a real board: loads from RAM and from flash (``MB_LDR_RAM``/``MB_LDR_FLASH``)
have the same features (the block profile does not know addresses), so their
difference shows up as residual, not as ``load_stall``; and the cost model charges
every conditional branch the same mean taken fraction, so the loop, chain and pattern
benchmarks (taken ~always, always, 3 in 4) make the fitted fraction a compromise
whose misfit the per-layer errors show.  On the virtual board both hold exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinymeter.analysis.calibrate import ModelSample
from tinymeter.apps.resultsdb import ResultsDB, StoredMeasurement, file_sha256
from tinymeter.core.boards import Board
from tinymeter.core.cores import Core
from tinymeter.core.errors import ConfigError
from tinymeter.device import EmulatedDevice
from tinymeter.firmware.build import (
    BuildConfig,
    FirmwareBuilder,
    board_sources,
    calibration_sources,
)
from tinymeter.hw.device import HardwareDevice, MeasureConfig
from tinymeter.hw.power.monitors import PowerMonitor
from tinymeter.sim.costmodel import CostParameters
from tinymeter.sim.energy import energy_features

log = logging.getLogger(__name__)

#: Model name the calibration firmware reports (``TM1 BEGIN microbench ...``).
MICROBENCH_MODEL = "microbench"
#: Core features a benchmark may need: Thumb-2 (ARMv7-M/ARMv8-M mainline), DSP, FPU.
FEATURES = ("thumb2", "dsp", "fpu")


@dataclass(frozen=True)
class Microbenchmark:
    """One benchmark: its C function, the op name it reports, what it needs and stresses."""

    op: str
    function: str
    stresses: str
    requires: frozenset[str] = frozenset()


def _mb(op: str, function: str, stresses: str, *requires: str) -> Microbenchmark:
    return Microbenchmark(op, f"tm_calib_{function}", stresses, frozenset(requires))


#: Every benchmark of ``tm_calib.c`` in report order; the guards there match ``requires``.
MICROBENCHMARKS: tuple[Microbenchmark, ...] = (
    _mb("MB_ALU", "alu", "cpi.alu"),
    _mb("MB_MUL", "mul", "cpi.mul (MULS)"),
    _mb("MB_NOP", "nop", "cpi.other (NOP)"),
    _mb("MB_LDR_RAM", "ldr_ram", "cpi.load from SRAM"),
    _mb("MB_LDR_FLASH", "ldr_flash", "cpi.load from flash (.rodata)"),
    _mb("MB_STR", "str", "cpi.store"),
    _mb("MB_LDR_ALU", "ldr_alu", "cpi.load, not pipelined (ALU between loads)"),
    _mb("MB_ALU_PAIRS", "alu_pairs", "independent ALU pairs (alu.dual on a dual-issue core)"),
    _mb("MB_AGU", "agu", "dep.address: a load addressed by the ALU result right before it"),
    _mb("MB_NARROW_USE", "narrow_use", "dep.narrow_load: LDRB whose result the next ALU uses"),
    _mb("MB_FLASH_STREAM", "flash_stream", "stall.data: sequential loads through 2 KiB of flash"),
    _mb("MB_FETCH_BIG", "fetch_big", "stall.ifetch: a 1.5 KiB loop body fetched from flash"),
    _mb("MB_LDM2", "ldm2", "cpi.load_multiple + 2 per_register"),
    _mb("MB_LDM4", "ldm4", "cpi.load_multiple + 4 per_register"),
    _mb("MB_STM2", "stm2", "cpi.store_multiple + 2 per_register"),
    _mb("MB_STM4", "stm4", "cpi.store_multiple + 4 per_register"),
    _mb("MB_PUSHPOP", "pushpop", "PUSH/POP without PC"),
    _mb("MB_CALL_LEAF", "call_leaf", "BL + BX LR (taken branch instructions)"),
    _mb("MB_CALL_FRAME2", "call_frame2", "PUSH/POP {..PC} frames, 2 registers"),
    _mb("MB_CALL_FRAME5", "call_frame5", "PUSH/POP {..PC} frames, 5 registers"),
    _mb("MB_POP_PC", "pop_chain", "POP {PC} returning to itself (taken, no branch insn)"),
    _mb("MB_B", "branch_b", "unconditional taken B"),
    _mb("MB_BCOND_LOOP", "branch_loop", "conditional branch, loop back-edge"),
    _mb("MB_BCOND_CHAIN", "branch_chain", "conditional branch chain (taken BNE)"),
    _mb("MB_BCOND_PATTERN", "branch_pattern", "data-dependent conditional branch (3/4 taken)"),
    _mb("MB_BCOND_ALTERNATE", "branch_alternate",
        "conditional branches taken twice, not taken twice in turn (M7: 3 in 4 mispredicted)"),
    _mb("MB_MLA", "mla", "MLA", "thumb2"),
    _mb("MB_MLS", "mls", "MLS", "thumb2"),
    _mb("MB_UMULL", "umull", "cpi.mul64 (UMULL)", "thumb2"),
    _mb("MB_SMLAL", "smlal", "SMLAL", "thumb2"),
    _mb("MB_UMLAL", "umlal", "UMLAL", "thumb2"),
    _mb("MB_DIV", "div", "cpi.divide (UDIV, SDIV)", "thumb2"),
    _mb("MB_LDM8", "ldm8", "cpi.load_multiple + 8 per_register", "thumb2"),
    _mb("MB_LDR_UNALIGNED", "ldr_unaligned",
        "unaligned: LDR/LDRH at unaligned RAM addresses (6 extra transactions per 4 loads)",
        "thumb2"),
    _mb("MB_SMLAD", "smlad", "cpi.mac (SMLAD)", "dsp"),
    _mb("MB_VADD", "vadd", "cpi.vfp (VADD, VMUL)", "fpu"),
    _mb("MB_VDIV", "vdiv", "VDIV", "fpu"),
    _mb("MB_VSQRT", "vsqrt", "VSQRT", "fpu"),
    _mb("MB_VMLA", "vmla", "VMLA", "fpu"),
    _mb("MB_VMLS", "vmls", "VMLS", "fpu"),
    _mb("MB_VFMA", "vfma", "VFMA", "fpu"),
    _mb("MB_VFMS", "vfms", "VFMS", "fpu"),
    _mb("MB_VLDR", "vldr", "VLDR", "fpu"),
    _mb("MB_VSTR", "vstr", "VSTR", "fpu"),
    _mb("MB_VMOV_CORE", "vmov_core", "VMOV between core and FPU registers", "fpu"),
    _mb("MB_VLDR_ALU", "vldr_alu", "VLDR not pipelined (ALU between)", "fpu"),
    _mb("MB_LDR_VSTR", "ldr_vstr", "VSTR pipelined behind LDR", "fpu"),
    _mb("MB_VFP_DEP", "vfp_dep", "dep.fp_result: VADD consuming the VADD before it", "fpu"),
    _mb("MB_VPUSHPOP", "vpushpop", "VPUSH/VPOP: load/store multiple + 4 per_register", "fpu"),
)


def core_features(core: Core) -> frozenset[str]:
    """What a core offers of :data:`FEATURES`."""
    have = set()
    if core.arch != "armv6-m":
        have.add("thumb2")
    if core.dsp:
        have.add("dsp")
    if core.has_fpu:
        have.add("fpu")
    return frozenset(have)


def benchmarks_for(core: Core) -> tuple[Microbenchmark, ...]:
    """The benchmarks whose instructions exist on *core* (report order)."""
    have = core_features(core)
    return tuple(b for b in MICROBENCHMARKS if b.requires <= have)


def absent_instructions(core: Core) -> dict[str, str]:
    """Parameters no firmware can exercise on *core*, with the architectural reason.

    Used by reports: a parameter of these stays at its datasheet value, and that is
    harmless because no code on this core can ever execute such an instruction.
    """
    have = core_features(core)
    out: dict[str, str] = {}
    if "thumb2" not in have:
        out["cpi.divide"] = f"{core.arch} has no hardware divide (SDIV/UDIV)"
        out["unaligned"] = f"{core.arch} faults on every unaligned access"
        out["cpi.mul64"] = f"{core.arch} has no long multiplies (UMULL/SMLAL)"
    if "dsp" not in have:
        out["cpi.mac"] = f"{core.name} has no DSP extension (SMLAD, SXTB16, QADD...)"
    if "fpu" not in have:
        out["cpi.vfp"] = f"{core.name} has no FPU"
        out["dep.fp_result"] = f"{core.name} has no FPU"
    return out


def table_source(benchmarks: tuple[Microbenchmark, ...]) -> str:
    """The generated C file: ``tm_layers[]`` of the benchmarks plus the model-file symbols
    the harness expects (no inputs, no outputs, no arena)."""
    if not benchmarks:
        raise ConfigError("no calibration microbenchmark exists for this core")
    lines = ["/* Generated by tinymeter: calibration microbenchmark table. */",
             '#include "tm_runtime.h"', ""]
    lines += [f"void {b.function}(const void *params);" for b in benchmarks]
    lines += ["", f'const char tm_model_name[] = "{MICROBENCH_MODEL}";',
              "const uint32_t tm_arena_bytes = 0u;",
              f"uint32_t tm_layer_cycles[{len(benchmarks)}];",
              "const tm_layer tm_layers[] = {"]
    lines += [f'    {{{b.function}, NULL, "{b.op}"}},' for b in benchmarks]
    lines += ["};", f"const uint32_t tm_num_layers = {len(benchmarks)}u;",
              "const tm_io_tensor tm_inputs[1] = {{NULL, 0u, NULL}};",
              "const uint32_t tm_num_inputs = 0u;",
              "const tm_io_tensor tm_outputs[1] = {{NULL, 0u, NULL}};",
              "const uint32_t tm_num_outputs = 0u;", ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class MicrobenchImage:
    """The built calibration firmware for one board."""

    elf: Path
    board: Board
    benchmarks: tuple[Microbenchmark, ...]

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(b.op for b in self.benchmarks)

    @property
    def report_layout(self) -> tuple[str, tuple[str, ...]]:
        """Model name and op names of the firmware's ``TM1`` report."""
        return MICROBENCH_MODEL, self.ops


def build_microbench(board: Board, runs: int = 1, builder: FirmwareBuilder | None = None,
                     io: str = "uart") -> MicrobenchImage:
    """Build (or reuse from the builder's cache) the microbenchmark firmware for *board*.

    Always ``-O2``: the benchmark bodies are assembly, and a fixed level keeps the
    harness around them (and so the measured image) independent of the NN build flags.
    """
    builder = builder or FirmwareBuilder()
    config = BuildConfig(opt="-O2", runs=runs, io=io)
    benchmarks = benchmarks_for(board.core)
    generated = {"tm_calib_table.c": table_source(benchmarks), **board_sources(board, config)}
    build_dir = builder.link_image(calibration_sources(builder.root), generated, board, config,
                                   kind="microbench")
    elf = build_dir / "firmware.elf"
    return MicrobenchImage(elf, board, benchmarks)


def emulate_microbench(image: MicrobenchImage, prior: CostParameters) -> np.ndarray:
    """Per-benchmark calibration features of one emulated run of the firmware."""
    return emulate_microbench_run(image, prior)[0]


def emulate_microbench_run(image: MicrobenchImage, prior: CostParameters
                           ) -> tuple[np.ndarray, np.ndarray]:
    """(calibration features, activity: flash reads and SRAM accesses) per benchmark; the
    flash and SRAM load loops are what separate the energy per access in the power fit."""
    run = EmulatedDevice(image.board, budget_instructions=200_000_000,
                         timeout_s=300.0).run_elf(image.elf)
    n = len(image.benchmarks)
    return run.layer_features(prior, n), run.layer_activity(n)


def measure_microbench(device: HardwareDevice, db: ResultsDB, config: MeasureConfig,
                       prior: CostParameters, *, builder: FirmwareBuilder | None = None,
                       resume: bool = True, power: PowerMonitor | None = None
                       ) -> tuple[ModelSample, StoredMeasurement]:
    """Build, measure (or reuse a stored measurement of the identical image) and emulate
    the microbenchmarks on the device's board; the sample always stays in the training set
    (``role="microbench"``), never in leave-one-model-out.  With *power*, per-benchmark
    energies are measured too (the sample then feeds the energy fit)."""
    board = device.board
    image = build_microbench(board, runs=config.firmware_runs, builder=builder)
    sha = file_sha256(image.elf)
    stored = db.latest(board.name, sha) if resume else None
    if (stored is None or stored.runs < config.runs
            or (power is not None and stored.energy_uj is None)):
        result = device.run(image, config=config, power=power).result
        assert result is not None
        e = result.energy
        mid = db.add(board=board.name, image_sha256=sha, measurement=result.measurement,
                     warmup=config.warmup, model_sha256=sha, kernels="microbench", opt="-O2",
                     tools=result.tools, parse_stats=result.parse_stats,
                     energy_uj=e.per_inference_uj if e else None,
                     latency_s=e.latency_s if e else None,
                     layer_energy_uj=e.per_layer_uj if e else None,
                     transcript=result.transcript)
        stored = db.get(mid)
    else:
        log.info("microbenchmarks: reusing measurement %d", stored.id)
    features, activity = emulate_microbench_run(image, prior)
    measured = np.array(stored.cycles, dtype=np.float64)
    layer_e = stored.layer_energy_uj
    energy = bool(layer_e) and len(layer_e) == len(measured) and all(x is not None for x in layer_e)
    sample = ModelSample(model=MICROBENCH_MODEL, ops=stored.ops, features=features,
                         measured=measured, role="microbench",
                         energy_features=(energy_features(measured / board.hardware_clock_hz,
                                                          activity) if energy else None),
                         layer_energy_uj=np.array(layer_e, dtype=np.float64) if energy else None)
    return sample, stored


def describe(benchmarks: tuple[Microbenchmark, ...]) -> Mapping[str, str]:
    """Op name -> what it stresses (for reports)."""
    return {b.op: b.stresses for b in benchmarks}
