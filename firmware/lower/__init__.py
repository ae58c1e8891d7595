"""Per-op lowerings: TFLite operator -> device kernel call with precomputed parameters.

Each op-family module exports ``LOWERINGS`` (quantized and mixed-type ops, e.g. int8
kernels, QUANTIZE) and may export ``FLOAT_LOWERINGS`` (float32 kernels) and
``INT16_LOWERINGS`` (int16x8 kernels). When an op has several, the types pick one:
int16 if its first input or first output is int16, else float32 if its first input
is float, else the int8 one -- so a model may mix float, int8 and int16 layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType

from tinymeter.firmware.lower import (
    activations,
    batch_matmul,
    binary,
    conv,
    elementwise,
    float32,
    indexing,
    int16,
    lstm,
    misc,
    movement,
    pool,
    reshape,
    resize,
    softmax,
    svdf,
    transpose_conv,
    unary_math,
)
from tinymeter.firmware.lower.base import Layer, LowerContext, Lowering
from tinymeter.models.tflite import Operator, TensorType

__all__ = ["Layer", "LowerContext", "Lowering", "lowerings"]

#: Op-family modules of this package, in registration order (a later module's entry
#: for the same op and type wins).
MODULES: tuple[ModuleType, ...] = (conv, pool, softmax, elementwise, reshape, float32, misc,
                                   movement, activations, binary, resize,
                                   indexing, int16, transpose_conv,
                                   unary_math, batch_matmul, svdf, lstm)


def _by_input_type(quantized: Lowering, floating: Lowering) -> Lowering:
    def lower(ctx: LowerContext, op: Operator, index: int) -> Layer:
        first = next((t for t in op.inputs if t >= 0), None)
        is_float = first is not None and ctx.tensor(first).dtype == TensorType.FLOAT32
        return (floating if is_float else quantized)(ctx, op, index)

    return lower


def _is_int16(ctx: LowerContext, op: Operator) -> bool:
    first = next((t for t in op.inputs if t >= 0), None)
    probe = [t for t in (first, *op.outputs[:1]) if t is not None]
    return any(ctx.tensor(t).dtype == TensorType.INT16 for t in probe)


def _int16_or(other: Lowering | None, int16_lowering: Lowering) -> Lowering:
    def lower(ctx: LowerContext, op: Operator, index: int) -> Layer:
        if other is None or _is_int16(ctx, op):
            return int16_lowering(ctx, op, index)
        return other(ctx, op, index)

    return lower


def lowerings() -> Mapping[str, Lowering]:
    """Every supported builtin op name mapped to its lowering."""
    quantized: dict[str, Lowering] = {}
    floating: dict[str, Lowering] = {}
    wide: dict[str, Lowering] = {}
    for module in MODULES:
        quantized.update(getattr(module, "LOWERINGS", {}))
        floating.update(getattr(module, "FLOAT_LOWERINGS", {}))
        wide.update(getattr(module, "INT16_LOWERINGS", {}))
    table: dict[str, Lowering] = {**floating, **quantized}
    for opcode in quantized.keys() & floating.keys():
        table[opcode] = _by_input_type(quantized[opcode], floating[opcode])
    for opcode, lowering in wide.items():
        table[opcode] = _int16_or(table.get(opcode), lowering)
    return table
