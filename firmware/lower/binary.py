"""Lowerings of the SUB / MAXIMUM / MINIMUM family (see base.py for the contract).

SUB int8 takes exactly ADD's parameters (``CalculateOpDataSub`` computes them like
``CalculateOpDataAdd``: left shift 20, both inputs rescaled to twice the larger
scale, fused-activation clamp) and subtracts the rescaled inputs
(``reference_ops::Sub`` / ``BroadcastQuantSubSlow``). MAXIMUM / MINIMUM compare the
stored values (``el1 > el2 ? el1 : el2`` / ``el1 < el2 ? el1 : el2``, no
requantization, as TFLM's ``maximum_minimum.cc``). Float versions follow the same
expressions. Broadcasting uses ADD's host-folded walk (elementwise.broadcast_plan)
within TFLM's 5-dim limit of these ops.
"""

from __future__ import annotations

import logging

from tinymeter.firmware import quant
from tinymeter.firmware.lower.base import (
    CValue,
    Layer,
    LowerContext,
    Lowering,
    activation_range_float,
    activation_range_quantized,
    fail,
    naming_operator,
    per_tensor_qparams,
    require_types,
    single_output_operands,
)
from tinymeter.firmware.lower.elementwise import BroadcastPlan, operand_broadcast_plan
from tinymeter.models.tflite import Operator, TensorType

log = logging.getLogger(__name__)

_INT8 = (TensorType.INT8,)
_F32 = (TensorType.FLOAT32,)
#: TFLM's broadcast walks of SUB and MAXIMUM/MINIMUM use NdArrayDesc<5>.
MAX_DIMS = 5


def _plan(ctx: LowerContext, op: Operator, index: int, types: tuple[TensorType, ...]
          ) -> tuple[int, int, int, BroadcastPlan]:
    (a, b), y = single_output_operands(op, index, 2)
    require_types(ctx, op, index, types, [a, b, y])
    rank = max(len(ctx.tensor(t).shape) for t in (a, b, y))
    if rank > MAX_DIMS:
        raise fail(op, index, f"{rank}-D operands; TFLM supports at most {MAX_DIMS} dims here")
    return a, b, y, operand_broadcast_plan(ctx, op, index, a, b, y)


def _walk(plan: BroadcastPlan) -> dict[str, CValue]:
    return {"size": plan.size, "broadcast": int(plan.broadcast), "dims": list(plan.dims),
            "strides1": list(plan.strides1), "strides2": list(plan.strides2)}


def lower_sub(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """SUB int8 -> ``tm_sub_s8`` with ADD's parameter struct."""
    a, b, y, plan = _plan(ctx, op, index, _INT8)
    s1, z1 = per_tensor_qparams(ctx, op, index, a)
    s2, z2 = per_tensor_qparams(ctx, op, index, b)
    so, zo = per_tensor_qparams(ctx, op, index, y)
    with naming_operator(op, index):
        q = quant.add_quant_params(s1, s2, so)
    lo, hi = activation_range_quantized(op, index, so, zo)
    params: dict[str, CValue] = {
        "input1": ctx.ptr(a), "input2": ctx.ptr(b), "output": ctx.ptr(y),
        "input1_offset": -z1, "input2_offset": -z2, "output_offset": zo,
        "left_shift": q.left_shift,
        "input1_multiplier": q.input1_multiplier, "input1_shift": q.input1_shift,
        "input2_multiplier": q.input2_multiplier, "input2_shift": q.input2_shift,
        "output_multiplier": q.output_multiplier, "output_shift": q.output_shift,
        "act_min": lo, "act_max": hi, **_walk(plan),
    }
    return Layer(index, op.opcode, "tm_sub_s8", "tm_add_s8_params", params, plan.size,
                 {"broadcast": plan.broadcast, "dtype": "int8"})


def _lower_minmax_s8(ctx: LowerContext, op: Operator, index: int, kernel: str) -> Layer:
    a, b, y, plan = _plan(ctx, op, index, _INT8)
    params: dict[str, CValue] = {"input1": ctx.ptr(a), "input2": ctx.ptr(b),
                                 "output": ctx.ptr(y), **_walk(plan)}
    return Layer(index, op.opcode, kernel, "tm_minmax_s8_params", params, plan.size,
                 {"broadcast": plan.broadcast, "dtype": "int8"})


def lower_maximum(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """MAXIMUM int8 -> ``tm_maximum_s8`` (stored values compared)."""
    return _lower_minmax_s8(ctx, op, index, "tm_maximum_s8")


def lower_minimum(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """MINIMUM int8 -> ``tm_minimum_s8`` (stored values compared)."""
    return _lower_minmax_s8(ctx, op, index, "tm_minimum_s8")


def _lower_f32(ctx: LowerContext, op: Operator, index: int, kernel: str,
               activation: bool) -> Layer:
    a, b, y, plan = _plan(ctx, op, index, _F32)
    lo, hi = activation_range_float(op, index) if activation else (-quant.FLT_MAX,
                                                                   quant.FLT_MAX)
    params: dict[str, CValue] = {"input1": ctx.ptr(a), "input2": ctx.ptr(b),
                                 "output": ctx.ptr(y), "act_min": lo, "act_max": hi,
                                 **_walk(plan)}
    return Layer(index, op.opcode, kernel, "tm_binary_f32_params", params, plan.size,
                 {"broadcast": plan.broadcast, "dtype": "float32"})


def lower_sub_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """SUB float -> ``tm_sub_f32`` (a - b, fused activation clamp)."""
    return _lower_f32(ctx, op, index, "tm_sub_f32", True)


def lower_maximum_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """MAXIMUM float -> ``tm_maximum_f32``."""
    return _lower_f32(ctx, op, index, "tm_maximum_f32", False)


def lower_minimum_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """MINIMUM float -> ``tm_minimum_f32``."""
    return _lower_f32(ctx, op, index, "tm_minimum_f32", False)


LOWERINGS: dict[str, Lowering] = {
    "SUB": lower_sub,
    "MAXIMUM": lower_maximum,
    "MINIMUM": lower_minimum,
}

FLOAT_LOWERINGS: dict[str, Lowering] = {
    "SUB": lower_sub_f32,
    "MAXIMUM": lower_maximum_f32,
    "MINIMUM": lower_minimum_f32,
}
