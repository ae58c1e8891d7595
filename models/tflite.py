"""Strict, self-contained reader and writer for TFLite flatbuffers (schema version 3).

Why self-written: TensorFlow's generated schema modules are heavy optional
dependencies, and the ``flatbuffers`` runtime does no bounds checking, so a truncated
or corrupted file would surface as an ``IndexError``/``struct.error`` deep inside a
generated accessor. Every read here goes through :class:`_Reader`, which checks each
offset, vector length and string terminator against the file size and raises
:class:`~tinymeter.core.errors.MalformedModelError` naming the defect and where it is.

Field slot ids follow ``tensorflow/lite/schema/schema.fbs``: the n-th field declared
in a table has slot n (a union field takes two slots: ``<name>_type`` then the value).

The in-memory model (:class:`Model` and friends) is deliberately smaller than the
schema: it keeps what the firmware generator, the cost model and the writer need
(tensors, constant data, quantization, operators with decoded options, metadata).
Signature defs, tensor ``shape_signature``, ``min``/``max`` and sparsity parameters
are not kept, so a parse/serialize cycle drops them; the TFLM runtime needs none of
them.

The writer (:func:`serialize_tflite`) exists so tests can build single-op models with
arbitrary quantization and run them through the TFLM reference interpreter.
"""

from __future__ import annotations

import enum
import logging
import math
import os
import struct
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import flatbuffers
import numpy as np

from tinymeter.core.errors import MalformedModelError, UnsupportedModelError

logger = logging.getLogger(__name__)

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
# root offset (4) + identifier (4) + smallest vtable (4) + table soffset (4)
_MIN_FILE_SIZE = 16

__all__ = [
    "BUILTIN_OPERATORS",
    "FILE_IDENTIFIER",
    "SCHEMA_VERSION",
    "Model",
    "Operator",
    "Quantization",
    "Subgraph",
    "Tensor",
    "TensorType",
    "builtin_code",
    "default_options",
    "load_tflite",
    "options_table_name",
    "parse_tflite",
    "serialize_tflite",
]


# --------------------------------------------------------------------------- enums


class TensorType(enum.Enum):
    """``tflite.TensorType`` (values are the schema's byte codes)."""

    FLOAT32 = 0
    FLOAT16 = 1
    INT32 = 2
    UINT8 = 3
    INT64 = 4
    STRING = 5
    BOOL = 6
    INT16 = 7
    COMPLEX64 = 8
    INT8 = 9
    FLOAT64 = 10
    COMPLEX128 = 11
    UINT64 = 12
    RESOURCE = 13
    VARIANT = 14
    UINT32 = 15
    UINT16 = 16
    INT4 = 17
    BFLOAT16 = 18
    INT2 = 19
    UINT4 = 20
    FLOAT8_E4M3FN = 21
    FLOAT8_E5M2 = 22

    @property
    def numpy_dtype(self) -> np.dtype:
        """Little-endian numpy dtype of one element.

        Raises UnsupportedModelError for types without a numpy equivalent (packed
        sub-byte ints, bfloat16, float8, strings, resources, variants).
        """
        code = _NUMPY_CODES.get(self.name)
        if code is None:
            raise UnsupportedModelError(f"tensor type {self.name} has no numpy equivalent")
        return np.dtype(code)

    @property
    def itemsize(self) -> int:
        """Bytes per element; raises UnsupportedModelError for packed/variable-size types."""
        size = _ITEMSIZES.get(self.name)
        if size is None:
            raise UnsupportedModelError(f"tensor type {self.name} has no fixed byte size")
        return size

    def nbytes(self, count: int) -> int | None:
        """Storage bytes for ``count`` elements (packed types round up); None if variable."""
        if self.name in ("INT4", "UINT4"):
            return (count + 1) // 2
        if self.name == "INT2":
            return (count + 3) // 4
        size = _ITEMSIZES.get(self.name)
        return None if size is None else count * size


_NUMPY_CODES: Mapping[str, str] = types.MappingProxyType(
    {
        "FLOAT32": "<f4",
        "FLOAT16": "<f2",
        "INT32": "<i4",
        "UINT8": "u1",
        "INT64": "<i8",
        "BOOL": "?",
        "INT16": "<i2",
        "COMPLEX64": "<c8",
        "INT8": "i1",
        "FLOAT64": "<f8",
        "COMPLEX128": "<c16",
        "UINT64": "<u8",
        "UINT32": "<u4",
        "UINT16": "<u2",
    }
)
_ITEMSIZES: Mapping[str, int] = types.MappingProxyType(
    {
        **{name: np.dtype(code).itemsize for name, code in _NUMPY_CODES.items()},
        "BFLOAT16": 2,
        "FLOAT8_E4M3FN": 1,
        "FLOAT8_E5M2": 1,
    }
)

# BuiltinOperator names indexed by value (schema order; values are contiguous 0..209).
BUILTIN_OPERATORS: tuple[str, ...] = (
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D",
    "DEPTH_TO_SPACE", "DEQUANTIZE", "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED",
    "HASHTABLE_LOOKUP", "L2_NORMALIZATION", "L2_POOL_2D", "LOCAL_RESPONSE_NORMALIZATION",
    "LOGISTIC", "LSH_PROJECTION", "LSTM", "MAX_POOL_2D", "MUL", "RELU", "RELU_N1_TO_1",
    "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN", "SOFTMAX", "SPACE_TO_DEPTH", "SVDF",
    "TANH", "CONCAT_EMBEDDINGS", "SKIP_GRAM", "CALL", "CUSTOM", "EMBEDDING_LOOKUP_SPARSE",
    "PAD", "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND",
    "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN", "SUB", "DIV", "SQUEEZE",
    "UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN", "EXP",
    "TOPK_V2", "SPLIT", "LOG_SOFTMAX", "DELEGATE", "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST",
    "PRELU", "MAXIMUM", "ARG_MAX", "MINIMUM", "LESS", "NEG", "PADV2", "GREATER",
    "GREATER_EQUAL", "LESS_EQUAL", "SELECT", "SLICE", "SIN", "TRANSPOSE_CONV",
    "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL", "NOT_EQUAL", "LOG", "SUM", "SQRT",
    "RSQRT", "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT", "REDUCE_PROD", "REDUCE_MAX", "PACK",
    "LOGICAL_OR", "ONE_HOT", "LOGICAL_AND", "LOGICAL_NOT", "UNPACK", "REDUCE_MIN",
    "FLOOR_DIV", "REDUCE_ANY", "SQUARE", "ZEROS_LIKE", "FILL", "FLOOR_MOD", "RANGE",
    "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU", "SQUARED_DIFFERENCE", "MIRROR_PAD", "ABS",
    "SPLIT_V", "UNIQUE", "CEIL", "REVERSE_V2", "ADD_N", "GATHER_ND", "COS", "WHERE", "RANK",
    "ELU", "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE", "MATRIX_SET_DIAG", "ROUND",
    "HARD_SWISH", "IF", "WHILE", "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5",
    "SCATTER_ND", "SELECT_V2", "DENSIFY", "SEGMENT_SUM", "BATCH_MATMUL",
    "PLACEHOLDER_FOR_GREATER_OP_CODES", "CUMSUM", "CALL_ONCE", "BROADCAST_TO", "RFFT2D",
    "CONV_3D", "IMAG", "REAL", "COMPLEX_ABS", "HASHTABLE", "HASHTABLE_FIND",
    "HASHTABLE_IMPORT", "HASHTABLE_SIZE", "REDUCE_ALL", "CONV_3D_TRANSPOSE", "VAR_HANDLE",
    "READ_VARIABLE", "ASSIGN_VARIABLE", "BROADCAST_ARGS", "RANDOM_STANDARD_NORMAL",
    "BUCKETIZE", "RANDOM_UNIFORM", "MULTINOMIAL", "GELU", "DYNAMIC_UPDATE_SLICE",
    "RELU_0_TO_1", "UNSORTED_SEGMENT_PROD", "UNSORTED_SEGMENT_MAX", "UNSORTED_SEGMENT_SUM",
    "ATAN2", "UNSORTED_SEGMENT_MIN", "SIGN", "BITCAST", "BITWISE_XOR", "RIGHT_SHIFT",
    "STABLEHLO_LOGISTIC", "STABLEHLO_ADD", "STABLEHLO_DIVIDE", "STABLEHLO_MULTIPLY",
    "STABLEHLO_MAXIMUM", "STABLEHLO_RESHAPE", "STABLEHLO_CLAMP", "STABLEHLO_CONCATENATE",
    "STABLEHLO_BROADCAST_IN_DIM", "STABLEHLO_CONVOLUTION", "STABLEHLO_SLICE",
    "STABLEHLO_CUSTOM_CALL", "STABLEHLO_REDUCE", "STABLEHLO_ABS", "STABLEHLO_AND",
    "STABLEHLO_COSINE", "STABLEHLO_EXPONENTIAL", "STABLEHLO_FLOOR", "STABLEHLO_LOG",
    "STABLEHLO_MINIMUM", "STABLEHLO_NEGATE", "STABLEHLO_OR", "STABLEHLO_POWER",
    "STABLEHLO_REMAINDER", "STABLEHLO_RSQRT", "STABLEHLO_SELECT", "STABLEHLO_SUBTRACT",
    "STABLEHLO_TANH", "STABLEHLO_SCATTER", "STABLEHLO_COMPARE", "STABLEHLO_CONVERT",
    "STABLEHLO_DYNAMIC_SLICE", "STABLEHLO_DYNAMIC_UPDATE_SLICE", "STABLEHLO_PAD",
    "STABLEHLO_IOTA", "STABLEHLO_DOT_GENERAL", "STABLEHLO_REDUCE_WINDOW", "STABLEHLO_SORT",
    "STABLEHLO_WHILE", "STABLEHLO_GATHER", "STABLEHLO_TRANSPOSE", "DILATE",
    "STABLEHLO_RNG_BIT_GENERATOR", "REDUCE_WINDOW", "STABLEHLO_COMPOSITE",
    "STABLEHLO_SHIFT_LEFT", "STABLEHLO_CBRT", "STABLEHLO_CASE",
)  # fmt: skip
_BUILTIN_CODES: Mapping[str, int] = types.MappingProxyType(
    {name: code for code, name in enumerate(BUILTIN_OPERATORS)}
)
_CUSTOM_CODE = _BUILTIN_CODES["CUSTOM"]
_PLACEHOLDER_CODE = _BUILTIN_CODES["PLACEHOLDER_FOR_GREATER_OP_CODES"]

# Small option enums: names indexed by value (all stored as a schema ``byte``).
_ENUMS: Mapping[str, tuple[str, ...]] = types.MappingProxyType(
    {
        "Padding": ("SAME", "VALID"),
        "ActivationFunctionType": ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT"),
        "TensorType": tuple(t.name for t in TensorType),
        "FullyConnectedOptionsWeightsFormat": ("DEFAULT", "SHUFFLED4x16INT8"),
        "LSHProjectionType": ("UNKNOWN", "SPARSE", "DENSE"),
        "LSTMKernelType": ("FULL", "BASIC"),
        "CombinerType": ("SUM", "MEAN", "SQRTN"),
        "MirrorPadMode": ("REFLECT", "SYMMETRIC"),
    }
)


# --------------------------------------------------------------- builtin options spec


class _F(NamedTuple):
    """One options-table field: slot = position in the table's field tuple.

    kind: "bool", "i32", "u32", "i64", "f32", "[i32]", "[f32]", "[i64]", "str",
    an _ENUMS key (byte-stored enum), or "deprecated" (slot kept, value ignored).
    """

    name: str
    kind: str
    default: Any = 0


_PAD = _F("padding", "Padding", "SAME")
_ACT = _F("fused_activation_function", "ActivationFunctionType", "NONE")
_SW = _F("stride_w", "i32")
_SH = _F("stride_h", "i32")
_AQI = _F("asymmetric_quantize_inputs", "bool", False)
_QBT = _F("quantized_bias_type", "TensorType", "FLOAT32")


def _empty(name: str) -> tuple[str, tuple[_F, ...]]:
    return (name, ())


# BuiltinOptions union members in schema order: union type value = index + 1.
_OPTION_TABLES: tuple[tuple[str, tuple[_F, ...]], ...] = (
    ("Conv2DOptions", (_PAD, _SW, _SH, _ACT, _F("dilation_w_factor", "i32", 1),
                       _F("dilation_h_factor", "i32", 1), _QBT)),
    ("DepthwiseConv2DOptions", (_PAD, _SW, _SH, _F("depth_multiplier", "i32"), _ACT,
                                _F("dilation_w_factor", "i32", 1),
                                _F("dilation_h_factor", "i32", 1))),
    ("ConcatEmbeddingsOptions", (_F("num_channels", "i32"),
                                 _F("num_columns_per_channel", "[i32]", ()),
                                 _F("embedding_dim_per_channel", "[i32]", ()))),
    ("LSHProjectionOptions", (_F("type", "LSHProjectionType", "UNKNOWN"),)),
    ("Pool2DOptions", (_PAD, _SW, _SH, _F("filter_width", "i32"), _F("filter_height", "i32"),
                       _ACT)),
    ("SVDFOptions", (_F("rank", "i32"), _ACT, _AQI)),
    ("RNNOptions", (_ACT, _AQI)),
    ("FullyConnectedOptions", (_ACT, _F("weights_format", "FullyConnectedOptionsWeightsFormat",
                                        "DEFAULT"),
                               _F("keep_num_dims", "bool", False), _AQI, _QBT)),
    ("SoftmaxOptions", (_F("beta", "f32", 0.0),)),
    ("ConcatenationOptions", (_F("axis", "i32"), _ACT)),
    ("AddOptions", (_ACT, _F("pot_scale_int16", "bool", True))),
    ("L2NormOptions", (_ACT,)),
    ("LocalResponseNormalizationOptions", (_F("radius", "i32"), _F("bias", "f32", 0.0),
                                           _F("alpha", "f32", 0.0), _F("beta", "f32", 0.0))),
    ("LSTMOptions", (_ACT, _F("cell_clip", "f32", 0.0), _F("proj_clip", "f32", 0.0),
                     _F("kernel_type", "LSTMKernelType", "FULL"), _AQI)),
    ("ResizeBilinearOptions", (_F("new_height", "deprecated"), _F("new_width", "deprecated"),
                               _F("align_corners", "bool", False),
                               _F("half_pixel_centers", "bool", False))),
    ("CallOptions", (_F("subgraph", "u32"),)),
    ("ReshapeOptions", (_F("new_shape", "[i32]", ()),)),
    ("SkipGramOptions", (_F("ngram_size", "i32"), _F("max_skip_size", "i32"),
                         _F("include_all_ngrams", "bool", False))),
    ("SpaceToDepthOptions", (_F("block_size", "i32"),)),
    ("EmbeddingLookupSparseOptions", (_F("combiner", "CombinerType", "SUM"),)),
    ("MulOptions", (_ACT,)),
    _empty("PadOptions"),
    ("GatherOptions", (_F("axis", "i32"), _F("batch_dims", "i32"))),
    _empty("BatchToSpaceNDOptions"),
    _empty("SpaceToBatchNDOptions"),
    _empty("TransposeOptions"),
    ("ReducerOptions", (_F("keep_dims", "bool", False),)),
    ("SubOptions", (_ACT, _F("pot_scale_int16", "bool", True))),
    ("DivOptions", (_ACT,)),
    ("SqueezeOptions", (_F("squeeze_dims", "[i32]", ()),)),
    ("SequenceRNNOptions", (_F("time_major", "bool", False), _ACT, _AQI)),
    ("StridedSliceOptions", (_F("begin_mask", "i32"), _F("end_mask", "i32"),
                             _F("ellipsis_mask", "i32"), _F("new_axis_mask", "i32"),
                             _F("shrink_axis_mask", "i32"), _F("offset", "bool", False))),
    _empty("ExpOptions"),
    _empty("TopKV2Options"),
    ("SplitOptions", (_F("num_splits", "i32"),)),
    _empty("LogSoftmaxOptions"),
    ("CastOptions", (_F("in_data_type", "TensorType", "FLOAT32"),
                     _F("out_data_type", "TensorType", "FLOAT32"))),
    _empty("DequantizeOptions"),
    _empty("MaximumMinimumOptions"),
    ("ArgMaxOptions", (_F("output_type", "TensorType", "FLOAT32"),)),
    _empty("LessOptions"),
    _empty("NegOptions"),
    _empty("PadV2Options"),
    _empty("GreaterOptions"),
    _empty("GreaterEqualOptions"),
    _empty("LessEqualOptions"),
    _empty("SelectOptions"),
    _empty("SliceOptions"),
    ("TransposeConvOptions", (_PAD, _SW, _SH, _ACT, _QBT)),
    ("SparseToDenseOptions", (_F("validate_indices", "bool", False),)),
    _empty("TileOptions"),
    _empty("ExpandDimsOptions"),
    _empty("EqualOptions"),
    _empty("NotEqualOptions"),
    ("ShapeOptions", (_F("out_type", "TensorType", "FLOAT32"),)),
    _empty("PowOptions"),
    ("ArgMinOptions", (_F("output_type", "TensorType", "FLOAT32"),)),
    ("FakeQuantOptions", (_F("min", "f32", 0.0), _F("max", "f32", 0.0), _F("num_bits", "i32"),
                          _F("narrow_range", "bool", False))),
    ("PackOptions", (_F("values_count", "i32"), _F("axis", "i32"))),
    _empty("LogicalOrOptions"),
    ("OneHotOptions", (_F("axis", "i32"),)),
    _empty("LogicalAndOptions"),
    _empty("LogicalNotOptions"),
    ("UnpackOptions", (_F("num", "i32"), _F("axis", "i32"))),
    _empty("FloorDivOptions"),
    _empty("SquareOptions"),
    _empty("ZerosLikeOptions"),
    _empty("FillOptions"),
    ("BidirectionalSequenceLSTMOptions", (_ACT, _F("cell_clip", "f32", 0.0),
                                          _F("proj_clip", "f32", 0.0),
                                          _F("merge_outputs", "bool", False),
                                          _F("time_major", "bool", True), _AQI)),
    ("BidirectionalSequenceRNNOptions", (_F("time_major", "bool", False), _ACT,
                                         _F("merge_outputs", "bool", False), _AQI)),
    ("UnidirectionalSequenceLSTMOptions", (_ACT, _F("cell_clip", "f32", 0.0),
                                           _F("proj_clip", "f32", 0.0),
                                           _F("time_major", "bool", False), _AQI,
                                           _F("diagonal_recurrent_tensors", "bool", False))),
    _empty("FloorModOptions"),
    _empty("RangeOptions"),
    ("ResizeNearestNeighborOptions", (_F("align_corners", "bool", False),
                                      _F("half_pixel_centers", "bool", False))),
    ("LeakyReluOptions", (_F("alpha", "f32", 0.0),)),
    _empty("SquaredDifferenceOptions"),
    ("MirrorPadOptions", (_F("mode", "MirrorPadMode", "REFLECT"),)),
    _empty("AbsOptions"),
    ("SplitVOptions", (_F("num_splits", "i32"),)),
    ("UniqueOptions", (_F("idx_out_type", "TensorType", "INT32"),)),
    _empty("ReverseV2Options"),
    _empty("AddNOptions"),
    _empty("GatherNdOptions"),
    _empty("CosOptions"),
    _empty("WhereOptions"),
    _empty("RankOptions"),
    ("ReverseSequenceOptions", (_F("seq_dim", "i32"), _F("batch_dim", "i32"))),
    _empty("MatrixDiagOptions"),
    _empty("QuantizeOptions"),
    _empty("MatrixSetDiagOptions"),
    _empty("HardSwishOptions"),
    ("IfOptions", (_F("then_subgraph_index", "i32"), _F("else_subgraph_index", "i32"))),
    ("WhileOptions", (_F("cond_subgraph_index", "i32"), _F("body_subgraph_index", "i32"))),
    ("DepthToSpaceOptions", (_F("block_size", "i32"),)),
    _empty("NonMaxSuppressionV4Options"),
    _empty("NonMaxSuppressionV5Options"),
    _empty("ScatterNdOptions"),
    _empty("SelectV2Options"),
    _empty("DensifyOptions"),
    _empty("SegmentSumOptions"),
    ("BatchMatMulOptions", (_F("adj_x", "bool", False), _F("adj_y", "bool", False), _AQI)),
    ("CumsumOptions", (_F("exclusive", "bool", False), _F("reverse", "bool", False))),
    ("CallOnceOptions", (_F("init_subgraph_index", "i32"),)),
    _empty("BroadcastToOptions"),
    _empty("Rfft2dOptions"),
    ("Conv3DOptions", (_PAD, _F("stride_d", "i32"), _SW, _SH, _ACT,
                       _F("dilation_d_factor", "i32", 1), _F("dilation_w_factor", "i32", 1),
                       _F("dilation_h_factor", "i32", 1))),
    ("HashtableOptions", (_F("table_id", "i32"), _F("key_dtype", "TensorType", "FLOAT32"),
                          _F("value_dtype", "TensorType", "FLOAT32"))),
    _empty("HashtableFindOptions"),
    _empty("HashtableImportOptions"),
    _empty("HashtableSizeOptions"),
    ("VarHandleOptions", (_F("container", "str", ""), _F("shared_name", "str", ""))),
    _empty("ReadVariableOptions"),
    _empty("AssignVariableOptions"),
    ("RandomOptions", (_F("seed", "i64"), _F("seed2", "i64"))),
    ("BucketizeOptions", (_F("boundaries", "[f32]", ()),)),
    ("GeluOptions", (_F("approximate", "bool", False),)),
    _empty("DynamicUpdateSliceOptions"),
    _empty("UnsortedSegmentProdOptions"),
    _empty("UnsortedSegmentMaxOptions"),
    _empty("UnsortedSegmentMinOptions"),
    _empty("UnsortedSegmentSumOptions"),
    _empty("ATan2Options"),
    _empty("SignOptions"),
    _empty("BitcastOptions"),
    _empty("BitwiseXorOptions"),
    _empty("RightShiftOptions"),
)  # fmt: skip
_OPTION_TYPE_BY_NAME: Mapping[str, int] = types.MappingProxyType(
    {name: i + 1 for i, (name, _) in enumerate(_OPTION_TABLES)}
)
_OPTION_FIELDS: Mapping[str, tuple[_F, ...]] = types.MappingProxyType(dict(_OPTION_TABLES))

# Which options table each builtin operator carries (ops not listed carry none).
_OP_OPTIONS: Mapping[str, str] = types.MappingProxyType(
    {
        "ADD": "AddOptions", "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions",
        "L2_POOL_2D": "Pool2DOptions", "CONCATENATION": "ConcatenationOptions",
        "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
        "DEPTH_TO_SPACE": "DepthToSpaceOptions", "DEQUANTIZE": "DequantizeOptions",
        "FULLY_CONNECTED": "FullyConnectedOptions", "L2_NORMALIZATION": "L2NormOptions",
        "LOCAL_RESPONSE_NORMALIZATION": "LocalResponseNormalizationOptions",
        "LSH_PROJECTION": "LSHProjectionOptions", "LSTM": "LSTMOptions", "MUL": "MulOptions",
        "RESHAPE": "ReshapeOptions", "RESIZE_BILINEAR": "ResizeBilinearOptions",
        "RNN": "RNNOptions", "SOFTMAX": "SoftmaxOptions",
        "SPACE_TO_DEPTH": "SpaceToDepthOptions", "SVDF": "SVDFOptions",
        "CONCAT_EMBEDDINGS": "ConcatEmbeddingsOptions", "SKIP_GRAM": "SkipGramOptions",
        "CALL": "CallOptions", "EMBEDDING_LOOKUP_SPARSE": "EmbeddingLookupSparseOptions",
        "PAD": "PadOptions", "UNIDIRECTIONAL_SEQUENCE_RNN": "SequenceRNNOptions",
        "GATHER": "GatherOptions", "BATCH_TO_SPACE_ND": "BatchToSpaceNDOptions",
        "SPACE_TO_BATCH_ND": "SpaceToBatchNDOptions", "TRANSPOSE": "TransposeOptions",
        "MEAN": "ReducerOptions", "SUM": "ReducerOptions", "REDUCE_PROD": "ReducerOptions",
        "REDUCE_MAX": "ReducerOptions", "REDUCE_MIN": "ReducerOptions",
        "REDUCE_ANY": "ReducerOptions", "REDUCE_ALL": "ReducerOptions",
        "SUB": "SubOptions", "DIV": "DivOptions", "SQUEEZE": "SqueezeOptions",
        "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTMOptions",
        "STRIDED_SLICE": "StridedSliceOptions",
        "BIDIRECTIONAL_SEQUENCE_RNN": "BidirectionalSequenceRNNOptions", "EXP": "ExpOptions",
        "TOPK_V2": "TopKV2Options", "SPLIT": "SplitOptions", "LOG_SOFTMAX": "LogSoftmaxOptions",
        "BIDIRECTIONAL_SEQUENCE_LSTM": "BidirectionalSequenceLSTMOptions",
        "CAST": "CastOptions", "MAXIMUM": "MaximumMinimumOptions",
        "MINIMUM": "MaximumMinimumOptions", "ARG_MAX": "ArgMaxOptions", "LESS": "LessOptions",
        "NEG": "NegOptions", "PADV2": "PadV2Options", "GREATER": "GreaterOptions",
        "GREATER_EQUAL": "GreaterEqualOptions", "LESS_EQUAL": "LessEqualOptions",
        "SELECT": "SelectOptions", "SLICE": "SliceOptions",
        "TRANSPOSE_CONV": "TransposeConvOptions", "SPARSE_TO_DENSE": "SparseToDenseOptions",
        "TILE": "TileOptions", "EXPAND_DIMS": "ExpandDimsOptions", "EQUAL": "EqualOptions",
        "NOT_EQUAL": "NotEqualOptions", "SHAPE": "ShapeOptions", "POW": "PowOptions",
        "ARG_MIN": "ArgMinOptions", "FAKE_QUANT": "FakeQuantOptions", "PACK": "PackOptions",
        "LOGICAL_OR": "LogicalOrOptions", "ONE_HOT": "OneHotOptions",
        "LOGICAL_AND": "LogicalAndOptions", "LOGICAL_NOT": "LogicalNotOptions",
        "UNPACK": "UnpackOptions", "FLOOR_DIV": "FloorDivOptions", "SQUARE": "SquareOptions",
        "ZEROS_LIKE": "ZerosLikeOptions", "FILL": "FillOptions",
        "FLOOR_MOD": "FloorModOptions", "RANGE": "RangeOptions",
        "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
        "LEAKY_RELU": "LeakyReluOptions", "SQUARED_DIFFERENCE": "SquaredDifferenceOptions",
        "MIRROR_PAD": "MirrorPadOptions", "ABS": "AbsOptions", "SPLIT_V": "SplitVOptions",
        "UNIQUE": "UniqueOptions", "REVERSE_V2": "ReverseV2Options", "ADD_N": "AddNOptions",
        "GATHER_ND": "GatherNdOptions", "COS": "CosOptions", "WHERE": "WhereOptions",
        "RANK": "RankOptions", "REVERSE_SEQUENCE": "ReverseSequenceOptions",
        "MATRIX_DIAG": "MatrixDiagOptions", "QUANTIZE": "QuantizeOptions",
        "MATRIX_SET_DIAG": "MatrixSetDiagOptions", "HARD_SWISH": "HardSwishOptions",
        "IF": "IfOptions", "WHILE": "WhileOptions",
        "NON_MAX_SUPPRESSION_V4": "NonMaxSuppressionV4Options",
        "NON_MAX_SUPPRESSION_V5": "NonMaxSuppressionV5Options",
        "SCATTER_ND": "ScatterNdOptions", "SELECT_V2": "SelectV2Options",
        "DENSIFY": "DensifyOptions", "SEGMENT_SUM": "SegmentSumOptions",
        "BATCH_MATMUL": "BatchMatMulOptions", "CUMSUM": "CumsumOptions",
        "CALL_ONCE": "CallOnceOptions", "BROADCAST_TO": "BroadcastToOptions",
        "RFFT2D": "Rfft2dOptions", "CONV_3D": "Conv3DOptions",
        "CONV_3D_TRANSPOSE": "Conv3DOptions", "HASHTABLE": "HashtableOptions",
        "HASHTABLE_FIND": "HashtableFindOptions", "HASHTABLE_IMPORT": "HashtableImportOptions",
        "HASHTABLE_SIZE": "HashtableSizeOptions", "VAR_HANDLE": "VarHandleOptions",
        "READ_VARIABLE": "ReadVariableOptions", "ASSIGN_VARIABLE": "AssignVariableOptions",
        "RANDOM_STANDARD_NORMAL": "RandomOptions", "RANDOM_UNIFORM": "RandomOptions",
        "MULTINOMIAL": "RandomOptions", "BUCKETIZE": "BucketizeOptions", "GELU": "GeluOptions",
        "DYNAMIC_UPDATE_SLICE": "DynamicUpdateSliceOptions",
        "UNSORTED_SEGMENT_PROD": "UnsortedSegmentProdOptions",
        "UNSORTED_SEGMENT_MAX": "UnsortedSegmentMaxOptions",
        "UNSORTED_SEGMENT_MIN": "UnsortedSegmentMinOptions",
        "UNSORTED_SEGMENT_SUM": "UnsortedSegmentSumOptions", "ATAN2": "ATan2Options",
        "SIGN": "SignOptions", "BITCAST": "BitcastOptions", "BITWISE_XOR": "BitwiseXorOptions",
        "RIGHT_SHIFT": "RightShiftOptions",
    }
)  # fmt: skip


def options_table_name(opcode: str) -> str | None:
    """Name of the BuiltinOptions table ``opcode`` carries (e.g. "Conv2DOptions"), or None."""
    return _OP_OPTIONS.get(opcode)


def default_options(opcode: str) -> dict[str, Any]:
    """Schema-default options of ``opcode`` (what TFLM assumes when the table is absent)."""
    table = _OP_OPTIONS.get(opcode)
    if table is None:
        return {}
    fields = _OPTION_FIELDS[table]
    return {f.name: f.default for f in fields if f.kind != "deprecated"}


def builtin_code(opcode: str) -> int:
    """BuiltinOperator value of an opcode name ("CUSTOM:<code>" maps to CUSTOM)."""
    if opcode.startswith("CUSTOM:"):
        return _CUSTOM_CODE
    try:
        return _BUILTIN_CODES[opcode]
    except KeyError:
        raise MalformedModelError(f"unknown builtin operator {opcode!r}") from None


# ------------------------------------------------------------------------ dataclasses


@dataclass(frozen=True)
class Quantization:
    """Affine quantization ``real = scale * (q - zero_point)``; per-axis if len(scale) > 1."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    quantized_dimension: int = 0

    @property
    def per_channel(self) -> bool:
        """True when each slice along ``quantized_dimension`` has its own scale."""
        return len(self.scale) > 1


@dataclass(frozen=True)
class Tensor:
    """A subgraph tensor; ``data`` holds the constant bytes (None for activations)."""

    name: str
    dtype: TensorType
    shape: tuple[int, ...]
    buffer: int
    data: bytes | None
    quantization: Quantization | None
    is_variable: bool = False
    # The file had SparsityParameters: ``data`` is the compressed payload, not dense.
    sparse: bool = False

    @property
    def is_constant(self) -> bool:
        """True for tensors whose value is baked into the model (weights, biases, shapes)."""
        return self.data is not None

    @property
    def numel(self) -> int:
        """Number of elements (1 for a scalar shape ``()``)."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Dense storage size in bytes; raises UnsupportedModelError for variable-size types."""
        size = self.dtype.nbytes(self.numel)
        if size is None:
            raise UnsupportedModelError(f"tensor {self.name!r} of type {self.dtype.name} "
                                        "has no fixed size")
        return size

    def array(self) -> np.ndarray:
        """Constant data as a read-only numpy array of ``dtype`` reshaped to ``shape``."""
        if self.data is None:
            raise UnsupportedModelError(f"tensor {self.name!r} is not constant (has no data)")
        if self.sparse:
            raise UnsupportedModelError(f"tensor {self.name!r} is sparse; only dense "
                                        "constant tensors can be decoded")
        return np.frombuffer(self.data, dtype=self.dtype.numpy_dtype).reshape(self.shape)


@dataclass(frozen=True)
class Operator:
    """One operator; ``inputs`` uses -1 for an omitted optional input.

    ``opcode`` is the BuiltinOperator name or "CUSTOM:<custom_code>". ``options`` holds
    the builtin options with schema field names and enum values as names; ops with a
    known options table always get every field (schema defaults filled in).
    """

    opcode: str
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Mapping[str, Any] = field(default_factory=dict, compare=True, hash=False)
    custom_options: bytes = b""
    intermediates: tuple[int, ...] = ()


@dataclass(frozen=True)
class Subgraph:
    """Tensors, graph inputs/outputs (tensor indices) and operators in execution order."""

    name: str
    tensors: tuple[Tensor, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: tuple[Operator, ...]


@dataclass(frozen=True)
class Model:
    """A parsed model; ``metadata`` is (name, buffer bytes) per Model.metadata entry."""

    version: int
    description: str
    subgraphs: tuple[Subgraph, ...]
    metadata: tuple[tuple[str, bytes], ...] = ()

    @property
    def main(self) -> Subgraph:
        """Subgraph 0, the one the interpreter runs."""
        return self.subgraphs[0]


# ---------------------------------------------------------------------------- reader

_U8 = struct.Struct("<B")
_I8 = struct.Struct("<b")
_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_U64 = struct.Struct("<Q")
_F32 = struct.Struct("<f")


class _Reader:
    """Bounds-checked access to the raw flatbuffer bytes."""

    __slots__ = ("buf", "size")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.size = len(buf)

    def check(self, pos: int, n: int, what: str) -> None:
        if pos < 0 or n < 0 or pos + n > self.size:
            raise MalformedModelError(
                f"offset out of bounds at {what}: {n} bytes at offset {pos} "
                f"(file is {self.size} bytes)"
            )

    def scalar(self, st: struct.Struct, pos: int, what: str) -> Any:
        self.check(pos, st.size, what)
        return st.unpack_from(self.buf, pos)[0]

    def table(self, pos: int, what: str) -> _Table:
        soff = self.scalar(_I32, pos, what)
        vt = pos - soff
        vt_size = self.scalar(_U16, vt, f"{what} (vtable)")
        obj_size = self.scalar(_U16, vt + 2, f"{what} (vtable)")
        if vt_size < 4 or vt_size % 2:
            raise MalformedModelError(f"bad vtable size {vt_size} at {what}")
        if obj_size < 4:
            raise MalformedModelError(f"bad table size {obj_size} at {what}")
        self.check(vt, vt_size, f"{what} (vtable)")
        self.check(pos, obj_size, what)
        return _Table(self, pos, vt, vt_size, obj_size, what)


class _Table:
    """A flatbuffer table: slot lookups through its vtable, each bounds-checked."""

    __slots__ = ("obj_size", "pos", "r", "vt", "vt_size", "what")

    def __init__(self, r: _Reader, pos: int, vt: int, vt_size: int, obj_size: int,
                 what: str) -> None:
        self.r, self.pos, self.vt, self.vt_size, self.obj_size = r, pos, vt, vt_size, obj_size
        self.what = what

    def _field(self, slot: int, size: int, name: str) -> int | None:
        entry = 4 + 2 * slot
        if entry + 2 > self.vt_size:
            return None
        voff = _U16.unpack_from(self.r.buf, self.vt + entry)[0]
        if voff == 0:
            return None
        if voff + size > self.obj_size:
            raise MalformedModelError(
                f"offset out of bounds at {self.what}.{name}: field at {voff} overruns the "
                f"{self.obj_size}-byte table"
            )
        return self.pos + voff

    def scalar(self, slot: int, st: struct.Struct, default: Any, name: str) -> Any:
        pos = self._field(slot, st.size, name)
        if pos is None:
            return default
        return self.r.scalar(st, pos, f"{self.what}.{name}")

    def _target(self, slot: int, name: str) -> int | None:
        pos = self._field(slot, 4, name)
        if pos is None:
            return None
        return pos + self.r.scalar(_U32, pos, f"{self.what}.{name}")

    def table(self, slot: int, name: str) -> _Table | None:
        target = self._target(slot, name)
        return None if target is None else self.r.table(target, f"{self.what}.{name}")

    def _vector(self, slot: int, elem_size: int, name: str) -> tuple[int, int] | None:
        target = self._target(slot, name)
        if target is None:
            return None
        what = f"{self.what}.{name}"
        n = self.r.scalar(_U32, target, what)
        self.r.check(target + 4, n * elem_size, f"{what} ({n} elements)")
        return target + 4, n

    def numbers(self, slot: int, dtype: str, name: str) -> tuple[Any, ...]:
        dt = np.dtype(dtype)
        vec = self._vector(slot, dt.itemsize, name)
        if vec is None:
            return ()
        start, n = vec
        return tuple(np.frombuffer(self.r.buf, dtype=dt, count=n, offset=start).tolist())

    def raw(self, slot: int, name: str) -> bytes | None:
        vec = self._vector(slot, 1, name)
        if vec is None:
            return None
        start, n = vec
        return self.r.buf[start:start + n]

    def string(self, slot: int, name: str) -> str | None:
        vec = self._vector(slot, 1, name)
        if vec is None:
            return None
        start, n = vec
        what = f"{self.what}.{name}"
        self.r.check(start + n, 1, f"{what} (string terminator)")
        if self.r.buf[start + n] != 0:
            raise MalformedModelError(f"string at {what} is not NUL-terminated")
        try:
            return self.r.buf[start:start + n].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedModelError(f"string at {what} is not valid UTF-8: {exc}") from None

    def tables(self, slot: int, name: str) -> list[_Table]:
        vec = self._vector(slot, 4, name)
        if vec is None:
            return []
        start, n = vec
        out = []
        for i in range(n):
            pos = start + 4 * i
            target = pos + _U32.unpack_from(self.r.buf, pos)[0]
            out.append(self.r.table(target, f"{self.what}.{name}[{i}]"))
        return out


_SCALAR_KINDS: Mapping[str, struct.Struct] = types.MappingProxyType(
    {"bool": _U8, "i32": _I32, "u32": _U32, "i64": _I64, "f32": _F32}
)
_VECTOR_KINDS: Mapping[str, str] = types.MappingProxyType(
    {"[i32]": "<i4", "[f32]": "<f4", "[i64]": "<i8"}
)


def _decode_options(table: _Table | None, fields: tuple[_F, ...]) -> dict[str, Any]:
    """Decode one options table by its field spec; absent table or fields -> defaults."""
    out: dict[str, Any] = {}
    for slot, f in enumerate(fields):
        if f.kind == "deprecated":
            continue
        if table is None:
            out[f.name] = f.default
        elif f.kind in _SCALAR_KINDS:
            value = table.scalar(slot, _SCALAR_KINDS[f.kind], None, f.name)
            if value is None:
                value = f.default
            elif f.kind == "bool":
                value = bool(value)
            out[f.name] = value
        elif f.kind in _VECTOR_KINDS:
            out[f.name] = table.numbers(slot, _VECTOR_KINDS[f.kind], f.name)
        elif f.kind == "str":
            out[f.name] = table.string(slot, f.name) or ""
        else:
            names = _ENUMS[f.kind]
            value = table.scalar(slot, _I8, None, f.name)
            if value is None:
                out[f.name] = f.default
            elif 0 <= value < len(names):
                out[f.name] = names[value]
            else:
                raise MalformedModelError(
                    f"{table.what}.{f.name} has unknown {f.kind} value {value}"
                )
    return out


def _external(r: _Reader, offset: int, size: int, what: str) -> bytes:
    """Data stored after the flatbuffer (models > 2 GB): offset is from the file start."""
    if offset + size > r.size:
        raise MalformedModelError(
            f"offset out of bounds at {what}: {size} bytes at file offset {offset} "
            f"(file is {r.size} bytes)"
        )
    return r.buf[offset:offset + size]


def _parse_buffer(r: _Reader, t: _Table) -> bytes:
    offset = t.scalar(1, _U64, 0, "offset")
    size = t.scalar(2, _U64, 0, "size")
    if offset > 1:
        return _external(r, offset, size, t.what)
    return t.raw(0, "data") or b""


def _parse_opcode(t: _Table, index: int) -> tuple[str, int]:
    deprecated = t.scalar(0, _I8, 0, "deprecated_builtin_code")
    extended = t.scalar(3, _I32, 0, "builtin_code")
    version = t.scalar(2, _I32, 1, "version")
    code = max(deprecated, extended)
    if not 0 <= code < len(BUILTIN_OPERATORS):
        raise MalformedModelError(f"operator_codes[{index}] has unknown builtin code {code}")
    if code == _CUSTOM_CODE:
        custom = t.string(1, "custom_code")
        if custom is None:
            raise MalformedModelError(f"operator_codes[{index}] is CUSTOM without custom_code")
        return f"CUSTOM:{custom}", version
    return BUILTIN_OPERATORS[code], version


def _parse_quantization(t: _Table | None, shape: tuple[int, ...],
                        what: str) -> Quantization | None:
    if t is None:
        return None
    scale = t.numbers(2, "<f4", "scale")
    zero_point = t.numbers(3, "<i8", "zero_point")
    qdim = t.scalar(6, _I32, 0, "quantized_dimension")
    if not scale and not zero_point:
        return None
    if len(scale) != len(zero_point):
        raise MalformedModelError(
            f"{what}: quantization has {len(scale)} scales but {len(zero_point)} zero points"
        )
    if len(scale) > 1:
        if not 0 <= qdim < len(shape):
            raise MalformedModelError(
                f"{what}: quantized_dimension {qdim} out of range for shape {list(shape)}"
            )
        if shape[qdim] != len(scale):
            raise MalformedModelError(
                f"{what}: {len(scale)} per-channel scales but dimension {qdim} of shape "
                f"{list(shape)} is {shape[qdim]}"
            )
    return Quantization(scale=scale, zero_point=zero_point, quantized_dimension=qdim)


def _parse_tensor(t: _Table, index: int, buffers: Sequence[bytes], sg_label: str) -> Tensor:
    label = f"{sg_label}tensor {index}"
    shape = t.numbers(0, "<i4", "shape")
    type_code = t.scalar(1, _I8, 0, "type")
    try:
        dtype = TensorType(type_code)
    except ValueError:
        raise MalformedModelError(f"{label} has unknown tensor type {type_code}") from None
    buffer = t.scalar(2, _U32, 0, "buffer")
    name = t.string(3, "name") or ""
    label = f"{label} ({name!r})"
    if buffer >= len(buffers) and not (buffer == 0 and not buffers):
        raise MalformedModelError(
            f"{label} refers to buffer {buffer} but the model has {len(buffers)} buffers"
        )
    data = buffers[buffer] if buffers else b""
    quant = _parse_quantization(t.table(4, "quantization"), shape, label)
    is_variable = bool(t.scalar(5, _U8, 0, "is_variable"))
    sparse = t._target(6, "sparsity") is not None
    if data and not sparse:
        if any(d < 0 for d in shape):
            raise MalformedModelError(f"{label} is constant but has unknown dims {list(shape)}")
        expected = dtype.nbytes(math.prod(shape))
        if expected is not None and expected != len(data):
            raise MalformedModelError(
                f"{label}: buffer {buffer} holds {len(data)} bytes but shape {list(shape)} of "
                f"{dtype.name} needs {expected}"
            )
    return Tensor(name=name, dtype=dtype, shape=shape, buffer=buffer, data=data or None,
                  quantization=quant, is_variable=is_variable, sparse=sparse)


def _check_indices(indices: Sequence[int], n: int, what: str, allow_omitted: bool) -> None:
    for i in indices:
        if allow_omitted and i == -1:
            continue
        if not 0 <= i < n:
            raise MalformedModelError(f"{what} tensor index {i} out of range ({n} tensors)")


def _parse_operator(r: _Reader, t: _Table, index: int, opcodes: Sequence[tuple[str, int]],
                    n_tensors: int, sg_label: str) -> Operator:
    label = f"{sg_label}operator {index}"
    opcode_index = t.scalar(0, _U32, 0, "opcode_index")
    if opcode_index >= len(opcodes):
        raise MalformedModelError(
            f"{label}: opcode_index {opcode_index} out of range ({len(opcodes)} operator codes)"
        )
    opcode, version = opcodes[opcode_index]
    label = f"{label} ({opcode})"
    inputs = t.numbers(1, "<i4", "inputs")
    outputs = t.numbers(2, "<i4", "outputs")
    intermediates = t.numbers(8, "<i4", "intermediates")
    _check_indices(inputs, n_tensors, f"{label}: input", allow_omitted=True)
    _check_indices(outputs, n_tensors, f"{label}: output", allow_omitted=False)
    _check_indices(intermediates, n_tensors, f"{label}: intermediate", allow_omitted=False)

    options_type = t.scalar(3, _U8, 0, "builtin_options_type")
    expected = _OP_OPTIONS.get(opcode)
    options: dict[str, Any] = {}
    if options_type == 0:
        if expected is not None:
            options = default_options(opcode)
    elif options_type <= len(_OPTION_TABLES):
        table_name, fields = _OPTION_TABLES[options_type - 1]
        if expected is not None and table_name != expected:
            raise MalformedModelError(f"{label} carries {table_name}, expected {expected}")
        options = _decode_options(t.table(4, table_name), fields)
    else:
        logger.debug("%s: unknown builtin_options_type %d ignored", label, options_type)

    custom = t.raw(5, "custom_options") or b""
    large_offset = t.scalar(9, _U64, 0, "large_custom_options_offset")
    if large_offset > 1:
        large_size = t.scalar(10, _U64, 0, "large_custom_options_size")
        custom = _external(r, large_offset, large_size, f"{label} custom options")
    return Operator(opcode=opcode, version=version, inputs=inputs, outputs=outputs,
                    options=types.MappingProxyType(options), custom_options=custom,
                    intermediates=intermediates)


def _parse_subgraph(r: _Reader, t: _Table, index: int, opcodes: Sequence[tuple[str, int]],
                    buffers: Sequence[bytes]) -> Subgraph:
    sg_label = f"subgraph {index}: " if index else ""
    tensors = tuple(_parse_tensor(tt, i, buffers, sg_label)
                    for i, tt in enumerate(t.tables(0, "tensors")))
    inputs = t.numbers(1, "<i4", "inputs")
    outputs = t.numbers(2, "<i4", "outputs")
    _check_indices(inputs, len(tensors), f"{sg_label}subgraph input", allow_omitted=False)
    _check_indices(outputs, len(tensors), f"{sg_label}subgraph output", allow_omitted=False)
    operators = tuple(_parse_operator(r, ot, i, opcodes, len(tensors), sg_label)
                      for i, ot in enumerate(t.tables(3, "operators")))
    name = t.string(4, "name") or ""
    return Subgraph(name=name, tensors=tensors, inputs=inputs, outputs=outputs,
                    operators=operators)


def parse_tflite(data: bytes | bytearray | memoryview) -> Model:
    """Parse and validate a .tflite flatbuffer.

    Raises MalformedModelError naming the first defect found (bad size, identifier,
    schema version, out-of-bounds offset, index out of range, inconsistent data size
    or quantization).
    """
    buf = bytes(data)
    if len(buf) < _MIN_FILE_SIZE:
        raise MalformedModelError(
            f"file too small ({len(buf)} bytes) to be a TFLite flatbuffer"
        )
    ident = buf[4:8]
    if ident != FILE_IDENTIFIER:
        raise MalformedModelError(f"file identifier is {ident!r}, expected {FILE_IDENTIFIER!r}")
    r = _Reader(buf)
    root = r.table(r.scalar(_U32, 0, "root offset"), "model")
    version = root.scalar(0, _U32, 0, "version")
    if version != SCHEMA_VERSION:
        raise MalformedModelError(f"schema version is {version}, expected {SCHEMA_VERSION}")
    opcodes = [_parse_opcode(t, i) for i, t in enumerate(root.tables(1, "operator_codes"))]
    buffers = [_parse_buffer(r, t) for t in root.tables(4, "buffers")]
    description = root.string(3, "description") or ""
    sg_tables = root.tables(2, "subgraphs")
    if not sg_tables:
        raise MalformedModelError("model has no subgraphs")
    subgraphs = tuple(_parse_subgraph(r, t, i, opcodes, buffers)
                      for i, t in enumerate(sg_tables))
    metadata = []
    for i, t in enumerate(root.tables(6, "metadata")):
        name = t.string(0, "name") or ""
        b = t.scalar(1, _U32, 0, "buffer")
        if b >= len(buffers):
            raise MalformedModelError(
                f"metadata {i} ({name!r}) refers to buffer {b} but the model has "
                f"{len(buffers)} buffers"
            )
        metadata.append((name, buffers[b]))
    model = Model(version=version, description=description, subgraphs=subgraphs,
                  metadata=tuple(metadata))
    logger.debug("parsed TFLite model: %d subgraphs, %d operators in main, %d buffers",
                 len(subgraphs), len(subgraphs[0].operators), len(buffers))
    return model


#: Largest model file read (a flatbuffer cannot exceed 2 GiB; a microcontroller's
#: flash holds a few MiB). Reads stop there, so ``/dev/zero`` or a FIFO cannot eat the
#: machine's memory.
MAX_MODEL_BYTES = 256 * 1024 * 1024


def read_model_bytes(path: str | os.PathLike[str], limit: int = MAX_MODEL_BYTES) -> bytes:
    """The bytes of a model file, at most *limit*; MalformedModelError beyond it or if
    unreadable."""
    where = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except IsADirectoryError:
        raise MalformedModelError(f"model file {where!r} is a directory") from None
    except OSError as exc:
        raise MalformedModelError(f"cannot read model file {where!r}: "
                                  f"{exc.strerror or exc}") from exc
    if len(data) > limit:
        raise MalformedModelError(f"model file {where!r} is larger than {limit // (1 << 20)} MiB "
                                  "(not a .tflite model for a microcontroller)")
    return data


def load_tflite(path: str | os.PathLike[str]) -> Model:
    """Read and parse a .tflite file; an unreadable file raises MalformedModelError too."""
    data = read_model_bytes(path)
    try:
        return parse_tflite(data)
    except MalformedModelError as exc:
        raise MalformedModelError(f"{os.fspath(path)}: {exc}") from None


# ---------------------------------------------------------------------------- writer


def _np_vector(b: Any, values: Sequence[Any], dtype: str) -> int:
    return b.CreateNumpyVector(np.asarray(values, dtype=dtype).reshape(-1))


def _aligned_bytes(b: Any, data: bytes, alignment: int = 16) -> int:
    """Byte vector aligned like the schema's ``force_align: 16`` on Buffer.data."""
    b.StartVector(1, len(data), alignment)
    b.head = b.head - len(data)
    b.Bytes[b.head:b.head + len(data)] = data
    return b.EndVector()


def _offsets_vector(b: Any, offsets: Sequence[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _write_options(b: Any, op: Operator, label: str) -> tuple[int, int]:
    """Write ``op.options``; returns (union type, table offset) or (0, 0) if none."""
    table_name = _OP_OPTIONS.get(op.opcode)
    if table_name is None:
        if op.options:
            raise MalformedModelError(
                f"{label}: {op.opcode} has no builtin options table but options "
                f"{sorted(op.options)} were given"
            )
        return 0, 0
    type_index = _OPTION_TYPE_BY_NAME[table_name]
    try:
        return type_index, _write_options_table(b, op, table_name, label)
    except (TypeError, ValueError, OverflowError) as exc:
        raise MalformedModelError(f"{label}: bad {table_name} value: {exc}") from None


def _write_options_table(b: Any, op: Operator, table_name: str, label: str) -> int:
    fields = _OPTION_FIELDS[table_name]
    known = {f.name for f in fields if f.kind != "deprecated"}
    unknown = set(op.options) - known
    if unknown:
        raise MalformedModelError(
            f"{label}: unknown {table_name} field(s) {sorted(unknown)}; known: {sorted(known)}"
        )
    # Vectors and strings must be built before the table is opened.
    refs: dict[int, int] = {}
    for slot, f in enumerate(fields):
        if f.name not in op.options:
            continue
        value = op.options[f.name]
        if f.kind in _VECTOR_KINDS:
            refs[slot] = _np_vector(b, list(value), _VECTOR_KINDS[f.kind])
        elif f.kind == "str" and value:
            refs[slot] = b.CreateString(str(value))
    b.StartObject(len(fields))
    for slot, f in enumerate(fields):
        if f.name not in op.options or f.kind == "deprecated":
            continue
        value = op.options[f.name]
        if slot in refs:
            b.PrependUOffsetTRelativeSlot(slot, refs[slot], 0)
        elif f.kind in ("[i32]", "[f32]", "[i64]", "str"):
            continue
        elif f.kind == "bool":
            b.PrependBoolSlot(slot, bool(value), bool(f.default))
        elif f.kind == "i32":
            b.PrependInt32Slot(slot, int(value), f.default)
        elif f.kind == "u32":
            b.PrependUint32Slot(slot, int(value), f.default)
        elif f.kind == "i64":
            b.PrependInt64Slot(slot, int(value), f.default)
        elif f.kind == "f32":
            b.PrependFloat32Slot(slot, float(value), f.default)
        else:
            names = _ENUMS[f.kind]
            name = value.name if isinstance(value, TensorType) else value
            if name not in names:
                raise MalformedModelError(
                    f"{label}: {table_name}.{f.name} = {value!r} is not a {f.kind} "
                    f"(one of {list(names)})"
                )
            b.PrependInt8Slot(slot, names.index(name), names.index(f.default))
    return b.EndObject()


def _assign_buffers(model: Model) -> tuple[list[bytes], list[list[int]]]:
    """Buffer contents and each tensor's buffer index in the written file.

    Tensors keep their ``buffer`` index when it is > 0 (so a parse/serialize cycle is
    the identity); constant tensors with buffer 0 get a fresh buffer appended; buffer 0
    stays empty as the TFLite convention requires.
    """
    size = 1 + max((t.buffer for sg in model.subgraphs for t in sg.tensors), default=0)
    buffers: list[bytes | None] = [None] * size
    buffers[0] = b""
    indices: list[list[int]] = []
    for s, sg in enumerate(model.subgraphs):
        sg_indices = []
        for i, t in enumerate(sg.tensors):
            if t.buffer < 0:
                raise MalformedModelError(f"subgraph {s} tensor {i}: negative buffer index")
            index = t.buffer
            if t.data is not None and index == 0:
                buffers.append(t.data)
                index = len(buffers) - 1
            elif index > 0:
                existing = buffers[index]
                data = t.data or b""
                if existing is not None and existing != data:
                    raise MalformedModelError(
                        f"subgraph {s} tensor {i} ({t.name!r}): buffer {index} is shared with "
                        "another tensor holding different data"
                    )
                buffers[index] = data
            sg_indices.append(index)
        indices.append(sg_indices)
    return [d or b"" for d in buffers], indices


def _write_buffer(b: Any, data: bytes) -> int:
    """One Buffer table; empty data gets no vector (like buffer 0, the empty sentinel)."""
    vec = _aligned_bytes(b, data) if data else None
    b.StartObject(3)
    if vec is not None:
        b.PrependUOffsetTRelativeSlot(0, vec, 0)
    return b.EndObject()


def _write_metadata(b: Any, name: str, buffer: int) -> int:
    """One Metadata table: a name and the index of the buffer holding its bytes."""
    name_off = b.CreateString(name)
    b.StartObject(2)
    b.PrependUOffsetTRelativeSlot(0, name_off, 0)
    b.PrependUint32Slot(1, buffer, 0)
    return b.EndObject()


def _write_quantization(b: Any, q: Quantization) -> int:
    """QuantizationParameters with scale, zero_point and quantized_dimension only."""
    scale_off = _np_vector(b, q.scale, "<f4")
    zp_off = _np_vector(b, q.zero_point, "<i8")
    b.StartObject(7)
    b.PrependUOffsetTRelativeSlot(2, scale_off, 0)
    b.PrependUOffsetTRelativeSlot(3, zp_off, 0)
    b.PrependInt32Slot(6, int(q.quantized_dimension), 0)
    return b.EndObject()


def _write_tensor(b: Any, t: Tensor, buffer: int, label: str) -> int:
    """One Tensor table; ``buffer`` is its index from :func:`_assign_buffers`."""
    if t.sparse:
        raise UnsupportedModelError(
            f"{label} ({t.name!r}) is sparse; the writer only supports dense tensors"
        )
    shape_off = _np_vector(b, t.shape, "<i4")
    name_off = b.CreateString(t.name)
    quant_off = None if t.quantization is None else _write_quantization(b, t.quantization)
    b.StartObject(6)
    b.PrependUOffsetTRelativeSlot(0, shape_off, 0)
    b.PrependInt8Slot(1, t.dtype.value, 0)
    b.PrependUint32Slot(2, buffer, 0)
    b.PrependUOffsetTRelativeSlot(3, name_off, 0)
    if quant_off is not None:
        b.PrependUOffsetTRelativeSlot(4, quant_off, 0)
    b.PrependBoolSlot(5, bool(t.is_variable), False)
    return b.EndObject()


def _write_operator(b: Any, op: Operator, opcode_index: int, label: str) -> int:
    """One Operator table: tensor indices, options table, custom options, intermediates."""
    inputs_off = _np_vector(b, op.inputs, "<i4")
    outputs_off = _np_vector(b, op.outputs, "<i4")
    inter_off = _np_vector(b, op.intermediates, "<i4") if op.intermediates else None
    custom_off = b.CreateByteVector(bytes(op.custom_options)) if op.custom_options else None
    opt_type, opt_off = _write_options(b, op, label)
    b.StartObject(9)
    b.PrependUint32Slot(0, opcode_index, 0)
    b.PrependUOffsetTRelativeSlot(1, inputs_off, 0)
    b.PrependUOffsetTRelativeSlot(2, outputs_off, 0)
    if opt_type:
        b.PrependUint8Slot(3, opt_type, 0)
        b.PrependUOffsetTRelativeSlot(4, opt_off, 0)
    if custom_off is not None:
        b.PrependUOffsetTRelativeSlot(5, custom_off, 0)
    if inter_off is not None:
        b.PrependUOffsetTRelativeSlot(8, inter_off, 0)
    return b.EndObject()


def _write_subgraph(b: Any, sg: Subgraph, index: int, buffers: Sequence[int],
                    opcodes: dict[tuple[str, int], int]) -> int:
    """One SubGraph table; registers each operator's (opcode, version) in ``opcodes``.

    ``opcodes`` maps (opcode, version) to its operator_codes index; insertion order is
    the order the codes are written in, so it is shared by all subgraphs.
    """
    tensor_offsets = [_write_tensor(b, t, buffers[i], f"subgraph {index} tensor {i}")
                      for i, t in enumerate(sg.tensors)]
    op_offsets = []
    for i, op in enumerate(sg.operators):
        builtin_code(op.opcode)  # validates the name
        opcode_index = opcodes.setdefault((op.opcode, int(op.version)), len(opcodes))
        label = f"subgraph {index} operator {i} ({op.opcode})"
        op_offsets.append(_write_operator(b, op, opcode_index, label))
    tensors_vec = _offsets_vector(b, tensor_offsets)
    inputs_vec = _np_vector(b, sg.inputs, "<i4")
    outputs_vec = _np_vector(b, sg.outputs, "<i4")
    ops_vec = _offsets_vector(b, op_offsets)
    name_off = b.CreateString(sg.name)
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(0, tensors_vec, 0)
    b.PrependUOffsetTRelativeSlot(1, inputs_vec, 0)
    b.PrependUOffsetTRelativeSlot(2, outputs_vec, 0)
    b.PrependUOffsetTRelativeSlot(3, ops_vec, 0)
    b.PrependUOffsetTRelativeSlot(4, name_off, 0)
    return b.EndObject()


def _write_opcode(b: Any, opcode: str, version: int) -> int:
    """One OperatorCode table, with both the deprecated byte code and the int32 one."""
    code = builtin_code(opcode)
    custom_off = b.CreateString(opcode[len("CUSTOM:"):]) if code == _CUSTOM_CODE else None
    b.StartObject(4)
    b.PrependInt8Slot(0, min(code, _PLACEHOLDER_CODE), 0)
    if custom_off is not None:
        b.PrependUOffsetTRelativeSlot(1, custom_off, 0)
    b.PrependInt32Slot(2, version, 1)
    b.PrependInt32Slot(3, code, 0)
    return b.EndObject()


def serialize_tflite(model: Model, *, verify: bool = True) -> bytes:
    """Write ``model`` as a TFLite flatbuffer (identifier TFL3) that TFLM accepts.

    Operator codes are deduplicated per (opcode, version) in first-use order; options
    tables are written for every op that has one (schema defaults omitted, as
    flatbuffers does). With ``verify`` the result is parsed back, so the writer can
    never hand out a file the reader would reject.
    """
    buffers, buffer_index = _assign_buffers(model)
    total = sum(len(d) for d in buffers) + sum(len(v) for _, v in model.metadata)
    b = flatbuffers.Builder(total + 4096)

    # Buffers (largest objects first keeps them near the file's end); each metadata
    # entry's bytes get a buffer of their own, appended after the tensors' buffers.
    buffer_offsets = [_write_buffer(b, data) for data in buffers]
    metadata_offsets = []
    for name, data in model.metadata:
        buffer_offsets.append(_write_buffer(b, data))
        metadata_offsets.append(_write_metadata(b, name, len(buffer_offsets) - 1))

    opcodes: dict[tuple[str, int], int] = {}
    subgraph_offsets = [_write_subgraph(b, sg, s, buffer_index[s], opcodes)
                        for s, sg in enumerate(model.subgraphs)]
    opcode_offsets = [_write_opcode(b, opcode, version) for opcode, version in opcodes]

    opcodes_vec = _offsets_vector(b, opcode_offsets)
    subgraphs_vec = _offsets_vector(b, subgraph_offsets)
    description_off = b.CreateString(model.description)
    buffers_vec = _offsets_vector(b, buffer_offsets)
    metadata_vec = _offsets_vector(b, metadata_offsets) if metadata_offsets else None
    b.StartObject(8)
    b.PrependUint32Slot(0, int(model.version), 0)
    b.PrependUOffsetTRelativeSlot(1, opcodes_vec, 0)
    b.PrependUOffsetTRelativeSlot(2, subgraphs_vec, 0)
    b.PrependUOffsetTRelativeSlot(3, description_off, 0)
    b.PrependUOffsetTRelativeSlot(4, buffers_vec, 0)
    if metadata_vec is not None:
        b.PrependUOffsetTRelativeSlot(6, metadata_vec, 0)
    b.Finish(b.EndObject(), file_identifier=FILE_IDENTIFIER)
    out = bytes(b.Output())
    if verify:
        parse_tflite(out)
    return out
