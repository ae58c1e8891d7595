"""Lowering of BATCH_MATMUL, int8 and float32 (see base.py for the contract).

out[..., i, j] = sum_k A[..., i, k] * B[..., k, j] with ``adj_x`` / ``adj_y``
transposing the last two dims of A / B and numpy broadcasting over up to three
batch dims, as TFLM's ``batch_matmul.cc`` (which transposes operands in Prepare and
runs ``reference_ops::BatchMatMul``). The host turns transposition and
broadcasting into element strides; the kernel sums k in ascending order from 0
(TFLM's order, which the float result depends on). int8: the zero points are
subtracted from both operands, the sum requantized with
``QuantizeMultiplier(lhs_scale * rhs_scale / output_scale)`` and clamped to int8.
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
    naming_operator,
    per_tensor_qparams,
    require_types,
    single_output_operands,
)
from tinymeter.models.tflite import Operator, TensorType

log = logging.getLogger(__name__)

BATCH_DIMS = 3


def _strides(shape: tuple[int, ...]) -> list[int]:
    out, run = [0] * len(shape), 1
    for d in range(len(shape) - 1, -1, -1):
        out[d] = run
        run *= shape[d]
    return out


def _plan(ctx: LowerContext, op: Operator, index: int, types: tuple[TensorType, ...]
          ) -> tuple[int, int, int, dict[str, CValue], int]:
    (a, b), y = single_output_operands(op, index, 2)
    require_types(ctx, op, index, types, [a, b, y])
    sa, sb, so = (tuple(ctx.tensor(t).shape) for t in (a, b, y))
    if not (2 <= len(sa) <= 5 and 2 <= len(sb) <= 5):
        raise fail(op, index, f"operands must be 2-D to 5-D, have {sa} and {sb}")
    adj_x, adj_y = bool(op.options.get("adj_x", False)), bool(op.options.get("adj_y", False))
    rows, depth = (sa[-1], sa[-2]) if adj_x else (sa[-2], sa[-1])
    depth_b, cols = (sb[-1], sb[-2]) if adj_y else (sb[-2], sb[-1])
    if depth != depth_b:
        raise fail(op, index, f"inner dimensions differ: {sa} x {sb} (adj_x={adj_x}, "
                              f"adj_y={adj_y})")
    ba = (1,) * (BATCH_DIMS - (len(sa) - 2)) + sa[:-2]
    bb = (1,) * (BATCH_DIMS - (len(sb) - 2)) + sb[:-2]
    batch = []
    for p, q in zip(ba, bb):
        if p != q and 1 not in (p, q):
            raise fail(op, index, f"batch dims of {sa} and {sb} do not broadcast")
        batch.append(max(p, q))
    want = (*tuple(batch)[BATCH_DIMS - max(len(sa), len(sb)) + 2:], rows, cols)
    if so != want:
        raise fail(op, index, f"output shape {so} does not match the computed {want}")
    st_a, st_b = _strides(sa), _strides(sb)
    mat_a = len(sa) - 2
    mat_b = len(sb) - 2
    a_row, a_k = (st_a[-1], st_a[-2]) if adj_x else (st_a[-2], st_a[-1])
    b_k, b_col = (st_b[-1], st_b[-2]) if adj_y else (st_b[-2], st_b[-1])
    pad_a = [0] * (BATCH_DIMS - mat_a) + st_a[:mat_a]
    pad_b = [0] * (BATCH_DIMS - mat_b) + st_b[:mat_b]
    params: dict[str, CValue] = {
        "batch": batch,
        "a_batch_strides": [0 if d == 1 else s for d, s in zip(ba, pad_a)],
        "b_batch_strides": [0 if d == 1 else s for d, s in zip(bb, pad_b)],
        "rows": rows, "cols": cols, "depth": depth,
        "a_row_stride": a_row, "a_k_stride": a_k, "b_k_stride": b_k, "b_col_stride": b_col,
    }
    macs = batch[0] * batch[1] * batch[2] * rows * cols * depth
    return a, b, y, params, macs


def lower_batch_matmul(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """BATCH_MATMUL int8 -> ``tm_batch_matmul_s8``."""
    a, b, y, geo, macs = _plan(ctx, op, index, (TensorType.INT8,))
    s_a, z_a = per_tensor_qparams(ctx, op, index, a)
    s_b, z_b = per_tensor_qparams(ctx, op, index, b)
    s_o, z_o = per_tensor_qparams(ctx, op, index, y)
    with naming_operator(op, index):
        mult, shift = quant.quantize_multiplier(float(quant.f32(s_a)) * float(quant.f32(s_b))
                                                / float(quant.f32(s_o)))
    params: dict[str, CValue] = {
        "a": ctx.ptr(a), "b": ctx.ptr(b), "output": ctx.ptr(y),
        "a_offset": -z_a, "b_offset": -z_b, "output_offset": z_o,
        "multiplier": mult, "shift": shift, **geo,
    }
    return Layer(index, op.opcode, "tm_batch_matmul_s8", "tm_batch_matmul_s8_params", params,
                 macs, {"dtype": "int8"})


def lower_batch_matmul_f32(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """BATCH_MATMUL float -> ``tm_batch_matmul_f32``."""
    a, b, y, geo, macs = _plan(ctx, op, index, (TensorType.FLOAT32,))
    params: dict[str, CValue] = {"a": ctx.ptr(a), "b": ctx.ptr(b), "output": ctx.ptr(y), **geo}
    return Layer(index, op.opcode, "tm_batch_matmul_f32", "tm_batch_matmul_f32_params", params,
                 macs, {"dtype": "float32"})


LOWERINGS: dict[str, Lowering] = {"BATCH_MATMUL": lower_batch_matmul}
FLOAT_LOWERINGS: dict[str, Lowering] = {"BATCH_MATMUL": lower_batch_matmul_f32}
