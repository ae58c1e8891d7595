"""Lowering of SVDF, int8 and float32 (see base.py for the contract).

TFLM's ``svdf_common.cc``: the activation state (a variable tensor, kept in the
arena for the whole run so it carries over between inferences like TFLM's) is
shifted left by one, the feature matmul writes the newest column, the time
weights reduce each filter's memory, ranks are summed into units with the bias,
and the result is requantized (int8) or passed through the fused activation
(float). The int8 path's two multipliers are TFLM's float32 scale expressions
widened to double; its activation state may be int16 (zero point 0, the usual
case) or int8. The device walks TFLM's loops without the two int32 scratch
buffers: each unit's sum is formed directly, in TFLM's order for float.

One restriction: TFLM resets an int8 state to its zero point; the firmware's
arena starts zeroed and has no per-op init, so an int8 state needs zero point 0
(int16 and float states start at 0 in TFLM too).
"""

from __future__ import annotations

import logging

from tinymeter.firmware import quant
from tinymeter.firmware.lower.base import (
    CValue,
    Layer,
    LowerContext,
    Lowering,
    fail,
    fused_activation,
    naming_operator,
    per_tensor_qparams,
    require_types,
)
from tinymeter.models.tflite import Operator, TensorType

log = logging.getLogger(__name__)

_ACTS = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}


def _geometry(ctx: LowerContext, op: Operator, index: int) -> tuple[list[int], dict[str, int]]:
    if len(op.inputs) != 5 or len(op.outputs) != 1 or min(op.inputs[:3]) < 0 or op.inputs[4] < 0:
        raise fail(op, index, "expects 5 inputs (input, weights_feature, weights_time, bias, "
                              "state) and 1 output")
    x, wf, wt, b, st = op.inputs
    y = op.outputs[0]
    rank = int(op.options.get("rank", 0))
    xs, fs, ts, ss, ys = (tuple(ctx.tensor(t).shape) for t in (x, wf, wt, st, y))
    if len(xs) != 2 or len(fs) != 2 or len(ts) != 2 or rank < 1:
        raise fail(op, index, f"input {xs}, weights {fs}/{ts} must be 2-D and rank >= 1")
    batch, n_input = xs
    n_filter, memory = fs[0], ts[1]
    if fs[1] != n_input or ts[0] != n_filter or n_filter % rank:
        raise fail(op, index, f"weights_feature {fs} / weights_time {ts} do not match input "
                              f"{xs} and rank {rank}")
    units = n_filter // rank
    if ys != (batch, units) or ss != (batch, memory * n_filter):
        raise fail(op, index, f"output {ys} / state {ss} do not match ({batch}, {units}) / "
                              f"({batch}, {memory * n_filter})")
    if not ctx.tensor(st).is_variable:
        raise fail(op, index, f"state tensor {st} must be a variable tensor")
    if b >= 0 and ctx.tensor(b).numel != units:
        raise fail(op, index, f"bias has {ctx.tensor(b).numel} elements for {units} units")
    geo = {"batch": batch, "input_size": n_input, "filters": n_filter,
           "memory": memory, "rank": rank, "units": units}
    return [x, wf, wt, b, st, y], geo


def lower_svdf(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """SVDF int8 -> ``tm_svdf_s8`` (int16 or int8 state, int16 or int8 time weights)."""
    (x, wf, wt, b, st, y), geo = _geometry(ctx, op, index)
    require_types(ctx, op, index, (TensorType.INT8,), [x, wf, y])
    require_types(ctx, op, index, (TensorType.INT8, TensorType.INT16), [wt, st])
    if ctx.tensor(wt).dtype != ctx.tensor(st).dtype:
        raise fail(op, index, "weights_time and state must have the same type")
    if b < 0:
        raise fail(op, index, "int8 SVDF needs a bias (TFLM's Prepare reads its scale)")
    require_types(ctx, op, index, (TensorType.INT32,), [b])
    s_in, z_in = per_tensor_qparams(ctx, op, index, x)
    s_f, _ = per_tensor_qparams(ctx, op, index, wf)
    s_t, _ = per_tensor_qparams(ctx, op, index, wt)
    s_st, z_st = per_tensor_qparams(ctx, op, index, st)
    s_o, z_o = per_tensor_qparams(ctx, op, index, y)
    if z_st != 0:
        raise fail(op, index, f"state zero point {z_st}: TFLM starts the state at its zero "
                              "point, the firmware's state starts at 0 (only 0 is supported)")
    f32 = quant.f32
    with naming_operator(op, index):
        m1, sh1 = quant.quantize_multiplier(float(f32(f32(s_in) * f32(s_f)) / f32(s_st)))
        m2, sh2 = quant.quantize_multiplier(float(f32(f32(s_st) * f32(s_t)) / f32(s_o)))
    wide = ctx.tensor(st).dtype == TensorType.INT16
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "weights_feature": ctx.ptr(wf),
        "weights_time": f"(const void *){ctx.ptr(wt)}", "bias": ctx.ptr(b),
        "state": f"(void *){ctx.ptr(st)}", "output": ctx.ptr(y), "state_int16": int(wide),
        "input_zero_point": z_in, "state_zero_point": z_st, "output_zero_point": z_o,
        "multiplier_1": m1, "shift_1": sh1, "multiplier_2": m2, "shift_2": sh2, **geo,
    }
    macs = geo["batch"] * geo["filters"] * (geo["input_size"] + geo["memory"])
    return Layer(index, op.opcode, "tm_svdf_s8", "tm_svdf_s8_params", params, macs,
                 {"rank": geo["rank"], "memory": geo["memory"],
                  "state": "int16" if wide else "int8"})


def lower_svdf_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """SVDF float -> ``tm_svdf_f32``."""
    (x, wf, wt, b, st, y), geo = _geometry(ctx, op, index)
    require_types(ctx, op, index, (TensorType.FLOAT32,), [x, wf, wt, st, y])
    if b >= 0:
        require_types(ctx, op, index, (TensorType.FLOAT32,), [b])
    act = fused_activation(op)
    if act not in _ACTS:
        raise fail(op, index, f"fused activation {act} is not supported")
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "weights_feature": ctx.ptr(wf), "weights_time": ctx.ptr(wt),
        "bias": ctx.ptr(b) if b >= 0 else 0, "state": ctx.ptr(st), "output": ctx.ptr(y),
        "activation": _ACTS[act], **geo,
    }
    macs = geo["batch"] * geo["filters"] * (geo["input_size"] + geo["memory"])
    return Layer(index, op.opcode, "tm_svdf_f32", "tm_svdf_f32_params", params, macs,
                 {"rank": geo["rank"], "memory": geo["memory"], "dtype": "float32"})


LOWERINGS: dict[str, Lowering] = {"SVDF": lower_svdf}
FLOAT_LOWERINGS: dict[str, Lowering] = {"SVDF": lower_svdf_f32}
