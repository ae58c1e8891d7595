"""Run a model through the device runtime compiled for the host machine.

Same generated ``model.c``, same kernels, same harness as the firmware, but built
with the host compiler and fed over stdin/stdout. It exists so kernel arithmetic can
be checked bit for bit in milliseconds; the emulator path checks the real target.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tinymeter.core.errors import EmulationError, TinymeterError
from tinymeter.firmware.build import FirmwareBuilder
from tinymeter.firmware.codegen import GeneratedModel, IoTensor, generate
from tinymeter.models.tflite import parse_tflite

log = logging.getLogger(__name__)


def encode_inputs(ios: Sequence[IoTensor], inputs: Sequence[Sequence[np.ndarray]]) -> list[list[bytes]]:
    """Check and convert per-inference input arrays to the raw bytes the device expects."""
    encoded = []
    for k, sample in enumerate(inputs):
        if len(sample) != len(ios):
            raise TinymeterError(f"inference {k}: got {len(sample)} inputs, model has {len(ios)}")
        row = []
        for io, arr in zip(ios, sample):
            a = np.asarray(arr)
            if a.dtype != io.numpy_dtype or a.size * a.itemsize != io.bytes:
                raise TinymeterError(
                    f"inference {k}: input {io.name} must be {io.numpy_dtype} with shape "
                    f"{io.shape}, got {a.dtype} {a.shape}")
            row.append(np.ascontiguousarray(a).tobytes())
        encoded.append(row)
    return encoded


def decode_outputs(ios: Sequence[IoTensor], raw: Sequence[Sequence[bytes]]) -> list[list[np.ndarray]]:
    """Raw output bytes per inference -> numpy arrays shaped like the output tensors."""
    return [[np.frombuffer(b, dtype=io.numpy_dtype).reshape(io.shape).copy()
             for io, b in zip(ios, row)] for row in raw]


def run_generated_on_host(model: GeneratedModel, inputs: Sequence[Sequence[np.ndarray]],
                          builder: FirmwareBuilder | None = None,
                          timeout_s: float = 60.0) -> list[list[np.ndarray]]:
    """Run an already generated model on the host for each inference in *inputs*."""
    builder = builder or FirmwareBuilder()
    exe: Path = builder.build_host(model)
    payload = bytearray()
    for row in encode_inputs(model.inputs, inputs):
        payload += b"\x01" + b"".join(row)
    payload += b"\x00"
    try:
        proc = subprocess.run([str(exe)], input=bytes(payload), capture_output=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise EmulationError(f"host run of {model.name} did not finish in {timeout_s} s") from None
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise EmulationError(f"host run of {model.name} exited with {proc.returncode}: {tail[0]}")
    per_inf = sum(io.bytes for io in model.outputs)
    data = proc.stdout
    if len(data) != per_inf * len(inputs):
        raise EmulationError(f"host run produced {len(data)} output bytes, "
                             f"expected {per_inf * len(inputs)}")
    raw = []
    for k in range(len(inputs)):
        chunk = data[k * per_inf:(k + 1) * per_inf]
        row, pos = [], 0
        for io in model.outputs:
            row.append(chunk[pos:pos + io.bytes])
            pos += io.bytes
        raw.append(row)
    return decode_outputs(model.outputs, raw)


def run_on_host(tflite: bytes, inputs: Sequence[Sequence[np.ndarray]],
                builder: FirmwareBuilder | None = None) -> list[list[np.ndarray]]:
    """Parse, lower, build and run *tflite* on the host; one output list per inference."""
    model = generate(parse_tflite(tflite), name="host")
    return run_generated_on_host(model, inputs, builder)
