"""`tinymeter` subcommands of the hardware side: ``flash``, ``measure``, ``calibrate``.

Thin adapters: parse arguments, build the link (a real board through pyOCD/OpenOCD
and a serial port, or the virtual board), call :mod:`tinymeter.apps.measure` and
:mod:`tinymeter.analysis.calibrate`, print.  Errors are raised as ``TinymeterError`` s and
printed by ``tinymeter.cli.main.main``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tinymeter.analysis import plots
from tinymeter.analysis.calibrate import DEFAULT_REGULARIZATION, NOT_SEPARABLE, calibrate, save_calibration
from tinymeter.apps.estimate import build_model, resolve_model
from tinymeter.apps.measure import (
    campaign,
    emulate_run,
    measure_image,
    measure_model,
    samples_from_runs,
)
from tinymeter.apps.microbench import absent_instructions, measure_microbench
from tinymeter.apps.resultsdb import ResultsDB, default_db_path
from tinymeter.apps.tflm import build_tflm_image, firmware_image
from tinymeter.cli.args import (
    add_build_args,
    add_model_arg,
    add_runtime_args,
    non_negative_float,
    positive_float,
    positive_int,
    run_count,
    tflm_library,
    uses_tflm,
)
from tinymeter.core.boards import Board, load_board
from tinymeter.core.calibrations import calibration_file, choose_calibration
from tinymeter.core.errors import ConfigError
from tinymeter.core.files import is_stdout, write_output
from tinymeter.core.texttable import text_table
from tinymeter.firmware.build import BuildConfig, effective_kernels
from tinymeter.hw.device import HardwareDevice, MeasureConfig, ProbeLink
from tinymeter.hw.power.csvio import read_csv
from tinymeter.hw.power.monitors import JoulescopeMonitor, PPK2Monitor
from tinymeter.hw.probe import ProbeConfig, ProbeRunner
from tinymeter.hw.virtual import VirtualBoard, VirtualPowerMonitor, VirtualTiming
from tinymeter.models.demomodels import write_demo_models
from tinymeter.sim.costmodel import chosen_cost_model, datasheet_cost_model, parameter_vector
from tinymeter.sim.energy import ENERGY_PARAMETERS, energy_features

log = logging.getLogger(__name__)

PROBES = ("pyocd", "openocd", "virtual")
POWER = ("none", "joulescope", "ppk2", "virtual")


def _probe_args(sp: argparse.ArgumentParser, virtual: bool = True) -> None:
    sp.add_argument("--probe", default="pyocd", choices=PROBES if virtual else PROBES[:2],
                    help="flashing tool (default pyocd)" + ("; 'virtual' = the emulator behind a "
                                                            "pty" if virtual else ""))
    sp.add_argument("--uid", help="probe unique id / adapter serial (several probes plugged in)")
    sp.add_argument("--probe-timeout", type=positive_float, default=120.0,
                    help="seconds allowed for one flash or reset (default 120)")


def _measure_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("-q", "--quiet", action="store_true",
                    help="only the result: no progress, no 'wrote'/'plots in' lines")
    sp.add_argument("--port", help="serial device of the board's UART (e.g. /dev/ttyACM0)")
    sp.add_argument("--baud", type=positive_int, help="baud rate (default: the board file's)")
    sp.add_argument("--runs", type=int, default=5, help="measured inferences (default 5)")
    sp.add_argument("--warmup", type=int, default=1, help="warm-up inferences dropped (default 1)")
    sp.add_argument("--timeout", type=positive_float, default=120.0, help="seconds per boot (default 120)")
    sp.add_argument("--idle-timeout", type=positive_float, default=30.0,
                    help="seconds without serial output before giving up (default 30)")
    sp.add_argument("--retries", type=int, default=2, help="extra resets when a boot yields too "
                    "few good reports (default 2)")
    sp.add_argument("--db", type=Path, help="results database (default: results.sqlite in the cache)")
    sp.add_argument("--remeasure", action="store_true",
                    help="measure again even if this exact image was measured before")
    sp.add_argument("--power", default="none", choices=POWER, help="power monitor (default none)")
    sp.add_argument("--power-port", help="serial port of the PPK2 / serial of the Joulescope")
    sp.add_argument("--power-csv", type=Path,
                    help="instead of a monitor: a CSV trace exported by any instrument")
    sp.add_argument("--virtual-seed", type=int, default=2024,
                    help="virtual board: seed of its hidden timing model")
    sp.add_argument("--virtual-noise", type=non_negative_float, default=0.0005,
                    help="virtual board: relative per-run jitter (default 0.0005)")
    sp.add_argument("--plot", type=Path, help="write PNG plots into this directory")


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    """Register the hardware subcommands on the main parser's subparsers."""
    f = sub.add_parser("flash", help="build a model's firmware and flash it with pyOCD or OpenOCD")
    add_model_arg(f)
    add_build_args(f)
    _probe_args(f, virtual=False)
    f.add_argument("--runs", type=run_count, default=1, help="inferences the firmware runs per boot")
    add_runtime_args(f)
    f.set_defaults(func=_cmd_flash)

    m = sub.add_parser("measure", help="measure per-layer cycles (and energy) on a board")
    add_model_arg(m)
    add_build_args(m)
    _probe_args(m)
    _measure_args(m)
    m.add_argument("--json", type=Path, help="write the measurement as JSON")
    add_runtime_args(m)
    m.set_defaults(func=_cmd_measure)

    c = sub.add_parser("calibrate", help="fit the board's cost-model parameters to measurements")
    c.add_argument("models", nargs="*", type=Path,
                   help=".tflite files (default: the built-in demo set, small models with "
                        "different layer mixes)")
    add_build_args(c)
    _probe_args(c)
    _measure_args(c)
    c.add_argument("--out", type=Path, help="calibration file to write (default: the user's "
                   "data directory, keyed by board and --uid; estimates then use it)")
    c.add_argument("--no-save", action="store_true", help="fit and report only")
    c.add_argument("--no-microbench", action="store_true",
                   help="calibrate from the models only, without the microbenchmark firmware "
                        "(most parameters then stay unidentified)")
    c.add_argument("--regularization", type=non_negative_float, default=None,
                   help="ridge weight toward the datasheet values (default 1e-8)")
    c.add_argument("--json", type=Path, help="write the calibration report as JSON")
    add_runtime_args(c)
    c.set_defaults(func=_cmd_calibrate)


# -- helpers -------------------------------------------------------------------------------------


def _probe_config(args: argparse.Namespace) -> Any:
    return ProbeConfig(tool=args.probe, uid=args.uid, timeout_s=args.probe_timeout)


@contextmanager
def _device(args: argparse.Namespace, board: Board) -> Iterator[HardwareDevice]:
    """The board to talk to: a real one (probe + serial) or the virtual board."""
    if args.probe == "virtual":
        timing = VirtualTiming.for_board(board, seed=args.virtual_seed, noise=args.virtual_noise)
        vb = VirtualBoard(board, timing)
        try:
            yield HardwareDevice(vb)
        finally:
            vb.close()
        return
    if not args.port:
        raise ConfigError("--port is required with a real board (the UART's serial device)")

    yield HardwareDevice(ProbeLink(board, args.port, _probe_config(args), args.baud))


def _power_factory(args: argparse.Namespace, link: Any) -> Callable[[], Any] | None:
    if args.power_csv is not None:
        path = args.power_csv

        class _CsvMonitor:
            def start(self) -> None:
                return None

            def stop(self) -> Any:
                return read_csv(path, voltage=link.board.power.voltage)

            def close(self) -> None:
                return None

        return _CsvMonitor
    if args.power == "none":
        return None
    if args.power == "virtual":
        if not isinstance(link, VirtualBoard):
            raise ConfigError("--power virtual needs --probe virtual")
        return lambda: VirtualPowerMonitor(link)
    if args.power == "joulescope":
        return lambda: JoulescopeMonitor(serial=args.power_port)

    if not args.power_port:
        raise ConfigError("--power ppk2 needs --power-port (the PPK2's serial device)")
    return lambda: PPK2Monitor(args.power_port, int(link.board.power.voltage * 1000))


def _measure_config(args: argparse.Namespace) -> Any:
    return MeasureConfig(runs=args.runs, warmup=args.warmup, timeout_s=args.timeout,
                         idle_timeout_s=args.idle_timeout, retries=args.retries)


def _db(args: argparse.Namespace) -> Any:
    return ResultsDB(args.db or default_db_path())


def _wrote(args: argparse.Namespace, path: Path, what: str = "wrote") -> None:
    """The "wrote FILE" line of a file output (stderr; nothing for stdout or with -q)."""
    if not is_stdout(path) and not getattr(args, "quiet", False):
        print(f"{what} {path}", file=sys.stderr)


def _pct(x: float) -> str:
    return f"{100 * x:6.2f}%"


# -- commands ----------------------------------------------------------------------------------


def _cmd_flash(args: argparse.Namespace) -> int:
    board = load_board(args.board)
    config = BuildConfig(kernels=args.kernels, opt=args.opt, runs=args.runs, io="uart")
    runner = ProbeRunner(board, _probe_config(args))
    with _tflm_image(args, board, resolve_model(args.model), config) as tflm:
        image = tflm or build_model(resolve_model(args.model), board, config)
        runner.flash(image.elf)
    print(f"flashed {image.elf} ({image.flash_bytes} B) to {board.name} with {args.probe}")
    return 0


@contextmanager
def _tflm_image(args: argparse.Namespace, board: Board, model_path: Path,
                config: Any) -> Iterator[Any]:
    """With ``--runtime tflm``/``--tflm-lib``: the TFLM harness's hardware image (arena
    sized) as a FirmwareImage, alive while the context is; else None."""
    if not uses_tflm(args):
        yield None
        return

    library = tflm_library(args, board)
    with tempfile.TemporaryDirectory(prefix="tm-tflm-") as work:
        built = build_tflm_image(model_path, board, library, config,
                                 arena_bytes=args.tflm_arena, work=Path(work))
        yield firmware_image(built, model_path, config)


def _measurement_text(stored: Any, estimated: np.ndarray, board: Board, db_path: Path,
                      est_energy: np.ndarray | None = None) -> str:
    """The measure result: per-layer measured vs estimated cycles (and measured energy,
    beside the energy-by-activity estimate when given), totals."""
    ms = 1e3 / board.clock_hz
    energy = stored.energy_uj is not None
    est_e = est_energy if energy and est_energy is not None else None
    headers = ["#", "op", "measured cycles", "ms", "est. cycles", "error",
               *(["energy uJ"] if energy else []), *(["est. uJ", "error"] if est_e is not None
                                                      else [])]

    def energy_cells(measured: float | None, est: float) -> list[str]:
        if est_e is None:
            return []
        err = _pct((est - measured) / measured).strip() if measured else "-"
        return [f"{est:.3f}", err]

    rows = []
    for i, (op, cyc) in enumerate(zip(stored.ops, stored.cycles)):
        uj = stored.layer_energy_uj[i]
        rows.append([str(i), op, f"{cyc:,.0f}", f"{cyc * ms:.4f}", f"{estimated[i]:,.0f}",
                     _pct((estimated[i] - cyc) / cyc).strip(),
                     *([f"{uj:.3f}" if uj is not None else "-"] if energy else []),
                     *energy_cells(uj, float(est_e[i]) if est_e is not None else 0.0)])
    total_err = (estimated.sum() - stored.total_cycles) / stored.total_cycles
    footer = ["", "total", f"{stored.total_cycles:,.0f}", f"{stored.total_cycles * ms:.4f}",
              f"{estimated.sum():,.0f}", _pct(total_err).strip(),
              *([f"{stored.energy_uj:.3f}"] if energy else []),
              *energy_cells(stored.energy_uj, float(est_e.sum()) if est_e is not None else 0.0)]
    out = [f"{stored.model} on {board.name}: {stored.runs} runs (median), measurement "
           f"{stored.id} in {db_path}", *text_table(headers, rows, left=(1,), footer=footer)]
    if energy:
        out.append(f"energy {stored.energy_uj:.3f} uJ per inference")
    if board.hardware_clock_hz != board.clock_hz:
        out.append(f"note: ms are at the modelled {board.clock_hz / 1e6:g} MHz; the hardware "
                   f"image ran at {board.hardware_clock_hz / 1e6:g} MHz (cycles are the same, "
                   "energy is not)")
    return "\n".join(out)


def _cmd_measure(args: argparse.Namespace) -> int:
    board = load_board(args.board)
    path = resolve_model(args.model)
    config = _measure_config(args)
    with _db(args) as db, _device(args, board) as device:
        factory = _power_factory(args, device.link)
        power = factory() if factory else None
        build = BuildConfig(kernels=args.kernels, opt=args.opt, runs=config.firmware_runs,
                            io="uart")
        try:
            with _tflm_image(args, board, path, build) as tflm:
                if tflm is not None:
                    image = tflm
                    stored = measure_image(image, path, device, db, config, power=power,
                                           resume=not args.remeasure)
                else:
                    image, stored = measure_model(path, device, db, config, build=build,
                                                  power=power, resume=not args.remeasure)

                model = chosen_cost_model(board, choose_calibration(board, None, args.uid))
                features, _cycles, activity = emulate_run(image, model.params)
                estimated = features @ parameter_vector(model.params)
                # energy by activity at the modelled clock: comparable when the image ran at it
                est_energy = (energy_features(estimated / board.clock_hz, activity)
                              @ model.energy_parameters.vector()
                              if board.hardware_clock_hz == board.clock_hz else None)
        finally:
            if power is not None:
                power.close()
    ms = 1e3 / board.clock_hz
    # the result goes to stdout unless the JSON does (--json -)
    print(_measurement_text(stored, estimated, board, db.path, est_energy),
          file=sys.stderr if is_stdout(args.json) else sys.stdout)
    if args.json:
        data = {"board": board.name, "model": stored.model, "measurement_id": stored.id,
                "model_path": str(Path(path).resolve()),
                "kernels": (tflm_library(args, board).label if uses_tflm(args)
                            else effective_kernels(args.kernels, board.core)),
                "runtime": "tflm" if uses_tflm(args) else "own",
                "ms": stored.total_cycles * ms,
                "runs": stored.runs, "ops": stored.ops, "measured_cycles": stored.cycles,
                "estimated_cycles": estimated.tolist(), "total_cycles": stored.total_cycles,
                "energy_uj": stored.energy_uj, "layer_energy_uj": stored.layer_energy_uj,
                "estimated_layer_energy_uj": est_energy.tolist() if est_energy is not None else None,
                "tools": stored.tools, "image_sha256": stored.image_sha256}
        write_output(args.json, json.dumps(data, indent=2) + "\n")
        _wrote(args, args.json)
    if args.plot:
        title = (f"{stored.model} on {board.name} ({args.kernels} kernels, cost model "
                 f"{model.name}, {model.source})")
        plots.estimated_vs_measured(stored.cycles, estimated, args.plot / "estimated_vs_measured.png",
                                    labels=[f"{i}" for i in range(len(stored.ops))],
                                    title=title)
        plots.layer_latency_bars(stored.ops, [c * ms for c in stored.cycles],
                                 args.plot / "layer_latency.png",
                                 estimated_ms=[c * ms for c in estimated], title=title)
        _wrote(args, args.plot, "plots in")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    board = load_board(args.board)
    datasheet = datasheet_cost_model(board)
    prior = datasheet.params
    samples = _calibration_samples(args, board, prior)
    reg = args.regularization if args.regularization is not None else DEFAULT_REGULARIZATION
    result = calibrate(samples, prior, regularization=reg, absent=absent_instructions(board.core),
                       energy_prior=datasheet.energy_parameters)
    # the report goes to stdout unless the JSON does (--json -)
    out = sys.stderr if is_stdout(args.json) else sys.stdout
    with contextlib.redirect_stdout(out):
        _print_calibration(board, samples, result)
    if result.active_mw is not None and board.hardware_clock_hz != board.clock_hz:
        # Cycles do not depend on the clock, power does: a power fitted at the hardware
        # image's clock would misstate every estimate at the modelled clock.
        print(f"note: energy was measured at {board.hardware_clock_hz / 1e6:g} MHz (the "
              f"hardware image's clock); the fitted {result.active_mw:.1f} mW and energy "
              f"parameters are not saved, estimates are for {board.clock_hz / 1e6:g} MHz",
              file=out)
        result = replace(result, active_mw=None, energy=None)
    if not args.no_save:
        # The board's latest fit (what estimates use), and the chip's own when the probe
        # is named (what measurements through that probe use).
        paths = [args.out] if args.out else [calibration_file(board.name)] + (
            [calibration_file(board.name, args.uid)] if args.uid else [])
        for path in paths:
            save_calibration(result, path, board.name)
            _wrote(args, path)
    if args.json:
        write_output(args.json, json.dumps({"board": board.name, **result.summary()}, indent=2)
                     + "\n")
        _wrote(args, args.json)
    if args.plot:
        _calibration_plots(args.plot, samples, result, board, f"{args.kernels} kernels")
        _wrote(args, args.plot, "plots in")
    return 0


def _tflm_image_factory(args: argparse.Namespace, board: Board,
                        work: Path) -> Callable[[Path, Any], Any] | None:
    """With ``--runtime tflm``/``--tflm-lib``: build a model's TFLM hardware image in
    *work* (kept until the campaign ends); else None (tinymeter's runtime)."""
    if not uses_tflm(args):
        return None

    library = tflm_library(args, board)

    def image_for(model_path: Path, config: Any) -> Any:
        built = build_tflm_image(model_path, board, library, config,
                                 arena_bytes=args.tflm_arena, work=work / model_path.stem)
        return firmware_image(built, model_path, config)

    return image_for


def _calibration_samples(args: argparse.Namespace, board: Board, prior: Any) -> list:
    """Measure the models (default: the demo set) and, unless --no-microbench, the
    microbenchmark firmware; one sample per firmware."""
    models = list(args.models)
    with tempfile.TemporaryDirectory(prefix="tm-demo-") as tmp:
        if not models:
            models = write_demo_models(Path(tmp))
        if len(models) < 2:
            raise ConfigError("calibration needs at least two models (leave-one-out)")
        config = _measure_config(args)
        with _db(args) as db, _device(args, board) as device:
            link = device.link
            runs = campaign(models, device, db, config, prior,
                            build=BuildConfig(kernels=args.kernels, opt=args.opt),
                            power_factory=_power_factory(args, link), resume=not args.remeasure,
                            progress=sys.stderr.isatty() and not args.quiet,
                            image_for=_tflm_image_factory(args, board, Path(tmp)))
            samples = samples_from_runs(runs)
            if not args.no_microbench:
                factory = _power_factory(args, link)
                power = factory() if factory else None
                try:
                    mb, _stored = measure_microbench(device, db, config, prior,
                                                     resume=not args.remeasure, power=power)
                finally:
                    if power is not None:
                        power.close()
                samples.append(mb)
    return samples


def _print_calibration(board: Board, samples: list, result: Any) -> None:
    """Errors before/after, every parameter with its datasheet value, and what could
    not be identified (and why)."""
    n_models = sum(s.role == "model" for s in samples)
    n_mb = sum(len(s.measured) for s in samples if s.role == "microbench")
    print(f"calibration of {board.name} ({board.core.name}) from {n_models} models, "
          f"{sum(len(s.measured) for s in samples if s.role == 'model')} layers"
          + (f" + {n_mb} microbenchmarks" if n_mb else " (no microbenchmarks)"))
    rows = [("layer error (mean)", result.before.layer_mape, result.after.layer_mape),
            ("layer error (max)", result.before.layer_max, result.after.layer_max),
            ("model latency error", result.before.model_mape, result.after.model_mape),
            ("leave-one-out latency error", result.loo_before.model_mape,
             result.loo_after.model_mape)]
    print("\n".join(text_table(["error", "before", "after"],
                               [[label, _pct(b).strip(), _pct(a).strip()] for label, b, a in rows],
                               left=(0,))))
    identified = result.fit.identified()
    params = [[name, f"{p0:.3f}", f"{p1:.3f}", _pct(float(se)).strip(),
               "yes" if identified[name] else "no"]
              for name, p0, p1, se in zip(result.fit.names, parameter_vector(result.prior),
                                          result.fit.theta, result.fit.stderr)]
    print("\n".join(text_table(["parameter", "datasheet", "fitted", "stderr", "identified"],
                               params, left=(0, 4))))
    _print_mechanisms(result.mechanisms, result.datasheet_gap)
    if result.unidentified:
        print("not identified:")
        for name, why in result.unidentified.items():
            print(f"  {name}: {why}")
    else:
        print("every parameter identified")
    if NOT_SEPARABLE:
        print("not separable by construction (datasheet split kept):")
        for name, why in NOT_SEPARABLE.items():
            print(f"  {name}: {why}")
    if result.active_mw is not None:
        print(f"active power {result.active_mw:.2f} mW (datasheet {board.power.active_mw:.2f} mW)")
    if result.energy is not None:
        _print_energy_fit(result.energy)


def _print_energy_fit(fit: Any) -> None:
    """The energy-by-activity fit: per-layer and per-model energy error before (board
    file priors) and after, and each parameter against its prior."""
    print("energy by activity (per-layer energies from the marker-split power trace):")
    rows = [("layer energy error (mean)", fit.before.layer_mape, fit.after.layer_mape),
            ("layer energy error (max)", fit.before.layer_max, fit.after.layer_max),
            ("model energy error", fit.before.model_mape, fit.after.model_mape)]
    print("\n".join(text_table(["error", "before", "after"],
                               [[label, _pct(b).strip(), _pct(a).strip()] for label, b, a in rows],
                               left=(0,))))
    units = {"core_mw": "mW", "flash_read_nj": "nJ", "sram_access_nj": "nJ"}
    params = [[name, units[name], f"{getattr(fit.prior, name):.4g}",
               f"{getattr(fit.params, name):.4g}",
               _pct(fit.stderr.get(name, 0.0)).strip() if fit.exercised.get(name) else "-",
               "yes" if fit.exercised.get(name) else "no (kept at the prior)"]
              for name in ENERGY_PARAMETERS]
    print("\n".join(text_table(["energy parameter", "unit", "board file", "fitted", "stderr",
                                "exercised"], params, left=(0, 1, 5))))


def _print_mechanisms(mechanisms: Any, gap: float) -> None:
    """The mechanisms ranked by how far the fit moved them from the datasheet: where the
    datasheet model was off on this board, and how much of the gap they explain."""
    if not mechanisms:
        return
    moved = sum(m.moved for m in mechanisms)
    print(f"the datasheet model is {100 * abs(gap):.2f}% "
          f"{'short of' if gap > 0 else 'over'} the models' measured cycles (mean); the "
          f"mechanisms below move the estimate by {100 * moved:+.2f}%")
    print("mechanisms, ranked by how far the fit moved them from the datasheet "
          "(change of the models' cycles):")
    rows = []
    for rank, m in enumerate(mechanisms, 1):
        ratio = f"{m.ratio:.3f}x" if m.ratio is not None else "-"
        largest = (f"{m.largest} {m.largest_ratio:.3f}x" if m.largest_ratio is not None
                   else m.largest)
        rows.append([str(rank), m.mechanism, f"{100 * m.share:.2f}%", f"{100 * m.moved:+.2f}%",
                     f"{100 * m.stderr:.2f}%", ratio, largest,
                     "yes" if m.determined else ("no" if m.exercised else "not exercised")])
    print("\n".join(text_table(["#", "mechanism", "datasheet share", "moved", "stderr",
                                "fitted/datasheet", "most moved parameter", "determined"],
                               rows, left=(1, 6))))
    top = mechanisms[0]
    print(f"largest correction: {top.mechanism} ({100 * top.moved:+.2f}% of the models' cycles)")


def _calibration_plots(out: Path, samples: list, result: Any, board: Board, impl: str) -> None:
    """The calibration's plots; titles name the board, *impl* (kernels) and cost model."""
    what = f"{board.name}, {impl}, cost model {datasheet_cost_model(board).name}"

    theta0 = parameter_vector(result.prior)
    measured = np.concatenate([s.measured for s in samples])
    before = np.concatenate([s.features @ theta0 for s in samples])
    after = np.concatenate([s.features @ result.fit.theta for s in samples])
    labels = [f"{s.model}:{i}" for s in samples for i in range(len(s.measured))]
    plots.estimated_vs_measured(measured, before, out / "estimated_vs_measured.png",
                                calibrated=after, labels=labels,
                                title=f"calibration on {what}: datasheet vs calibrated, "
                                      f"{len(samples)} firmwares")
    ms = 1e3 / board.clock_hz
    first = samples[0]
    plots.layer_latency_bars(list(first.ops), (first.measured * ms).tolist(),
                             out / f"layer_latency_{first.model}.png",
                             estimated_ms=(first.features @ result.fit.theta * ms).tolist(),
                             title=f"{first.model} on {what}: measured vs calibrated")
    if result.mechanisms:
        plots.mechanism_shifts(result.mechanisms, out / "mechanisms.png",
                               title=f"calibration on {what}: mechanisms ranked by how far the "
                                     "fit moved them from the datasheet")
    energy = [(s.measured.sum() * ms, s.energy_uj, s.model) for s in samples if s.energy_uj]
    if energy:
        plots.energy_vs_latency([e[0] for e in energy], [e[1] for e in energy],
                                out / "energy_vs_latency.png", labels=[e[2] for e in energy],
                                power_mw=result.active_mw,
                                title=f"energy vs latency per inference on {what}")
