"""Tests of the model zoo (models/zoo.py) and the Keras → TFLite converter (models/convert.py).

Every architecture is built with random weights, converted to int8 and run in the
tflite-micro interpreter (the reference the firmware is checked against). Op sets are
compared with what the firmware runtime implements and, for the MLPerf Tiny models,
op by op with the reference .tflite files. MACs are computed here from the converted
flatbuffer (independently of models.inspect) and compared with the MLPerf figures.

All builds go to one session-scoped temporary cache, so each model is converted once
per session even if several tests use it (that is also the zoo's own cache at work).
"""

from __future__ import annotations

import collections
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinymeter.core.errors import ConfigError
from tinymeter.models import zoo

if importlib.util.find_spec("tensorflow") is None:  # find_spec: importing TF here is slow
    pytest.skip("model zoo tests need TensorFlow", allow_module_level=True)
runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

pytestmark = pytest.mark.tf

REFERENCE_DIR = Path("/work/shared/models/mlperf-tiny")

ALL_MODELS = [
    "ds_cnn_kws", "mobilenet_v1_vww", "resnet8", "fc_autoencoder", "lenet", "resnet20",
    "dense_sweep", "conv_sweep", "depthwise_sweep",
]

# Ops the firmware runtime supports first; the default model must use only these.
FIRST_OPS = {
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D",
    "RESHAPE", "SOFTMAX", "ADD",
}

# Expected op histogram of each int8 model at its default parameters.
EXPECTED_OPS: dict[str, dict[str, int]] = {
    "ds_cnn_kws": {"CONV_2D": 5, "DEPTHWISE_CONV_2D": 4, "AVERAGE_POOL_2D": 1, "RESHAPE": 1,
                   "FULLY_CONNECTED": 1, "SOFTMAX": 1},
    "mobilenet_v1_vww": {"CONV_2D": 14, "DEPTHWISE_CONV_2D": 13, "AVERAGE_POOL_2D": 1,
                         "RESHAPE": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1},
    "resnet8": {"CONV_2D": 9, "ADD": 3, "AVERAGE_POOL_2D": 1, "RESHAPE": 1,
                "FULLY_CONNECTED": 1, "SOFTMAX": 1},
    "fc_autoencoder": {"FULLY_CONNECTED": 10},
    "lenet": {"CONV_2D": 2, "MAX_POOL_2D": 2, "RESHAPE": 1, "FULLY_CONNECTED": 3,
              "SOFTMAX": 1},
    "resnet20": {"CONV_2D": 21, "ADD": 9, "AVERAGE_POOL_2D": 1, "RESHAPE": 1,
                 "FULLY_CONNECTED": 1, "SOFTMAX": 1},
    "dense_sweep": {"FULLY_CONNECTED": 1},
    "conv_sweep": {"CONV_2D": 1},
    "depthwise_sweep": {"DEPTHWISE_CONV_2D": 1},
}

# MLPerf Tiny published MAC counts (3 significant digits: tolerance is half a unit
# of the last digit), and the reference file of each model.
MLPERF = {
    "ds_cnn_kws": (2.66e6, 0.005e6, "kws_ref_model.tflite"),
    "mobilenet_v1_vww": (7.49e6, 0.005e6, "vww_96_int8.tflite"),
    "resnet8": (12.5e6, 0.05e6, "pretrainedResnet_quant.tflite"),
    "fc_autoencoder": (0.26e6, 0.005e6, "ad01_int8.tflite"),
}


# ----------------------------------------------------------------- flatbuffer helpers


def _schema() -> Any:
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


def _load(data: bytes) -> Any:
    s = _schema()
    return s.ModelT.InitFromObj(s.Model.GetRootAsModel(data, 0))


def _op_name(model: Any, op: Any) -> str:
    s = _schema()
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    return names[builtin]


def _ops(data: bytes) -> list[str]:
    m = _load(data)
    return [_op_name(m, op) for op in m.subgraphs[0].operators]


def _signature(data: bytes) -> list[tuple[Any, ...]]:
    """Per op: name, output shape, fused activation, strides, padding, filter size.

    What must match the MLPerf reference for the firmware to see the same workload.
    """
    m = _load(data)
    g = m.subgraphs[0]
    rows = []
    for op in m.subgraphs[0].operators:
        opts = vars(op.builtinOptions) if op.builtinOptions is not None else {}
        keys = ("fusedActivationFunction", "strideH", "strideW", "padding",
                "filterHeight", "filterWidth", "depthMultiplier")
        rows.append((_op_name(m, op), tuple(int(d) for d in g.tensors[op.outputs[0]].shape),
                     tuple(opts.get(k) for k in keys)))
    return rows


def _macs(data: bytes) -> int:
    """Multiply-accumulates of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED."""
    m = _load(data)
    g = m.subgraphs[0]
    total = 0
    for op in g.operators:
        name = _op_name(m, op)
        out = [int(d) for d in g.tensors[op.outputs[0]].shape]
        w = [int(d) for d in g.tensors[op.inputs[1]].shape] if len(op.inputs) > 1 else []
        if name == "CONV_2D":  # weights (cout, kh, kw, cin)
            total += int(np.prod(out)) * w[1] * w[2] * w[3]
        elif name == "DEPTHWISE_CONV_2D":  # weights (1, kh, kw, cout)
            total += int(np.prod(out)) * w[1] * w[2]
        elif name == "FULLY_CONNECTED":  # weights (units, in)
            total += int(np.prod(out)) * w[1]
    return total


def _io_types(data: bytes) -> tuple[list[Any], list[Any]]:
    s = _schema()
    types_ = {v: k for k, v in vars(s.TensorType).items() if not k.startswith("_")}
    g = _load(data).subgraphs[0]
    return ([types_[g.tensors[i].type] for i in g.inputs],
            [types_[g.tensors[i].type] for i in g.outputs])


def _run_tflm(data: bytes, x: np.ndarray) -> np.ndarray:
    interp = runtime.Interpreter.from_bytes(data)
    interp.set_input(x, 0)
    interp.invoke()
    return np.array(interp.get_output(0))


# ------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def zoo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache for the session, so each model is built once."""
    return tmp_path_factory.mktemp("zoo-cache")


def _built(name: str, cache: Path, **kw: Any) -> bytes:
    return zoo.build_tflite(name, cache_dir=cache, **kw).read_bytes()


# ---------------------------------------------------------- registry and validation
# (no TensorFlow needed: these must stay instant)


def test_list_models() -> None:
    # untrained architectures, the trained digits_cnn (tests/models/test_zoo_trained.py), then
    # lstm_kws (written without Keras, tests/models/test_zoo_lstm.py)
    assert zoo.list_models() == [*ALL_MODELS, "digits_cnn", "lstm_kws"]
    assert zoo.DEFAULT_MODEL == "ds_cnn_kws"


def test_default_params_come_from_builder_signatures() -> None:
    assert zoo.default_params("ds_cnn_kws") == {
        "filters": 64, "blocks": 4, "num_classes": 12, "input_shape": (49, 10)}
    assert set(zoo.default_params("conv_sweep")) >= {"channels", "kernel", "depth", "input_hw"}
    assert "seed" not in zoo.default_params("resnet8")


def test_unknown_model_names_valid_ones() -> None:
    with pytest.raises(ConfigError, match="unknown zoo model 'resnet9'") as exc:
        zoo.build_tflite("resnet9")
    assert "ds_cnn_kws" in str(exc.value) and "depthwise_sweep" in str(exc.value)


def test_unknown_param_names_key_and_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown parameter 'widht'") as exc:
        zoo.build_tflite("dense_sweep", params={"widht": 3}, cache_dir=tmp_path)
    assert "width" in str(exc.value) and "depth" in str(exc.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("dense_sweep", {"width": "64"}, "'width' must be int"),
        ("dense_sweep", {"width": True}, "'width' must be int"),
        ("ds_cnn_kws", {"input_shape": (49,)}, "sequence of 2 ints"),
        ("lenet", {"pool": 2}, "'pool' must be str"),
    ],
)
def test_bad_param_types(name: str, params: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        zoo.resolve_params(name, params)


def test_bad_param_values_and_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'width' must be >= 1"):
        zoo.build_tflite("dense_sweep", params={"width": 0}, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="'pool' must be one of"):
        zoo.build_tflite("lenet", params={"pool": "min"}, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown quantize 'int4'"):
        zoo.build_tflite("dense_sweep", quantize="int4", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown io_dtype"):
        zoo.build_tflite("dense_sweep", io_dtype="uint8", cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.tflite"))


def test_cache_key_normalises_params() -> None:
    base = zoo.cache_key("ds_cnn_kws")
    assert zoo.cache_key("ds_cnn_kws", {}) == base
    assert zoo.cache_key("ds_cnn_kws", {"filters": 64, "input_shape": [49, 10]}) == base
    assert zoo.cache_key("ds_cnn_kws", {"filters": 32}) != base
    assert zoo.cache_key("ds_cnn_kws", quantize="float32") != base
    assert zoo.cache_key("ds_cnn_kws", io_dtype="float32") != base
    assert zoo.cache_key("ds_cnn_kws", seed=1) != base


def test_cache_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TINYMETER_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert zoo.resolve_cache_dir() == Path.home() / ".cache" / "tinymeter" / "models"
    monkeypatch.setenv("TINYMETER_CACHE", str(tmp_path / "tm"))
    assert zoo.resolve_cache_dir() == tmp_path / "tm" / "models"
    assert zoo.resolve_cache_dir(tmp_path / "x") == tmp_path / "x"


def test_zoo_import_does_not_import_tensorflow() -> None:
    code = (
        "import sys; from tinymeter.models import zoo; zoo.list_models(); "
        "zoo.cache_key('ds_cnn_kws'); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ------------------------------------------------------------- builds and conversion


@pytest.mark.parametrize("name", ALL_MODELS)
def test_int8_model_builds_and_runs_in_tflm(name: str, zoo_cache: Path) -> None:
    data = _built(name, zoo_cache)
    assert collections.Counter(_ops(data)) == EXPECTED_OPS[name]
    assert _io_types(data) == (["INT8"], ["INT8"])

    interp = runtime.Interpreter.from_bytes(data)
    shape = tuple(interp.get_input_details(0)["shape"])
    rng = np.random.default_rng(0)
    outs = []
    for _ in range(3):
        x = rng.integers(-128, 128, size=shape, dtype=np.int8)
        interp.set_input(x, 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0)))
    assert all(o.dtype == np.int8 for o in outs)
    assert tuple(outs[0].shape) == tuple(interp.get_output_details(0)["shape"])
    # Random weights but not degenerate: different inputs give different outputs.
    assert any(not np.array_equal(outs[0], o) for o in outs[1:])


def test_default_model_uses_only_first_runtime_ops(zoo_cache: Path) -> None:
    path = zoo.default_model_path(cache_dir=zoo_cache)
    assert path.name.startswith("ds_cnn_kws-int8-")
    data = path.read_bytes()
    assert set(_ops(data)) <= FIRST_OPS
    assert _io_types(data) == (["INT8"], ["INT8"])


@pytest.mark.parametrize("name", list(MLPERF))
def test_macs_match_mlperf(name: str, zoo_cache: Path) -> None:
    expected, tolerance, _ = MLPERF[name]
    macs = _macs(_built(name, zoo_cache))
    assert macs == pytest.approx(expected, abs=tolerance), f"{name}: {macs:,} MACs"


@pytest.mark.parametrize("name", list(MLPERF))
def test_same_ops_as_mlperf_reference(name: str, zoo_cache: Path) -> None:
    """Op by op: type, output shape, fused activation, strides, padding, pool size."""
    ref_path = REFERENCE_DIR / MLPERF[name][2]
    if not ref_path.is_file():
        pytest.skip(f"reference model {ref_path} not available")
    ref = ref_path.read_bytes()
    ours = _built(name, zoo_cache)
    assert _signature(ours) == _signature(ref)
    assert _macs(ours) == _macs(ref)
    assert _io_types(ours) == _io_types(ref)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_int8_activations_spread_over_range(zoo_cache: Path) -> None:
    """Non-degenerate weights: every intermediate int8 tensor uses most of its codes."""
    from tinymeter.models.convert import import_tf

    tf = import_tf()
    data = _built("ds_cnn_kws", zoo_cache)
    interp = tf.lite.Interpreter(model_content=data, experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    rng = np.random.default_rng(1)
    lo: dict[int, int] = {}
    hi: dict[int, int] = {}
    act_ops = {"CONV_2D", "DEPTHWISE_CONV_2D"}
    for _ in range(4):
        interp.set_tensor(inp["index"], rng.integers(-128, 128, inp["shape"], dtype=np.int8))
        interp.invoke()
        for op in interp._get_ops_details():
            if op["op_name"] in act_ops:
                t = interp.get_tensor(op["outputs"][0]).astype(int)
                i = op["outputs"][0]
                lo[i] = min(lo.get(i, 127), int(t.min()))
                hi[i] = max(hi.get(i, -128), int(t.max()))
    spans = [hi[i] - lo[i] for i in lo]
    assert len(spans) == 9
    assert min(spans) >= 128, spans


def test_int8_agrees_with_float(zoo_cache: Path) -> None:
    """The int8 DS-CNN computes what the float one does (calibration is sane)."""
    q = _built("ds_cnn_kws", zoo_cache)
    f = _built("ds_cnn_kws", zoo_cache, quantize="float32")
    assert _io_types(f) == (["FLOAT32"], ["FLOAT32"])
    assert collections.Counter(_ops(f)) == EXPECTED_OPS["ds_cnn_kws"]
    m = _load(q)
    g = m.subgraphs[0]
    qin = g.tensors[g.inputs[0]].quantization
    qout = g.tensors[g.outputs[0]].quantization
    in_scale, in_zp = float(qin.scale[0]), int(qin.zeroPoint[0])
    out_scale, out_zp = float(qout.scale[0]), int(qout.zeroPoint[0])
    rng = np.random.default_rng(2)
    errs = []
    for _ in range(4):
        xf = rng.standard_normal((1, 49, 10, 1)).astype(np.float32)
        xq = np.clip(np.round(xf / in_scale) + in_zp, -128, 127).astype(np.int8)
        xf = ((xq.astype(np.float32) - in_zp) * in_scale).astype(np.float32)
        yq = (_run_tflm(q, xq).astype(np.float32) - out_zp) * out_scale
        yf = _run_tflm(f, xf)
        errs.append(float(np.abs(yq - yf).max()))
    assert max(errs) < 0.03, errs


def test_float_io_int8_model(zoo_cache: Path) -> None:
    data = _built("dense_sweep", zoo_cache, io_dtype="float32")
    assert _io_types(data) == (["FLOAT32"], ["FLOAT32"])
    assert collections.Counter(_ops(data)) == {"QUANTIZE": 1, "FULLY_CONNECTED": 1,
                                               "DEQUANTIZE": 1}
    y = _run_tflm(data, np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32))
    assert y.dtype == np.float32 and y.shape == (1, 64)


def test_sweep_params_shape_the_model(zoo_cache: Path) -> None:
    d = _built("dense_sweep", zoo_cache, params={"width": 32, "depth": 3, "input_dim": 20})
    assert _ops(d) == ["FULLY_CONNECTED"] * 3
    assert _macs(d) == 20 * 32 + 2 * 32 * 32
    c = _built("conv_sweep", zoo_cache,
               params={"channels": 8, "kernel": 5, "depth": 2, "input_hw": 12, "in_channels": 3,
                       "stride": 2})
    assert _ops(c) == ["CONV_2D"] * 2
    assert _macs(c) == 6 * 6 * 8 * 25 * 3 + 3 * 3 * 8 * 25 * 8
    w = _built("depthwise_sweep", zoo_cache,
               params={"channels": 4, "kernel": 3, "depth": 2, "input_hw": 8,
                       "depth_multiplier": 2})
    assert _ops(w) == ["DEPTHWISE_CONV_2D"] * 2
    assert _macs(w) == 8 * 8 * 8 * 9 + 8 * 8 * 16 * 9
    le = _built("lenet", zoo_cache, params={"input_hw": 32, "in_channels": 3, "pool": "avg"})
    assert collections.Counter(_ops(le))["AVERAGE_POOL_2D"] == 2


# ------------------------------------------------------------------ cache behaviour


def test_cache_hit_returns_same_file_without_rebuilding(
    zoo_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = zoo.build_tflite("ds_cnn_kws", cache_dir=zoo_cache)
    data, mtime = first.read_bytes(), first.stat().st_mtime_ns

    def no_rebuild(*a: Any, **k: Any) -> None:
        raise AssertionError("cache hit expected, but the model was rebuilt")

    monkeypatch.setattr(zoo, "build_keras", no_rebuild)
    t0 = time.perf_counter()
    second = zoo.build_tflite("ds_cnn_kws", cache_dir=zoo_cache, params={"filters": 64})
    assert time.perf_counter() - t0 < 0.5
    assert second == first
    assert second.read_bytes() == data and second.stat().st_mtime_ns == mtime


def test_cache_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TINYMETER_CACHE", str(tmp_path))
    path = zoo.build_tflite("dense_sweep", params={"width": 8})
    assert path.parent == tmp_path / "models"
    assert path.is_file()


def test_builds_are_deterministic(zoo_cache: Path, tmp_path: Path) -> None:
    """Same recipe → same bytes, even after other models were built in this process."""
    a = _built("lenet", zoo_cache)  # has an auto-named-prone Lambda (flatten) layer
    _built("dense_sweep", zoo_cache, params={"width": 16, "depth": 2})
    b = _built("lenet", tmp_path)
    assert a == b
    c = _built("lenet", tmp_path, seed=1)
    assert c != a


def test_build_is_deterministic_across_processes(zoo_cache: Path, tmp_path: Path) -> None:
    params = {"width": 16, "depth": 2}
    ours = _built("dense_sweep", zoo_cache, params=params)
    code = (
        "import sys; from tinymeter.models import zoo; "
        f"p = zoo.build_tflite('dense_sweep', params={params!r}, cache_dir=sys.argv[1]); "
        "print(p)"
    )
    env = dict(os.environ, PYTHONHASHSEED="123")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True,
                         capture_output=True, text=True, timeout=120, env=env)
    assert Path(out.stdout.strip().splitlines()[-1]).read_bytes() == ours


def test_interrupted_build_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*a: Any, **k: Any) -> bytes:
        raise KeyboardInterrupt

    monkeypatch.setattr(zoo._convert, "convert_keras", boom)
    with pytest.raises(KeyboardInterrupt):
        zoo.build_tflite("dense_sweep", params={"width": 4}, cache_dir=tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


# ---------------------------------------------------------------------- converter


def test_convert_with_given_representative_data() -> None:
    from tinymeter.models import convert

    model = zoo.build_keras("dense_sweep", {"width": 8})
    data = np.random.default_rng(0).uniform(-1, 1, (10, 8)).astype(np.float32)
    a = convert.convert_int8(model, representative_data=data)
    b = convert.convert_int8(model, representative_data=[data])
    assert a == b
    assert _ops(a) == ["FULLY_CONNECTED"]
    with pytest.raises(ConfigError, match="expected"):
        convert.convert_int8(model, representative_data=np.zeros((4, 9), np.float32))
    with pytest.raises(ConfigError, match="2 arrays but the model has 1 inputs"):
        convert.convert_int8(model, representative_data=[data, data])
    with pytest.raises(ConfigError, match="unknown quantize"):
        convert.convert_keras(model, quantize="int16")  # type: ignore[arg-type]
