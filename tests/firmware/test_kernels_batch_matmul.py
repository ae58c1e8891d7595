"""BATCH_MATMUL (int8 and float32) against tflite-micro, bit for bit.

Why: attention blocks and some sequence models multiply activations by
activations. Cases: 2-D to 5-D operands, broadcast batch dims, adj_x / adj_y,
constant or run-time right operand; float sums must follow TFLM's k order.
Host build and emulated M0+/M4/M7.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from kernel_check import (
    REFERENCE_RUNNERS,
    WARNING_TARGETS,
    Runner,
    assert_kernels_compile_warning_free,
    assert_matches_tflm,
    named_runner_fixture,
)

from tinymeter.models.builders import int8_tensor, single_op_model, tensor
from tinymeter.models.tflite import TensorType

pytest.importorskip("tflite_micro")

log = logging.getLogger(__name__)

F32 = TensorType.FLOAT32
N_HOST = 16
RUNNERS = REFERENCE_RUNNERS


runner = named_runner_fixture(RUNNERS)


@pytest.mark.parametrize("seed", range(N_HOST))
def test_batch_matmul(runner: tuple[str, Runner], seed: int) -> None:
    name, run = runner
    if name != "host" and seed >= 3:
        pytest.skip("emulated runners take the first cases only")
    rng = np.random.default_rng(90_000 + seed)
    rows, depth, cols = (int(v) for v in rng.integers(1, 9, size=3))
    nb = seed % 4
    batch = tuple(int(v) for v in rng.integers(1, 4, size=nb))
    ba = tuple(d if rng.random() < 0.7 else 1 for d in batch)
    bb = tuple(d if rng.random() < 0.7 else 1 for d in batch)[int(rng.integers(0, nb + 1)):]
    out_b = tuple(max(p, q) for p, q in zip(ba, (1,) * (len(ba) - len(bb)) + bb))
    adj_x, adj_y = bool(seed & 1), bool(seed & 2)
    sa = (*ba, *((depth, rows) if adj_x else (rows, depth)))
    sb = (*bb, *((cols, depth) if adj_y else (depth, cols)))
    so = (*out_b, rows, cols)
    is_float = seed % 3 == 0
    const_b = seed % 5 == 4
    if is_float:
        a = tensor("a", sa, F32)
        b = tensor("b", sb, F32, data=rng.standard_normal(sb).astype(np.float32) if const_b
                   else None)
        y = tensor("y", so, F32)
    else:
        def q() -> tuple[float, int]:
            return float(np.float32(10.0 ** rng.uniform(-2, 0))), int(rng.integers(-20, 20))
        a = int8_tensor("a", sa, *q())
        b = int8_tensor("b", sb, *q(), data=rng.integers(-128, 128, sb).astype(np.int8)
                        if const_b else None)
        qa, qb = a.quantization.scale[0], b.quantization.scale[0]
        y = int8_tensor("y", so, float(np.float32(qa * qb * depth ** 0.5 * 40)),
                        int(rng.integers(-128, 128)))
    blob = single_op_model("BATCH_MATMUL", [a, b], [y], {"adj_x": adj_x, "adj_y": adj_y})
    shapes = [sa] if const_b else [sa, sb]
    dt = np.float32 if is_float else np.int8
    inputs = []
    for _ in range(2):
        if is_float:
            inputs.append([rng.standard_normal(s).astype(dt) for s in shapes])
        else:
            inputs.append([rng.integers(-128, 128, s).astype(dt) for s in shapes])
    assert_matches_tflm(blob, inputs, run(blob, inputs),
                        {"a": sa, "b": sb, "adj": (adj_x, adj_y), "float": is_float})


@pytest.mark.parametrize("target", sorted(WARNING_TARGETS))
def test_kernels_compile_warning_free(tmp_path: Path, target: str) -> None:
    assert_kernels_compile_warning_free(tmp_path, target, ("batch_matmul.c",))
