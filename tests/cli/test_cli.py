"""CLI behaviour on bad input: one `error:` line naming the cause, exit status 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tinymeter.cli.main import main
from tinymeter.models.builders import int8_tensor, single_op_model

MLPERF = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "mlperf-tiny"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinymeter.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def _assert_one_error_line(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_malformed_tflite(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x10\x00\x00\x00NOPE" + bytes(64))
    _assert_one_error_line(_cli("estimate", str(bad), "-q"), "TFL3")


def test_truncated_tflite(tmp_path: Path) -> None:
    if not (MLPERF / "kws_ref_model.tflite").exists():
        pytest.skip("shared MLPerf Tiny models not present")
    data = (MLPERF / "kws_ref_model.tflite").read_bytes()
    bad = tmp_path / "cut.tflite"
    bad.write_bytes(data[:2000])
    proc = _cli("estimate", str(bad), "-q")
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_unsupported_op(tmp_path: Path) -> None:
    x = int8_tensor("x", (1, 8), 0.1, 0)
    y = int8_tensor("y", (1, 8), 1 / 128, 0)
    path = tmp_path / "tanh.tflite"
    path.write_bytes(single_op_model("SQUARED_DIFFERENCE", [x, x], [y]))
    _assert_one_error_line(_cli("estimate", str(path), "-q"), "SQUARED_DIFFERENCE")


def test_missing_model_file() -> None:
    _assert_one_error_line(_cli("estimate", "/nonexistent/model.tflite", "-q"), "does not exist")


def test_unknown_board(tmp_path: Path) -> None:
    x = int8_tensor("x", (1, 4), 0.1, 0)
    path = tmp_path / "m.tflite"
    path.write_bytes(single_op_model("RESHAPE", [x], [int8_tensor("y", (4,), 0.1, 0)],
                                     {"new_shape": [4]}))
    _assert_one_error_line(_cli("estimate", str(path), "--board", "nucleo-zz", "-q"),
                           "unknown board 'nucleo-zz'")


def test_boards_lists_every_board(capsys) -> None:
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    for name in ("nucleo-l4r5zi", "nucleo-f767zi", "nucleo-g0b1re"):
        assert name in out


def test_inspect_kws(capsys) -> None:
    if not (MLPERF / "kws_ref_model.tflite").exists():
        pytest.skip("shared MLPerf Tiny models not present")
    assert main(["inspect", str(MLPERF / "kws_ref_model.tflite")]) == 0
    out = capsys.readouterr().out
    assert "DEPTHWISE_CONV_2D" in out


def _reshape_model(tmp_path: Path) -> Path:
    x = int8_tensor("x", (1, 4), 0.1, 0)
    path = tmp_path / "m.tflite"
    path.write_bytes(single_op_model("RESHAPE", [x], [int8_tensor("y", (4,), 0.1, 0)],
                                     {"new_shape": [4]}))
    return path


def test_opt_value_with_dash_reaches_the_build(tmp_path: Path) -> None:
    # `--opt -O7` must be read as the value of --opt, so the build names the bad level.
    _assert_one_error_line(_cli("estimate", str(_reshape_model(tmp_path)), "--opt", "-O7", "-q"),
                           "-O7")


@pytest.mark.parametrize("args", [("--budget", "-5"), ("--timeout", "0"), ("--profile", "-2"),
                                  ("--tflm-arena", "x")])
def test_nonsense_limits_are_usage_errors(args: tuple[str, str]) -> None:
    proc = _cli("estimate", "-q", *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"argument {args[0]}: expected" in proc.stderr.strip().splitlines()[-1]


def test_unwritable_output_is_one_error_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    _assert_one_error_line(_cli("build", str(_reshape_model(tmp_path)), "--out",
                                str(blocker / "fw")), str(blocker))
