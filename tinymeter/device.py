"""One run interface for the emulator, the virtual board and real boards.

A :class:`Device` runs a linked image (a model's :class:`~tinymeter.firmware.build.
FirmwareImage`, the microbenchmark firmware, a TFLM harness image) and returns a
:class:`DeviceRun`: decoded outputs, the console, and per-layer numbers.  Every caller
that runs firmware goes through it -- estimate (own runtime, TFLM, foreign ELFs),
validate, the calibration campaign's features, the microbenchmarks, the virtual
board's hidden silicon, the sweep (through estimate) -- so "run, check the profile,
take the layer features" is written once, here:

* :class:`EmulatedDevice`: the board's core and memory map in Unicorn (any cost model,
  emulator options such as spans or stop symbols);
* ``tinymeter.hw.device.HardwareDevice``: a board (real over a probe and a serial port,
  or the virtual board behind a pty) reporting its own per-layer cycles.

Per-layer features (calibration), activity (energy) and cycles of a run come from
:class:`DeviceRun` methods; nothing else groups an emulated run's blocks by layer.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tinymeter.core.boards import Board, load_board
from tinymeter.core.errors import EmulationError
from tinymeter.firmware.build import BuildConfig, FirmwareBuilder, FirmwareImage
from tinymeter.firmware.codegen import generate
from tinymeter.firmware.host import decode_outputs, encode_inputs
from tinymeter.models.tflite import parse_tflite
from tinymeter.sim import DEFAULT_BUDGET_INSTRUCTIONS, DEFAULT_TIMEOUT_S
from tinymeter.sim.costmodel import CostModel, CostParameters, layer_features
from tinymeter.sim.elf import ElfImage
from tinymeter.sim.emulator import Emulator, RunResult
from tinymeter.sim.energy import run_layer_activity

log = logging.getLogger(__name__)

#: The word the startup code paints below the stack (``TM_STACK_PAINT``).
STACK_PAINT = 0xDEADBEEF


@dataclass
class DeviceRun:
    """Outputs of each inference and the device's own account of the run."""

    outputs: list[list[np.ndarray]]
    stdout: str = ""
    #: Instructions per layer index for one inference (emulator only; -1 = outside layers).
    instructions_per_layer: dict[int, int] = field(default_factory=dict)
    #: The emulator's run (block profile, hook statistics, cycles); None on a board.
    raw: RunResult | None = None
    #: The image as the emulator loaded it (symbols, DWARF: function profiles).
    elf: ElfImage | None = None
    #: Deepest stack use in bytes (emulator: the paint below the stack).
    stack_bytes: int | None = None
    #: Per-layer cycles the device reported itself (a board: medians over the runs).
    measured_cycles: tuple[float, ...] = ()

    @property
    def emulation(self) -> RunResult:
        """The emulated run with its block profile (an error when counting was off or
        the device is a board)."""
        if self.raw is None or self.raw.profile is None:
            raise EmulationError("the run has no instruction profile (not emulated, or "
                                 "counting was disabled)")
        return self.raw

    def layer_features(self, prior: CostParameters, n_layers: int) -> np.ndarray:
        """Per-layer calibration features (``@ parameter_vector(prior)`` = cycles)."""
        return layer_features(self.emulation, prior, n_layers)

    def layer_activity(self, n_layers: int) -> np.ndarray:
        """Per-layer flash reads and SRAM accesses (``[n_layers, 2]``, energy model) as the
        run's memory system issued them."""
        return run_layer_activity(self.emulation, n_layers)

    def layer_cycles(self, n_layers: int) -> np.ndarray:
        """Cycles per layer of the run: the emulator's estimate, or what a board measured."""
        if self.raw is None and self.measured_cycles:
            return np.array(self.measured_cycles[:n_layers], dtype=np.float64)
        per_layer = self.emulation.cycles_per_layer()
        return np.array([per_layer.get(i, 0.0) for i in range(n_layers)])


class Device(Protocol):
    """Something that runs firmware: the emulator or a board."""

    board: Board

    def run(self, image: FirmwareImage, inputs: Sequence[Sequence[np.ndarray]] | None = None
            ) -> DeviceRun: ...


def stack_peak(emulator: Emulator) -> int | None:
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


class EmulatedDevice:
    """The board's core and memory map in Unicorn, counting per layer.

    *cost_model* prices the blocks (default: the board's); *options* go to
    :class:`~tinymeter.sim.emulator.Emulator` (``stop_at``, ``span``, ``event_profiler``
    ...); *count* False runs without the counting hook (outputs only).
    """

    def __init__(self, board: Board, *, cost_model: CostModel | None = None,
                 budget_instructions: int = DEFAULT_BUDGET_INSTRUCTIONS,
                 timeout_s: float = DEFAULT_TIMEOUT_S, count: bool = True,
                 **options: Any) -> None:
        self.board = board
        self.cost_model = cost_model
        self.budget_instructions = budget_instructions
        self.timeout_s = timeout_s
        self.count = count
        self.options = options

    def run(self, image: FirmwareImage, inputs: Sequence[Sequence[np.ndarray]] | None = None
            ) -> DeviceRun:
        """Run *image* once per inference of *inputs* (arrays per model input); ``None``:
        one inference on the firmware's built-in default inputs (what a board runs)."""
        raw_inputs = [[]] if inputs is None else encode_inputs(image.model.inputs, inputs)
        run = self.run_elf(image.elf, raw_inputs)
        run.outputs = decode_outputs(image.model.outputs, run.raw.outputs if run.raw else [])
        return run

    def run_elf(self, elf: Path | ElfImage, raw_inputs: Sequence[Sequence[bytes]] = ((),)
                ) -> DeviceRun:
        """Run any ELF for the board with raw input bytes per inference (images without
        model facts: microbenchmarks, TFLM harnesses, foreign firmware; ``[]`` for
        firmware without the ``tm_io_next`` hook).  Outputs stay raw (``raw.outputs``)."""
        emulator = Emulator(self.board, cost_model=self.cost_model, **self.options)
        result = emulator.run(elf, [list(x) for x in raw_inputs],
                              budget_instructions=self.budget_instructions,
                              timeout_s=self.timeout_s, count=self.count)
        per_layer = result.profile.instructions_per_layer() if result.profile else {}
        return DeviceRun([], result.stdout, per_layer, result, emulator.image,
                         stack_peak(emulator))


def run_on_emulator(tflite: bytes, inputs: Sequence[Sequence[np.ndarray]],
                    board: str | Board = "nucleo-l4r5zi", kernels: str = "reference",
                    builder: FirmwareBuilder | None = None) -> list[list[np.ndarray]]:
    """Parse, lower, build and emulate *tflite*; one output list per inference.

    The test-suite twin of :func:`tinymeter.firmware.host.run_on_host`, on the real target.
    """
    b = board if isinstance(board, Board) else load_board(board)
    gen = generate(parse_tflite(tflite), name="emulated")
    image = (builder or FirmwareBuilder()).build(gen, b, BuildConfig(kernels=kernels))
    return EmulatedDevice(b).run(image, inputs).outputs
