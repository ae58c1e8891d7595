"""The contract between per-op lowerings and the C code generator.

A *lowering* turns one TFLite operator into a :class:`Layer`: the name of the C
kernel to call and the designated initializer of its parameter struct, with every
quantization integer precomputed on the host (see :mod:`tinymeter.firmware.quant`).
Lowerings are pure functions of the model and the arena plan; they never touch the
filesystem, which keeps them unit-testable and lets the code generator stay
op-agnostic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tinymeter.core.errors import UnsupportedModelError
from tinymeter.firmware import quant
from tinymeter.models.tflite import Model, Operator, Subgraph, Tensor, TensorType

#: A C initializer value: ints are printed as integers, strings are emitted verbatim
#: (C expressions such as symbol names), nested sequences become brace lists.
CValue = int | float | str | Sequence["CValue"]



def c_literal(value: CValue) -> str:
    """*value* as C source: ints (INT32_MIN spelled so C does not read it as a negated
    out-of-range constant), floats as float literals (inf as 1.0f / 0.0f), strings
    verbatim, sequences as brace lists."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        if value == -(2**31):
            return "(-2147483647 - 1)"
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "(-1.0f / 0.0f)" if value < 0 else "(1.0f / 0.0f)"
        return f"{value!r}f"  # repr always has '.' or 'e', so this is a valid C float
    if isinstance(value, str):
        return value
    return "{" + ", ".join(c_literal(v) for v in value) + "}"


#: C element type of each supported tensor type.
C_TYPES: Mapping[TensorType, str] = {
    TensorType.INT8: "int8_t",
    TensorType.UINT8: "uint8_t",
    TensorType.INT16: "int16_t",
    TensorType.INT32: "int32_t",
    TensorType.INT64: "int64_t",
    TensorType.FLOAT32: "float",
    TensorType.BOOL: "uint8_t",
}


@dataclass
class ConstArray:
    """A constant array the generated C file defines (weights, per-channel multipliers)."""

    symbol: str
    ctype: str
    values: Sequence[int] | Sequence[float] | bytes


@dataclass
class Layer:
    """One device-side kernel invocation produced by a lowering."""

    op_index: int
    op_name: str
    kernel: str
    params_type: str
    params: dict[str, CValue]
    macs: int = 0
    #: Free-form facts for reports (e.g. {"kernel_size": "3x3", "stride": 2}).
    info: dict[str, Any] = field(default_factory=dict)


class LowerContext:
    """What a lowering may ask about the model: tensors, data pointers, constant arrays.

    The code generator owns one context per model; it records the constant arrays
    lowerings request so the generated file defines each exactly once.
    """

    def __init__(self, model: Model, subgraph: Subgraph, arena_offsets: Mapping[int, int],
                 scratch_offset: int = 0) -> None:
        self.model = model
        self.subgraph = subgraph
        self._offsets = arena_offsets
        self.arrays: list[ConstArray] = []
        #: Zero-initialised RAM arrays (ctype, symbol, length) a kernel keeps between
        #: calls (e.g. a "state initialised" flag); the generated file defines them.
        self.ram_arrays: list[tuple[str, str, int]] = []
        #: Largest scratch request: the arena grows by it past ``scratch_offset``
        #: (layers run one at a time, so they share one scratch region).
        self.scratch_bytes = 0
        self._scratch_offset = scratch_offset
        self._tensor_symbols: dict[int, str] = {}

    def tensor(self, index: int) -> Tensor:
        """The tensor at *index* in the subgraph."""
        return self.subgraph.tensors[index]

    def is_constant(self, index: int) -> bool:
        return self.subgraph.tensors[index].data is not None

    def ctype(self, index: int) -> str:
        t = self.tensor(index)
        try:
            return C_TYPES[t.dtype]
        except KeyError:
            raise UnsupportedModelError(
                f"tensor {index} ({t.name}) has unsupported type {t.dtype.name}") from None

    def ptr(self, index: int) -> str:
        """C expression for the data of tensor *index*, typed as a pointer to its element type.

        Constant tensors become flash arrays; activations point into the arena.
        """
        t = self.tensor(index)
        ctype = self.ctype(index)
        if t.data is not None:
            sym = self._tensor_symbols.get(index)
            if sym is None:
                sym = f"tm_t{index}"
                self.arrays.append(ConstArray(sym, ctype, t.data))
                self._tensor_symbols[index] = sym
            return f"({ctype} *){sym}"
        if index not in self._offsets:
            raise UnsupportedModelError(f"tensor {index} ({t.name}) has no data and no arena slot")
        return f"({ctype} *)(tm_arena + {self._offsets[index]})"

    def scratch(self, nbytes: int, ctype: str) -> str:
        """C pointer (``ctype *``) to *nbytes* of per-layer scratch in the arena, after
        every planned tensor (like TFLM's RequestScratchBufferInArena)."""
        self.scratch_bytes = max(self.scratch_bytes, nbytes)
        return f"({ctype} *)(tm_arena + {self._scratch_offset})"

    def ram_array(self, ctype: str, length: int, hint: str) -> str:
        """Define a zero-initialised RAM array kept for the whole run; its symbol."""
        symbol = f"tm_r{len(self.ram_arrays)}_{hint}"
        self.ram_arrays.append((ctype, symbol, length))
        return symbol

    def const_array(self, ctype: str, values: Sequence[int] | Sequence[float], hint: str) -> str:
        """Define a constant array (e.g. per-channel multipliers) and return its symbol."""
        symbol = f"tm_c{len(self.arrays)}_{hint}"
        self.arrays.append(ConstArray(symbol, ctype, list(values)))
        return symbol


#: A lowering: (context, operator, operator index) -> Layer. Raises UnsupportedModelError.
Lowering = Callable[[LowerContext, Operator, int], Layer]


def require_types(ctx: LowerContext, op: Operator, index: int, allowed: Sequence[TensorType],
                  tensors: Sequence[int]) -> None:
    """Raise UnsupportedModelError if any of *tensors* has a type outside *allowed*."""
    for t in tensors:
        if t < 0:
            continue
        dtype = ctx.tensor(t).dtype
        if dtype not in allowed:
            names = "/".join(a.name for a in allowed)
            raise UnsupportedModelError(
                f"operator {index} ({op.opcode}): tensor {t} has type {dtype.name}, "
                f"this runtime supports {names}")


def per_tensor_qparams(ctx: LowerContext, op: Operator, index: int, t: int) -> tuple[float, int]:
    """(scale, zero_point) of a per-tensor quantized tensor, or an error naming the tensor."""
    q = ctx.tensor(t).quantization
    if q is None or not q.scale:
        raise UnsupportedModelError(
            f"operator {index} ({op.opcode}): tensor {t} ({ctx.tensor(t).name}) is not quantized")
    if len(q.scale) != 1:
        raise UnsupportedModelError(
            f"operator {index} ({op.opcode}): tensor {t} must be per-tensor quantized")
    return float(q.scale[0]), int(q.zero_point[0]) if q.zero_point else 0


# --------------------------------------------------------------------------- shared checks
# Every lowering validates the same things the same way; these helpers keep the
# error messages (which name the operator, then the defect) identical across families.


def fail(op: Operator, index: int, problem: str) -> UnsupportedModelError:
    """An error naming the operator index, opcode and the problem."""
    return UnsupportedModelError(f"operator {index} ({op.opcode}): {problem}")


@contextmanager
def naming_operator(op: Operator, index: int) -> Iterator[None]:
    """Re-raise an UnsupportedModelError from an op-agnostic helper (e.g. in quant)
    with the operator named, so the user learns which layer is at fault."""
    try:
        yield
    except UnsupportedModelError as exc:
        raise fail(op, index, str(exc)) from None


def single_output_operands(op: Operator, index: int, n_in: int = 1) -> tuple[list[int], int]:
    """(inputs, output), requiring exactly *n_in* present inputs and one output."""
    if len(op.inputs) != n_in or len(op.outputs) != 1 or min(op.inputs, default=0) < 0:
        wanted = f"{n_in} input{'' if n_in == 1 else 's'}"
        raise fail(op, index, f"expects {wanted} and 1 output, has {len(op.inputs)} inputs "
                              f"and {len(op.outputs)} outputs")
    return list(op.inputs), op.outputs[0]


def fused_activation(op: Operator) -> str:
    """The fused activation function's name from the builtin options."""
    return str(op.options.get("fused_activation_function", "NONE"))


def activation_range_quantized(op: Operator, index: int, out_scale: float,
                               out_zp: int) -> tuple[int, int]:
    """TFLM's int8 clamp for the op's fused activation (``CalculateActivationRangeQuantized``)."""
    with naming_operator(op, index):
        return quant.activation_range_quantized(fused_activation(op), out_scale, out_zp)


def activation_range_float(op: Operator, index: int) -> tuple[float, float]:
    """TFLM's float clamp for the op's fused activation (+-FLT_MAX when none)."""
    with naming_operator(op, index):
        return quant.activation_range_float_tflm(fused_activation(op))


def shape4(ctx: LowerContext, op: Operator, index: int, t: int, what: str) -> tuple[int, ...]:
    """The NHWC shape of tensor *t*, which must be 4-D without empty dimensions."""
    shape = tuple(ctx.tensor(t).shape)
    if len(shape) != 4:
        raise fail(op, index, f"{what} tensor {t} must be 4-D (NHWC), has shape {shape}")
    if any(d <= 0 for d in shape):
        raise fail(op, index, f"{what} tensor {t} has an empty dimension: {shape}")
    return shape


def check_output_geometry(op: Operator, index: int, out_shape: Sequence[int], batches: int,
                          pad: quant.PaddingValues, channels: int) -> None:
    """The output tensor must have the shape TFLM's window arithmetic implies.

    TFLM's kernels iterate over the output tensor's dims but pad with the computed
    geometry; a mismatch means a malformed model, not something to emulate.
    """
    want = (batches, pad.out_height, pad.out_width, channels)
    if tuple(out_shape) != want:
        raise fail(op, index, f"output shape {tuple(out_shape)} does not match the "
                              f"computed {want}")


#: Builtin options of a conv window (strides, dilations; absent = 1) and of a pool
#: window (strides, filter size; absent = invalid).
CONV_WINDOW_OPTIONS = ("stride_h", "stride_w", "dilation_h_factor", "dilation_w_factor")
POOL_WINDOW_OPTIONS = ("stride_h", "stride_w", "filter_height", "filter_width")


def window_options(op: Operator, index: int, keys: Sequence[str],
                   default: int) -> tuple[str, list[int]]:
    """(padding, values of *keys*) from the builtin options; every value must be >= 1."""
    padding = str(op.options.get("padding", "SAME"))
    if padding not in ("SAME", "VALID"):
        raise fail(op, index, f"padding {padding} is not supported")
    vals = [int(op.options.get(k, default)) for k in keys]
    if any(v < 1 for v in vals):
        raise fail(op, index, f"{', '.join(keys)} must be >= 1, got {vals}")
    return padding, vals


@dataclass(frozen=True)
class Window:
    """Geometry of a 2-D window op (conv, depthwise conv, pool) as TFLM's Prepare
    computes it (``ComputePaddingHeightWidth``), the output tensor checked against it."""

    padding: str
    batches: int
    in_h: int
    in_w: int
    in_ch: int
    filter_h: int
    filter_w: int
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    pad: quant.PaddingValues

    @property
    def out_pixels(self) -> int:
        """Output positions (batches x height x width)."""
        return self.batches * self.pad.out_height * self.pad.out_width

    def params(self, dilation: bool = True) -> dict[str, CValue]:
        """The geometry fields of a window kernel's parameter struct (dilation only
        for the conv kernels)."""
        out: dict[str, CValue] = {
            "batches": self.batches, "in_h": self.in_h, "in_w": self.in_w,
            "out_h": self.pad.out_height, "out_w": self.pad.out_width,
            "filter_h": self.filter_h, "filter_w": self.filter_w,
            "stride_h": self.stride_h, "stride_w": self.stride_w,
            "pad_h": self.pad.height, "pad_w": self.pad.width,
        }
        if dilation:
            out |= {"dilation_h": self.dilation_h, "dilation_w": self.dilation_w}
        return out

    def info(self) -> dict[str, object]:
        """Report facts: kernel size, stride, padding."""
        return {"kernel_size": f"{self.filter_h}x{self.filter_w}",
                "stride": f"{self.stride_h}x{self.stride_w}", "padding": self.padding}


def conv_window(ctx: LowerContext, op: Operator, index: int, x: int, y: int,
                filter_hw: tuple[int, int], out_ch: int) -> Window:
    """The window of a CONV_2D / DEPTHWISE_CONV_2D with input *x*, output *y*."""
    batches, in_h, in_w, in_ch = shape4(ctx, op, index, x, "input")
    out_shape = shape4(ctx, op, index, y, "output")
    padding, (sh, sw, dh, dw) = window_options(op, index, CONV_WINDOW_OPTIONS, default=1)
    fh, fw = filter_hw
    pad = quant.compute_padding_height_width(sh, sw, dh, dw, in_h, in_w, fh, fw, padding)
    check_output_geometry(op, index, out_shape, batches, pad, out_ch)
    return Window(padding, batches, in_h, in_w, in_ch, fh, fw, sh, sw, dh, dw, pad)


def pool_window(ctx: LowerContext, op: Operator, index: int, x: int, y: int) -> Window:
    """The window of an AVERAGE_POOL_2D / MAX_POOL_2D (dilation 1, channels kept)."""
    batches, in_h, in_w, ch = shape4(ctx, op, index, x, "input")
    out_shape = shape4(ctx, op, index, y, "output")
    padding, (sh, sw, fh, fw) = window_options(op, index, POOL_WINDOW_OPTIONS, default=0)
    pad = quant.compute_padding_height_width(sh, sw, 1, 1, in_h, in_w, fh, fw, padding)
    # With the output matching this geometry every window overlaps the input by at
    # least one tap (SAME pads less than a filter; VALID windows lie inside), so an
    # average never divides by zero -- TFLM would fail at Eval otherwise.
    check_output_geometry(op, index, out_shape, batches, pad, ch)
    return Window(padding, batches, in_h, in_w, ch, fh, fw, sh, sw, 1, 1, pad)


def bias_ptr(ctx: LowerContext, op: Operator, index: int, b: int, channels: int) -> CValue:
    """C expression for a conv/FC bias (``0`` = NULL when omitted); one value per channel."""
    if b < 0:
        return 0
    n = ctx.tensor(b).numel
    if n != channels:
        raise fail(op, index, f"bias tensor {b} has {n} elements for {channels} output channels")
    return ctx.ptr(b)
