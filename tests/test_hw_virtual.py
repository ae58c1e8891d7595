"""End to end on the virtual board: flash, measure and calibrate without hardware."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tinymeter.boards import load_board
from tinymeter.cli import main
from tinymeter.firmware.build import BuildConfig, FirmwareBuilder
from tinymeter.firmware.codegen import generate
from tinymeter.hw.demomodels import write_demo_models
from tinymeter.hw.measure import MeasureConfig, measure_elf
from tinymeter.hw.resultsdb import ResultsDB
from tinymeter.hw.virtual import VirtualBoard, VirtualTiming
from tinymeter.models.tflite import load_tflite
from tinymeter.sim.costmodel import cost_model_for, feature_names, parameter_vector

BOARD = "nucleo-l4r5zi"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("tmcache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYMETER_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_demo_models(tmp_path_factory.mktemp("models"))


def _image(model: Path, runs: int, cache: Path, io: str = "uart"):
    board = load_board(BOARD)
    gen = generate(load_tflite(model), name=model.stem)
    return gen, FirmwareBuilder(cache_dir=cache).build(gen, board, BuildConfig(runs=runs, io=io))


@pytest.mark.parametrize("glitches", [{}, {1: "drop_bytes", 2: "garbage"}, {2: "reset_mid_report"},
                                      {0: "reset_mid_report", 3: "drop_bytes"}])
def test_measure_through_transport_faults(glitches: dict[int, str], cache: Path,
                                          models: list[Path]) -> None:
    board = load_board(BOARD)
    gen, image = _image(models[2], runs=6, cache=cache)
    timing = VirtualTiming.for_board(board, noise=0.0)
    with VirtualBoard(board, timing, glitches=glitches) as vb:
        result = measure_elf(vb, image.elf, MeasureConfig(runs=4, warmup=1, timeout_s=30,
                                                          idle_timeout_s=20),
                             expect_model=gen.name, expect_ops=[x.op_name for x in gen.layers])
        truth = vb.program(image.elf).true_cycles
    m = result.measurement
    assert m.runs == 4 and len(m.reports) == 4
    assert len({(r.boot, r.run) for r in m.reports}) == 4  # nothing double counted
    assert all(r.run >= 1 for r in m.reports)              # cold run 0 dropped
    assert np.array_equal(np.array(m.cycles), np.round(truth))  # nothing corrupted kept
    assert m.layers[0].op == gen.layers[0].op_name
    if glitches:
        assert result.parse_stats["discarded_reports"] >= 1


def test_hardware_device_protocol(cache: Path, models: list[Path]) -> None:
    """The board behind the same Device protocol as the emulator (timing only)."""
    from tinymeter.errors import ConfigError
    from tinymeter.hw.measure import HardwareDevice

    board = load_board(BOARD)
    _, image = _image(models[0], runs=3, cache=cache)
    with VirtualBoard(board, VirtualTiming.for_board(board)) as vb:
        device = HardwareDevice(vb, MeasureConfig(runs=2, warmup=1, timeout_s=30))
        assert device.board is board
        run = device.run(image, [[]])
        assert run.outputs == [] and run.stdout.count("TM1 END") >= 3
        with pytest.raises(ConfigError, match="default inputs only"):
            device.run(image, [[np.zeros(4)]])
        _, semihosting = _image(models[0], runs=3, cache=cache, io="semihosting")
        with pytest.raises(ConfigError, match="needs the hardware image"):
            device.run(semihosting, [[]])


def test_virtual_board_errors(cache: Path, models: list[Path]) -> None:
    from tinymeter.errors import ConfigError
    from tinymeter.hw.errors import HardwareError

    board = load_board(BOARD)
    with pytest.raises(ConfigError, match="glitch"):
        VirtualBoard(board, VirtualTiming.for_board(board), glitches={0: "explode"})
    with VirtualBoard(board, VirtualTiming.for_board(board)) as vb:
        with pytest.raises(HardwareError, match="nothing flashed"):
            vb.reset()
        with pytest.raises(HardwareError, match="no inference"):
            vb.power_trace()


def _recovery(report: Path, board_name: str, noise: float) -> tuple[dict, dict[str, float]]:
    """The JSON report and every identified parameter's relative error to the hidden truth."""
    board = load_board(board_name)
    timing = VirtualTiming.for_board(board, noise=noise)
    prior = cost_model_for(board, calibration=Path("/nonexistent")).params
    truth = dict(zip(feature_names(prior), parameter_vector(timing.params).tolist()))
    rep = json.loads(report.read_text())
    params = rep["parameters"]
    # relative error; absolute (cycles) for a parameter whose truth is 0 (M7 alu.dual)
    return rep, {n: abs(p["fitted"] - truth[n]) / (truth[n] or 1.0) for n, p in params.items()
                 if p["identified"]}


def test_calibrate_recovers_hidden_parameters(cache: Path, models: list[Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    db, out, report, plots = (tmp_path / "r.sqlite", tmp_path / "cal.json", tmp_path / "rep.json",
                              tmp_path / "plots")
    argv = ["calibrate", *map(str, models), "--board", BOARD, "--probe", "virtual", "--db", str(db),
            "--runs", "7", "--warmup", "1", "--power", "virtual", "--virtual-noise", "0.0003",
            "--out", str(out), "--json", str(report), "--plot", str(plots)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "leave-one-out latency error" in text and f"wrote {out}" in captured.err
    assert "microbenchmarks" in text and "every parameter identified" in text
    assert "not separable" not in text  # every mechanism has its own column now

    board = load_board(BOARD)
    timing = VirtualTiming.for_board(board, noise=0.0003)
    rep, recovery = _recovery(report, BOARD, 0.0003)
    # with the microbenchmarks, every parameter of the M4F is pinned down within 2% ...
    assert set(recovery) == set(rep["parameters"]) and rep["unidentified"] == {}
    assert max(recovery.values()) < 0.02, recovery
    assert "microbench" in rep["models"]
    # ... and unseen models are predicted within 5% (microbenchmarks always trained on)
    assert rep["loo_error_after"]["model_mape"] < 0.05
    assert rep["loo_error_after"]["model_max"] < 0.05
    assert rep["loo_error_after"]["model_mape"] < rep["loo_error_before"]["model_mape"] / 5
    assert "microbench" not in rep["loo_error_after"]["per_model"]
    assert rep["active_mw"] == pytest.approx(timing.active_mw, rel=0.02)
    for name in ("estimated_vs_measured.png", "energy_vs_latency.png"):
        assert (plots / name).stat().st_size > 1000

    # the calibration file is what the cost model loads, and it now predicts the board
    model = cost_model_for(board, calibration=out)
    assert model.source.startswith("calibrated") and model.active_mw == pytest.approx(rep["active_mw"])

    # resumable: a second campaign reuses every stored measurement (models + microbenchmarks);
    # without the microbenchmarks the NN layers alone leave most parameters collinear
    with ResultsDB(db) as rdb:
        before = len(rdb.list(BOARD))
    models_only = tmp_path / "models-only.json"
    assert main([*argv[:-4], "--json", str(models_only), "--no-save", "--no-microbench"]) == 0
    with ResultsDB(db) as rdb:
        assert len(rdb.list(BOARD)) == before == len(models) + 1
    rep2 = json.loads(models_only.read_text())
    assert "microbench" not in rep2["models"]
    assert len(rep2["unidentified"]) >= 5
    assert any("collinear" in why for why in rep2["unidentified"].values())


#: Parameters no instruction of the core can exercise (documented as not identifiable).
ABSENT = {"nucleo-g0b1re": {"cpi.mac", "cpi.mul64", "cpi.divide", "cpi.vfp"},
          "nucleo-f767zi": set()}


@pytest.mark.parametrize("board_name", sorted(ABSENT))
def test_calibrate_other_cores(board_name: str, cache: Path, models: list[Path],
                               tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """M0+ (no divide, DSP, FPU, long multiplies) and M7 (dual issue, CPI < 1)."""
    report = tmp_path / "rep.json"
    assert main(["calibrate", *map(str, models[:6]), "--board", board_name, "--probe", "virtual",
                 "--db", str(tmp_path / "r.sqlite"), "--runs", "5", "--warmup", "1",
                 "--power", "virtual", "--no-save", "--json", str(report)]) == 0
    # these boards' hardware image runs at 16 MHz: its power is not the modelled clock's
    assert "energy was measured at 16 MHz (the hardware image's clock)" in capsys.readouterr().out
    rep, recovery = _recovery(report, board_name, 0.0005)
    assert rep["active_mw"] is None
    assert set(rep["unidentified"]) == ABSENT[board_name]
    assert all(why.startswith("not executed") for why in rep["unidentified"].values())
    assert set(recovery) == set(rep["parameters"]) - ABSENT[board_name]
    assert max(recovery.values()) < 0.02, recovery
    assert rep["loo_error_after"]["model_max"] < 0.05


def test_measure_cli(cache: Path, models: list[Path], tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.json"
    assert main(["measure", str(models[0]), "--probe", "virtual", "--db", str(tmp_path / "r.sqlite"),
                 "--runs", "3", "--power", "virtual", "--json", str(out), "--plot",
                 str(tmp_path / "p")]) == 0
    text = capsys.readouterr().out
    assert "total" in text and "energy" in text
    data = json.loads(out.read_text())
    assert data["runs"] == 3 and len(data["measured_cycles"]) == len(data["ops"])
    assert data["energy_uj"] > 0 and data["tools"]["probe"] == "virtual-board 1"
    assert (tmp_path / "p" / "layer_latency.png").exists()


def test_cli_errors(capsys: pytest.CaptureFixture[str], models: list[Path]) -> None:
    assert main(["measure", str(models[0]), "--probe", "pyocd"]) == 2
    assert "--port is required" in capsys.readouterr().err
    # no models given: the demo set is used (on real boards too), so the port is next
    assert main(["calibrate", "--probe", "pyocd", "--port", "/dev/null"]) == 2
    assert "cannot open serial port /dev/null" in capsys.readouterr().err
    assert main(["measure", str(models[0]), "--probe", "pyocd", "--port", "/dev/null",
                 "--power", "virtual"]) == 2


@pytest.mark.hardware
def test_measure_on_real_board(request: pytest.FixtureRequest, models: list[Path],
                               tmp_path: Path) -> None:
    port = request.config.getoption("--hw-port")
    if not port:
        pytest.skip("--hw-port (the board's serial device) is needed too")
    assert main(["measure", str(models[0]), "--board", request.config.getoption("--board"),
                 "--probe", request.config.getoption("--hw-probe"), "--port", port,
                 "--db", str(tmp_path / "r.sqlite"), "--json", str(tmp_path / "m.json")]) == 0
    data = json.loads((tmp_path / "m.json").read_text())
    assert all(c > 0 for c in data["measured_cycles"])


def test_measure_waits_scale_with_the_model_and_hardware_clock() -> None:
    from tinymeter.hw.measure import scaled_timeouts

    config = MeasureConfig(runs=5, warmup=1, timeout_s=120, idle_timeout_s=30)
    # DS-CNN-sized: 50M cycles at 120 MHz = 0.42 s per inference: the defaults stand
    assert scaled_timeouts(config, 50e6, 120_000_000) == config
    # 400M cycles on a board whose hardware image runs at 16 MHz: 25 s per inference
    slow = scaled_timeouts(config, 400e6, 16_000_000)
    assert slow.idle_timeout_s == pytest.approx(2 * 25 + 5)
    assert slow.timeout_s == pytest.approx(2 * 25 * 6 + 10)
    assert (slow.runs, slow.warmup, slow.retries) == (5, 1, config.retries)
    # never lowers what the user asked for
    generous = MeasureConfig(timeout_s=10_000, idle_timeout_s=1_000)
    assert scaled_timeouts(generous, 400e6, 16_000_000) == generous
