"""tinymeter check: pure diff, baseline files, and the CLI's exit codes (0 pass, 1 fail, 2 error)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tinymeter.analysis import check
from tinymeter.cli.main import main
from tinymeter.core.errors import ConfigError


def _report(model: str = "m.tflite", board: str = "nucleo-l4r5zi", kernels: str = "reference",
            ms: float = 10.0, arena: int = 1000, flash: int = 50_000) -> dict:
    """The fields of Estimate.to_dict() the gate reads (plus one it ignores)."""
    return {"model": model, "board": board, "kernels": kernels, "ms": ms, "arena_bytes": arena,
            "flash_bytes": flash, "cycles": 123, "report_version": 1, "cost_model": "datasheet"}


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


KEY = check.entry_key("m.tflite", "nucleo-l4r5zi", "reference", "datasheet")


# ------------------------------------------------------------------------ pure


def test_compare_within_limit_passes_and_limit_is_inclusive() -> None:
    base = {KEY: {"ms": 10.0, "arena_bytes": 1000.0, "flash_bytes": 100.0}}
    cur = {KEY: {"ms": 10.5, "arena_bytes": 1000.0, "flash_bytes": 90.0}}
    res = check.compare(cur, base, 5.0)
    assert res.passed
    status = {d.metric: d.status for d in res.diffs}
    assert status == {"ms": "ok", "arena_bytes": "ok", "flash_bytes": "improved"}
    assert math.isclose(next(d for d in res.diffs if d.metric == "ms").change_pct, 5.0)


def test_compare_flags_each_grown_metric() -> None:
    base = {KEY: {"ms": 10.0, "arena_bytes": 1000.0, "flash_bytes": 100.0}}
    cur = {KEY: {"ms": 10.0, "arena_bytes": 1100.0, "flash_bytes": 106.0}}
    res = check.compare(cur, base, 5.0)
    assert not res.passed
    assert sorted(d.metric for d in res.regressions) == ["arena_bytes", "flash_bytes"]
    assert check.compare(cur, base, 10.0).passed


def test_growth_from_zero_is_infinite_and_fails() -> None:
    res = check.compare({KEY: {"ms": 1.0, "arena_bytes": 4.0, "flash_bytes": 1.0}},
                        {KEY: {"ms": 1.0, "arena_bytes": 0.0, "flash_bytes": 1.0}}, 50.0)
    (reg,) = res.regressions
    assert reg.metric == "arena_bytes" and math.isinf(reg.change_pct)
    assert "+inf%" in check.format_check(res)


def test_new_entries_pass_missing_entries_fail_unless_allowed() -> None:
    other = check.entry_key("n.tflite", "nucleo-f767zi", "optimized", "datasheet")
    m = {"ms": 1.0, "arena_bytes": 1.0, "flash_bytes": 1.0}
    res = check.compare({KEY: m}, {other: m}, 0.0)
    assert not res.passed and len(res.missing) == 3
    assert {d.status for d in res.diffs if d.entry == KEY} == {"new"}
    assert {d.status for d in res.diffs if d.entry == other} == {"missing"}
    text = check.format_check(res)
    assert "FAIL: not measured" in text and "--allow-missing" in text and "PASS" not in text
    res = check.compare({KEY: m}, {other: m}, 0.0, allow_missing=True)
    assert res.passed and "not measured (allowed)" in check.format_check(res)


def test_metric_subset_and_bad_arguments() -> None:
    base = {KEY: {"ms": 1.0, "arena_bytes": 1.0, "flash_bytes": 1.0}}
    cur = {KEY: {"ms": 1.0, "arena_bytes": 9.0, "flash_bytes": 1.0}}
    assert check.compare(cur, base, 1.0, metrics=["ms"]).passed
    with pytest.raises(ConfigError, match="unknown metric"):
        check.compare(cur, base, 1.0, metrics=["speed"])
    with pytest.raises(ConfigError, match="non-negative"):
        check.compare(cur, base, -1.0)


def test_format_names_the_worst_regression() -> None:
    base = {KEY: {"ms": 10.0, "arena_bytes": 100.0, "flash_bytes": 100.0}}
    cur = {KEY: {"ms": 12.0, "arena_bytes": 130.0, "flash_bytes": 100.0}}
    text = check.format_check(check.compare(cur, base, 5.0))
    assert "FAIL: 2 metric(s) grew by more than 5%" in text
    assert "arena B +30.00%" in text.splitlines()[-1]
    assert "+20.00%" in text


# ------------------------------------------------------------------------ files


def test_entries_from_reports_lists_and_baselines(tmp_path: Path) -> None:
    a, b = _report(), _report(board="nucleo-f767zi", ms=3.0)
    assert set(check.entries_from_report([a, b])) == {
        KEY, check.entry_key("m.tflite", "nucleo-f767zi", "reference", "datasheet")}
    check.write_baseline(check.entries_from_report([a, b]), tmp_path / "base.json")
    assert check.load_baseline(tmp_path / "base.json") == check.entries_from_report([a, b])


@pytest.mark.parametrize(("content", "match"), [
    ("{not json", "not valid JSON"),
    ('{"tinymeter_baseline": 99, "entries": {}}', "version 99"),
    ('{"tinymeter_baseline": 1, "entries": {}}', "no entries"),
    ('{"model": "m"}', "missing board, kernels"),
    ('[{"model": "m", "board": "b", "kernels": "k", "ms": "fast", "arena_bytes": 1, "flash_bytes": 1}]',
     "'ms' is not a non-negative number"),
    ('[{"model": "m", "board": "b", "kernels": "k"}]', "no gated metric"),
])
def test_invalid_baselines(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "base.json"
    path.write_text(content)
    with pytest.raises(check.BaselineError, match=match):
        check.load_baseline(path)


def test_duplicate_current_entries_are_an_error(tmp_path: Path) -> None:
    p = _write(tmp_path / "a.json", _report())
    with pytest.raises(check.BaselineError, match="twice"):
        check.load_entries([p, p])


# ------------------------------------------------------------------------ CLI


def test_cli_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _write(tmp_path / "base.json", _report(ms=10.0))
    cur = _write(tmp_path / "cur.json", _report(ms=10.2))
    assert main(["check", str(cur), "--baseline", str(base), "--max-regression", "5"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "+2.00%" in out


def test_cli_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _write(tmp_path / "base.json", _report(flash=50_000))
    cur = _write(tmp_path / "cur.json", _report(flash=60_000))
    assert main(["check", str(cur), "--baseline", str(base), "--max-regression", "5"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "50,000" in out and "60,000" in out and "+20.00%" in out


def test_cli_missing_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cur = _write(tmp_path / "cur.json", _report())
    assert main(["check", str(cur), "--baseline", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: baseline") and "does not exist" in err[0]


def test_cli_missing_results_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _write(tmp_path / "base.json", _report())
    assert main(["check", str(tmp_path / "nope.json"), "--baseline", str(base)]) == 2
    assert "results file" in capsys.readouterr().err


def test_cli_update_baseline_then_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cur = _write(tmp_path / "cur.json", [_report(), _report(kernels="optimized", ms=4.0)])
    base = tmp_path / "ci" / "base.json"
    assert main(["check", str(cur), "--baseline", str(base), "--update-baseline"]) == 0
    assert len(json.loads(base.read_text())["entries"]) == 2
    assert main(["check", str(cur), "--baseline", str(base), "--max-regression", "0"]) == 0
    assert "PASS" in capsys.readouterr().out


def test_cli_estimates_tflite_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A .tflite input is estimated on the spot (one FC layer: fast)."""
    import numpy as np

    from tinymeter.models.builders import bias_tensor, int8_tensor, random_int8, single_op_model

    monkeypatch.setenv("TINYMETER_CACHE", str(tmp_path / "cache"))
    x = int8_tensor("x", (1, 16), 0.05, 0)
    w = int8_tensor("w", (8, 16), 0.01, 0, data=random_int8((8, 16), seed=1))
    b = bias_tensor("b", np.zeros(8, np.int32), input_scale=0.05, weight_scales=w)
    y = int8_tensor("y", (1, 8), 0.2, 0)
    model = tmp_path / "fc.tflite"
    model.write_bytes(single_op_model("FULLY_CONNECTED", [x, w, b], [y]))
    base = tmp_path / "base.json"
    assert main(["check", str(model), "--baseline", str(base), "--update-baseline"]) == 0
    assert main(["check", str(model), "--baseline", str(base)]) == 0
    assert "fc.tflite @ nucleo-l4r5zi (reference, " in capsys.readouterr().out


def test_binary_baseline_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "base.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(check.BaselineError, match="not valid JSON"):
        check.load_baseline(path)


# ------------------------------------------------------------------------ keys, metrics, JUnit


def test_keys_are_relative_paths_board_implementation_and_cost_model(tmp_path: Path) -> None:
    a = {**_report(model="model.tflite"), "model_path": str(tmp_path / "kws" / "model.tflite")}
    b = {**_report(model="model.tflite"), "model_path": str(tmp_path / "vww" / "model.tflite")}
    tflm = {**a, "runtime": "tflm"}
    other_cost = {**a, "cost_model": "calibrated"}
    keys = set(check.entries_from_report([a, b, tflm, other_cost], root=tmp_path))
    assert keys == {"kws/model.tflite @ nucleo-l4r5zi (reference, datasheet)",
                    "vww/model.tflite @ nucleo-l4r5zi (reference, datasheet)",
                    "kws/model.tflite @ nucleo-l4r5zi (tflm runtime, datasheet)",
                    "kws/model.tflite @ nucleo-l4r5zi (reference, calibrated)"}
    # a baseline next to the models: the same keys from anywhere the check runs
    base = _write(tmp_path / "base.json", [a, b])
    assert set(check.load_baseline(base)) == set(check.entries_from_report([a, b], root=tmp_path))


def test_energy_and_ram_are_gated() -> None:
    base = {KEY: {"ms": 1.0, "energy_uj": 10.0, "ram_bytes": 1000.0}}
    assert not check.compare({KEY: {"ms": 1.0, "energy_uj": 11.0, "ram_bytes": 1000.0}}, base, 5).passed
    assert not check.compare({KEY: {"ms": 1.0, "energy_uj": 10.0, "ram_bytes": 1100.0}}, base, 5).passed
    # an older baseline without them: the new metrics are "new", not failures
    res = check.compare({KEY: {"ms": 1.0, "energy_uj": 11.0}}, {KEY: {"ms": 1.0}}, 5)
    assert res.passed and {d.status for d in res.diffs} == {"ok", "new"}


def test_measure_json_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meas = {"board": "nucleo-l4r5zi", "model": "kws", "measurement_id": 3, "kernels": "optimized",
            "ms": 12.5, "energy_uj": 300.0, "total_cycles": 1.5e6, "runs": 5}
    entries = check.entries_from_report(meas)
    assert entries == {"kws @ nucleo-l4r5zi (optimized, measured)": {"ms": 12.5, "energy_uj": 300.0}}
    base = _write(tmp_path / "base.json", meas)
    cur = _write(tmp_path / "cur.json", {**meas, "energy_uj": 400.0})
    assert main(["check", str(cur), "--baseline", str(base)]) == 1
    assert "energy uJ" in capsys.readouterr().out


def test_cli_missing_entry_fails_and_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import xml.etree.ElementTree as ET

    base = _write(tmp_path / "base.json", [_report(), _report(board="nucleo-f767zi", flash=10)])
    cur = _write(tmp_path / "cur.json", [_report(flash=60_000)])
    junit = tmp_path / "ci" / "check.xml"
    assert main(["check", str(cur), "--baseline", str(base), "--junit", str(junit)]) == 1
    assert "not measured" in capsys.readouterr().out
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite" and suite.get("tests") == "2" and suite.get("failures") == "2"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    failure = cases[KEY].find("failure")
    assert failure is not None and "flash B +20.00% > 5%" in failure.get("message", "")
    assert main(["check", str(cur), "--baseline", str(base), "--allow-missing",
                 "--max-regression", "25", "--junit", str(junit)]) == 0
    assert ET.parse(junit).getroot().get("failures") == "0"


def test_optimized_request_on_m0plus_reports_reference(tmp_path: Path, monkeypatch) -> None:
    import numpy as np

    from tinymeter.apps.estimate import estimate
    from tinymeter.core.boards import load_board
    from tinymeter.firmware.build import BuildConfig, effective_kernels
    from tinymeter.models.builders import bias_tensor, int8_tensor, random_int8, single_op_model

    g0 = load_board("nucleo-g0b1re")
    assert effective_kernels("optimized", g0.core) == "reference"
    assert effective_kernels("optimized", load_board("nucleo-l4r5zi").core) == "optimized"
    monkeypatch.setenv("TINYMETER_CACHE", str(tmp_path / "cache"))
    x = int8_tensor("x", (1, 16), 0.05, 0)
    w = int8_tensor("w", (8, 16), 0.01, 0, data=random_int8((8, 16), seed=1))
    b = bias_tensor("b", np.zeros(8, np.int32), input_scale=0.05, weight_scales=w)
    model = tmp_path / "fc.tflite"
    model.write_bytes(single_op_model("FULLY_CONNECTED", [x, w, b], [int8_tensor("y", (1, 8), 0.2, 0)]))
    est = estimate(model, g0, BuildConfig(kernels="optimized"))
    assert est.kernels == "reference" and est.model_path == str(model.resolve())
