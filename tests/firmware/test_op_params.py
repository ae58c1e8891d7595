"""The kernel parameter contract: C structs (tm_ops_*.h) vs the lowerings' dicts."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tinymeter.core.errors import UnsupportedModelError
from tinymeter.firmware.lower.base import Layer
from tinymeter.firmware.lower.params import (
    Field,
    check_params,
    ordered,
    parse_structs,
    runtime_structs,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_struct_of_the_headers_is_read() -> None:
    headers = sorted((ROOT / "firmware" / "runtime" / "include").glob("tm_ops*.h"))
    declared = sum(h.read_text().count("typedef struct") for h in headers)
    structs = runtime_structs()
    assert len(structs) == declared and all(structs.values())
    conv = {f.name: f for f in structs["tm_conv2d_s8_params"]}
    assert conv["input"] == Field("input", "int8_t", True)
    assert conv["act_min"].kind == "int" and conv["out_mult"].kind == "pointer"
    # a member group written as a macro (TM_BMM_GEOMETRY) is expanded in place
    bmm = [f.name for f in structs["tm_batch_matmul_s8_params"]]
    assert bmm[:3] == ["a", "b", "output"] and "a_batch_strides" in bmm
    assert {f.name: f for f in structs["tm_concat_params"]}["inputs"].kind == "array"


def test_every_lowering_names_a_runtime_struct() -> None:
    """Each params struct a lowering module names exists in the headers."""
    named = set()
    for path in (ROOT / "firmware" / "lower").glob("*.py"):
        named |= set(re.findall(r'"(tm_\w+_params)"', path.read_text()))
    assert named and named <= set(runtime_structs())


def test_parse_structs_declarations() -> None:
    text = """
    #define TM_PAIR int32_t lo; \\
      int32_t hi
    typedef struct {
      const float *x;   /* comment; with a semicolon */
      int32_t a, b;
      uint32_t sizes[TM_N];
      TM_PAIR;
      float scale;
    } tm_demo_params;
    """
    fields = parse_structs(text)["tm_demo_params"]
    assert [(f.name, f.kind) for f in fields] == [
        ("x", "pointer"), ("a", "int"), ("b", "int"), ("sizes", "array"), ("lo", "int"),
        ("hi", "int"), ("scale", "float")]


def _layer(params: dict) -> Layer:
    return Layer(op_index=3, op_name="DEMO", kernel="tm_demo", params_type="tm_demo_params",
                 params=params)


STRUCTS = {"tm_demo_params": (Field("x", "float", True), Field("n", "int32_t", False),
                              Field("scale", "float", False),
                              Field("sizes", "uint32_t", False, "4"))}


def test_a_forgotten_field_is_an_error_at_lowering_time() -> None:
    good = {"scale": 0.5, "sizes": [1, 2], "n": 4, "x": "NULL"}
    check_params(_layer(good), STRUCTS)
    assert [k for k, _ in ordered(_layer(good), STRUCTS)] == ["x", "n", "scale", "sizes"]
    with pytest.raises(UnsupportedModelError, match=r"op 3 \(DEMO\).*missing n \(would silently be 0\)"):
        check_params(_layer({k: v for k, v in good.items() if k != "n"}), STRUCTS)
    with pytest.raises(UnsupportedModelError, match="unknown typo"):
        check_params(_layer({**good, "typo": 1}), STRUCTS)
    with pytest.raises(UnsupportedModelError, match=r"tm_demo_params.n is int"):
        check_params(_layer({**good, "n": 1.5}), STRUCTS)
    with pytest.raises(UnsupportedModelError, match=r"tm_demo_params.x is pointer"):
        check_params(_layer({**good, "x": 7}), STRUCTS)
    with pytest.raises(UnsupportedModelError, match="no struct tm_other_params"):
        check_params(Layer(0, "X", "tm_x", "tm_other_params", {}), STRUCTS)


def test_generated_initializers_follow_the_struct() -> None:
    from tinymeter.firmware.codegen import generate
    from tinymeter.models.builders import bias_tensor, int8_tensor, random_int8, single_op_model_ir

    x = int8_tensor("x", (1, 5, 5, 2), 0.05, 2)
    w = int8_tensor("w", (3, 3, 3, 2), 0.01, 0, data=random_int8((3, 3, 3, 2), seed=1))
    b = bias_tensor("b", np.zeros(3, np.int32), input_scale=0.05, weight_scales=w)
    y = int8_tensor("y", (1, 3, 3, 3), 0.2, -1)
    options = {"padding": "VALID", "stride_h": 1, "stride_w": 1}
    gen = generate(single_op_model_ir("CONV_2D", [x, w, b], [y], options))
    body = gen.source.split("tm_conv2d_s8_params tm_l0 = {", 1)[1].split("};", 1)[0]
    written = re.findall(r"^\s*\.(\w+) =", body, re.M)
    assert written == [f.name for f in runtime_structs()["tm_conv2d_s8_params"]]
