"""Static per-operator summary of a model: shapes, MACs, parameters, memory.

Pure function of a :class:`~tinymeter.models.tflite.Model` (no I/O) so the CLI, the
cost model and reports share one definition of "MACs" and "weight bytes".

Definitions (chosen to match how MLPerf Tiny and most papers count):

* MACs count multiply-accumulates of the matrix-like ops only:
  CONV_2D = out_elems * kh * kw * in_channels_per_group;
  DEPTHWISE_CONV_2D = out_elems * kh * kw;
  FULLY_CONNECTED = batches * out_features * in_features (= out_elems * in_features);
  TRANSPOSE_CONV = in_elems * kh * kw * out_channels;
  CONV_3D = out_elems * kd * kh * kw * in_channels;
  BATCH_MATMUL = out_elems * K;
  UNIDIRECTIONAL_SEQUENCE_LSTM = batch * time steps * (elements of the input, recurrent
  and projection weights), i.e. 4 * units * (inputs + units) per step without projection;
  SVDF = batch * (elements of the feature and time weights).
  Element-wise ops, pooling, softmax, reshapes etc. count 0 MACs.
* Parameters are the constant inputs that hold learned values: a constant input
  counts if it is floating point or quantized (weights, biases). Constant int32
  shape/axis/permutation operands are not quantized and do not count.
* Weight bytes are the storage bytes of those parameter tensors.
* Activation bytes are the bytes of non-constant tensors; the naive peak is the
  largest, over ops, sum of one op's distinct non-constant inputs and outputs (what a
  planner needs at least, ignoring tensors kept alive across ops).
Totals count each shared constant tensor once.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from tinymeter.core.texttable import text_table
from tinymeter.models.defects import model_defects
from tinymeter.models.tflite import Model, Operator, Subgraph, Tensor, TensorType

logger = logging.getLogger(__name__)

__all__ = ["ModelSummary", "OpSummary", "format_summary", "inspect_model", "op_macs"]

_FLOAT_TYPES = (TensorType.FLOAT32, TensorType.FLOAT16, TensorType.FLOAT64, TensorType.BFLOAT16)


@dataclass(frozen=True)
class OpSummary:
    """One operator row of the summary."""

    index: int
    opcode: str
    input_shapes: tuple[tuple[int, ...], ...]
    input_dtypes: tuple[str, ...]
    output_shapes: tuple[tuple[int, ...], ...]
    output_dtypes: tuple[str, ...]
    macs: int
    params: int
    weight_bytes: int
    output_bytes: int
    activation_bytes: int  # distinct non-constant inputs + outputs of this op


@dataclass(frozen=True)
class ModelSummary:
    """Per-op rows plus model totals (see module docstring for the definitions)."""

    ops: tuple[OpSummary, ...]
    total_macs: int
    total_params: int
    total_weight_bytes: int
    peak_activation_bytes: int
    input_bytes: int
    output_bytes: int
    #: Value defects (bad quantization, unknown dims, non-constant weights), one line
    #: each naming operator and tensor; ``estimate`` refuses a model that has any.
    defects: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``inspect --json``): shapes as lists, defects as strings."""
        return asdict(self)


def _known(shape: tuple[int, ...]) -> bool:
    """False for shapes with unknown (negative) dimensions: no sizes or MACs from them."""
    return all(d >= 0 for d in shape)


def _is_param(t: Tensor) -> bool:
    return t.data is not None and (t.dtype in _FLOAT_TYPES or t.quantization is not None)


def _bytes(t: Tensor) -> int:
    if not _known(t.shape):
        return 0
    size = t.dtype.nbytes(t.numel)
    return 0 if size is None else size


def _tensor(sg: Subgraph, index: int) -> Tensor | None:
    return None if index < 0 else sg.tensors[index]


def op_macs(sg: Subgraph, op: Operator) -> int:
    """Multiply-accumulates of one operator (0 for ops without a weight/matrix product)."""
    ins = [_tensor(sg, i) for i in op.inputs]
    outs = [sg.tensors[i] for i in op.outputs]
    if not outs or len(ins) < 2 or ins[1] is None or ins[0] is None:
        return 0
    if not all(_known(t.shape) for t in (*ins, *outs) if t is not None):
        return 0  # unknown dims: reported as a defect, not counted as negative MACs
    out_elems = outs[0].numel
    w = ins[1].shape
    if op.opcode == "CONV_2D" and len(w) == 4:
        return out_elems * w[1] * w[2] * w[3]
    if op.opcode == "DEPTHWISE_CONV_2D" and len(w) == 4:
        return out_elems * w[1] * w[2]
    if op.opcode == "FULLY_CONNECTED" and len(w) == 2:
        return out_elems * w[1]
    if op.opcode == "CONV_3D" and len(w) == 5:
        return out_elems * w[0] * w[1] * w[2] * w[3]
    if op.opcode == "TRANSPOSE_CONV" and len(ins) >= 3 and ins[2] is not None:
        # inputs: output_shape, weights [out_c, kh, kw, in_c], activations
        if len(w) == 4:
            return ins[2].numel * w[0] * w[1] * w[2]
        return 0
    if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM" and len(ins) >= 17 and ins[0].shape:
        rows = ins[0].numel // max(ins[0].shape[-1], 1)  # batch * time steps
        weights = [ins[k] for k in (1, 2, 3, 4, 5, 6, 7, 8, 16)]
        return rows * sum(t.numel for t in weights if t is not None)
    feature, time_w = ins[1], ins[2] if len(ins) >= 3 else None
    if op.opcode == "SVDF" and time_w is not None and ins[0].shape:
        return ins[0].shape[0] * (feature.numel + time_w.numel)
    if op.opcode == "BATCH_MATMUL":
        lhs = ins[0].shape
        if not lhs:
            return 0
        k = lhs[-2] if op.options.get("adj_x") and len(lhs) >= 2 else lhs[-1]
        return out_elems * k
    return 0


def inspect_model(model: Model, subgraph: int = 0) -> ModelSummary:
    """Summarize one subgraph (default: the main one) of ``model``."""
    sg = model.subgraphs[subgraph]
    rows = []
    seen_params: set[int] = set()
    total_params = total_weight_bytes = total_macs = peak = 0
    for index, op in enumerate(sg.operators):
        ins = [(i, sg.tensors[i]) for i in op.inputs if i >= 0]
        outs = [(i, sg.tensors[i]) for i in op.outputs]
        params = weight_bytes = 0
        for i, t in ins:
            if _is_param(t) and _known(t.shape):
                params += t.numel
                weight_bytes += _bytes(t)
                if i not in seen_params:
                    seen_params.add(i)
                    total_params += t.numel
                    total_weight_bytes += _bytes(t)
        live = {i: t for i, t in ins + outs if t.data is None}
        activation = sum(_bytes(t) for t in live.values())
        peak = max(peak, activation)
        macs = op_macs(sg, op)
        total_macs += macs
        rows.append(
            OpSummary(
                index=index,
                opcode=op.opcode,
                input_shapes=tuple(t.shape for _, t in ins),
                input_dtypes=tuple(t.dtype.name for _, t in ins),
                output_shapes=tuple(t.shape for _, t in outs),
                output_dtypes=tuple(t.dtype.name for _, t in outs),
                macs=macs,
                params=params,
                weight_bytes=weight_bytes,
                output_bytes=sum(_bytes(t) for _, t in outs),
                activation_bytes=activation,
            )
        )
    summary = ModelSummary(
        ops=tuple(rows),
        total_macs=total_macs,
        total_params=total_params,
        total_weight_bytes=total_weight_bytes,
        peak_activation_bytes=peak,
        input_bytes=sum(_bytes(sg.tensors[i]) for i in sg.inputs),
        output_bytes=sum(_bytes(sg.tensors[i]) for i in sg.outputs),
        defects=tuple(str(d) for d in model_defects(model, subgraph)),
    )
    logger.debug("inspected %d ops: %d MACs, %d params", len(rows), total_macs, total_params)
    return summary


def _fmt_shapes(shapes: tuple[tuple[int, ...], ...]) -> str:
    return " ".join("x".join(str(d) for d in s) or "scalar" for s in shapes)


def format_summary(summary: ModelSummary) -> str:
    """Plain-text table of a summary (for the CLI and notebooks)."""
    headers = ["#", "op", "output", "MACs", "params", "weight B", "activation B"]
    rows = [[str(r.index), r.opcode, _fmt_shapes(r.output_shapes), f"{r.macs:,}", f"{r.params:,}",
             f"{r.weight_bytes:,}", f"{r.activation_bytes:,}"] for r in summary.ops]
    lines = text_table(headers, rows, left=(1, 2))
    lines.append("")
    lines.append(
        f"total: {summary.total_macs:,} MACs ({summary.total_macs / 1e6:.2f} M), "
        f"{summary.total_params:,} params, {summary.total_weight_bytes:,} weight bytes, "
        f"peak activations {summary.peak_activation_bytes:,} bytes (naive)"
    )
    if summary.defects:
        lines.append(f"{len(summary.defects)} defect(s); estimate refuses this model:")
        lines.extend(f"  defect: {d}" for d in summary.defects)
    return "\n".join(lines)

