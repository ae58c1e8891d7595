"""Run a model in the user's prebuilt TFLM library: build, size the arena, estimate.

The TFLM counterpart of :func:`tinymeter.apps.estimate.estimate`.  The harness numbers its
layers in execution order, one per operator (see ``runtime/tflm/tm_tflm_main.cc``), so
the per-layer facts (MACs, weights, output shape) come from the model exactly as for
tinymeter's own runtime, and the report is as complete: arena as TFLM allocated it,
flash and RAM from the linked ELF.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from tinymeter.abi import ARENA_HOOK, ArenaReport, parse_arena
from tinymeter.analysis.report import Estimate
from tinymeter.apps.estimate import _assemble, function_profile, layer_estimates, layer_facts
from tinymeter.core.boards import Board
from tinymeter.core.errors import EmulationError
from tinymeter.device import EmulatedDevice
from tinymeter.firmware.build import BuildConfig, FirmwareImage
from tinymeter.firmware.codegen import GeneratedModel, default_inputs, io_tensors
from tinymeter.firmware.lower.base import Layer
from tinymeter.firmware.tflm import (
    ARENA_LIMIT_SYMBOL,
    TflmBuild,
    TflmLibrary,
    arena_for,
    elf_memory,
    patch_word,
    search_sizes,
    sizing_board,
    too_big_error,
)
from tinymeter.models.inspect import inspect_model
from tinymeter.models.tflite import load_tflite, read_model_bytes
from tinymeter.sim import DEFAULT_BUDGET_INSTRUCTIONS, DEFAULT_TIMEOUT_S
from tinymeter.sim.costmodel import CostModel, cost_model_for
from tinymeter.sim.emulator import RunResult

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class TflmImage:
    """A linked TFLM-harness firmware and the facts reports need about it."""

    elf: Path
    board: Board
    library: TflmLibrary
    #: Arena linked into the ELF and the part TFLM used (``arena_used_bytes()``).
    arena_bytes: int
    arena_used: int
    flash_bytes: int
    ram_bytes: int
    sections: dict[str, int]
    #: TFLM's own log lines (empty for release builds, which strip them).
    log: tuple[str, ...] = ()
    #: The arena the model needs: ``arena_used`` unless AllocateTensors needed more
    #: (the searched minimum, see :func:`size_arena`); 0 = ``arena_used``.
    arena_min: int = 0

    @property
    def arena_needed(self) -> int:
        return self.arena_min or self.arena_used


def _arena_run(elf: Path, board: Board, timeout_s: float) -> ArenaReport:
    """Run the firmware up to the end of AllocateTensors (uncounted) and read its arena
    line."""
    run = EmulatedDevice(board, timeout_s=timeout_s, count=False,
                         stop_at=(ARENA_HOOK,)).run_elf(elf)
    report = parse_arena(run.stdout)
    if report is None:
        raise EmulationError(f"the TFLM harness printed no arena line (output: "
                             f"{run.stdout.strip()[-200:]!r})")
    for line in report.log:
        log.info("TFLM: %s", line)
    return report


def size_arena(build: TflmBuild, name: str, timeout_s: float) -> tuple[int, ArenaReport]:
    """The smallest arena TFLM allocates the model in, found by running it with the
    largest arena the board's RAM allows and reading ``arena_used_bytes()``.  That
    figure excludes the memory planner's temporary buffers, which can need more while
    AllocateTensors runs (small models), so it is checked and, if short, the minimum
    is searched by patching the arena limit in a copy of the ELF (no relink).  A model
    needing more than the board has is an error naming both sizes (what it needs is
    measured on the board with its RAM grown, see :func:`sizing_board`)."""
    board = build.board
    elf = build.link(None, stem="sizing")
    room = elf_memory(elf)[2].get(".tflm_arena", 0)
    report = _arena_run(elf, board, timeout_s)
    if report.used is not None:
        def fits(size: int) -> bool:
            trial = patch_word(elf, ARENA_LIMIT_SYMBOL, size, build.work / "trial.elf")
            return _arena_run(trial, board, timeout_s).used is not None

        arena = arena_for(report.used)
        if arena < report.size and not fits(arena):
            arena = search_sizes(arena, report.size // 16 * 16, fits)
            log.info("%s: TFLM reports %d B used but needs a %d B arena to allocate",
                     name, report.used, arena)
        return arena, report
    big = sizing_board(board)
    big_report = _arena_run(build.link(None, board=big, stem="sizing-big"), big, timeout_s)
    if big_report.used is None:
        raise too_big_error(name, board, big_report.size, room, at_least=True)
    raise too_big_error(name, board, big_report.used, room)


def build_tflm_image(model_path: Path, board: Board, library: TflmLibrary,
                     config: BuildConfig | None = None, *, arena_bytes: int | None = None,
                     work: Path, out_dir: Path | None = None,
                     timeout_s: float = DEFAULT_TIMEOUT_S) -> TflmImage:
    """Build the harness firmware for *model_path* in *work*; the arena is
    *arena_bytes*, or sized automatically (:func:`size_arena`).  With *out_dir* the
    ELF, its map, linker script and generated files are kept there."""
    data = read_model_bytes(model_path)
    main = load_tflite(model_path).main
    name = Path(model_path).stem
    build = TflmBuild(data, name, [op.opcode for op in main.operators], board, library,
                      config, work=work)
    log_lines: tuple[str, ...] = ()
    searched = 0
    if arena_bytes is None:
        arena_bytes, sized = size_arena(build, name, timeout_s)
        log_lines = sized.log
        searched = arena_bytes if sized.used is not None and arena_bytes > arena_for(
            sized.used) else 0
        log.info("%s: TFLM uses %d B of arena", name, sized.used)
    elf = build.link(arena_bytes)
    check = _arena_run(elf, board, timeout_s)
    if check.used is None:
        raise EmulationError(
            f"TFLM could not allocate the model's tensors in a {arena_bytes:,} B arena"
            + (f" (TFLM: {check.log[-1]})" if check.log else "")
            + "; leave the arena size out to have it sized automatically")
    if out_dir is not None:
        build.keep(out_dir)
        elf = Path(out_dir) / "firmware.elf"
    flash, ram, sections = elf_memory(elf)
    return TflmImage(elf, board, library, arena_bytes, check.used, flash, ram, sections,
                     log_lines or check.log, searched)


def _check_layers(run: RunResult, n_ops: int, name: str) -> None:
    """The harness must report one layer per operator (else the rows would be misaligned)."""
    assert run.profile is not None
    seen = {int(x) for x in run.profile.table.layer.tolist() if x >= 0}
    if seen and max(seen) + 1 != n_ops:
        raise EmulationError(f"{name}: TFLM invoked {max(seen) + 1} operators, the model has "
                             f"{n_ops} (layers would not align with operators)")


def estimate_tflm(model_path: Path, board: Board, library: TflmLibrary,
                  config: BuildConfig | None = None, *, arena_bytes: int | None = None,
                  out_dir: Path | None = None,
                  budget_instructions: int = DEFAULT_BUDGET_INSTRUCTIONS,
                  timeout_s: float = DEFAULT_TIMEOUT_S,
                  cost_model: CostModel | None = None) -> Estimate:
    """Estimate *model_path* running in the prebuilt TFLM *library* on *board*: one
    layer per operator (MACs, weights, output shape from the model), the arena TFLM
    really used, flash and RAM of the linked ELF; *out_dir* keeps the ELF."""
    model = load_tflite(model_path)
    main = model.main
    macs, weights, shapes = layer_facts(model)
    cost = cost_model or cost_model_for(board)
    inputs = default_inputs(io_tensors(model, main.inputs))
    with tempfile.TemporaryDirectory(prefix="tm-tflm-") as work:
        image = build_tflm_image(model_path, board, library, config, arena_bytes=arena_bytes,
                                 work=Path(work), out_dir=out_dir, timeout_s=timeout_s)
        device = EmulatedDevice(board, cost_model=cost, budget_instructions=budget_instructions,
                                timeout_s=timeout_s)
        emulated = device.run_elf(image.elf, [inputs])
        run = emulated.emulation
        _check_layers(run, len(main.operators), Path(model_path).name)
        rows, overhead, row_cycles = layer_estimates(
            run, cost, len(main.operators), macs, [op.opcode for op in main.operators],
            board=board)
        functions = function_profile(run, emulated.elf, row_cycles)
        stack = emulated.stack_bytes
    rows = [replace(r, weight_bytes=w, output_shape=s) for r, w, s in zip(rows, weights, shapes)]
    est = _assemble(Path(model_path).name, board, library.label, cost, run, rows, overhead,
                    functions, arena_bytes=image.arena_needed, flash_bytes=image.flash_bytes,
                    ram_bytes=image.ram_bytes, weight_bytes=inspect_model(model).total_weight_bytes,
                    stack_bytes=stack)
    return replace(est, runtime="tflm", log=image.log)


def firmware_image(image: TflmImage, model_path: Path, config: BuildConfig) -> FirmwareImage:
    """*image* as the :class:`~tinymeter.firmware.build.FirmwareImage` the measuring and
    flashing code takes: one layer per operator (op names and MACs from the model), so a
    TFLM hardware image is flashed, measured and calibrated like the own runtime's."""
    model = load_tflite(model_path)
    main = model.main
    macs, weights, _shapes = layer_facts(model)
    layers = [Layer(op_index=i, op_name=op.opcode, kernel="tflm", params_type="", params={},
                    macs=m) for i, (op, m) in enumerate(zip(main.operators, macs))]
    gen = GeneratedModel(source="", layers=layers, inputs=io_tensors(model, main.inputs),
                         outputs=io_tensors(model, main.outputs), arena_bytes=image.arena_needed,
                         weight_bytes=sum(weights), name=Path(model_path).stem)
    return FirmwareImage(image.elf, image.board, config, gen, image.flash_bytes,
                         image.ram_bytes, image.sections)
