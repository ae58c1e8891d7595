"""Model builders: small TFLite models with any quantization (single ops, chains).

Why: kernel and lowering tests, the demo models of the virtual board
(:mod:`tinymeter.models.demomodels`) and the sweep's firmware-cache warm-up need models
whose quantization parameters are chosen by the caller (odd scales, per-channel
weights, extreme zero points) rather than by a converter. These helpers build
:class:`~tinymeter.models.tflite.Model` objects with explicit buffer indices, so
``parse_tflite(serialize_tflite(m)) == m`` holds, and can run the result in the
tflite-micro reference interpreter (``run_tflm``: the golden reference of every kernel
test; tflite-micro is a test-only dependency, imported there).

Typical use::

    x = int8_tensor("x", (1, 8, 8, 3), 0.05, -3)
    w = int8_tensor("w", (4, 3, 3, 3), 1.0, 0, data=random_int8((4, 3, 3, 3), seed=1),
                    per_channel_scales=[0.01, 0.02, 0.03, 0.04])
    b = bias_tensor("b", np.zeros(4, np.int32), input_scale=0.05, weight_scales=w)
    y = int8_tensor("y", (1, 8, 8, 4), 0.1, 5)
    blob = single_op_model("CONV_2D", [x, w, b], [y], {"padding": "SAME",
                           "stride_w": 1, "stride_h": 1})
    (out,) = run_tflm(blob, [x_data])
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tinymeter.models.tflite import (
    Model,
    Operator,
    Quantization,
    Subgraph,
    Tensor,
    TensorType,
    default_options,
    parse_tflite,
    serialize_tflite,
)

logger = logging.getLogger(__name__)

__all__ = [
    "bias_tensor",
    "int8_tensor",
    "random_int8",
    "run_tflm",
    "single_op_model",
    "single_op_model_ir",
    "tensor",
]


def _to_bytes(data: Any, dtype: TensorType, shape: tuple[int, ...], name: str) -> bytes:
    arr = np.asarray(data)
    numel = math.prod(shape)
    if arr.size != numel:
        raise ValueError(f"tensor {name!r}: data has {arr.size} elements, shape {shape} needs "
                         f"{numel}")
    target = dtype.numpy_dtype
    if arr.dtype != target:
        cast = arr.astype(target)
        if arr.dtype.kind in "iub" and not np.array_equal(cast, arr):
            raise ValueError(f"tensor {name!r}: data does not fit {dtype.name}")
        arr = cast
    return np.ascontiguousarray(arr).reshape(-1).tobytes()


def tensor(
    name: str,
    shape: Sequence[int],
    dtype: TensorType = TensorType.INT8,
    *,
    scale: float | Sequence[float] | None = None,
    zero_point: int | Sequence[int] | None = None,
    quantized_dimension: int = 0,
    data: Any = None,
) -> Tensor:
    """A tensor of any type; quantized when ``scale`` is given (scalar or per-channel).

    ``data`` (array-like, converted to ``dtype``) makes it a constant. The buffer index
    is filled in by :func:`single_op_model_ir`.
    """
    shape_t = tuple(int(d) for d in shape)
    quant = None
    if scale is not None:
        # float32-rounded: the file stores float32, so parse(serialize(m)) == m holds
        scales = tuple(float(np.float32(s)) for s in np.atleast_1d(scale))
        if zero_point is None:
            zero_point = 0
        zps = tuple(int(z) for z in np.atleast_1d(zero_point))
        if len(zps) == 1 and len(scales) > 1:
            zps = zps * len(scales)
        quant = Quantization(scale=scales, zero_point=zps, quantized_dimension=quantized_dimension)
    raw = None if data is None else _to_bytes(data, dtype, shape_t, name)
    return Tensor(name=name, dtype=dtype, shape=shape_t, buffer=0, data=raw, quantization=quant)


def int8_tensor(
    name: str,
    shape: Sequence[int],
    scale: float = 1.0,
    zero_point: int = 0,
    data: Any = None,
    per_channel_scales: Sequence[float] | None = None,
    quantized_dimension: int = 0,
) -> Tensor:
    """An int8 tensor, per-tensor (``scale``/``zero_point``) or per-channel.

    With ``per_channel_scales`` the zero points are all ``zero_point`` (TFLM requires 0
    for per-channel weights) and ``scale`` is ignored.
    """
    scales: float | Sequence[float] = scale if per_channel_scales is None else per_channel_scales
    return tensor(name, shape, TensorType.INT8, scale=scales, zero_point=zero_point,
                  quantized_dimension=quantized_dimension, data=data)


def bias_tensor(
    name: str,
    data: Any,
    input_scale: float,
    weight_scales: Sequence[float] | Tensor,
    dtype: TensorType = TensorType.INT32,
) -> Tensor:
    """A constant int32 (or int64) bias quantized with scale input_scale * weight_scale.

    ``weight_scales`` may be the weight tensor itself; one bias scale per output channel
    (or one for per-tensor weights), zero point 0, as the TFLite converter writes them.
    """
    if isinstance(weight_scales, Tensor):
        if weight_scales.quantization is None:
            raise ValueError(f"weight tensor {weight_scales.name!r} is not quantized")
        weight_scales = weight_scales.quantization.scale
    scales = [float(np.float32(input_scale) * np.float32(s)) for s in weight_scales]
    arr = np.asarray(data)
    return tensor(name, arr.shape, dtype, scale=scales, zero_point=0, data=arr)


def random_int8(shape: Sequence[int], seed: int = 0, low: int = -128,
                high: int = 127) -> np.ndarray:
    """Deterministic random int8 array (inclusive bounds), for weights and inputs."""
    rng = np.random.default_rng(seed)
    return rng.integers(low, high + 1, size=tuple(shape), dtype=np.int64).astype(np.int8)


def single_op_model_ir(
    opcode: str,
    inputs: Sequence[Tensor | None],
    outputs: Sequence[Tensor],
    options: Mapping[str, Any] | None = None,
    version: int = 1,
    description: str = "tinymeter test model",
) -> Model:
    """A one-operator :class:`Model`: tensors = inputs (None = omitted optional) + outputs.

    ``options`` may be partial; missing fields get the schema defaults.

    Non-constant inputs become the subgraph inputs in the given order; constants get
    buffers 1, 2, ...; buffer 0 stays the empty sentinel.
    """
    tensors: list[Tensor] = []
    op_inputs: list[int] = []
    graph_inputs: list[int] = []
    next_buffer = 1
    for t in inputs:
        if t is None:
            op_inputs.append(-1)
            continue
        if t.data is not None:
            t = dataclasses.replace(t, buffer=next_buffer)
            next_buffer += 1
        else:
            graph_inputs.append(len(tensors))
            t = dataclasses.replace(t, buffer=0)
        op_inputs.append(len(tensors))
        tensors.append(t)
    op_outputs = []
    for t in outputs:
        if t.data is not None:
            raise ValueError(f"output tensor {t.name!r} must not have constant data")
        op_outputs.append(len(tensors))
        tensors.append(dataclasses.replace(t, buffer=0))
    # Complete the options with schema defaults, as the reader reports them.
    full_options = {**default_options(opcode), **(options or {})}
    op = Operator(opcode=opcode, version=version, inputs=tuple(op_inputs),
                  outputs=tuple(op_outputs), options=full_options)
    sg = Subgraph(name="main", tensors=tuple(tensors), inputs=tuple(graph_inputs),
                  outputs=tuple(op_outputs), operators=(op,))
    return Model(version=3, description=description, subgraphs=(sg,))


def single_op_model(
    opcode: str,
    inputs: Sequence[Tensor | None],
    outputs: Sequence[Tensor],
    options: Mapping[str, Any] | None = None,
    version: int = 1,
) -> bytes:
    """Serialized .tflite bytes of :func:`single_op_model_ir`."""
    return serialize_tflite(single_op_model_ir(opcode, inputs, outputs, options, version))


def run_tflm(model: bytes | Model, inputs: Sequence[np.ndarray],
             arena_size: int | None = None) -> list[np.ndarray]:
    """Run one inference in the tflite-micro Python interpreter (the bit-exact reference).

    Needs the ``tflite-micro`` package (test extra). Returns every model output.
    """
    from tflite_micro.python.tflite_micro import runtime  # test-only dependency

    if isinstance(model, Model):
        data, n_out = serialize_tflite(model), len(model.main.outputs)
    else:
        data = bytes(model)
        n_out = len(parse_tflite(data).main.outputs)
    interp = runtime.Interpreter.from_bytes(
        data, arena_size=arena_size if arena_size is not None else max(len(data) * 10, 1 << 16)
    )
    for i, x in enumerate(inputs):
        interp.set_input(np.ascontiguousarray(x), i)
    interp.invoke()
    return [np.array(interp.get_output(i)) for i in range(n_out)]
