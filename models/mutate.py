"""Model mutants for fuzzing: the promise that bad input ends in a TinymeterError.

Random bytes rarely get past a flatbuffer reader, so most mutations here edit the
parsed :class:`~tinymeter.models.tflite.Model` (a quantization scale, a zero point, a
dimension, an option, an operand index, a constant's bytes) and write it back: the
mutant is structurally sound and reaches lowering and code generation with nonsense
values, which is where crashes hide. A few mutations damage the serialized bytes.
Pure: the random choices come from the ``random.Random`` passed in, so a failing
mutant is reproduced from its seed (tests and ``benchmarks/fuzz.py`` use this).
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable

from tinymeter.models.tflite import Model, Operator, Quantization, Subgraph, Tensor, TensorType

__all__ = ["MUTATIONS", "mutate_bytes", "mutate_model"]

_SCALES = (0.0, -1.0, math.nan, math.inf, -math.inf, 1e-45, 1e-30, 3e38, 1e-3)
_ZERO_POINTS = (-(2**40), -(2**31), -129, -128, 127, 128, 255, 256, 2**31 - 1, 2**40, 1_000_000)
_DIMS = (0, -1, 1, 2, 3, 7, 2**16, 2**31 - 1)
_INTS = (0, -1, 1, 2, 3, 255, 2**31 - 1, -(2**31))
_ENUMS = ("SAME", "VALID", "NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH", "SIGN_BIT", "bogus")


def _replace_tensor(model: Model, rng: random.Random,
                    edit: Callable[[Tensor, random.Random], Tensor]) -> Model:
    sg = model.main
    if not sg.tensors:
        return model
    i = rng.randrange(len(sg.tensors))
    tensors = list(sg.tensors)
    tensors[i] = edit(tensors[i], rng)
    return _with_subgraph(model, dataclasses.replace(sg, tensors=tuple(tensors)))


def _replace_operator(model: Model, rng: random.Random,
                      edit: Callable[[Operator, Subgraph, random.Random], Operator]) -> Model:
    sg = model.main
    if not sg.operators:
        return model
    i = rng.randrange(len(sg.operators))
    ops = list(sg.operators)
    ops[i] = edit(ops[i], sg, rng)
    return _with_subgraph(model, dataclasses.replace(sg, operators=tuple(ops)))


def _with_subgraph(model: Model, sg: Subgraph) -> Model:
    return dataclasses.replace(model, subgraphs=(sg, *model.subgraphs[1:]))


def _scale(t: Tensor, rng: random.Random) -> Tensor:
    q = t.quantization or Quantization(scale=(1.0,), zero_point=(0,))
    scales = list(q.scale)
    scales[rng.randrange(len(scales))] = rng.choice(_SCALES)
    return dataclasses.replace(t, quantization=dataclasses.replace(q, scale=tuple(scales)))


def _zero_point(t: Tensor, rng: random.Random) -> Tensor:
    q = t.quantization or Quantization(scale=(1.0,), zero_point=(0,))
    zps = list(q.zero_point)
    zps[rng.randrange(len(zps))] = rng.choice(_ZERO_POINTS)
    return dataclasses.replace(t, quantization=dataclasses.replace(q, zero_point=tuple(zps)))


def _dimension(t: Tensor, rng: random.Random) -> Tensor:
    if not t.shape:
        return dataclasses.replace(t, shape=(rng.choice(_DIMS),))
    shape = list(t.shape)
    shape[rng.randrange(len(shape))] = rng.choice(_DIMS)
    return dataclasses.replace(t, shape=tuple(shape))


def _rank(t: Tensor, rng: random.Random) -> Tensor:
    shape = list(t.shape)
    if shape and rng.random() < 0.5:
        shape.pop(rng.randrange(len(shape)))
    else:
        shape.insert(rng.randrange(len(shape) + 1), 1)
    return dataclasses.replace(t, shape=tuple(shape))


def _dtype(t: Tensor, rng: random.Random) -> Tensor:
    return dataclasses.replace(t, dtype=rng.choice(list(TensorType)))


def _size(t: Tensor) -> int:
    """Bytes a constant of *t* would take (4 when it has no fixed size), capped at 1 MiB."""
    try:
        size = t.dtype.nbytes(max(t.numel, 1))
    except Exception:  # a sub-byte or variable-size type: any small buffer will do
        size = None
    return min(size or 4, 1 << 20)


def _data(t: Tensor, rng: random.Random) -> Tensor:
    choice = rng.randrange(3)
    if choice == 0 or t.data is None:
        return dataclasses.replace(t, data=None if t.data is not None else bytes(_size(t)))
    if choice == 1:
        return dataclasses.replace(t, data=t.data[: rng.randrange(len(t.data) + 1)] or None)
    return dataclasses.replace(t, data=bytes(rng.getrandbits(8) for _ in range(len(t.data))))


def _per_channel(t: Tensor, rng: random.Random) -> Tensor:
    q = t.quantization
    if q is None or not q.scale:
        return t
    n = rng.choice((1, 2, 3, len(q.scale) + 1))
    return dataclasses.replace(t, quantization=Quantization(
        scale=tuple(q.scale[0] for _ in range(n)), zero_point=tuple(0 for _ in range(n)),
        quantized_dimension=rng.choice((0, 1, 3, 7, -1))))


def _option(op: Operator, _sg: Subgraph, rng: random.Random) -> Operator:
    if not op.options:
        return op
    key = rng.choice(sorted(op.options))
    old = op.options[key]
    if isinstance(old, bool):
        new: object = not old
    elif isinstance(old, int):
        new = rng.choice(_INTS)
    elif isinstance(old, float):
        new = rng.choice(_SCALES)
    elif isinstance(old, str):
        new = rng.choice(_ENUMS)
    else:
        return op
    return dataclasses.replace(op, options={**op.options, key: new})


def _operand(op: Operator, sg: Subgraph, rng: random.Random) -> Operator:
    inputs, outputs = list(op.inputs), list(op.outputs)
    target = inputs if inputs and (not outputs or rng.random() < 0.7) else outputs
    if not target:
        return op
    choices = [-1, *range(len(sg.tensors))] if target is inputs else list(range(len(sg.tensors)))
    target[rng.randrange(len(target))] = rng.choice(choices)
    if rng.random() < 0.2:
        if target and rng.random() < 0.5:
            target.pop()
        else:
            target.append(rng.choice(choices))
    return dataclasses.replace(op, inputs=tuple(inputs), outputs=tuple(outputs))


def _opcode(op: Operator, sg: Subgraph, rng: random.Random) -> Operator:
    others = sorted({o.opcode for o in sg.operators} | {"ADD", "MUL", "SOFTMAX", "RESHAPE",
                                                         "CONV_2D", "FULLY_CONNECTED"})
    return dataclasses.replace(op, opcode=rng.choice(others), options={})


#: Model-level mutations (name -> function of (model, rng)).
MUTATIONS: dict[str, Callable[[Model, random.Random], Model]] = {
    "scale": lambda m, r: _replace_tensor(m, r, _scale),
    "zero_point": lambda m, r: _replace_tensor(m, r, _zero_point),
    "dimension": lambda m, r: _replace_tensor(m, r, _dimension),
    "rank": lambda m, r: _replace_tensor(m, r, _rank),
    "dtype": lambda m, r: _replace_tensor(m, r, _dtype),
    "data": lambda m, r: _replace_tensor(m, r, _data),
    "per_channel": lambda m, r: _replace_tensor(m, r, _per_channel),
    "option": lambda m, r: _replace_operator(m, r, _option),
    "operand": lambda m, r: _replace_operator(m, r, _operand),
    "opcode": lambda m, r: _replace_operator(m, r, _opcode),
}


def mutate_model(model: Model, rng: random.Random, count: int = 1) -> tuple[Model, list[str]]:
    """*count* random model-level mutations; returns the mutant and their names."""
    names = []
    for _ in range(count):
        name = rng.choice(sorted(MUTATIONS))
        model = MUTATIONS[name](model, rng)
        names.append(name)
    return model, names


def mutate_bytes(data: bytes, rng: random.Random, count: int = 1) -> bytes:
    """*count* byte-level mutations of a serialized model: flips, 32-bit edge values,
    truncation."""
    buf = bytearray(data)
    for _ in range(count):
        kind = rng.randrange(3)
        if kind == 0 and buf:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        elif kind == 1 and len(buf) >= 4:
            at = rng.randrange(len(buf) - 3) & ~3
            buf[at:at + 4] = rng.choice((0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 1)).to_bytes(4, "little")
        elif buf:
            del buf[rng.randrange(len(buf)):]
    return bytes(buf)
