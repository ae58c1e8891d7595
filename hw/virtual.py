"""A virtual board: the emulator behind a pseudo-terminal, speaking the serial protocol.

Why: flash, measure and calibrate must run end to end in CI, where there is no board.
The virtual board accepts the same ELF, "resets" by emulating it, and writes the
firmware's ``TM1`` report lines to a pty whose slave side the measurement opens like
any serial port.  Transport faults can be injected per run (dropped bytes, a reset in
the middle of a report) to exercise the parser's recovery end to end.

Its per-layer cycles are a *truth the cost model does not contain* (:class:`Silicon`),
so that calibrating against it measures how well the model's mechanisms transfer to a
chip that differs from its board file, not how well a linear fit recovers its own
parameters.  The truth is the emulator's own cycle sums (``RunResult.cycles_per_layer``)
of the same ELF run under a hidden board, never ``features @ theta``:

* **memory system** (:func:`hidden_board`): the board file's address map with what the
  reference manuals leave open chosen otherwise -- the flash accelerator's I-cache 2- or
  4-way with FIFO or random replacement instead of fully associative LRU (RM0432 gives
  the line count only), its D-cache 2-way FIFO, one flash wait state more than the
  manual's table (parts are specified at the edge of a voltage range; a board running
  near it needs the next setting), and on the Cortex-M7 random L1 replacement and
  3 cycles of AXI latency per line fill (the TRM gives no number).  The native hook
  simulates these exactly like the board file's caches, so misses differ per layer in
  ways a stall weight cannot absorb;
* **core** (:func:`hidden_parameters`): every TRM timing scaled by a seeded factor in
  [1 - spread, 1 + spread] (what calibration is meant to find), the cost of an unaligned
  access's extra transactions included;
* **effects with no term in the model** (:func:`silicon_effects`, from the hidden run's
  per-block statistics): DWT read overhead per measured span (two CYCCNT reads over
  the PPB and the call into the profiler hook: a constant per layer); SRAM store bursts
  beyond the write buffer waiting for the bus matrix (per block execution, stores past
  the buffer depth cost extra cycles: non-linear in the store counts the model sees);
  flash data accesses that meet an instruction line refill in flight (cycles per flash
  data access in proportion to its block's I-cache miss rate: the product of two
  statistics, which no linear model has); unaligned flash accesses whose extra bus
  transactions each wait a cycle more than in SRAM (the model prices all regions alike);
* per-run jitter (seeded per run and layer) and a slower first, cold run after reset.

Everything is deterministic (seeded by ``--virtual-seed``).  Power follows activity
(:func:`hidden_energy`): a hidden core power plus energy per flash read and per SRAM
access of the hidden run (its own cache misses), coefficients 5-50% off the board file's
priors, so the energy calibration has a truth to recover.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import struct
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tinymeter.abi import (
    LAYER_ENTRY_BYTES,
    LAYER_TABLE,
    MODEL_NAME,
    NUM_LAYERS,
    RUNS_LEFT,
    fault_line,
    report_lines,
)
from tinymeter.core.boards import Board, CacheGeometry
from tinymeter.core.errors import ConfigError, HardwareError
from tinymeter.device import DeviceRun, EmulatedDevice
from tinymeter.hw.power.trace import PowerTrace
from tinymeter.hw.serialport import FdPort
from tinymeter.sim.costmodel import CostModel, CostParameters, datasheet_cost_model
from tinymeter.sim.elf import ElfImage
from tinymeter.sim.emulator import RunResult
from tinymeter.sim.energy import EnergyParameters, board_energy_parameters
from tinymeter.sim.native_hook import STAT

log = logging.getLogger(__name__)

GLITCHES = ("drop_bytes", "reset_mid_report", "garbage")


#: Cycles a byte/halfword load's consumer waits on the virtual silicon where the
#: datasheet says nothing does (Cortex-M3/M4/M33): an interlock the board's manual does
#: not state, which the narrow-load microbenchmark must reveal.
HIDDEN_NARROW_LOAD_USE = 0.5
#: Overrides added to the datasheet tables after the virtual silicon was first drawn:
#: scaled last, so the silicon of a seed keeps every older timing it had.
_LATE_MNEMONICS = ("vmov.core",)
#: The virtual Cortex-M7's branch predictor (``CostParameters.branch_predictor``).
HIDDEN_PREDICTOR = "2bit-taken"


def hidden_parameters(prior: CostParameters, seed: int = 2024, spread: float = 0.3) -> CostParameters:
    """Hidden core timings: every parameter of *prior* scaled by a factor in
    [1 - spread, 1 + spread] (seeded); a pipelined core (one that pipelines loads) also
    waits :data:`HIDDEN_NARROW_LOAD_USE` (scaled) for a narrow load's result where the
    datasheet prior says 0."""
    rng = np.random.default_rng(seed)

    def scale(value: float) -> float:
        return float(value * (1.0 + rng.uniform(-spread, spread)))

    cpi = {c: scale(v) for c, v in prior.cpi.items()}
    mnemonic = {m: scale(v) for m, v in sorted(prior.mnemonic_cycles.items())
                if m not in _LATE_MNEMONICS}
    hidden = replace(prior, cpi=cpi, mnemonic_cycles=mnemonic,
                     per_register=scale(prior.per_register),
                     branch_refill=scale(prior.branch_refill),
                     pipelined_load=scale(prior.pipelined_load),
                     ifetch_weight=1.0, data_weight=1.0)
    narrow = prior.narrow_load_use
    if not narrow and prior.pipelined_load < prior.cpi["load"]:
        narrow = HIDDEN_NARROW_LOAD_USE
    # drawn after the others so the timings of the older parameters stay what they were
    hidden = replace(hidden, agu_stall=scale(prior.agu_stall), narrow_load_use=scale(narrow),
                     fp_result_stall=scale(prior.fp_result_stall))
    if prior.branch_mispredict is not None:
        # a predictor of another organisation than the model's 2-bit counters: they
        # start weakly taken (every loop's first back-edge predicted)
        hidden = replace(hidden, branch_mispredict=scale(prior.branch_mispredict),
                         branch_predictor=HIDDEN_PREDICTOR)
    hidden = replace(hidden, unaligned=scale(prior.unaligned))
    late = {m: scale(prior.mnemonic_cycles[m]) for m in _LATE_MNEMONICS
            if m in prior.mnemonic_cycles}
    return replace(hidden, mnemonic_cycles={**hidden.mnemonic_cycles, **late})


def _other_ways(cache: CacheGeometry, rng: np.random.Generator) -> int:
    """An associativity the board file does not say (2 or 4 ways where the file says fully
    associative; fully associative where it gives ways)."""
    if not cache.size:
        return 0
    if cache.ways:
        return 0
    return int(rng.choice([w for w in (2, 4) if cache.lines % w == 0 and cache.lines > w] or [0]))


def hidden_board(board: Board, seed: int = 2024) -> Board:
    """The virtual chip's real memory system: the board file's map with what the
    manuals leave open chosen otherwise (seeded).

    * flash accelerator I-cache: 2 or 4 ways instead of fully associative, FIFO or random
      replacement instead of LRU; D-cache 2 (or 4) ways, FIFO;
    * flash: one wait state more than the reference manual's table (the part runs at
      the edge of its voltage range);
    * Cortex-M7 L1: random replacement, 3 cycles of AXI latency per line fill (the board
      file's 0: the TRM gives no number).
    """
    rng = np.random.default_rng([seed, 7])
    accel = board.flash_accelerator
    if accel.icache_bytes:
        accel = replace(accel, icache_ways=_other_ways(accel.icache, rng),
                        icache_policy=str(rng.choice(["fifo", "random"])))
    if accel.dcache_bytes:
        accel = replace(accel, dcache_ways=_other_ways(accel.dcache, rng), dcache_policy="fifo")
    l1 = board.l1_cache
    if l1.icache_bytes or l1.dcache_bytes:
        l1 = replace(l1, icache_policy="random", dcache_policy="random",
                     fill_cycles=l1.fill_cycles + 3)
    memory = tuple(replace(r, wait_states=r.wait_states + 1) if r.kind == "flash" and r.wait_states
                   else r for r in board.memory)
    return replace(board, flash_accelerator=accel, l1_cache=l1, memory=memory)


@dataclass(frozen=True)
class Silicon:
    """What the virtual chip really is; the cost model contains none of it as such.

    Its per-layer cycles are the emulator's own cycle sums of the ELF run on
    :attr:`board` (hidden memory system) priced with :attr:`params` (hidden core
    timings), plus the effects below, computed from the hidden run's per-block
    statistics (:func:`silicon_effects`).
    """

    board: Board
    params: CostParameters
    #: Cycles the firmware's DWT reads add to every measured span (two CYCCNT loads over
    #: the PPB, the call into tm_prof_end): a constant per layer the model has no term for.
    dwt_overhead: float = 9.0
    #: Stores a block execution issues to SRAM without stalling (the write buffer) ...
    write_buffer: int = 2
    #: ... and the cycles each further store of the burst waits for the bus matrix.
    store_drain: float = 0.5
    #: Cycles a flash data access waits when it meets an instruction line refill in flight
    #: (charged per flash data access in proportion to its block's I-cache miss rate).
    fetch_contention: float = 3.0
    #: Cycles each extra bus transaction of an unaligned flash access waits beyond the
    #: core's split (the flash interface serves every AHB transaction from its buffer with
    #: one more cycle; SRAM answers at once): a region dependence the model's single
    #: ``unaligned`` cost has no term for.
    unaligned_flash: float = 1.0

    @classmethod
    def for_board(cls, board: Board, seed: int = 2024, spread: float = 0.3) -> Silicon:
        prior = datasheet_cost_model(board).params
        return cls(board=hidden_board(board, seed), params=hidden_parameters(prior, seed, spread))

    def cost_model(self) -> CostModel:
        return replace(datasheet_cost_model(self.board), params=self.params, source="virtual silicon")


def silicon_effects(run: RunResult, n_layers: int, silicon: Silicon) -> np.ndarray:
    """Per-layer cycles of the effects the cost model has no mechanism for, from the
    hidden run's per-block statistics (deterministic, pure)."""
    stats = run.stats.astype(np.float64)
    out = np.full(n_layers, float(silicon.dwt_overhead))
    if not len(stats):
        return out
    count = np.maximum(stats[:, STAT["count"]], 1.0)
    stores = stats[:, STAT["stores.sram"]] + stats[:, STAT["stores.tcm"]]
    burst = np.maximum(stores / count - silicon.write_buffer, 0.0) * count * silicon.store_drain
    fetches = stats[:, STAT["icache_hit"]] + stats[:, STAT["icache_miss"]]
    miss_rate = np.where(fetches > 0, stats[:, STAT["icache_miss"]] / np.maximum(fetches, 1.0), 0.0)
    has_dcache = bool(silicon.board.flash_accelerator.dcache_bytes or
                      silicon.board.l1_cache.dcache_bytes)
    flash_data = stats[:, STAT["dcache_miss"]] if has_dcache else stats[:, STAT["loads.flash"]]
    contention = flash_data * miss_rate * silicon.fetch_contention
    unaligned = stats[:, STAT["unaligned.flash"]] * silicon.unaligned_flash
    layers = run.blocks.layer
    keep = (layers >= 0) & (layers < n_layers)
    np.add.at(out, layers[keep], (burst + contention + unaligned)[keep])
    return out


def silicon_cycles(run: DeviceRun, n_layers: int, silicon: Silicon) -> np.ndarray:
    """Per-layer true cycles: the hidden run's own cycle sums plus :func:`silicon_effects`."""
    return run.layer_cycles(n_layers) + silicon_effects(run.emulation, n_layers, silicon)


@dataclass(frozen=True)
class VirtualTiming:
    """The virtual silicon, jitter, cold first run, power."""

    silicon: Silicon
    #: Relative standard deviation of per-layer, per-run jitter (deterministic, seeded).
    noise: float = 0.0
    #: Extra relative cost of run 0 after a reset (cold caches): what warm-up runs hide.
    cold_run_penalty: float = 0.05
    seed: int = 0
    #: Hidden power: core power plus energy per flash read and per SRAM access
    #: (:mod:`tinymeter.sim.energy`), what the power trace of each layer follows.
    energy: EnergyParameters = field(default_factory=lambda: EnergyParameters(40.0, 0.3, 0.04))
    idle_mw: float = 10.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.noise) and 0.0 <= self.noise <= 0.5):
            raise ConfigError(f"virtual board noise must be between 0 and 0.5 (relative), "
                              f"got {self.noise!r}")

    @property
    def params(self) -> CostParameters:
        """The hidden core timings (one part of the silicon)."""
        return self.silicon.params

    @classmethod
    def for_board(cls, board: Board, seed: int = 2024, noise: float = 0.0005,
                  spread: float = 0.3) -> VirtualTiming:
        """Hidden silicon derived from the board file (:meth:`Silicon.for_board`), power
        by activity off the board file's priors (:func:`hidden_energy`)."""
        rng = np.random.default_rng(seed + 1)
        active = board.power.active_mw or 40.0
        return cls(silicon=Silicon.for_board(board, seed, spread), noise=noise, seed=seed,
                   energy=hidden_energy(board, rng),
                   idle_mw=float((board.power.idle_mw or active / 4) * rng.uniform(0.9, 1.1)))

    @property
    def active_mw(self) -> float:
        """The hidden core power (what the chip draws without memory traffic)."""
        return self.energy.core_mw


def hidden_energy(board: Board, rng: np.random.Generator) -> EnergyParameters:
    """The "silicon's" power: the board file's energy priors off by what a datasheet
    typical value hides (core power 5-15% off, energies per flash read and per SRAM access
    20-50% off, each up or down); a board without access priors gets ones scaled from its
    energy per cycle."""
    prior = board_energy_parameters(board)
    per_cycle_nj = prior.core_mw / (board.hardware_clock_hz / 1e6) if prior.core_mw else 0.3
    flash = prior.flash_read_nj or 0.7 * per_cycle_nj
    sram = prior.sram_access_nj or 0.1 * per_cycle_nj
    core = prior.core_mw or 40.0

    def off(low: float, high: float) -> float:
        return float(1.0 + rng.choice((-1.0, 1.0)) * rng.uniform(low, high))

    return EnergyParameters(core_mw=core * off(0.05, 0.15), flash_read_nj=flash * off(0.2, 0.5),
                            sram_access_nj=sram * off(0.2, 0.5))


@dataclass(frozen=True)
class FirmwareFacts:
    """What the firmware would print, read from the ELF: names, layer count, runs."""

    model: str
    ops: tuple[str, ...]
    runs: int


@dataclass
class _Program:
    facts: FirmwareFacts
    true_cycles: np.ndarray  # per layer, one inference of the silicon (before jitter)
    #: Per layer: flash reads and SRAM accesses of one inference on the silicon (the
    #: power follows them).
    activity: np.ndarray | None = None


def _load_bytes(elf: ElfImage, address: int, limit: int) -> bytes:
    """Up to *limit* bytes of the load image at run address *address* (flash constants,
    and the initial value of ``.data``: what the firmware holds after a reset)."""
    for sec in elf.sections:
        if sec.address <= address < sec.address + len(sec.data):
            return sec.data[address - sec.address:address - sec.address + limit]
    for seg in elf.segments:
        if seg.vaddr <= address < seg.vaddr + len(seg.data):
            return seg.data[address - seg.vaddr:address - seg.vaddr + limit]
    raise HardwareError(f"virtual board: no initialised data at 0x{address:08x} in the image")


def _cstring(elf: ElfImage, address: int, limit: int = 128) -> str:
    return _load_bytes(elf, address, limit).split(b"\0", 1)[0].decode("ascii", "replace")


def _word(elf: ElfImage, address: int) -> int:
    return int(struct.unpack("<I", _load_bytes(elf, address, 4).ljust(4, b"\0"))[0])


def firmware_facts(elf: ElfImage) -> FirmwareFacts:
    """Model name, op names and ``TM_RUNS`` from the image's load data (ABI symbols)."""
    table = elf.require_symbol(LAYER_TABLE).address
    ops = []
    for i in range(_word(elf, elf.require_symbol(NUM_LAYERS).address)):
        entry = _load_bytes(elf, table + LAYER_ENTRY_BYTES * i, LAYER_ENTRY_BYTES)
        _fn, _params, op_ptr = struct.unpack("<III", entry)
        ops.append(_cstring(elf, op_ptr, 64))
    runs_sym = elf.symbol(RUNS_LEFT)
    # .data is copied from flash at start-up: its load image holds TM_RUNS
    runs = _word(elf, runs_sym.address) if runs_sym is not None else 1
    return FirmwareFacts(_cstring(elf, elf.require_symbol(MODEL_NAME).address), tuple(ops), runs)


@dataclass
class VirtualBoard:
    """A board in software: ``flash`` an ELF, ``reset`` to run it, read ``port_path``.

    Owns a pty (master side written by a writer thread) and a cache of emulated
    programs; call :meth:`close` (or use it as a context manager) to release both.
    ``glitches`` maps a run index to a transport fault injected once into that run's
    report (``drop_bytes``, ``reset_mid_report``, ``garbage``).
    """

    board: Board
    timing: VirtualTiming
    glitches: dict[int, str] = field(default_factory=dict)
    #: Bytes per second written to the pty (0 = as fast as possible).
    byte_rate: float = 0.0
    budget_instructions: int = 500_000_000
    timeout_s: float = 120.0

    def __post_init__(self) -> None:
        unknown = set(self.glitches.values()) - set(GLITCHES)
        if unknown:
            raise ConfigError(f"unknown virtual-board glitch(es) {sorted(unknown)}; "
                              f"choose from {', '.join(GLITCHES)}")
        self._master, self._slave = os.openpty()
        self.port_path = os.ttyname(self._slave)
        self._elf: Path | None = None
        self._programs: dict[str, _Program] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._glitches_left = dict(self.glitches)
        self.last_runs: list[np.ndarray] = []
        self.last_activity: np.ndarray | None = None
        self.error: Exception | None = None
        self.resets = 0

    # -- link interface (what the measurement loop calls) ------------------------------
    def open_port(self) -> FdPort:
        """A reader on the pty slave (the "USB serial" side)."""
        return FdPort(self.port_path)

    def flash(self, elf: Path) -> None:
        if not Path(elf).exists():
            raise ConfigError(f"firmware {elf} does not exist")
        self._join()
        self._elf = Path(elf)

    def reset(self) -> None:
        """Restart the firmware: emulate (once per image) and start printing reports."""
        if self._elf is None:
            raise HardwareError(f"virtual {self.board.name}: nothing flashed")
        self._join()
        self._stop.clear()
        self.error = None
        self.resets += 1
        self._thread = threading.Thread(target=self._boot, args=(self._elf,), daemon=True,
                                        name=f"virtual-{self.board.name}")
        self._thread.start()

    def tool_version(self) -> str:
        return "virtual-board 1"

    def close(self) -> None:
        self._join()
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> VirtualBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the "silicon" -----------------------------------------------------------------
    def program(self, elf: Path) -> _Program:
        """Emulate *elf* once (cached by content) and apply the hidden timing model."""
        image = ElfImage.load(elf)
        key = image.digest or str(elf)
        with self._lock:
            cached = self._programs.get(key)
        if cached is not None:
            return cached
        silicon = self.timing.silicon
        facts = firmware_facts(image)
        device = EmulatedDevice(silicon.board, cost_model=silicon.cost_model(),
                                budget_instructions=self.budget_instructions,
                                timeout_s=self.timeout_s)
        run = device.run_elf(image)
        n = len(facts.ops)
        program = _Program(facts, silicon_cycles(run, n, silicon),
                           run.layer_activity(n))
        with self._lock:
            self._programs[key] = program
        return program

    def run_cycles(self, program: _Program, run: int) -> list[int]:
        """Per-layer cycles of inference *run* after a reset (jitter seeded by run, layer)."""
        rng = np.random.default_rng([self.timing.seed, run, len(program.true_cycles)])
        jitter = 1.0 + self.timing.noise * rng.standard_normal(len(program.true_cycles))
        if run == 0:
            jitter = jitter * (1.0 + self.timing.cold_run_penalty)
        return [max(round(c), 1) for c in program.true_cycles * jitter]

    def _boot(self, elf: Path) -> None:
        try:
            program = self.program(elf)
            self.last_activity = program.activity
            self.last_runs = []
            run = 0
            while run < program.facts.runs and not self._stop.is_set():
                cycles = self.run_cycles(program, run)
                self.last_runs.append(np.array(cycles, dtype=np.float64))
                lines = report_lines(program.facts.model, run, cycles, program.facts.ops)
                glitch = self._glitches_left.pop(run, None)
                if glitch == "reset_mid_report":
                    # Half a report, then the board reboots and starts over from run 0.
                    self._write(b"".join(lines[: max(len(lines) // 2, 1)]))
                    self._write(b"\r\n\x00boot\r\n")
                    self.last_runs = []
                    run = 0
                    continue
                data = b"".join(lines)
                if glitch == "drop_bytes":
                    mid = len(data) // 2
                    data = data[:mid] + data[mid + 3:]
                elif glitch == "garbage":
                    data = data[:20] + b"\xff\xfe\x00" + data[20:]
                self._write(data)
                run += 1
        except Exception as exc:  # surfaced to the caller by the timeout message
            log.error("virtual board failed: %s", exc)
            self.error = exc
            self._write(fault_line(f"virtual-board: {exc}").encode()[:200])

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        step = max(int(self.byte_rate * 0.01), 1) if self.byte_rate else len(data)
        while view and not self._stop.is_set():
            try:
                n = os.write(self._master, view[:step])
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except OSError:
                return
            view = view[n:]
            if self.byte_rate:
                time.sleep(n / self.byte_rate)

    def _join(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=self.timeout_s)
            self._thread = None

    # -- power ---------------------------------------------------------------------------
    def power_trace(self, sample_rate_hz: float = 1e6, gap_s: float = 1e-3) -> PowerTrace:
        """A synthetic current trace of the last boot's runs with GPIO-marked windows.

        Channel 0 is high during each inference, channel 1 toggles at every layer
        boundary (what the hardware image's ``[markers]`` pins show), the supply is
        the board voltage; between inferences the board idles, inside one each layer
        draws the hidden core power plus its memory traffic's energy
        (:meth:`layer_power_mw`), averaged over the monitor's sample period.
        """
        volts = self.board.power.voltage
        runs = list(self.last_runs)
        if not runs:
            raise HardwareError("virtual power trace: no inference ran since the last reset")
        clock = float(self.board.hardware_clock_hz)  # what the hardware image runs at
        gap = max(int(gap_s * sample_rate_hz), 2)
        activity = self._activity(len(runs[0]))
        current: list[np.ndarray] = []
        gpio: list[np.ndarray] = []
        level1 = 0
        for cycles in runs:
            current.append(np.full(gap, self.timing.idle_mw / 1e3 / volts))
            gpio.append(np.full(gap, level1 << 1, dtype=np.uint8))
            samples = [max(round(c / clock * sample_rate_hz), 1) for c in cycles]
            energies = [self.layer_power_mw(c / clock, flash, sram) * c / clock * 1e3
                        for c, (flash, sram) in zip(cycles, activity)]
            for n, mw in zip(samples, self._levels(samples, energies, sample_rate_hz)):
                level1 ^= 1
                current.append(np.full(n, mw / 1e3 / volts))
                gpio.append(np.full(n, 1 | (level1 << 1), dtype=np.uint8))
        current.append(np.full(gap, self.timing.idle_mw / 1e3 / volts))
        gpio.append(np.full(gap, level1 << 1, dtype=np.uint8))
        i = np.concatenate(current)
        return PowerTrace(time_s=np.arange(len(i)) / sample_rate_hz, current_a=i,
                          voltage_v=np.full(len(i), volts), gpio=np.concatenate(gpio),
                          source="virtual")

    def _levels(self, samples: list[int], energies_uj: list[float], rate: float) -> list[float]:
        """Power level (mW) of each layer's samples such that the trapezoid integral
        between its layer marks (:func:`tinymeter.hw.power.trace.layer_energy`, which takes half
        of the interval into the next segment) is the layer's energy: solved from the last
        layer, which is followed by idle samples."""
        dt = 1.0 / rate
        levels = [0.0] * len(samples)
        after = self.timing.idle_mw
        for k in range(len(samples) - 1, -1, -1):
            n = samples[k]
            level = (energies_uj[k] * 1e-3 / dt - after / 2) / (n - 0.5)
            levels[k] = max(level, 0.0)
            after = levels[k]
        return levels

    def layer_power_mw(self, seconds: float, flash_reads: float, sram_accesses: float) -> float:
        """Mean power of a layer of *seconds* with that memory traffic (hidden model)."""
        e = self.timing.energy
        energy_uj = (e.core_mw * seconds * 1e3 + e.flash_read_nj * flash_reads * 1e-3
                     + e.sram_access_nj * sram_accesses * 1e-3)
        return energy_uj / (seconds * 1e3) if seconds > 0 else e.core_mw

    def _activity(self, n_layers: int) -> np.ndarray:
        """Per-layer activity of the program last booted (zeros if unknown)."""
        act = self.last_activity
        return act if act is not None and len(act) == n_layers else np.zeros((n_layers, 2))


class VirtualPowerMonitor:
    """The virtual board's power monitor: the trace of the runs since the last reset."""

    def __init__(self, board: VirtualBoard, sample_rate_hz: float = 1e6) -> None:
        self.vboard = board
        self.sample_rate_hz = sample_rate_hz

    def start(self) -> None:
        return None

    def stop(self) -> PowerTrace:
        return self.vboard.power_trace(self.sample_rate_hz)

    def close(self) -> None:
        return None
