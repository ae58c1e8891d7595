"""LSTM keyword spotter for the zoo, written directly as a .tflite (no Keras).

Why not a Keras model like the rest of the zoo: Keras 3's ``LSTM`` layer converts to
a WHILE loop instead of TFLite's fused UNIDIRECTIONAL_SEQUENCE_LSTM (the Keras 2
``api_implements`` hook the converter fuses on is gone), and int8 calibration of
that loop crashes the installed converter in-process. So this module builds the
graph a converted Keras ``LSTM(units) -> Dense(classes, softmax)`` keyword model
has -- UNIDIRECTIONAL_SEQUENCE_LSTM (batch-major, TANH cell gate, no clipping),
STRIDED_SLICE of the last time step, FULLY_CONNECTED, SOFTMAX -- from seeded
random weights, and quantizes it the way the converter does:

* weights int8 per-tensor symmetric, gate biases int32 at input x weight scale;
* input, hidden state / output and logits int8 asymmetric from the ranges a float
  forward pass over a seeded calibration set reaches (input frames are
  standardised MFCC-like features, normal(0, 1));
* the int16 cell state at the power-of-two scale that covers its range;
* SOFTMAX output 1/256, zero point -128.

The weights are untrained (Keras' default initialisers: Glorot-uniform input
kernels, orthogonal recurrent kernels, forget-gate bias 1), which is what latency,
memory and energy depend on; the outputs mean nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tinymeter.core.errors import ConfigError
from tinymeter.models.tflite import (
    Model,
    Operator,
    Quantization,
    Subgraph,
    Tensor,
    TensorType,
    default_options,
    serialize_tflite,
)

#: Gate order of TFLite's LSTM operands: input, forget, cell, output.
GATES = 4
_CALIBRATION = 16


@dataclass
class FloatLstmKws:
    """Float weights of the model (gate axis first, TFLite's gate order)."""

    w_in: np.ndarray    # (4, units, features)
    w_rec: np.ndarray   # (4, units, units)
    bias: np.ndarray    # (4, units)
    fc_w: np.ndarray    # (classes, units)
    fc_b: np.ndarray    # (classes,)


def random_weights(frames: int, features: int, units: int, classes: int,
                   seed: int) -> FloatLstmKws:
    """Keras' default LSTM / Dense initialisation, seeded."""
    del frames  # the weights do not depend on the sequence length
    rng = np.random.default_rng(seed)
    lim = math.sqrt(6.0 / (features + 4 * units))
    w_in = rng.uniform(-lim, lim, (GATES, units, features))
    w_rec = np.stack([np.linalg.qr(rng.standard_normal((units, units)))[0] for _ in range(GATES)])
    bias = np.zeros((GATES, units))
    bias[1] = 1.0  # unit_forget_bias
    fc_lim = math.sqrt(6.0 / (units + classes))
    fc_w = rng.uniform(-fc_lim, fc_lim, (classes, units))
    fc_b = rng.uniform(-0.1, 0.1, classes)
    return FloatLstmKws(w_in, w_rec, bias, fc_w, fc_b)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def forward(w: FloatLstmKws, x: np.ndarray) -> dict[str, np.ndarray]:
    """Float64 forward pass over a batch (N, frames, features): every hidden and cell
    value (N, frames, units) and the logits (N, classes), for calibration."""
    n, frames, _ = x.shape
    units = w.w_rec.shape[1]
    h, c = np.zeros((n, units)), np.zeros((n, units))
    hs, cs = [], []
    for t in range(frames):
        pre = [x[:, t] @ w.w_in[g].T + h @ w.w_rec[g].T + w.bias[g] for g in range(GATES)]
        i, f, g_, o = _sigmoid(pre[0]), _sigmoid(pre[1]), np.tanh(pre[2]), _sigmoid(pre[3])
        c = f * c + i * g_
        h = o * np.tanh(c)
        hs.append(h)
        cs.append(c)
    return {"hidden": np.stack(hs, 1), "cell": np.stack(cs, 1),
            "logits": hs[-1] @ w.fc_w.T + w.fc_b}


def _asymmetric(lo: float, hi: float) -> tuple[float, int]:
    """int8 (scale, zero point) of the range [lo, hi] widened to contain 0."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = float(np.float32(max(hi - lo, 1e-6) / 255.0))
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return scale, zp


def _symmetric_int8(w: np.ndarray) -> tuple[np.ndarray, float]:
    scale = float(np.float32(max(float(np.abs(w).max()), 1e-6) / 127.0))
    return np.clip(np.round(w / scale), -127, 127).astype(np.int8), scale


@dataclass
class _Graph:
    """Tensors and operators of one subgraph; constants get buffers 1, 2, ..."""

    tensors: list[Tensor] = field(default_factory=list)
    operators: list[Operator] = field(default_factory=list)
    buffers: int = 0

    def add(self, name: str, dtype: TensorType, shape: tuple[int, ...],
            quant: tuple[float, int] | None = None, data: np.ndarray | None = None,
            variable: bool = False) -> int:
        buffer = 0
        raw = None
        if data is not None:
            self.buffers += 1
            buffer = self.buffers
            raw = np.ascontiguousarray(data, dtype=dtype.numpy_dtype).tobytes()
        q = None if quant is None else Quantization(scale=(float(np.float32(quant[0])),),
                                                     zero_point=(int(quant[1]),))
        self.tensors.append(Tensor(name=name, dtype=dtype, shape=shape, buffer=buffer, data=raw,
                                   quantization=q, is_variable=variable))
        return len(self.tensors) - 1

    def op(self, opcode: str, inputs: list[int], outputs: list[int], version: int = 1,
           **options: object) -> None:
        self.operators.append(Operator(opcode=opcode, version=version, inputs=tuple(inputs),
                                       outputs=tuple(outputs),
                                       options={**default_options(opcode), **options}))


def lstm_kws_tflite(frames: int, features: int, units: int, classes: int, quantize: str,
                    seed: int) -> bytes:
    """The .tflite bytes of the LSTM keyword spotter (``quantize``: int8 or float32)."""
    if quantize not in ("int8", "float32"):
        raise ConfigError(f"lstm_kws: unknown quantize {quantize!r}; valid: int8, float32")
    for key, value in (("frames", frames), ("features", features), ("units", units),
                       ("classes", classes)):
        if value < 1:
            raise ConfigError(f"zoo model 'lstm_kws' parameter {key!r} must be >= 1")
    w = random_weights(frames, features, units, classes, seed)
    q8 = quantize == "int8"
    g = _Graph()
    i8, i16, i32, f32 = TensorType.INT8, TensorType.INT16, TensorType.INT32, TensorType.FLOAT32
    act = i8 if q8 else f32
    if q8:
        cal_x = np.random.default_rng(seed + 1).standard_normal((_CALIBRATION, frames, features))
        ranges = forward(w, cal_x)
        qx = _asymmetric(float(cal_x.min()), float(cal_x.max()))
        qh = _asymmetric(float(ranges["hidden"].min()), float(ranges["hidden"].max()))
        qlogit = _asymmetric(float(ranges["logits"].min()), float(ranges["logits"].max()))
        c_max = max(float(np.abs(ranges["cell"]).max()), 1e-6)
        qc = (2.0 ** math.ceil(math.log2(c_max / 32767.0)), 0)
    x = g.add("input", act, (1, frames, features), qx if q8 else None)
    lstm_in: list[int] = [x]
    in_scales: list[float] = []  # input weights' scales: the gate biases' scale factor
    for kind, arrays in (("input_weights", w.w_in), ("recurrent_weights", w.w_rec)):
        for k in range(GATES):
            if q8:
                data, scale = _symmetric_int8(arrays[k])
                in_scales.append(scale)
                lstm_in.append(g.add(f"lstm/{kind}_{k}", i8, data.shape, (scale, 0), data))
            else:
                lstm_in.append(g.add(f"lstm/{kind}_{k}", f32, arrays[k].shape, None, arrays[k]))
    lstm_in += [-1, -1, -1]  # no peephole
    for k in range(GATES):
        if q8:
            s_b = float(np.float32(qx[0]) * np.float32(in_scales[k]))
            data = np.round(w.bias[k] / s_b).astype(np.int32)
            lstm_in.append(g.add(f"lstm/bias_{k}", i32, (units,), (s_b, 0), data))
        else:
            lstm_in.append(g.add(f"lstm/bias_{k}", f32, (units,), None, w.bias[k]))
    lstm_in += [-1, -1]  # no projection
    lstm_in.append(g.add("lstm/hidden_state", act, (1, units), qh if q8 else None, variable=True))
    lstm_in.append(g.add("lstm/cell_state", i16 if q8 else f32, (1, units), qc if q8 else None,
                         variable=True))
    lstm_in += [-1, -1, -1, -1]  # no layer norm
    seq = g.add("lstm/sequence", act, (1, frames, units), qh if q8 else None)
    g.op("UNIDIRECTIONAL_SEQUENCE_LSTM", lstm_in, [seq], version=3 if q8 else 1,
         fused_activation_function="TANH", cell_clip=0.0, proj_clip=0.0, time_major=False)
    begin = g.add("slice/begin", i32, (3,), None, np.array([0, frames - 1, 0]))
    end = g.add("slice/end", i32, (3,), None, np.array([1, frames, units]))
    strides = g.add("slice/strides", i32, (3,), None, np.array([1, 1, 1]))
    last = g.add("lstm/last_step", act, (1, units), qh if q8 else None)
    g.op("STRIDED_SLICE", [seq, begin, end, strides], [last], version=2 if q8 else 1,
         shrink_axis_mask=2)
    if q8:
        fc_data, s_fw = _symmetric_int8(w.fc_w)
        fc_w = g.add("dense/weights", i8, fc_data.shape, (s_fw, 0), fc_data)
        s_fb = float(np.float32(qh[0]) * np.float32(s_fw))
        fc_b = g.add("dense/bias", i32, (classes,), (s_fb, 0),
                     np.round(w.fc_b / s_fb).astype(np.int32))
    else:
        fc_w = g.add("dense/weights", f32, w.fc_w.shape, None, w.fc_w)
        fc_b = g.add("dense/bias", f32, (classes,), None, w.fc_b)
    logits = g.add("dense/logits", act, (1, classes), qlogit if q8 else None)
    g.op("FULLY_CONNECTED", [last, fc_w, fc_b], [logits], version=4 if q8 else 1)
    probs = g.add("probabilities", act, (1, classes), (1 / 256, -128) if q8 else None)
    g.op("SOFTMAX", [logits], [probs], version=2 if q8 else 1, beta=1.0)
    sg = Subgraph(name="main", tensors=tuple(g.tensors), inputs=(x,), outputs=(probs,),
                  operators=tuple(g.operators))
    return serialize_tflite(Model(version=3, description=f"tinymeter zoo lstm_kws ({quantize})",
                                  subgraphs=(sg,)))
