"""``tinymeter validate``: emulated firmware outputs vs the host interpreters.

Pure parts (comparison, input files) on hand-made arrays; end to end on single-op
models through the CLI: the own runtime matches tflite-micro bit for bit (int8) and
TensorFlow within tolerance (float); a firmware computing something else (the fake
TFLM of test_tflm_link, whose "ops" sum bytes) is a mismatch with exit status 1.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinymeter.apps.validate import compare, load_inputs, random_inputs
from tinymeter.firmware.codegen import IoTensor
from tinymeter.models.tflite import TensorType

needs_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="arm-none-eabi-gcc missing")

IN8 = IoTensor(0, "x", (1, 4), TensorType.INT8, 0.5, -3)
OUT8 = IoTensor(1, "y", (1, 3), TensorType.INT8, 0.1, 0)
OUTF = IoTensor(2, "p", (2,), TensorType.FLOAT32, None, None)


def test_compare_counts_mismatches_and_top1() -> None:
    device = [[np.array([[1, 5, 2]], np.int8)], [np.array([[9, 0, 0]], np.int8)]]
    expected = [[np.array([[1, 5, 3]], np.int8)], [np.array([[0, 9, 0]], np.int8)]]
    (c,) = compare("tflite-micro", [OUT8], device, expected)
    assert (c.elements, c.mismatches, c.max_abs_diff) == (6, 3, 9.0)
    assert (c.top1_agree, c.top1_total, c.passed) == (1, 2, False)
    (same,) = compare("tflite-micro", [OUT8], device, device)
    assert same.passed and same.max_abs_diff == 0 and same.top1_agree == 2
    fdev = [[np.array([1.0, 2.0], np.float32)]]
    fref = [[np.array([1.0, 2.00001], np.float32)]]
    assert compare("tensorflow", [OUTF], fdev, fref, atol=1e-4)[0].passed
    assert not compare("tensorflow", [OUTF], fdev, fref)[0].passed


def test_load_inputs_npy_npz_and_quantization(tmp_path: Path) -> None:
    from tinymeter.core.errors import ConfigError

    batch = np.arange(8, dtype=np.int8).reshape(2, 1, 4)
    np.save(tmp_path / "b.npy", batch)
    samples = load_inputs(tmp_path / "b.npy", [IN8])
    assert len(samples) == 2 and samples[1][0].tolist() == [[4, 5, 6, 7]]
    # float data for an int8 input is quantized with the input's scale and zero point
    np.savez(tmp_path / "f.npz", x=np.array([[0.0, 1.0, -1.0, 100.0]], np.float32))
    (one,) = load_inputs(tmp_path / "f.npz", [IN8])
    assert one[0].dtype == np.int8 and one[0].tolist() == [[-3, -1, -5, 127]]
    np.savez(tmp_path / "pos.npz", np.zeros((1, 4), np.int8))
    assert load_inputs(tmp_path / "pos.npz", [IN8])[0][0].shape == (1, 4)
    np.save(tmp_path / "bad.npy", np.zeros((3, 5), np.int8))
    with pytest.raises(ConfigError, match=r"input 'x' must have shape \(1, 4\) or \(N, 1, 4\)"):
        load_inputs(tmp_path / "bad.npy", [IN8])
    with pytest.raises(ConfigError, match="no array 'arr_0'"):
        np.savez(tmp_path / "named.npz", other=np.zeros((1, 4), np.int8))
        load_inputs(tmp_path / "named.npz", [IN8])
    with pytest.raises(ConfigError, match="cannot read inputs"):
        load_inputs(tmp_path / "missing.npz", [IN8])
    r = random_inputs([IN8], 3, seed=1)
    assert len(r) == 3 and r[0][0].dtype == np.int8 and r[0][0].shape == (1, 4)
    assert np.array_equal(r[2][0], random_inputs([IN8], 3, seed=1)[2][0])


def _fc_int8(tmp_path: Path) -> Path:
    from tinymeter.models.builders import bias_tensor, int8_tensor, random_int8, single_op_model

    x = int8_tensor("x", (1, 16), 0.05, 2)
    w = int8_tensor("w", (4, 16), 0.01, 0, data=random_int8((4, 16), seed=1))
    b = bias_tensor("b", np.arange(4, dtype=np.int32) * 7, input_scale=0.05, weight_scales=w)
    y = int8_tensor("y", (1, 4), 0.02, -1)
    model = tmp_path / "fc.tflite"
    model.write_bytes(single_op_model("FULLY_CONNECTED", [x, w, b], [y]))
    return model


@needs_gcc
def test_validate_own_runtime_int8_and_float(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from tinymeter.cli.main import main
    from tinymeter.models.builders import single_op_model, tensor

    model = _fc_int8(tmp_path)
    report = tmp_path / "v.json"
    assert main(["validate", str(model), "--kernels", "optimized", "--samples", "3",
                 "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "tflite-micro  0 y     int8   1x4             0        0/12    3/3  yes" in out
    assert "PASS" in out
    data = json.loads(report.read_text())
    assert data["passed"] and data["samples"] == 3 and data["checks"][0]["mismatches"] == 0
    # float: tflite-micro and TensorFlow
    rng = np.random.default_rng(3)
    xf = tensor("x", (1, 8), TensorType.FLOAT32)
    wf = tensor("w", (3, 8), TensorType.FLOAT32, data=rng.standard_normal((3, 8)))
    yf = tensor("y", (1, 3), TensorType.FLOAT32)
    fmodel = tmp_path / "fcf.tflite"
    fmodel.write_bytes(single_op_model("FULLY_CONNECTED", [xf, wf, None], [yf]))
    np.savez(tmp_path / "in.npz", x=rng.standard_normal((5, 1, 8)).astype(np.float32))
    assert main(["validate", str(fmodel), "--inputs", str(tmp_path / "in.npz")]) == 0
    out = capsys.readouterr().out
    assert "5 sample(s), inputs from" in out
    assert "tflite-micro" in out and "tensorflow" in out and "PASS" in out


@needs_gcc
def test_validate_mismatch_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The fake TFLM's FULLY_CONNECTED sums input bytes: validate must catch it."""
    from test_tflm_link import build_fake_tflm

    from tinymeter.cli.main import main

    model = _fc_int8(tmp_path)
    lib, root = build_fake_tflm(tmp_path / "tflm", "cortex-m4f")
    assert main(["validate", str(model), "--tflm-lib", str(lib), "--tflm-root", str(root),
                 "--samples", "2"]) == 1
    out = capsys.readouterr().out
    assert "TFLM reference (libfake_tflm_48.a)" in out and "FAIL" in out and " NO" in out
