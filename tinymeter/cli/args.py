"""Argument types and option groups shared by the `tinymeter` subcommands (model side in
:mod:`tinymeter.cli.main`, hardware side in :mod:`tinymeter.cli.hw`).

Kept apart from both so the hardware commands do not import the main parser (which
imports them): the CLI layer has no import cycle.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tinymeter.core.boards import DEFAULT_BOARD
from tinymeter.firmware.tflmconfig import resolve_library


def uses_tflm(args: argparse.Namespace) -> bool:
    """Whether a command runs the model in a TFLM library (``--runtime tflm`` or an
    explicit ``--tflm-lib``)."""
    return getattr(args, "runtime", "own") == "tflm" or getattr(args, "tflm_lib", None) is not None


def tflm_library(args: argparse.Namespace, board: Any) -> Any:
    """The TFLM library of a command: ``--tflm-lib`` with ``--tflm-root``/``--tflm-include``,
    else the one registered for the board's core (``tinymeter tflm add``)."""
    return resolve_library(board.core.name, lib=args.tflm_lib, root=args.tflm_root,
                           includes=args.tflm_include or (), kernels=args.tflm_kernels)


def _bounded(kind: type, low: float, inclusive: bool, what: str,
             high: float = math.inf) -> Callable[[str], Any]:
    """argparse type: *kind* parsed from text, finite and bounded, so a nonsense value
    (NaN, inf, negative) is one usage error naming the flag instead of a silently odd
    run or a crash after the work is done."""
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value > high or not (value >= low if inclusive else value > low):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    convert.__name__ = what  # argparse names the type in its messages
    return convert


positive_int = _bounded(int, 0, False, "a positive integer")


non_negative_int = _bounded(int, 0, True, "a non-negative integer")


positive_float = _bounded(float, 0.0, False, "a positive number")


non_negative_float = _bounded(float, 0.0, True, "a non-negative number")


#: Firmware run counts live in a uint32_t (TM_RUNS).
run_count = _bounded(int, 0, False, "a positive integer below 2^32", high=0xFFFFFFFF)


def add_model_arg(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("model", nargs="?", default=None,
                    help="a .tflite file or a zoo model name (default: the zoo's DS-CNN KWS)")


def add_build_args(sp: argparse.ArgumentParser) -> None:
    """--board, --kernels, --opt: what every subcommand that builds firmware takes."""
    sp.add_argument("--board", default=DEFAULT_BOARD,
                    help=f"board name or file (default {DEFAULT_BOARD})")
    sp.add_argument("--kernels", default="reference", choices=("reference", "optimized"))
    sp.add_argument("--opt", default="-O2", help="compiler optimization level (default -O2)")


def join_opt_values(argv: Sequence[str]) -> list[str]:
    """``--opt -O3`` as ``--opt=-O3``: argparse takes any ``-X`` word for an option and
    would reject the natural spelling with "expected one argument"."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--opt" and arg.startswith("-O"):
            out[-1] = f"--opt={arg}"
        else:
            out.append(arg)
    return out


def add_runtime_args(sp: argparse.ArgumentParser) -> None:
    """--runtime and the TFLM library options (registered libraries need none)."""
    sp.add_argument("--runtime", default="own", choices=("own", "tflm"),
                    help="run the model in tinymeter's runtime (default) or in a prebuilt "
                         "TFLM library (registered with `tinymeter tflm add`, or --tflm-lib)")
    sp.add_argument("--tflm-lib", type=Path, default=None,
                    help="a prebuilt TFLM static library (libtensorflow-microlite.a) to link "
                         "the TFLM harness against (implies --runtime tflm)")
    sp.add_argument("--tflm-root", type=Path, default=None,
                    help="the TFLM source checkout the library was built from (headers: the "
                         "root, downloads/flatbuffers/include and downloads/gemmlowp)")
    sp.add_argument("--tflm-include", type=Path, action="append",
                    help="extra TFLM include directory (repeatable)")
    sp.add_argument("--tflm-kernels", default=None, choices=("cmsis-nn", "reference"),
                    help="which registered library of the core (default: CMSIS-NN if "
                         "registered)")
    sp.add_argument("--tflm-arena", type=multiple_of_16, default=None,
                    help="TFLM tensor arena bytes (default: sized automatically from "
                         "TFLM's arena_used_bytes())")


def multiple_of_16(text: str) -> int:
    value = positive_int(text)
    if value % 16:
        raise argparse.ArgumentTypeError(f"expected a multiple of 16, got {text!r}")
    return value


def add_io_arg(sp: argparse.ArgumentParser) -> None:
    """--io: which firmware image (``flash``/``measure`` always use the hardware one)."""
    sp.add_argument("--io", default="semihosting", choices=("semihosting", "uart"),
                    help="report through semihosting (emulator/debugger; default) or build "
                         "the hardware image: board boot writes, report on the board UART, "
                         "power-monitor marker pins")
