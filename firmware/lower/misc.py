"""Lowerings of the misc op family (see base.py for the contract).

QUANTIZE (float -> int8, int8 -> int8), DEQUANTIZE (int8 -> float), CONCATENATION,
PAD / PADV2 (any supported element type), and the int8 MEAN, MUL, LOGISTIC, TANH
and HARD_SWISH. Parameters are derived as TFLM's Prepare derives them
(``quantize_common.cc``, ``dequantize_common.cc``, ``concatenation.cc``,
``pad_common.cc``, ``reduce_common.cc``, ``mul_common.cc``, ``logistic_common.cc``,
``tanh.cc``, ``hard_swish_common.cc``); the float versions of the element-wise
ops live in float32.py. Where TFLM rejects a model at Prepare this module
rejects it too, with an error naming the operator and the defect (e.g. int8
CONCATENATION whose inputs are quantized differently from the output: TFLM does
not requantize, it refuses).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tinymeter.firmware import quant
from tinymeter.firmware.lower.base import (
    CValue,
    Layer,
    LowerContext,
    Lowering,
    activation_range_quantized,
    fail,
    fused_activation,
    naming_operator,
    per_tensor_qparams,
    require_types,
    single_output_operands,
)
from tinymeter.firmware.lower.elementwise import operand_broadcast_plan
from tinymeter.models.tflite import Operator, TensorType

log = logging.getLogger(__name__)

_INT8 = (TensorType.INT8,)
_F32 = (TensorType.FLOAT32,)
_I32 = (TensorType.INT32,)
#: Element types the byte-moving kernels (CONCATENATION, PAD) accept.
_MOVABLE = (TensorType.INT8, TensorType.INT16, TensorType.FLOAT32, TensorType.INT32)
_QUANT_MOVABLE = (TensorType.INT8, TensorType.INT16)

#: TFLM limits: concatenation kMaxInputNum and 4-D shapes, PAD 5-D, MEAN 5-D.
CONCAT_MAX_INPUTS = 10
CONCAT_MAX_DIMS = 4
PAD_MAX_DIMS = 5
MEAN_MAX_DIMS = 5
#: TFLM's int8 MUL broadcasts through BroadcastMul4DSlow (NdArrayDesc<4>).
MUL_S8_MAX_DIMS = 4


def _same_numel(ctx: LowerContext, op: Operator, index: int, x: int, y: int) -> int:
    n = ctx.tensor(x).numel
    if ctx.tensor(y).numel != n:
        raise fail(op, index, f"input has {n} elements, output {ctx.tensor(y).numel}")
    return n


def _const_ints(ctx: LowerContext, op: Operator, index: int, t: int, what: str) -> np.ndarray:
    tensor = ctx.tensor(t)
    if tensor.data is None:
        raise fail(op, index, f"{what} tensor {t} must be constant")
    if tensor.dtype not in (TensorType.INT32, TensorType.INT64):
        raise fail(op, index, f"{what} tensor {t} must be int32 or int64, is {tensor.dtype.name}")
    return tensor.array().astype(np.int64)


# --------------------------------------------------------------------------- QUANTIZE


def lower_quantize(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """QUANTIZE float -> int8 (``tm_quantize_f32_s8``) or int8 -> int8 (``tm_requantize_s8``)."""
    (x,), y = single_output_operands(op, index, 1)
    require_types(ctx, op, index, _INT8, [y])
    require_types(ctx, op, index, (TensorType.FLOAT32, TensorType.INT8), [x])
    n = _same_numel(ctx, op, index, x, y)
    out_scale, out_zp = per_tensor_qparams(ctx, op, index, y)
    if ctx.tensor(x).dtype == TensorType.FLOAT32:
        params: dict[str, CValue] = {"input": ctx.ptr(x), "output": ctx.ptr(y), "size": n,
                                     "scale": float(quant.f32(out_scale)), "zero_point": out_zp}
        return Layer(index, op.opcode, "tm_quantize_f32_s8", "tm_quantize_f32_s8_params",
                     params, n, {"from": "float32", "to": "int8"})
    in_scale, in_zp = per_tensor_qparams(ctx, op, index, x)
    mult, shift = quant.requantize_multiplier(in_scale, out_scale)
    if shift > 30:
        raise fail(op, index, f"requantization scale {in_scale / out_scale} too large")
    params = {"input": ctx.ptr(x), "output": ctx.ptr(y), "size": n, "input_zero_point": in_zp,
              "output_zero_point": out_zp, "multiplier": mult, "shift": shift}
    return Layer(index, op.opcode, "tm_requantize_s8", "tm_requantize_s8_params", params, n,
                 {"from": "int8", "to": "int8"})


def lower_dequantize(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """DEQUANTIZE int8 -> float (``tm_dequantize_s8_f32``, reference_ops::Dequantize)."""
    (x,), y = single_output_operands(op, index, 1)
    require_types(ctx, op, index, _INT8, [x])
    require_types(ctx, op, index, _F32, [y])
    n = _same_numel(ctx, op, index, x, y)
    scale, zp = per_tensor_qparams(ctx, op, index, x)
    params: dict[str, CValue] = {"input": ctx.ptr(x), "output": ctx.ptr(y), "size": n,
                                 "scale": float(quant.f32(scale)), "zero_point": zp}
    return Layer(index, op.opcode, "tm_dequantize_s8_f32", "tm_dequantize_s8_f32_params",
                 params, n, {"from": "int8", "to": "float32"})


# --------------------------------------------------------------------------- data movement


def lower_concatenation(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """CONCATENATION -> ``tm_concat`` (slice copies, any element type).

    TFLM's Prepare requires int8 inputs to share the output's scale and zero point
    and then copies bytes; it never requantizes, so neither does this runtime.
    """
    if not 1 <= len(op.inputs) <= CONCAT_MAX_INPUTS or len(op.outputs) != 1 or \
            min(op.inputs) < 0:
        raise fail(op, index, f"expects 1..{CONCAT_MAX_INPUTS} inputs and 1 output")
    y = op.outputs[0]
    ty = ctx.tensor(y)
    require_types(ctx, op, index, _MOVABLE, [y])
    if fused_activation(op) != "NONE":
        raise fail(op, index, "fused activations are not supported (TFLM rejects them)")
    rank = len(ty.shape)
    if not 1 <= rank <= CONCAT_MAX_DIMS:
        raise fail(op, index, f"{rank}-D output; TFLM supports 1..{CONCAT_MAX_DIMS} dims")
    axis = int(op.options.get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise fail(op, index, f"axis {op.options.get('axis')} out of range for rank {rank}")
    if ty.dtype in _QUANT_MOVABLE:
        out_q = per_tensor_qparams(ctx, op, index, y)
    total = 0
    for t in op.inputs:
        tx = ctx.tensor(t)
        if tx.dtype != ty.dtype:
            raise fail(op, index, f"input {t} type {tx.dtype.name} differs from output type "
                                  f"{ty.dtype.name}")
        if len(tx.shape) != rank or any(tx.shape[d] != ty.shape[d] for d in range(rank)
                                        if d != axis):
            raise fail(op, index, f"input {t} shape {tuple(tx.shape)} does not match output "
                                  f"shape {tuple(ty.shape)} off axis {axis}")
        if ty.dtype in _QUANT_MOVABLE:
            in_q = per_tensor_qparams(ctx, op, index, t)
            if in_q[1] != out_q[1] or quant.f32(in_q[0]) != quant.f32(out_q[0]):
                raise fail(op, index, f"input {t} quantization (scale {in_q[0]}, zero point "
                                      f"{in_q[1]}) differs from the output's (scale "
                                      f"{out_q[0]}, zero point {out_q[1]}); TFLM rejects this")
        total += tx.shape[axis]
    if total != ty.shape[axis]:
        raise fail(op, index, f"inputs add up to {total} along axis {axis}, output has "
                              f"{ty.shape[axis]}")
    outer = math.prod(ty.shape[:axis])
    inner = math.prod(ty.shape[axis + 1:]) * ty.dtype.itemsize
    ptrs: list[CValue] = [f"(const void *){ctx.ptr(t)}" for t in op.inputs]
    sizes: list[CValue] = [ctx.tensor(t).shape[axis] * inner for t in op.inputs]
    pad = CONCAT_MAX_INPUTS - len(ptrs)
    params: dict[str, CValue] = {
        "inputs": ptrs + [0] * pad, "copy_bytes": sizes + [0] * pad,
        "num_inputs": len(ptrs), "outer": outer, "output": f"(void *){ctx.ptr(y)}",
    }
    return Layer(index, op.opcode, "tm_concat", "tm_concat_params", params, 0,
                 {"axis": axis, "inputs": len(ptrs), "dtype": ty.dtype.name.lower()})


def lower_pad(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """PAD / PADV2 -> ``tm_pad`` with a constant pad value.

    PAD pads int8 with the output zero point and float with 0; PADV2's constant
    must, for int8, share the output's quantization (TFLM's Prepare checks it).
    """
    n_in = 3 if op.opcode == "PADV2" and len(op.inputs) == 3 else 2
    ins, y = single_output_operands(op, index, n_in)
    x, paddings = ins[0], ins[1]
    tx, ty = ctx.tensor(x), ctx.tensor(y)
    require_types(ctx, op, index, _MOVABLE, [x])
    if tx.dtype != ty.dtype:
        raise fail(op, index, f"input type {tx.dtype.name} differs from output type "
                              f"{ty.dtype.name}")
    rank = len(tx.shape)
    if not 1 <= rank <= PAD_MAX_DIMS or len(ty.shape) != rank:
        raise fail(op, index, f"input rank {rank} / output rank {len(ty.shape)} unsupported "
                              f"(1..{PAD_MAX_DIMS}, equal)")
    pads = _const_ints(ctx, op, index, paddings, "paddings")
    if pads.shape != (rank, 2) or (pads < 0).any():
        raise fail(op, index, f"paddings {pads.tolist()} must be non-negative [{rank}, 2]")
    want = tuple(int(d + lo + hi) for d, (lo, hi) in zip(tx.shape, pads))
    if tuple(ty.shape) != want or any(d <= 0 for d in tx.shape):
        raise fail(op, index, f"output shape {tuple(ty.shape)} does not match the padded "
                              f"{want}")
    value = 0
    if tx.dtype in _QUANT_MOVABLE:
        _, out_zp = per_tensor_qparams(ctx, op, index, y)
        value = out_zp & (0xFF if tx.dtype == TensorType.INT8 else 0xFFFF)
    if n_in == 3:
        c = ctx.tensor(ins[2])
        if c.data is None or c.dtype != tx.dtype or c.numel != 1:
            raise fail(op, index, "constant_values must be a constant scalar of the input type")
        if tx.dtype in _QUANT_MOVABLE:
            cs, cz = per_tensor_qparams(ctx, op, index, ins[2])
            os_, oz = per_tensor_qparams(ctx, op, index, y)
            if cz != oz or quant.f32(cs) != quant.f32(os_):
                raise fail(op, index, "constant_values must share the output quantization")
        value = int.from_bytes(c.data[:tx.dtype.itemsize], "little")
    lead = PAD_MAX_DIMS - rank
    params: dict[str, CValue] = {
        "input": f"(const void *){ctx.ptr(x)}", "output": f"(void *){ctx.ptr(y)}",
        "elem_bytes": tx.dtype.itemsize,
        "out_dims": [1] * lead + list(want),
        "left": [0] * lead + [int(p) for p in pads[:, 0]],
        "right": [0] * lead + [int(p) for p in pads[:, 1]],
        "pad_value": f"{value}u",
    }
    return Layer(index, op.opcode, "tm_pad", "tm_pad_params", params, 0,
                 {"paddings": pads.tolist(), "dtype": tx.dtype.name.lower()})


# --------------------------------------------------------------------------- MEAN


@dataclass(frozen=True)
class MeanPlan:
    """How the MEAN kernels walk the input: kept dims outside, reduced dims inside.

    Both walks are in row-major order of the input, so every output's sum adds its
    inputs in the order TFLM's ``Reduce`` adds them.
    """

    axes: tuple[int, ...]
    outer_dims: tuple[int, ...]
    outer_strides: tuple[int, ...]
    inner_dims: tuple[int, ...]
    inner_strides: tuple[int, ...]
    count: int

    def params(self) -> dict[str, CValue]:
        return {"outer_dims": list(self.outer_dims), "outer_strides": list(self.outer_strides),
                "inner_dims": list(self.inner_dims), "inner_strides": list(self.inner_strides),
                "count": self.count}


def _pad_left(values: Sequence[int], fill: int) -> tuple[int, ...]:
    return (fill,) * (MEAN_MAX_DIMS - len(values)) + tuple(values)


def mean_plan(ctx: LowerContext, op: Operator, index: int, x: int, axis: int, y: int) -> MeanPlan:
    """Resolve MEAN's constant axes (negative, duplicate) and check the output shape."""
    shape = tuple(ctx.tensor(x).shape)
    rank = len(shape)
    if not 1 <= rank <= MEAN_MAX_DIMS or any(d <= 0 for d in shape):
        raise fail(op, index, f"input shape {shape} unsupported (1..{MEAN_MAX_DIMS} non-empty "
                              "dims)")
    axes: list[int] = []
    for a in _const_ints(ctx, op, index, axis, "axis").reshape(-1).tolist():
        r = a + rank if a < 0 else a
        if not 0 <= r < rank:
            raise fail(op, index, f"axis {a} out of range for rank {rank}")
        if r not in axes:
            axes.append(r)
    keep = bool(op.options.get("keep_dims", False))
    want = tuple(1 if d in axes else n for d, n in enumerate(shape)) if keep else \
        tuple(n for d, n in enumerate(shape) if d not in axes)
    got = tuple(ctx.tensor(y).shape)
    if got != want and not (not want and math.prod(got) == 1):
        raise fail(op, index, f"output shape {got} does not match the reduced {want}")
    strides = [math.prod(shape[d + 1:]) for d in range(rank)]
    kept = [d for d in range(rank) if d not in axes]
    red = sorted(axes)
    return MeanPlan(tuple(axes), _pad_left([shape[d] for d in kept], 1),
                    _pad_left([strides[d] for d in kept], 0),
                    _pad_left([shape[d] for d in red], 1),
                    _pad_left([strides[d] for d in red], 0),
                    math.prod(shape[d] for d in red))


def mean_requantize_multiplier(input_scale: float, output_scale: float,
                               count: int) -> tuple[int, int]:
    """TFLM's int8 MEAN multiplier with 1/count folded in (integer QuantizedMeanOrSum).

    Prepare's ``QuantizeMultiplier(double(in) / double(out))`` is scaled by
    ``2^s / count`` with ``s = min(floor(log2(count)), 32, 31 + shift)`` in int64
    (truncating division) and the shift lowered by ``s``.
    """
    mult, shift = quant.requantize_multiplier(input_scale, output_scale)
    s = min(count.bit_length() - 1, 32, 31 + shift)
    return (mult << s) // count, shift - s


def lower_mean(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """MEAN int8 -> ``tm_mean_s8`` (TFLM EvalMeanHelper's int8 paths).

    TFLM (the tflite-micro release this project pins) takes the integer
    QuantizedMeanOrSum path for every int8 MEAN, equal quantizations included:
    ``MBQM(sum - in_zp * count, mult, shift) + out_zp`` (rounding, not the
    truncating integer mean of older releases; the tests pin this down).
    """
    (x, axis), y = single_output_operands(op, index, 2)
    require_types(ctx, op, index, _INT8, [x, y])
    require_types(ctx, op, index, _I32, [axis])
    plan = mean_plan(ctx, op, index, x, axis, y)
    in_scale, in_zp = per_tensor_qparams(ctx, op, index, x)
    out_scale, out_zp = per_tensor_qparams(ctx, op, index, y)
    mult, shift = mean_requantize_multiplier(in_scale, out_scale, plan.count)
    if shift > 30:
        raise fail(op, index, f"requantization scale {in_scale / out_scale} too large")
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "output": ctx.ptr(y), **plan.params(),
        "input_zero_point": in_zp, "multiplier": mult,
        "shift": shift, "output_zero_point": out_zp,
    }
    return Layer(index, op.opcode, "tm_mean_s8", "tm_mean_s8_params", params,
                 ctx.tensor(x).numel, {"axes": plan.axes})


# --------------------------------------------------------------------------- int8 element-wise


def lower_mul(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """MUL int8 -> ``tm_mul_s8`` (CalculateOpDataMul + MulElementwise / BroadcastMul4DSlow)."""
    (a, b), y = single_output_operands(op, index, 2)
    require_types(ctx, op, index, _INT8, [a, b, y])
    plan = operand_broadcast_plan(ctx, op, index, a, b, y)
    if plan.broadcast and max(len(ctx.tensor(t).shape) for t in (a, b, y)) > MUL_S8_MAX_DIMS:
        raise fail(op, index, f"int8 broadcast over more than {MUL_S8_MAX_DIMS} dims (TFLM's "
                              "BroadcastMul4DSlow limit)")
    s1, z1 = per_tensor_qparams(ctx, op, index, a)
    s2, z2 = per_tensor_qparams(ctx, op, index, b)
    so, zo = per_tensor_qparams(ctx, op, index, y)
    mult, shift = quant.mul_multiplier(s1, s2, so)
    if shift > 30:
        raise fail(op, index, f"output multiplier shift {shift} too large")
    act = fused_activation(op)
    act_min, act_max = activation_range_quantized(op, index, so, zo)
    params: dict[str, CValue] = {
        "input1": ctx.ptr(a), "input2": ctx.ptr(b), "output": ctx.ptr(y),
        "input1_offset": -z1, "input2_offset": -z2, "output_offset": zo,
        "output_multiplier": mult, "output_shift": shift, "act_min": act_min, "act_max": act_max,
        "size": plan.size, "broadcast": int(plan.broadcast), "dims": list(plan.dims),
        "strides1": list(plan.strides1), "strides2": list(plan.strides2),
    }
    return Layer(index, op.opcode, "tm_mul_s8", "tm_mul_s8_params", params, plan.size,
                 {"broadcast": plan.broadcast, "activation": act})


def _lower_sigmoid(ctx: LowerContext, op: Operator, index: int, kernel: str,
                   out_zp_required: int | None) -> Layer:
    (x,), y = single_output_operands(op, index, 1)
    require_types(ctx, op, index, _INT8, [x, y])
    n = _same_numel(ctx, op, index, x, y)
    in_scale, in_zp = per_tensor_qparams(ctx, op, index, x)
    _, out_zp = per_tensor_qparams(ctx, op, index, y)
    if out_zp_required is not None and out_zp != out_zp_required:
        raise fail(op, index, f"output zero point must be {out_zp_required} (TFLM checks it), "
                              f"is {out_zp}")
    with naming_operator(op, index):
        mult, shift, radius = quant.sigmoid_input_params(in_scale)
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "output": ctx.ptr(y), "size": n, "input_zero_point": in_zp,
        "input_range_radius": radius, "input_multiplier": mult, "input_left_shift": shift,
    }
    return Layer(index, op.opcode, kernel, "tm_sigmoid_s8_params", params, n,
                 {"input_range_radius": radius})


def lower_logistic(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """LOGISTIC int8 -> ``tm_logistic_s8``; TFLM requires output zero point -128 and
    computes for scale 1/256 whatever the output scale says."""
    return _lower_sigmoid(ctx, op, index, "tm_logistic_s8", -128)


def lower_tanh(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """TANH int8 -> ``tm_tanh_s8``; TFLM computes for output scale 1/128, zero point 0."""
    return _lower_sigmoid(ctx, op, index, "tm_tanh_s8", None)


def lower_hard_swish(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """HARD_SWISH int8 -> ``tm_hard_swish_s8`` (HardSwishPrepare's int16 multipliers)."""
    (x,), y = single_output_operands(op, index, 1)
    require_types(ctx, op, index, _INT8, [x, y])
    n = _same_numel(ctx, op, index, x, y)
    in_scale, in_zp = per_tensor_qparams(ctx, op, index, x)
    out_scale, out_zp = per_tensor_qparams(ctx, op, index, y)
    with naming_operator(op, index):
        hs = quant.hard_swish_params(in_scale, out_scale)
    if -hs.output_multiplier_exponent > 31 or -hs.reluish_multiplier_exponent > 31:
        raise fail(op, index, "scale ratio too extreme for the int16 fixed-point kernel")
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "output": ctx.ptr(y), "size": n,
        "input_zero_point": in_zp, "output_zero_point": out_zp,
        "output_multiplier_fixedpoint_int16": hs.output_multiplier_fixedpoint_int16,
        "output_multiplier_exponent": hs.output_multiplier_exponent,
        "reluish_multiplier_fixedpoint_int16": hs.reluish_multiplier_fixedpoint_int16,
        "reluish_multiplier_exponent": hs.reluish_multiplier_exponent,
    }
    return Layer(index, op.opcode, "tm_hard_swish_s8", "tm_hard_swish_s8_params", params, n, {})


LOWERINGS: dict[str, Lowering] = {
    "QUANTIZE": lower_quantize,
    "DEQUANTIZE": lower_dequantize,
    "CONCATENATION": lower_concatenation,
    "PAD": lower_pad,
    "PADV2": lower_pad,
    "MEAN": lower_mean,
    "MUL": lower_mul,
    "LOGISTIC": lower_logistic,
    "TANH": lower_tanh,
    "HARD_SWISH": lower_hard_swish,
}
