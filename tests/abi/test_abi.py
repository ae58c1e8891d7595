"""The firmware ABI (tinymeter/abi.py) against the C runtime: one contract, checked both ways."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tinymeter import abi
from tinymeter.abi import Report, ReportParser, report_lines

RUNTIME = Path(__file__).resolve().parents[2] / "firmware" / "runtime"


def _code(path: Path) -> str:
    """C/C++ source without comments (string literals kept)."""
    text = re.sub(r"/\*.*?\*/", " ", path.read_text(), flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def test_generated_header_is_current() -> None:
    """tm_abi.h is what abi.c_header() generates (regenerate: python -m tinymeter.abi)."""
    assert (RUNTIME / "include" / "tm_abi.h").read_text() == abi.c_header()


def test_c_sources_print_only_abi_pieces() -> None:
    """No C encoder spells a report piece or an exit code itself: they use tm_abi.h."""
    sources = [p for p in RUNTIME.rglob("*") if p.suffix in (".c", ".cc", ".h")
               and p.name != "tm_abi.h"]
    assert len(sources) > 20
    for path in sources:
        code = _code(path)
        assert '"TM1' not in code, path
        assert not re.search(r"\b(tm_platform_exit|exit)\(\s*\d+\s*\)", code), path
    header = abi.c_header()
    for piece in (abi.BEGIN, abi.RUN, abi.LAYERS, abi.LAYER, abi.END, abi.CHECK, abi.FAULT,
                  abi.ARENA, abi.ARENA_USED, abi.ARENA_FAILED, abi.LOG):
        assert f'"{piece}"' in header


def test_hook_symbols_are_the_runtimes() -> None:
    """Every hook the emulator intercepts is a function the runtime declares and defines;
    the data symbols the virtual board reads are what generated model sources define."""
    runtime_h = _code(RUNTIME / "include" / "tm_runtime.h")
    for name in abi.HOOK_FUNCTIONS:
        assert re.search(rf"\b{name}\s*\(", runtime_h), name
    defined = "".join(_code(p) for p in (RUNTIME / "src" / "tm_main.c",
                                         RUNTIME / "platform" / "cortexm.c"))
    for name in abi.HOOK_FUNCTIONS:
        assert re.search(rf"\b{name}\s*\([^;]*\)\s*\{{", defined), name
    assert re.search(rf"\b{abi.ARENA_HOOK}\s*\(", _code(RUNTIME / "tflm" / "tm_tflm_main.cc"))
    assert re.search(rf"\b{abi.RUNS_LEFT}\b", _code(RUNTIME / "src" / "tm_main.c"))
    # tm_layer is {kernel, params, op_name}: three pointers
    assert re.search(r"typedef struct\s*\{[^}]*kernel[^;]*;[^;]*params;[^;]*op_name;\s*\}\s*tm_layer;",
                     runtime_h)
    assert abi.LAYER_ENTRY_BYTES == 3 * 4


def test_model_source_defines_the_data_symbols() -> None:
    from tinymeter.firmware.codegen import generate
    from tinymeter.models.builders import int8_tensor, single_op_model_ir

    x = int8_tensor("x", (1, 4), 0.05, 2)
    y = int8_tensor("y", (1, 4), 0.05, 2)
    gen = generate(single_op_model_ir("RELU", [x], [y]), name="my model")
    for name in (abi.MODEL_NAME, abi.NUM_LAYERS, abi.LAYER_TABLE):
        assert re.search(rf"\b{name}\b", gen.source), name
    assert '"my_model"' in gen.source  # abi.report_name


def test_encode_parse_round_trip() -> None:
    data = b"".join(report_lines("kws", 3, [10, 2**32 - 1, 0], ("CONV_2D", "ADD", "CUSTOM:x")))
    assert data == (b"TM1 BEGIN kws run=3 layers=3\nTM1 L 0 CONV_2D 10\n"
                    b"TM1 L 1 ADD 4294967295\nTM1 L 2 CUSTOM:x 0\n"
                    b"TM1 END total=9 check=15\n")
    parser = ReportParser()
    events = [e for k in range(0, len(data), 7) for e in parser.feed(data[k:k + 7])]
    assert len(events) == 1 and isinstance(events[0], Report)
    assert events[0].cycles == (10, 2**32 - 1, 0) and events[0].encode() == data
    assert abi.reports(data.decode()) == events
    assert abi.fault_line("hardfault") == "TM1 FAULT hardfault\n"
    assert abi.arena_line(100, 64) == "TM1 ARENA size=100 used=64\n"
    assert abi.parse_arena(abi.arena_line(100, None) + "TM1 LOG hi\n") == abi.ArenaReport(
        100, None, ("hi",))


def test_emulated_runtime_prints_what_the_abi_encodes(tmp_path: Path) -> None:
    """The C encoder (tm_main.c) and the Python encoder produce identical bytes, and the
    strict parser accepts the firmware's console as it is."""
    from tinymeter.core.boards import load_board
    from tinymeter.firmware.build import FirmwareBuilder
    from tinymeter.firmware.codegen import generate
    from tinymeter.models.builders import int8_tensor, random_int8, single_op_model_ir
    from tinymeter.sim.emulator import Emulator

    x = int8_tensor("x", (1, 8), 0.05, 2)
    w = int8_tensor("w", (8, 8), 0.01, 0, data=random_int8((8, 8), seed=1))
    y = int8_tensor("y", (1, 8), 0.2, -1)
    board = load_board("nucleo-l4r5zi")
    gen = generate(single_op_model_ir("FULLY_CONNECTED", [x, w, None], [y]), name="abi")
    image = FirmwareBuilder(cache_dir=tmp_path).build(gen, board)
    inputs = [[np.zeros(8, np.int8).tobytes()]] * 2
    run = Emulator(board).run(image.elf, inputs, budget_instructions=10**8, timeout_s=120)
    got = abi.reports(run.stdout)
    assert [r.run for r in got] == [0, 1] and all(r.ops == ("FULLY_CONNECTED",) for r in got)
    assert b"".join(r.encode() for r in got) == run.stdout.encode()


@pytest.mark.parametrize("symbol", ["IO_NEXT", "IO_INPUT", "IO_OUTPUT", "PROF_BEGIN", "PROF_END",
                                    "HALT", "LIBC_EXIT"])
def test_emulator_uses_the_abi_symbols(symbol: str) -> None:
    from tinymeter.sim import emulator

    assert getattr(emulator, symbol) is getattr(abi, symbol)


def test_hook_cycle_scale_is_the_abi_one() -> None:
    from tinymeter.sim import native_hook

    assert native_hook.CYCLE_SCALE == abi.CYCLE_SCALE == 1 << abi.CYCLE_FRAC_BITS
    counthook = (Path(__file__).resolve().parents[2] / "sim" / "native" / "counthook.c").read_text()
    assert f"#define TM_CYCLE_FRAC_BITS {abi.CYCLE_FRAC_BITS}u" in counthook
