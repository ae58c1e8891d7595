"""The main job: .tflite -> firmware ELF -> emulated run -> per-layer estimate.

Orchestration only: each step lives in its own module (parsing in models, lowering
and build in firmware, emulation and cost model in sim); this module wires them in
order, reports progress, and assembles the :class:`~tinymeter.analysis.report.Estimate`.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tinymeter.abi import IO_NEXT, PROF_BEGIN, PROF_END, parse_arena, reports
from tinymeter.analysis.report import Estimate, FunctionProfile, LayerEstimate
from tinymeter.core.boards import Board
from tinymeter.core.errors import ConfigError, EmulationError, TinymeterError
from tinymeter.device import EmulatedDevice
from tinymeter.firmware.build import (
    BuildConfig,
    FirmwareBuilder,
    FirmwareImage,
    effective_kernels,
    memory_use,
    section_sizes,
)
from tinymeter.firmware.codegen import generate, lower_model
from tinymeter.models import zoo
from tinymeter.models.inspect import inspect_model
from tinymeter.models.tflite import Model, load_tflite
from tinymeter.models.user_convert import cached_conversion, is_convertible
from tinymeter.sim import DEFAULT_BUDGET_INSTRUCTIONS, DEFAULT_TIMEOUT_S
from tinymeter.sim.classes import CLASSES
from tinymeter.sim.costmodel import CostModel, cost_model_for
from tinymeter.sim.elf import ElfImage
from tinymeter.sim.emulator import RunResult, tflm_profiler_symbols
from tinymeter.sim.energy import group_activity, layer_energy, row_activity, sum_energy
from tinymeter.sim.timing import group_splits, sum_splits

log = logging.getLogger(__name__)

def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def resolve_model(model: str | Path | None, *, quiet: bool = False) -> Path:
    """A .tflite path as given, a Keras file / SavedModel directory converted to int8
    (cached), a zoo model name built on demand, or the default model. A zoo build says
    so on stderr first (unless *quiet*): it takes tens of seconds."""
    notify = None if quiet else _say
    if model is None:
        return zoo.default_model_path(notify=notify)
    path = Path(model)
    if path.exists():
        return cached_conversion(path) if is_convertible(path) else path
    if path.suffix == ".tflite" or "/" in str(model):
        raise ConfigError(f"model file {model} does not exist")
    if str(model) in zoo.list_models():
        return zoo.build_tflite(str(model), notify=notify)
    raise ConfigError(f"{model!r} is neither a file nor a zoo model "
                      f"(zoo: {', '.join(zoo.list_models())})")


def build_model(model_path: Path, board: Board, config: BuildConfig | None = None, *,
                builder: FirmwareBuilder | None = None, out_dir: Path | None = None,
                parsed: Model | None = None) -> FirmwareImage:
    """Parse (unless *parsed* is the model already read), lower and build *model_path*
    for *board* (the firmware is named after the file's stem); ``image.model`` holds
    the generated model's facts."""
    model = parsed if parsed is not None else load_tflite(model_path)
    gen = generate(model, name=Path(model_path).stem)
    return (builder or FirmwareBuilder()).build(gen, board, config, out_dir=out_dir)


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


def layer_estimates(run: RunResult, model: CostModel, n_layers: int, macs: list[int],
                    op_names: list[str], *, whole_run: bool = False, board: Board | None = None
                    ) -> tuple[list[LayerEstimate], int, np.ndarray]:
    """Per-layer instructions, cycles and energy from the run's block profile.

    Energy is by activity (:mod:`tinymeter.sim.energy`: time, flash reads, SRAM
    accesses from the hook's statistics; *board* names the flash regions whose code
    fetches no cache counted) where the run has statistics, else constant power.
    *whole_run* makes every row of the profile belong to layer 0 (``n_layers`` must be
    1): the one-row report of firmware without any layer or span markers."""
    profile = run.profile
    if profile is None:
        raise EmulationError("the run has no instruction profile (counting was disabled)")
    layer = profile.table.layer
    if whole_run:
        layer = np.zeros_like(layer)
    executed = profile.instructions * profile.counts
    if run.cost_model == model and len(run.block_cycles) == len(profile.table):
        # summed by the native hook during the run (exactly count x fixed-point cost)
        row_cycles = run.row_cycles()
    else:
        row_cycles = model.cycles(profile) * profile.counts
    classes = profile.classes * profile.counts[:, None]
    own_stats = run.cost_model == model and len(run.stats) == len(profile.table)
    splits = (group_splits(run.stats, layer, n_layers, ifetch_weight=model.params.ifetch_weight,
                           data_weight=model.params.data_weight) if own_stats else None)
    activity = None
    if len(run.stats) == len(profile.table) and len(run.stats):
        activity = group_activity(row_activity(run.stats), layer, n_layers)
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
        energy = (layer_energy(model.seconds(cyc), activity[i][0], activity[i][1],
                               model.energy_parameters) if activity is not None else None)
        rows.append(LayerEstimate(
            index=i, op=op_names[i], macs=macs[i], instructions=int(instr_by_layer[i]),
            cycles=round(cyc), ms=model.seconds(cyc) * 1e3,
            energy_uj=energy.total_uj if energy else model.energy_uj(cyc),
            share=cyc / total_cycles,
            classes={c: int(v) for c, v in zip(CLASSES, class_by_layer[i].tolist()) if v},
            timing=splits[i].to_dict() if splits else {},
            energy=energy.to_dict() if energy else {}))
    total_energy = sum(r.energy_uj for r in rows) or 1.0
    rows = [replace(r, energy_share=r.energy_uj / total_energy) for r in rows]
    overhead = int(executed[~inside].sum())
    return rows, overhead, row_cycles


def function_profile(run: RunResult, elf: ElfImage | None, row_cycles: np.ndarray, *,
                     inside: int | None = None) -> list[FunctionProfile]:
    """Flat profile: instructions and cycles per function (over the whole run, or with
    *inside* = n only the rows of layers/spans 0..n-1).

    Rows are per function address, named by the demangled name; functions of one name
    at different addresses (static functions, anonymous namespaces: every TFLM kernel's
    ``Eval``) stay separate rows, told apart by their source file (DWARF) or address."""
    profile = run.profile
    if profile is None or elf is None:
        return []
    instr: dict[int, int] = {}
    cyc: dict[int, float] = {}
    executed = (profile.instructions * profile.counts).tolist()
    layers = profile.table.layer.tolist()
    group = np.full(len(layers), -1, dtype=np.int64)
    order: dict[int, int] = {}
    for row, (addr, layer, n, c) in enumerate(zip(profile.table.address.tolist(), layers,
                                                  executed, row_cycles.tolist())):
        if inside is not None and not 0 <= layer < inside:
            continue
        found = elf.symbol_at(addr)
        key = found[0].address if found else addr
        instr[key] = instr.get(key, 0) + n
        cyc[key] = cyc.get(key, 0.0) + c
        group[row] = order.setdefault(key, len(order))
    names = _function_names(elf, list(instr))
    total = sum(cyc.values()) or 1.0
    model = run.cost_model
    splits = (group_splits(run.stats, group, len(order), ifetch_weight=model.params.ifetch_weight,
                           data_weight=model.params.data_weight)
              if model is not None and len(run.stats) == len(layers) else None)
    return sorted((FunctionProfile(names[k], instr[k], round(cyc[k]), cyc[k] / total,
                                   timing=splits[order[k]].to_dict() if splits else {})
                   for k in instr), key=lambda f: (-f.cycles, f.name))


def _function_names(elf: ElfImage, addresses: list[int]) -> dict[int, str]:
    """Display name per function address: demangled, with ``[file.cc]`` (or ``@0x...``
    when files do not tell them apart) where several addresses share a name."""
    base: dict[int, str] = {}
    for addr in addresses:
        found = elf.symbol_at(addr)
        base[addr] = elf.demangled(found[0].name) if found else f"0x{addr:08x}"
    groups: dict[str, list[int]] = {}
    for addr, name in base.items():
        groups.setdefault(name, []).append(addr)
    out = dict(base)
    for name, addrs in groups.items():
        if len(addrs) < 2:
            continue
        units = {a: elf.debug.unit_name(a) for a in addrs}
        distinct = len(set(units.values())) == len(addrs) and all(units.values())
        for a in addrs:
            out[a] = f"{name} [{units[a]}]" if distinct else f"{name} @0x{a:08x}"
    return out


def with_layer_facts(rows: list[LayerEstimate], model: Model) -> list[LayerEstimate]:
    """*rows* (one per operator, in order) with each operator's weight bytes and output
    shape from the model."""

    _macs, weights, shapes = layer_facts(model)
    return [replace(r, weight_bytes=w, output_shape=s) for r, w, s in zip(rows, weights, shapes)]


def estimate(model_path: Path, board: Board, config: BuildConfig | None = None, *,
             budget_instructions: int = DEFAULT_BUDGET_INSTRUCTIONS, timeout_s: float = DEFAULT_TIMEOUT_S,
             builder: FirmwareBuilder | None = None, progress: bool = False,
             cost_model: CostModel | None = None) -> Estimate:
    """Build *model_path* for *board*, emulate one inference and estimate every layer."""
    config = config or BuildConfig()
    builder = builder or FirmwareBuilder()
    show = progress and sys.stderr.isatty()
    bar = tqdm(total=4, disable=not show, leave=False, unit="step")
    stages = _Stages(bar if show else None)
    try:
        with stages.stage("parsing the model"):
            parsed = load_tflite(model_path)
        with stages.stage(f"lowering and building firmware for {board.name}"):
            image = build_model(model_path, board, config, builder=builder, parsed=parsed)
        gen = image.model
        model = cost_model or cost_model_for(board)
        device = EmulatedDevice(board, cost_model=model, budget_instructions=budget_instructions,
                                timeout_s=timeout_s)
        with stages.stage("emulating one inference"):
            emulated = device.run_elf(image.elf)
            run = emulated.emulation
        with stages.stage("applying the cost model"):
            rows, overhead, row_cycles = layer_estimates(
                run, model, len(gen.layers), [layer.macs for layer in gen.layers],
                [layer.op_name for layer in gen.layers], board=board)
            functions = function_profile(run, emulated.elf, row_cycles)
            stack = emulated.stack_bytes
    finally:
        bar.close()
    rows = with_layer_facts(rows, parsed)
    kernels = effective_kernels(config.kernels, board.core)
    if kernels != config.kernels:
        log.warning("%s (%s) has no DSP extension: the %s kernels were requested, the %s "
                    "kernels run", board.name, board.core.name, config.kernels, kernels)
    est = _assemble(Path(model_path).name, board, kernels, model, run, rows, overhead,
                    functions, arena_bytes=gen.arena_bytes, flash_bytes=image.flash_bytes,
                    ram_bytes=image.ram_bytes, weight_bytes=gen.weight_bytes, stack_bytes=stack)
    return replace(est, model_path=str(Path(model_path).resolve()))


def _assemble(name: str, board: Board, kernels: str, model: CostModel, run: RunResult,
              rows: list[LayerEstimate], overhead: int, functions: list[FunctionProfile], *,
              arena_bytes: int, flash_bytes: int, ram_bytes: int, weight_bytes: int,
              stack_bytes: int | None, profile_scope: str = "whole run",
              console: str = "") -> Estimate:
    """The report of one run: totals are sums of the layer rows (so they always agree
    with the table), latency and energy priced once from the total cycles."""
    cycles = sum(r.cycles for r in rows)
    return Estimate(
        model=name, board=board.name, core=board.core.name, clock_hz=board.clock_hz,
        kernels=kernels, cost_model=model.name, cost_parameters=model.describe(),
        layers=tuple(rows), instructions=sum(r.instructions for r in rows), cycles=cycles,
        ms=model.seconds(cycles) * 1e3, energy_uj=sum(r.energy_uj for r in rows),
        overhead_instructions=overhead, arena_bytes=arena_bytes, flash_bytes=flash_bytes,
        ram_bytes=ram_bytes, weight_bytes=weight_bytes, stack_bytes=stack_bytes,
        emulation_seconds=run.wall_time_s, emulation_mips=run.mips, functions=tuple(functions),
        timing=sum_splits([r.timing for r in rows]), energy=sum_energy([r.energy for r in rows]),
        board_flash_bytes=board.text.size, board_ram_bytes=board.data.size,
        profile_scope=profile_scope, console=console)


def _foreign_layer_names(run: RunResult, n_layers: int) -> list[str]:
    """Layer names of a foreign ELF: TFLM BeginEvent tags, else the op names of the
    ``TM1`` reports our own harnesses print, else ``layer i``."""
    names = {i: f"layer {i}" for i in range(n_layers)}
    for report in reports(run.stdout):
        names.update((layer.index, layer.op) for layer in report.layers)
    names.update(run.layer_names)
    return [names[i] for i in range(n_layers)]


def parse_span(text: str) -> tuple[str, str]:
    """``START:END`` -> (START, END); C++ ``::`` inside either name is kept."""
    parts = re.split(r"(?<!:):(?!:)", text)
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ConfigError(f"--span {text!r}: expected START:END (two function names)")
    return parts[0].strip(), parts[1].strip()


def _elf_arena(run: RunResult, sections: dict[str, int]) -> int:
    """The tensor arena of a foreign ELF when it says: a tinymeter TFLM harness prints
    TFLM's ``arena_used_bytes()`` (``TM1 ARENA``); else its arena section, else 0."""
    report = parse_arena(run.stdout)
    if report is not None and report.used is not None:
        return report.used
    return sections.get(".tflm_arena", 0)


def estimate_elf(elf_path: Path, board: Board, *, budget_instructions: int = DEFAULT_BUDGET_INSTRUCTIONS,
                 timeout_s: float = DEFAULT_TIMEOUT_S, cost_model: CostModel | None = None,
                 stop_at: Sequence[str] = (), span: tuple[str, str] | None = None,
                 span_count: int = 1) -> Estimate:
    """Profile a prebuilt Cortex-M ELF (not built by tinymeter) per layer and per function.

    The ELF must be linked for *board* (vector table at the start of its text region).
    It ends through semihosting SYS_EXIT, by reaching an idle loop (``while (1) {}``,
    ``wfi`` loop: how UART-only firmware ends; one in ``Error_Handler``, a fault
    handler or ``abort`` is an error), or at the entry of a function named in
    *stop_at*.  Console output may use semihosting or the board UART
    (``RunResult.stdout``).  Layers come from ``tm_prof_begin/tm_prof_end`` when
    present, else from TFLM's ``MicroProfiler::BeginEvent/EndEvent`` (one layer per
    event, named by its tag); without either, everything is "outside layers" and only
    the function profile is meaningful, and the report has one "whole run" row.

    *span* ``(START, END)`` measures from the entry of START to the next entry of END
    instead: one row per span completed (the run stops after *span_count* spans; 0
    runs to the firmware's end), totals over the spans, and a function profile of the
    code inside them.  Function names may be mangled or demangled C++.
    """
    elf = ElfImage.load(elf_path)
    model = cost_model or cost_model_for(board)
    for name in (*stop_at, *(span or ())):
        if elf.find_function(name) is None:
            what = "to stop at" if name in stop_at else "for the span"
            raise ConfigError(f"{elf_path}: no symbol {name!r} {what}")
    own_pair = elf.symbol(PROF_BEGIN) is not None and elf.symbol(PROF_END) is not None
    events = None if own_pair or span else tflm_profiler_symbols(elf)
    if not own_pair and events is None and span is None:
        log.warning("%s has neither %s/%s nor TFLM MicroProfiler events: no per-layer "
                    "attribution", elf_path, PROF_BEGIN, PROF_END)
    device = EmulatedDevice(board, cost_model=model, budget_instructions=budget_instructions,
                            timeout_s=timeout_s, event_profiler=events, stop_at=stop_at,
                            stop_on_idle=True, span=span, span_count=span_count)
    inputs: list[list[bytes]] = [[]] if elf.symbol(IO_NEXT) is not None else []
    emulated = device.run_elf(elf, inputs)
    run = emulated.emulation
    rows, overhead, row_cycles = _elf_rows(run, model, span, span_count, elf_path, board)
    functions = function_profile(run, emulated.elf, row_cycles,
                                 inside=len(rows) if span is not None else None)
    sections = section_sizes(Path(elf_path))
    return _assemble(
        Path(elf_path).name, board, "prebuilt ELF", model, run, rows, overhead, functions,
        arena_bytes=_elf_arena(run, sections),
        flash_bytes=memory_use(sections)[0], ram_bytes=memory_use(sections)[1],
        weight_bytes=0, stack_bytes=emulated.stack_bytes,
        profile_scope=f"span {span[0]}:{span[1]}" if span else "whole run",
        console=run.stdout)


def _elf_rows(run: RunResult, model: CostModel, span: tuple[str, str] | None,
              span_count: int, elf_path: Path, board: Board | None = None
              ) -> tuple[list[LayerEstimate], int, np.ndarray]:
    """Report rows of a foreign ELF: one per span, per profiler layer, or one for the
    whole run (so the totals are never an empty 0 cycles)."""
    assert run.profile is not None
    if span is not None:
        needed = span_count or 1
        if run.spans < needed:
            raise EmulationError(f"{elf_path}: the firmware ended ({run.stop_reason}) after "
                                 f"{run.spans} of {needed} span(s) {span[0]}:{span[1]}")
        names = [f"{span[0]}:{span[1]} #{k + 1}" for k in range(run.spans)]
        return layer_estimates(run, model, run.spans, [0] * run.spans, names, board=board)
    layer_ids = [int(x) for x in np.unique(run.profile.table.layer).tolist() if x >= 0]
    n_layers = max(layer_ids) + 1 if layer_ids else 0
    if n_layers == 0:
        return layer_estimates(run, model, 1, [0], ["whole run"], whole_run=True, board=board)
    return layer_estimates(run, model, n_layers, [0] * n_layers,
                           _foreign_layer_names(run, n_layers), board=board)



def layer_facts(model: Model) -> tuple[list[int], list[int], list[tuple[int, ...]]]:
    """MACs, weight bytes and first output shape of every operator of the main
    subgraph, in execution order (the harness's and the own runtime's layer order).
    MACs are counted as the own runtime's layers count them (pooling and softmax
    included) when it can lower the model, so rows of both runtimes compare; else as
    :func:`~tinymeter.models.inspect.op_macs` counts them."""
    summary = inspect_model(model)
    try:
        macs = [layer.macs for layer in lower_model(model)[1]]
    except TinymeterError:
        macs = [op.macs for op in summary.ops]
    return (macs, [op.weight_bytes for op in summary.ops],
            [op.output_shapes[0] if op.output_shapes else () for op in summary.ops])
