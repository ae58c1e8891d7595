"""CI regression gate: compare estimates against a baseline and flag growth.

A model's latency, tensor arena and flash only ever creep up one innocent change at
a time; the gate makes each step visible. The comparison (:func:`compare`) is pure:
it takes metric dictionaries and returns a :class:`CheckResult`, rendered by
:func:`format_check`. Loading files is separate (:func:`load_entries`,
:func:`load_baseline`) and raises :class:`BaselineError` for a missing or invalid
baseline, which the CLI maps to exit status 2; a regression is exit status 1.

Entries are keyed ``"<model> @ <board> (<kernels>, <cost model>)"`` so one baseline
covers many models, boards, kernel sets and cost models; ``<model>`` is the model's
path relative to the baseline's folder when the report records it (two
``model.tflite`` in different folders are two entries), else its file name.
Measurements (``tinymeter measure --json``) are keyed with ``measured`` in place of
the cost model. Accepted inputs: estimate and measure JSON reports, JSON lists of
them, and baseline files themselves.

A baseline entry (or metric) the current results lack fails the gate unless
``allow_missing``: a model silently dropped from CI is not a pass.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from tinymeter.core.errors import ConfigError
from tinymeter.core.files import atomic_write
from tinymeter.core.texttable import text_table

log = logging.getLogger(__name__)

BASELINE_VERSION = 1
#: Gated metrics (all "lower is better"), in table order. A report need not carry all
#: of them (a measurement has no arena figure), but at least one.
METRICS = ("ms", "energy_uj", "arena_bytes", "ram_bytes", "flash_bytes")
_LABELS = {"ms": "latency ms", "energy_uj": "energy uJ", "arena_bytes": "arena B",
           "ram_bytes": "RAM B", "flash_bytes": "flash B"}

Entries = dict[str, dict[str, float]]


class BaselineError(ConfigError):
    """The baseline (or a current-results file) is missing or not a valid report."""


def entry_key(model: str, board: str, kernels: str, source: str) -> str:
    """``model @ board (kernels, source)``; *source* is the cost model or ``measured``."""
    return f"{model} @ {board} ({kernels}, {source})"


def model_id(report: Mapping[str, Any], root: Path | str | None) -> str:
    """The model part of a key: ``model_path`` relative to *root* (the baseline's
    folder) when both are known, else the report's model name."""
    path = report.get("model_path")
    if isinstance(path, str) and path and root is not None:
        return Path(os.path.relpath(Path(path).resolve(), Path(root).resolve())).as_posix()
    return str(report["model"])


def _report_key(report: Mapping[str, Any], root: Path | str | None) -> str:
    if "measurement_id" in report:  # tinymeter measure --json
        return entry_key(model_id(report, root), str(report["board"]),
                         str(report.get("kernels", "unknown kernels")), "measured")
    runtime = str(report.get("runtime", "own"))
    impl = str(report["kernels"]) if runtime == "own" else f"{runtime} runtime"
    return entry_key(model_id(report, root), str(report["board"]), impl,
                     str(report.get("cost_model", "unknown cost model")))


def entries_from_report(report: Mapping[str, Any], where: str = "report",
                        root: Path | str | None = None) -> Entries:
    """Gated metrics of one estimate or measure report (or a list, or a baseline
    document); *root* is the folder model paths are made relative to."""
    if isinstance(report, list):
        out: Entries = {}
        for i, item in enumerate(report):
            if not isinstance(item, Mapping):  # a list of reports, not lists of lists
                raise BaselineError(f"{where}[{i}]: expected a report object, got "
                                    f"{type(item).__name__}")
            out.update(entries_from_report(item, f"{where}[{i}]", root))
        return out
    if not isinstance(report, Mapping):
        raise BaselineError(f"{where}: expected a JSON object or list, got {type(report).__name__}")
    if "tinymeter_baseline" in report:
        version = report["tinymeter_baseline"]
        if version != BASELINE_VERSION:
            raise BaselineError(f"{where}: baseline version {version!r} is not supported "
                                f"(expected {BASELINE_VERSION})")
        entries = report.get("entries")
        if not isinstance(entries, Mapping):
            raise BaselineError(f"{where}: baseline has no 'entries' object")
        out = {}
        for key, metrics in entries.items():
            out[str(key)] = _metrics(metrics, f"{where}: entry {key!r}")
        return out
    needed = ("model", "board") if "measurement_id" in report else ("model", "board", "kernels")
    missing = [k for k in needed if k not in report]
    if missing:
        raise BaselineError(f"{where}: not a tinymeter estimate or measure report (missing "
                            f"{', '.join(missing)})")
    return {_report_key(report, root): _metrics(report, where)}


def _metrics(source: Any, where: str) -> dict[str, float]:
    """The gated metrics *source* has (absent or null ones are skipped; at least one)."""
    if not isinstance(source, Mapping):
        raise BaselineError(f"{where}: expected an object of metrics")
    out = {}
    for m in METRICS:
        value = source.get(m)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < 0:
            raise BaselineError(f"{where}: metric {m!r} is not a non-negative number ({value!r})")
        out[m] = float(value)
    if not out:
        raise BaselineError(f"{where}: no gated metric ({', '.join(METRICS)})")
    return out


def _read_json(path: Path, what: str, hint: str = "") -> Any:
    """Parsed JSON of *path*; BaselineError naming *what* for a missing, unreadable,
    non-text or non-JSON file (*hint* is appended when it does not exist)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"{what} {path} does not exist{hint}") from None
    except OSError as exc:
        raise BaselineError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BaselineError(f"{what} {path} is not valid JSON (not UTF-8 text)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{what} {path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise BaselineError(f"{what} {path} is nested too deeply to be a tinymeter report") from None


def load_baseline(path: Path | str) -> Entries:
    """Entries of a baseline file; BaselineError if missing, unreadable or invalid."""
    data = _read_json(Path(path), "baseline", " (create it from current results with "
                      "`tinymeter check RESULTS --baseline FILE --update-baseline`)")
    entries = entries_from_report(data, str(path), Path(path).parent)
    if not entries:
        raise BaselineError(f"baseline {path} has no entries")
    return entries


def load_entries(paths: Iterable[Path | str], root: Path | str | None = None) -> Entries:
    """Entries of current-results files (estimate or measure reports), model paths
    relative to *root*; a key twice is an error."""
    out: Entries = {}
    for p in paths:
        data = _read_json(Path(p), "results file")
        for key, metrics in entries_from_report(data, str(p), root).items():
            if key in out:
                raise BaselineError(f"{key} appears twice in the current results ({p})")
            out[key] = metrics
    return out


def baseline_document(entries: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    return {"tinymeter_baseline": BASELINE_VERSION,
            "entries": {k: {m: entries[k][m] for m in METRICS if m in entries[k]}
                        for k in sorted(entries)}}


def write_baseline(entries: Mapping[str, Mapping[str, float]], path: Path | str) -> None:
    """Write a baseline atomically (temporary file + rename)."""
    atomic_write(Path(path), json.dumps(baseline_document(entries), indent=2) + "\n")


@dataclass(frozen=True)
class MetricDiff:
    """One metric of one entry: baseline vs current and the verdict."""

    entry: str
    metric: str
    baseline: float | None
    current: float | None
    #: Relative change in percent (inf when growing from 0; None if either side is absent).
    change_pct: float | None
    #: "ok", "regression", "improved", "new" (not in the baseline), "missing" (not measured).
    status: str


@dataclass(frozen=True)
class CheckResult:
    diffs: tuple[MetricDiff, ...]
    max_regression_pct: float
    #: Whether baseline entries absent from the current results pass.
    allow_missing: bool = False

    @property
    def regressions(self) -> list[MetricDiff]:
        return [d for d in self.diffs if d.status == "regression"]

    @property
    def missing(self) -> list[MetricDiff]:
        return [d for d in self.diffs if d.status == "missing"]

    def failed(self, diff: MetricDiff) -> bool:
        """Whether *diff* fails the gate."""
        return diff.status == "regression" or (diff.status == "missing" and not self.allow_missing)

    @property
    def passed(self) -> bool:
        return not any(self.failed(d) for d in self.diffs)


def _change(base: float, cur: float) -> float:
    if base == 0:
        return 0.0 if cur == 0 else math.inf
    return 100.0 * (cur - base) / base


def compare(current: Mapping[str, Mapping[str, float]], baseline: Mapping[str, Mapping[str, float]],
            max_regression_pct: float, metrics: Sequence[str] = METRICS, *,
            allow_missing: bool = False) -> CheckResult:
    """Diff *current* against *baseline*; growth beyond *max_regression_pct* fails.

    Growth exactly at the limit passes. Entries only in *current* are "new" (reported,
    passing); entries or metrics only in *baseline* are "missing" and fail unless
    *allow_missing* (retiring a model then needs ``--allow-missing`` or a baseline
    update, so a model that silently stopped being measured does not pass).
    """
    if not math.isfinite(max_regression_pct) or max_regression_pct < 0:
        raise ConfigError(f"max regression must be a non-negative percentage, got {max_regression_pct}")
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise ConfigError(f"unknown metric(s) {bad}; choose from {list(METRICS)}")
    diffs = []
    for key in sorted(set(current) | set(baseline)):
        for m in metrics:
            base = baseline.get(key, {}).get(m)
            cur = current.get(key, {}).get(m)
            if base is None and cur is None:
                continue
            if base is None:
                diffs.append(MetricDiff(key, m, None, cur, None, "new"))
            elif cur is None:
                diffs.append(MetricDiff(key, m, base, None, None, "missing"))
            else:
                pct = _change(base, cur)
                status = "regression" if pct > max_regression_pct + 1e-9 else "improved" if pct < 0 else "ok"
                diffs.append(MetricDiff(key, m, base, cur, pct, status))
    return CheckResult(tuple(diffs), max_regression_pct, allow_missing)


def _fmt_value(metric: str, v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if metric == "ms" else f"{round(v):,}"


def _fmt_pct(p: float | None) -> str:
    if p is None:
        return "-"
    if math.isinf(p):
        return "+inf%"
    return f"{p:+.2f}%"


def format_check(result: CheckResult) -> str:
    """Readable diff table and a one-line verdict."""
    headers = ["entry", "metric", "baseline", "current", "change", "status"]
    marks = {"regression": "FAIL", "improved": "better", "ok": "ok", "new": "new",
             "missing": "not measured (allowed)" if result.allow_missing else "FAIL: not measured"}
    rows = [[d.entry, _LABELS[d.metric], _fmt_value(d.metric, d.baseline), _fmt_value(d.metric, d.current),
             _fmt_pct(d.change_pct), marks[d.status]] for d in result.diffs]
    out = [line.rstrip() for line in text_table(headers, rows, left=(0, 1, 5))]
    out.append("")
    n = len(result.regressions)
    lost = sorted({d.entry for d in result.missing})
    if n:
        worst = max(result.regressions, key=lambda d: d.change_pct or 0.0)
        out.append(f"FAIL: {n} metric(s) grew by more than {result.max_regression_pct:g}% "
                   f"(worst: {worst.entry} {_LABELS[worst.metric]} {_fmt_pct(worst.change_pct)})")
    if lost and not result.allow_missing:
        out.append(f"FAIL: {len(lost)} baseline entr{'y' if len(lost) == 1 else 'ies'} not in the "
                   f"current results (first: {lost[0]}); pass --allow-missing if that is intended")
    if result.passed:
        out.append(f"PASS: no metric grew by more than {result.max_regression_pct:g}%")
    return "\n".join(out)


def junit_xml(result: CheckResult, name: str = "tinymeter check") -> str:
    """JUnit XML of a check: one test case per entry (model @ board ...), failing with
    every regressed or missing metric, so CI systems show the gate per model."""
    by_entry: dict[str, list[MetricDiff]] = {}
    for d in result.diffs:
        by_entry.setdefault(d.entry, []).append(d)
    failures = sum(any(result.failed(d) for d in ds) for ds in by_entry.values())
    suite = ET.Element("testsuite", name=name, tests=str(len(by_entry)), failures=str(failures),
                       errors="0", skipped="0")
    for entry, ds in sorted(by_entry.items()):
        case = ET.SubElement(suite, "testcase", classname="tinymeter.analysis.check", name=entry)
        bad = [d for d in ds if result.failed(d)]
        lines = [f"{_LABELS[d.metric]}: baseline {_fmt_value(d.metric, d.baseline)}, current "
                 f"{_fmt_value(d.metric, d.current)} ({_fmt_pct(d.change_pct)}, {d.status})"
                 for d in ds]
        if bad:
            first = bad[0]
            message = (f"{_LABELS[first.metric]} not measured" if first.status == "missing" else
                       f"{_LABELS[first.metric]} {_fmt_pct(first.change_pct)} > "
                       f"{result.max_regression_pct:g}%")
            ET.SubElement(case, "failure", message=message, type=first.status).text = "\n".join(lines)
        else:
            ET.SubElement(case, "system-out").text = "\n".join(lines)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
