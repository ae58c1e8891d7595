"""Lowerings of the elementwise op family (see base.py for the contract).

ADD int8 with TFLM's ``AddPrepare`` / ``CalculateOpDataAdd`` parameters
(``add_common.cc``): left shift 20, both inputs rescaled to twice the larger
input scale, three ``QuantizeMultiplierSmallerThanOneExp`` multipliers and the
fused activation clamp. Broadcasting follows TFLM's ``ProcessBroadcastShapes`` /
``BroadcastAdd6DSlow`` (numpy rules over at most 6 dims); the host folds the
shapes into a few dims with per-input strides so the device loop stays simple.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

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
from tinymeter.models.tflite import Operator, TensorType

log = logging.getLogger(__name__)

_INT8 = (TensorType.INT8,)

#: Dimensions the device kernel walks (TM_ADD_MAX_DIMS); TFLM's limit is 6 too.
MAX_DIMS = 6


@dataclass(frozen=True)
class BroadcastPlan:
    """How the device walks a (possibly broadcast) binary op.

    ``broadcast`` is False when both inputs have the output's shape up to leading
    ones (TFLM's kNonBroadcast): the kernel then runs one flat loop. Otherwise
    ``dims`` is the output shape folded to ``MAX_DIMS`` dims (left-padded with 1)
    and ``strides1``/``strides2`` the element strides of each input along them,
    0 where that input is broadcast.
    """

    broadcast: bool
    size: int
    dims: tuple[int, ...]
    strides1: tuple[int, ...]
    strides2: tuple[int, ...]

    def params(self) -> dict[str, CValue]:
        """The walk's fields of a kernel parameter struct (size, broadcast, dims, strides)."""
        return {"size": self.size, "broadcast": int(self.broadcast), "dims": list(self.dims),
                "strides1": list(self.strides1), "strides2": list(self.strides2)}


def broadcast_plan(shape1: Sequence[int], shape2: Sequence[int],
                   out_shape: Sequence[int]) -> BroadcastPlan:
    """Fold numpy broadcasting of *shape1* and *shape2* into *out_shape* for the kernel.

    Output dims of size 1 are dropped and neighbouring dims merged whenever both
    inputs are broadcast (or not) alike along them, which keeps the visiting order
    and every (input1, input2) element pair unchanged. Raises ValueError when the
    shapes do not broadcast to *out_shape*.
    """
    rank = max(len(shape1), len(shape2), len(out_shape))
    if rank > MAX_DIMS:
        raise ValueError(f"{rank}-D operands; at most {MAX_DIMS} dims are supported")
    e1 = (1,) * (rank - len(shape1)) + tuple(shape1)
    e2 = (1,) * (rank - len(shape2)) + tuple(shape2)
    eo = (1,) * (rank - len(out_shape)) + tuple(out_shape)
    for a, b, o in zip(e1, e2, eo):
        if a not in (1, o) or b not in (1, o) or o != max(a, b):
            raise ValueError(f"shapes {tuple(shape1)} and {tuple(shape2)} do not broadcast to "
                             f"{tuple(out_shape)}")
    size = math.prod(eo)
    if e1 == e2:
        return BroadcastPlan(False, size, (1,) * (MAX_DIMS - 1) + (size,),
                             (0,) * (MAX_DIMS - 1) + (1,), (0,) * (MAX_DIMS - 1) + (1,))
    dims: list[int] = []
    flags: list[tuple[bool, bool]] = []
    for a, b, o in zip(e1, e2, eo):
        if o == 1:
            continue
        f = (a == 1, b == 1)
        if flags and flags[-1] == f:
            dims[-1] *= o
        else:
            dims.append(o)
            flags.append(f)
    if not dims:
        dims, flags = [1], [(False, False)]
    strides: list[list[int]] = [[0] * len(dims), [0] * len(dims)]
    for k in range(2):
        run = 1
        for d in range(len(dims) - 1, -1, -1):
            if not flags[d][k]:
                strides[k][d] = run
                run *= dims[d]
    pad = MAX_DIMS - len(dims)
    return BroadcastPlan(True, size, (1,) * pad + tuple(dims),
                         (0,) * pad + tuple(strides[0]), (0,) * pad + tuple(strides[1]))


def operand_broadcast_plan(ctx: LowerContext, op: Operator, index: int, a: int, b: int,
                           y: int) -> BroadcastPlan:
    """:func:`broadcast_plan` of a binary op's operands, errors naming the operator."""
    shapes = [tuple(ctx.tensor(t).shape) for t in (a, b, y)]
    if any(d <= 0 for s in shapes for d in s):
        raise fail(op, index, f"empty operand shapes {shapes}")
    try:
        return broadcast_plan(*shapes)
    except ValueError as exc:
        raise fail(op, index, str(exc)) from None


def lower_add(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """ADD -> ``tm_add_s8`` (TFLM ``AddPrepare`` + ``EvalAddQuantized``, int8)."""
    (a, b), y = single_output_operands(op, index, 2)
    require_types(ctx, op, index, _INT8, [a, b, y])
    sa, sb, so = (tuple(ctx.tensor(t).shape) for t in (a, b, y))
    for t, s in ((a, sa), (b, sb), (y, so)):
        if any(d <= 0 for d in s):
            raise fail(op, index, f"tensor {t} has an empty dimension: {s}")
    try:
        plan = broadcast_plan(sa, sb, so)
    except ValueError as exc:
        raise fail(op, index, str(exc)) from None
    s1, z1 = per_tensor_qparams(ctx, op, index, a)
    s2, z2 = per_tensor_qparams(ctx, op, index, b)
    out_scale, out_zp = per_tensor_qparams(ctx, op, index, y)
    with naming_operator(op, index):
        q = quant.add_quant_params(s1, s2, out_scale)
    act = fused_activation(op)
    act_min, act_max = activation_range_quantized(op, index, out_scale, out_zp)
    params: dict[str, CValue] = {
        "input1": ctx.ptr(a), "input2": ctx.ptr(b), "output": ctx.ptr(y),
        "input1_offset": -z1, "input2_offset": -z2, "output_offset": out_zp,
        "left_shift": q.left_shift,
        "input1_multiplier": q.input1_multiplier, "input1_shift": q.input1_shift,
        "input2_multiplier": q.input2_multiplier, "input2_shift": q.input2_shift,
        "output_multiplier": q.output_multiplier, "output_shift": q.output_shift,
        "act_min": act_min, "act_max": act_max,
        "size": plan.size, "broadcast": 1 if plan.broadcast else 0,
        "dims": list(plan.dims), "strides1": list(plan.strides1),
        "strides2": list(plan.strides2),
    }
    info = {"broadcast": plan.broadcast, "activation": act}
    if plan.broadcast:
        info["dims"] = "x".join(str(d) for d in plan.dims if d != 1) or "1"
    return Layer(index, op.opcode, "tm_add_s8", "tm_add_s8_params", params, plan.size, info)


LOWERINGS: dict[str, Lowering] = {"ADD": lower_add}
