"""Energy integration over GPIO windows, CSV import, instrument adapters, results database."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

from tinymeter.errors import ConfigError
from tinymeter.hw.errors import HardwareError, ToolMissingError
from tinymeter.hw.power import (
    JoulescopeMonitor,
    PowerTrace,
    PPK2Monitor,
    energy_from_trace,
    inference_windows,
    integrate_energy,
    read_csv,
    write_csv,
)
from tinymeter.hw.protocol import parse_transcript, summarize
from tinymeter.hw.resultsdb import SCHEMA_VERSION, ResultsDB
from tinymeter.hw.virtual import report_lines


def _trace(n_inferences: int = 3, rate: float = 1e5) -> PowerTrace:
    """Idle 10 mA, inferences of 2 layers: 20 mA for 1 ms then 40 mA for 2 ms, 3.3 V."""
    cur, gpio = [], []
    for _ in range(n_inferences):
        cur += [0.010] * 100
        gpio += [0] * 100
        cur += [0.020] * 100 + [0.040] * 200
        gpio += [1] * 100 + [3] * 200
    cur += [0.010] * 100
    gpio += [0] * 100
    n = len(cur)
    return PowerTrace(np.arange(n) / rate, np.array(cur), np.full(n, 3.3), np.array(gpio), "test")


def test_windows_and_energy() -> None:
    trace = _trace()
    windows = inference_windows(trace)
    assert len(windows) == 3 and all(w.stop - w.start == 300 for w in windows)
    # 3.3 V * (20 mA * 1 ms + 40 mA * 2 ms) = 330 µJ; trapezoid adds one edge sample
    energy = integrate_energy(trace, windows)
    assert np.allclose(energy, 330.0, rtol=0.002)
    result = energy_from_trace(trace, 2, warmup=1)
    assert result.windows == 2 and result.latency_s == pytest.approx(3e-3)
    assert result.per_layer_uj == pytest.approx((66.0, 264.0), rel=0.01)
    assert sum(result.per_layer_uj) == pytest.approx(result.per_inference_uj)
    assert result.mean_power_mw == pytest.approx(110.0, rel=0.01)
    # without layer marks: split by cycle shares
    flat = PowerTrace(trace.time_s, trace.current_a, trace.voltage_v, trace.gpio & 1)
    split = energy_from_trace(flat, 2, layer_cycles=[1, 3])
    assert split.per_layer_uj[1] == pytest.approx(3 * split.per_layer_uj[0])
    with pytest.raises(HardwareError, match="no layer marks"):
        energy_from_trace(flat, 2)
    with pytest.raises(HardwareError, match="no complete inference window"):
        energy_from_trace(trace, 2, warmup=3)


def test_windows_cut_by_the_capture_are_ignored() -> None:
    trace = _trace()
    cut = PowerTrace(trace.time_s[150:], trace.current_a[150:], trace.voltage_v[150:],
                     trace.gpio[150:])
    assert len(inference_windows(cut)) == 2


def test_csv_round_trip_and_other_layouts(tmp_path: Path) -> None:
    trace = _trace(2)
    write_csv(trace, tmp_path / "t.csv")
    back = read_csv(tmp_path / "t.csv")
    assert np.array_equal(back.current_a, trace.current_a) and np.array_equal(back.gpio, trace.gpio)
    (tmp_path / "ppk.csv").write_text("Timestamp(ms),Current(uA),D0,D1\n"
                                      + "".join(f"{i * 0.01},{1000 + i},{i % 2},0\n"
                                                for i in range(10)))
    ppk = read_csv(tmp_path / "ppk.csv", voltage=1.8)
    assert ppk.current_a[3] == pytest.approx(1003e-6) and ppk.time_s[1] == pytest.approx(1e-5)
    assert list(ppk.channel(0)[:4]) == [0, 1, 0, 1]
    (tmp_path / "p.csv").write_text("time,power_w,voltage\n0,1.0,2.0\n1,2.0,2.0\n")
    assert read_csv(tmp_path / "p.csv").current_a.tolist() == [0.5, 1.0]
    for text, match in [("a,b\n1,2\n3,4\n", "no time column"),
                        ("time,current\n0,1\n1,x\n", "non-numeric"),
                        ("time,current\n0,1\n1,2\n", "voltage"),
                        ("time,voltage\n0,1\n1,2\n", "no current"),
                        ("time,current,voltage\n1,1,1\n0,1,1\n", "increase")]:
        (tmp_path / "bad.csv").write_text(text)
        with pytest.raises(ConfigError, match=match):
            read_csv(tmp_path / "bad.csv")


def test_instrument_adapters_need_their_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "joulescope", None)
    monkeypatch.setitem(sys.modules, "ppk2_api", None)
    monkeypatch.setitem(sys.modules, "ppk2_api.ppk2_api", None)
    with pytest.raises(ToolMissingError, match="pip install joulescope"):
        JoulescopeMonitor()
    with pytest.raises(ToolMissingError, match="pip install ppk2-api"):
        PPK2Monitor("/dev/ttyACM1")


def _measurement():
    data = b"".join(b"".join(report_lines("m", k, [100 + k, 50], ("CONV_2D", "FULLY_CONNECTED")))
                    for k in range(4))
    events, _ = parse_transcript(data)
    return summarize(events, warmup=1)


def test_results_db_store_resume_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    m = _measurement()
    with ResultsDB(path) as db:
        mid = db.add(board="b", image_sha256="abc", measurement=m, warmup=1, kernels="reference",
                     tools={"probe": "pyocd 0.36"}, energy_uj=3.0, latency_s=1e-3,
                     layer_energy_uj=(2.0, 1.0), transcript=b"TM1 ...")
        assert db.latest("b", "zzz") is None
    with ResultsDB(path) as db:  # reopened: still there (resumable campaigns)
        got = db.latest("b", "abc")
        assert got is not None and got.id == mid
        assert got.cycles == (102.0, 50.0) and got.ops == ("CONV_2D", "FULLY_CONNECTED")
        assert got.tools == {"probe": "pyocd 0.36"} and got.layer_energy_uj == (2.0, 1.0)
        assert len(db.run_cycles(mid)) == 6 and len(db.list("b")) == 1
        with pytest.raises(ConfigError, match="no measurement"):
            db.get(999)
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    with pytest.raises(ConfigError, match="newer"):
        ResultsDB(path)
    (tmp_path / "junk.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(ConfigError, match="junk.sqlite"):
        ResultsDB(tmp_path / "junk.sqlite")
