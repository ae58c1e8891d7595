"""Energy by activity: the model, its board and calibration parameters, the power fit,
and per-layer energies in estimates (hand-computed numbers throughout)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tinymeter.analysis.calibrate import ModelSample, fit_energy
from tinymeter.analysis.report import format_table, layers_csv
from tinymeter.apps.estimate import layer_estimates
from tinymeter.core.boards import load_board, parse_board
from tinymeter.core.errors import ConfigError
from tinymeter.sim.blocks import BlockTable
from tinymeter.sim.classes import CLASSES
from tinymeter.sim.costmodel import (
    CostModel,
    CostParameters,
    cost_model_for,
    datasheet_cost_model,
    load_calibration,
)
from tinymeter.sim.energy import (
    EnergyParameters,
    board_energy_parameters,
    energy_features,
    group_activity,
    layer_energy,
    row_activity,
)
from tinymeter.sim.native_hook import CYCLE_SCALE, STAT, STAT_COLUMNS

BOARD = "nucleo-l4r5zi"


def test_layer_energy_by_hand() -> None:
    p = EnergyParameters(core_mw=40.0, flash_read_nj=0.25, sram_access_nj=0.03)
    e = layer_energy(1e-3, 1000, 2000, p)  # 1 ms, 1000 flash reads, 2000 SRAM accesses
    assert e.core_uj == pytest.approx(40.0)      # 40 mW x 1 ms
    assert e.flash_uj == pytest.approx(0.25)     # 1000 x 0.25 nJ
    assert e.sram_uj == pytest.approx(0.06)      # 2000 x 0.03 nJ
    assert e.total_uj == pytest.approx(40.31)
    assert e.to_dict()["flash_reads"] == 1000
    # the features are the same model, linear: rows @ theta = energy in uJ
    f = energy_features(np.array([1e-3]), np.array([[1000, 2000]]))
    assert f @ p.vector() == pytest.approx([40.31])
    assert EnergyParameters.from_vector(p.vector()) == p


def test_constant_power_is_the_degenerate_case() -> None:
    """All access energies 0: every layer draws core_mw = active_mw, whatever its traffic."""
    p = EnergyParameters(core_mw=43.0)
    assert p.constant
    for flash, sram in ((0, 0), (1e6, 0), (0, 1e7)):
        assert layer_energy(2e-3, flash, sram, p).total_uj == pytest.approx(86.0)
    board = load_board(BOARD)
    flat = replace(board, power=replace(board.power, core_mw=None, flash_read_nj=0.0,
                                        sram_access_nj=0.0))
    assert board_energy_parameters(flat) == EnergyParameters(core_mw=43.0)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), True, "1"])
def test_energy_parameters_are_validated(bad: object) -> None:
    with pytest.raises(ConfigError, match="flash_read_nj"):
        EnergyParameters(core_mw=1.0, flash_read_nj=bad)  # type: ignore[arg-type]


def test_energy_table_keys() -> None:
    with pytest.raises(ConfigError, match="unknown energy key.*dram_nj"):
        EnergyParameters.from_dict({"core_mw": 1.0, "dram_nj": 2.0}, "f")
    with pytest.raises(ConfigError, match="needs core_mw"):
        EnergyParameters.from_dict({"flash_read_nj": 2.0}, "f")
    with pytest.raises(ConfigError, match="table"):
        EnergyParameters.from_dict([1.0], "f")


def _board_raw(**power: object) -> dict:
    return {"name": "b", "core": "cortex-m4f", "clock_hz": 80_000_000,
            "layout": {"text": "FLASH", "data": "RAM"},
            "memory": [{"name": "FLASH", "kind": "flash", "origin": 0x08000000, "size": 0x10000},
                       {"name": "RAM", "kind": "sram", "origin": 0x20000000, "size": 0x1000}],
            "power": {"active_mw": 20.0, **power}}


def test_board_power_section() -> None:
    board = parse_board(_board_raw(core_mw=15, flash_read_nj=0.2, sram_access_nj=0.02,
                                   source="assumption"))
    assert board_energy_parameters(board) == EnergyParameters(15.0, 0.2, 0.02)
    assert board_energy_parameters(parse_board(_board_raw())) == EnergyParameters(20.0)
    for key, value, match in (("flash_read_nj", -0.1, "outside"), ("sram_access_nj", float("nan"),
                                                                    "outside"),
                              ("core_mw", float("inf"), "outside"), ("flash_nj", 1.0, "unknown"),
                              ("flash_read_nj", "x", "expected")):
        with pytest.raises(ConfigError, match=match):
            parse_board(_board_raw(**{key: value}))
    # every shipped board has activity priors that say where they come from
    for name in ("nucleo-l4r5zi", "nucleo-f207zg", "nucleo-f767zi", "nucleo-g0b1re",
                 "nucleo-l552ze-q"):
        p = load_board(name).power
        assert p.flash_read_nj > p.sram_access_nj > 0 and p.core_mw < p.active_mw
        assert "assumption" in p.source


def _stats(rows: list[dict[str, int]]) -> np.ndarray:
    out = np.zeros((len(rows), len(STAT_COLUMNS)), dtype=np.uint64)
    for i, row in enumerate(rows):
        for k, v in row.items():
            out[i, STAT[k]] = v
    return out


def test_row_activity_by_hand() -> None:
    """Flash reads are the array reads the hook counted (fetch misses, prefetches, data
    cache misses), not flash loads: a load the flash data cache served reads no flash."""
    stats = _stats([
        # 7 flash loads, 10 fetch misses, 4 data-cache misses: the hook read 16 units
        {"icache_hit": 90, "icache_miss": 10, "loads.flash": 7, "dcache_hit": 3,
         "dcache_miss": 4, "flash_reads": 16, "loads.sram": 3, "stores.sram": 2},
        {"loads.tcm": 4, "stores.tcm": 1, "loads.peripheral": 9, "flash_reads": 15},
        {"loads.flash": 1},  # served by the data cache: no array read
    ])
    act = row_activity(stats)
    assert act.tolist() == [[16.0, 5.0], [15.0, 5.0], [0.0, 0.0]]
    assert group_activity(act, np.array([0, -1, 0]), 1).tolist() == [[16.0, 5.0]]
    with pytest.raises(ValueError, match="statistics"):
        row_activity(stats[:, :-1])


def _sample(name: str, t: list[float], act: list[list[float]], truth: EnergyParameters
            ) -> ModelSample:
    f = energy_features(np.array(t), np.array(act, dtype=float))
    return ModelSample(name, ("OP",) * len(t), np.zeros((len(t), 1)), np.ones(len(t)),
                       energy_features=f, layer_energy_uj=f @ truth.vector())


def test_fit_energy_recovers_hand_made_truth() -> None:
    """Three layers, three unknowns: 1 ms with 1e5 flash reads and 1e4 SRAM accesses etc.
    Truth 30 mW, 0.4 nJ, 0.05 nJ -> 30 + 40 + 0.5 = 70.5 uJ for the first layer."""
    truth = EnergyParameters(30.0, 0.4, 0.05)
    s1 = _sample("a", [1e-3, 2e-3], [[1e5, 1e4], [0, 2e5]], truth)
    s2 = _sample("b", [0.5e-3], [[2e4, 1e5]], truth)
    assert s1.layer_energy_uj[0] == pytest.approx(70.5)
    prior = EnergyParameters(39.3, 0.25, 0.03)
    fit = fit_energy([s1, s2], prior)
    assert fit is not None
    assert fit.params.vector() == pytest.approx(truth.vector(), rel=1e-5)
    assert fit.after.layer_max < 1e-5 and fit.before.layer_mape > 0.05
    assert fit.exercised == {"core_mw": True, "flash_read_nj": True, "sram_access_nj": True}
    assert set(fit.stderr) == set(fit.exercised) and max(fit.stderr.values()) < 0.01
    # no SRAM traffic anywhere: the SRAM energy stays at its prior, the rest is fitted
    s3 = _sample("c", [1e-3, 2e-3, 3e-3], [[1e5, 0], [0, 0], [5e4, 0]], truth)
    fit = fit_energy([s3], prior)
    assert fit is not None and not fit.exercised["sram_access_nj"]
    assert fit.params.sram_access_nj == pytest.approx(0.03)
    assert fit.params.core_mw == pytest.approx(30.0, rel=1e-5)
    assert fit.params.flash_read_nj == pytest.approx(0.4, rel=1e-5)
    # non-negative: a truth "below zero" is clamped, not a negative energy
    neg = _sample("d", [1e-3, 1e-3], [[1e5, 0], [0, 0]],
                  EnergyParameters(30.0))  # same energy with and without flash traffic
    fit = fit_energy([neg], EnergyParameters(30.0, 0.3, 0.0))
    assert fit is not None and fit.params.flash_read_nj == pytest.approx(0.0, abs=1e-6)
    assert fit_energy([replace(s1, layer_energy_uj=None)], prior) is None


def test_calibration_file_energy(tmp_path: Path) -> None:
    board = load_board(BOARD)
    base = datasheet_cost_model(board)
    assert base.energy == EnergyParameters(39.3, 0.25, 0.03)
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"energy": {"core_mw": 30.0, "flash_read_nj": 0.5,
                                           "sram_access_nj": 0.01}, "active_mw": 41.0}))
    model = load_calibration(base, path)
    assert model.energy_parameters == EnergyParameters(30.0, 0.5, 0.01)
    assert "energy" in model.describe()
    # an older constant-power calibration: its active power, no energy per access
    path.write_text(json.dumps({"active_mw": 41.0}))
    assert cost_model_for(board, path).energy_parameters == EnergyParameters(41.0)
    for bad, match in (({"energy": {"core_mw": 1.0, "x": 1}}, "unknown energy key"),
                       ({"energy": {"core_mw": -1.0}}, "core_mw must be a finite"),
                       ({"energy": 3}, "table")):
        path.write_text(json.dumps(bad))
        with pytest.raises(ConfigError, match=match):
            load_calibration(base, path)


def _stub_run(model: CostModel, cycles: list[float], stats: np.ndarray) -> SimpleNamespace:
    n = len(cycles)
    table = BlockTable(np.array([0x08000000 + 64 * i for i in range(n)], dtype=np.uint32),
                       np.full(n, 16, dtype=np.uint32), np.arange(n, dtype=np.int32),
                       np.ones(n, dtype=np.uint64))
    profile = SimpleNamespace(table=table, instructions=np.full(n, 4, dtype=np.int64),
                              counts=np.ones(n, dtype=np.int64),
                              classes=np.zeros((n, len(CLASSES)), dtype=np.int64))
    fixed = np.array([round(c * CYCLE_SCALE) for c in cycles], dtype=np.uint64)
    stats = stats.copy()
    stats[:, STAT["cycles"]] = fixed
    return SimpleNamespace(profile=profile, cost_model=model, block_cycles=fixed, stats=stats,
                           blocks=table, row_cycles=lambda: fixed.astype(np.float64) / CYCLE_SCALE)


def test_equal_cycles_different_flash_traffic_different_energy() -> None:
    """Two layers of 1.2 M cycles (10 ms at 120 MHz): one streams 1 M flash reads (an FC
    layer's weights), the other works in SRAM (2 M accesses).  Core 39.3 mW x 10 ms =
    393 uJ each; + 250 uJ of flash reads vs + 60 uJ of SRAM accesses."""
    board = load_board(BOARD)
    model = datasheet_cost_model(board)
    stats = _stats([{"icache_hit": 10, "loads.flash": 1_000_000, "flash_reads": 1_000_000},
                    {"icache_hit": 10, "loads.sram": 1_500_000, "stores.sram": 500_000}])
    run = _stub_run(model, [1.2e6, 1.2e6], stats)
    rows, _overhead, _cycles = layer_estimates(run, model, 2, [0, 0], ["FULLY_CONNECTED",
                                                                      "CONV_2D"], board=board)
    fc, conv = rows
    assert fc.cycles == conv.cycles and fc.share == conv.share == 0.5
    assert fc.energy_uj == pytest.approx(393.0 + 250.0)
    assert conv.energy_uj == pytest.approx(393.0 + 60.0)
    assert fc.energy_share == pytest.approx(643 / 1096) and fc.energy_share > fc.share
    assert fc.energy == {"core_uj": pytest.approx(393.0), "flash_uj": pytest.approx(250.0),
                         "sram_uj": 0.0, "flash_reads": 1_000_000, "sram_accesses": 0}
    # the constant-power model: equal cycles, equal energy (43 mW x 10 ms)
    flat = replace(model, energy=EnergyParameters(core_mw=43.0))
    rows, _, _ = layer_estimates(_stub_run(flat, [1.2e6, 1.2e6], stats), flat, 2, [0, 0],
                                 ["FULLY_CONNECTED", "CONV_2D"], board=board)
    assert [r.energy_uj for r in rows] == pytest.approx([430.0, 430.0])


def test_reports_show_energy_by_activity() -> None:
    from tinymeter.apps.estimate import _assemble

    board = load_board(BOARD)
    model = datasheet_cost_model(board)
    stats = _stats([{"icache_hit": 10, "loads.flash": 1_000_000, "flash_reads": 1_000_000},
                    {"icache_hit": 10, "loads.sram": 1_500_000, "stores.sram": 500_000}])
    run = _stub_run(model, [1.2e6, 1.2e6], stats)
    run.wall_time_s, run.mips = 1.0, 1.0
    rows, _, _ = layer_estimates(run, model, 2, [0, 0], ["FULLY_CONNECTED", "CONV_2D"],
                                 board=board)
    est = _assemble("m.tflite", board, "reference", model, run, rows, 0, [], arena_bytes=0,
                    flash_bytes=0, ram_bytes=0, weight_bytes=0, stack_bytes=None)
    assert est.energy_uj == pytest.approx(1096.0) == sum(r.energy_uj for r in est.layers)
    assert est.energy["flash_uj"] == pytest.approx(250.0)
    text = format_table(est)
    assert "energy share" in text and "58.7%" in text and "41.3%" in text
    assert "flash reads 250.00 uJ (22.8%)" in text and "mean 54.8 mW" in text
    assert "39.3 mW + 0.25 nJ/flash read" in text
    table = list(csv.DictReader(io.StringIO(layers_csv(est))))
    assert table[0]["flash_uj"] == "250.0000" and table[1]["sram_accesses"] == "2000000"
    assert float(table[0]["energy_share"]) == pytest.approx(643 / 1096, abs=1e-6)
    data = est.to_dict()
    assert data["layers"][0]["energy"]["flash_reads"] == 1_000_000


def test_cost_parameters_unchanged() -> None:
    """The energy model is separate from timing: the cost parameters have no power key."""
    assert "core_mw" not in CostParameters.__dataclass_fields__


def test_layer_plot_has_energy_shares(tmp_path: Path) -> None:
    from tinymeter.analysis.plots import plot_layers
    from tinymeter.apps.estimate import _assemble

    board = load_board(BOARD)
    model = datasheet_cost_model(board)
    stats = _stats([{"icache_hit": 10, "loads.flash": 1_000_000, "flash_reads": 1_000_000},
                    {"icache_hit": 10}])
    run = _stub_run(model, [1.2e6, 1.2e6], stats)
    run.wall_time_s, run.mips = 1.0, 1.0
    rows, _, _ = layer_estimates(run, model, 2, [0, 0], ["FULLY_CONNECTED", "CONV_2D"],
                                 board=board)
    est = _assemble("m.tflite", board, "reference", model, run, rows, 0, [], arena_bytes=0,
                    flash_bytes=0, ram_bytes=0, weight_bytes=0, stack_bytes=None)
    path = plot_layers(est, tmp_path / "layers.png")
    assert path.stat().st_size > 1000
    flat = replace(est, layers=tuple(replace(r, energy={}) for r in est.layers))
    assert plot_layers(flat, tmp_path / "flat.png").stat().st_size > 1000
