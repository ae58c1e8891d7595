"""One device interface for the emulator and real boards.

A :class:`Device` runs a built :class:`~tinymeter.firmware.build.FirmwareImage` on
given inputs and returns decoded outputs plus whatever timing the device can give.
The emulator implements it here; the hardware backend (``tinymeter.hw``) implements
the same protocol over a debug probe and a serial port, so tests, notebooks and the
calibration loop do not care which one they talk to.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from tinymeter.core.boards import Board, load_board
from tinymeter.firmware.build import BuildConfig, FirmwareBuilder, FirmwareImage
from tinymeter.firmware.codegen import generate
from tinymeter.firmware.host import decode_outputs, encode_inputs
from tinymeter.models.tflite import parse_tflite
from tinymeter.sim import DEFAULT_BUDGET_INSTRUCTIONS, DEFAULT_TIMEOUT_S
from tinymeter.sim.emulator import Emulator, RunResult

log = logging.getLogger(__name__)


@dataclass
class DeviceRun:
    """Outputs of each inference and the device's own account of the run."""

    outputs: list[list[np.ndarray]]
    stdout: str = ""
    #: Instructions per layer index for one inference (emulator only; -1 = outside layers).
    instructions_per_layer: dict[int, int] = field(default_factory=dict)
    raw: RunResult | None = None


class Device(Protocol):
    """Something that runs firmware: the emulator or a board on a probe."""

    board: Board

    def run(self, image: FirmwareImage, inputs: Sequence[Sequence[np.ndarray]]) -> DeviceRun: ...


class EmulatedDevice:
    """The board's core and memory map in Unicorn, counting instructions per layer."""

    def __init__(self, board: Board, *, budget_instructions: int = DEFAULT_BUDGET_INSTRUCTIONS,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.board = board
        self.budget_instructions = budget_instructions
        self.timeout_s = timeout_s

    def run(self, image: FirmwareImage, inputs: Sequence[Sequence[np.ndarray]]) -> DeviceRun:
        raw_inputs = encode_inputs(image.model.inputs, inputs)
        result = Emulator(self.board).run(image.elf, raw_inputs,
                                          budget_instructions=self.budget_instructions,
                                          timeout_s=self.timeout_s)
        outputs = decode_outputs(image.model.outputs, result.outputs)
        per_layer = result.profile.instructions_per_layer() if result.profile else {}
        return DeviceRun(outputs, result.stdout, per_layer, result)


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
