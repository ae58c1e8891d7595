"""The `tinymeter` command line.

Every subcommand is a thin adapter: it parses arguments, calls library functions and
prints. Library code raises :class:`~tinymeter.errors.TinymeterError` for anything a
user can cause; this module turns that into one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from tinymeter import __version__
from tinymeter.errors import TinymeterError

log = logging.getLogger(__name__)

DEFAULT_BOARD = "nucleo-l4r5zi"


def _cmd_estimate(args: argparse.Namespace) -> int:
    from tinymeter.boards import load_board
    from tinymeter.firmware.build import BuildConfig
    from tinymeter.pipeline import estimate, resolve_model
    from tinymeter.report import format_table, write_csv, write_json

    board = load_board(args.board)
    model_path = resolve_model(args.model)
    config = BuildConfig(kernels=args.kernels, opt=args.opt)
    est = estimate(model_path, board, config, budget_instructions=args.budget,
                   timeout_s=args.timeout, progress=not args.quiet)
    print(format_table(est, top_functions=args.profile))
    if args.json:
        write_json(est, args.json)
        print(f"wrote {args.json}")
    if args.csv:
        write_csv(est, args.csv)
        print(f"wrote {args.csv}")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from tinymeter.models.inspect import format_summary, inspect_model
    from tinymeter.models.tflite import load_tflite
    from tinymeter.pipeline import resolve_model

    summary = inspect_model(load_tflite(resolve_model(args.model)))
    print(format_summary(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from tinymeter.boards import load_board
    from tinymeter.firmware.build import BuildConfig, FirmwareBuilder
    from tinymeter.firmware.codegen import generate
    from tinymeter.models.tflite import load_tflite
    from tinymeter.pipeline import resolve_model

    board = load_board(args.board)
    path = resolve_model(args.model)
    gen = generate(load_tflite(path), name=path.stem)
    image = FirmwareBuilder().build(gen, board, BuildConfig(kernels=args.kernels, opt=args.opt,
                                                             runs=args.runs), out_dir=args.out)
    print(f"{args.out}/firmware.elf: flash {image.flash_bytes} B, RAM {image.ram_bytes} B, "
          f"arena {gen.arena_bytes} B, {len(gen.layers)} layers")
    return 0


def _cmd_boards(args: argparse.Namespace) -> int:
    from tinymeter.boards import list_boards, load_board

    for name in list_boards():
        b = load_board(name)
        print(f"{b.name:18} {b.core.name:14} {b.clock_hz / 1e6:6g} MHz  flash "
              f"{b.text.size // 1024} KiB ({b.text.wait_states} WS)  RAM {b.data.size // 1024} KiB")
    return 0


def _cmd_zoo(args: argparse.Namespace) -> int:
    from tinymeter.models import zoo

    if args.zoo_cmd == "list":
        for name in zoo.list_models():
            print(name)
        return 0
    path = zoo.build_tflite(args.name, quantize=args.quantize)
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinymeter", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"tinymeter {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = p.add_subparsers(dest="command", required=True)

    def model_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("model", nargs="?", default=None,
                        help="a .tflite file or a zoo model name (default: the zoo's DS-CNN KWS)")

    def build_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--board", default=DEFAULT_BOARD,
                        help=f"board name or file (default {DEFAULT_BOARD})")
        sp.add_argument("--kernels", default="reference", choices=("reference", "optimized"))
        sp.add_argument("--opt", default="-O2", help="compiler optimization level (default -O2)")

    e = sub.add_parser("estimate", help="emulate a model and estimate per-layer latency and energy")
    model_arg(e)
    build_args(e)
    e.add_argument("--json", type=Path, help="write the full report as JSON")
    e.add_argument("--csv", type=Path, help="write the per-layer table as CSV")
    e.add_argument("--profile", type=int, nargs="?", const=15, default=0,
                   help="also show the top N functions (default 15)")
    e.add_argument("--budget", type=int, default=2_000_000_000,
                   help="instruction budget before the firmware is declared hung")
    e.add_argument("--timeout", type=float, default=600.0, help="wall-clock limit in seconds")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    e.set_defaults(func=_cmd_estimate)

    i = sub.add_parser("inspect", help="list ops, MACs, parameters and tensor sizes of a model")
    model_arg(i)
    i.add_argument("--json", type=Path)
    i.set_defaults(func=_cmd_inspect)

    b = sub.add_parser("build", help="build the firmware ELF for a model and board")
    model_arg(b)
    build_args(b)
    b.add_argument("--runs", type=int, default=1, help="inferences the firmware runs on hardware")
    b.add_argument("--out", type=Path, required=True, help="output directory")
    b.set_defaults(func=_cmd_build)

    bo = sub.add_parser("boards", help="list the shipped board files")
    bo.set_defaults(func=_cmd_boards)

    z = sub.add_parser("zoo", help="the model zoo")
    zsub = z.add_subparsers(dest="zoo_cmd", required=True)
    zsub.add_parser("list", help="list zoo models")
    zb = zsub.add_parser("build", help="build (or fetch from cache) a zoo model's .tflite")
    zb.add_argument("name")
    zb.add_argument("--quantize", default="int8", choices=("int8", "float32"))
    z.set_defaults(func=_cmd_zoo)

    from tinymeter.hw.cli import add_subcommands as add_hw_subcommands

    add_hw_subcommands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status (0 ok, 2 user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except TinymeterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
