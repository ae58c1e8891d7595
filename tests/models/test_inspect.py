"""Tests for tinymeter.models.inspect (MACs, params, memory summary)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tinymeter.models.builders import bias_tensor, int8_tensor, random_int8, single_op_model_ir, tensor
from tinymeter.models.inspect import format_summary, inspect_model
from tinymeter.models.tflite import TensorType, load_tflite

MLPERF_DIR = Path(__file__).resolve().parents[2].parent / "shared/models/mlperf-tiny"
# MACs published in the MLPerf Tiny README.
MLPERF_MACS = {
    "kws_ref_model": 2.66e6,
    "vww_96_int8": 7.49e6,
    "pretrainedResnet_quant": 12.5e6,
    "ad01_int8": 0.26e6,
}


@pytest.mark.parametrize("name", sorted(MLPERF_MACS))
def test_mlperf_macs_match_published_figures(name):
    path = MLPERF_DIR / f"{name}.tflite"
    if not path.is_file():
        pytest.skip(f"MLPerf Tiny model {path} not present (expected next to the repo)")
    summary = inspect_model(load_tflite(path))
    assert summary.total_macs == pytest.approx(MLPERF_MACS[name], rel=0.02)
    assert summary.total_macs == sum(r.macs for r in summary.ops)
    assert summary.peak_activation_bytes == max(r.activation_bytes for r in summary.ops)
    assert 0 < summary.total_params <= summary.total_weight_bytes


def test_kws_rows_exact():
    path = MLPERF_DIR / "kws_ref_model.tflite"
    if not path.is_file():
        pytest.skip(f"MLPerf Tiny model {path} not present")
    s = inspect_model(load_tflite(path))
    first = s.ops[0]
    # 10x4 conv, stride 2, 1 -> 64 channels on 49x10: 25*5*64 outputs * 40 taps
    assert first.opcode == "CONV_2D" and first.output_shapes == ((1, 25, 5, 64),)
    assert first.macs == 25 * 5 * 64 * 10 * 4 * 1
    assert first.params == 64 * 10 * 4 + 64
    assert first.weight_bytes == 64 * 10 * 4 + 64 * 4
    assert first.input_dtypes == ("INT8", "INT8", "INT32")
    dw = s.ops[1]
    assert dw.opcode == "DEPTHWISE_CONV_2D" and dw.macs == 25 * 5 * 64 * 9
    assert dw.activation_bytes == 2 * 25 * 5 * 64
    reshape = next(r for r in s.ops if r.opcode == "RESHAPE")
    assert reshape.params == 0 and reshape.macs == 0  # int32 shape operand is no parameter
    assert s.total_params == 22604
    assert "2.66 M" in format_summary(s)


def test_synthetic_conv_fc_and_peak():
    x = int8_tensor("x", (1, 10, 10, 8), 0.1, 0)
    w = int8_tensor("w", (16, 3, 3, 8), data=random_int8((16, 3, 3, 8)),
                    per_channel_scales=[0.01] * 16)
    b = bias_tensor("b", np.zeros(16, np.int32), 0.1, w)
    y = int8_tensor("y", (1, 5, 5, 16), 0.2, 0)
    conv = single_op_model_ir("CONV_2D", [x, w, b], [y],
                              {"padding": "SAME", "stride_w": 2, "stride_h": 2})
    s = inspect_model(conv)
    (row,) = s.ops
    assert row.macs == 5 * 5 * 16 * 3 * 3 * 8
    assert row.params == 16 * 3 * 3 * 8 + 16
    assert row.output_bytes == 5 * 5 * 16
    assert s.peak_activation_bytes == 10 * 10 * 8 + 5 * 5 * 16
    assert s.input_bytes == 800 and s.output_bytes == 400

    xf = tensor("x", (4, 32), TensorType.FLOAT32)
    wf = tensor("w", (10, 32), TensorType.FLOAT32, data=np.ones((10, 32)))
    yf = tensor("y", (4, 10), TensorType.FLOAT32)
    fc = inspect_model(single_op_model_ir("FULLY_CONNECTED", [xf, wf, None], [yf]))
    assert fc.total_macs == 4 * 10 * 32
    assert fc.total_params == 320 and fc.total_weight_bytes == 320 * 4
    assert fc.peak_activation_bytes == (4 * 32 + 4 * 10) * 4

    a, c = int8_tensor("a", (1, 8)), int8_tensor("c", (1, 8))
    model = single_op_model_ir("ADD", [a, a], [c])
    add = inspect_model(model)
    assert add.total_macs == 0 and add.total_params == 0
    assert add.ops[0].activation_bytes == 24
    # x + x: one tensor used twice by the op counts once
    op = dataclasses.replace(model.main.operators[0], inputs=(0, 0))
    sg = dataclasses.replace(model.main, operators=(op,))
    same = inspect_model(dataclasses.replace(model, subgraphs=(sg,)))
    assert same.ops[0].activation_bytes == 16
