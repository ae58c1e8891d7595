"""TRANSPOSE, SLICE, STRIDED_SLICE, SPLIT, SPLIT_V, PACK, UNPACK, SHAPE, SQUEEZE and
EXPAND_DIMS against tflite-micro, bit for bit.

Why: real TinyML models (sequence models, detection heads, U-Nets exported from
Keras) are full of these ops; without them the firmware cannot be built at all.
They share one copy kernel (``tm_copy_nd``), so the property that matters is the
host-side index arithmetic: random shapes, axes, permutations, masks, negative
indices and strides, int8 and float32, each compared with the tflite-micro
interpreter on the host build and on emulated M0+/M4/M7 firmware.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from pathlib import Path

import numpy as np
import pytest
from kernel_check import (
    REFERENCE_RUNNERS,
    WARNING_TARGETS,
    Case,
    Runner,
    assert_kernels_compile_warning_free,
    check,
    named_runner_fixture,
)

from tinymeter.core.errors import UnsupportedModelError
from tinymeter.firmware.codegen import generate
from tinymeter.firmware.lower.movement import fold_dims, strided_slice_ranges
from tinymeter.models.builders import (
    int8_tensor,
    run_tflm,
    single_op_model,
    single_op_model_ir,
    tensor,
)
from tinymeter.models.tflite import TensorType, parse_tflite, serialize_tflite

pytest.importorskip("tflite_micro")

log = logging.getLogger(__name__)

F32 = TensorType.FLOAT32
I32 = TensorType.INT32
N_HOST = 12
RUNNERS = REFERENCE_RUNNERS


runner = named_runner_fixture(RUNNERS)


def _shape(rng: np.random.Generator, rank: int, hi: int = 6) -> tuple[int, ...]:
    return tuple(int(v) for v in rng.integers(1, hi, size=rank))


def _mk(is_float: bool, rng: np.random.Generator):
    """Tensor factory of one element type; int8 tensors share one quantization."""
    q = (float(np.float32(10.0 ** rng.uniform(-2, 0))), int(rng.integers(-128, 128)))
    if is_float:
        return lambda name, s: tensor(name, s, F32)
    return lambda name, s: int8_tensor(name, s, *q)


def _case(blob: bytes, shapes, desc, is_float: bool) -> Case:
    return Case(blob, list(shapes), desc, dtype=np.float32 if is_float else np.int8)


def _i32(name: str, values) -> object:
    arr = np.asarray(values, np.int32)
    return tensor(name, arr.shape, I32, data=arr)


def transpose_case(seed: int) -> Case:
    rng = np.random.default_rng(10_000 + seed)
    rank = 1 + seed % 5
    shape = _shape(rng, rank, 5 if rank < 5 else 4)
    perm = [int(p) for p in rng.permutation(rank)]
    mk = _mk(seed % 2 == 1, rng)
    out = tuple(shape[p] for p in perm)
    blob = single_op_model("TRANSPOSE", [mk("x", shape), _i32("perm", perm)], [mk("y", out)])
    return _case(blob, [shape], {"shape": shape, "perm": perm}, seed % 2 == 1)


def slice_case(seed: int) -> Case:
    rng = np.random.default_rng(11_000 + seed)
    rank = 1 + seed % 5
    shape = _shape(rng, rank, 7)
    begin = [int(rng.integers(0, d)) for d in shape]
    size = [int(rng.integers(1, d - b + 1)) if rng.random() < 0.7 else -1
            for d, b in zip(shape, begin)]
    out = tuple(d - b if s == -1 else s for d, b, s in zip(shape, begin, size))
    mk = _mk(seed % 2 == 1, rng)
    blob = single_op_model("SLICE", [mk("x", shape), _i32("b", begin), _i32("s", size)],
                           [mk("y", out)])
    return _case(blob, [shape], {"shape": shape, "begin": begin, "size": size}, seed % 2 == 1)


def strided_slice_case(seed: int) -> Case:
    """Random begin/end (negative too), strides of both signs, all three masks."""
    rng = np.random.default_rng(12_000 + seed)
    rank = 1 + seed % 4
    shape = _shape(rng, rank, 8)
    while True:
        begin = [int(rng.integers(-d - 1, d + 2)) for d in shape]
        end = [int(rng.integers(-d - 1, d + 2)) for d in shape]
        strides = [int(rng.choice([-3, -2, -1, 1, 1, 2, 3])) for _ in shape]
        bm, em = int(rng.integers(0, 1 << rank)), int(rng.integers(0, 1 << rank))
        shrink = int(rng.integers(0, 1 << rank)) if seed % 3 == 0 else 0
        ranges = strided_slice_ranges(shape, begin, end, strides, bm, em, shrink, False)
        if all(len(r) > 0 for r in ranges):
            break
    out = tuple(len(r) for a, r in enumerate(ranges) if not shrink >> a & 1)
    mk = _mk(seed % 2 == 1, rng)
    opts = {"begin_mask": bm, "end_mask": em, "shrink_axis_mask": shrink}
    blob = single_op_model("STRIDED_SLICE", [mk("x", shape), _i32("b", begin), _i32("e", end),
                                             _i32("s", strides)], [mk("y", out)], opts)
    return _case(blob, [shape], dict(opts, shape=shape, begin=begin, end=end, strides=strides),
                 seed % 2 == 1)


def split_case(seed: int) -> Case:
    """SPLIT (equal parts, axis first) or SPLIT_V (sizes, one of them -1)."""
    rng = np.random.default_rng(13_000 + seed)
    rank = 1 + seed % 4
    shape = list(_shape(rng, rank, 5))
    axis = int(rng.integers(-rank, rank))
    n = int(rng.integers(1, 4))
    mk = _mk(seed % 2 == 1, rng)
    if seed % 3:
        shape[axis] *= n
        out = list(shape)
        out[axis] //= n
        outs = [mk(f"y{i}", tuple(out)) for i in range(n)]
        blob = single_op_model("SPLIT", [_i32("axis", [axis]), mk("x", tuple(shape))], outs,
                               {"num_splits": n})
        desc = {"op": "SPLIT", "shape": shape, "axis": axis, "n": n}
    else:
        sizes = [int(v) for v in rng.integers(0 if n > 1 else 1, 4, size=n)]
        shape[axis] = max(sum(sizes), 1)
        sizes[-1] += shape[axis] - sum(sizes)
        outs = []
        for i, s in enumerate(sizes):
            o = list(shape)
            o[axis] = s
            outs.append(mk(f"y{i}", tuple(o)))
        given = list(sizes)
        if n > 1 and rng.random() < 0.5:
            given[int(rng.integers(0, n))] = -1
        if any(s == 0 for s in sizes):  # TFLM's interpreter rejects empty outputs
            return split_case(seed + 1000)
        blob = single_op_model("SPLIT_V", [mk("x", tuple(shape)), _i32("s", given),
                                           _i32("axis", [axis])], outs, {"num_splits": n})
        desc = {"op": "SPLIT_V", "shape": shape, "axis": axis, "sizes": given}
    return _case(blob, [tuple(shape)], desc, seed % 2 == 1)


def pack_case(seed: int) -> Case:
    """PACK of 1-4 inputs or UNPACK into every index of an axis."""
    rng = np.random.default_rng(14_000 + seed)
    rank = 1 + seed % 3
    shape = _shape(rng, rank, 5)
    mk = _mk(seed % 2 == 1, rng)
    if seed % 4 < 2:
        n = int(rng.integers(1, 5))
        axis = int(rng.integers(-rank - 1, rank + 1))
        a = axis + rank + 1 if axis < 0 else axis
        out = (*shape[:a], n, *shape[a:])
        blob = single_op_model("PACK", [mk(f"x{i}", shape) for i in range(n)], [mk("y", out)],
                               {"values_count": n, "axis": axis})
        return _case(blob, [shape] * n, {"op": "PACK", "shape": shape, "axis": axis, "n": n},
                     seed % 2 == 1)
    axis = int(rng.integers(-rank, rank))
    out = tuple(d for i, d in enumerate(shape) if i != axis % rank)
    outs = [mk(f"y{i}", out) for i in range(shape[axis])]
    blob = single_op_model("UNPACK", [mk("x", shape)], outs, {"num": shape[axis], "axis": axis})
    return _case(blob, [shape], {"op": "UNPACK", "shape": shape, "axis": axis}, seed % 2 == 1)


def squeeze_case(seed: int) -> Case:
    """SQUEEZE (all or listed size-1 dims) or EXPAND_DIMS at any axis."""
    rng = np.random.default_rng(15_000 + seed)
    rank = 1 + seed % 4
    shape = tuple(int(v) if rng.random() < 0.6 else 1 for v in rng.integers(2, 5, size=rank))
    mk = _mk(seed % 2 == 1, rng)
    if seed % 2 == 0 and 1 in shape:
        ones = [i for i, d in enumerate(shape) if d == 1]
        dims = [] if seed % 4 == 0 else ones[:1]
        out = tuple(d for i, d in enumerate(shape) if not (d == 1 and (not dims or i in dims)))
        blob = single_op_model("SQUEEZE", [mk("x", shape)], [mk("y", out)],
                               {"squeeze_dims": dims})
        return _case(blob, [shape], {"op": "SQUEEZE", "shape": shape, "dims": dims},
                     seed % 2 == 1)
    axis = int(rng.integers(-rank - 1, rank + 1))
    a = axis + rank + 1 if axis < 0 else axis
    out = (*shape[:a], 1, *shape[a:])
    blob = single_op_model("EXPAND_DIMS", [mk("x", shape), _i32("axis", [axis])],
                           [mk("y", out)])
    return _case(blob, [shape], {"op": "EXPAND_DIMS", "shape": shape, "axis": axis},
                 seed % 2 == 1)


CASES = {"transpose": transpose_case, "slice": slice_case, "strided_slice": strided_slice_case,
         "split": split_case, "pack": pack_case, "squeeze": squeeze_case}


@pytest.mark.parametrize("seed", range(N_HOST))
@pytest.mark.parametrize("op", sorted(CASES))
def test_movement_bit_exact(runner: tuple[str, Runner], op: str, seed: int) -> None:
    check(CASES[op](seed), runner, seed)


def test_shape_folded_into_strided_slice_and_reshape(runner: tuple[str, Runner]) -> None:
    """SHAPE -> STRIDED_SLICE (int32) as Keras exports dynamic reshapes: the host folds
    SHAPE into a constant and the device copies it; outputs are TFLM's."""
    x = tensor("x", (2, 3, 4), F32)
    base = single_op_model_ir("SHAPE", [x], [tensor("s", (3,), I32)])
    sg = base.main
    ts = [*sg.tensors, _i32("b", [1]), _i32("e", [3]), _i32("st", [1]), tensor("o", (2,), I32)]
    ts = [dataclasses.replace(t, buffer=i + 1) if t.data is not None else t
          for i, t in enumerate(ts)]
    ss = dataclasses.replace(sg.operators[0], opcode="STRIDED_SLICE", inputs=(1, 2, 3, 4),
                             outputs=(5,), options={"begin_mask": 0, "end_mask": 0,
                                                    "shrink_axis_mask": 0, "ellipsis_mask": 0,
                                                    "new_axis_mask": 0, "offset": False})
    sg = dataclasses.replace(sg, tensors=tuple(ts), outputs=(1, 5),
                             operators=(sg.operators[0], ss))
    blob = serialize_tflite(dataclasses.replace(base, subgraphs=(sg,)))
    _name, run = runner
    inp = [[np.zeros((2, 3, 4), np.float32)]]
    got = run(blob, inp)[0]
    assert [g.tolist() for g in got] == [[2, 3, 4], [3, 4]]
    assert [r.tolist() for r in run_tflm(blob, inp[0])] == [[2, 3, 4], [3, 4]]


# --------------------------------------------------------------------------- host-side logic


@pytest.mark.parametrize("seed", range(60))
def test_strided_slice_ranges_match_numpy(seed: int) -> None:
    """Without masks and with in-range indices TFLM's ranges are Python's slices."""
    rng = np.random.default_rng(seed)
    shape = _shape(rng, 1 + seed % 4, 8)
    begin = [int(rng.integers(-d, d)) for d in shape]
    end = [int(rng.integers(-d, d + 1)) for d in shape]
    strides = [int(rng.choice([-2, -1, 1, 2])) for _ in shape]
    ranges = strided_slice_ranges(shape, begin, end, strides, 0, 0, 0, False)
    for d, r, b, e, s in zip(shape, ranges, begin, end, strides):
        assert list(r) == list(range(d))[b:e:s], (d, b, e, s)


def test_fold_dims_merges_contiguous_runs() -> None:
    # A contiguous [2, 3, 4] copy is one run of 24.
    assert fold_dims((2, 3, 4), (12, 4, 1), (12, 4, 1)) == ((24,), (1,), (1,))
    # A 2-D transpose cannot fold; size-1 dims vanish.
    assert fold_dims((1, 3, 2), (6, 1, 3), (6, 2, 1)) == ((3, 2), (1, 3), (2, 1))
    # Row slice of a wider matrix: rows stay separate, each a unit-stride run.
    assert fold_dims((2, 3), (5, 1), (3, 1)) == ((2, 3), (5, 1), (3, 1))
    assert fold_dims((1, 1), (1, 1), (1, 1)) == ((1,), (1,), (1,))


def test_fold_dims_keeps_every_element_pair() -> None:
    for dims in itertools.product((1, 2, 3), repeat=3):
        ins = (dims[1] * dims[2], dims[2], 1)
        outs = (1, dims[0], dims[0] * dims[1])
        f = fold_dims(dims, ins, outs)
        def pairs(d, i, o):
            return [(sum(a * b for a, b in zip(ix, i)), sum(a * b for a, b in zip(ix, o)))
                    for ix in itertools.product(*(range(n) for n in d))]
        assert pairs(*f) == pairs(dims, ins, outs) and math.prod(f[0]) == math.prod(dims)


def _rejects(blob: bytes, *fragments: str) -> None:
    with pytest.raises(UnsupportedModelError) as info:
        generate(parse_tflite(blob))
    for f in fragments:
        assert f in str(info.value), str(info.value)


def test_rejections_name_the_operator() -> None:
    x = int8_tensor("x", (2, 3), 0.1, 0)
    _rejects(single_op_model("TRANSPOSE", [x, _i32("p", [0, 0])],
                             [int8_tensor("y", (2, 3), 0.1, 0)]),
             "operator 0 (TRANSPOSE)", "permutation")
    _rejects(single_op_model("TRANSPOSE", [x, tensor("p", (2,), I32)],
                             [int8_tensor("y", (3, 2), 0.1, 0)]), "constant")
    _rejects(single_op_model("STRIDED_SLICE", [x, _i32("b", [0, 0]), _i32("e", [2, 3]),
                                               _i32("s", [1, 1])],
                             [int8_tensor("y", (2, 3), 0.1, 0)], {"ellipsis_mask": 1}),
             "ellipsis_mask")
    _rejects(single_op_model("SLICE", [x, _i32("b", [0, 2]), _i32("s", [1, 2])],
                             [int8_tensor("y", (1, 2), 0.1, 0)]), "out of range")
    _rejects(single_op_model("SPLIT", [_i32("a", [1]), x],
                             [int8_tensor(f"y{i}", (2, 1), 0.1, 0) for i in range(2)],
                             {"num_splits": 2}), "equal parts")
    _rejects(single_op_model("SQUEEZE", [x], [int8_tensor("y", (6,), 0.1, 0)],
                             {"squeeze_dims": [0]}), "size != 1")


@pytest.mark.parametrize("target", sorted(WARNING_TARGETS))
def test_kernels_compile_warning_free(tmp_path: Path, target: str) -> None:
    assert_kernels_compile_warning_free(tmp_path, target, ("movement.c",))
