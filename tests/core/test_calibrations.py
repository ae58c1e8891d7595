"""Calibration storage: the user's data directory keyed by board (and probe uid), the
choice an estimate makes and says, ``--calibration FILE|none``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tinymeter.cli.main import main
from tinymeter.core.boards import load_board
from tinymeter.core.calibrations import calibration_file, choose_calibration, data_dir, find_calibration
from tinymeter.core.errors import ConfigError
from tinymeter.models.builders import int8_tensor, single_op_model
from tinymeter.sim.costmodel import calibration_path, chosen_cost_model, cost_model_for, datasheet_cost_model


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TINYMETER_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def _calibration(path: Path, branch_refill: float = 7.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"branch_refill": branch_refill, "active_mw": 50.0}))
    return path


def test_locations(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert data_dir() == data
    assert calibration_file("nucleo-l4r5zi") == data / "calibrations" / "nucleo-l4r5zi.json"
    assert calibration_file("b", "0670FF/x y") == data / "calibrations" / "b@0670FF_x_y.json"
    board = load_board("nucleo-l4r5zi")
    assert calibration_path(board) == calibration_file("nucleo-l4r5zi")
    monkeypatch.delenv("TINYMETER_DATA")
    monkeypatch.setenv("XDG_DATA_HOME", "/xdg")
    assert data_dir() == Path("/xdg/tinymeter")


def test_find_prefers_the_probes_own(data: Path, tmp_path: Path, caplog) -> None:
    board = load_board("nucleo-l4r5zi")
    assert find_calibration(board) is None
    general = _calibration(calibration_file(board.name))
    assert find_calibration(board) == general == find_calibration(board, "other-uid")
    own = _calibration(calibration_file(board.name, "UID1"))
    assert find_calibration(board, "UID1") == own and find_calibration(board) == general
    # the stored calibration is what cost_model_for applies by default
    assert cost_model_for(board).params.branch_refill == 7.0
    assert cost_model_for(board).active_mw == 50.0


def test_legacy_file_next_to_the_board_is_ignored_with_a_note(data: Path, tmp_path: Path,
                                                                caplog) -> None:
    src = load_board("nucleo-l4r5zi").path
    assert src is not None
    board_file = tmp_path / "myboard.toml"
    board_file.write_text(src.read_text())
    _calibration(tmp_path / "myboard.calibration.json")
    with caplog.at_level(logging.WARNING):
        assert find_calibration(load_board(board_file)) is None
    assert "ignoring" in caplog.text and "--calibration" in caplog.text


def test_choose(data: Path, tmp_path: Path) -> None:
    board = load_board("nucleo-l4r5zi")
    assert choose_calibration(board, None).path is None
    assert choose_calibration(board, None).describe() == "calibration: none (datasheet cost model)"
    stored = _calibration(calibration_file(board.name))
    assert choose_calibration(board, None).path == stored
    assert choose_calibration(board, "none").path is None
    assert chosen_cost_model(board, choose_calibration(board, "none")) == datasheet_cost_model(board)
    mine = _calibration(tmp_path / "mine.json", branch_refill=3.0)
    choice = choose_calibration(board, str(mine))
    assert choice.describe() == f"calibration: {mine}"
    assert chosen_cost_model(board, choice).params.branch_refill == 3.0
    with pytest.raises(ConfigError, match="does not exist"):
        choose_calibration(board, str(tmp_path / "nope.json"))


@pytest.mark.slow
def test_estimate_says_which_calibration(data: Path, tmp_path: Path, capsys) -> None:
    x = int8_tensor("x", (1, 8), 0.1, 0)
    model = tmp_path / "m.tflite"
    model.write_bytes(single_op_model("RESHAPE", [x], [int8_tensor("y", (8,), 0.1, 0)],
                                      {"new_shape": [8]}))
    assert main(["estimate", str(model), "-q"]) == 0
    assert "calibration: none (datasheet cost model)" in capsys.readouterr().out
    stored = _calibration(calibration_file("nucleo-l4r5zi"))
    assert main(["estimate", str(model), "-q"]) == 0
    out = capsys.readouterr().out
    assert f"calibration: {stored}" in out and "calibrated" in out
    assert main(["estimate", str(model), "-q", "--calibration", "none"]) == 0
    assert "calibration: none" in capsys.readouterr().out
    assert main(["estimate", str(model), "-q", "--calibration", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "x.json does not exist" in err[0]


@pytest.mark.slow
def test_compare_runtimes_takes_calibration(data: Path, tmp_path: Path, capsys,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``estimate --compare-runtimes --calibration FILE|none``: every runtime is priced by
    the chosen cost model, and the table says which (the stored one by default)."""
    monkeypatch.setenv("TINYMETER_CONFIG", str(tmp_path / "no-config.toml"))  # no TFLM library
    monkeypatch.chdir(tmp_path)
    board = load_board("nucleo-l4r5zi")
    x = int8_tensor("x", (1, 8), 0.1, 0)
    model = tmp_path / "m.tflite"
    model.write_bytes(single_op_model("RESHAPE", [x], [int8_tensor("y", (8,), 0.1, 0)],
                                      {"new_shape": [8]}))
    stored = _calibration(calibration_file(board.name), branch_refill=7.0)
    mine = _calibration(tmp_path / "mine.json", branch_refill=3.0)

    def compare(*extra: str) -> tuple[str, list[dict]]:
        out_json = tmp_path / "cmp.json"
        assert main(["estimate", str(model), "-q", "--compare-runtimes", "--json",
                     str(out_json), *extra]) == 0
        return capsys.readouterr().out, json.loads(out_json.read_text())["runtimes"]

    for extra, path, line in (((), stored, f"calibration: {stored}"),
                              (("--calibration", str(mine)), mine, f"calibration: {mine}"),
                              (("--calibration", "none"), None,
                               "calibration: none (datasheet cost model)")):
        out, runs = compare(*extra)
        assert out.rstrip().splitlines()[-1] == line
        expected = chosen_cost_model(board, choose_calibration(board, str(path) if path else "none"))
        assert [r["label"] for r in runs] == ["own ref", "own opt"]
        assert all(r["cost_parameters"]["source"] == expected.source for r in runs)
        assert all(r["cost_parameters"]["branch_refill"] == expected.params.branch_refill
                   for r in runs)
    assert main(["estimate", str(model), "-q", "--compare-runtimes", "--calibration",
                 str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "x.json does not exist" in err[0]
