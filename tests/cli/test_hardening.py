"""Issue 13 reproducers: each bad input ends in one clear error (or a right answer).

Library calls raise a :class:`~tinymeter.core.errors.TinymeterError` subclass naming the
cause; the CLI prints one ``error:`` line and exits 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tinymeter.cli.main import main
from tinymeter.core.errors import MissingDependencyError


def _one_error(capsys: pytest.CaptureFixture[str], argv: list[str], *fragments: str) -> str:
    """Run the CLI in-process; assert exit 2 and one ``error:`` line holding *fragments*."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for f in fragments:
        assert f in err[0], err[0]
    return err[0]


# -- packaging -----------------------------------------------------------------------------


def test_zoo_build_without_tensorflow(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TINYMETER_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import raises ImportError
    _one_error(capsys, ["zoo", "build", "lenet"], "needs TensorFlow", "tinymeter[tf]")


def test_import_tf_error_type(monkeypatch) -> None:
    from tinymeter.models.convert import import_tf, seed_everything

    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(MissingDependencyError):
        import_tf()
    with pytest.raises(MissingDependencyError):
        seed_everything(0)


# -- quantization and weight defects -------------------------------------------------------


def _fc_model(tmp_path: Path, *, x_scale: float = 0.1, x_zp: int = 0, w_scale: float = 0.05,
              y_scale: float = 0.2, y_zp: int = 0, bias_zp: int = 0, const_w: bool = True,
              activation: str = "NONE") -> Path:
    """FULLY_CONNECTED 8 -> 4 with the given (possibly nonsense) quantization."""
    from tinymeter.models.builders import int8_tensor, random_int8, single_op_model, tensor
    from tinymeter.models.tflite import TensorType

    x = int8_tensor("x", (1, 8), x_scale, x_zp)
    w = int8_tensor("w", (4, 8), w_scale, 0, data=random_int8((4, 8), 1) if const_w else None)
    b = tensor("b", (4,), TensorType.INT32, scale=0.005, zero_point=bias_zp, data=[1, 2, 3, 4])
    y = int8_tensor("y", (1, 4), y_scale, y_zp)
    path = tmp_path / "fc.tflite"
    path.write_bytes(single_op_model("FULLY_CONNECTED", [x, w, b], [y],
                                     {"fused_activation_function": activation}))
    return path


BAD_QUANT = [
    ({"x_scale": 0.0}, "'x'", "scale 0.0"),
    ({"x_scale": float("nan")}, "'x'", "scale nan"),
    ({"w_scale": float("inf")}, "'w'", "scale inf"),
    ({"y_scale": -0.5}, "'y'", "scale -0.5"),
    ({"y_scale": 1e-50}, "'y'", "as float32"),
    ({"x_zp": 1_000_000}, "'x'", "zero point 1000000"),
    ({"y_zp": 2**31 - 1, "activation": "RELU"}, "'y'", "zero point 2147483647"),
    ({"bias_zp": 2**40}, "'b'", "zero point 1099511627776"),
]


@pytest.mark.parametrize(("kwargs", "name", "what"), BAD_QUANT)
def test_bad_quantization_is_refused_and_flagged(capsys, tmp_path: Path, kwargs, name, what) -> None:
    path = _fc_model(tmp_path, **kwargs)
    _one_error(capsys, ["estimate", str(path), "-q"], "operator 0 (FULLY_CONNECTED)", name, what)
    assert main(["inspect", str(path), "--json", str(tmp_path / "i.json")]) == 0
    out = capsys.readouterr().out
    assert "defect: operator 0 (FULLY_CONNECTED)" in out and what in out
    import json

    defects = json.loads((tmp_path / "i.json").read_text())["defects"]
    assert len(defects) == 1 and name in defects[0]


def test_non_constant_filter_is_refused_and_flagged(capsys, tmp_path: Path) -> None:
    path = _fc_model(tmp_path, const_w=False)
    _one_error(capsys, ["estimate", str(path), "-q"], "operator 0 (FULLY_CONNECTED)", "'w'",
               "filter", "no constant data")
    assert main(["inspect", str(path)]) == 0
    assert "is the filter but has no constant data" in capsys.readouterr().out


def test_empty_activation_clamp() -> None:
    from tinymeter.core.errors import UnsupportedModelError
    from tinymeter.firmware import quant

    with pytest.raises(UnsupportedModelError, match="clamp is empty"):
        quant.activation_range_quantized("RELU", 0.1, 1000)
    with pytest.raises(UnsupportedModelError, match="clamp is empty"):
        quant.activation_range_quantized("RELU6", -0.1, 0)
    assert quant.activation_range_quantized("RELU6", 0.1, -128) == (-128, -68)


def test_inspect_json_roundtrip(capsys, tmp_path: Path) -> None:
    import json

    path = _fc_model(tmp_path)
    assert main(["inspect", str(path), "--json", str(tmp_path / "i.json")]) == 0
    d = json.loads((tmp_path / "i.json").read_text())
    assert d["total_macs"] == 32 and d["defects"] == [] and d["ops"][0]["opcode"] == "FULLY_CONNECTED"
    assert d["ops"][0]["output_shapes"] == [[1, 4]]


def test_inspect_unknown_dims_no_negative_macs(capsys, tmp_path: Path) -> None:
    from tinymeter.models.builders import int8_tensor, random_int8, single_op_model_ir
    from tinymeter.models.inspect import inspect_model

    x = int8_tensor("x", (-1, 8), 0.1, 0)
    w = int8_tensor("w", (4, 8), 0.05, 0, data=random_int8((4, 8), 1))
    y = int8_tensor("y", (-1, 4), 0.2, 0)
    summary = inspect_model(single_op_model_ir("FULLY_CONNECTED", [x, w, None], [y]))
    assert summary.total_macs == 0 and summary.peak_activation_bytes == 0
    assert any("unknown dimension" in d and "'x'" in d for d in summary.defects)


# -- board files ---------------------------------------------------------------------------


def _board_file(tmp_path: Path, old: str, new: str) -> Path:
    from tinymeter.core.boards import load_board

    src = load_board("nucleo-l4r5zi").path
    assert src is not None
    text = src.read_text(encoding="utf-8")
    assert old in text, old
    dst = tmp_path / "b.toml"
    dst.write_text(text.replace(old, new, 1), encoding="utf-8")
    return dst


def test_board_file_not_utf8(capsys, tmp_path: Path) -> None:
    from tinymeter.core.boards import load_board

    path = tmp_path / "latin1.toml"
    path.write_bytes(load_board("nucleo-l4r5zi").path.read_bytes().replace(  # type: ignore[union-attr]
        b'name = "nucleo-l4r5zi"', b'name = "nucl\xe9o"'))
    _one_error(capsys, ["boards", str(path)], "not UTF-8", "0xe9")


@pytest.mark.parametrize("name", ["nu\\u0000cleo", "../../x", "a/b", "", "x" * 65, " lead"])
def test_board_name_must_be_an_identifier(capsys, tmp_path: Path, name: str) -> None:
    path = _board_file(tmp_path, 'name = "nucleo-l4r5zi"', f'name = "{name}"')
    _one_error(capsys, ["boards", str(path)], "not a board identifier")


@pytest.mark.parametrize(("old", "new", "what"), [
    ("active_mw = ", "active_mw = -43 #", "active_mw: -43"),
    ("active_mw = ", "active_mw = inf #", "active_mw: inf"),
    ("voltage = ", "voltage = nan #", "voltage: nan"),
    ("clock_hz = 120_000_000", "clock_hz = 9223372036854775807", "clock_hz: 9223372036854775807"),
    ("icache_bytes = ", "icache_bytes = -1024 #", "icache_bytes: -1024"),
    ("base = 0x", "base = 0x1", "does not fit a 32-bit register"),
])
def test_board_values_are_range_checked(capsys, tmp_path: Path, old: str, new: str,
                                        what: str) -> None:
    path = _board_file(tmp_path, old, new)
    _one_error(capsys, ["boards", str(path)], what)


# -- inputs that used to crash -------------------------------------------------------------


def test_check_deeply_nested_json(capsys, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    base = tmp_path / "base.json"
    base.write_text("[" * 50 + "]" * 50)
    _one_error(capsys, ["check", str(deep), "--baseline", str(base)], "nested too deeply")
    _one_error(capsys, ["check", str(base), "--baseline", str(base)], "expected a report object")


def test_results_db_schema_version_not_an_integer(tmp_path: Path) -> None:
    import sqlite3

    from tinymeter.apps.resultsdb import ResultsDB
    from tinymeter.core.errors import ConfigError

    path = tmp_path / "r.sqlite"
    ResultsDB(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value='two' WHERE key='schema_version'")
    db.close()
    with pytest.raises(ConfigError, match="schema_version 'two', not an integer"):
        ResultsDB(path)


@pytest.mark.parametrize(("argv", "flag"), [
    (["estimate", "--timeout", "inf"], "--timeout"),
    (["estimate", "--timeout", "nan"], "--timeout"),
    (["build", "m.tflite", "--out", "o", "--runs", "1099511627776"], "--runs"),
    (["calibrate", "--regularization", "nan"], "--regularization"),
    (["calibrate", "--regularization", "-1"], "--regularization"),
    (["measure", "--virtual-noise", "-5"], "--virtual-noise"),
    (["check", "x.json", "--baseline", "b.json", "--max-regression", "inf"], "--max-regression"),
])
def test_nonsense_numbers_are_usage_errors(capsys, argv: list[str], flag: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err


def test_library_rejects_nonsense_numbers() -> None:
    from tinymeter.analysis.calibrate import fit_parameters
    from tinymeter.core.boards import load_board
    from tinymeter.core.errors import ConfigError
    from tinymeter.firmware.build import BuildConfig
    from tinymeter.hw.virtual import VirtualTiming
    from tinymeter.sim.costmodel import datasheet_cost_model

    with pytest.raises(ConfigError, match="runs must be between"):
        BuildConfig(runs=2**40)
    board = load_board("nucleo-l4r5zi")
    with pytest.raises(ConfigError, match="noise"):
        VirtualTiming.for_board(board, noise=-5)
    prior = datasheet_cost_model(board).params
    for bad in (float("nan"), -1.0, float("inf")):
        with pytest.raises(ConfigError, match="regularization"):
            fit_parameters([], prior, regularization=bad)


def test_emulator_rejects_infinite_timeout(tmp_path: Path) -> None:
    from tinymeter.core.boards import load_board
    from tinymeter.core.errors import ConfigError
    from tinymeter.sim.emulator import Emulator

    with pytest.raises(ConfigError, match="timeout"):
        Emulator(load_board("nucleo-l4r5zi")).run(tmp_path / "none.elf", [[]],
                                                  budget_instructions=1, timeout_s=float("inf"))


def test_model_reads_are_bounded(capsys, tmp_path: Path) -> None:
    from tinymeter.core.errors import MalformedModelError
    from tinymeter.models.tflite import read_model_bytes

    _one_error(capsys, ["inspect", "/dev/zero"], "larger than 256 MiB")
    big = tmp_path / "big.tflite"
    big.write_bytes(bytes(2048))
    with pytest.raises(MalformedModelError, match="larger than"):
        read_model_bytes(big, limit=1024)
    assert len(read_model_bytes(big, limit=2048)) == 2048
    _one_error(capsys, ["inspect", str(tmp_path)], "is a directory")


# -- output conventions --------------------------------------------------------------------


def _reshape_model(tmp_path: Path, n: int = 8) -> Path:
    from tinymeter.models.builders import int8_tensor, single_op_model

    x = int8_tensor("x", (1, n), 0.1, 0)
    path = tmp_path / f"reshape{n}.tflite"
    path.write_bytes(single_op_model("RESHAPE", [x], [int8_tensor("y", (n,), 0.1, 0)],
                                     {"new_shape": [n]}))
    return path


def test_json_dash_is_stdout_and_wrote_lines_go_to_stderr(capsys, tmp_path: Path) -> None:
    import json

    model = _reshape_model(tmp_path)
    assert main(["estimate", str(model), "-q", "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["model"] == model.name and captured.err == ""
    assert main(["estimate", str(model), "--json", "-", "--csv", str(tmp_path / "l.csv")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["layers"][0]["op"] == "RESHAPE"
    assert "RESHAPE" in captured.err and f"wrote {tmp_path / 'l.csv'}" in captured.err
    assert main(["estimate", str(model), "--csv", "-", "-q"]) == 0
    assert capsys.readouterr().out.startswith("index,op,macs")
    assert main(["estimate", str(model), "--json", str(tmp_path / "e.json")]) == 0
    captured = capsys.readouterr()
    assert "RESHAPE" in captured.out and "wrote" not in captured.out
    assert f"wrote {tmp_path / 'e.json'}" in captured.err
    _one_error(capsys, ["estimate", str(model), "--json", "-", "--csv", "-"], "only one")
    assert main(["inspect", str(model), "--json", "-", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["ops"][0]["opcode"] == "RESHAPE"


def test_compare_lists_boards_that_cannot_hold_the_model(capsys, tmp_path: Path) -> None:
    import csv
    import json

    model = _reshape_model(tmp_path, 200_000)  # 400 KB arena: not in the G0's 144 KiB RAM
    out, table = tmp_path / "c.json", tmp_path / "c.csv"
    assert main(["estimate", str(model), "--compare", "nucleo-g0b1re,nucleo-l4r5zi", "-q",
                 "--json", str(out), "--csv", str(table)]) == 0
    text = capsys.readouterr().out
    assert "nucleo-g0b1re" in text and "does not fit" in text
    assert "nucleo-g0b1re: does not fit: needs" in text and "B RAM, has 147,456 B" in text
    data = json.loads(out.read_text())
    assert [d["board"] for d in data] == ["nucleo-l4r5zi", "nucleo-g0b1re"]
    assert data[1]["fits"] is False and "does not fit" in data[1]["error"]
    rows = list(csv.DictReader(table.open()))
    assert [(r["board"], r["fits"]) for r in rows] == [("nucleo-l4r5zi", "true"),
                                                        ("nucleo-g0b1re", "false")]


# -- help and first-use messages -----------------------------------------------------------


def test_zoo_build_announces_itself_once(capsys, monkeypatch, tmp_path: Path) -> None:
    from tinymeter.apps.estimate import resolve_model
    from tinymeter.models import zoo

    monkeypatch.setenv("TINYMETER_CACHE", str(tmp_path))
    monkeypatch.setattr(zoo, "build_keras", lambda *a, **k: None)
    monkeypatch.setattr(zoo._convert, "convert_keras", lambda *a, **k: b"tflite bytes")
    path = resolve_model("lenet")
    assert path.read_bytes() == b"tflite bytes"
    assert "building zoo model lenet" in capsys.readouterr().err
    assert resolve_model("lenet") == path and capsys.readouterr().err == ""  # cached
    path.unlink()
    resolve_model("lenet", quiet=True)
    assert capsys.readouterr().err == ""


def test_help_texts_match_behaviour(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["flash", "--help"])
    out = capsys.readouterr().out
    assert "virtual" not in out
    with pytest.raises(SystemExit):
        main(["calibrate", "--help"])
    assert "default: the built-in demo set" in " ".join(capsys.readouterr().out.split())
    assert main(["zoo", "list"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].startswith("ds_cnn_kws ") and "untrained" in captured.err


# -- build outputs -------------------------------------------------------------------------


def test_objcopy_argv_exact() -> None:
    from tinymeter.firmware.build import objcopy_argv, objcopy_for

    assert objcopy_for("arm-none-eabi-gcc") == "arm-none-eabi-objcopy"
    assert objcopy_for("/opt/gnu/bin/arm-none-eabi-gcc") == "/opt/gnu/bin/arm-none-eabi-objcopy"
    assert objcopy_argv("arm-none-eabi-objcopy", Path("b/firmware.elf"), Path("o/firmware.bin"),
                        "binary") == ["arm-none-eabi-objcopy", "-O", "binary", "b/firmware.elf",
                                      "o/firmware.bin"]
    assert objcopy_argv("x-objcopy", Path("f.elf"), Path("f.hex"), "ihex") == [
        "x-objcopy", "-O", "ihex", "f.elf", "f.hex"]


def test_build_writes_bin_and_hex(capsys, tmp_path: Path, monkeypatch) -> None:
    from tinymeter.core.boards import load_board
    from tinymeter.sim.elf import ElfImage

    model = _reshape_model(tmp_path)
    out = tmp_path / "fw"
    assert main(["build", str(model), "--board", "nucleo-l4r5zi", "--out", str(out)]) == 0
    assert "firmware.elf (and .bin, .hex)" in capsys.readouterr().out
    flash = load_board("nucleo-l4r5zi").text
    image = ElfImage.load(out / "firmware.elf")
    loadable = sorted((s.paddr, s.data) for s in image.segments if flash.contains(s.paddr) and s.data)
    start = loadable[0][0]
    assert start == flash.origin  # the vector table comes first
    blob = (out / "firmware.bin").read_bytes()
    for paddr, data in loadable:  # the raw image holds every loaded byte at its flash offset
        assert blob[paddr - start:paddr - start + len(data)] == bytes(data)
    hex_lines = (out / "firmware.hex").read_text().split()
    assert hex_lines[0].startswith(":02000004") and hex_lines[-1] == ":00000001FF"


# -- reports and plots ---------------------------------------------------------------------


def test_estimate_report_markdown_and_html(capsys, tmp_path: Path) -> None:
    import numpy as np

    from tinymeter.models.builders import bias_tensor, int8_tensor, random_int8, single_op_model

    x = int8_tensor("x", (1, 16), 0.05, 0)
    w = int8_tensor("w", (8, 16), 0.01, 0, data=random_int8((8, 16), seed=1))
    b = bias_tensor("b", np.zeros(8, np.int32), input_scale=0.05, weight_scales=w)
    model = tmp_path / "fc.tflite"
    model.write_bytes(single_op_model("FULLY_CONNECTED", [x, w, b], [int8_tensor("y", (1, 8), 0.2, 0)]))
    md, page = tmp_path / "r" / "report.md", tmp_path / "report.html"
    assert main(["estimate", str(model), "-q", "--report", str(md)]) == 0
    text = md.read_text()
    assert text.startswith("# fc.tflite on nucleo-l4r5zi")
    assert "| 0 | FULLY_CONNECTED | 128 |" in text and "**calibration**: none" in text
    assert "![per-layer latency](report_layers.png)" in text
    assert (md.parent / "report_layers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["estimate", str(model), "-q", "--report", str(page)]) == 0
    html = page.read_text()
    assert "<h1>fc.tflite on nucleo-l4r5zi</h1>" in html and "data:image/png;base64," in html
    assert "<td>FULLY_CONNECTED</td>" in html
    _one_error(capsys, ["estimate", str(model), "-q", "--report", str(tmp_path / "r.pdf")],
               "must end in .md or .html")


def test_plot_titles_name_what_they_show(tmp_path: Path) -> None:
    from tinymeter.analysis.plots import estimate_title
    from tinymeter.analysis.report import Estimate

    est = Estimate(model="kws.tflite", board="nucleo-l4r5zi", core="cortex-m4f", clock_hz=1,
                   kernels="optimized", cost_model="tm-cortex-m4f-v1", cost_parameters={},
                   layers=(), instructions=0, cycles=0, ms=0.0, energy_uj=0.0,
                   overhead_instructions=0, arena_bytes=0, flash_bytes=0, ram_bytes=0,
                   weight_bytes=0, stack_bytes=None, emulation_seconds=0.0, emulation_mips=0.0)
    assert estimate_title(est) == ("kws.tflite on nucleo-l4r5zi (optimized kernels, cost model "
                                   "tm-cortex-m4f-v1)")


def test_marker_timeline_names_the_run_and_has_units(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from tinymeter.analysis import plots
    from tinymeter.sim.peripherals import MarkEvent

    figures = []
    save = plots.save
    monkeypatch.setattr(plots, "save", lambda fig, path: (figures.append(fig), save(fig, path))[1])
    marks = [MarkEvent(8_000, "inference", 1), MarkEvent(40_000, "layer", 1),
             MarkEvent(72_000, "layer", 0), MarkEvent(80_000, "inference", 0)]
    path = plots.marker_timeline(marks, 80e6, tmp_path / "marks.png", model="kws.tflite",
                                 board="nucleo-l4r5zi", impl="optimized kernels",
                                 cost_model="tm-cortex-m4f-v3",
                                 ops=["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (ax,) = figures[0].axes
    assert ax.get_title().replace("\n", " ") == (
        "power-monitor marker lines: kws.tflite on nucleo-l4r5zi (optimized kernels, cost model "
        "tm-cortex-m4f-v3)")
    assert ax.get_xlabel() == "time since reset (ms at 80 MHz)"
    assert ax.get_ylabel() == "marker line (logic level, low / high)"
    # the three layer spans of the inference are labelled at their midpoints (ms)
    labels = {t.get_text(): round(t.xy[0], 3) for t in ax.texts}
    assert labels == {"0 CONV_2D": 0.3, "1 DEPTHWISE_CONV_2D": 0.7, "2 FULLY_CONNECTED": 0.95}


def test_pareto_panels_wrap_into_a_readable_grid(tmp_path: Path) -> None:
    from tinymeter.apps.sweep import pareto
    from tinymeter.apps.sweep import plots as nas_plots

    rows = [pareto.SweepRow(**{**_sweep_row_fields(), "name": f"w{w}", "width": w, "board": board,
                            "kernels": kernels, "ms": 1.0 + w / 10, "accuracy": 0.5 + w / 100})
            for board in ("nucleo-g0b1re", "nucleo-l4r5zi") for kernels in ("reference", "optimized")
            for w in (4, 5, 6)]
    path = nas_plots.plot_pareto(rows, tmp_path / "pareto.png")
    from matplotlib.image import imread

    height, width = imread(path).shape[:2]
    assert width < 1600 and height > 900  # 2 x 2 panels, not four in one 2640-pixel row


def _sweep_row_fields() -> dict:
    return {"key": "k", "name": "n", "width": 4, "depth": 1, "kernel": 3, "board": "b",
            "kernels": "reference", "accuracy": 0.5, "float_accuracy": 0.5, "macs": 1000,
            "params": 10, "ms": 1.0, "cycles": 100, "energy_uj": 1.0, "arena_bytes": 100,
            "flash_bytes": 1000}


def test_constant_operator_output_is_refused(capsys, tmp_path: Path) -> None:
    """Found by the fuzz: an output tensor with a buffer was placed in flash and the
    kernel's first store faulted in the emulator."""
    import dataclasses

    from tinymeter.models.builders import int8_tensor, single_op_model_ir
    from tinymeter.models.tflite import serialize_tflite

    x = int8_tensor("x", (1, 8), 0.1, 0)
    m = single_op_model_ir("RESHAPE", [x], [int8_tensor("y", (8,), 0.1, 0)], {"new_shape": [8]})
    sg = m.main
    tensors = list(sg.tensors)
    tensors[1] = dataclasses.replace(tensors[1], data=bytes(8), buffer=1)
    bad = dataclasses.replace(m, subgraphs=(dataclasses.replace(sg, tensors=tuple(tensors)),))
    path = tmp_path / "const_out.tflite"
    path.write_bytes(serialize_tflite(bad, verify=False))
    _one_error(capsys, ["estimate", str(path), "-q"], "operator 0 (RESHAPE)", "'y'",
               "operator output but has constant data")


def test_measure_json_dash_is_pure_json(capsys, tmp_path: Path) -> None:
    import json

    from tinymeter.analysis import check

    model = _reshape_model(tmp_path, 64)
    assert main(["measure", str(model), "--probe", "virtual", "--db", str(tmp_path / "r.sqlite"),
                 "--runs", "2", "-q", "--json", "-"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["model"] == model.stem and data["kernels"] == "reference" and data["ms"] > 0
    assert "measured cycles" in captured.err and "wrote" not in captured.err
    # and check accepts it as current results / baseline
    (tmp_path / "m.json").write_text(captured.out)
    entries = check.load_entries([tmp_path / "m.json"], root=tmp_path)
    assert list(entries) == [f"{model.name} @ nucleo-l4r5zi (reference, measured)"]


def test_ppk2_voltage_is_checked_before_the_package() -> None:
    from tinymeter.core.errors import ConfigError
    from tinymeter.hw.power.monitors import PPK2Monitor

    for mv in (0, 12_000, -3300):
        with pytest.raises(ConfigError, match="PPK2 source voltage"):
            PPK2Monitor("/dev/null", mv)


def test_linker_overflow_is_does_not_fit() -> None:
    from tinymeter.core.boards import load_board
    from tinymeter.core.errors import DoesNotFit
    from tinymeter.firmware.build import linker_overflow

    board = load_board("nucleo-g0b1re")
    flash = board.text
    msg = (f"linking the firmware for nucleo-g0b1re failed: ld: firmware.elf section `.text' will "
           f"not fit in region `{flash.name}' | ld: region `{flash.name}' overflowed by 1234 bytes")
    err = linker_overflow(msg, board)
    assert isinstance(err, DoesNotFit)
    assert err.short == f"does not fit: needs {flash.size + 1234:,} B flash, has {flash.size:,} B"
    assert linker_overflow("undefined reference to `foo'", board) is None
    assert linker_overflow("region `NOPE' overflowed by 4 bytes", board) is None
