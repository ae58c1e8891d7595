"""Lowerings of the data-movement op family (see base.py for the contract).

TRANSPOSE, SLICE, STRIDED_SLICE, SPLIT, SPLIT_V, PACK, UNPACK and SHAPE move
elements without arithmetic, so one device kernel serves them all and every
element type: ``tm_copy_nd`` walks a list of *parts*, each an N-d copy with its
own input/output pointers, element strides (negative for reversed STRIDED_SLICE
axes) and start offsets. The host does what TFLM's Prepare/Eval index logic does
(``transpose.cc``, ``slice.cc``, ``strided_slice_logic.h``, ``split.cc``,
``split_v.cc``, ``pack.cc``, ``unpack.cc``) and merges dims that are contiguous
on both sides, so a plain slice becomes one ``memcpy`` per row.

SQUEEZE and EXPAND_DIMS only change the shape: they lower to RESHAPE's byte copy.
SHAPE is folded on the host: its output is a constant the device copies from flash.
Results are bit-exact by construction (elements are copied, never converted).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from tinymeter.firmware.lower.base import (
    C_TYPES,
    CValue,
    Layer,
    LowerContext,
    Lowering,
    c_literal,
    fail,
    require_types,
)
from tinymeter.firmware.lower.reshape import lower_reshape
from tinymeter.models.tflite import Operator, TensorType

log = logging.getLogger(__name__)

#: Dimensions a part walks (TM_COPY_MAX_DIMS); TFLM's transpose allows 6.
MAX_DIMS = 6
#: TFLM limits: STRIDED_SLICE 1..4-D (kMaxDim), SLICE and TRANSPOSE 1..5-D.
STRIDED_SLICE_MAX_DIMS = 4
SLICE_MAX_DIMS = 5
TRANSPOSE_MAX_DIMS = 5
_ANY = tuple(C_TYPES)
_INDEX_TYPES = (TensorType.INT32, TensorType.INT64)


@dataclass(frozen=True)
class CopyPart:
    """One N-d copy: ``out[out_start + sum(i_k * out_strides[k])] =
    in[in_start + sum(i_k * in_strides[k])]`` over the index box ``dims``
    (element units)."""

    input: str
    output: str
    dims: tuple[int, ...]
    in_strides: tuple[int, ...]
    out_strides: tuple[int, ...]
    in_start: int = 0
    out_start: int = 0

    @property
    def elements(self) -> int:
        return math.prod(self.dims)


def row_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """Row-major element strides of *shape*."""
    return tuple(math.prod(shape[d + 1:]) for d in range(len(shape)))


def fold_dims(dims: Sequence[int], in_strides: Sequence[int],
              out_strides: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Drop size-1 dims and merge neighbours that are contiguous for both sides.

    Keeps the visiting order and every (input, output) element pair, so the copy is
    unchanged; it only shortens the device's odometer (and exposes long unit-stride
    runs). Returns at least one dim.
    """
    keep = [(d, i, o) for d, i, o in zip(dims, in_strides, out_strides) if d != 1]
    merged: list[list[int]] = []
    for d, i, o in keep:
        if merged and merged[-1][1] == i * d and merged[-1][2] == o * d:
            merged[-1] = [merged[-1][0] * d, i, o]
        else:
            merged.append([d, i, o])
    if not merged:
        merged = [[1, 1, 1]]
    return (tuple(m[0] for m in merged), tuple(m[1] for m in merged),
            tuple(m[2] for m in merged))


def _part_literal(part: CopyPart, op: Operator, index: int) -> list[CValue]:
    dims, ins, outs = fold_dims(part.dims, part.in_strides, part.out_strides)
    if len(dims) > MAX_DIMS:
        raise fail(op, index, f"copy needs {len(dims)} dims; at most {MAX_DIMS} are supported")
    pad = MAX_DIMS - len(dims)
    return [f"(const void *){part.input}", f"(void *){part.output}",
            [1] * pad + list(dims), [0] * pad + list(ins), [0] * pad + list(outs),
            part.in_start, part.out_start]


def copy_layer(ctx: LowerContext, op: Operator, index: int, parts: Sequence[CopyPart],
               elem_bytes: int, info: dict[str, object]) -> Layer:
    """A ``tm_copy_nd`` layer over *parts* (a file-scope compound literal array)."""
    literal = [_part_literal(p, op, index) for p in parts if p.elements > 0]
    array = ("(const tm_copy_part[]){" + ", ".join(c_literal(p) for p in literal) + "}"
             if literal else "0")
    params: dict[str, CValue] = {"parts": array, "num_parts": len(literal),
                                 "elem_bytes": elem_bytes}
    return Layer(index, op.opcode, "tm_copy_nd", "tm_copy_nd_params", params, 0, info)


# --------------------------------------------------------------------------- helpers


def _const_ints(ctx: LowerContext, op: Operator, index: int, t: int, what: str) -> list[int]:
    if t < 0:
        raise fail(op, index, f"the {what} input is missing")
    tensor = ctx.tensor(t)
    if tensor.data is None:
        raise fail(op, index, f"{what} tensor {t} must be constant (TFLM requires it too)")
    if tensor.dtype not in _INDEX_TYPES:
        raise fail(op, index, f"{what} tensor {t} must be int32 or int64, is {tensor.dtype.name}")
    return [int(v) for v in tensor.array().reshape(-1)]


def _io(ctx: LowerContext, op: Operator, index: int, x: int, outs: Sequence[int]) -> int:
    """Check the data input and outputs share one element type; return its size.

    Quantization parameters are not compared: TFLM copies the stored values
    unchanged whatever the output's quantization, and so does this runtime."""
    require_types(ctx, op, index, _ANY, [x, *outs])
    dtype = ctx.tensor(x).dtype
    for y in outs:
        if ctx.tensor(y).dtype != dtype:
            raise fail(op, index, f"output {y} type {ctx.tensor(y).dtype.name} differs from "
                                  f"input type {dtype.name}")
    if any(d <= 0 for d in ctx.tensor(x).shape):
        raise fail(op, index, f"input tensor {x} has an empty dimension: "
                              f"{tuple(ctx.tensor(x).shape)}")
    return dtype.itemsize


def _check_shape(op: Operator, index: int, t: int, got: Sequence[int],
                 want: Sequence[int]) -> None:
    if tuple(got) != tuple(want):
        raise fail(op, index, f"output {t} shape {tuple(got)} does not match the computed "
                              f"{tuple(want)}")


def _axis(op: Operator, index: int, axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        raise fail(op, index, f"axis {axis} out of range for rank {rank}")
    return a


# --------------------------------------------------------------------------- TRANSPOSE / SLICE


def lower_transpose(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """TRANSPOSE (reference_ops::Transpose): out[i] = in[i permuted by perm]."""
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        raise fail(op, index, "expects 2 inputs (input, perm) and 1 output")
    x, perm_t = op.inputs
    y = op.outputs[0]
    size = _io(ctx, op, index, x, [y])
    shape = tuple(ctx.tensor(x).shape)
    perm = [_axis(op, index, p, len(shape)) for p in _const_ints(ctx, op, index, perm_t, "perm")]
    if not 1 <= len(shape) <= TRANSPOSE_MAX_DIMS:
        raise fail(op, index, f"{len(shape)}-D input; TFLM supports 1..{TRANSPOSE_MAX_DIMS} dims")
    if sorted(perm) != list(range(len(shape))):
        raise fail(op, index, f"perm {perm} is not a permutation of {len(shape)} dims")
    out_shape = tuple(shape[p] for p in perm)
    _check_shape(op, index, y, ctx.tensor(y).shape, out_shape)
    strides = row_strides(shape)
    part = CopyPart(ctx.ptr(x), ctx.ptr(y), out_shape, tuple(strides[p] for p in perm),
                    row_strides(out_shape))
    return copy_layer(ctx, op, index, [part], size, {"perm": tuple(perm)})


def lower_slice(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """SLICE (reference_ops::Slice): begin, size (-1 = to the end)."""
    if len(op.inputs) != 3 or len(op.outputs) != 1:
        raise fail(op, index, "expects 3 inputs (input, begin, size) and 1 output")
    x, b_t, s_t = op.inputs
    y = op.outputs[0]
    size = _io(ctx, op, index, x, [y])
    shape = tuple(ctx.tensor(x).shape)
    begin = _const_ints(ctx, op, index, b_t, "begin")
    sizes = _const_ints(ctx, op, index, s_t, "size")
    if not 1 <= len(shape) <= SLICE_MAX_DIMS or len(begin) != len(shape) or \
            len(sizes) != len(shape):
        raise fail(op, index, f"begin {begin} / size {sizes} must have one entry per input dim "
                              f"(1..{SLICE_MAX_DIMS} dims)")
    out_shape = []
    for d, (b, s) in enumerate(zip(begin, sizes)):
        n = shape[d] - b if s == -1 else s
        if b < 0 or n < 0 or b + n > shape[d]:
            raise fail(op, index, f"slice [{b}, {b}+{s}) out of range for dim {d} of size "
                                  f"{shape[d]}")
        out_shape.append(n)
    _check_shape(op, index, y, ctx.tensor(y).shape, out_shape)
    strides = row_strides(shape)
    part = CopyPart(ctx.ptr(x), ctx.ptr(y), tuple(out_shape), strides, row_strides(out_shape),
                    sum(b * s for b, s in zip(begin, strides)))
    return copy_layer(ctx, op, index, [part], size, {"begin": tuple(begin),
                                                     "size": tuple(out_shape)})


def strided_slice_ranges(shape: Sequence[int], begin: Sequence[int], end: Sequence[int],
                         strides: Sequence[int], begin_mask: int, end_mask: int,
                         shrink_mask: int, offset: bool) -> list[range]:
    """The input indices STRIDED_SLICE visits per axis, as TFLM's Eval computes them
    (``StridedSliceStartForAxis`` / ``StridedSliceEndForAxis``, loop while
    ``stride > 0 ? i < end : i > end``)."""
    out = []
    for axis, size in enumerate(shape):
        stride = strides[axis]
        lo, hi = (0, size) if stride > 0 else (-1, size - 1)
        start = begin[axis] + size if begin[axis] < 0 else begin[axis]
        start = min(max(start, lo), hi)
        if begin_mask >> axis & 1:
            start = 0 if stride > 0 else size - 1
        if shrink_mask >> axis & 1:
            stop = start if start >= size else start + 1
        else:
            stop = end[axis] + (start if offset else 0)
            stop = stop + size if stop < 0 else stop
            stop = min(max(stop, lo), hi)
            if end_mask >> axis & 1:
                stop = size if stride > 0 else -1
        out.append(range(start, stop, stride))
    return out


def lower_strided_slice(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """STRIDED_SLICE (reference_ops::StridedSlice), 1..4-D, constant begin/end/strides."""
    if len(op.inputs) != 4 or len(op.outputs) != 1:
        raise fail(op, index, "expects 4 inputs (input, begin, end, strides) and 1 output")
    x, b_t, e_t, s_t = op.inputs
    y = op.outputs[0]
    size = _io(ctx, op, index, x, [y])
    shape = tuple(ctx.tensor(x).shape)
    rank = len(shape)
    if not 1 <= rank <= STRIDED_SLICE_MAX_DIMS:
        raise fail(op, index, f"{rank}-D input; TFLM supports 1..{STRIDED_SLICE_MAX_DIMS} dims")
    opts = op.options
    for mask in ("ellipsis_mask", "new_axis_mask"):
        if int(opts.get(mask, 0)):
            raise fail(op, index, f"{mask} is not supported (TFLM ignores it)")
    begin, end, strides = (_const_ints(ctx, op, index, t, w)
                           for t, w in ((b_t, "begin"), (e_t, "end"), (s_t, "strides")))
    if not len(begin) == len(end) == len(strides) == rank:
        raise fail(op, index, f"begin/end/strides need {rank} entries each")
    if 0 in strides:
        raise fail(op, index, "stride value has to be non-zero")
    shrink = int(opts.get("shrink_axis_mask", 0))
    ranges = strided_slice_ranges(shape, begin, end, strides, int(opts.get("begin_mask", 0)),
                                  int(opts.get("end_mask", 0)), shrink,
                                  bool(opts.get("offset", False)))
    want = [len(r) for a, r in enumerate(ranges) if not shrink >> a & 1]
    _check_shape(op, index, y, ctx.tensor(y).shape, want)
    in_strides = row_strides(shape)
    dims = tuple(len(r) for r in ranges)
    part = CopyPart(ctx.ptr(x), ctx.ptr(y), dims,
                    tuple(r.step * s for r, s in zip(ranges, in_strides)), row_strides(dims),
                    sum(r.start * s for r, s in zip(ranges, in_strides) if len(r)))
    return copy_layer(ctx, op, index, [part], size,
                      {"ranges": tuple((r.start, r.stop, r.step) for r in ranges)})


# --------------------------------------------------------------------------- SPLIT / PACK


def _split_parts(ctx: LowerContext, x: int, outs: Sequence[int], axis: int,
                 sizes: Sequence[int]) -> list[CopyPart]:
    """Copies of consecutive *sizes*-long pieces of *x* along *axis* into *outs*."""
    shape = tuple(ctx.tensor(x).shape)
    strides = row_strides(shape)
    parts, at = [], 0
    for y, n in zip(outs, sizes):
        dims = (*shape[:axis], n, *shape[axis + 1:])
        parts.append(CopyPart(ctx.ptr(x), ctx.ptr(y), dims, strides, row_strides(dims),
                              at * strides[axis]))
        at += n
    return parts


def _split_to(ctx: LowerContext, op: Operator, index: int, x: int, outs: list[int], axis: int,
              sizes: list[int] | None, squeeze: bool, size: int) -> Layer:
    shape = tuple(ctx.tensor(x).shape)
    if sizes is None:
        if shape[axis] % len(outs):
            raise fail(op, index, f"dim {axis} of size {shape[axis]} does not split into "
                                  f"{len(outs)} equal parts")
        sizes = [shape[axis] // len(outs)] * len(outs)
    if sum(sizes) != shape[axis] or min(sizes) < 0:
        raise fail(op, index, f"split sizes {sizes} do not add up to dim {axis} of size "
                              f"{shape[axis]}")
    for y, n in zip(outs, sizes):
        want = (*shape[:axis], *(() if squeeze else (n,)), *shape[axis + 1:])
        _check_shape(op, index, y, ctx.tensor(y).shape, want)
    parts = _split_parts(ctx, x, outs, axis, sizes)
    return copy_layer(ctx, op, index, parts, size, {"axis": axis, "sizes": tuple(sizes)})


def lower_split(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """SPLIT (inputs: axis, input) into num_splits equal parts."""
    if len(op.inputs) != 2 or not op.outputs:
        raise fail(op, index, "expects 2 inputs (axis, input) and at least 1 output")
    axis_t, x = op.inputs
    size = _io(ctx, op, index, x, op.outputs)
    axis = _axis(op, index, _const_ints(ctx, op, index, axis_t, "axis")[0],
                 len(ctx.tensor(x).shape))
    return _split_to(ctx, op, index, x, list(op.outputs), axis, None, False, size)


def lower_split_v(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """SPLIT_V (inputs: input, size_splits, axis); one size may be -1 (the rest)."""
    if len(op.inputs) != 3 or not op.outputs:
        raise fail(op, index, "expects 3 inputs (input, size_splits, axis) and at least 1 "
                              "output")
    x, s_t, axis_t = op.inputs
    size = _io(ctx, op, index, x, op.outputs)
    shape = tuple(ctx.tensor(x).shape)
    axis = _axis(op, index, _const_ints(ctx, op, index, axis_t, "axis")[0], len(shape))
    sizes = _const_ints(ctx, op, index, s_t, "size_splits")
    if len(sizes) != len(op.outputs) or sizes.count(-1) > 1:
        raise fail(op, index, f"size_splits {sizes} must have one entry per output, at most "
                              "one -1")
    if -1 in sizes:
        sizes[sizes.index(-1)] = shape[axis] - (sum(sizes) + 1)
    return _split_to(ctx, op, index, x, list(op.outputs), axis, sizes, False, size)


def lower_unpack(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """UNPACK: one output per index along *axis*, that dim removed."""
    if len(op.inputs) != 1 or not op.outputs:
        raise fail(op, index, "expects 1 input and at least 1 output")
    x = op.inputs[0]
    size = _io(ctx, op, index, x, op.outputs)
    shape = tuple(ctx.tensor(x).shape)
    axis = _axis(op, index, int(op.options.get("axis", 0)), len(shape))
    if shape[axis] != len(op.outputs):
        raise fail(op, index, f"dim {axis} has size {shape[axis]}, op has {len(op.outputs)} "
                              "outputs")
    return _split_to(ctx, op, index, x, list(op.outputs), axis, [1] * shape[axis], True, size)


def lower_pack(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """PACK: stack N equally shaped inputs along a new *axis* of the output."""
    if not op.inputs or len(op.outputs) != 1 or min(op.inputs) < 0:
        raise fail(op, index, "expects at least 1 input and 1 output")
    y = op.outputs[0]
    size = _io(ctx, op, index, y, list(op.inputs))
    in_shape = tuple(ctx.tensor(op.inputs[0]).shape)
    axis = _axis(op, index, int(op.options.get("axis", 0)), len(in_shape) + 1)
    out_shape = (*in_shape[:axis], len(op.inputs), *in_shape[axis:])
    _check_shape(op, index, y, ctx.tensor(y).shape, out_shape)
    out_strides = row_strides(out_shape)
    dims = (*in_shape[:axis], 1, *in_shape[axis:])
    parts = []
    for k, x in enumerate(op.inputs):
        if tuple(ctx.tensor(x).shape) != in_shape:
            raise fail(op, index, f"input {x} shape {tuple(ctx.tensor(x).shape)} differs from "
                                  f"input {op.inputs[0]} shape {in_shape}")
        parts.append(CopyPart(ctx.ptr(x), ctx.ptr(y), dims, row_strides(dims), out_strides,
                              0, k * out_strides[axis]))
    return copy_layer(ctx, op, index, parts, size, {"axis": axis, "inputs": len(op.inputs)})


# --------------------------------------------------------------------------- shape-only ops


def lower_shape(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """SHAPE folded on the host: the (static) input shape becomes a flash constant
    the device copies into the output (int32 or int64)."""
    if len(op.inputs) != 1 or len(op.outputs) != 1:
        raise fail(op, index, "expects 1 input and 1 output")
    x, y = op.inputs[0], op.outputs[0]
    ty = ctx.tensor(y)
    if ty.dtype not in _INDEX_TYPES:
        raise fail(op, index, f"output type {ty.dtype.name}; SHAPE produces int32 or int64")
    shape = [int(d) for d in ctx.tensor(x).shape]
    _check_shape(op, index, y, ty.shape, (len(shape),))
    sym = ctx.const_array(C_TYPES[ty.dtype], shape or [0], "shape")
    part = CopyPart(sym, ctx.ptr(y), (len(shape),), (1,), (1,))
    return copy_layer(ctx, op, index, [part], ty.dtype.itemsize, {"shape": tuple(shape)})


def lower_squeeze(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """SQUEEZE: drops size-1 dims; on the device RESHAPE's byte copy."""
    if len(op.inputs) != 1:
        raise fail(op, index, "expects 1 input")
    shape = tuple(ctx.tensor(op.inputs[0]).shape)
    dims = [_axis(op, index, int(d), len(shape)) for d in op.options.get("squeeze_dims", ())]
    want = tuple(n for d, n in enumerate(shape) if not (n == 1 and (not dims or d in dims)))
    if any(shape[d] != 1 for d in dims):
        raise fail(op, index, f"squeeze_dims {dims} name dims of size != 1 in {shape}")
    _check_shape(op, index, op.outputs[0], ctx.tensor(op.outputs[0]).shape, want)
    return lower_reshape(ctx, op, index)


def lower_expand_dims(ctx: LowerContext, op: Operator, index: int) -> Layer:
    """EXPAND_DIMS: inserts a size-1 dim at a constant axis; RESHAPE's byte copy."""
    if len(op.inputs) != 2:
        raise fail(op, index, "expects 2 inputs (input, axis)")
    shape = tuple(ctx.tensor(op.inputs[0]).shape)
    axis = _axis(op, index, _const_ints(ctx, op, index, op.inputs[1], "axis")[0],
                 len(shape) + 1)
    _check_shape(op, index, op.outputs[0], ctx.tensor(op.outputs[0]).shape,
                 (*shape[:axis], 1, *shape[axis:]))
    return lower_reshape(ctx, op, index)


LOWERINGS: dict[str, Lowering] = {
    "TRANSPOSE": lower_transpose,
    "SLICE": lower_slice,
    "STRIDED_SLICE": lower_strided_slice,
    "SPLIT": lower_split,
    "SPLIT_V": lower_split_v,
    "UNPACK": lower_unpack,
    "PACK": lower_pack,
    "SHAPE": lower_shape,
    "SQUEEZE": lower_squeeze,
    "EXPAND_DIMS": lower_expand_dims,
}
