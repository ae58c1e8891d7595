"""SVDF (int8 with int16 or int8 state, and float32) against tflite-micro, bit for bit,
over a stream of inferences.

Why: SVDF keyword spotters keep a state between inferences; the firmware must shift
and update it exactly as TFLM does, so every case runs a sequence of inferences
through one firmware image and one tflite-micro interpreter (not a fresh one per
inference) and compares every step. Host build and emulated M0+/M4/M7.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest
from kernel_check import (
    REFERENCE_RUNNERS,
    WARNING_TARGETS,
    Runner,
    assert_kernels_compile_warning_free,
    named_runner_fixture,
)

from tinymeter.core.errors import UnsupportedModelError
from tinymeter.firmware.codegen import generate
from tinymeter.models.builders import int8_tensor, single_op_model_ir, tensor
from tinymeter.models.tflite import TensorType, parse_tflite, serialize_tflite

pytest.importorskip("tflite_micro")

log = logging.getLogger(__name__)

F32, I16, I32 = TensorType.FLOAT32, TensorType.INT16, TensorType.INT32
N_HOST = 10
RUNNERS = REFERENCE_RUNNERS
STEPS = 5


runner = named_runner_fixture(RUNNERS)


def _stateful(model, state_name: str) -> bytes:
    """Mark the state tensor variable and take it out of the graph inputs."""
    sg = model.main
    idx = next(i for i, t in enumerate(sg.tensors) if t.name == state_name)
    tensors = list(sg.tensors)
    tensors[idx] = dataclasses.replace(tensors[idx], is_variable=True)
    sg = dataclasses.replace(sg, tensors=tuple(tensors),
                             inputs=tuple(i for i in sg.inputs if i != idx))
    return serialize_tflite(dataclasses.replace(model, subgraphs=(sg,)))


def svdf_case(seed: int) -> tuple[bytes, tuple[int, int], bool]:
    rng = np.random.default_rng(95_000 + seed)
    batch, n_in = int(rng.integers(1, 3)), int(rng.integers(1, 20))
    rank, units, memory = int(rng.integers(1, 3)), int(rng.integers(1, 6)), int(rng.integers(1, 8))
    filters = rank * units
    is_float = seed % 3 == 2
    state_shape = (batch, memory * filters)
    if is_float:
        x = tensor("x", (batch, n_in), F32)
        wf = tensor("wf", (filters, n_in), F32,
                    data=rng.standard_normal((filters, n_in)).astype(np.float32))
        wt = tensor("wt", (filters, memory), F32,
                    data=rng.standard_normal((filters, memory)).astype(np.float32))
        b = tensor("b", (units,), F32, data=rng.standard_normal(units).astype(np.float32))
        st = tensor("state", state_shape, F32)
        y = tensor("y", (batch, units), F32)
        act = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"][seed % 4]
    else:
        wide = seed % 2 == 0
        s_in, s_f = 0.05, float(np.float32(10.0 ** rng.uniform(-3, -1)))
        s_st = float(np.float32(10.0 ** rng.uniform(-3, -1)))
        x = int8_tensor("x", (batch, n_in), s_in, int(rng.integers(-20, 20)))
        wf = int8_tensor("wf", (filters, n_in), s_f, 0,
                         data=rng.integers(-128, 128, (filters, n_in)).astype(np.int8))
        if wide:
            s_t = float(np.float32(10.0 ** rng.uniform(-5, -3)))
            wt = tensor("wt", (filters, memory), I16, scale=s_t, zero_point=0,
                        data=rng.integers(-32768, 32768, (filters, memory)).astype(np.int16))
            st = tensor("state", state_shape, I16, scale=s_st, zero_point=0)
        else:
            s_t = float(np.float32(10.0 ** rng.uniform(-3, -1)))
            wt = int8_tensor("wt", (filters, memory), s_t, 0,
                             data=rng.integers(-128, 128, (filters, memory)).astype(np.int8))
            st = int8_tensor("state", state_shape, s_st, 0)
        b = tensor("b", (units,), I32, scale=float(np.float32(s_st) * np.float32(s_t)),
                   zero_point=0, data=rng.integers(-2000, 2000, units).astype(np.int32))
        y = int8_tensor("y", (batch, units),
                        float(np.float32(s_st * s_t * memory * rank * 300)),
                        int(rng.integers(-50, 50)))
        act = "NONE"
    model = single_op_model_ir("SVDF", [x, wf, wt, b, st], [y],
                               {"rank": rank, "fused_activation_function": act})
    return _stateful(model, "state"), (batch, n_in), is_float


def _stream(shape: tuple[int, int], is_float: bool, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    if is_float:
        return [[rng.standard_normal(shape).astype(np.float32)] for _ in range(STEPS)]
    return [[rng.integers(-128, 128, shape).astype(np.int8)] for _ in range(STEPS)]


def _tflm_stream(blob: bytes, inputs: list[list[np.ndarray]]) -> list[np.ndarray]:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(blob, arena_size=1 << 16)
    out = []
    for (x,) in inputs:
        interp.set_input(x, 0)
        interp.invoke()
        out.append(np.array(interp.get_output(0)))
    return out


@pytest.mark.parametrize("seed", range(N_HOST))
def test_svdf_stream_bit_exact(runner: tuple[str, Runner], seed: int) -> None:
    name, run = runner
    if name != "host" and seed >= 3:
        pytest.skip("emulated runners take the first cases only")
    blob, shape, is_float = svdf_case(seed)
    inputs = _stream(shape, is_float, seed)
    got = run(blob, inputs)
    want = _tflm_stream(blob, inputs)
    for step, (g, w) in enumerate(zip(got, want)):
        assert g[0].tobytes() == w.tobytes(), (step, g[0], w, seed)


def test_int8_state_needs_zero_point_zero() -> None:
    blob, _, _ = svdf_case(1)
    model = parse_tflite(blob)
    sg = model.main
    tensors = list(sg.tensors)
    i = next(k for k, t in enumerate(tensors) if t.name == "state")
    q = dataclasses.replace(tensors[i].quantization, zero_point=(3,))
    tensors[i] = dataclasses.replace(tensors[i], quantization=q)
    bad = dataclasses.replace(model, subgraphs=(dataclasses.replace(sg, tensors=tuple(tensors)),))
    with pytest.raises(UnsupportedModelError, match="state zero point"):
        generate(bad)


@pytest.mark.parametrize("target", sorted(WARNING_TARGETS))
def test_kernels_compile_warning_free(tmp_path: Path, target: str) -> None:
    assert_kernels_compile_warning_free(tmp_path, target, ("svdf.c",))
