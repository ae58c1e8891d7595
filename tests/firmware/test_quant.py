"""Host-side quantization and window-geometry maths (tinymeter.firmware.quant).

Why: every integer the kernels use comes from these functions; one off-by-one in a
shift or a Python-vs-C rounding/division difference breaks bit-exactness for some
models only. These tests pin the TFLM semantics on edge cases that random kernel
tests rarely hit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinymeter.core.errors import UnsupportedModelError
from tinymeter.firmware import quant


@pytest.mark.parametrize("value,expected", [
    (0.0, (0, 0)),
    (1.0, (1 << 30, 1)),
    (0.5, (1 << 30, 0)),
    (0.75, (3 << 29, 0)),
    (0.25, (1 << 30, -1)),
    (2.0 ** -31, (1 << 30, -30)),
    (2.0 ** -32, (1 << 30, -31)),
    (2.0 ** -33, (0, 0)),            # shift < -31 flushes to zero like TFLM
    (1.0 - 2.0 ** -40, (1 << 30, 1)),  # mantissa rounds up to 2^31: halved, shift + 1
    (3.0, (3 << 29, 2)),
])
def test_quantize_multiplier_edge_cases(value: float, expected: tuple[int, int]) -> None:
    assert quant.quantize_multiplier(value) == expected


def test_quantize_multiplier_round_trip_precision() -> None:
    """multiplier * 2^(shift-31) reproduces the real value to within Q31 rounding."""
    rng = np.random.default_rng(0)
    for x in 10.0 ** rng.uniform(-9, 3, size=2000):
        m, s = quant.quantize_multiplier(float(x))
        assert (1 << 30) <= m < (1 << 31)
        approx = m * 2.0 ** (s - 31)
        assert abs(approx - x) <= x * 2.0 ** -30


def test_tfl_round_is_half_away_from_zero() -> None:
    assert [quant.tfl_round(v) for v in (0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997)] == \
        [1, 2, 3, -1, -2, -3, 0]


def test_per_channel_multipliers_use_double_product() -> None:
    """Per-channel: double(in) * double(w[c]) / double(out), each scale float32 first."""
    in_s, out_s = 0.0123, 0.0456
    ws = [0.001, 0.02, 0.3]
    mults, shifts = quant.conv_per_channel_multipliers(in_s, ws, out_s, 3)
    for c, w in enumerate(ws):
        real = float(np.float32(in_s)) * float(np.float32(w)) / float(np.float32(out_s))
        assert (mults[c], shifts[c]) == quant.quantize_multiplier(real)


def test_per_channel_multipliers_broadcast_and_count_check() -> None:
    mults, shifts = quant.conv_per_channel_multipliers(0.1, [0.01], 0.2, 4)
    assert len(set(zip(mults, shifts))) == 1 and len(mults) == 4
    with pytest.raises(UnsupportedModelError):
        quant.conv_per_channel_multipliers(0.1, [0.01, 0.02], 0.2, 4)


def test_per_tensor_multiplier_rounds_product_to_float32() -> None:
    """TFLM's per-tensor path: static_cast<double>(float in * float w) / double(out)."""
    rng = np.random.default_rng(1)
    differ = 0
    for _ in range(20000):
        s_in, s_w, s_out = (float(np.float32(v)) for v in 10.0 ** rng.uniform(-4, 0, 3))
        got = quant.conv_per_tensor_multiplier(s_in, s_w, s_out)
        f32_product = float(np.float32(s_in) * np.float32(s_w))
        assert got == quant.quantize_multiplier(f32_product / s_out)
        differ += got != quant.quantize_multiplier(s_in * s_w / s_out)
    assert differ > 0  # the distinction is real, so getting it wrong would be caught


def test_bias_scale_check() -> None:
    assert quant.bias_scale_matches(0.1, 0.01, 0.001, 0.5)
    assert not quant.bias_scale_matches(0.1, 0.01, 0.5, 0.5)
    assert not quant.bias_scale_matches(0.1, 0.01, 0.0, 0.01)


@pytest.mark.parametrize("padding,size,k,stride,dil,expected", [
    ("SAME", 10, 3, 1, 1, 10),
    ("SAME", 10, 3, 2, 1, 5),
    ("SAME", 9, 3, 2, 1, 5),
    ("SAME", 1, 5, 2, 2, 1),
    ("VALID", 10, 3, 1, 1, 8),
    ("VALID", 10, 3, 2, 1, 4),
    ("VALID", 10, 3, 2, 2, 3),
    ("VALID", 3, 5, 2, 1, 0),
    ("VALID", 2, 5, 2, 1, 0),   # C truncation: (2+2-5)/2 = 0, not Python's -1
    ("VALID", 1, 5, 1, 1, -3),  # negative results truncate toward zero too
    ("SAME", 10, 3, 0, 1, 0),   # stride 0 -> 0, as TFLM reports it
    ("EXPLICIT", 10, 3, 1, 1, 0),
])
def test_compute_out_size(padding: str, size: int, k: int, stride: int, dil: int,
                          expected: int) -> None:
    assert quant.compute_out_size(padding, size, k, stride, dil) == expected


def test_padding_height_width_same_asymmetric() -> None:
    # in 10, k 4, s 2 -> out 5, total pad (5-1)*2 + 4 - 10 = 2 -> 1 each side.
    p = quant.compute_padding_height_width(2, 2, 1, 1, 10, 10, 4, 4, "SAME")
    assert (p.out_height, p.out_width, p.height, p.width) == (5, 5, 1, 1)
    assert (p.height_offset, p.width_offset) == (0, 0)
    # in 7, k 4, s 1 -> out 7, total pad 3 -> top 1, offset 1 (extra on the bottom).
    p = quant.compute_padding_height_width(1, 1, 1, 1, 7, 7, 4, 4, "SAME")
    assert (p.height, p.height_offset) == (1, 1)
    # Dilated 3x3 (effective 5) on 6 with stride 1: out 6, total pad 4 -> 2.
    p = quant.compute_padding_height_width(1, 1, 2, 2, 6, 6, 3, 3, "SAME")
    assert (p.out_height, p.height, p.height_offset) == (6, 2, 0)


def test_padding_valid_is_zero_and_heights_widths_independent() -> None:
    p = quant.compute_padding_height_width(1, 2, 1, 1, 12, 9, 10, 4, "VALID")
    assert (p.out_height, p.out_width, p.height, p.width) == (3, 3, 0, 0)


def test_padding_matches_brute_force_coverage() -> None:
    """SAME: the padded window grid covers the input exactly as TF defines it."""
    for size in range(1, 20):
        for k in (1, 2, 3, 5, 10):
            for s in (1, 2, 3):
                for d in (1, 2):
                    out = quant.compute_out_size("SAME", size, k, s, d)
                    assert out == math.ceil(size / s)
                    pad, off = quant.compute_padding_with_offset(s, d, size, k, out)
                    eff = (k - 1) * d + 1
                    total = max((out - 1) * s + eff - size, 0)
                    assert (pad, pad + off) == (total // 2, total - total // 2)
