"""Lowerings of the resize family (see base.py for the contract).

RESIZE_NEAREST_NEIGHBOR (any element type) and RESIZE_BILINEAR (int8 with TFLM's
integer ``ResizeBilinearInteger``, float32 with ``ResizeBilinear``). Every
per-row and per-column quantity that depends only on the geometry -- the source
index of nearest-neighbour sampling, the two bilinear neighbours and their
weights -- is computed here exactly as TFLM's reference computes it (float32
scale arithmetic where TFLM uses float, 10-bit fixed point where it uses
integers) and stored as small constant tables; the device only gathers and
blends. The output size must be a constant that matches the output tensor
(TFLM does not support dynamic output shapes either).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from tinymeter.firmware.lower.base import (
    C_TYPES,
    CValue,
    Layer,
    LowerContext,
    Lowering,
    fail,
    require_types,
    shape4,
)
from tinymeter.models.tflite import Operator, TensorType

log = logging.getLogger(__name__)

_F32 = np.float32


def _c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def nearest_indices(in_size: int, out_size: int, align_corners: bool,
                    half_pixel_centers: bool) -> list[int]:
    """TFLM ``GetNearestNeighbor`` for every output position (float32 arithmetic)."""
    if align_corners and out_size > 1:
        scale = _F32(in_size - 1) / _F32(out_size - 1)
    else:
        scale = _F32(in_size) / _F32(out_size)
    offset = _F32(0.5 if half_pixel_centers else 0.0)
    out = []
    for v in range(out_size):
        s = (_F32(v) + offset) * scale
        if align_corners:
            a = float(abs(s))
            idx = int(math.copysign(math.floor(a + 0.5), float(s)))
        else:
            idx = math.floor(float(s))
        idx = min(idx, in_size - 1)
        if half_pixel_centers:
            idx = max(0, idx)
        out.append(idx)
    return out


def bilinear_float_axis(in_size: int, out_size: int, align_corners: bool,
                        half_pixel_centers: bool) -> tuple[list[int], list[int], list[float]]:
    """(lower, upper, fraction) per output position: ``ComputeInterpolationValues``
    with TFLM's float32 scale; fraction = ``input_pos - lower`` in float32."""
    scale = _F32(in_size) / _F32(out_size)
    if align_corners and out_size > 1:
        scale = _F32(in_size - 1) / _F32(out_size - 1)
    lo, hi, frac = [], [], []
    for v in range(out_size):
        s = (_F32(v) + _F32(0.5)) * scale - _F32(0.5) if half_pixel_centers else _F32(v) * scale
        lower = max(math.floor(float(s)), 0)
        lo.append(lower)
        hi.append(min(math.ceil(float(s)), in_size - 1))
        frac.append(float(s - _F32(lower)))
    return lo, hi, frac


def bilinear_int_axis(in_size: int, out_size: int, align_corners: bool,
                      half_pixel_centers: bool) -> tuple[list[int], list[int], list[int]]:
    """(lower, upper, input_pos - 1024 * lower) per output position:
    ``ComputeInterpolationValuesInteger`` with TFLM's rounded 10-bit scale."""
    scale = _c_div(1024 * in_size + out_size // 2, out_size)
    if align_corners and out_size > 1:
        scale = _c_div(1024 * (in_size - 1) + (out_size - 1) // 2, out_size - 1)
    lo, hi, frac = [], [], []
    for v in range(out_size):
        s = v * scale + _c_div(scale, 2) - 512 if half_pixel_centers else v * scale
        lower = max(_c_div(s, 1024), 0)
        lo.append(lower)
        hi.append(min(_c_div(s + 1023, 1024), in_size - 1))
        frac.append(s - 1024 * lower)
    return lo, hi, frac


def _geometry(ctx: LowerContext, op: Operator, index: int,
              types: Sequence[TensorType]) -> tuple[int, int, tuple[int, ...], tuple[int, ...],
                                                     bool, bool]:
    if len(op.inputs) != 2 or len(op.outputs) != 1 or min(op.inputs) < 0:
        raise fail(op, index, "expects 2 inputs (input, size) and 1 output")
    x, size_t = op.inputs
    y = op.outputs[0]
    require_types(ctx, op, index, types, [x, y])
    if ctx.tensor(x).dtype != ctx.tensor(y).dtype:
        raise fail(op, index, "input and output types differ")
    ins = shape4(ctx, op, index, x, "input")
    outs = shape4(ctx, op, index, y, "output")
    st = ctx.tensor(size_t)
    if st.data is None or st.dtype != TensorType.INT32 or st.numel != 2:
        raise fail(op, index, f"size tensor {size_t} must be a constant int32 [2] (TFLM does not "
                              "support dynamic output shapes)")
    size = [int(v) for v in st.array().reshape(-1)]
    want = (ins[0], size[0], size[1], ins[3])
    if tuple(outs) != want:
        raise fail(op, index, f"output shape {tuple(outs)} does not match the computed {want}")
    align = bool(op.options.get("align_corners", False))
    half = bool(op.options.get("half_pixel_centers", False))
    if align and half:
        raise fail(op, index, "align_corners and half_pixel_centers cannot both be set")
    return x, y, ins, outs, align, half


def lower_resize_nearest(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """RESIZE_NEAREST_NEIGHBOR -> ``tm_resize_nearest`` (copies of depth-long pixels)."""
    x, y, ins, outs, align, half = _geometry(ctx, op, index, tuple(C_TYPES))
    batches, in_h, in_w, depth = ins
    row = in_w * depth
    ys = [i * row for i in nearest_indices(in_h, outs[1], align, half)]
    xs = [i * depth for i in nearest_indices(in_w, outs[2], align, half)]
    elem = ctx.tensor(x).dtype.itemsize
    params: dict[str, CValue] = {
        "input": f"(const void *){ctx.ptr(x)}", "output": f"(void *){ctx.ptr(y)}",
        "y_offsets": ctx.const_array("int32_t", ys, "rows"),
        "x_offsets": ctx.const_array("int32_t", xs, "cols"),
        "batches": batches, "batch_stride": in_h * row, "out_h": outs[1], "out_w": outs[2],
        "pixel_bytes": depth * elem, "elem_bytes": elem,
    }
    return Layer(index, op.opcode, "tm_resize_nearest", "tm_resize_nearest_params", params, 0,
                 {"from": f"{in_h}x{in_w}", "to": f"{outs[1]}x{outs[2]}",
                  "align_corners": align, "half_pixel_centers": half})


def lower_resize_bilinear(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """RESIZE_BILINEAR int8 (``tm_resize_bilinear_s8``) or float (``..._f32``)."""
    x, y, ins, outs, align, half = _geometry(ctx, op, index,
                                             (TensorType.INT8, TensorType.FLOAT32))
    batches, in_h, in_w, depth = ins
    is_float = ctx.tensor(x).dtype == TensorType.FLOAT32
    axis = bilinear_float_axis if is_float else bilinear_int_axis
    y0, y1, fy = axis(in_h, outs[1], align, half)
    x0, x1, fx = axis(in_w, outs[2], align, half)
    ctype = "float" if is_float else "int32_t"

    def table(vals: list[int] | list[float], hint: str) -> str:
        return ctx.const_array(ctype if hint.startswith("f") else "int32_t", vals, hint)

    params: dict[str, CValue] = {
        "input": ctx.ptr(x), "output": ctx.ptr(y),
        "y0": table([v * in_w * depth for v in y0], "y0"),
        "y1": table([v * in_w * depth for v in y1], "y1"),
        "x0": table([v * depth for v in x0], "x0"), "x1": table([v * depth for v in x1], "x1"),
        "fy": table(fy, "fy"), "fx": table(fx, "fx"),
        "batches": batches, "batch_stride": in_h * in_w * depth,
        "out_h": outs[1], "out_w": outs[2], "depth": depth,
    }
    kind = "f32" if is_float else "s8"
    return Layer(index, op.opcode, f"tm_resize_bilinear_{kind}",
                 f"tm_resize_bilinear_{kind}_params", params, 4 * math.prod(outs),
                 {"from": f"{in_h}x{in_w}", "to": f"{outs[1]}x{outs[2]}",
                  "align_corners": align, "half_pixel_centers": half,
                  "dtype": "float32" if is_float else "int8"})


LOWERINGS: dict[str, Lowering] = {
    "RESIZE_NEAREST_NEIGHBOR": lower_resize_nearest,
    "RESIZE_BILINEAR": lower_resize_bilinear,
}
