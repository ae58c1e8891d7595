"""Tests for the TFLite reader/writer (tinymeter.models.tflite) and models.builders.

The tflite-micro package (test extra) serves two independent checks here: its
interpreter must accept and run what our writer produces, and its generated schema
module (never used by tinymeter at runtime) decodes our files and encodes malformed
ones, so slot ids and enum tables are verified against a second implementation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinymeter.core.errors import MalformedModelError, UnsupportedModelError
from tinymeter.models import tflite
from tinymeter.models.builders import (
    bias_tensor,
    int8_tensor,
    random_int8,
    run_tflm,
    single_op_model,
    single_op_model_ir,
    tensor,
)
from tinymeter.models.tflite import (
    Model,
    Operator,
    Quantization,
    Subgraph,
    Tensor,
    TensorType,
    load_tflite,
    parse_tflite,
    serialize_tflite,
)

MLPERF_DIR = Path(__file__).resolve().parents[2].parent / "shared/models/mlperf-tiny"
MLPERF_MODELS = {
    "kws_ref_model": {"CONV_2D": 5, "DEPTHWISE_CONV_2D": 4, "AVERAGE_POOL_2D": 1,
                      "RESHAPE": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1},
    "vww_96_int8": {"CONV_2D": 14, "DEPTHWISE_CONV_2D": 13, "AVERAGE_POOL_2D": 1,
                    "RESHAPE": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1},
    "pretrainedResnet_quant": {"CONV_2D": 9, "ADD": 3, "AVERAGE_POOL_2D": 1, "RESHAPE": 1,
                               "FULLY_CONNECTED": 1, "SOFTMAX": 1},
    "ad01_int8": {"FULLY_CONNECTED": 10},
}


_FUZZ_REAL = (MLPERF_DIR / "kws_ref_model.tflite").read_bytes() \
    if (MLPERF_DIR / "kws_ref_model.tflite").is_file() else None


def _mlperf_bytes(name: str) -> bytes:
    path = MLPERF_DIR / f"{name}.tflite"
    if not path.is_file():
        pytest.skip(f"MLPerf Tiny model {path} not present (expected next to the repo)")
    return path.read_bytes()


def _schema_fb():
    return pytest.importorskip(
        "tflite_micro.tensorflow.lite.micro.python.schema_py_generated",
        reason="tflite-micro (test extra) provides the independent generated schema",
    )


def _runtime():
    return pytest.importorskip("tflite_micro.python.tflite_micro.runtime",
                               reason="tflite-micro interpreter not installed")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _generated_enum(cls) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


# ----------------------------------------------------------------- enums vs. schema


def test_enum_tables_match_generated_schema():
    fb = _schema_fb()
    ops = _generated_enum(fb.BuiltinOperator)
    for code, name in enumerate(tflite.BUILTIN_OPERATORS):
        assert ops.get(code) == name, code
    types_ = _generated_enum(fb.TensorType)
    for t in TensorType:
        assert types_[t.value] == t.name
    unions = _generated_enum(fb.BuiltinOptions)
    for i, (table_name, _fields) in enumerate(tflite._OPTION_TABLES):
        assert unions[i + 1] == table_name
    for enum_name, names in tflite._ENUMS.items():
        generated = _generated_enum(getattr(fb, enum_name))
        assert all(generated[v] == n for v, n in enumerate(names)), enum_name


# ------------------------------------------------------------------ real models


@pytest.mark.parametrize("name", sorted(MLPERF_MODELS))
def test_parse_mlperf_models(name):
    raw = _mlperf_bytes(name)
    model = parse_tflite(raw)
    main = model.main
    counts: dict[str, int] = {}
    for op in main.operators:
        counts[op.opcode] = counts.get(op.opcode, 0) + 1
    assert counts == MLPERF_MODELS[name]
    assert model.version == 3 and len(model.subgraphs) == 1
    (inp,) = main.inputs
    assert main.tensors[inp].dtype is TensorType.INT8 and main.tensors[inp].data is None
    for op in main.operators:
        if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            assert op.options["padding"] in ("SAME", "VALID")
            assert op.options["dilation_w_factor"] == 1 == op.options["dilation_h_factor"]
            w = main.tensors[op.inputs[1]]
            assert w.quantization is not None and w.quantization.per_channel
            assert w.array().dtype == np.int8 and w.array().shape == w.shape
            bias = main.tensors[op.inputs[2]]
            assert bias.dtype is TensorType.INT32 and bias.array().shape == (w.shape[0]
                if op.opcode == "CONV_2D" else w.shape[3],)
        if op.opcode == "SOFTMAX":
            assert op.options["beta"] == 1.0


@pytest.mark.parametrize("name", sorted(MLPERF_MODELS))
def test_parse_agrees_with_generated_schema(name):
    """Every tensor/operator field we decode equals the generated reader's value."""
    fb = _schema_fb()
    raw = _mlperf_bytes(name)
    ours = parse_tflite(raw).main
    ref = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(raw, 0))
    sg = ref.subgraphs[0]
    assert len(ours.tensors) == len(sg.tensors)
    for t, r in zip(ours.tensors, sg.tensors, strict=True):
        assert t.name == r.name.decode()
        assert t.shape == tuple(r.shape)
        assert t.dtype.value == r.type and t.buffer == r.buffer
        data = ref.buffers[r.buffer].data
        assert (t.data or b"") == (b"" if data is None else bytes(np.asarray(data, np.uint8)))
        if t.quantization is not None:
            assert np.array_equal(np.float32(t.quantization.scale), r.quantization.scale)
            assert list(t.quantization.zero_point) == list(r.quantization.zeroPoint)
            assert t.quantization.quantized_dimension == r.quantization.quantizedDimension
    for op, r in zip(ours.operators, sg.operators, strict=True):
        assert op.inputs == tuple(r.inputs) and op.outputs == tuple(r.outputs)
        code = ref.operatorCodes[r.opcodeIndex]
        assert tflite.BUILTIN_OPERATORS[max(code.builtinCode, code.deprecatedBuiltinCode)] \
            == op.opcode
        if r.builtinOptions is None:  # absent table: we report the schema defaults
            assert dict(op.options) == tflite.default_options(op.opcode)
        else:
            _assert_options_equal(fb, op.options, r.builtinOptions)


def _assert_options_equal(fb, ours, generated_obj) -> None:
    for key, value in ours.items():
        got = getattr(generated_obj, _camel(key))
        if isinstance(got, bytes):
            assert value == got.decode(), key
        elif isinstance(value, str):
            kinds = [k for k, names in tflite._ENUMS.items() if value in names]
            assert any(_generated_enum(getattr(fb, k)).get(got) == value for k in kinds), key
        elif isinstance(value, tuple):
            assert list(value) == ([] if got is None else list(got)), key
        elif isinstance(value, float):
            assert np.float32(value) == np.float32(got), key
        else:
            assert value == got, key


@pytest.mark.parametrize("name", sorted(MLPERF_MODELS))
def test_mlperf_round_trip_runs_identically_in_tflm(name):
    runtime = _runtime()
    raw = _mlperf_bytes(name)
    model = parse_tflite(raw)
    rewritten = serialize_tflite(model)
    assert rewritten[4:8] == b"TFL3"
    assert parse_tflite(rewritten) == model
    outputs = []
    for blob in (raw, rewritten):
        interp = runtime.Interpreter.from_bytes(blob)
        details = interp.get_input_details(0)
        x = random_int8(details["shape"], seed=3)
        interp.set_input(x, 0)
        interp.invoke()
        outputs.append(np.array(interp.get_output(0)))
    assert outputs[0].size > 0
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_load_tflite_reads_file_and_reports_missing(tmp_path):
    blob = _conv_blob()
    path = tmp_path / "m.tflite"
    path.write_bytes(blob)
    assert load_tflite(path) == parse_tflite(blob)
    with pytest.raises(MalformedModelError, match="cannot read model file"):
        load_tflite(tmp_path / "missing.tflite")


# --------------------------------------------------------------- writer / options


def _conv_model() -> Model:
    x = int8_tensor("x", (1, 6, 6, 3), 0.05, -3)
    w = int8_tensor("w", (4, 3, 3, 3), data=random_int8((4, 3, 3, 3), 1),
                    per_channel_scales=[0.01, 0.02, 0.03, 0.04])
    b = bias_tensor("b", np.array([100, -200, 300, 0], np.int32), 0.05, w)
    y = int8_tensor("y", (1, 6, 6, 4), 0.1, 5)
    return single_op_model_ir("CONV_2D", [x, w, b], [y],
                              {"padding": "SAME", "stride_w": 1, "stride_h": 1})


def _conv_blob() -> bytes:
    return serialize_tflite(_conv_model())


def test_round_trip_identity_and_defaults():
    model = _conv_model()
    blob = serialize_tflite(model)
    parsed = parse_tflite(blob)
    # options given partially come back complete with schema defaults
    assert parsed.main.operators[0].options == {
        "padding": "SAME", "stride_w": 1, "stride_h": 1, "fused_activation_function": "NONE",
        "dilation_w_factor": 1, "dilation_h_factor": 1, "quantized_bias_type": "FLOAT32",
    }
    assert parsed == model  # helper-built models are exactly representable
    assert hash(parsed) == hash(model)
    w = parsed.main.tensors[1]
    assert w.quantization == Quantization((np.float32(0.01).item(), np.float32(0.02).item(),
                                           np.float32(0.03).item(), np.float32(0.04).item()),
                                          (0, 0, 0, 0), 0)
    np.testing.assert_array_equal(w.array(), random_int8((4, 3, 3, 3), 1))
    assert parsed.main.tensors[2].array().tolist() == [100, -200, 300, 0]
    assert parsed.main.inputs == (0,) and parsed.main.outputs == (3,)
    assert parsed.main.tensors[0].data is None and parsed.main.tensors[1].buffer == 1


def test_default_options_follow_schema():
    assert tflite.default_options("ADD")["pot_scale_int16"] is True
    assert tflite.default_options("SOFTMAX") == {"beta": 0.0}
    assert tflite.default_options("DEPTHWISE_CONV_2D")["dilation_h_factor"] == 1
    assert tflite.default_options("FULLY_CONNECTED")["weights_format"] == "DEFAULT"
    assert tflite.default_options("RELU") == {}
    assert tflite.options_table_name("MEAN") == "ReducerOptions"
    # Every listed op decodes to a dict of defaults when written without options.
    for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "RESHAPE",
               "SOFTMAX", "ADD", "SUB", "MUL", "CONCATENATION", "PAD", "MEAN", "QUANTIZE",
               "DEQUANTIZE", "STRIDED_SLICE", "SQUEEZE", "TRANSPOSE", "RESIZE_BILINEAR",
               "RESIZE_NEAREST_NEIGHBOR", "HARD_SWISH", "LEAKY_RELU", "PACK", "UNPACK", "SPLIT",
               "GATHER", "ARG_MAX", "SHAPE", "BATCH_MATMUL", "TRANSPOSE_CONV"):
        m = single_op_model_ir(op, [int8_tensor("a", (1, 4))], [int8_tensor("b", (1, 4))])
        got = parse_tflite(serialize_tflite(m)).main.operators[0].options
        assert dict(got) == tflite.default_options(op), op


def _non_default(f: tflite._F):
    if f.kind == "bool":
        return not f.default
    if f.kind in ("i32", "u32"):
        return 7
    if f.kind == "i64":
        return 2**40 + 3
    if f.kind == "f32":
        return 0.375
    if f.kind.startswith("["):
        return (3, -1, 2) if f.kind != "[f32]" else (0.5, -1.25)
    if f.kind == "str":
        return "var0"
    names = tflite._ENUMS[f.kind]
    return next(n for n in reversed(names) if n != f.default)


def test_every_options_table_written_at_schema_slots():
    """Write non-default values for every field of every options table we know, then
    decode with both our reader and the generated schema: slot ids must agree."""
    fb = _schema_fb()
    by_table: dict[str, str] = {}
    for op, table in tflite._OP_OPTIONS.items():
        by_table.setdefault(table, op)
    checked = 0
    for table, fields in tflite._OPTION_TABLES:
        if table not in by_table:
            continue
        opts = {f.name: _non_default(f) for f in fields if f.kind != "deprecated"}
        m = single_op_model_ir(by_table[table], [int8_tensor("a", (1, 4))],
                               [int8_tensor("b", (1, 4))], opts)
        blob = serialize_tflite(m)
        got = parse_tflite(blob).main.operators[0].options
        assert dict(got) == opts, table
        ref = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(blob, 0))
        ref_op = ref.subgraphs[0].operators[0]
        assert ref_op.builtinOptionsType == getattr(fb.BuiltinOptions, table)
        _assert_options_equal(fb, opts, ref_op.builtinOptions)
        checked += 1
    assert checked > 100


def test_writer_rejects_bad_options():
    x, y = int8_tensor("x", (1, 4)), int8_tensor("y", (1, 4))
    with pytest.raises(MalformedModelError, match=r"unknown Conv2DOptions field.*strides"):
        single_op_model("CONV_2D", [x], [y], {"strides": 2})
    with pytest.raises(MalformedModelError, match="'FULL' is not a Padding"):
        single_op_model("CONV_2D", [x], [y], {"padding": "FULL"})
    with pytest.raises(MalformedModelError, match="RELU has no builtin options table"):
        single_op_model("RELU", [x], [y], {"alpha": 0.1})
    with pytest.raises(MalformedModelError, match="bad Conv2DOptions value"):
        single_op_model("CONV_2D", [x], [y], {"stride_w": 2**40})
    with pytest.raises(MalformedModelError, match="unknown builtin operator 'CONV2D'"):
        single_op_model("CONV2D", [x], [y])


def test_custom_op_and_metadata_round_trip():
    x, y = int8_tensor("x", (1, 4)), int8_tensor("y", (1, 4))
    m = single_op_model_ir("CUSTOM:MyOp", [x], [y])
    op = dataclasses.replace(m.main.operators[0], custom_options=b"\x01\x02flex")
    sg = dataclasses.replace(m.main, operators=(op,))
    m = dataclasses.replace(m, subgraphs=(sg,), metadata=(("min_runtime_version", b"1.5.0"),))
    parsed = parse_tflite(serialize_tflite(m))
    assert parsed == m
    assert parsed.main.operators[0].opcode == "CUSTOM:MyOp"


def test_writer_assigns_buffers_for_unindexed_constants():
    x = int8_tensor("x", (1, 4), 0.1, 0)
    c = dataclasses.replace(int8_tensor("c", (1, 4), 0.1, 0, data=[1, 2, 3, 4]), buffer=0)
    y = int8_tensor("y", (1, 4), 0.1, 0)
    sg = Subgraph("main", (x, c, y), (0,), (2,), (Operator("ADD", 1, (0, 1), (2,), {}),))
    parsed = parse_tflite(serialize_tflite(Model(3, "", (sg,))))
    assert parsed.main.tensors[1].buffer > 0
    assert parsed.main.tensors[1].array().tolist() == [[1, 2, 3, 4]]


def test_tensor_array_dtypes_little_endian():
    t = tensor("f", (2, 2), TensorType.FLOAT32, data=np.array([[1.5, -2], [3, 4]]))
    assert t.data == np.array([1.5, -2, 3, 4], "<f4").tobytes()
    a = t.array()
    assert a.dtype == np.float32 and a.shape == (2, 2) and a[0, 1] == -2.0
    assert not a.flags.writeable
    i16 = tensor("i", (3,), TensorType.INT16, data=[1, -1, 300])
    assert i16.data == b"\x01\x00\xff\xff\x2c\x01"
    assert TensorType.INT8.itemsize == 1 and TensorType.INT32.numpy_dtype == np.dtype("<i4")
    assert TensorType.INT4.nbytes(5) == 3
    with pytest.raises(UnsupportedModelError, match="not constant"):
        int8_tensor("x", (1,)).array()


# ------------------------------------------------------------------- TFLM runs


def _quantize(real: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return np.clip(np.round(real / scale) + zp, -128, 127).astype(np.int8)


def test_tflm_fully_connected_matches_float_reference():
    _runtime()
    x = int8_tensor("x", (2, 16), 0.05, 1)
    w_data = random_int8((5, 16), 5)
    w = int8_tensor("w", (5, 16), 0.02, 0, data=w_data)
    b_data = np.array([10, -20, 30, 0, 5], np.int32)
    b = bias_tensor("b", b_data, 0.05, w)
    blob = single_op_model("FULLY_CONNECTED", [x, w, b], [int8_tensor("y", (2, 5), 0.3, -2)],
                           {"fused_activation_function": "NONE"})
    xd = random_int8((2, 16), 6)
    (out,) = run_tflm(blob, [xd])
    acc = (xd.astype(np.int64) - 1) @ w_data.astype(np.int64).T + b_data
    ref = _quantize(acc * 0.05 * 0.02, 0.3, -2)
    assert out.shape == (2, 5)
    assert np.abs(out.astype(int) - ref).max() <= 1


def test_tflm_conv2d_per_channel_matches_float_reference():
    _runtime()
    model = _conv_model()
    blob = serialize_tflite(model)
    xd = random_int8((1, 6, 6, 3), 7)
    (out,) = run_tflm(blob, [xd])
    w = model.main.tensors[1].array().astype(np.int64)
    scales = np.array(model.main.tensors[1].quantization.scale)
    bias = model.main.tensors[2].array()
    xp = np.pad(xd.astype(np.int64) + 3, ((0, 0), (1, 1), (1, 1), (0, 0)))
    acc = np.zeros((6, 6, 4), np.int64)
    for ky in range(3):
        for kx in range(3):
            acc += np.einsum("hwc,oc->hwo", xp[0, ky:ky + 6, kx:kx + 6], w[:, ky, kx, :])
    ref = _quantize((acc + bias) * 0.05 * scales, 0.1, 5)
    assert out.shape == (1, 6, 6, 4)
    assert np.abs(out[0].astype(int) - ref).max() <= 1


def test_tflm_depthwise_conv_runs():
    _runtime()
    x = int8_tensor("x", (1, 8, 8, 3), 0.05, -3)
    w = int8_tensor("w", (1, 3, 3, 3), data=random_int8((1, 3, 3, 3), 2),
                    per_channel_scales=[0.01, 0.02, 0.03], quantized_dimension=3)
    b = bias_tensor("b", np.zeros(3, np.int32), 0.05, w)
    y = int8_tensor("y", (1, 3, 3, 3), 0.02, 0)
    blob = single_op_model("DEPTHWISE_CONV_2D", [x, w, b], [y],
                           {"padding": "VALID", "stride_w": 2, "stride_h": 2,
                            "depth_multiplier": 1})
    xd = random_int8((1, 8, 8, 3), 8)
    (out,) = run_tflm(blob, [xd])
    wd = random_int8((1, 3, 3, 3), 2).astype(np.int64)[0]
    win = xd[0, 0:3, 0:3, :].astype(np.int64) + 3
    acc = (win * wd).sum(axis=(0, 1))
    ref = _quantize(acc * 0.05 * np.array([0.01, 0.02, 0.03]), 0.02, 0)
    assert out.shape == (1, 3, 3, 3)
    assert np.abs(out[0, 0, 0].astype(int) - ref).max() <= 1


@pytest.mark.parametrize("opcode", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_tflm_pooling(opcode):
    _runtime()
    x = int8_tensor("x", (1, 8, 8, 3), 0.05, -3)
    y = int8_tensor("y", (1, 4, 4, 3), 0.05, -3)
    blob = single_op_model(opcode, [x], [y], {"padding": "VALID", "stride_w": 2, "stride_h": 2,
                                              "filter_width": 2, "filter_height": 2})
    xd = random_int8((1, 8, 8, 3), 9)
    (out,) = run_tflm(blob, [xd])
    windows = xd.reshape(1, 4, 2, 4, 2, 3).astype(np.int64)
    if opcode == "MAX_POOL_2D":
        np.testing.assert_array_equal(out, windows.max(axis=(2, 4)))
    else:
        assert np.abs(out - windows.mean(axis=(2, 4))).max() <= 0.5 + 1e-9


def test_tflm_reshape_softmax_add():
    _runtime()
    x = int8_tensor("x", (1, 4, 4, 3), 0.05, -3)
    shape = tensor("shape", (2,), TensorType.INT32, data=[1, 48])
    xd = random_int8((1, 4, 4, 3), 10)
    blob = single_op_model("RESHAPE", [x, shape], [int8_tensor("y", (1, 48), 0.05, -3)],
                           {"new_shape": (1, 48)})
    (out,) = run_tflm(blob, [xd])
    np.testing.assert_array_equal(out, xd.reshape(1, 48))

    logits = int8_tensor("l", (1, 10), 0.1, 0)
    blob = single_op_model("SOFTMAX", [logits], [int8_tensor("p", (1, 10), 1 / 256, -128)],
                           {"beta": 1.0})
    ld = random_int8((1, 10), 11)
    (probs,) = run_tflm(blob, [ld])
    real = np.exp(ld * 0.1) / np.exp(ld * 0.1).sum()
    assert np.abs((probs.astype(int) + 128) / 256 - real).max() <= 2 / 256

    a, b = int8_tensor("a", (1, 4, 4, 3), 0.05, -3), int8_tensor("b", (1, 4, 4, 3), 0.07, 10)
    blob = single_op_model("ADD", [a, b], [int8_tensor("s", (1, 4, 4, 3), 0.1, 0)],
                           {"fused_activation_function": "RELU"})
    bd = random_int8((1, 4, 4, 3), 12)
    (s,) = run_tflm(blob, [xd, bd])
    real = (xd.astype(int) + 3) * 0.05 + (bd.astype(int) - 10) * 0.07
    ref = _quantize(np.maximum(real, 0), 0.1, 0)
    assert np.abs(s.astype(int) - ref).max() <= 1


# ------------------------------------------------------------------ validation


def _patched(mutate) -> bytes:
    """Re-encode the conv test model with the generated schema after ``mutate(ModelT)``:
    a second, independent encoder that can express defects our writer refuses."""
    fb = _schema_fb()
    import flatbuffers

    ref = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(_conv_blob(), 0))
    mutate(ref)
    b = flatbuffers.Builder(1024)
    b.Finish(ref.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _expect(blob: bytes, pattern: str) -> None:
    with pytest.raises(MalformedModelError, match=pattern):
        parse_tflite(blob)


def test_generated_encoder_baseline_parses():
    assert parse_tflite(_patched(lambda m: None)) == parse_tflite(_conv_blob())


def test_rejects_size_and_identifier():
    _expect(b"\0" * 12, re.escape("file too small (12 bytes) to be a TFLite flatbuffer"))
    blob = bytearray(_conv_blob())
    blob[4:8] = b"XXXX"
    _expect(bytes(blob), re.escape("file identifier is b'XXXX', expected b'TFL3'"))


def _set(obj, **kw):
    for k, v in kw.items():
        setattr(obj, k, v)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda m: _set(m.subgraphs[0].tensors[1], buffer=40),
         r"tensor 1 \('w'\) refers to buffer 40 but the model has \d+ buffers"),
        (lambda m: _set(m.subgraphs[0].operators[0], inputs=[0, 99, 2]),
         re.escape("operator 0 (CONV_2D): input tensor index 99 out of range (4 tensors)")),
        (lambda m: _set(m.subgraphs[0].operators[0], outputs=[-1]),
         r"output tensor index -1 out of range"),
        (lambda m: _set(m.subgraphs[0].operators[0], opcodeIndex=7),
         re.escape("operator 0: opcode_index 7 out of range (1 operator codes)")),
        (lambda m: _set(m.subgraphs[0].tensors[1], shape=[4, 3, 3, 2]),
         r"buffer 1 holds 108 bytes but shape \[4, 3, 3, 2\] of INT8 needs 72"),
        (lambda m: _set(m.subgraphs[0].tensors[1].quantization, zeroPoint=[0]),
         r"4 scales but 1 zero points"),
        (lambda m: _set(m.subgraphs[0].tensors[1].quantization, quantizedDimension=3),
         r"4 per-channel scales but dimension 3 of shape \[4, 3, 3, 3\] is 3"),
        (lambda m: _set(m.subgraphs[0].tensors[1].quantization, quantizedDimension=9),
         r"quantized_dimension 9 out of range"),
        (lambda m: _set(m.subgraphs[0].tensors[0], type=99), r"unknown tensor type 99"),
        (lambda m: _set(m.subgraphs[0], inputs=[12]), r"subgraph input tensor index 12"),
        (lambda m: _set(m, version=2), r"schema version is 2, expected 3"),
        (lambda m: _set(m, subgraphs=[]), r"model has no subgraphs"),
        (lambda m: _set(m.operatorCodes[0], builtinCode=250), r"unknown builtin code 250"),
        (lambda m: _set(m.subgraphs[0].operators[0].builtinOptions, padding=5),
         r"padding has unknown Padding value 5"),
    ],
)
def test_rejects_inconsistent_models(mutate, pattern):
    _expect(_patched(mutate), pattern)


def test_rejects_mismatched_options_type():
    fb = _schema_fb()

    def mutate(m):
        m.subgraphs[0].operators[0].builtinOptionsType = fb.BuiltinOptions.PadOptions
        m.subgraphs[0].operators[0].builtinOptions = fb.PadOptionsT()

    _expect(_patched(mutate), r"operator 0 \(CONV_2D\) carries PadOptions, expected Conv2DOptions")


def test_rejects_truncation_with_offset_message():
    blob = _conv_blob()
    _expect(blob[: len(blob) // 2], r"offset out of bounds at ")


def test_external_buffer_data_after_flatbuffer():
    """Buffers with offset/size (models > 2 GB layout) read their bytes from the file tail."""
    fb = _schema_fb()
    import flatbuffers

    weights = random_int8((4, 3, 3, 3), 1).tobytes()

    def encode(offset: int) -> bytes:
        ref = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(_conv_blob(), 0))
        buf = ref.buffers[ref.subgraphs[0].tensors[1].buffer]
        buf.data, buf.offset, buf.size = None, offset, len(weights)
        b = flatbuffers.Builder(1024)
        b.Finish(ref.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    head = encode(2)
    head = encode(len(head))
    assert len(head) == len(encode(2))
    parsed = parse_tflite(head + weights)
    assert parsed.main.tensors[1].data == weights
    assert parsed == parse_tflite(_conv_blob())
    _expect(head + weights[:-1], r"offset out of bounds at .*buffers\[1\]")


# -------------------------------------------------------------------- fuzzing


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flips=st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 255)), max_size=6),
    cut=st.one_of(st.none(), st.integers(0, 10**9)),
)
def test_fuzz_corrupted_models_only_raise_malformed(flips, cut):
    blob = bytearray(_FUZZ_BASE)
    for pos, xor in flips:
        blob[pos % len(blob)] ^= xor
    if cut is not None:
        blob = blob[: cut % (len(blob) + 1)]
    try:
        model = parse_tflite(bytes(blob))
    except MalformedModelError as exc:
        assert str(exc)
    else:
        assert isinstance(model, Model) and model.subgraphs


@pytest.mark.skipif(_FUZZ_REAL is None, reason=f"MLPerf Tiny models not present in {MLPERF_DIR}")
@settings(max_examples=60, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 255)), min_size=1,
                      max_size=4))
def test_fuzz_real_model_header_region(flips):
    """Corrupt the structural head/tail of a real model (its middle is mostly weights)."""
    blob = bytearray(_FUZZ_REAL)
    region = 4096
    for pos, xor in flips:
        p = pos % (2 * region)
        blob[p if p < region else len(blob) - 2 * region + p] ^= xor
    with contextlib.suppress(MalformedModelError):
        parse_tflite(bytes(blob))


def _fuzz_base() -> bytes:
    x = int8_tensor("x", (1, 4, 4, 2), 0.05, -3)
    w = int8_tensor("w", (3, 1, 1, 2), data=random_int8((3, 1, 1, 2), 1),
                    per_channel_scales=[0.01, 0.02, 0.03])
    b = bias_tensor("b", np.array([1, 2, 3], np.int32), 0.05, w)
    shape = tensor("s", (2,), TensorType.INT32, data=[1, 48])
    y = int8_tensor("y", (1, 4, 4, 3), 0.1, 5)
    z = int8_tensor("z", (1, 48), 0.1, 5)
    m = single_op_model_ir("CONV_2D", [x, w, b], [y], {"stride_w": 1, "stride_h": 1})
    sg = m.main
    tensors = (*sg.tensors, dataclasses.replace(shape, buffer=3), z)
    ops = (*sg.operators, Operator("RESHAPE", 1, (3, 4), (5,), {"new_shape": (1, 48)}))
    sg = dataclasses.replace(sg, tensors=tensors, operators=ops, outputs=(5,))
    return serialize_tflite(dataclasses.replace(m, subgraphs=(sg,)))


_FUZZ_BASE = _fuzz_base()


def test_fuzz_base_is_valid_two_op_model():
    m = parse_tflite(_FUZZ_BASE)
    assert [op.opcode for op in m.main.operators] == ["CONV_2D", "RESHAPE"]
    assert isinstance(m.main.tensors[4], Tensor) and m.main.tensors[4].array().tolist() == [1, 48]
