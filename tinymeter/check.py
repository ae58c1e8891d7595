"""CI regression gate: compare estimates against a baseline and flag growth.

A model's latency, tensor arena and flash only ever creep up one innocent change at
a time; the gate makes each step visible. The comparison (:func:`compare`) is pure:
it takes metric dictionaries and returns a :class:`CheckResult`, rendered by
:func:`format_check`. Loading files is separate (:func:`load_entries`,
:func:`load_baseline`) and raises :class:`BaselineError` for a missing or invalid
baseline, which the CLI maps to exit status 2; a regression is exit status 1.

Entries are keyed ``"<model> @ <board> (<kernels>)"`` so one baseline covers many
models, boards and kernel sets. Accepted inputs: ``tinymeter estimate --json``
reports, JSON lists of them, and baseline files themselves.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinymeter.errors import ConfigError
from tinymeter.files import atomic_write
from tinymeter.texttable import text_table

log = logging.getLogger(__name__)

BASELINE_VERSION = 1
#: Gated metrics (all "lower is better"), in table order.
METRICS = ("ms", "arena_bytes", "flash_bytes")
_LABELS = {"ms": "latency ms", "arena_bytes": "arena B", "flash_bytes": "flash B"}

Entries = dict[str, dict[str, float]]


class BaselineError(ConfigError):
    """The baseline (or a current-results file) is missing or not a valid report."""


def entry_key(model: str, board: str, kernels: str) -> str:
    return f"{model} @ {board} ({kernels})"


def entries_from_report(report: Mapping[str, Any], where: str = "report") -> Entries:
    """Gated metrics of one ``Estimate.to_dict()`` (or a list, or a baseline document)."""
    if isinstance(report, list):
        out: Entries = {}
        for i, item in enumerate(report):
            if not isinstance(item, Mapping):  # a list of reports, not lists of lists
                raise BaselineError(f"{where}[{i}]: expected a report object, got "
                                    f"{type(item).__name__}")
            out.update(entries_from_report(item, f"{where}[{i}]"))
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
    missing = [k for k in ("model", "board", "kernels") if k not in report]
    if missing:
        raise BaselineError(f"{where}: not a tinymeter estimate report (missing {', '.join(missing)})")
    return {entry_key(str(report["model"]), str(report["board"]), str(report["kernels"])):
            _metrics(report, where)}


def _metrics(source: Any, where: str) -> dict[str, float]:
    if not isinstance(source, Mapping):
        raise BaselineError(f"{where}: expected an object of metrics")
    out = {}
    for m in METRICS:
        value = source.get(m)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < 0:
            raise BaselineError(f"{where}: metric {m!r} missing or not a non-negative number ({value!r})")
        out[m] = float(value)
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
    entries = entries_from_report(data, str(path))
    if not entries:
        raise BaselineError(f"baseline {path} has no entries")
    return entries


def load_entries(paths: Iterable[Path | str]) -> Entries:
    """Entries of current-results files (estimate reports); a key twice is an error."""
    out: Entries = {}
    for p in paths:
        for key, metrics in entries_from_report(_read_json(Path(p), "results file"), str(p)).items():
            if key in out:
                raise BaselineError(f"{key} appears twice in the current results ({p})")
            out[key] = metrics
    return out


def baseline_document(entries: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    return {"tinymeter_baseline": BASELINE_VERSION,
            "entries": {k: {m: entries[k][m] for m in METRICS} for k in sorted(entries)}}


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

    @property
    def regressions(self) -> list[MetricDiff]:
        return [d for d in self.diffs if d.status == "regression"]

    @property
    def passed(self) -> bool:
        return not self.regressions


def _change(base: float, cur: float) -> float:
    if base == 0:
        return 0.0 if cur == 0 else math.inf
    return 100.0 * (cur - base) / base


def compare(current: Mapping[str, Mapping[str, float]], baseline: Mapping[str, Mapping[str, float]],
            max_regression_pct: float, metrics: Sequence[str] = METRICS) -> CheckResult:
    """Diff *current* against *baseline*; growth beyond *max_regression_pct* fails.

    Growth exactly at the limit passes. Entries only in *current* are "new" and entries
    only in *baseline* "missing": both are reported and neither fails the gate, so
    adding or retiring a model does not need a baseline update in the same change.
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
    return CheckResult(tuple(diffs), max_regression_pct)


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
    marks = {"regression": "FAIL", "improved": "better", "ok": "ok", "new": "new", "missing": "not measured"}
    rows = [[d.entry, _LABELS[d.metric], _fmt_value(d.metric, d.baseline), _fmt_value(d.metric, d.current),
             _fmt_pct(d.change_pct), marks[d.status]] for d in result.diffs]
    out = [line.rstrip() for line in text_table(headers, rows, left=(0, 1, 5))]
    out.append("")
    n = len(result.regressions)
    if n:
        worst = max(result.regressions, key=lambda d: d.change_pct or 0.0)
        out.append(f"FAIL: {n} metric(s) grew by more than {result.max_regression_pct:g}% "
                   f"(worst: {worst.entry} {_LABELS[worst.metric]} {_fmt_pct(worst.change_pct)})")
    else:
        out.append(f"PASS: no metric grew by more than {result.max_regression_pct:g}%")
    return "\n".join(out)
