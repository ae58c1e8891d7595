"""Calibration maths: cost-model features are exact, NNLS, fits, LOO, calibration files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinymeter.analysis.calibrate import (
    ModelSample,
    calibrate,
    fit_parameters,
    fit_power,
    nnls,
    save_calibration,
)
from tinymeter.core.boards import load_board
from tinymeter.core.errors import ConfigError
from tinymeter.sim.blocks import BlockInfo
from tinymeter.sim.classes import CLASSES
from tinymeter.sim.costmodel import (
    CORE_PARAMETERS,
    CostModel,
    block_features,
    cost_model_for,
    end_kind,
    feature_names,
    load_calibration,
    parameter_vector,
    parameters_from_vector,
)
from tinymeter.sim.native_hook import END_CONDITIONAL


def _block(mnemonics: list[str], classes: dict[str, int], regs: int = 0,
           conditional: bool = False) -> BlockInfo:
    vec = np.array([classes.get(c, 0) for c in CLASSES], dtype=np.int64)
    return BlockInfo(address=0x1000, size=2 * len(mnemonics), instructions=len(mnemonics),
                     classes=vec, multiple_registers=regs, ends_conditional=conditional,
                     mnemonics=tuple(mnemonics))


BLOCKS = [
    _block(["ldr", "ldr", "mla", "subs", "b"], {"load": 2, "mul": 1, "alu": 1, "branch": 1},
           conditional=True),
    _block(["push", "vldr", "vdiv", "bl"], {"store_multiple": 1, "vfp": 2, "branch": 1}, regs=4),
    _block(["pop", ], {"load_multiple": 1}, regs=3),
    _block(["add", "cbz"], {"alu": 1, "branch": 1}),
    _block(["smlal", "str", "udiv"], {"mul64": 1, "store": 1, "divide": 1}),
    _block(["adds", "b"], {"alu": 1, "branch": 1}),
]


@pytest.mark.parametrize("core", sorted(CORE_PARAMETERS))
def test_features_reproduce_block_cycles_exactly(core: str) -> None:
    """Static columns give the core cycles; the branch columns (counted by the hook per
    outcome) add the refill of each taken end and the cost of each not-taken one."""
    params = CORE_PARAMETERS[core]
    model = CostModel("t", core, 1, params, 0.0)
    theta = parameter_vector(params)
    names = feature_names(params)
    for b in BLOCKS:
        row = block_features(b, params)
        assert row @ theta == pytest.approx(model.core_cycles(b))
        if params.branch_mispredict is not None and end_kind(b) == END_CONDITIONAL:
            # a predicting core (M7): a conditional end costs only when mispredicted
            row[names.index("branch.mispredict")] = 1.0
            assert row @ theta == pytest.approx(model.core_cycles(b) + params.branch_mispredict)
            continue
        row[names.index("branch.taken")] = 1.0
        assert row @ theta == pytest.approx(model.block_cycles(b, taken=1.0)
                                            if end_kind(b) else model.core_cycles(b)
                                            + params.branch_refill)
    assert len(theta) == len(names)


@pytest.mark.parametrize("board", ["nucleo-l4r5zi", "nucleo-f207zg", "nucleo-g0b1re"])
def test_parameter_vector_round_trip(board: str) -> None:
    params = cost_model_for(load_board(board), calibration=Path("/nonexistent")).params
    theta = parameter_vector(params)
    back = parameters_from_vector(theta, params)
    assert np.allclose(parameter_vector(back), theta)
    assert back == params
    with pytest.raises(ConfigError, match="shape"):
        parameters_from_vector(theta[:-1], params)


def test_nnls_matches_unconstrained_when_feasible_and_clamps_otherwise() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((30, 5))
    x_true = np.array([1.0, 2.0, 0.5, 3.0, 0.1])
    assert np.allclose(nnls(a, a @ x_true), x_true, atol=1e-9)
    b = a @ np.array([1.0, -2.0, 0.5, 3.0, 0.1])
    x = nnls(a, b)
    assert np.all(x >= 0) and x[1] == 0.0
    # KKT: the gradient is ~0 on the free set and points outward on the clamped one
    grad = a.T @ (b - a @ x)
    assert np.allclose(grad[x > 0], 0, atol=1e-8) and np.all(grad[x == 0] <= 1e-8)


def _synthetic(prior, truth, n_models: int = 6, noise: float = 0.0) -> list[ModelSample]:
    rng = np.random.default_rng(7)
    names = feature_names(prior)
    used = [names.index(n) for n in ("cpi.alu", "cpi.mul", "cpi.load", "cpi.store", "cpi.branch",
                                     "per_register", "branch.taken", "stall.ifetch", "stall.data")]
    samples = []
    for m in range(n_models):
        x = np.zeros((5, len(names)))
        x[:, used] = rng.integers(100, 5000, size=(5, len(used)))
        y = x @ parameter_vector(truth) * (1 + noise * rng.standard_normal(5))
        samples.append(ModelSample(f"m{m}", ("OP",) * 5, x, y, energy_uj=float(y.sum()) * 0.3e-3,
                                   latency_s=float(y.sum()) / 1e8))
    return samples


def test_fit_recovers_parameters_and_keeps_unexercised_ones() -> None:
    prior = CORE_PARAMETERS["cortex-m4f"]
    truth = parameters_from_vector(parameter_vector(prior) * np.linspace(0.8, 1.25,
                                   len(feature_names(prior))), prior)
    fit = fit_parameters(_synthetic(prior, truth), prior)
    names = feature_names(prior)
    ident = fit.identified()
    for n in ("cpi.alu", "cpi.mul", "cpi.load", "cpi.store", "per_register", "branch.taken"):
        i = names.index(n)
        assert ident[n]
        assert fit.theta[i] == pytest.approx(parameter_vector(truth)[i], rel=1e-4)
    i = names.index("cpi.divide")  # never executed: stays at the datasheet value
    assert not ident["cpi.divide"] and fit.theta[i] == pytest.approx(parameter_vector(prior)[i])


def test_calibrate_reports_errors_and_power(tmp_path: Path) -> None:
    prior = CORE_PARAMETERS["cortex-m4f"]
    truth = parameters_from_vector(parameter_vector(prior) * 1.15, prior)
    result = calibrate(_synthetic(prior, truth, noise=0.001), prior)
    assert result.before.model_mape == pytest.approx(0.15 / 1.15, rel=0.05)
    assert result.after.model_mape < 0.002 and result.loo_after.model_mape < 0.005
    assert result.loo_before.model_mape > 0.1
    assert result.active_mw == pytest.approx(30.0, rel=1e-6)
    path = save_calibration(result, tmp_path / "b.calibration.json", "b")
    raw = json.loads(path.read_text())
    assert raw["fit"]["board"] == "b" and "loo_error_after" in raw["fit"]
    board = load_board("nucleo-l4r5zi")
    model = load_calibration(cost_model_for(board, calibration=Path("/nonexistent")), path)
    assert model.active_mw == pytest.approx(30.0)
    assert np.allclose(parameter_vector(model.params), result.fit.theta)
    assert model.source.startswith("calibrated")


def test_calibration_errors(tmp_path: Path) -> None:
    prior = CORE_PARAMETERS["cortex-m4f"]
    with pytest.raises(ConfigError, match="at least one"):
        fit_parameters([], prior)
    bad = ModelSample("z", ("OP",), np.ones((1, len(feature_names(prior)))), np.array([0.0]))
    with pytest.raises(ConfigError, match="positive"):
        fit_parameters([bad], prior)
    result = calibrate(_synthetic(prior, prior, n_models=2), prior)
    blocker = tmp_path / "not-a-dir"  # unwritable even as root (tests may run as root)
    blocker.write_text("")
    with pytest.raises(ConfigError, match="--out"):
        save_calibration(result, blocker / "c.json", "b")
    assert fit_power([bad]) is None


# -- microbenchmarks ---------------------------------------------------------------------

def test_microbench_selection_per_core() -> None:
    from tinymeter.apps.microbench import (
        MICROBENCHMARKS,
        absent_instructions,
        benchmarks_for,
        table_source,
    )
    from tinymeter.core.cores import CORES

    m0 = {b.op for b in benchmarks_for(CORES["cortex-m0plus"])}
    m3 = {b.op for b in benchmarks_for(CORES["cortex-m3"])}
    m4 = {b.op for b in benchmarks_for(CORES["cortex-m4f"])}
    assert m4 == {b.op for b in MICROBENCHMARKS}
    assert {"MB_ALU", "MB_LDM4", "MB_CALL_FRAME2", "MB_BCOND_PATTERN"} <= m0
    assert not m0 & {"MB_DIV", "MB_UMULL", "MB_SMLAD", "MB_VADD", "MB_MLA"}
    assert "MB_DIV" in m3 and "MB_SMLAD" not in m3 and "MB_VDIV" not in m3
    assert "MB_LDR_UNALIGNED" in m3 and "MB_LDR_UNALIGNED" not in m0  # ARMv6-M faults
    assert set(absent_instructions(CORES["cortex-m0plus"])) == {"cpi.divide", "cpi.mul64",
                                                                "cpi.mac", "cpi.vfp",
                                                                "dep.fp_result", "unaligned"}
    assert {"MB_AGU", "MB_NARROW_USE"} <= m0 and not m0 & {"MB_VFP_DEP", "MB_VLDR_ALU"}
    assert absent_instructions(CORES["cortex-m7"]) == {}
    src = table_source(benchmarks_for(CORES["cortex-m3"]))
    assert 'const char tm_model_name[] = "microbench";' in src
    assert f"const uint32_t tm_num_layers = {len(m3)}u;" in src
    with pytest.raises(ConfigError, match="no calibration microbenchmark"):
        table_source(())


@pytest.mark.parametrize("core", ["cortex-m0plus", "cortex-m3", "cortex-m4f", "cortex-m7",
                                  "cortex-m33"])
def test_microbench_compiles_warning_free(core: str, tmp_path: Path) -> None:
    import shutil
    import subprocess

    from tinymeter.apps.microbench import benchmarks_for, table_source
    from tinymeter.core.cores import CORES
    from tinymeter.firmware.build import runtime_dir

    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    root = runtime_dir()
    table = tmp_path / "table.c"
    table.write_text(table_source(benchmarks_for(CORES[core])))
    for src in (root / "calib" / "tm_calib.c", table):
        proc = subprocess.run(["arm-none-eabi-gcc", *CORES[core].gcc_flags, "-O2", "-std=c11",
                               "-Wall", "-Wextra", "-Werror", f"-I{root / 'include'}", "-c",
                               str(src), "-o", str(tmp_path / "x.o")],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr


def test_microbench_samples_train_but_are_not_held_out() -> None:
    prior = CORE_PARAMETERS["cortex-m4f"]
    truth = parameters_from_vector(parameter_vector(prior) * 1.1, prior)
    samples = _synthetic(prior, truth, n_models=3)
    names = feature_names(prior)
    # a "microbenchmark" that alone exercises the divider
    x = np.zeros((2, len(names)))
    x[:, names.index("cpi.divide")] = [1000, 500]
    x[:, names.index("cpi.alu")] = [100, 900]
    mb = ModelSample("microbench", ("MB_DIV", "MB_X"), x, x @ parameter_vector(truth),
                     role="microbench")
    result = calibrate([*samples, mb], prior)
    assert set(result.loo_after.per_model) == {"m0", "m1", "m2"}
    assert result.fit.identified()["cpi.divide"]
    assert "cpi.mac" in result.unidentified and "not executed" in result.unidentified["cpi.mac"]
    assert "cpi.divide" not in result.unidentified
    summary = result.summary()
    assert summary["not_separable"] == {} and summary["unidentified"]
    absent = calibrate(samples, prior, absent={"cpi.divide": "no divider"}).unidentified
    assert absent["cpi.divide"] == "not executed: no divider"
    with pytest.raises(ConfigError, match="role"):
        ModelSample("z", ("OP",), x, np.ones(2), role="bogus")
    with pytest.raises(ConfigError, match="NN model"):
        from tinymeter.analysis.calibrate import leave_one_out
        leave_one_out([mb], prior)


def test_mechanisms_cover_every_parameter_once() -> None:
    from tinymeter.analysis.calibrate import MECHANISMS, mechanism_of

    for core, params in CORE_PARAMETERS.items():
        groups = {n: mechanism_of(n) for n in feature_names(params)}
        assert set(groups.values()) <= {m for m, _ in MECHANISMS}, core
        assert groups["load.pipelined"] == "load pipelining"
        assert groups["stall.data"] == "data memory stall"
        assert all(groups[n] == "core timings" for n in groups if n.startswith("cpi."))
    m7 = feature_names(CORE_PARAMETERS["cortex-m7"])
    assert mechanism_of(m7[m7.index("alu.dual")]) == "dual issue"
    with pytest.raises(ConfigError, match="no mechanism"):
        mechanism_of("warp.drive")


def test_mechanism_ranking_names_the_mechanism_that_was_off() -> None:
    """Silicon whose data-memory stalls are 1.6x the simulated ones and whose loads are 5%
    slower: the data stall ranks first with exactly the movement it causes, the core
    timings second, everything else did not move."""
    from dataclasses import replace

    from tinymeter.analysis.calibrate import mechanism_shifts

    prior = CORE_PARAMETERS["cortex-m4f"]
    truth = replace(prior, data_weight=1.6, cpi={**prior.cpi, "load": 2.1})
    samples = _synthetic(prior, truth)
    result = calibrate(samples, prior)
    ranked = result.mechanisms
    assert [m.mechanism for m in ranked[:2]] == ["data memory stall", "core timings"]
    names = feature_names(prior)
    data, load = names.index("stall.data"), names.index("cpi.load")
    expect_data = np.mean([0.6 * s.features[:, data].sum() / s.measured.sum() for s in samples])
    expect_core = np.mean([0.1 * s.features[:, load].sum() / s.measured.sum() for s in samples])
    assert ranked[0].moved == pytest.approx(expect_data, rel=1e-4)
    assert ranked[0].ratio == pytest.approx(1.6, rel=1e-4)
    assert ranked[0].largest == "stall.data" and ranked[0].largest_ratio == pytest.approx(1.6)
    assert ranked[1].moved == pytest.approx(expect_core, rel=1e-3)
    assert ranked[1].largest == "cpi.load"
    assert all(abs(m.moved) < 1e-6 for m in ranked[2:])
    # exact data: every movement the models exercise is pinned down; the others say so
    assert all(m.determined for m in ranked if m.exercised)
    assert {m.mechanism for m in ranked if not m.exercised} == {
        "load pipelining", "per-mnemonic overrides", "address dependency", "narrow load use",
        "FPU result dependency", "unaligned access"}
    # what calibrate --json writes
    summary = result.summary()["mechanisms"]
    assert summary[0]["mechanism"] == "data memory stall" and summary[0]["determined"] is True
    assert json.loads(json.dumps(summary)) == summary
    # exact data: the movements add up to the whole datasheet gap
    assert sum(m.moved for m in ranked) == pytest.approx(result.datasheet_gap, rel=1e-4)
    assert result.summary()["datasheet_gap"] == result.datasheet_gap > 0
    # the same ranking straight from the fit
    assert mechanism_shifts(samples, result.fit, prior) == ranked


def test_mechanism_movement_is_undetermined_when_collinear() -> None:
    """Two mechanisms whose features always co-occur in the same ratio: their split is the
    prior's, and the report says their movements are not determined."""
    from dataclasses import replace

    prior = CORE_PARAMETERS["cortex-m4f"]
    names = feature_names(prior)
    truth = replace(prior, ifetch_weight=1.5)
    rng = np.random.default_rng(3)
    samples = []
    for m in range(4):
        x = np.zeros((5, len(names)))
        x[:, names.index("cpi.alu")] = rng.integers(1000, 5000, 5)
        x[:, names.index("stall.ifetch")] = 0.5 * x[:, names.index("cpi.alu")]
        x[:, names.index("stall.data")] = 0.5 * x[:, names.index("cpi.alu")]
        samples.append(ModelSample(f"m{m}", ("OP",) * 5, x,
                                   x @ parameter_vector(truth) * (1 + 1e-3 * rng.standard_normal(5))))
    shifts = {m.mechanism: m for m in calibrate(samples, prior).mechanisms}
    assert not shifts["instruction fetch stall"].determined
    assert not shifts["data memory stall"].determined
