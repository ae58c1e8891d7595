"""apps.sweep: search space, Pareto front, results database, resumable sweeps, executors.

The pure parts and the driver's bookkeeping run against a fake worker (milliseconds);
one end-to-end test trains 20 real candidates on digits, emulates them, interrupts the
sweep and resumes it through the CLI.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import re
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

from tinymeter.apps.sweep import executors, nas, pareto, space, worker
from tinymeter.apps.sweep.db import SCHEMA_VERSION, SweepDB
from tinymeter.core.errors import ConfigError
from tinymeter.models import digits

HAS_TF = all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "sklearn"))


# --------------------------------------------------------------- search space


def test_candidates_are_sorted_complete_and_deterministic() -> None:
    search_space = space.SearchSpace(widths=(8, 4, 5), depths=(1, 2), kernel_sizes=(3,))
    cands = space.candidates(search_space)
    assert len(cands) == search_space.size == 6
    assert cands == sorted(cands)
    assert {c.width for c in cands} == {4, 5, 8}
    sub = space.candidates(space.SearchSpace(), max_candidates=10, seed=3)
    assert sub == space.candidates(space.SearchSpace(), max_candidates=10, seed=3)
    assert len(sub) == 10 and set(sub) <= set(space.candidates(space.SearchSpace()))
    assert sub != space.candidates(space.SearchSpace(), max_candidates=10, seed=4)


def test_config_from_mapping_parses_lists_and_rejects_unknown_keys() -> None:
    cfg = space.SweepConfig.from_mapping({"widths": "4, 6,6", "depths": [1], "kernel_sizes": 3,
                                        "epochs": 2, "boards": "nucleo-l4r5zi,nucleo-f767zi",
                                        "kernel_sets": ["reference", "optimized"]})
    assert cfg.space.widths == (4, 6) and cfg.recipe.epochs == 2
    assert [t.label for t in cfg.targets] == ["nucleo-l4r5zi/reference", "nucleo-l4r5zi/optimized",
                                              "nucleo-f767zi/reference", "nucleo-f767zi/optimized"]
    with pytest.raises(ConfigError, match=r"unknown sweep config key\(s\) \['widht'\]"):
        space.SweepConfig.from_mapping({"widht": [4]})


@pytest.mark.parametrize(("data", "match"), [
    ({"widths": []}, "non-empty"),
    ({"widths": "4,x"}, "comma-separated"),
    ({"depths": [4]}, "depths must be <= 3"),
    ({"kernel_sizes": [2]}, "odd"),
    ({"epochs": 0}, "epochs"),
    ({"kernel_sets": ["fast"]}, "unknown kernel set"),
    ({"test_fraction": 0.9}, "test_fraction"),
])
def test_invalid_configs(data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        space.SweepConfig.from_mapping(data)


def test_candidate_key_depends_on_everything_that_changes_the_model() -> None:
    c, r = digits.Candidate(depth=1, kernel=3, width=4), digits.TrainRecipe()
    k = space.candidate_key(c, r, "softmax")
    assert k == space.candidate_key(digits.Candidate(depth=1, kernel=3, width=4), digits.TrainRecipe(),
                                    "softmax")
    others = {space.candidate_key(digits.Candidate(depth=1, kernel=3, width=5), r, "softmax"),
              space.candidate_key(c, digits.TrainRecipe(epochs=1), "softmax"),
              space.candidate_key(c, digits.TrainRecipe(seed=1), "softmax"),
              space.candidate_key(c, r, "logits")}
    assert k not in others and len(others) == 4


def test_executor_specs() -> None:
    assert executors.parse_executor("process") == ("process", None)
    assert executors.parse_executor("serial") == ("serial", None)
    assert executors.parse_executor("dask://10.0.0.1:8786") == ("dask", "tcp://10.0.0.1:8786")
    for bad in ("dask://", "dask://host", "threads"):
        with pytest.raises(ConfigError):
            executors.parse_executor(bad)


def test_dask_executor_without_dask_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import raises ImportError
    monkeypatch.setitem(sys.modules, "dask", None)
    cfg = space.SweepConfig(space=space.SearchSpace(widths=(4,), depths=(1,), kernel_sizes=(3,)))
    with pytest.raises(ConfigError, match=r"pip install 'dask\[distributed\]'"):
        nas.run_sweep(cfg, tmp_path / "db.sqlite", executor="dask://127.0.0.1:8786", evaluate=fake_evaluate,
                      progress=False)


# ------------------------------------------------------------- pure analysis


def _row(width: int, ms: float, acc: float, macs: int, depth: int = 1, kernel: int = 3,
         kernels: str = "optimized") -> pareto.SweepRow:
    return pareto.SweepRow(key=f"k{width}-{depth}-{kernel}", name=f"w{width}-d{depth}-k{kernel}", width=width,
                        depth=depth, kernel=kernel, board="nucleo-l4r5zi", kernels=kernels, accuracy=acc,
                        float_accuracy=acc, macs=macs, params=1, ms=ms, cycles=round(ms * 120_000),
                        energy_uj=ms, arena_bytes=100, flash_bytes=1000)


def _brute_front(points: list[tuple[float, float]]) -> set[int]:
    def dominated(i: int) -> bool:
        ci, ai = points[i]
        return any(cj <= ci and aj >= ai and (cj < ci or aj > ai) for cj, aj in points)
    return {i for i in range(len(points)) if not dominated(i)}


def test_pareto_front_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    for n in (0, 1, 2, 5, 30, 80):
        # Coarse values so ties and duplicates happen.
        pts = [(float(c), float(a)) for c, a in zip(rng.integers(0, 8, n), rng.integers(0, 6, n))]
        front = pareto.pareto_front(pts)
        assert set(front) == _brute_front(pts)
        assert [pts[i][0] for i in front] == sorted(pts[i][0] for i in front)


def test_pareto_rows_and_metric_check() -> None:
    rows = [_row(4, 1.0, 0.90, 100), _row(5, 2.0, 0.85, 120), _row(8, 3.0, 0.95, 200)]
    assert [r.width for r in pareto.pareto_rows(rows)] == [4, 8]
    with pytest.raises(ConfigError, match="unknown cost metric"):
        pareto.pareto_rows(rows, "speed")


def test_non_monotonic_pairs_and_parity_inversions() -> None:
    # Width 5 costs more per MAC than width 4 (a lost fast path); 6 and 8 are fine.
    rows = [_row(4, 1.0, 0.9, 1000), _row(5, 1.5, 0.9, 1250), _row(6, 1.45, 0.9, 1500),
            _row(8, 1.8, 0.9, 2000)]
    pairs = pareto.non_monotonic_pairs(rows)
    assert [(a.width, b.width) for a, b in pairs] == [(5, 6)]
    assert [(a.width, b.width) for a, b in pareto.parity_inversions(rows)] == [(4, 5)]
    assert [space.channel_parity(w) for w in (4, 5, 6, 8)] == ["x4", "odd", "even", "x4"]
    # Different kernel sets are never compared with each other.
    assert pareto.non_monotonic_pairs([_row(4, 9.0, 0.9, 10, kernels="reference"),
                                       _row(5, 1.0, 0.9, 20)]) == []


def test_rows_csv_and_table() -> None:
    rows = [_row(4, 1.0, 0.9, 100), _row(5, 2.0, 0.8, 120)]
    csv_text = pareto.rows_csv(rows)
    assert csv_text.splitlines()[0].endswith(",parity") and len(csv_text.splitlines()) == 3
    table = pareto.format_rows(rows, rows[:1])
    assert table.splitlines()[2].startswith("*") and not table.splitlines()[3].startswith("*")


def test_plots_write_pngs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every panel names model, board, kernels/runtime and cost model; every axis has a unit."""
    from tinymeter.analysis import plots
    from tinymeter.apps.sweep import plots as nas_plots

    figures = []
    save = plots.save
    monkeypatch.setattr(plots, "save", lambda fig, path: (figures.append(fig), save(fig, path))[1])
    rows = [dataclasses.replace(_row(w, 0.1 * w, 0.8 + 0.01 * w, 100 * w, depth=d, kernels=k),
                                cost_model="tm-cortex-m4f-v3")
            for w in (4, 5, 6) for d in (1, 2) for k in ("optimized", "tflm-cmsis-nn")]
    for fn in (nas_plots.plot_pareto, nas_plots.plot_parity):
        path = fn(rows, tmp_path / f"{fn.__name__}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pareto, parity = figures
    assert len(pareto.axes) == 2 and len(parity.axes) == 4
    for ax in pareto.axes + parity.axes:
        title = ax.get_title().replace("\n", " ")
        assert title.startswith("digits CNN candidates on nucleo-l4r5zi ("), title
        assert ("(optimized kernels, cost model tm-cortex-m4f-v3)" in title
                or "(tflm-cmsis-nn runtime, cost model tm-cortex-m4f-v3)" in title), title
        for label in (ax.get_xlabel(), ax.get_ylabel()):
            assert label.endswith(")") and "(" in label, label  # "quantity (unit)"
    assert [ax.get_ylabel() for ax in parity.axes[:2]] == ["estimated latency (ms)",
                                                           "estimated cost (cycles per MAC)"]
    # rows from a database written before the cost model was recorded say so
    old = nas_plots.sweep_target_title("b", "reference", [_row(4, 1.0, 0.9, 10)])
    assert old == "digits CNN candidates on b (reference kernels, cost model not recorded)"
    assert nas_plots.plot_pareto([], tmp_path / "empty.png").exists()


# ---------------------------------------------------------------- database


def test_sweepdb_roundtrip_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with SweepDB(path) as db:
        db.put_candidate("k", "digits_cnn", {"width": 4}, {"epochs": 1}, status="ok",
                         metrics={"accuracy": 0.5}, tflite=b"TFL3")
        db.put_estimate("k", "b", "reference", status="ok", summary={"ms": 1.0})
        db.add_to_sweep("s", ["k", "k"])
    with SweepDB(path) as db:
        c = db.get_candidate("k")
        assert c is not None and c.tflite == b"TFL3" and c.metrics == {"accuracy": 0.5}
        assert db.get_estimate("k", "b", "reference").summary == {"ms": 1.0}
        assert db.get_estimate("k", "b", "optimized") is None
        assert db.sweep_keys("s") == ["k"]
        assert db.counts() == {"candidates": 1, "estimates": 1, "sweeps": 1}
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError, match="newer"):
        SweepDB(path)
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigError, match="not a sweep database"):
        SweepDB(tmp_path / "junk.sqlite")


# ------------------------------------------------- sweeps with a fake worker


def fake_evaluate(job: worker.CandidateJob) -> worker.CandidateResult:
    """Deterministic stand-in for training + emulation (top level: picklable for spawn)."""
    c = job.candidate
    if c.width == 13:
        return worker.CandidateResult(job.key, error="training/conversion failed: boom")
    metrics = dict(job.metrics or {"accuracy": 0.5 + 0.01 * c.width, "float_accuracy": 0.6,
                                   "macs": 100 * c.width * c.depth * c.kernel, "params": c.width})
    result = worker.CandidateResult(job.key, metrics=metrics, tflite=job.tflite or b"fake")
    for t in job.targets:
        ms = 0.01 * metrics["macs"] * (1.2 if c.width % 2 else 1.0)
        result.estimates[t.label] = {"ms": ms, "cycles": int(ms * 1e5), "energy_uj": ms,
                                     "arena_bytes": 64 * c.width, "flash_bytes": 1000 + c.width}
    return result


class _Counter:
    """Serial-executor worker that counts which jobs it ran (and whether they trained)."""

    def __init__(self) -> None:
        self.trained: list[str] = []
        self.emulated_only: list[str] = []

    def __call__(self, job: worker.CandidateJob) -> worker.CandidateResult:
        (self.trained if job.tflite is None else self.emulated_only).append(job.candidate.name)
        return fake_evaluate(job)


def _cfg(**kw: object) -> space.SweepConfig:
    data = {"widths": [4, 5, 6, 7], "depths": [1, 2], "kernel_sizes": [3], "kernel_sets": ["reference"]}
    data.update(kw)
    return space.SweepConfig.from_mapping(data)


def test_interrupted_sweep_resumes_without_redoing_finished_candidates(tmp_path: Path) -> None:
    db = tmp_path / "sweep.sqlite"
    first = _Counter()
    seen: list[str] = []

    def stop_after_three(job: worker.CandidateJob) -> None:
        seen.append(job.key)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        nas.run_sweep(_cfg(), db, executor="serial", evaluate=first, head="softmax", progress=False,
                      on_result=stop_after_three)
    assert len(first.trained) == 3
    second = _Counter()
    res = nas.run_sweep(_cfg(), db, executor="serial", evaluate=second, head="softmax", progress=False)
    assert not set(second.trained) & set(first.trained)
    assert len(second.trained) == 5 and res.trained == 5 and res.reused == 3
    assert len(res.rows) == 8 and not res.failed
    # Everything finished: a third run does nothing.
    third = _Counter()
    res3 = nas.run_sweep(_cfg(), db, executor="serial", evaluate=third, head="softmax", progress=False)
    assert third.trained == [] and res3.reused == 8 and len(res3.rows) == 8


def test_new_target_only_emulates_and_failures_are_kept(tmp_path: Path) -> None:
    db = tmp_path / "sweep.sqlite"
    cfg = _cfg(widths=[4, 13])
    res = nas.run_sweep(cfg, db, executor="serial", evaluate=_Counter(), head="softmax", progress=False)
    assert set(res.failed) == {"w13-d1-k3", "w13-d2-k3"} and len(res.rows) == 2
    counter = _Counter()
    res2 = nas.run_sweep(_cfg(widths=[4, 13], kernel_sets=["reference", "optimized"]), db,
                         executor="serial", evaluate=counter, head="softmax", progress=False)
    assert counter.trained == [] and sorted(counter.emulated_only) == ["w4-d1-k3", "w4-d2-k3"]
    assert len(res2.rows) == 4 and {r.kernels for r in res2.rows} == {"reference", "optimized"}
    retry = _Counter()
    nas.run_sweep(cfg, db, executor="serial", evaluate=retry, head="softmax", progress=False,
                  retry_failed=True)
    assert sorted(retry.trained) == ["w13-d1-k3", "w13-d2-k3"]


def test_worker_exceptions_are_recorded_not_raised(tmp_path: Path) -> None:
    def explode(job: worker.CandidateJob) -> worker.CandidateResult:
        raise RuntimeError("worker died")

    res = nas.run_sweep(_cfg(widths=[4]), tmp_path / "db.sqlite", executor="serial", evaluate=explode,
                        head="softmax", progress=False)
    assert res.rows == [] and all("RuntimeError: worker died" in e for e in res.failed.values())


def test_process_pool_runs_the_sweep(tmp_path: Path) -> None:
    """The default executor: spawned worker processes, results committed by the parent."""
    res = nas.run_sweep(_cfg(), tmp_path / "db.sqlite", executor="process", workers=2, evaluate=fake_evaluate,
                        head="softmax", progress=False)
    assert res.trained == 8 and len(res.rows) == 8
    paths = nas.write_outputs(res, tmp_path / "out")
    assert all(p.exists() for p in paths.values())
    assert [r.width for r in pareto.pareto_rows(res.rows)][:1] == [4]


@pytest.mark.skipif(importlib.util.find_spec("dask") is None, reason="dask not installed")
def test_dask_executor_on_a_local_cluster(tmp_path: Path) -> None:
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=None) as cluster:
        address = cluster.scheduler_address.removeprefix("tcp://")
        res = nas.run_sweep(_cfg(widths=[4, 5]), tmp_path / "db.sqlite", executor=f"dask://{address}",
                            evaluate=fake_evaluate, head="softmax", progress=False)
    assert res.trained == 4 and len(res.rows) == 4


# ---------------------------------------------------- the real thing (TF + emulator)


@pytest.mark.tf
@pytest.mark.skipif(not HAS_TF, reason="needs TensorFlow and scikit-learn")
def test_digits_sweep_interrupted_then_resumed_via_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """20 real candidates (1 epoch) on 2 workers: interrupt after 6, resume with the CLI."""
    from tinymeter.cli.main import main

    monkeypatch.setenv("TINYMETER_CACHE", str(tmp_path / "cache"))
    out, db = tmp_path / "sweep", tmp_path / "sweep" / "sweep.sqlite"
    args = {"widths": [4, 5, 6, 7, 8], "depths": [1, 2], "kernel_sizes": [3, 5], "epochs": 1}
    cfg = space.SweepConfig.from_mapping(args)
    assert len(cfg.candidates()) == 20
    done: list[str] = []

    def interrupt(job: worker.CandidateJob) -> None:
        done.append(job.candidate.name)
        if len(done) == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        nas.run_sweep(cfg, db, workers=2, progress=False, on_result=interrupt)
    with SweepDB(db) as d:
        finished = d.counts()["candidates"]
    assert finished == 6

    assert main(["sweep", "--widths", "4,5,6,7,8", "--depths", "1,2", "--kernel-sizes", "3,5",
                 "--epochs", "1", "--workers", "2", "--out", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    m = re.search(r"20 candidates: (\d+) trained now, (\d+) reused", text)
    assert m and (int(m.group(1)), int(m.group(2))) == (14, 6), text
    assert "0 failed" in text
    for name in ("pareto.png", "parity.png", "results.csv", "pareto.json"):
        assert (out / name).stat().st_size > 0
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 21
    res = nas.run_sweep(cfg, db, progress=False)
    assert res.trained == 0 and res.reused == 20
    accs = [r.accuracy for r in res.rows]
    assert min(accs) > 0.5  # one epoch is enough to learn digits well above chance (10%)
    assert all(r.ms > 0 and r.arena_bytes > 0 and r.flash_bytes > 0 for r in res.rows)
    # Latency is not a function of MACs: some candidate is faster than one with fewer MACs.
    assert pareto.non_monotonic_pairs(res.rows)
    assert list(itertools.chain.from_iterable(res.fronts().values()))
