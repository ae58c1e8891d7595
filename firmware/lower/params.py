"""The kernel parameter contract, read from the C headers and checked at lowering time.

Each kernel takes a ``tm_<op>_params`` struct declared in
``firmware/runtime/include/tm_ops_<family>.h``; each lowering fills a Python dict that
codegen prints as the struct's designated initializer.  A designated initializer
silently zeroes a field it does not name, so the two sides are one contract written
twice.  This module reads the structs from the headers (the single source: kernels
compile against them) and checks every :class:`~tinymeter.firmware.lower.base.Layer`
against its struct when the model is lowered:

* every field of the struct must be given (a forgotten field is an error naming it,
  not a silent 0; a lowering that wants 0/NULL says so);
* no unknown field (the C compiler would say so later, less readably);
* each value's kind fits the field's type: a pointer takes a symbol expression
  (a string) or ``"NULL"``/0, an integer field an int, a float field a float or int,
  an array field a sequence (or a string naming a constant).

:func:`ordered` then puts the fields in declaration order, so the generated
initializer reads like the struct.  Pure, no I/O beyond reading the shipped headers
once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from tinymeter.core.errors import UnsupportedModelError

if TYPE_CHECKING:
    from tinymeter.firmware.lower.base import CValue, Layer

_DEFINE = re.compile(r"^\s*#\s*define\s+(?P<name>\w+)[ \t]+(?P<body>(?:[^\n]*\\\n)*[^\n]*)", re.M)
_STRUCT = re.compile(r"typedef\s+struct\s*\w*\s*\{(?P<body>.*?)\}\s*(?P<name>\w+)\s*;", re.S)
_DECL = re.compile(r"(?P<type>(?:const\s+)?\w+(?:\s+const)?)\s*(?P<names>.+)")
_NAME = re.compile(r"(?P<stars>\**)\s*(?P<name>\w+)\s*(?:\[(?P<dim>\w+)\])?")
_FLOAT_TYPES = frozenset({"float", "double"})


@dataclass(frozen=True)
class Field:
    """One member of a kernel parameter struct."""

    name: str
    ctype: str      # element type, without const: "int32_t", "float", "tm_copy_part"
    pointer: bool
    array: str | None = None  # the dimension of an array member (as written)

    @property
    def kind(self) -> str:
        """"pointer", "array", "float" or "int" (what a Python value must be)."""
        if self.array is not None:
            return "array"
        if self.pointer:
            return "pointer"
        return "float" if self.ctype in _FLOAT_TYPES else "int"


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _expand(body: str, macros: Mapping[str, str]) -> str:
    """Member declarations with object-like macros (shared member groups) expanded."""
    for _ in range(4):
        body = re.sub(r"\b(\w+)\b", lambda m: macros.get(m[1], m[1]), body)
    return body


def parse_structs(text: str, macros: Mapping[str, str] | None = None
                  ) -> dict[str, tuple[Field, ...]]:
    """``typedef struct {...} name;`` declarations of a C header: name -> fields in
    declaration order (``int32_t a, b;`` is two fields; a member group written as an
    object-like macro of the header, or of *macros*, is expanded)."""
    text = _strip_comments(text)
    defined = {**(macros or {}), **{m["name"]: m["body"].replace("\\\n", " ")
                                    for m in _DEFINE.finditer(text)}}
    member_macros = {k: v for k, v in defined.items() if ";" in v}
    out: dict[str, tuple[Field, ...]] = {}
    for m in _STRUCT.finditer(text):
        fields: list[Field] = []
        for decl in _expand(m["body"], member_macros).split(";"):
            decl = " ".join(decl.split())
            if not decl:
                continue
            d = _DECL.fullmatch(decl)
            if d is None:
                raise ValueError(f"{m['name']}: cannot read the member declaration {decl!r}")
            ctype = d["type"].replace("const", "").strip()
            for part in d["names"].split(","):
                n = _NAME.fullmatch(part.strip())
                if n is None:
                    raise ValueError(f"{m['name']}: cannot read the member {part!r}")
                fields.append(Field(n["name"], ctype, bool(n["stars"]), n["dim"]))
        out[m["name"]] = tuple(fields)
    return out


def include_dir() -> Path:
    return Path(str(resources.files("tinymeter.firmware") / "runtime" / "include"))


@functools.lru_cache(maxsize=1)
def runtime_structs() -> Mapping[str, tuple[Field, ...]]:
    """Every kernel parameter struct of the shipped runtime headers (``tm_ops_*.h``)."""
    out: dict[str, tuple[Field, ...]] = {}
    for header in sorted(include_dir().glob("tm_ops*.h")):
        out.update(parse_structs(header.read_text()))
    return out


def _fits(f: Field, value: CValue) -> bool:
    kind = f.kind
    if kind == "pointer":
        return isinstance(value, str) or (isinstance(value, int) and value == 0
                                          and not isinstance(value, bool))
    if kind == "array":
        return isinstance(value, (str, Sequence))
    if isinstance(value, str):
        # a C expression (an enum constant, a macro, sizeof ...): the compiler types it
        return True
    if kind == "float":
        return isinstance(value, (int, float))
    return isinstance(value, int)


def check_params(layer: Layer, structs: Mapping[str, tuple[Field, ...]] | None = None) -> None:
    """Raise :class:`UnsupportedModelError` when *layer*'s parameters do not match its
    C struct: a field missing (it would silently be 0), unknown, or of the wrong kind."""
    structs = runtime_structs() if structs is None else structs
    where = f"op {layer.op_index} ({layer.op_name}): lowering to {layer.kernel}"
    fields = structs.get(layer.params_type)
    if fields is None:
        raise UnsupportedModelError(f"{where}: no struct {layer.params_type} in the runtime "
                                    "headers (firmware/runtime/include/tm_ops_*.h)")
    names = {f.name: f for f in fields}
    unknown = [k for k in layer.params if k not in names]
    missing = [f.name for f in fields if f.name not in layer.params]
    if unknown or missing:
        raise UnsupportedModelError(
            f"{where}: parameters do not match struct {layer.params_type}"
            + (f"; missing {', '.join(missing)} (would silently be 0)" if missing else "")
            + (f"; unknown {', '.join(unknown)}" if unknown else ""))
    for key, value in layer.params.items():
        f = names[key]
        if not _fits(f, value):
            raise UnsupportedModelError(f"{where}: field {layer.params_type}.{key} is "
                                        f"{f.kind} ({f.ctype}), got {value!r:.60}")


def ordered(layer: Layer, structs: Mapping[str, tuple[Field, ...]] | None = None
            ) -> list[tuple[str, CValue]]:
    """*layer*'s parameters in the struct's declaration order (checked first)."""
    structs = runtime_structs() if structs is None else structs
    check_params(layer, structs)
    return [(f.name, layer.params[f.name]) for f in structs[layer.params_type]]
