"""Model defects a well-formed flatbuffer can still carry: nonsense quantization,
unknown dimensions, weights that are not constant.

The parser checks structure (offsets, counts, buffer sizes); these checks are about
values. A quantization scale of 0, NaN or inf, a zero point outside its type's range
or a conv filter without data parse fine but make every later step wrong (an
activation clamp whose minimum exceeds its maximum, NaN multipliers) or crash it.
One pure pass finds them all, naming operator and tensor, so ``inspect`` can list
them and ``estimate`` can refuse the model before lowering.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tinymeter.core.errors import MalformedModelError, UnsupportedModelError
from tinymeter.models.tflite import Model, Operator, Subgraph, Tensor, TensorType

__all__ = ["Defect", "model_defects", "operator_defects", "raise_on_defects"]

#: Representable range of a zero point per quantized tensor type.
ZERO_POINT_RANGE: dict[TensorType, tuple[int, int]] = {
    TensorType.INT8: (-(2**7), 2**7 - 1),
    TensorType.UINT8: (0, 2**8 - 1),
    TensorType.INT16: (-(2**15), 2**15 - 1),
    TensorType.INT32: (-(2**31), 2**31 - 1),
    TensorType.INT64: (-(2**63), 2**63 - 1),
}

#: Ops whose filter (input 1) and bias (input 2) the runtime bakes into flash, so they
#: must be constant tensors.
CONSTANT_OPERANDS: dict[str, tuple[tuple[int, str], ...]] = {
    "CONV_2D": ((1, "filter"), (2, "bias")),
    "DEPTHWISE_CONV_2D": ((1, "filter"), (2, "bias")),
    "FULLY_CONNECTED": ((1, "filter"), (2, "bias")),
}

_FLOAT_TYPES = (TensorType.FLOAT32, TensorType.FLOAT16, TensorType.FLOAT64, TensorType.BFLOAT16)


@dataclass(frozen=True)
class Defect:
    """One problem of one tensor of one operator."""

    op_index: int
    opcode: str
    tensor_index: int
    tensor_name: str
    problem: str
    #: "malformed" (the values are invalid) or "unsupported" (valid TFLite, not for this runtime).
    kind: str = "malformed"

    def __str__(self) -> str:
        where = f"operator {self.op_index} ({self.opcode})" if self.op_index >= 0 else self.opcode
        return f"{where}: tensor {self.tensor_index} ({self.tensor_name!r}) {self.problem}"


def _scale_problem(scale: float) -> str | None:
    """Why a scale is unusable, or None. TFLM stores scales as float32, so a double that
    rounds to 0 or inf in float32 is as bad as 0 or inf."""
    as_f32 = float(np.float32(scale)) if math.isfinite(scale) and abs(scale) < 3.5e38 else scale
    if math.isnan(scale) or math.isinf(as_f32) or as_f32 <= 0.0:
        return f"has quantization scale {scale!r} (must be finite and > 0 as float32)"
    return None


def tensor_problems(t: Tensor) -> Iterator[str]:
    """Value problems of one tensor, independent of the operator using it."""
    if any(d < 0 for d in t.shape):
        yield f"has unknown dimension(s) in shape {list(t.shape)} (dynamic shapes are not supported)"
    q = t.quantization
    if q is None or t.dtype in _FLOAT_TYPES:
        return
    for scale in q.scale:
        problem = _scale_problem(float(scale))
        if problem:
            yield problem
            break
    low, high = ZERO_POINT_RANGE.get(t.dtype, (None, None))
    if low is None or high is None:
        return
    for zp in q.zero_point:
        if not low <= zp <= high:
            yield f"has zero point {zp} outside the {t.dtype.name} range [{low}, {high}]"
            break


def operator_defects(sg: Subgraph, index: int, op: Operator) -> Iterator[Defect]:
    """The defects of one operator's tensors (checked before anything lowers it)."""
    seen: set[int] = set()
    for t in (*op.inputs, *op.outputs):
        if t < 0 or t >= len(sg.tensors) or t in seen:
            continue
        seen.add(t)
        tensor = sg.tensors[t]
        for problem in tensor_problems(tensor):
            yield Defect(index, op.opcode, t, tensor.name, problem)
    for t in op.outputs:
        if 0 <= t < len(sg.tensors) and sg.tensors[t].data is not None:
            yield Defect(index, op.opcode, t, sg.tensors[t].name,
                         "is an operator output but has constant data (a buffer)")
    for position, role in CONSTANT_OPERANDS.get(op.opcode, ()):
        if position < len(op.inputs) and op.inputs[position] >= 0:
            t = op.inputs[position]
            tensor = sg.tensors[t]
            if tensor.data is None:
                yield Defect(index, op.opcode, t, tensor.name,
                             f"is the {role} but has no constant data (this runtime needs "
                             f"constant weights)", kind="unsupported")


def model_defects(model: Model, subgraph: int = 0) -> list[Defect]:
    """Every defect of the operators of one subgraph (default: the main one), in order."""
    if not model.subgraphs:
        return []
    sg = model.subgraphs[subgraph]
    found = [Defect(-1, "subgraph input", t, sg.tensors[t].name,
                    "is a model input but has constant data (a buffer)")
             for t in sg.inputs if 0 <= t < len(sg.tensors) and sg.tensors[t].data is not None]
    return found + [d for i, op in enumerate(sg.operators) for d in operator_defects(sg, i, op)]


def raise_on_defects(model: Model, subgraph: int = 0) -> None:
    """Raise for the first defect (MalformedModelError, or UnsupportedModelError for
    valid models this runtime cannot run), naming operator and tensor, and saying how
    many more there are."""
    defects = model_defects(model, subgraph)
    if not defects:
        return
    first = defects[0]
    more = f" (and {len(defects) - 1} more defect(s); `tinymeter inspect` lists them)" \
        if len(defects) > 1 else ""
    error = UnsupportedModelError if first.kind == "unsupported" else MalformedModelError
    raise error(f"{first}{more}")
