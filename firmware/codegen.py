"""Generate the device-side model file (``model.c``) from a parsed TFLite model.

The host does all the work TFLM does at start-up (validation, quantization Prepare,
arena planning) and writes the result as constant C tables: weights in flash, one
parameter struct per layer, the layer table the harness walks, and the I/O tensor
descriptors. The device therefore carries no flatbuffer parser and no allocator.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tinymeter.abi import report_name
from tinymeter.core.errors import UnsupportedModelError
from tinymeter.firmware import planner
from tinymeter.firmware.lower import LowerContext, lowerings
from tinymeter.firmware.lower.base import ConstArray, Layer, c_literal
from tinymeter.firmware.lower.lstm import while_hint
from tinymeter.firmware.lower.params import check_params, ordered
from tinymeter.models.defects import raise_on_defects
from tinymeter.models.tflite import Model, TensorType

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IoTensor:
    """Shape and type of a model input or output as the device stores it."""

    tensor: int
    name: str
    shape: tuple[int, ...]
    dtype: TensorType
    scale: float | None
    zero_point: int | None

    @property
    def bytes(self) -> int:
        n = 1
        for d in self.shape:
            n *= max(d, 1)
        return n * self.dtype.itemsize

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(self.dtype.numpy_dtype)


@dataclass
class GeneratedModel:
    """The generated C source plus the facts reports need about it."""

    source: str
    layers: list[Layer]
    inputs: list[IoTensor]
    outputs: list[IoTensor]
    arena_bytes: int
    weight_bytes: int
    name: str
    digest: str = field(default="")


def _c_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if 32 <= ord(c) < 127 else f"\\x{ord(c):02x}" for c in escaped) + '"'


#: C spelling of every byte value. Why a table: weights are hundreds of KB and one
#: f-string per byte made emitting them most of ``generate()``'s time.
_HEX_BYTES: tuple[str, ...] = tuple(f"0x{b:02x}" for b in range(256))


def _array_source(arr: ConstArray) -> str:
    """One constant array definition; raw tensor bytes are emitted as uint8 hex."""
    if isinstance(arr.values, bytes | bytearray):
        data = arr.values
        body = ",".join(map(_HEX_BYTES.__getitem__, data)) if data else "0"
        return f"static const uint8_t {arr.symbol}[{max(len(data), 1)}] TM_ALIGNED(16) = {{{body}}};"
    values = list(arr.values)
    if arr.ctype == "float":
        body = ",".join(c_literal(float(v)) for v in values)
    else:
        body = ",".join(c_literal(int(v)) for v in values)
    return (f"static const {arr.ctype} {arr.symbol}[{max(len(values), 1)}] TM_ALIGNED(4) = "
            f"{{{body or '0'}}};")


def _io_tensors(model: Model, indices: Sequence[int]) -> list[IoTensor]:
    sg = model.subgraphs[0]
    out = []
    for t in indices:
        tensor = sg.tensors[t]
        q = tensor.quantization
        scale = float(q.scale[0]) if q and q.scale else None
        zp = int(q.zero_point[0]) if q and q.zero_point else (0 if scale is not None else None)
        out.append(IoTensor(t, tensor.name, tuple(int(d) for d in tensor.shape), tensor.dtype,
                            scale, zp))
    return out


def io_tensors(model: Model, indices: Sequence[int]) -> list[IoTensor]:
    """Shape, type and quantization of the main subgraph's tensors *indices* (the
    model's inputs or outputs) as the device stores them."""
    return _io_tensors(model, indices)


def default_inputs(inputs: Sequence[IoTensor], seed: int = 0) -> list[bytes]:
    """Deterministic pseudo-random inputs, used on hardware where no host feeds data."""
    rng = np.random.default_rng(seed)
    out = []
    for io in inputs:
        n = io.bytes // io.dtype.itemsize
        dtype = io.numpy_dtype
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            arr = rng.integers(info.min, info.max, size=n, endpoint=True, dtype=dtype)
        else:
            arr = rng.standard_normal(n).astype(dtype)
        out.append(arr.tobytes())
    return out


def lower_model(model: Model) -> tuple[LowerContext, list[Layer], planner.ArenaPlan]:
    """Validate every operator, plan the arena and lower each op to a kernel call."""
    if len(model.subgraphs) != 1:
        raise UnsupportedModelError(
            f"model has {len(model.subgraphs)} subgraphs; only single-subgraph models are "
            f"supported{while_hint(model)}")
    raise_on_defects(model)
    sg = model.subgraphs[0]
    table = lowerings()
    unsupported = sorted({op.opcode for op in sg.operators if op.opcode not in table})
    if unsupported:
        raise UnsupportedModelError(
            f"unsupported operator(s): {', '.join(unsupported)} "
            f"(supported: {', '.join(sorted(table))})")
    arena = planner.plan(planner.lifetimes(sg))
    ctx = LowerContext(model, sg, arena.offsets, scratch_offset=arena.size)
    layers = [table[op.opcode](ctx, op, i) for i, op in enumerate(sg.operators)]
    for layer in layers:
        check_params(layer)  # a field the lowering forgot would silently be 0 in C
    if ctx.scratch_bytes:
        arena = planner.ArenaPlan(arena.offsets, arena.size + planner.align(ctx.scratch_bytes))
    return ctx, layers, arena


def generate(model: Model, name: str = "model",
             inputs_default: Sequence[bytes] | None = None) -> GeneratedModel:
    """Produce ``model.c`` for *model*; raises UnsupportedModelError on anything unsupported."""
    name = report_name(name)
    ctx, layers, arena = lower_model(model)
    sg = ctx.subgraph
    ins = _io_tensors(model, sg.inputs)
    outs = _io_tensors(model, sg.outputs)
    defaults = list(inputs_default) if inputs_default is not None else default_inputs(ins)
    for io, data in zip(ins, defaults):
        if len(data) != io.bytes:
            raise UnsupportedModelError(
                f"default input for {io.name} has {len(data)} bytes, expected {io.bytes}")
    lines = [
        "/* Generated by tinymeter: do not edit. */",
        '#include "tm_ops.h"',
        "",
        f"const char tm_model_name[] = {_c_string(name)};",
        f"static uint8_t tm_arena[{max(arena.size, 16)}] TM_ALIGNED(16);",
        f"const uint32_t tm_arena_bytes = {arena.size}u;",
        f"uint32_t tm_layer_cycles[{max(len(layers), 1)}];",
        "",
    ]
    # Lowerings may add arrays while lowering later layers: emit arrays after lowering.
    lines += [_array_source(a) for a in ctx.arrays]
    lines += [f"static {ctype} {sym}[{max(n, 1)}] TM_ALIGNED(4);" for ctype, sym, n in ctx.ram_arrays]
    lines.append("")
    for layer in layers:
        fields = ",\n    ".join(f".{k} = {c_literal(v)}" for k, v in ordered(layer))
        lines.append(f"static const {layer.params_type} tm_l{layer.op_index} = {{\n    {fields}\n}};")
    lines.append("")
    lines.append("const tm_layer tm_layers[] = {")
    lines += [f"    {{{layer.kernel}, &tm_l{layer.op_index}, {_c_string(layer.op_name)}}},"
              for layer in layers]
    if not layers:
        lines.append("    {0, 0, 0},")
    lines.append("};")
    lines.append(f"const uint32_t tm_num_layers = {len(layers)}u;")
    lines.append("")
    for i, data in enumerate(defaults):
        lines.append(_array_source(ConstArray(f"tm_in{i}_default", "uint8_t", bytes(data))))
    lines.append("const tm_io_tensor tm_inputs[] = {")
    lines += [f"    {{(uint8_t *){ctx.ptr(io.tensor)}, {io.bytes}u, tm_in{i}_default}},"
              for i, io in enumerate(ins)]
    lines.append("};")
    lines.append(f"const uint32_t tm_num_inputs = {len(ins)}u;")
    lines.append("const tm_io_tensor tm_outputs[] = {")
    lines += [f"    {{(uint8_t *){ctx.ptr(io.tensor)}, {io.bytes}u, 0}}," for io in outs]
    lines.append("};")
    lines.append(f"const uint32_t tm_num_outputs = {len(outs)}u;")
    source = "\n".join(lines) + "\n"
    weight_bytes = sum(len(a.values) if isinstance(a.values, bytes | bytearray)
                       else len(a.values) * 4 for a in ctx.arrays)
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    log.debug("generated %s: %d layers, arena %d bytes", name, len(layers), arena.size)
    return GeneratedModel(source, layers, ins, outs, arena.size, weight_bytes, name, digest)
