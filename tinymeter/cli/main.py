"""The `tinymeter` command line.

Every subcommand is a thin adapter: it parses arguments, calls library functions and
prints. Library code raises :class:`~tinymeter.core.errors.TinymeterError` for anything a
user can cause; this module turns that into one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tinymeter import __version__
from tinymeter.analysis import check
from tinymeter.analysis.report import Unfit, comparison_csv, format_comparison, format_table, layers_csv
from tinymeter.analysis.reportpage import check_report_path, write_report_page
from tinymeter.analysis.runtimecmp import RuntimeRun, comparison_dict, format_runtime_comparison
from tinymeter.apps.estimate import build_model, estimate, estimate_elf, parse_span, resolve_model
from tinymeter.apps.sweep import nas, pareto, space
from tinymeter.apps.tflm import build_tflm_image, estimate_tflm
from tinymeter.apps.validate import format_validation, validate
from tinymeter.cli.args import (
    add_build_args,
    add_io_arg,
    add_model_arg,
    add_runtime_args,
    join_opt_values,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    run_count,
    tflm_library,
    uses_tflm,
)
from tinymeter.cli.hw import add_subcommands as add_hw_subcommands
from tinymeter.core.boards import DEFAULT_BOARD, describe_board, list_boards, load_board
from tinymeter.core.calibrations import choose_calibration
from tinymeter.core.errors import ConfigError, DoesNotFit, TinymeterError
from tinymeter.core.files import atomic_write, is_stdout, write_output
from tinymeter.core.texttable import text_table
from tinymeter.firmware import tflmconfig
from tinymeter.firmware.build import BuildConfig
from tinymeter.firmware.codegen import generate
from tinymeter.firmware.export import write_export
from tinymeter.firmware.support import format_support, op_support, tflm_registered_ops, unsupported, with_tflm
from tinymeter.firmware.tflm import _read_library
from tinymeter.firmware.tflmconfig import libraries_for, load_registry
from tinymeter.models import zoo
from tinymeter.models.inspect import format_summary, inspect_model
from tinymeter.models.tflite import load_tflite
from tinymeter.models.user_convert import convert_user_model, format_accuracy, load_calibration
from tinymeter.sim import DEFAULT_BUDGET_INSTRUCTIONS, DEFAULT_TIMEOUT_S
from tinymeter.sim.costmodel import chosen_cost_model

log = logging.getLogger(__name__)


#: A requested output: (path or None, function rendering its text when it is written).
Output = tuple[Path | None, Callable[[], str]]


def _check_outputs(*paths: Path | None) -> None:
    """At most one output may be ``-`` (standard output); checked before any work."""
    if sum(is_stdout(p) for p in paths) > 1:
        raise ConfigError("only one of the outputs can be '-' (standard output)")


def _emit(args: argparse.Namespace, text: str, outputs: Sequence[Output]) -> None:
    """Print the human-readable result and write the requested files.

    Conventions of every command: the result goes to stdout unless a machine output
    does (``--json -``), then the result goes to stderr (``-q`` drops it); "wrote"
    lines go to stderr and ``-q`` silences them.
    """
    quiet = getattr(args, "quiet", False)
    _check_outputs(*(p for p, _ in outputs))
    if any(is_stdout(p) for p, _ in outputs):
        if not quiet:
            print(text, file=sys.stderr)
    else:
        print(text)
    for path, render in outputs:
        if path is None:
            continue
        write_output(path, render())
        if not is_stdout(path) and not quiet:
            print(f"wrote {path}", file=sys.stderr)


def _cost_model(args: argparse.Namespace, board: Any) -> tuple[Any, str]:
    """The cost model ``--calibration`` selects for *board*, and the line saying which
    calibration that is (printed with the result)."""
    choice = choose_calibration(board, args.calibration)
    return chosen_cost_model(board, choice), choice.describe()


def _cmd_estimate(args: argparse.Namespace) -> int:
    _check_outputs(args.json, args.csv)
    if args.report:
        check_report_path(args.report)
    if args.compare:
        return _estimate_boards(args)
    if args.compare_runtimes:
        return _estimate_runtimes(args)
    board = load_board(args.board)
    cost_model, calibration = _cost_model(args, board)
    if (args.stop_at or args.span) and args.elf is None:
        raise ConfigError("--stop-at and --span apply to --elf only (tinymeter's own "
                          "firmware ends by itself)")
    if args.elf is not None:
        if args.model is not None:
            raise ConfigError("give either a model or --elf, not both")
        est = estimate_elf(args.elf, board, budget_instructions=args.budget,
                           timeout_s=args.timeout, stop_at=args.stop_at or (),
                           span=parse_span(args.span) if args.span else None,
                           span_count=args.span_count, cost_model=cost_model)
    elif uses_tflm(args):
        est = estimate_tflm(resolve_model(args.model), board, tflm_library(args, board),
                            BuildConfig(opt=args.opt, io=args.io), arena_bytes=args.tflm_arena,
                            budget_instructions=args.budget, timeout_s=args.timeout,
                            cost_model=cost_model)
    else:
        model_path = resolve_model(args.model, quiet=args.quiet)
        config = BuildConfig(kernels=args.kernels, opt=args.opt, io=args.io)
        est = estimate(model_path, board, config, budget_instructions=args.budget,
                       timeout_s=args.timeout, progress=not args.quiet, cost_model=cost_model)
    _emit(args, format_table(est, top_functions=args.profile) + "\n" + calibration,
          [(args.json, lambda: json.dumps(est.to_dict(), indent=2) + "\n"),
           (args.csv, lambda: layers_csv(est))])
    if args.report:
        for path in write_report_page(est, args.report, calibration):
            if not args.quiet:
                print(f"wrote {path}", file=sys.stderr)
    return 0


def _estimate_boards(args: argparse.Namespace) -> int:
    """``estimate --compare``: the same model on several boards, one row each."""
    if args.elf is not None:
        raise ConfigError("--compare estimates a model (not --elf, which is built for one board)")
    names = list_boards() if args.compare == "all" else [b for b in args.compare.split(",") if b]
    if not names:
        raise ConfigError("--compare needs board names separated by commas, or 'all'")
    model_path = resolve_model(args.model)
    config = BuildConfig(kernels=args.kernels, opt=args.opt, io=args.io)
    ests = []
    unfit: list[Unfit] = []
    calibrations: list[str] = []
    for name in names:
        board = load_board(name)
        cost_model, calibration = _cost_model(args, board)
        calibrations.append(f"{name}: {calibration}")
        try:
            ests.append(_estimate_one(args, model_path, board, config, cost_model))
        except DoesNotFit as exc:  # one board too small: its row says so, the others go on
            unfit.append(Unfit(board.name, board.core.name, board.clock_hz, exc.short))
    _emit(args, format_comparison(ests, unfit, model=Path(model_path).name) + "\n"
          + "\n".join(calibrations),
          [(args.json, lambda: json.dumps([e.to_dict() for e in ests] + [u.to_dict() for u in unfit],
                                          indent=2) + "\n"),
           (args.csv, lambda: comparison_csv(ests, unfit))])
    return 0


def _estimate_one(args: argparse.Namespace, model_path: Path, board: Any, config: Any,
                  cost_model: Any) -> Any:
    """One board of ``--compare``: tinymeter's runtime or the TFLM library."""
    if uses_tflm(args):
        return estimate_tflm(model_path, board, tflm_library(args, board), BuildConfig(opt=args.opt),
                             arena_bytes=args.tflm_arena, budget_instructions=args.budget,
                             timeout_s=args.timeout, cost_model=cost_model)
    return estimate(model_path, board, config, budget_instructions=args.budget,
                    timeout_s=args.timeout, progress=not args.quiet, cost_model=cost_model)


def _estimate_runtimes(args: argparse.Namespace) -> int:
    """``estimate --compare-runtimes``: own reference, own optimized and every TFLM library
    of the board's core (or --tflm-lib), one per-layer table, all priced by the cost model
    ``--calibration`` selects (and says)."""
    if args.elf is not None:
        raise ConfigError("--compare-runtimes estimates a model (not --elf)")
    board = load_board(args.board)
    cost_model, calibration = _cost_model(args, board)
    model_path = resolve_model(args.model)
    if args.tflm_lib is not None:
        libraries = [tflm_library(args, board)]
    else:
        libraries = [e.library() for e in libraries_for(load_registry(), board.core.name)
                     if args.tflm_kernels in (None, e.kernels)]
    limits = {"budget_instructions": args.budget, "timeout_s": args.timeout,
              "cost_model": cost_model}
    runs = [RuntimeRun(f"own {k[:3]}", estimate(model_path, board, BuildConfig(kernels=k,
                                                                                opt=args.opt),
                                                progress=not args.quiet, **limits))
            for k in ("reference", "optimized")]
    for lib in libraries:
        label = "TFLM CMSIS-NN" if lib.kernels == "cmsis-nn" else f"TFLM {lib.kernels[:3]}"
        runs.append(RuntimeRun(label, estimate_tflm(model_path, board, lib,
                                                    BuildConfig(opt=args.opt),
                                                    arena_bytes=args.tflm_arena, **limits)))
    text = format_runtime_comparison(runs)
    if not libraries:
        text += (f"\n(no TFLM library registered for {board.core.name}: tinymeter tflm add LIB "
                 f"--core {board.core.name} --root DIR)")
    _emit(args, text + "\n" + calibration,
          [(args.json, lambda: json.dumps(comparison_dict(runs), indent=2) + "\n")])
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    model = load_tflite(resolve_model(args.model))
    summary = inspect_model(model)
    support = op_support(model)
    if args.tflm_lib is not None:
        support = with_tflm(support, tflm_registered_ops(_read_library(args.tflm_lib)))
    doc = {**summary.to_dict(), "support": [r.to_dict() for r in support]}
    _emit(args, format_support(support) + "\n\n" + format_summary(summary),
          [(args.json, lambda: json.dumps(doc, indent=2) + "\n")])
    bad = unsupported(support)
    if args.strict and bad:
        print(f"error: --strict: {len(bad)} operator(s) will not run on tinymeter's runtime: "
              + "; ".join(r.reason for r in bad[:3]) + (" ..." if len(bad) > 3 else ""),
              file=sys.stderr)
        return 1
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    calibration = load_calibration(args.calibration_data) if args.calibration_data else None
    result = convert_user_model(args.model, args.quantize, calibration, seed=args.seed)
    out = args.out or Path(args.model).with_suffix("").with_name(
        f"{Path(args.model).with_suffix('').name}-{args.quantize}.tflite")
    atomic_write(out, result.tflite)
    print(f"wrote {out} ({len(result.tflite):,} bytes, {args.quantize})", file=sys.stderr)
    print(format_accuracy(result))
    if args.json:
        atomic_write(args.json, json.dumps(result.to_dict(), indent=2) + "\n")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    board = load_board(args.board)
    if uses_tflm(args):
        return _build_tflm(args, board)
    image = build_model(resolve_model(args.model), board,
                        BuildConfig(kernels=args.kernels, opt=args.opt, runs=args.runs,
                                    io=args.io),
                        out_dir=args.out)
    print(f"{args.out}/firmware.elf (and .bin, .hex): flash {image.flash_bytes} B, RAM "
          f"{image.ram_bytes} B, arena {image.model.arena_bytes} B, {len(image.model.layers)} layers")
    return 0


def _build_tflm(args: argparse.Namespace, board: Any) -> int:
    """``build --runtime tflm``: the TFLM-harness ELF with its arena sized, kept in --out."""
    library = tflm_library(args, board)
    with tempfile.TemporaryDirectory(prefix="tm-tflm-") as work:
        image = build_tflm_image(resolve_model(args.model), board, library,
                                 BuildConfig(opt=args.opt, runs=args.runs, io=args.io),
                                 arena_bytes=args.tflm_arena, work=Path(work), out_dir=args.out)
    print(f"{args.out}/firmware.elf: flash {image.flash_bytes} B, RAM {image.ram_bytes} B, "
          f"arena {image.arena_bytes} B (TFLM's arena_used_bytes() {image.arena_used} B), "
          f"{library.label}")
    return 0


def _cmd_boards(args: argparse.Namespace) -> int:
    if args.board is not None:
        print(describe_board(load_board(args.board)))
        return 0
    for name in list_boards():
        b = load_board(name)
        print(f"{b.name:18} {b.core.name:14} {b.clock_hz / 1e6:6g} MHz  flash "
              f"{b.text.size // 1024} KiB ({b.text.wait_states} WS)  RAM {b.data.size // 1024} KiB")
    return 0


def _cmd_zoo(args: argparse.Namespace) -> int:
    if args.zoo_cmd == "list":
        names = zoo.list_models()
        width = max(len(n) for n in names)
        for name in names:
            entry = zoo.get_entry(name)
            weights = f"[trained on {entry.trained_on}]" if entry.trained_on else "[untrained]"
            print(f"{name:{width}}  {weights:32} {entry.summary}")
        print("\n[untrained] models have the real architectures with random weights: right "
              "for latency, memory and energy, meaningless outputs; [trained] ones are trained "
              "on a dataset that ships in a package", file=sys.stderr)
        return 0
    path = zoo.build_tflite(args.name, quantize=args.quantize)
    print(path)
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    data: dict = {}
    if args.config:
        try:
            data = json.loads(Path(args.config).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read sweep config {args.config}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"sweep config {args.config} must be a JSON object")
    overrides = {"name": args.name, "widths": args.widths, "depths": args.depths,
                 "kernel_sizes": args.kernel_sizes, "epochs": args.epochs, "seed": args.seed,
                 "boards": args.boards, "kernel_sets": args.kernel_sets,
                 "max_candidates": args.max_candidates}
    data.update({k: v for k, v in overrides.items() if v is not None})
    config = space.SweepConfig.from_mapping(data)
    out = Path(args.out)
    db = Path(args.db) if args.db else out / "sweep.sqlite"
    result = nas.run_sweep(config, db, executor=args.executor, workers=args.workers,
                           retry_failed=args.retry_failed, progress=not args.quiet)
    fronts = result.fronts(args.metric)
    print(pareto.format_rows(result.rows, [r for rows in fronts.values() for r in rows]))
    paths = nas.write_outputs(result, out, metric=args.metric)
    inversions = pareto.parity_inversions(result.rows)
    print(f"\n{len(config.candidates())} candidates: {result.trained} trained now, "
          f"{result.reused} reused from {db}, {len(result.failed)} failed, {result.seconds:.1f} s")
    if inversions:
        steps = ", ".join(f"{a.name}->{b.name} ({a.kernels})" for a, b in inversions[:6])
        print(f"cycles per MAC rise with width at {len(inversions)} step(s) (lost fast paths): {steps}")
    for name, error in sorted(result.failed.items()):
        print(f"failed: {name}: {error}")
    print(f"wrote {paths['pareto_png']}, {paths['parity_png']}, {paths['csv']}", file=sys.stderr)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    current: dict = {}
    root = Path(args.baseline).parent  # model paths in keys are relative to the baseline
    tflites = [p for p in args.results if Path(p).suffix == ".tflite"]
    if tflites:
        boards = [load_board(name) for name in args.board or [DEFAULT_BOARD]]
        for path in tflites:
            if not Path(path).exists():
                raise ConfigError(f"model file {path} does not exist")
            for board in boards:
                if uses_tflm(args):
                    est = estimate_tflm(Path(path), board, tflm_library(args, board),
                                        arena_bytes=args.tflm_arena)
                else:
                    est = estimate(Path(path), board, BuildConfig(kernels=args.kernels))
                current.update(check.entries_from_report(est.to_dict(), str(path), root))
    current.update(check.load_entries([p for p in args.results if Path(p).suffix != ".tflite"],
                                      root))
    if args.update_baseline:
        check.write_baseline(current, args.baseline)
        print(f"wrote baseline {args.baseline} ({len(current)} entries)", file=sys.stderr)
        return 0
    metrics = args.metrics.split(",") if args.metrics else list(check.METRICS)
    result = check.compare(current, check.load_baseline(args.baseline), args.max_regression, metrics,
                           allow_missing=args.allow_missing)
    print(check.format_check(result))
    if args.junit:
        atomic_write(args.junit, check.junit_xml(result))
        print(f"wrote {args.junit}", file=sys.stderr)
    return 0 if result.passed else 1


def _cmd_validate(args: argparse.Namespace) -> int:
    """``tinymeter validate``: emulated outputs vs the host interpreters; exit 1 on mismatch."""
    board = load_board(args.board)
    library = tflm_library(args, board) if uses_tflm(args) else None
    result = validate(resolve_model(args.model), board, library=library, kernels=args.kernels,
                      inputs=args.inputs, samples=args.samples, seed=args.seed,
                      budget_instructions=args.budget, timeout_s=args.timeout)
    _emit(args, format_validation(result),
          [(args.json, lambda: json.dumps(result.to_dict(), indent=2) + "\n")])
    return 0 if result.passed else 1


def _cmd_export(args: argparse.Namespace) -> int:
    """``tinymeter export``: the own runtime for one model as a C library."""
    board = load_board(args.board)
    path = resolve_model(args.model)
    gen = generate(load_tflite(path), name=path.stem)
    sources = write_export(gen, board, args.kernels, args.out)
    print(f"exported {gen.name} to {args.out}: {len(sources)} C sources, arena "
          f"{gen.arena_bytes} B, API in tinymeter_model.h (see README.md)")
    return 0


def _cmd_tflm(args: argparse.Namespace) -> int:
    """``tinymeter tflm add|list``: the registered TFLM libraries."""
    if args.tflm_cmd == "add":
        target = (Path.cwd() / tflmconfig.PROJECT_FILE) if args.project else None
        entry = tflmconfig.add_library(args.lib, args.core, args.root, kernels=args.kernels,
                                       path=target)
        where = target or tflmconfig.user_config_path()
        print(f"registered {entry.lib} for {entry.core} ({entry.kernels} kernels) in {where}")
        return 0
    if args.tflm_cmd == "remove":
        target = (Path.cwd() / tflmconfig.PROJECT_FILE) if args.project else None
        n = tflmconfig.remove_library(args.core, args.kernels, path=target)
        print(f"removed {n} librar{'y' if n == 1 else 'ies'} of {args.core} from "
              f"{target or tflmconfig.user_config_path()}")
        return 0
    entries = tflmconfig.load_registry()
    if not entries:
        print("no TFLM libraries registered (tinymeter tflm add LIB --core CORE --root DIR)")
    else:
        rows = [[e.core, e.kernels, str(e.lib), str(e.root)] for e in entries]
        print("\n".join(text_table(["core", "kernels", "library", "TFLM root"], rows,
                                    left=(0, 1, 2, 3))))
    return 0



# -- one parser per subcommand --------------------------------------------------------------


def _add_estimate(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("estimate", help="emulate a model and estimate per-layer latency and energy")
    add_model_arg(e)
    add_build_args(e)
    e.add_argument("--elf", type=Path, default=None,
                   help="profile a prebuilt Cortex-M ELF for --board instead of a model "
                        "(layers from tm_prof_begin/end or TFLM MicroProfiler events)")
    e.add_argument("--stop-at", action="append", metavar="SYMBOL",
                   help="with --elf: end the run when this function is entered (repeatable); "
                        "runs also end at a semihosting exit or an idle loop; C++ names "
                        "may be demangled (ns::f or ns::f(int))")
    e.add_argument("--span", metavar="START:END",
                   help="with --elf: measure from the entry of function START to the next "
                        "entry of END (one row per span; the function profile covers the "
                        "spans only)")
    e.add_argument("--span-count", type=non_negative_int, default=1, metavar="N",
                   help="with --span: stop after N spans (default 1; 0 = run to the "
                        "firmware's end and report every span)")
    add_runtime_args(e)
    add_io_arg(e)
    e.add_argument("--compare", metavar="BOARDS", default=None,
                   help="estimate on several boards (comma-separated names, or 'all') and "
                        "print one row per board instead of the layer table")
    e.add_argument("--compare-runtimes", action="store_true",
                   help="one per-layer table of tinymeter's reference and optimized kernels "
                        "and every TFLM library registered for the board's core (or "
                        "--tflm-lib): instructions, cycles, speedup")
    e.add_argument("--report", type=Path, metavar="FILE",
                   help="also write a one-page report (FILE.md: Markdown + plot PNG beside it; "
                        "FILE.html: self-contained) with the totals, per-layer table and plot")
    e.add_argument("--calibration", metavar="FILE|none", default=None,
                   help="cost-model calibration to apply: a file written by `tinymeter "
                        "calibrate`, or 'none' for the datasheet model (default: the board's "
                        "stored calibration, if any; the choice is printed; also with "
                        "--compare and --compare-runtimes)")
    e.add_argument("--json", type=Path, help="write the full report as JSON ('-': stdout)")
    e.add_argument("--csv", type=Path, help="write the per-layer table (with --compare: one row "
                   "per board) as CSV ('-': stdout)")
    e.add_argument("--profile", type=non_negative_int, nargs="?", const=15, default=0,
                   help="also show the top N functions (default 15)")
    e.add_argument("--budget", type=positive_int, default=DEFAULT_BUDGET_INSTRUCTIONS,
                   help="instruction budget before the firmware is declared hung")
    e.add_argument("--timeout", type=positive_float, default=DEFAULT_TIMEOUT_S,
                   help="wall-clock limit in seconds")
    e.add_argument("-q", "--quiet", action="store_true",
                   help="only the result: no progress, no 'wrote' lines")
    e.set_defaults(func=_cmd_estimate)


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    i = sub.add_parser("inspect", help="list ops, MACs, parameters and tensor sizes of a model")
    add_model_arg(i)
    i.add_argument("--json", type=Path, help="write the summary, defects and per-op support as "
                   "JSON ('-': stdout)")
    i.add_argument("-q", "--quiet", action="store_true", help="no 'wrote' lines")
    i.add_argument("--tflm-lib", dest="tflm_lib", type=Path,
                   help="also say which ops this TFLM static library registers")
    i.add_argument("--strict", action="store_true",
                   help="exit with status 1 if any operator will not run on tinymeter's runtime")
    i.set_defaults(func=_cmd_inspect)


def _add_convert(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("convert", help="convert a Keras model (.keras/.h5) or SavedModel "
                                       "directory to .tflite and report quantization error")
    c.add_argument("model", type=Path, help="MODEL.keras, MODEL.h5 or SAVED_MODEL_DIR")
    c.add_argument("--quantize", default="int8", choices=("int8", "int16x8", "float32"),
                   help="int8 (default), int16x8 (int16 activations, int8 weights) or float32")
    c.add_argument("--calibration-data", dest="calibration_data", type=Path,
                   help="representative inputs: FILE.npy (N, *input_shape) or FILE.npz (one "
                        "array per input); default: seeded synthetic data, with a warning")
    c.add_argument("-o", "--out", type=Path, help="output .tflite (default MODEL-QUANT.tflite)")
    c.add_argument("--seed", type=int, default=0, help="seed of the synthetic calibration set")
    c.add_argument("--json", type=Path, help="write the conversion and accuracy report as JSON")
    c.set_defaults(func=_cmd_convert)


def _add_build(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("build", help="build the firmware ELF for a model and board")
    add_model_arg(b)
    add_build_args(b)
    b.add_argument("--runs", type=run_count, default=1,
                   help="inferences the firmware runs on hardware")
    add_runtime_args(b)
    add_io_arg(b)
    b.add_argument("--out", type=Path, required=True, help="output directory")
    b.set_defaults(func=_cmd_build)


def _add_boards(sub: argparse._SubParsersAction) -> None:
    bo = sub.add_parser("boards", help="list the shipped board files, or describe one")
    bo.add_argument("board", nargs="?", default=None,
                    help="board name or file: show its memory map, clocks, UART, marker "
                         "pins and probe names")
    bo.set_defaults(func=_cmd_boards)


def _add_zoo(sub: argparse._SubParsersAction) -> None:
    z = sub.add_parser("zoo", help="the model zoo")
    zsub = z.add_subparsers(dest="zoo_cmd", required=True)
    zsub.add_parser("list", help="list zoo models")
    zb = zsub.add_parser("build", help="build (or fetch from cache) a zoo model's .tflite")
    zb.add_argument("name")
    zb.add_argument("--quantize", default="int8", choices=("int8", "float32"))
    z.set_defaults(func=_cmd_zoo)


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    sw = sub.add_parser("sweep", help="implementation-aware NAS on digits: accuracy vs emulated latency")
    sw.add_argument("--config", type=Path, help="JSON file of sweep settings (flags override it)")
    sw.add_argument("--name", help="sweep name in the results database (default digits)")
    sw.add_argument("--widths", help="channel counts, e.g. 4,5,6,7,8,12,16")
    sw.add_argument("--depths", help="conv blocks, e.g. 1,2,3")
    sw.add_argument("--kernel-sizes", dest="kernel_sizes", help="kernel sizes, e.g. 3,5")
    sw.add_argument("--epochs", type=int, help="training epochs per candidate (default 3)")
    sw.add_argument("--seed", type=int)
    sw.add_argument("--max-candidates", dest="max_candidates", type=int,
                    help="evaluate a deterministic subset of this many candidates")
    sw.add_argument("--boards", help=f"comma-separated boards (default {DEFAULT_BOARD})")
    sw.add_argument("--kernels", dest="kernel_sets", help="kernel sets, e.g. optimized,reference "
                    "(default optimized); tflm, tflm-cmsis-nn, tflm-reference run the "
                    "candidates in the TFLM library registered for each board's core")
    sw.add_argument("--executor", default="process",
                    help="process (local pool, default), serial, or dask://HOST:PORT")
    sw.add_argument("--workers", type=positive_int, help="local worker processes (default: CPU count)")
    sw.add_argument("--out", type=Path, default=Path("sweep-results"),
                    help="output directory for plots and CSV (default sweep-results)")
    sw.add_argument("--db", type=Path, help="results database (default OUT/sweep.sqlite); "
                    "re-running resumes from it")
    sw.add_argument("--metric", default="ms", choices=("ms", "energy_uj", "arena_bytes", "flash_bytes"),
                    help="cost axis of the Pareto front (default ms)")
    sw.add_argument("--retry-failed", action="store_true", help="re-run candidates that failed before")
    sw.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sw.set_defaults(func=_cmd_sweep)


def _add_check(sub: argparse._SubParsersAction) -> None:
    ck = sub.add_parser("check", help="CI gate: fail if latency, energy, RAM, arena or flash grew "
                        "past a limit, or a baseline entry was not measured")
    ck.add_argument("results", nargs="+",
                    help="estimate or measure JSON reports (--json of either) or .tflite models "
                         "to estimate")
    ck.add_argument("--baseline", type=Path, required=True, help="baseline JSON")
    ck.add_argument("--max-regression", type=non_negative_float, default=5.0, metavar="PCT",
                    help="allowed growth in percent (default 5)")
    ck.add_argument("--metrics", help="comma-separated subset of "
                    "ms,energy_uj,arena_bytes,ram_bytes,flash_bytes (default all)")
    ck.add_argument("--allow-missing", action="store_true",
                    help="baseline entries absent from the results pass (default: they fail)")
    ck.add_argument("--junit", type=Path, metavar="FILE",
                    help="also write the verdict per model as JUnit XML for CI systems")
    ck.add_argument("--board", action="append", help="board(s) for .tflite inputs (repeatable)")
    ck.add_argument("--kernels", default="reference", choices=("reference", "optimized"),
                    help="kernel set for .tflite inputs")
    add_runtime_args(ck)
    ck.add_argument("--update-baseline", action="store_true",
                    help="write the current results as the new baseline instead of checking")
    ck.set_defaults(func=_cmd_check)


def _add_validate(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("validate", help="run the firmware in the emulator and compare its "
                       "outputs with the tflite-micro interpreter (and TensorFlow for float "
                       "models); exit 1 on mismatch")
    add_model_arg(v)
    add_build_args(v)
    add_runtime_args(v)
    v.add_argument("--inputs", type=Path, default=None,
                   help=".npy (one input) or .npz (arrays named like the inputs, or arr_0...) "
                        "holding one sample or a batch (leading axis); float data for int8 "
                        "inputs is quantized (default: seeded random inputs)")
    v.add_argument("--samples", type=positive_int, default=4,
                   help="random samples without --inputs (default 4)")
    v.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    v.add_argument("--json", type=Path, help="write the result as JSON")
    v.add_argument("--budget", type=positive_int, default=DEFAULT_BUDGET_INSTRUCTIONS,
                   help="instruction budget before the firmware is declared hung")
    v.add_argument("--timeout", type=positive_float, default=DEFAULT_TIMEOUT_S,
                   help="wall-clock limit in seconds")
    v.set_defaults(func=_cmd_validate)


def _add_export(sub: argparse._SubParsersAction) -> None:
    x = sub.add_parser("export", help="export tinymeter's runtime for a model as a C library "
                       "(model source, kernels for the core, one API header, README)")
    add_model_arg(x)
    x.add_argument("--board", default=DEFAULT_BOARD,
                   help=f"board name or file: its core picks the kernels (default {DEFAULT_BOARD})")
    x.add_argument("--kernels", default="optimized", choices=("reference", "optimized"),
                   help="kernel set (default optimized; cores without DSP get reference)")
    x.add_argument("--out", type=Path, required=True, help="output directory")
    x.set_defaults(func=_cmd_export)


def _add_tflm(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("tflm", help="register prebuilt TFLM libraries (used by --runtime tflm)")
    tsub = t.add_subparsers(dest="tflm_cmd", required=True)
    ta = tsub.add_parser("add", help="register a library for a core (replaces the one of the "
                                     "same core and kernel set)")
    ta.add_argument("lib", type=Path, help="libtensorflow-microlite.a")
    ta.add_argument("--core", required=True, help="core the library was built for, e.g. cortex-m4f")
    ta.add_argument("--root", type=Path, required=True,
                    help="the TFLM source checkout it was built from (for the headers)")
    ta.add_argument("--kernels", choices=("cmsis-nn", "reference"), default=None,
                    help="kernel set (default: detected from the library's symbols)")
    ta.add_argument("--project", action="store_true",
                    help="write ./tinymeter.toml instead of the user's config file")
    tr = tsub.add_parser("remove", help="unregister the libraries of a core")
    tr.add_argument("--core", required=True)
    tr.add_argument("--kernels", choices=("cmsis-nn", "reference"), default=None,
                    help="only this kernel set (default: all of the core)")
    tr.add_argument("--project", action="store_true", help="edit ./tinymeter.toml")
    tsub.add_parser("list", help="list the registered libraries (project file first)")
    t.set_defaults(func=_cmd_tflm)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinymeter", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"tinymeter {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_add_estimate, _add_inspect, _add_convert, _add_build, _add_boards, _add_zoo,
                _add_sweep, _add_check, _add_validate, _add_export, _add_tflm):
        add(sub)

    add_hw_subcommands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status (0 ok, 1 check failed, 2 user error)."""
    parser = build_parser()
    args = parser.parse_args(join_opt_values(sys.argv[1:] if argv is None else argv))
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except TinymeterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`tinymeter ... | head`): not an error of ours. Point
        # stdout at devnull so the interpreter's final flush does not complain again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        # A path the user gave that the system refuses (unwritable --out, full disk, a
        # directory where a file was expected): the user's to fix, so one line, not a trace.
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
