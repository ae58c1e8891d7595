"""Estimate results as data, and their renderings (terminal table, JSON, CSV).

Kept free of any I/O beyond writing the file a user asked for, so the renderings
are unit-tested on hand-made results.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tinymeter.core.files import atomic_write
from tinymeter.core.texttable import text_table

REPORT_VERSION = 1


@dataclass(frozen=True)
class LayerEstimate:
    """Emulated cost of one layer (one kernel call)."""

    index: int
    op: str
    macs: int
    instructions: int
    cycles: int
    ms: float
    energy_uj: float
    share: float
    #: Instruction counts per instruction class (alu, load, mac, ...).
    classes: dict[str, int] = field(default_factory=dict)
    #: Why: cycles by mechanism (core, branch, ifetch_stall, data_stall), loads and stores
    #: per memory kind, branch outcomes, cache hits (``sim.timing.TimingSplit.to_dict``).
    timing: dict[str, Any] = field(default_factory=dict)
    #: Bytes of the operator's weights and biases, and its (first) output's shape.
    weight_bytes: int = 0
    output_shape: tuple[int, ...] = ()
    #: Share of the estimate's energy (differs from ``share``, the latency share, where
    #: the layer's memory traffic differs from the average).
    energy_share: float = 0.0
    #: Energy by what drew it: core_uj, flash_uj, sram_uj and the activity counts
    #: (``sim.energy.LayerEnergy.to_dict``); empty without run statistics.
    energy: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FunctionProfile:
    """Flat-profile entry: one function's instructions and cycles over the whole run."""

    name: str
    instructions: int
    cycles: int
    share: float
    #: Cycles by mechanism, memory traffic and cache hits of this function (as per layer).
    timing: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Estimate:
    """Everything `tinymeter estimate` reports for one model on one board."""

    model: str
    board: str
    core: str
    clock_hz: int
    kernels: str
    cost_model: str
    cost_parameters: dict[str, Any]
    layers: tuple[LayerEstimate, ...]
    instructions: int
    cycles: int
    ms: float
    energy_uj: float
    #: Instructions outside every layer (harness, copies, start-up) for one inference.
    overhead_instructions: int
    arena_bytes: int
    flash_bytes: int
    ram_bytes: int
    weight_bytes: int
    stack_bytes: int | None
    emulation_seconds: float
    emulation_mips: float
    functions: tuple[FunctionProfile, ...] = ()
    #: Sizes of the board's text (flash) and data (RAM) regions, for the "fits" figures.
    board_flash_bytes: int = 0
    board_ram_bytes: int = 0
    #: Which runtime ran the model: "own" (tinymeter's), "tflm" (a TFLM library) or "elf".
    runtime: str = "own"
    #: The runtime's own log lines (TFLM's DebugLog output, forwarded by the harness).
    log: tuple[str, ...] = ()
    #: What ``functions`` covers: "whole run", or "span START:END" for ``--span``.
    profile_scope: str = "whole run"
    #: Cycles by mechanism and memory traffic summed over the layers (as per layer).
    timing: dict[str, Any] = field(default_factory=dict)
    #: Energy by what drew it, summed over the layers (as per layer).
    energy: dict[str, Any] = field(default_factory=dict)
    #: What a prebuilt ELF printed (semihosting or board UART): its own timings, if any.
    console: str = ""
    #: Absolute path of the model file (``check`` keys entries by it, relative to the
    #: baseline); empty when unknown.
    model_path: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["report_version"] = REPORT_VERSION
        return d


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def _share(used: int, available: int) -> tuple[str, str]:
    """(" of 640 KiB", "12.5%"): how much of the board a figure takes (empty if unknown)."""
    if available <= 0:
        return "", ""
    return f" of {available // 1024:,} KiB", f"{100 * used / available:.1f}%"


def _g(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def cost_model_line(est: Estimate) -> str:
    """One line naming the cost model and its key parameters, so every table says which
    assumptions produced its cycles (the full set is in the JSON report)."""
    p = est.cost_parameters
    parts = [f"cost model {est.cost_model}"
             + (f" ({p['source']})" if "source" in p else "")]
    cpi = p.get("cpi")
    if isinstance(cpi, dict) and cpi:
        keys = [k for k in ("alu", "mul", "mac", "load", "store", "branch", "divide", "vfp")
                if k in cpi]
        parts.append("CPI " + " ".join(f"{k} {_g(cpi[k])}" for k in keys))
    if "per_register" in p:
        parts.append(f"LDM/STM +{_g(p['per_register'])}/reg")
    if "branch_refill" in p:
        parts.append(f"taken branch +{_g(p['branch_refill'])}")
    if "pipelined_load" in p:
        parts.append(f"pipelined load {_g(p['pipelined_load'])}")
    weights = [f"{k} x{_g(p[w])}" for k, w in (("fetch", "ifetch_weight"), ("data", "data_weight"))
               if w in p and p[w] != 1]
    if weights:
        parts.append("stall weights " + " ".join(weights))
    energy = p.get("energy")
    if isinstance(energy, dict) and energy:
        parts.append(f"power {_g(energy['core_mw'])} mW + {_g(energy['flash_read_nj'])} nJ/flash "
                     f"read + {_g(energy['sram_access_nj'])} nJ/SRAM access")
    return ", ".join(parts)


_CONSOLE_LINES = 8


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole > 0 else "-"


def _stall_cell(timing: dict[str, Any]) -> str:
    """``fetch%/data%`` of a row's cycles, or ``-`` without timing statistics."""
    cycles = timing.get("cycles")
    if not cycles:
        return "-"
    total = sum(cycles.values())
    return f"{_pct(cycles['ifetch_stall'], total)}/{_pct(cycles['data_stall'], total)}"


def timing_lines(timing: dict[str, Any]) -> list[str]:
    """The "why" lines under a table: cycles by mechanism, memory traffic, cache hits."""
    cycles = timing.get("cycles")
    if not cycles:
        return []
    total = sum(cycles.values())
    names = {"core": "core", "branch": "branches", "ifetch_stall": "fetch stall",
             "data_stall": "data stall"}
    out = ["cycles    " + ", ".join(f"{names[k]} {_fmt_int(round(v))} ({_pct(v, total)})"
                                    for k, v in cycles.items())]
    loads = timing.get("loads", {})
    stores = timing.get("stores", {})
    if loads or stores:
        out.append("traffic   loads " + (", ".join(f"{k} {_fmt_int(v)}" for k, v in loads.items())
                                         or "none")
                   + "; stores " + (", ".join(f"{k} {_fmt_int(v)}" for k, v in stores.items())
                                    or "none"))
    unaligned, faults = timing.get("unaligned", {}), timing.get("align_faults", 0)
    if unaligned or faults:
        out.append("unaligned " + (", ".join(f"{k} {_fmt_int(v)}" for k, v in unaligned.items())
                                   or "none") + " extra bus transactions"
                   + (f"; {_fmt_int(faults)} accesses that fault on silicon (not priced)"
                      if faults else ""))
    caches = [f"{label} {100 * timing[key]['hit_rate']:.1f}% hit "
              f"({_fmt_int(timing[key]['misses'])} misses)"
              for key, label in (("icache", "I-cache"), ("dcache", "D-cache"))
              if timing.get(key, {}).get("hit_rate") is not None]
    if caches:
        out.append("caches    " + ", ".join(caches))
    return out


def energy_line(est: Estimate) -> str:
    """Energy per inference, split by what drew it when the activity model priced it."""
    line = f"energy    {est.energy_uj:.2f} uJ per inference"
    e = est.energy
    if e and est.energy_uj > 0:
        parts = [f"{label} {e[key]:.2f} uJ ({_pct(e[key], est.energy_uj)})"
                 for key, label in (("core_uj", "core"), ("flash_uj", "flash reads"),
                                    ("sram_uj", "SRAM accesses"))]
        line += (f" = {', '.join(parts)}; {_fmt_int(e['flash_reads'])} flash reads, "
                 f"{_fmt_int(e['sram_accesses'])} SRAM accesses")
        if est.ms > 0:
            line += f"; mean {est.energy_uj / est.ms:.1f} mW"
    return line


def format_table(est: Estimate, top_functions: int = 0) -> str:
    """Human-readable per-layer table plus totals."""
    headers = ["#", "op", "output", "weights", "MACs", "instructions", "est. cycles", "est. ms",
               "energy uJ", "share", "energy share", "stall fetch/data"]
    rows = [[str(r.index), r.op, "x".join(map(str, r.output_shape)), _fmt_int(r.weight_bytes),
             _fmt_int(r.macs), _fmt_int(r.instructions), _fmt_int(r.cycles),
             f"{r.ms:.3f}", f"{r.energy_uj:.2f}", f"{100 * r.share:.1f}%",
             f"{100 * r.energy_share:.1f}%", _stall_cell(r.timing)]
            for r in est.layers]
    total_macs = sum(r.macs for r in est.layers)
    footer = ["", "total", "", _fmt_int(sum(r.weight_bytes for r in est.layers)),
              _fmt_int(total_macs), _fmt_int(est.instructions), _fmt_int(est.cycles),
              f"{est.ms:.3f}", f"{est.energy_uj:.2f}", "100.0%", "100.0%",
              _stall_cell(est.timing)]
    out = [f"{est.model} on {est.board} ({est.core} @ {est.clock_hz / 1e6:g} MHz, "
           f"{est.kernels} kernels, cost model {est.cost_model})",
           *text_table(headers, rows, left=(1, 2), footer=footer), ""]
    out.append(f"latency   {est.ms:.3f} ms  ({_fmt_int(est.cycles)} cycles, "
               f"{_fmt_int(est.instructions)} instructions in layers, "
               f"{_fmt_int(est.overhead_instructions)} outside)")
    out.extend(timing_lines(est.timing))
    out.append(energy_line(est))
    stack = f", stack peak {_fmt_int(est.stack_bytes)} B" if est.stack_bytes is not None else ""
    ram_of, ram_pct = _share(est.ram_bytes, est.board_ram_bytes)
    flash_of, flash_pct = _share(est.flash_bytes, est.board_flash_bytes)
    out.append(f"memory    arena {_fmt_int(est.arena_bytes)} B{stack}, RAM "
               f"{_fmt_int(est.ram_bytes)} B{ram_of}{f' ({ram_pct})' if ram_pct else ''}, flash "
               f"{_fmt_int(est.flash_bytes)} B{flash_of} ({flash_pct + ', ' if flash_pct else ''}"
               f"weights {_fmt_int(est.weight_bytes)} B)")
    out.append(f"emulation {est.emulation_seconds:.2f} s, {est.emulation_mips:.0f} MIPS")
    out.append(cost_model_line(est))
    out.extend(f"runtime log: {line}" for line in est.log)
    if top_functions and est.functions:
        out.append("")
        out.append(f"top functions ({est.profile_scope}):")
        rows = [[f"{100 * f.share:.1f}%", _fmt_int(f.cycles), _fmt_int(f.instructions),
                 _stall_cell(f.timing), f.name] for f in est.functions[:top_functions]]
        out += [f"  {line}" for line in text_table(
            ["share", "cycles", "instructions", "stall fetch/data", "function"], rows, left=(4,))]
    if est.console.strip():
        tail = est.console.strip().splitlines()[-_CONSOLE_LINES:]
        out += ["", "firmware console (last lines):", *(f"  {line}" for line in tail)]
    return "\n".join(out)


@dataclass(frozen=True)
class Unfit:
    """A board of a comparison that cannot hold the model."""

    board: str
    core: str
    clock_hz: int
    reason: str  # "does not fit: needs X B flash, has Y B"

    def to_dict(self) -> dict[str, Any]:
        return {"board": self.board, "core": self.core, "clock_hz": self.clock_hz, "fits": False,
                "error": self.reason}


def _kernels_label(ests: Sequence[Estimate]) -> str:
    kinds = sorted({e.kernels for e in ests})
    if len(kinds) == 1:
        return f"{kinds[0]} kernels"
    return "/".join(kinds) + " kernels (reference on cores without DSP)"


def format_comparison(ests: Sequence[Estimate], unfit: Sequence[Unfit] = (),
                      model: str = "") -> str:
    """One row per board of the same model: latency, cycles, energy, and how much of the
    board's RAM and flash the firmware takes (the "which board?" view); boards that
    cannot hold the model get a "does not fit" row and a line saying by how much."""
    headers = ["board", "core", "MHz", "est. ms", "cycles", "energy uJ", "RAM", "flash"]
    rows = []
    for e in ests:
        ram = _share(e.ram_bytes, e.board_ram_bytes)[1] or f"{e.ram_bytes:,} B"
        flash = _share(e.flash_bytes, e.board_flash_bytes)[1] or f"{e.flash_bytes:,} B"
        rows.append([e.board, e.core, f"{e.clock_hz / 1e6:g}", f"{e.ms:.3f}",
                     _fmt_int(e.cycles), f"{e.energy_uj:.2f}", ram, flash])
    for u in unfit:
        rows.append([u.board, u.core, f"{u.clock_hz / 1e6:g}", "does not fit", "-", "-", "-", "-"])
    name = ests[0].model if ests else model
    kernels = f", {_kernels_label(ests)}" if ests else ""
    title = f"{name}{kernels}, on {len(ests) + len(unfit)} boards"
    notes = [f"{u.board}: {u.reason}" for u in unfit]
    return "\n".join([title, *text_table(headers, rows, left=(0, 1)), *notes])


def comparison_csv(ests: Sequence[Estimate], unfit: Sequence[Unfit] = ()) -> str:
    """The comparison as CSV, one row per board (``fits`` false with the reason)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["board", "core", "clock_hz", "kernels", "ms", "cycles", "energy_uj", "ram_bytes",
                "board_ram_bytes", "flash_bytes", "board_flash_bytes", "fits", "error"])
    for e in ests:
        w.writerow([e.board, e.core, e.clock_hz, e.kernels, f"{e.ms:.6f}", e.cycles,
                    f"{e.energy_uj:.4f}", e.ram_bytes, e.board_ram_bytes, e.flash_bytes,
                    e.board_flash_bytes, "true", ""])
    for u in unfit:
        w.writerow([u.board, u.core, u.clock_hz, "", "", "", "", "", "", "", "", "false", u.reason])
    return buf.getvalue()


def write_json(est: Estimate, path: Path) -> None:
    atomic_write(path, json.dumps(est.to_dict(), indent=2) + "\n")


def layers_csv(est: Estimate) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["index", "op", "macs", "instructions", "cycles", "ms", "energy_uj", "share",
                "weight_bytes", "output_shape", "energy_share", "core_uj", "flash_uj", "sram_uj",
                "flash_reads", "sram_accesses"])
    for r in est.layers:
        e = r.energy
        w.writerow([r.index, r.op, r.macs, r.instructions, r.cycles, f"{r.ms:.6f}",
                    f"{r.energy_uj:.4f}", f"{r.share:.6f}", r.weight_bytes,
                    "x".join(map(str, r.output_shape)), f"{r.energy_share:.6f}",
                    *([f"{e['core_uj']:.4f}", f"{e['flash_uj']:.4f}", f"{e['sram_uj']:.4f}",
                       e["flash_reads"], e["sram_accesses"]] if e else ["", "", "", "", ""])])
    return buf.getvalue()


def write_csv(est: Estimate, path: Path) -> None:
    atomic_write(path, layers_csv(est))
