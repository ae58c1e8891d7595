"""Which operators of a model tinymeter's runtime can run, and with which kernel set.

Why: a model that contains an operator the runtime lacks (or an operator with a
type or quantization the runtime rejects) used to fail only at ``estimate``, after
``inspect`` had listed it without a word. ``op_support`` answers the question up
front, per operator, by running the very lowering the code generator would run
(so "supported" here means "the firmware build accepts it", with the same error
message) and by looking up whether the kernel it selects has a DSP-optimized
version. Pure apart from reading the kernel sources shipped with the package.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path

from tinymeter.core.errors import UnsupportedModelError
from tinymeter.core.texttable import text_table
from tinymeter.firmware.build import runtime_dir
from tinymeter.firmware.lower import LowerContext, lowerings
from tinymeter.firmware.lower.lstm import while_hint
from tinymeter.firmware.tflm import archive_symbols
from tinymeter.models.defects import operator_defects
from tinymeter.models.tflite import Model

log = logging.getLogger(__name__)

__all__ = ["OpSupport", "format_support", "op_support", "optimized_kernels",
           "tflm_registered_ops", "unsupported"]

#: A TFLM op registration function in a library's symbol index
#: (``_ZN6tflite15Register_CONV_2DEv`` = ``tflite::Register_CONV_2D()``).
_TFLM_REGISTER = re.compile(rb"Register_([A-Z0-9_]+?)E")
#: A kernel entry point definition in a kernel source file.
_KERNEL_DEF = re.compile(r"^void\s+(tm_\w+)\s*\(\s*const\s+void\s*\*\s*\w*\s*\)\s*\{", re.M)


@dataclass(frozen=True)
class OpSupport:
    """How one operator runs on tinymeter's runtime.

    ``reference``: the plain-C kernel set runs it (every core). ``optimized``: the
    DSP kernel set has its own kernel for it (M4/M7/M33 with ``--kernels
    optimized``; otherwise that build runs the reference kernel). ``reason`` says
    why an unsupported operator will not run.
    """

    index: int
    opcode: str
    reference: bool
    optimized: bool
    kernel: str = ""
    reason: str = ""
    #: the user's TFLM library defines this op's registration (None: no library given)
    tflm: bool | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@cache
def _optimized_kernels(kernels: str) -> frozenset[str]:
    root = Path(kernels)
    names: set[str] = set()
    for opt in sorted((root / "optimized").glob("*.c")):
        own = set(_KERNEL_DEF.findall(opt.read_text(encoding="utf-8")))
        ref = root / "reference" / opt.name
        if not own and ref.is_file():  # the reference code with faster helpers (add.c)
            own = set(_KERNEL_DEF.findall(ref.read_text(encoding="utf-8")))
        names.update(own)
    return frozenset(n for n in names if not n.endswith("_generic"))


def optimized_kernels() -> frozenset[str]:
    """Entry points the DSP-optimized kernel set replaces.

    An optimized file replaces the reference file of the same name (see
    ``firmware.build.kernel_sources``): the entry points it defines itself are
    optimized; one that defines none recompiles the whole reference file with faster
    helpers (add.c), so all of that file's entry points count.
    """
    return _optimized_kernels(str(runtime_dir() / "kernels"))


def tflm_registered_ops(library: bytes) -> frozenset[str]:
    """Builtin ops a TFLM static library can register: its ``tflite::Register_<OP>``
    definitions, read from the archive's symbol index (no toolchain needed)."""
    ops = set()
    for sym in archive_symbols(library):
        m = _TFLM_REGISTER.search(sym)
        if m:
            ops.add(m.group(1).decode())
    return frozenset(ops)


def with_tflm(rows: Sequence[OpSupport], registered: frozenset[str]) -> list[OpSupport]:
    """*rows* with the ``tflm`` column filled from a library's registered ops."""
    return [replace(r, tflm=r.opcode in registered) for r in rows]


def op_support(model: Model) -> list[OpSupport]:
    """One :class:`OpSupport` per operator of the main subgraph, in model order.

    Each operator is lowered on its own (arena offsets are irrelevant to whether it
    lowers), so one unsupported operator does not hide the verdict on the others.
    A model with several subgraphs cannot run at all; every row says so.
    """
    sg = model.main
    if len(model.subgraphs) != 1:
        why = (f"model has {len(model.subgraphs)} subgraphs; only single-subgraph models "
               f"are supported{while_hint(model)}")
        return [OpSupport(i, op.opcode, False, False, reason=why)
                for i, op in enumerate(sg.operators)]
    table = lowerings()
    optimized = optimized_kernels()
    offsets = {i: 0 for i, t in enumerate(sg.tensors) if t.data is None}
    rows = []
    for i, op in enumerate(sg.operators):
        lower = table.get(op.opcode)
        if lower is None:
            rows.append(OpSupport(i, op.opcode, False, False,
                                  reason=f"no kernel for {op.opcode} in tinymeter's runtime"))
            continue
        defect = next(operator_defects(sg, i, op), None)
        if defect is not None:  # nonsense values would crash or mislead the lowering
            rows.append(OpSupport(i, op.opcode, False, False, reason=str(defect)))
            continue
        try:
            layer = lower(LowerContext(model, sg, offsets), op, i)
        except UnsupportedModelError as exc:
            rows.append(OpSupport(i, op.opcode, False, False, reason=str(exc)))
            continue
        rows.append(OpSupport(i, op.opcode, True, layer.kernel in optimized, layer.kernel))
    return rows


def unsupported(rows: Sequence[OpSupport]) -> list[OpSupport]:
    """The rows that will not run."""
    return [r for r in rows if not r.reference]


def format_support(rows: Sequence[OpSupport]) -> str:
    """Plain-text support table: one row per operator, then a one-line verdict."""
    has_tflm = any(r.tflm is not None for r in rows)
    headers = ["#", "op", "reference", "optimized", *(["TFLM lib"] if has_tflm else []),
               "kernel / reason"]
    body = []
    for r in rows:
        ref = "yes" if r.reference else "NO"
        opt = "yes" if r.optimized else ("ref" if r.reference else "NO")
        tflm = ["yes" if r.tflm else "NO"] if has_tflm else []
        body.append([str(r.index), r.opcode, ref, opt, *tflm, r.kernel if r.reference else r.reason])
    lines = ["runtime support (tinymeter reference kernels on every core; optimized = "
             "own DSP kernel on M4/M7/M33):",
             *text_table(headers, body, left=range(1, len(headers)))]
    bad = unsupported(rows)
    if bad:
        ops = ", ".join(sorted({r.opcode for r in bad}))
        lines.append(f"{len(bad)} of {len(rows)} operators will NOT run on tinymeter's "
                     f"runtime ({ops}): estimate/build will fail")
    else:
        n_opt = sum(r.optimized for r in rows)
        lines.append(f"all {len(rows)} operators run on tinymeter's runtime "
                     f"({n_opt} with a DSP-optimized kernel)")
    missing = sorted({r.opcode for r in rows if r.tflm is False})
    if missing:
        lines.append(f"the TFLM library registers no kernel for: {', '.join(missing)}")
    return "\n".join(lines)
