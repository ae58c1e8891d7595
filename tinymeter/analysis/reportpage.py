"""A one-page report of an estimate (``estimate --report FILE``): Markdown or HTML.

What a reviewer wants next to a model change: what was estimated (model, board,
kernels or runtime, cost model, calibration), the totals, the per-layer table and the
per-layer plot. ``.html`` gives one self-contained file (the plot embedded as a PNG
data URI, nothing to keep together); ``.md`` writes the plot next to it and links it.
The page text is a pure function of the estimate (:func:`markdown_page`,
:func:`html_page`); only :func:`write_report_page` touches files.
"""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

from tinymeter.analysis.plots import plot_layers
from tinymeter.analysis.report import Estimate, cost_model_line
from tinymeter.core.errors import ConfigError
from tinymeter.core.files import atomic_write

__all__ = ["html_page", "markdown_page", "write_report_page"]

_COLUMNS = ("#", "op", "MACs", "instructions", "est. cycles", "est. ms", "energy uJ", "share")


def _rows(est: Estimate) -> list[list[str]]:
    return [[str(r.index), r.op, f"{r.macs:,}", f"{r.instructions:,}", f"{r.cycles:,}",
             f"{r.ms:.3f}", f"{r.energy_uj:.2f}", f"{100 * r.share:.1f}%"] for r in est.layers]


def _facts(est: Estimate, calibration: str) -> list[tuple[str, str]]:
    impl = f"{est.kernels} kernels" if est.runtime == "own" else f"{est.runtime} runtime"
    return [
        ("model", est.model), ("board", f"{est.board} ({est.core} @ {est.clock_hz / 1e6:g} MHz)"),
        ("implementation", impl), ("cost model", cost_model_line(est)),
        ("calibration", calibration.removeprefix("calibration: ")),
        ("latency", f"{est.ms:.3f} ms ({est.cycles:,} cycles)"),
        ("energy", f"{est.energy_uj:.2f} uJ per inference"),
        ("memory", f"tensor arena {est.arena_bytes:,} B, RAM {est.ram_bytes:,} B, flash "
                   f"{est.flash_bytes:,} B (weights {est.weight_bytes:,} B)"),
    ]


def title(est: Estimate) -> str:
    return f"{est.model} on {est.board}"


def markdown_page(est: Estimate, calibration: str, plot: str | None) -> str:
    """The report as Markdown; *plot* is the per-layer plot's relative path (or None)."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [f"# {title(est)}", ""]
    lines += [f"- **{k}**: {cell(v)}" for k, v in _facts(est, calibration)]
    if plot:
        lines += ["", f"![per-layer latency]({plot})"]
    lines += ["", "| " + " | ".join(_COLUMNS) + " |",
              "|" + "|".join("---:" if i not in (1,) else ":---" for i in range(len(_COLUMNS))) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in _rows(est)]
    return "\n".join(lines) + "\n"


def html_page(est: Estimate, calibration: str, plot_png: bytes | None) -> str:
    """The report as one self-contained HTML page (the plot embedded)."""
    esc = html.escape
    facts = "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>"
                      for k, v in _facts(est, calibration))
    head = "".join(f"<th>{esc(c)}</th>" for c in _COLUMNS)
    body = "\n".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                     for row in _rows(est))
    img = "" if plot_png is None else (
        '<p><img alt="per-layer latency" style="max-width:100%" src="data:image/png;base64,'
        + base64.b64encode(plot_png).decode() + '"></p>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title(est))}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 2px 8px; text-align: right; }}
table.facts th, table.facts td, td:nth-child(2) {{ text-align: left; }}
</style></head>
<body>
<h1>{esc(title(est))}</h1>
<table class="facts">
{facts}
</table>
{img}
<table>
<tr>{head}</tr>
{body}
</table>
</body></html>
"""


def check_report_path(path: Path | str) -> str:
    """"html" or "md" from the report file's suffix (checked before any work)."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".md", ".markdown", ".html", ".htm"):
        raise ConfigError(f"--report {path}: the file name must end in .md or .html")
    return "html" if suffix in (".html", ".htm") else "md"


def write_report_page(est: Estimate, path: Path | str, calibration: str) -> list[Path]:
    """Write the report (format from the suffix: .md or .html); returns the files written."""
    path = Path(path)
    if check_report_path(path) == "html":
        with tempfile.TemporaryDirectory(prefix="tm-report-") as tmp:
            png = plot_layers(est, Path(tmp) / "layers.png").read_bytes() if est.layers else None
        atomic_write(path, html_page(est, calibration, png))
        return [path]
    written = []
    plot = None
    if est.layers:
        plot_path = path.with_name(f"{path.stem}_layers.png")
        plot_layers(est, plot_path)
        written.append(plot_path)
        plot = plot_path.name
    atomic_write(path, markdown_page(est, calibration, plot))
    return [path, *written]
