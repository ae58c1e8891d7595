"""Generate the workflow notebooks (notebooks/*.ipynb) from the cell sources below.

Why generated: .ipynb JSON is painful to review and merge; this file is the source of
truth and the notebooks are regenerated with ``python notebooks/make_notebooks.py``.
Every cell only calls tinymeter library functions; no logic lives in a notebook.

Environment variables read by the notebooks:

* ``TINYMETER_NB_SMALL=1``: small settings (fewer boards, candidates, epochs), used
  by the test suite (tests/project/test_notebooks.py) to run all of them in a few minutes;
* ``TINYMETER_NB_OUT``: directory for plots and files (default ``notebooks/out``);
  each notebook writes into its own sub-directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def _setup(sub: str) -> str:
    return f'''import os
from pathlib import Path

from IPython.display import Image, display

SMALL = os.environ.get("TINYMETER_NB_SMALL") == "1"
OUT = Path(os.environ.get("TINYMETER_NB_OUT", "out")) / "{sub}"
OUT.mkdir(parents=True, exist_ok=True)
print("small settings" if SMALL else "full settings", "- outputs in", OUT)'''


NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "01_model_selection": [
        ("md", "# 01 — Model selection and analysis\n\n"
               "Which architecture fits a microcontroller? Before building anything, compare the "
               "candidates' MACs, parameters, weight bytes and peak activation memory (the tensor "
               "arena lower bound). Models come from the tinymeter zoo (reference architectures of "
               "MLPerf Tiny and classics, random but non-degenerate weights)."),
        ("code", _setup("01")),
        ("code", '''from tinymeter.models import zoo

for name in zoo.list_models():
    print(f"{name:18} {zoo.get_entry(name).summary}")'''),
        ("md", "Pick a few models (the small settings keep the test suite fast) and inspect them."),
        ("code", '''from tinymeter.models.inspect import format_summary, inspect_model
from tinymeter.models.tflite import load_tflite

MODELS = ["ds_cnn_kws", "lenet"] if SMALL else ["ds_cnn_kws", "mobilenet_v1_vww", "resnet8", "fc_autoencoder", "lenet"]
summaries = {name: inspect_model(load_tflite(zoo.build_tflite(name))) for name in MODELS}
print(format_summary(summaries[MODELS[0]]))'''),
        ("code", '''from tinymeter.analysis import plots

for name, summary in summaries.items():
    print(f"{name:18} MACs {summary.total_macs:>12,}  params {summary.total_params:>9,}  "
          f"weights {summary.total_weight_bytes:>9,} B  peak activations {summary.peak_activation_bytes:>8,} B")
    display(Image(filename=str(plots.plot_model_summary(summary, OUT / f"{name}_ops.png", title=name))))'''),
    ],
    "02_conversion_quantization": [
        ("md", "# 02 — Conversion and quantization\n\n"
               "Train a small CNN on scikit-learn's digits (ships offline), convert it to float32 "
               "and full-integer int8 .tflite, and measure the accuracy of each on the host. The "
               "int8 model is what the firmware runs."),
        ("code", _setup("02")),
        ("code", '''from tinymeter.apps.sweep import worker
from tinymeter.models import digits

data = digits.load_digits_split()
candidate = digits.Candidate(depth=2, kernel=3, width=8)
recipe = digits.TrainRecipe(epochs=1 if SMALL else 8)
print(f"train {data.x_train.shape}, test {data.x_test.shape}, candidate {candidate.name}, {recipe}")'''),
        ("code", '''train_model, deploy_model = digits.build_keras(candidate, head=worker.supported_head(), seed=recipe.seed)
keras_accuracy = digits.train(train_model, data, recipe)
train_model.summary()'''),
        ("code", '''float_tflite = digits.convert(deploy_model, data, "float32")
int8_tflite = digits.convert(deploy_model, data, "int8")
accuracy = {
    "Keras": keras_accuracy,
    "TFLite float32": digits.tflite_accuracy(float_tflite, data.x_test, data.y_test),
    "TFLite int8": digits.tflite_accuracy(int8_tflite, data.x_test, data.y_test),
}
for name, acc in accuracy.items():
    print(f"{name:15} {100 * acc:5.1f} %")
print(f"size: float32 {len(float_tflite):,} B, int8 {len(int8_tflite):,} B")'''),
        ("code", '''from tinymeter.analysis import plots
from tinymeter.models.inspect import format_summary, inspect_model
from tinymeter.models.tflite import parse_tflite

(OUT / "digits_int8.tflite").write_bytes(int8_tflite)
print(format_summary(inspect_model(parse_tflite(int8_tflite))))
display(Image(filename=str(plots.plot_accuracy(accuracy, OUT / "accuracy.png", title=f"digits {candidate.name}"))))'''),
    ],
    "03_build_emulate": [
        ("md", "# 03 — Build and emulate\n\n"
               "Compile the int8 model into bare-metal firmware, run it in the Cortex-M emulator and "
               "estimate every layer: reference vs optimized (DSP) kernels, then several boards "
               "side by side. The last cell shows the CI regression gate on these estimates."),
        ("code", _setup("03")),
        ("code", '''from tinymeter.core.boards import list_boards, load_board
from tinymeter.firmware.build import BuildConfig
from tinymeter.models import zoo
from tinymeter.apps.estimate import estimate
from tinymeter.analysis.report import format_table, write_json

model = zoo.build_tflite("ds_cnn_kws", params={"filters": 16} if SMALL else None)
board = load_board("nucleo-l4r5zi")
reference = estimate(model, board, BuildConfig(kernels="reference"))
print(format_table(reference))
write_json(reference, OUT / "estimate_reference.json")'''),
        ("code", '''from tinymeter.analysis import plots

display(Image(filename=str(plots.plot_layers(reference, OUT / "layers_reference.png"))))'''),
        ("code", '''optimized = estimate(model, board, BuildConfig(kernels="optimized"))
print(format_table(optimized))
write_json(optimized, OUT / "estimate_optimized.json")
display(Image(filename=str(plots.plot_comparison({"reference": reference, "optimized": optimized},
                                                     OUT / "kernels.png"))))'''),
        ("code", '''BOARDS = ["nucleo-g0b1re", "nucleo-l4r5zi", "nucleo-f767zi"] if SMALL else list_boards()
per_board = {name: estimate(model, load_board(name), BuildConfig(kernels="optimized")) for name in BOARDS}
for name, est in per_board.items():
    print(f"{name:16} {est.core:12} {est.ms:9.3f} ms  {est.energy_uj:9.1f} uJ  arena {est.arena_bytes:,} B  flash {est.flash_bytes:,} B")
display(Image(filename=str(plots.plot_comparison(per_board, OUT / "boards.png"))))'''),
        ("md", "The CI gate (`tinymeter check`) compares estimates with a baseline; here the "
               "reference-kernel estimate plays the baseline of the optimized one (same entry key "
               "after relabelling), so latency improves while flash grows."),
        ("code", '''from tinymeter.analysis import check

base = check.entries_from_report(reference.to_dict())
current = {next(iter(base)): check.entries_from_report(optimized.to_dict()).popitem()[1]}
print(check.format_check(check.compare(current, base, max_regression_pct=5.0)))'''),
    ],
    "04_hardware_calibration": [
        ("md", "# 04 — Hardware measurement and calibration\n\n"
               "With a board on a probe, `tinymeter measure` / `tinymeter calibrate` flash the "
               "firmware, read per-layer cycle counts over the UART and fit the cost model. Without "
               "hardware the *virtual board* stands in: the emulator behind a pseudo-terminal, with "
               "a hidden timing model the calibration has to recover."),
        ("code", _setup("04")),
        ("code", '''import importlib.util

HAVE_VIRTUAL = importlib.util.find_spec("tinymeter.hw.virtual") is not None
if not HAVE_VIRTUAL:
    print("skipping: this tinymeter has no virtual board (tinymeter.hw.virtual); "
          "connect a board and use `tinymeter calibrate --probe pyocd` instead")'''),
        ("md", "The firmware flashed to a board is the *hardware image*: it brings up the board's "
               "UART for its report and marks each inference and layer on two GPIO pins for a power "
               "monitor's digital inputs. The board file says which pins; the emulator runs the same "
               "image and records the marker edges at its estimated cycles."),
        ("code", '''from tinymeter.core.boards import describe_board, load_board
from tinymeter.firmware.build import BuildConfig, effective_kernels
from tinymeter.analysis.plots import marker_timeline
from tinymeter.apps.estimate import build_model, resolve_model
from tinymeter.sim.costmodel import cost_model_for
from tinymeter.sim.emulator import Emulator

board = load_board("nucleo-l4r5zi")
print(describe_board(board))
image = build_model(resolve_model(None), board, BuildConfig(kernels="optimized", io="uart"))
run = Emulator(board).run(image.elf, [[]], budget_instructions=10**9, timeout_s=300)
print(run.stdout)
png = marker_timeline(run.marks, board.hardware_clock_hz, OUT / "marker_lines.png",
                      model=image.model.name, board=board.name,
                      impl=f"{effective_kernels(image.config.kernels, board.core)} kernels",
                      cost_model=cost_model_for(board).name,
                      ops=[layer.op_name for layer in image.model.layers])
display(Image(filename=str(png)))'''),
        ("code", '''from tinymeter.cli.main import main

if HAVE_VIRTUAL:
    status = main(["calibrate", "--probe", "virtual", "--power", "virtual", "--no-save",
                   "--runs", "2" if SMALL else "5", "--db", str(OUT / "results.sqlite"),
                   "--json", str(OUT / "calibration.json"), "--plot", str(OUT)])
    print("exit status", status)'''),
        ("code", '''if HAVE_VIRTUAL:
    for png in sorted(OUT.glob("*.png")):
        print(png.name)
        display(Image(filename=str(png)))'''),
    ],
    "05_nas": [
        ("md", "# 05 — Implementation-aware NAS\n\n"
               "Sweep width, depth and kernel size of a small CNN family on digits: train each "
               "candidate, convert it to int8, emulate it per board and kernel set, and keep the "
               "accuracy-vs-latency Pareto front. The parity plot shows why MACs are a poor proxy: "
               "the optimized kernels' paired-channel fast paths make odd widths dearer per MAC, so "
               "latency is not monotonic in MACs. Results are stored in a SQLite database keyed by "
               "candidate hash: re-running this notebook resumes instead of retraining."),
        ("code", _setup("05")),
        ("code", '''from tinymeter.apps.sweep import nas, pareto, space

settings = ({"widths": [4, 5, 6, 8], "depths": [1, 2], "kernel_sizes": [3], "epochs": 1,
             "kernel_sets": ["reference", "optimized"]} if SMALL else
            {"epochs": 3, "kernel_sets": ["reference", "optimized"], "boards": ["nucleo-l4r5zi", "nucleo-f767zi"]})
config = space.SweepConfig.from_mapping(settings)
print(f"{len(config.candidates())} candidates x {len(config.targets)} targets")'''),
        ("code", '''result = nas.run_sweep(config, OUT / "sweep.sqlite", executor="process", workers=2, progress=not SMALL)
print(f"trained {result.trained}, reused {result.reused}, failed {len(result.failed)} in {result.seconds:.1f} s")
fronts = result.fronts("ms")
print(pareto.format_rows(result.rows, [r for rows in fronts.values() for r in rows]))'''),
        ("code", '''paths = nas.write_outputs(result, OUT)
display(Image(filename=str(paths["pareto_png"])))'''),
        ("code", '''display(Image(filename=str(paths["parity_png"])))
for a, b in pareto.parity_inversions(result.rows):
    print(f"{a.kernels:9} {a.name} -> {b.name}: cycles/MAC {a.cycles / a.macs:.1f} -> {b.cycles / b.macs:.1f}")
print(len(pareto.non_monotonic_pairs(result.rows)), "pairs where fewer MACs run slower")'''),
    ],
}


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{i:02d}"  # stable ids: regenerating gives identical files
    return nb


def main(out_dir: Path = HERE) -> list[Path]:
    paths = []
    for name, cells in NOTEBOOKS.items():
        path = out_dir / f"{name}.ipynb"
        nbformat.write(build(name, cells), path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(p)
