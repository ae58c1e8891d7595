"""RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR against tflite-micro, bit for bit.

Why: segmentation decoders and U-Nets upsample with these ops. All that can go
wrong is the host's replica of TFLM's geometry (float32 scales, 10-bit fixed
point, align_corners / half_pixel_centers corner cases) and the int8 rounding of
the blend, so cases cover up- and downsampling by odd factors with every option
combination, int8 and float32, on the host build and emulated M0+/M4/M7.
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
    check,
    named_runner_fixture,
)

from tinymeter.core.errors import UnsupportedModelError
from tinymeter.firmware.codegen import generate
from tinymeter.firmware.lower.resize import nearest_indices
from tinymeter.models.builders import int8_tensor, single_op_model, tensor
from tinymeter.models.tflite import TensorType, parse_tflite

pytest.importorskip("tflite_micro")

log = logging.getLogger(__name__)

F32 = TensorType.FLOAT32
I32 = TensorType.INT32
N_HOST = 16
RUNNERS = REFERENCE_RUNNERS
#: (align_corners, half_pixel_centers); both set is invalid.
OPTIONS = [(False, False), (True, False), (False, True)]


runner = named_runner_fixture(RUNNERS)


def resize_case(op: str, seed: int) -> Case:
    rng = np.random.default_rng(40_000 + 7 * len(op) + seed)
    b, c = int(rng.integers(1, 3)), int(rng.integers(1, 6))
    ih, iw = (int(v) for v in rng.integers(1, 7, size=2))
    oh, ow = (int(v) for v in rng.integers(1, 13, size=2))
    if seed % 4 == 0:  # the common x2 upsampling
        oh, ow = 2 * ih, 2 * iw
    align, half = OPTIONS[seed % 3]
    is_float = seed % 2 == 1
    if is_float:
        x, y = tensor("x", (b, ih, iw, c), F32), tensor("y", (b, oh, ow, c), F32)
    else:
        q = (float(np.float32(10.0 ** rng.uniform(-2, 0))), int(rng.integers(-128, 128)))
        x, y = int8_tensor("x", (b, ih, iw, c), *q), int8_tensor("y", (b, oh, ow, c), *q)
    size = tensor("size", (2,), I32, data=np.array([oh, ow], np.int32))
    opts = {"align_corners": align, "half_pixel_centers": half}
    blob = single_op_model(op, [x, size], [y], opts)
    return Case(blob, [x.shape], dict(opts, op=op, shape=x.shape, out=(oh, ow)),
                dtype=np.float32 if is_float else np.int8)


@pytest.mark.parametrize("seed", range(N_HOST))
@pytest.mark.parametrize("op", ["RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR"])
def test_resize_bit_exact(runner: tuple[str, Runner], op: str, seed: int) -> None:
    check(resize_case(op, seed), runner, seed)


def test_nearest_indices_simple_cases() -> None:
    assert nearest_indices(2, 4, False, False) == [0, 0, 1, 1]
    assert nearest_indices(3, 5, True, False) == [0, 1, 1, 2, 2]  # 0.5 rounds away
    assert nearest_indices(4, 2, False, True) == [1, 3]


def test_rejections() -> None:
    x = int8_tensor("x", (1, 2, 2, 1), 0.1, 0)
    y = int8_tensor("y", (1, 4, 4, 1), 0.1, 0)
    dyn = tensor("size", (2,), I32)
    with pytest.raises(UnsupportedModelError, match="constant int32"):
        generate(parse_tflite(single_op_model("RESIZE_BILINEAR", [x, dyn], [y])))
    size = tensor("size", (2,), I32, data=np.array([3, 4], np.int32))
    with pytest.raises(UnsupportedModelError, match="output shape"):
        generate(parse_tflite(single_op_model("RESIZE_NEAREST_NEIGHBOR", [x, size], [y])))


@pytest.mark.parametrize("target", sorted(WARNING_TARGETS))
def test_kernels_compile_warning_free(tmp_path: Path, target: str) -> None:
    assert_kernels_compile_warning_free(tmp_path, target, ("resize.c",))
