"""GATHER and ARG_MAX / ARG_MIN against tflite-micro, bit for bit.

Why: embedding lookups and classifier heads (argmax in the model) are common in
user models. GATHER takes its positions at run time (random in-range int32
inputs here, and constant positions), with every axis and batch_dims; ARG_MAX /
ARG_MIN must return the first index of ties exactly as TFLM does, so int8 cases
are drawn from a few values to force ties. Host build and emulated M0+/M4/M7.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from kernel_check import (
    REFERENCE_RUNNERS,
    WARNING_TARGETS,
    Case,
    Runner,
    assert_kernels_compile_warning_free,
    assert_matches_tflm,
    check,
    named_runner_fixture,
)

from tinymeter.models.builders import int8_tensor, single_op_model, tensor
from tinymeter.models.tflite import TensorType

pytest.importorskip("tflite_micro")

log = logging.getLogger(__name__)

F32 = TensorType.FLOAT32
I32 = TensorType.INT32
N_HOST = 14
RUNNERS = REFERENCE_RUNNERS


runner = named_runner_fixture(RUNNERS)


def _shape(rng: np.random.Generator, rank: int, hi: int = 5) -> tuple[int, ...]:
    return tuple(int(v) for v in rng.integers(1, hi, size=rank))


def _gather_model(seed: int) -> tuple[bytes, tuple[int, ...], tuple[int, ...], int, bool,
                                      np.ndarray | None]:
    rng = np.random.default_rng(50_000 + seed)
    rank = 1 + seed % 4
    shape = _shape(rng, rank)
    axis = int(rng.integers(0, rank))
    bd = int(rng.integers(0, axis + 1)) if seed % 3 == 0 and axis < rank else 0
    bd = min(bd, rank - 1)
    # scalar positions only as a constant (the interpreter cannot be fed 0-d inputs)
    pshape = (*shape[:bd], *_shape(rng, int(rng.integers(0 if seed % 4 == 3 else 1, 3))))
    is_float = seed % 2 == 1
    out = (*shape[:axis], *pshape[bd:], *shape[axis + 1:])
    mk = (lambda n, s: tensor(n, s, F32)) if is_float else \
        (lambda n, s: int8_tensor(n, s, 0.05, 3))
    const = rng.integers(0, shape[axis], size=pshape).astype(np.int32) if seed % 4 == 3 else None
    pos = tensor("pos", pshape, I32, data=const)
    opts = {"axis": axis - rank if seed % 5 == 1 else axis, "batch_dims": bd}
    blob = single_op_model("GATHER", [mk("x", shape), pos], [mk("y", out)], opts)
    return blob, shape, pshape, shape[axis], is_float, const


@pytest.mark.parametrize("seed", range(N_HOST))
def test_gather_bit_exact(runner: tuple[str, Runner], seed: int) -> None:
    blob, shape, pshape, axis_size, is_float, const = _gather_model(seed)
    name, run = runner
    if name != "host" and seed >= 3:
        pytest.skip("emulated runners take the first cases only")
    rng = np.random.default_rng(seed)
    inputs = []
    for _ in range(2):
        x = (rng.standard_normal(shape).astype(np.float32) if is_float
             else rng.integers(-128, 128, size=shape).astype(np.int8))
        sample = [x]
        if const is None:
            sample.append(rng.integers(0, axis_size, size=pshape).astype(np.int32))
        inputs.append(sample)
    assert_matches_tflm(blob, inputs, run(blob, inputs), {"seed": seed, "shape": shape,
                                                          "positions": pshape})


def arg_case(op: str, seed: int) -> Case:
    rng = np.random.default_rng(51_000 + 3 * len(op) + seed)
    rank = 1 + seed % 4
    shape = _shape(rng, rank, 6)
    axis = int(rng.integers(-rank, rank))
    out = tuple(d for i, d in enumerate(shape) if i != axis % rank)
    is_float = seed % 2 == 1
    x = tensor("x", shape, F32) if is_float else int8_tensor("x", shape, 0.1, 0)
    out_type = I32  # TFLM's ARG_MAX/ARG_MIN fail int64 outputs at Invoke
    ax = tensor("axis", (1,), I32, data=np.array([axis], np.int32))
    blob = single_op_model(op, [x, ax], [tensor("y", out, out_type)],
                           {"output_type": out_type.name})
    return Case(blob, [shape], {"op": op, "shape": shape, "axis": axis},
                dtype=np.float32 if is_float else np.int8)


@pytest.mark.parametrize("seed", range(N_HOST))
@pytest.mark.parametrize("op", ["ARG_MAX", "ARG_MIN"])
def test_arg_min_max_bit_exact(runner: tuple[str, Runner], op: str, seed: int) -> None:
    case = arg_case(op, seed)
    check(case, runner, seed)
    name, run = runner
    if case.dtype == np.int8 and (name == "host" or seed < 3):
        # ties: only a few distinct values, the first index must win
        rng = np.random.default_rng(seed)
        ties = [[rng.choice(np.array([-5, 0, 7], np.int8), size=case.input_shapes[0])]]
        assert_matches_tflm(case.blob, ties, run(case.blob, ties), case.desc)


def test_arg_max_rejects_int64_output() -> None:
    from tinymeter.core.errors import UnsupportedModelError
    from tinymeter.firmware.codegen import generate
    from tinymeter.models.tflite import parse_tflite

    ax = tensor("axis", (1,), I32, data=np.array([0], np.int32))
    blob = single_op_model("ARG_MAX", [int8_tensor("x", (4,), 0.1, 0), ax],
                           [tensor("y", (), TensorType.INT64)])
    with pytest.raises(UnsupportedModelError, match="INT64"):
        generate(parse_tflite(blob))


@pytest.mark.parametrize("target", sorted(WARNING_TARGETS))
def test_kernels_compile_warning_free(tmp_path: Path, target: str) -> None:
    assert_kernels_compile_warning_free(tmp_path, target, ("indexing.c",))
