"""`inspect` says up front which operators will not run (firmware.support).

Why: a user's first model decides whether they stay; an unsupported operator must be
named by ``inspect`` (with the reason the firmware build would give), not discovered
when ``estimate`` fails. ``--strict`` turns that into a non-zero exit for CI.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tinymeter.cli.main import main
from tinymeter.firmware.support import format_support, op_support, optimized_kernels, unsupported
from tinymeter.models.builders import int8_tensor, single_op_model_ir, tensor
from tinymeter.models.tflite import Model, TensorType, serialize_tflite


def _two_op_model() -> Model:
    """ADD (supported, DSP kernel) -> CUSTOM op (unsupported) -> SOFTMAX (reference only)."""
    add = single_op_model_ir("ADD", [int8_tensor("a", (1, 8), 0.1, 0),
                                     int8_tensor("b", (1, 8), 0.1, 0)],
                             [int8_tensor("y", (1, 8), 0.2, 0)])
    sg = add.main
    y = sg.outputs[0]
    tensors = [*list(sg.tensors), int8_tensor("z", (1, 8), 0.2, 0), int8_tensor("s", (1, 8), 1 / 256, -128)]
    z, s = len(tensors) - 2, len(tensors) - 1
    custom = dataclasses.replace(sg.operators[0], opcode="CUSTOM:MyOp", inputs=(y,), outputs=(z,),
                                 options={})
    soft = dataclasses.replace(sg.operators[0], opcode="SOFTMAX", inputs=(z,), outputs=(s,),
                               options={"beta": 1.0})
    sg = dataclasses.replace(sg, tensors=tuple(tensors), outputs=(s,),
                             operators=(sg.operators[0], custom, soft))
    return dataclasses.replace(add, subgraphs=(sg,))


def test_op_support_per_operator() -> None:
    rows = op_support(_two_op_model())
    assert [(r.opcode, r.reference, r.optimized) for r in rows] == [
        ("ADD", True, True), ("CUSTOM:MyOp", False, False), ("SOFTMAX", True, False)]
    assert rows[0].kernel == "tm_add_s8" and rows[2].kernel == "tm_softmax_s8"
    assert "no kernel for CUSTOM:MyOp" in rows[1].reason
    assert unsupported(rows) == [rows[1]]
    text = format_support(rows)
    assert "1 of 3 operators will NOT run" in text and "CUSTOM:MyOp" in text


def test_op_support_names_the_lowering_error() -> None:
    """An op the runtime has, with types it rejects, carries the build's own message."""
    m = single_op_model_ir("ADD", [tensor("a", (4,), TensorType.INT64),
                                   tensor("b", (4,), TensorType.INT64)],
                           [tensor("y", (4,), TensorType.INT64)])
    (row,) = op_support(m)
    assert not row.reference and "operator 0 (ADD)" in row.reason and "INT64" in row.reason


def test_optimized_kernels_are_the_dsp_set() -> None:
    opt = optimized_kernels()
    assert {"tm_conv2d_s8", "tm_depthwise_conv2d_s8", "tm_fully_connected_s8",
            "tm_add_s8", "tm_avgpool_s8", "tm_maxpool_s8"} <= opt
    assert "tm_softmax_s8" not in opt and not any(k.endswith("_generic") for k in opt)
    assert {"tm_conv2d_s16", "tm_fully_connected_s16"} <= opt
    assert "tm_depthwise_conv2d_s16" not in opt  # the 16x8 depthwise runs the reference code


def test_inspect_strict_exit_and_json(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(serialize_tflite(_two_op_model()))
    out_json = tmp_path / "s.json"
    assert main(["inspect", str(bad), "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "will NOT run" in out and "CUSTOM:MyOp" in out
    doc = json.loads(out_json.read_text())
    assert [r["reference"] for r in doc["support"]] == [True, False, True]
    assert doc["total_macs"] == 0 and len(doc["ops"]) == 3
    proc = subprocess.run([sys.executable, "-m", "tinymeter.cli", "inspect", str(bad), "--strict"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: --strict: 1 operator(s)") and "CUSTOM:MyOp" in proc.stderr
    good = tmp_path / "good.tflite"
    x = tensor("x", (2, 3), TensorType.FLOAT32)
    good.write_bytes(serialize_tflite(single_op_model_ir(
        "ADD", [x, tensor("c", (2, 3), TensorType.FLOAT32, data=np.ones((2, 3)))],
        [tensor("y", (2, 3), TensorType.FLOAT32)])))
    assert main(["inspect", str(good), "--strict"]) == 0
    assert "all 1 operators run" in capsys.readouterr().out


def _archive(*names: bytes) -> bytes:
    """A static library holding only a GNU symbol index with *names*."""
    body = len(names).to_bytes(4, "big") + b"\0\0\0\0" * len(names) + b"\0".join(names) + b"\0"
    header = b"/".ljust(16) + b"0".ljust(12) + b"0".ljust(6) * 2 + b"0".ljust(8)
    return b"!<arch>\n" + header + str(len(body)).encode().ljust(10) + b"`\n" + body


def test_tflm_library_column(tmp_path: Path, capsys) -> None:
    from tinymeter.firmware.support import tflm_registered_ops

    lib = _archive(b"_ZN6tflite12Register_ADDEv", b"_ZN6tflite15Register_CONV_2DEv",
                   b"_ZN6tflite16MicroInterpreter6InvokeEv")
    assert tflm_registered_ops(lib) == {"ADD", "CONV_2D"}
    path = tmp_path / "libtflm.a"
    path.write_bytes(lib)
    model = tmp_path / "m.tflite"
    model.write_bytes(serialize_tflite(_two_op_model()))
    assert main(["inspect", str(model), "--tflm-lib", str(path)]) == 0
    out = capsys.readouterr().out
    assert "TFLM lib" in out
    assert "the TFLM library registers no kernel for: CUSTOM:MyOp, SOFTMAX" in out
