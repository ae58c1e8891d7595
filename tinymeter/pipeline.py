"""The main job: .tflite -> firmware ELF -> emulated run -> per-layer estimate.

Orchestration only: each step lives in its own module (parsing in models, lowering
and build in firmware, emulation and cost model in sim); this module wires them in
order, reports progress, and assembles the :class:`~tinymeter.report.Estimate`.
"""

from __future__ import annotations

import logging
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tinymeter.boards import Board
from tinymeter.errors import ConfigError, EmulationError
from tinymeter.firmware.build import BuildConfig, FirmwareBuilder, FirmwareImage
from tinymeter.firmware.codegen import generate
from tinymeter.models.tflite import load_tflite
from tinymeter.report import Estimate, FunctionProfile, LayerEstimate
from tinymeter.sim.costmodel import CostModel, cost_model_for
from tinymeter.sim.emulator import Emulator, RunResult

log = logging.getLogger(__name__)

STACK_PAINT = 0xDEADBEEF


def resolve_model(model: str | Path | None) -> Path:
    """A .tflite path as given, a zoo model name built on demand, or the default model."""
    from tinymeter.models import zoo

    if model is None:
        return zoo.default_model_path()
    path = Path(model)
    if path.exists():
        return path
    if path.suffix == ".tflite" or "/" in str(model):
        raise ConfigError(f"model file {model} does not exist")
    if str(model) in zoo.list_models():
        return zoo.build_tflite(str(model))
    raise ConfigError(f"{model!r} is neither a file nor a zoo model "
                      f"(zoo: {', '.join(zoo.list_models())})")


@dataclass
class _Stages:
    """Progress over the pipeline's stages (a bar on stderr when enabled)."""

    bar: tqdm | None

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.bar is not None:
            self.bar.set_description(name)
        log.info("%s", name)
        yield
        if self.bar is not None:
            self.bar.update(1)


def stack_peak(emulator: Emulator, image: FirmwareImage) -> int | None:
    """Deepest stack use in bytes, from the paint the startup code leaves below SP."""
    elf = emulator.image
    uc = emulator.uc
    if elf is None or uc is None:
        return None
    lo, hi = elf.symbol("_sstack"), elf.symbol("_estack")
    if lo is None or hi is None:
        return None
    raw = bytes(uc.mem_read(lo.address, hi.address - lo.address))
    words = struct.unpack(f"<{len(raw) // 4}I", raw)
    for i, w in enumerate(words):
        if w != STACK_PAINT:
            return hi.address - (lo.address + 4 * i)
    return 0


def layer_estimates(run: RunResult, model: CostModel, n_layers: int, macs: list[int],
                    op_names: list[str]) -> tuple[list[LayerEstimate], int, np.ndarray]:
    """Per-layer instructions, cycles and energy from the run's block profile."""
    profile = run.profile
    if profile is None:
        raise EmulationError("the run has no instruction profile (counting was disabled)")
    layer = profile.table.layer
    executed = profile.instructions * profile.counts
    row_cycles = model.cycles(profile) * profile.counts
    classes = profile.classes * profile.counts[:, None]
    from tinymeter.sim.blocks import CLASSES

    cycles_by_layer = np.zeros(n_layers)
    instr_by_layer = np.zeros(n_layers, dtype=np.int64)
    class_by_layer = np.zeros((n_layers, len(CLASSES)), dtype=np.int64)
    inside = (layer >= 0) & (layer < n_layers)
    np.add.at(cycles_by_layer, layer[inside], row_cycles[inside])
    np.add.at(instr_by_layer, layer[inside], executed[inside])
    np.add.at(class_by_layer, layer[inside], classes[inside])
    total_cycles = float(cycles_by_layer.sum()) or 1.0
    rows = []
    for i in range(n_layers):
        cyc = float(cycles_by_layer[i])
        rows.append(LayerEstimate(
            index=i, op=op_names[i], macs=macs[i], instructions=int(instr_by_layer[i]),
            cycles=round(cyc), ms=model.seconds(cyc) * 1e3, energy_uj=model.energy_uj(cyc),
            share=cyc / total_cycles,
            classes={c: int(v) for c, v in zip(CLASSES, class_by_layer[i].tolist()) if v}))
    overhead = int(executed[~inside].sum())
    return rows, overhead, row_cycles


def function_profile(run: RunResult, emulator: Emulator, row_cycles: np.ndarray) -> list[FunctionProfile]:
    """Flat profile over the whole run: instructions and cycles per function."""
    profile, elf = run.profile, emulator.image
    if profile is None or elf is None:
        return []
    instr: dict[str, int] = {}
    cyc: dict[str, float] = {}
    executed = (profile.instructions * profile.counts).tolist()
    for addr, n, c in zip(profile.table.address.tolist(), executed, row_cycles.tolist()):
        found = elf.symbol_at(addr)
        name = found[0].name if found else f"0x{addr:08x}"
        instr[name] = instr.get(name, 0) + n
        cyc[name] = cyc.get(name, 0.0) + c
    total = sum(cyc.values()) or 1.0
    return sorted((FunctionProfile(n, instr[n], round(cyc[n]), cyc[n] / total) for n in instr),
                  key=lambda f: -f.cycles)


def estimate(model_path: Path, board: Board, config: BuildConfig | None = None, *,
             budget_instructions: int = 2_000_000_000, timeout_s: float = 600.0,
             builder: FirmwareBuilder | None = None, progress: bool = False,
             cost_model: CostModel | None = None) -> Estimate:
    """Build *model_path* for *board*, emulate one inference and estimate every layer."""
    config = config or BuildConfig()
    builder = builder or FirmwareBuilder()
    show = progress and sys.stderr.isatty()
    bar = tqdm(total=4, disable=not show, leave=False, unit="step")
    stages = _Stages(bar if show else None)
    try:
        with stages.stage("parsing and lowering the model"):
            gen = generate(load_tflite(model_path), name=Path(model_path).stem)
        with stages.stage(f"building firmware for {board.name}"):
            image = builder.build(gen, board, config)
        emulator = Emulator(board)
        with stages.stage("emulating one inference"):
            run = emulator.run(image.elf, [[]], budget_instructions=budget_instructions,
                               timeout_s=timeout_s)
        with stages.stage("applying the cost model"):
            model = cost_model or cost_model_for(board)
            rows, overhead, row_cycles = layer_estimates(
                run, model, len(gen.layers), [layer.macs for layer in gen.layers],
                [layer.op_name for layer in gen.layers])
            functions = function_profile(run, emulator, row_cycles)
            stack = stack_peak(emulator, image)
    finally:
        bar.close()
    cycles = sum(r.cycles for r in rows)
    return Estimate(
        model=Path(model_path).name, board=board.name, core=board.core.name,
        clock_hz=board.clock_hz, kernels=config.kernels, cost_model=model.name,
        cost_parameters=model.describe(), layers=tuple(rows),
        instructions=sum(r.instructions for r in rows), cycles=cycles,
        ms=model.seconds(cycles) * 1e3, energy_uj=model.energy_uj(cycles),
        overhead_instructions=overhead, arena_bytes=gen.arena_bytes,
        flash_bytes=image.flash_bytes, ram_bytes=image.ram_bytes, weight_bytes=gen.weight_bytes,
        stack_bytes=stack, emulation_seconds=run.wall_time_s, emulation_mips=run.mips,
        functions=tuple(functions))
