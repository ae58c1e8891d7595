"""Lowerings of the reshape op family (see base.py for the contract).

RESHAPE changes only shape metadata; the output tensor's static shape is taken
from the model (TFLM's Prepare derives the same shape from the options or the
shape tensor, and a model whose output tensor disagrees is malformed). On the
device the op is a byte copy, skipped when the planner aliases both tensors.
"""

from __future__ import annotations

import logging

from tinymeter.firmware.lower.base import (
    C_TYPES,
    CValue,
    Layer,
    LowerContext,
    Lowering,
    fail,
    require_types,
)
from tinymeter.models.tflite import Operator

log = logging.getLogger(__name__)


def lower_reshape(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """RESHAPE -> ``tm_reshape`` (byte copy).

    Any element type the runtime knows is accepted, since a copy is exact for all
    of them; input and output must agree in type and element count. The optional
    second input (the shape tensor) is not needed on the device.
    """
    if len(op.inputs) not in (1, 2) or len(op.outputs) != 1 or op.inputs[0] < 0:
        raise fail(op, index, f"expects 1 or 2 inputs and 1 output, has {len(op.inputs)} "
                              f"inputs and {len(op.outputs)} outputs")
    x, y = op.inputs[0], op.outputs[0]
    require_types(ctx, op, index, tuple(C_TYPES), [x, y])
    tx, ty = ctx.tensor(x), ctx.tensor(y)
    if tx.dtype != ty.dtype:
        raise fail(op, index, f"input type {tx.dtype.name} differs from output type "
                              f"{ty.dtype.name}")
    if tx.numel != ty.numel:
        raise fail(op, index, f"input shape {tuple(tx.shape)} and output shape "
                              f"{tuple(ty.shape)} have different element counts")
    nbytes = tx.numel * tx.dtype.itemsize
    params: dict[str, CValue] = {
        "input": f"(const void *){ctx.ptr(x)}", "output": f"(void *){ctx.ptr(y)}",
        "bytes": nbytes,
    }
    info = {"from": tuple(tx.shape), "to": tuple(ty.shape), "bytes": nbytes}
    return Layer(index, op.opcode, "tm_reshape", "tm_reshape_params", params, 0, info)


LOWERINGS: dict[str, Lowering] = {"RESHAPE": lower_reshape}
