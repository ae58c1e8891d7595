"""SUB, MAXIMUM and MINIMUM, int8 and float32, against tflite-micro bit for bit.

Why: residual/difference blocks (SUB), clipping layers and attention-like gates
(MAXIMUM/MINIMUM) appear in converted Keras models. SUB int8 shares ADD's
requantization but subtracts, so the extremes (all -128 / all 127 on either
input) and broadcasting along every dim are what must match. Host build and
emulated M0+/M4/M7 firmware.
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
    SaturatingCase,
    assert_kernels_compile_warning_free,
    assert_matches_tflm,
    check,
    named_runner_fixture,
    random_scale,
)

from tinymeter.core.errors import UnsupportedModelError
from tinymeter.firmware.codegen import generate
from tinymeter.models.builders import int8_tensor, single_op_model, tensor
from tinymeter.models.tflite import TensorType, parse_tflite

pytest.importorskip("tflite_micro")

log = logging.getLogger(__name__)

F32 = TensorType.FLOAT32
N_HOST = 14
ACTIVATIONS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]
RUNNERS = REFERENCE_RUNNERS


runner = named_runner_fixture(RUNNERS)


def _shapes(rng: np.random.Generator, seed: int) -> tuple[tuple[int, ...], ...]:
    """(a, b, out): equal shapes, or broadcasting of random dims (up to 5-D)."""
    rank = 1 + seed % 5
    out = tuple(int(v) for v in rng.integers(1, 6, size=rank))
    if seed % 4 == 0:
        return out, out, out
    a = tuple(d if rng.random() < 0.6 else 1 for d in out)
    b = tuple(d if rng.random() < 0.5 else 1 for d in out)[int(rng.integers(0, rank)):]
    full = tuple(max(p, q) for p, q in zip(a, (1,) * (rank - len(b)) + b))
    return a, b, full


def binary_case(op: str, seed: int) -> Case | SaturatingCase:
    rng = np.random.default_rng(30_000 + 31 * len(op) + seed)
    a, b, out = _shapes(rng, seed)
    act = ACTIVATIONS[seed % 4] if op == "SUB" else "NONE"
    opts = {"fused_activation_function": act} if op == "SUB" else {}
    desc = dict(opts, op=op, shapes=(a, b, out))
    if seed % 3 == 2:
        blob = single_op_model(op, [tensor("a", a, F32), tensor("b", b, F32)],
                               [tensor("y", out, F32)], opts)
        return Case(blob, [a, b], desc, dtype=np.float32)
    if op == "SUB":
        s1 = random_scale(rng)
        s2 = s1 if seed % 5 == 0 else random_scale(rng)
        so = max(s1, s2) * float(10.0 ** rng.uniform(-0.3, 1.0))
        qs = [(s1, int(rng.integers(-128, 128))), (s2, int(rng.integers(-128, 128))),
              (so, int(rng.integers(-128, 128)))]
    else:
        q = (random_scale(rng), int(rng.integers(-128, 128)))
        qs = [q, q, q]
    ta, tb = int8_tensor("a", a, *qs[0]), int8_tensor("b", b, *qs[1])
    blob = single_op_model(op, [ta, tb], [int8_tensor("y", out, *qs[2])], opts)
    return SaturatingCase(blob, [a, b], dict(desc, q=qs))


@pytest.mark.parametrize("seed", range(N_HOST))
@pytest.mark.parametrize("op", ["SUB", "MAXIMUM", "MINIMUM"])
def test_binary_bit_exact(runner: tuple[str, Runner], op: str, seed: int) -> None:
    case = binary_case(op, seed)
    name, run = runner
    if name != "host" and seed >= 3:
        pytest.skip("emulated runners take the first cases only")
    if isinstance(case, Case):
        check(case, runner, seed)
        return
    inputs = case.inputs(seed)
    # one input at each extreme while the other is random: SUB's worst cases
    rng = np.random.default_rng(seed)
    rand = [rng.integers(-128, 128, size=s).astype(np.int8) for s in case.input_shapes]
    inputs += [[np.full(case.input_shapes[0], -128, np.int8), rand[1]],
               [rand[0], np.full(case.input_shapes[1], 127, np.int8)]]
    assert_matches_tflm(case.blob, inputs, run(case.blob, inputs), case.desc)


def test_rejections() -> None:
    big = (1, 1, 1, 1, 1, 2)
    blob = single_op_model("SUB", [int8_tensor("a", big, 0.1, 0), int8_tensor("b", big, 0.1, 0)],
                           [int8_tensor("y", big, 0.1, 0)])
    with pytest.raises(UnsupportedModelError, match=r"operator 0 \(SUB\).*5 dims"):
        generate(parse_tflite(blob))
    blob = single_op_model("MAXIMUM", [int8_tensor("a", (2, 3), 0.1, 0),
                                       int8_tensor("b", (2, 4), 0.1, 0)],
                           [int8_tensor("y", (2, 4), 0.1, 0)])
    with pytest.raises(UnsupportedModelError, match="broadcast"):
        generate(parse_tflite(blob))


@pytest.mark.parametrize("target", sorted(WARNING_TARGETS))
def test_kernels_compile_warning_free(tmp_path: Path, target: str) -> None:
    assert_kernels_compile_warning_free(tmp_path, target, ("sub.c", "minmax.c"))
