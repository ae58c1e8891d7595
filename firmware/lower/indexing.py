"""Lowerings of the indexing family (see base.py for the contract).

GATHER (float32 / int8 values, int32 positions read at run time, ``axis`` and
``batch_dims`` as TFLM's ``gather.cc``) and ARG_MAX / ARG_MIN (float32 / int8
input, int32 output -- TFLM fails int64 at Invoke; ``ArgMinMax``: the first index wins ties,
``std::greater`` / ``std::less`` comparisons). The host resolves axes and sizes;
the device walks (outer, axis, inner) blocks.

One deliberate difference: a GATHER position outside ``[0, axis_size)`` makes
TFLM's Invoke fail; the firmware cannot fail an inference, so it clamps the
position into range (memory-safe, deterministic) -- such inputs are a bug in the
model's caller either way.
"""

from __future__ import annotations

import logging
import math

from tinymeter.firmware.lower.base import (
    CValue,
    Layer,
    LowerContext,
    Lowering,
    fail,
    require_types,
    single_output_operands,
)
from tinymeter.models.tflite import Operator, TensorType

log = logging.getLogger(__name__)

_VALUES = (TensorType.INT8, TensorType.FLOAT32)


def _axis(op: Operator, index: int, axis: int, rank: int, what: str = "axis") -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        raise fail(op, index, f"{what} {axis} out of range for rank {rank}")
    return a


def lower_gather(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """GATHER -> ``tm_gather`` (block copies selected by the positions)."""
    (x, pos), y = single_output_operands(op, index, 2)
    require_types(ctx, op, index, _VALUES, [x, y])
    require_types(ctx, op, index, (TensorType.INT32,), [pos])
    tx, tp, ty = ctx.tensor(x), ctx.tensor(pos), ctx.tensor(y)
    if tx.dtype != ty.dtype:
        raise fail(op, index, "input and output types differ")
    shape, pshape = tuple(tx.shape), tuple(tp.shape)
    axis = _axis(op, index, int(op.options.get("axis", 0)), len(shape))
    bd = int(op.options.get("batch_dims", 0))
    bd = bd + len(pshape) if bd < 0 else bd
    if not (0 <= bd <= axis and bd < len(shape) and bd <= len(pshape)) or \
            shape[:bd] != pshape[:bd]:
        raise fail(op, index, f"batch_dims {op.options.get('batch_dims')} invalid for input "
                              f"{shape} and positions {pshape}")
    want = (*shape[:axis], *pshape[bd:], *shape[axis + 1:])
    if tuple(ty.shape) != want:
        raise fail(op, index, f"output shape {tuple(ty.shape)} does not match the computed "
                              f"{want}")
    params: dict[str, CValue] = {
        "input": f"(const void *){ctx.ptr(x)}", "positions": ctx.ptr(pos),
        "output": f"(void *){ctx.ptr(y)}",
        "batch_size": math.prod(shape[:bd]), "outer_size": math.prod(shape[bd:axis]),
        "coord_size": math.prod(pshape[bd:]), "axis_size": shape[axis],
        "inner_bytes": math.prod(shape[axis + 1:]) * tx.dtype.itemsize,
    }
    return Layer(index, op.opcode, "tm_gather", "tm_gather_params", params, 0,
                 {"axis": axis, "batch_dims": bd, "dtype": tx.dtype.name.lower()})


def lower_arg_min_max(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """ARG_MAX / ARG_MIN -> ``tm_arg_{max,min}_{s8,f32}``."""
    (x, axis_t), y = single_output_operands(op, index, 2)
    require_types(ctx, op, index, _VALUES, [x])
    require_types(ctx, op, index, (TensorType.INT32, TensorType.INT64), [axis_t])
    require_types(ctx, op, index, (TensorType.INT32,), [y])
    tx, ta, ty = ctx.tensor(x), ctx.tensor(axis_t), ctx.tensor(y)
    if ta.data is None or ta.numel != 1:
        raise fail(op, index, f"axis tensor {axis_t} must be a constant scalar")
    shape = tuple(tx.shape)
    if not shape or any(d <= 0 for d in shape):
        raise fail(op, index, f"input shape {shape} must be non-empty")
    axis = _axis(op, index, int(ta.array().reshape(-1)[0]), len(shape))
    want = shape[:axis] + shape[axis + 1:]
    if tuple(ty.shape) != want:
        raise fail(op, index, f"output shape {tuple(ty.shape)} does not match the computed "
                              f"{want}")
    kind = "max" if op.opcode == "ARG_MAX" else "min"
    dt = "f32" if tx.dtype == TensorType.FLOAT32 else "s8"
    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "output": ctx.ptr(y),
        "outer_size": math.prod(shape[:axis]), "axis_size": shape[axis],
        "inner_size": math.prod(shape[axis + 1:]),
    }
    return Layer(index, op.opcode, f"tm_arg_{kind}_{dt}", f"tm_arg_minmax_{dt}_params", params,
                 tx.numel, {"axis": axis, "dtype": tx.dtype.name.lower()})


LOWERINGS: dict[str, Lowering] = {
    "GATHER": lower_gather,
    "ARG_MAX": lower_arg_min_max,
    "ARG_MIN": lower_arg_min_max,
}
