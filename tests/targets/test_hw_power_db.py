"""Energy integration over GPIO windows, CSV import, instrument adapters, results database."""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinymeter.abi import report_lines
from tinymeter.apps.resultsdb import SCHEMA_VERSION, ResultsDB
from tinymeter.core.errors import ConfigError, HardwareError, ToolMissingError
from tinymeter.hw.power.csvio import read_csv, write_csv
from tinymeter.hw.power.monitors import JoulescopeMonitor, PPK2Monitor
from tinymeter.hw.power.trace import PowerTrace, energy_from_trace, inference_windows, integrate_energy
from tinymeter.hw.protocol import parse_transcript, summarize


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


class _FakePPK2:
    """Test double of ``ppk2_api.ppk2_api.PPK2_API``: streams chunks of (µA samples,
    logic-port bytes) as ``get_data`` is polled, like the real serial stream."""

    def __init__(self, port: str, chunks: list[tuple[list[float], list[int]]],
                 calls: list[tuple]) -> None:
        self.port, self._chunks, self.calls = port, list(chunks), calls

    def __getattr__(self, name: str):
        return lambda *args: self.calls.append((name, *args))

    def get_data(self) -> bytes:
        return repr(self._chunks.pop(0)).encode() if self._chunks else b""

    def get_samples(self, raw: bytes) -> tuple[list[float], list[int]]:
        import ast

        samples, digital = ast.literal_eval(raw.decode())
        return samples, digital

    def digital_channels(self, raw_digital: list[int]) -> list[list[int]]:
        return [[(b >> k) & 1 for b in raw_digital] for k in range(8)]


def test_ppk2_adapter_drains_and_packs_logic_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    calls: list[tuple] = []
    # 3 chunks: idle, inference (D0) with a layer toggle (D1), idle; D2 must be ignored
    chunks = [([100.0] * 4, [0b100] * 4), ([2000.0] * 6, [1, 1, 1, 3, 3, 3]), ([100.0] * 4, [0] * 4)]
    mod = types.ModuleType("ppk2_api.ppk2_api")
    mod.PPK2_API = lambda port: _FakePPK2(port, chunks, calls)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ppk2_api", types.ModuleType("ppk2_api"))
    monkeypatch.setitem(sys.modules, "ppk2_api.ppk2_api", mod)
    monitor = PPK2Monitor("/dev/ttyACM1", voltage_mv=1800)
    monitor.POLL_INTERVAL_S = 0.001
    monitor.start()
    for _ in range(2000):  # the drain thread empties the stream without anyone polling
        if len(monitor._current) == 14:
            break
        time.sleep(0.001)
    trace = monitor.stop()
    monitor.close()
    assert [c[0] for c in calls] == ["get_modifiers", "use_source_meter", "set_source_voltage",
                                     "toggle_DUT_power", "start_measuring", "stop_measuring",
                                     "toggle_DUT_power"]
    assert calls[2] == ("set_source_voltage", 1800) and calls[3] == ("toggle_DUT_power", "ON")
    assert calls[-1] == ("toggle_DUT_power", "OFF")
    assert trace.gpio.tolist() == [0] * 4 + [1, 1, 1, 3, 3, 3] + [0] * 4
    assert np.allclose(trace.current_a, np.array([100.0] * 4 + [2000.0] * 6 + [100.0] * 4) * 1e-6)
    assert np.allclose(trace.voltage_v, 1.8) and trace.time_s[1] == pytest.approx(1e-5)
    result = energy_from_trace(trace, n_layers=2)
    assert result.windows == 1
    # layer 0: samples 4..7 (3 intervals at 2 mA), layer 1: 7..10 (2 at 2 mA, 1 falling)
    assert result.per_layer_uj[0] == pytest.approx(3 * 2e-3 * 1.8 * 1e-5 * 1e6)
    with pytest.raises(HardwareError, match="not started"):
        PPK2Monitor("/dev/ttyACM1").stop()


def test_ppk2_adapter_reports_stream_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    class Broken(_FakePPK2):
        def get_data(self) -> bytes:
            raise OSError("device disconnected")

    mod = types.ModuleType("ppk2_api.ppk2_api")
    mod.PPK2_API = lambda port: Broken(port, [], [])  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ppk2_api", types.ModuleType("ppk2_api"))
    monkeypatch.setitem(sys.modules, "ppk2_api.ppk2_api", mod)
    monitor = PPK2Monitor("/dev/ttyACM1")
    monitor.start()
    with pytest.raises(HardwareError, match="reading samples failed: device disconnected"):
        monitor.stop()
    monitor.close()


class _FakeJoulescope:
    """Test double of a ``joulescope`` v1 device with a stream buffer of n samples."""

    def __init__(self, n: int, calls: list[tuple]) -> None:
        self.calls = calls
        self.n = n
        outer = self

        class Buffer:
            sample_id_range = (1000, 1000 + n)

            def samples_get(self, start: int, stop: int, fields: list[str]) -> dict:
                outer.calls.append(("samples_get", start, stop, tuple(fields)))
                k = stop - start
                in0 = np.array([0, 1, 1, 1, 0] * (k // 5 + 1))[:k]
                return {"signals": {"current": {"value": np.full(k, 0.002)},
                                    "voltage": {"value": np.full(k, 3.3)},
                                    "current_lsb": {"value": in0},
                                    "voltage_lsb": {"value": np.zeros(k, int)}}}

        self.stream_buffer = Buffer()

    def __str__(self) -> str:
        return "Joulescope:000415"

    def __getattr__(self, name: str):
        return lambda *args, **kw: self.calls.append((name, *args, *sorted(kw.items())))


def test_joulescope_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    calls: list[tuple] = []
    mod = types.ModuleType("joulescope")
    mod.scan = lambda config: [_FakeJoulescope(10, calls)]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "joulescope", mod)
    with pytest.raises(HardwareError, match="no Joulescope found with serial 999"):
        JoulescopeMonitor(serial="999").start()
    monitor = JoulescopeMonitor(serial="000415", max_seconds=5.0, sampling_frequency=2e6)
    monitor.start()
    time.sleep(0.01)  # 20,000 samples' worth: more than the 10 buffered
    trace = monitor.stop()
    monitor.close()
    names = [c[0] for c in calls]
    assert names[:5] == ["open", "parameter_set", "parameter_set", "parameter_set", "start"]
    assert calls[1:4] == [("parameter_set", "sampling_frequency", 2000000),
                          ("parameter_set", "i_range", "auto"),
                          ("parameter_set", "buffer_duration", 5.0)]
    assert calls[4] == ("start", ("duration", 5.0), ("stop_fn", None))
    # the capture is only as long as start..stop lasted (not the whole buffer)
    get = next(c for c in calls if c[0] == "samples_get")
    assert get[2] == 1010 and get[3] == ("current", "voltage", "current_lsb", "voltage_lsb")
    assert names[-3:] == ["stop", "samples_get", "close"]
    assert trace.source == "joulescope" and len(trace.gpio) == get[2] - get[1]
    assert set(trace.gpio.tolist()) <= {0, 1} and trace.voltage_v[0] == 3.3


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
