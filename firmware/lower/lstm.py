"""Lowering of UNIDIRECTIONAL_SEQUENCE_LSTM, int8, 16x8 and float32 (see base.py).

TFLM's kernel (``unidirectional_sequence_lstm.cc`` + ``lstm_eval``) runs the
standard Keras LSTM only: 24 inputs with the input gate present and no peephole,
projection or layer-norm tensors (Prepare rejects those, so does this lowering),
state tensors marked variable. Its integer path does not read the converter's
intermediate tensors: every gate's pre-activation is int16 with scale 2^-12 and
its output 2^-15 (Q3.12 -> Q0.15), the cell state keeps its own tensor's scale
(power of two, rounded by ``CheckedLog2``), and the fully connected, multiply and
tanh parameters follow from those fixed scales -- computed here exactly as
``PrepareGateParametersInteger`` / ``CreateInterGateMulParams`` /
``CreateLstmCellStateInfo`` do. The 16x8 variant (int16 input, hidden state and
output, int64 biases) differs only in its int64 FC sums and TFLM's 64-bit
requantization. Per-channel weights are rejected: TFLM's LSTM reads only the
per-tensor multiplier.

The device walks batch rows then time steps (rows are independent, so the values
equal TFLM's time-major batch-wide steps) with four gate buffers of one row in the
arena's scratch region. Hidden and cell state stay in the arena for the run and
carry over between inferences, as in TFLM; the int8 hidden state starts at its
zero point (TFLM's variable reset), set by the kernel on its first call. The
host also folds each gate row's sum with the zero-point offsets (and the bias)
into ``in_sums`` / ``rec_sums``, which the DSP kernel starts its SMLAD sums from.
"""

from __future__ import annotations

import logging

import numpy as np

from tinymeter.firmware import quant
from tinymeter.firmware.lower.base import (
    CValue,
    Layer,
    LowerContext,
    Lowering,
    fail,
    naming_operator,
    per_tensor_qparams,
    require_types,
)
from tinymeter.models.tflite import Model, Operator, TensorType

log = logging.getLogger(__name__)

#: Operand slots (lstm_shared.h): input, 4 input weights, 4 recurrent weights,
#: 3 peepholes, 4 gate biases, projection weights and bias, hidden and cell state,
#: 4 layer-norm coefficients.
N_INPUTS = 24
W_IN, W_REC, BIAS = (1, 2, 3, 4), (5, 6, 7, 8), (12, 13, 14, 15)
PEEPHOLE, PROJECTION, LAYER_NORM = (9, 10, 11), (16, 17), (20, 21, 22, 23)
HIDDEN, CELL = 18, 19
#: Gate pre-activation and gate output scales TFLM fixes (Q3.12 and Q0.15).
#: Why a recurrent model may arrive as a loop instead of the fused op.
WHILE_HINT = ("a WHILE loop is what the converter makes of a Keras 3 LSTM (and of any GRU or "
              "RNN layer); build LSTMs with tf_keras (Keras 2), whose LSTM layer it fuses into "
              "UNIDIRECTIONAL_SEQUENCE_LSTM")


def while_hint(model: Model) -> str:
    """``"; " + WHILE_HINT`` if the model's main graph has a WHILE operator, else ""."""
    return f"; {WHILE_HINT}" if any(op.opcode == "WHILE" for op in model.main.operators) else ""


GATE_INPUT_SCALE = 2.0**-12
GATE_OUTPUT_SCALE = 2.0**-15


def _geometry(ctx: LowerContext, op: Operator, index: int) -> dict[str, int]:
    """Operand checks of TFLM's Prepare; the size fields of the kernel's params."""
    if len(op.inputs) != N_INPUTS or len(op.outputs) != 1:
        raise fail(op, index, f"expects {N_INPUTS} inputs and 1 output, has {len(op.inputs)} "
                              f"and {len(op.outputs)}")
    ins = op.inputs
    for slots, what in ((PEEPHOLE, "peephole"), (PROJECTION, "projection"),
                        (LAYER_NORM, "layer-norm")):
        if any(ins[k] >= 0 for k in slots):
            raise fail(op, index, f"{what} tensors are not supported (TFLM's LSTM kernel runs "
                                  "the standard LSTM only)")
    missing = [k for k in (0, *W_IN, *W_REC, *BIAS, HIDDEN, CELL) if ins[k] < 0]
    if missing:
        raise fail(op, index, f"operand(s) {missing} missing (TFLM needs every gate, CIFG is "
                              "not supported)")
    for k in (HIDDEN, CELL):
        t = ctx.tensor(ins[k])
        if not t.is_variable:
            raise fail(op, index, f"state tensor {ins[k]} ({t.name}) must be a variable tensor")
        if t.data is not None:
            raise fail(op, index, f"state tensor {ins[k]} ({t.name}) has a constant buffer; "
                                  "only arena-resident state is supported")
    time_major = bool(op.options.get("time_major", False))
    xs, ys = tuple(ctx.tensor(ins[0]).shape), tuple(ctx.tensor(op.outputs[0]).shape)
    hs = tuple(ctx.tensor(ins[HIDDEN]).shape)
    if len(xs) != 3 or len(ys) != 3 or len(hs) != 2:
        raise fail(op, index, f"input {xs} and output {ys} must be 3-D, hidden state {hs} 2-D")
    batch, time = (xs[1], xs[0]) if time_major else (xs[0], xs[1])
    n_in, n_state = xs[2], hs[1]
    if ys != (xs[0], xs[1], n_state):
        raise fail(op, index, f"output shape {ys} does not match input {xs} and {n_state} units")
    for k in W_IN + W_REC:
        want = (n_state, n_in if k in W_IN else n_state)
        if tuple(ctx.tensor(ins[k]).shape) != want:
            raise fail(op, index, f"weights {ins[k]} have shape {tuple(ctx.tensor(ins[k]).shape)}, "
                                  f"expected {want}")
        if ctx.tensor(ins[k]).data is None:
            raise fail(op, index, f"weights {ins[k]} must be constant")
    for k in BIAS:
        if tuple(ctx.tensor(ins[k]).shape) != (n_state,):
            raise fail(op, index, f"bias {ins[k]} must have shape ({n_state},)")
    for k in (HIDDEN, CELL):
        if ctx.tensor(ins[k]).numel != batch * n_state:
            raise fail(op, index, f"state tensor {ins[k]} must hold {batch} x {n_state} values")
    act = str(op.options.get("fused_activation_function", "TANH"))
    if act != "TANH":
        # the schema cannot say SIGMOID; TFLM asserts on anything but TANH
        raise fail(op, index, f"cell gate activation {act} is not supported (TFLM: TANH)")
    if min(batch, time, n_in, n_state) < 1:
        raise fail(op, index, f"empty dimension in input {xs} / hidden state {hs}")
    return {"batch": batch, "time": time, "input_size": n_in, "state_size": n_state,
            "time_major": int(time_major)}


def _layer(op: Operator, index: int, kernel: str, ptype: str, params: dict[str, CValue],
           geo: dict[str, int], dtype: str) -> Layer:
    n_in, n_state = geo["input_size"], geo["state_size"]
    macs = geo["batch"] * geo["time"] * 4 * n_state * (n_in + n_state)
    return Layer(index, op.opcode, kernel, ptype, params, macs,
                 {"units": n_state, "time_steps": geo["time"],
                  "time_major": bool(geo["time_major"]), "dtype": dtype})


def _weights(ctx: LowerContext, t: int) -> np.ndarray:
    """int8 weights [rows][cols] as int64, for the host's row sums."""
    tensor = ctx.tensor(t)
    return np.frombuffer(tensor.data or b"", np.int8).astype(np.int64).reshape(tensor.shape)


def _wrap32(v: np.ndarray) -> list[int]:
    """int32 values as the device's wrapping int32 arithmetic forms them."""
    return [int(x) for x in ((v + 2**31) % 2**32 - 2**31)]


def _lower_integer(ctx: LowerContext, op: Operator, index: int, act16: bool) -> Layer:
    geo = _geometry(ctx, op, index)
    ins, y = op.inputs, op.outputs[0]
    act = TensorType.INT16 if act16 else TensorType.INT8
    require_types(ctx, op, index, (act,), [ins[0], ins[HIDDEN], y])
    require_types(ctx, op, index, (TensorType.INT8,), [ins[k] for k in W_IN + W_REC])
    # TFLM reads the 16x8 LSTM's biases as int64 and the int8 one's as int32
    require_types(ctx, op, index, (TensorType.INT64 if act16 else TensorType.INT32,),
                  [ins[k] for k in BIAS])
    require_types(ctx, op, index, (TensorType.INT16,), [ins[CELL]])
    s_x, z_x = per_tensor_qparams(ctx, op, index, ins[0])
    s_h, z_h = per_tensor_qparams(ctx, op, index, ins[HIDDEN])
    s_c, _ = per_tensor_qparams(ctx, op, index, ins[CELL])
    f32 = quant.f32
    gate_in = float(f32(GATE_INPUT_SCALE))
    fields: dict[str, list[int]] = {k: [] for k in ("in_mult", "in_shift", "rec_mult", "rec_shift",
                                                     "in_w_offset", "rec_w_offset")}
    with naming_operator(op, index):
        for g in range(4):
            for side, k, s_src in (("in", W_IN[g], s_x), ("rec", W_REC[g], s_h)):
                s_w, z_w = per_tensor_qparams(ctx, op, index, ins[k])
                m, sh = quant.conv_per_tensor_multiplier(s_src, s_w, gate_in)
                fields[f"{side}_mult"].append(m)
                fields[f"{side}_shift"].append(sh)
                fields[f"{side}_w_offset"].append(-z_w)
        # CreateInterGateMulParams: double(s1) * double(s2) / double(out)
        g_out, c, h = float(f32(GATE_OUTPUT_SCALE)), float(f32(s_c)), float(f32(s_h))
        forget = quant.quantize_multiplier(g_out * c / c)
        update = quant.quantize_multiplier(g_out * g_out / c)
        hidden = quant.quantize_multiplier(g_out * g_out / h)
    # CreateLstmCellStateInfo + lstm_internal::Tanh's input shift
    power, _ = quant.checked_log2(s_c)
    left = 15 + power - 3
    if left > 14:
        raise fail(op, index, f"cell state scale {s_c} is too coarse for TFLM's int16 tanh")
    tanh_mult, tanh_shift = (3 << left, 0) if left >= 0 else (3, -left)
    clip = float(f32(float(op.options.get("cell_clip", 0.0))))
    q_clip = int(min(max(clip / float(f32(s_c)), -32768.0), 32767.0)) if clip > 0 else 0
    n = geo["state_size"]
    in_sums: list[CValue] = [0] * 4
    rec_sums: list[CValue] = [0] * 4
    if not act16:  # the int8 DSP kernel's row sums
        for g in range(4):
            w_in = _weights(ctx, ins[W_IN[g]])
            bias = np.frombuffer(ctx.tensor(ins[BIAS[g]]).data or b"", np.int32).astype(np.int64)
            in_sums[g] = ctx.const_array("int32_t", _wrap32(bias - z_x * w_in.sum(axis=1)),
                                         f"lstm{index}_in_sums{g}")
            rec = _weights(ctx, ins[W_REC[g]]).sum(axis=1)
            rec_sums[g] = ctx.const_array("int32_t", _wrap32(-z_h * rec), f"lstm{index}_rec_sums{g}")
    params: dict[str, CValue] = {
        "input": ctx.ptr(ins[0]), "output": ctx.ptr(y), "hidden": ctx.ptr(ins[HIDDEN]),
        "cell": ctx.ptr(ins[CELL]), "ready": ctx.ram_array("uint8_t", 1, f"lstm{index}_ready"),
        "scratch": ctx.scratch(4 * n * 2, "int16_t"), "act16": int(act16),
        "w_in": [ctx.ptr(ins[k]) for k in W_IN], "w_rec": [ctx.ptr(ins[k]) for k in W_REC],
        "bias": [ctx.ptr(ins[k]) for k in BIAS], "in_sums": in_sums, "rec_sums": rec_sums,
        **fields, "input_offset": -z_x, "hidden_offset": -z_h, "hidden_zero_point": z_h,
        "forget_mult": forget[0], "forget_shift": forget[1],
        "update_mult": update[0], "update_shift": update[1],
        "hidden_mult": hidden[0], "hidden_shift": hidden[1],
        "cell_clip": q_clip, "clip": int(clip > 0), "tanh_mult": tanh_mult,
        "tanh_shift": tanh_shift, **geo,
    }
    kernel = "tm_lstm_s16" if act16 else "tm_lstm_s8"
    return _layer(op, index, kernel, "tm_lstm_s8_params", params, geo,
                  "int16x8" if act16 else "int8")


def lower_lstm(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """UNIDIRECTIONAL_SEQUENCE_LSTM int8 (int16 cell) -> ``tm_lstm_s8``."""
    return _lower_integer(ctx, op, index, act16=False)


def lower_lstm_s16(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """UNIDIRECTIONAL_SEQUENCE_LSTM 16x8 (int16 activations, int64 bias) -> ``tm_lstm_s16``."""
    return _lower_integer(ctx, op, index, act16=True)


def lower_lstm_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """UNIDIRECTIONAL_SEQUENCE_LSTM float32 -> ``tm_lstm_f32``."""
    geo = _geometry(ctx, op, index)
    ins, y = op.inputs, op.outputs[0]
    operands = [ins[k] for k in (0, *W_IN, *W_REC, *BIAS, HIDDEN, CELL)]
    require_types(ctx, op, index, (TensorType.FLOAT32,), [*operands, y])
    n = geo["state_size"]
    params: dict[str, CValue] = {
        "input": ctx.ptr(ins[0]), "output": ctx.ptr(y), "hidden": ctx.ptr(ins[HIDDEN]),
        "cell": ctx.ptr(ins[CELL]), "scratch": ctx.scratch(4 * n * 4, "float"),
        "w_in": [ctx.ptr(ins[k]) for k in W_IN], "w_rec": [ctx.ptr(ins[k]) for k in W_REC],
        "bias": [ctx.ptr(ins[k]) for k in BIAS],
        "cell_clip": float(quant.f32(float(op.options.get("cell_clip", 0.0)))), **geo,
    }
    return _layer(op, index, "tm_lstm_f32", "tm_lstm_f32_params", params, geo, "float32")


LOWERINGS: dict[str, Lowering] = {"UNIDIRECTIONAL_SEQUENCE_LSTM": lower_lstm}
FLOAT_LOWERINGS: dict[str, Lowering] = {"UNIDIRECTIONAL_SEQUENCE_LSTM": lower_lstm_f32}
INT16_LOWERINGS: dict[str, Lowering] = {"UNIDIRECTIONAL_SEQUENCE_LSTM": lower_lstm_s16}
