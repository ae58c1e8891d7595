"""TRANSPOSE_CONV (int8 per-channel and float32) against tflite-micro, bit for bit.

Why: decoders (U-Nets, autoencoders) upsample with transposed convolutions. The
device kernel gathers where TFLM scatters, so what must hold is that every output
sums exactly TFLM's taps -- in TFLM's order for float -- for strides 1-3, SAME and
VALID padding, odd filter sizes, with and without bias, every fused activation.
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
    Case,
    Runner,
    assert_kernels_compile_warning_free,
    check,
    named_runner_fixture,
)

from tinymeter.firmware import quant
from tinymeter.models.builders import bias_tensor, int8_tensor, random_int8, single_op_model, tensor
from tinymeter.models.tflite import TensorType

pytest.importorskip("tflite_micro")

log = logging.getLogger(__name__)

F32 = TensorType.FLOAT32
I32 = TensorType.INT32
N_HOST = 16
RUNNERS = REFERENCE_RUNNERS
ACTS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]


runner = named_runner_fixture(RUNNERS)


def _out_size(padding: str, size: int, f: int, s: int) -> int:
    """TF's transposed-conv output size (the conv output size inverted)."""
    return size * s if padding == "SAME" else size * s + max(f - s, 0)


def tconv_case(seed: int) -> Case:
    rng = np.random.default_rng(70_000 + seed)
    b = 1 + seed % 2
    ih, iw = (int(v) for v in rng.integers(1, 6, size=2))
    cin, cout = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    fh, fw = (int(v) for v in rng.integers(1, 5, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    pad = "SAME" if seed % 2 == 0 else "VALID"
    oh, ow = _out_size(pad, ih, fh, sh), _out_size(pad, iw, fw, sw)
    p = quant.compute_padding_height_width(sh, sw, 1, 1, oh, ow, fh, fw, pad)
    assert (p.out_height, p.out_width) == (ih, iw)
    shape_t = tensor("shape", (4,), I32, data=np.array([b, oh, ow, cout], np.int32))
    is_float = seed % 3 == 2
    with_bias = seed % 4 != 3
    opts = {"padding": pad, "stride_h": sh, "stride_w": sw,
            "fused_activation_function": ACTS[seed % 4]}
    if is_float:
        w = tensor("w", (cout, fh, fw, cin), F32,
                   data=rng.standard_normal((cout, fh, fw, cin)).astype(np.float32))
        bias = tensor("b", (cout,), F32, data=rng.standard_normal(cout).astype(np.float32)) \
            if with_bias else None
        x, y = tensor("x", (b, ih, iw, cin), F32), tensor("y", (b, oh, ow, cout), F32)
    else:
        s_in = float(np.float32(10.0 ** rng.uniform(-2, -0.5)))
        scales = [float(np.float32(10.0 ** rng.uniform(-3, -1))) for _ in range(cout)]
        w = int8_tensor("w", (cout, fh, fw, cin), data=random_int8((cout, fh, fw, cin), seed),
                        per_channel_scales=scales)
        bias = bias_tensor("b", rng.integers(-5000, 5000, size=cout), s_in, w) \
            if with_bias else None
        x = int8_tensor("x", (b, ih, iw, cin), s_in, int(rng.integers(-128, 128)))
        s_out = float(np.float32(s_in * max(scales) * fh * fw * cin * 10.0 ** rng.uniform(0, 1)))
        y = int8_tensor("y", (b, oh, ow, cout), s_out, int(rng.integers(-128, 128)))
    inputs = [shape_t, w, x] + ([bias] if bias is not None else [])
    blob = single_op_model("TRANSPOSE_CONV", inputs, [y], opts)
    return Case(blob, [x.shape], dict(opts, shape=x.shape, out=(oh, ow, cout), f=(fh, fw),
                                      bias=with_bias),
                dtype=np.float32 if is_float else np.int8)


@pytest.mark.parametrize("seed", range(N_HOST))
def test_transpose_conv_bit_exact(runner: tuple[str, Runner], seed: int) -> None:
    check(tconv_case(seed), runner, seed)


@pytest.mark.parametrize("target", sorted(WARNING_TARGETS))
def test_kernels_compile_warning_free(tmp_path: Path, target: str) -> None:
    assert_kernels_compile_warning_free(tmp_path, target, ("transpose_conv.c",))
