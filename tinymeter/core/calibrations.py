"""Where calibrations live and which one an estimate uses.

``tinymeter calibrate`` fits the cost model of one board (one chip, behind one probe)
and stores the result in the user's data directory, keyed by board name and, when
the probe's unique id is known (``--uid``), by that too:

    $TINYMETER_DATA | $XDG_DATA_HOME/tinymeter | ~/.local/share/tinymeter
        calibrations/<board>.json          the board's calibration (latest fit)
        calibrations/<board>@<uid>.json    the fit of the chip behind probe <uid>

Why not next to the board file: shipped board files live inside site-packages (or a
git checkout), where a calibration is either unwritable or silently changes every
later estimate of everyone using that checkout. Estimates say which calibration they
used; ``--calibration FILE|none`` picks one explicitly.

Part of the core layer (paths only): the cost model that reads a calibration
(:func:`tinymeter.sim.costmodel.chosen_cost_model`) sits above it.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tinymeter.core.boards import Board
from tinymeter.core.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["CalibrationChoice", "calibration_file", "choose_calibration", "data_dir",
           "find_calibration"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


def data_dir() -> Path:
    """tinymeter's user data directory (``$TINYMETER_DATA`` overrides the XDG default)."""
    env = os.environ.get("TINYMETER_DATA")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "tinymeter"


def calibration_file(board_name: str, probe_uid: str | None = None) -> Path:
    """Where the calibration of *board_name* (behind probe *probe_uid*) is stored."""
    name = board_name if not probe_uid else f"{board_name}@{_UNSAFE.sub('_', probe_uid)}"
    return data_dir() / "calibrations" / f"{name}.json"


def find_calibration(board: Board, probe_uid: str | None = None) -> Path | None:
    """The stored calibration for *board*: the probe's own if there is one, else the
    board's, else None. A calibration left next to the board file by older versions is
    ignored (with a note on how to use it)."""
    candidates = ([calibration_file(board.name, probe_uid)] if probe_uid else []) + \
        [calibration_file(board.name)]
    for path in candidates:
        if path.is_file():
            return path
    if board.path is not None:
        legacy = board.path.with_name(f"{board.path.stem}.calibration.json")
        if legacy.is_file():
            log.warning("ignoring %s (calibrations now live in %s); pass --calibration %s "
                        "to use it", legacy, calibration_file(board.name).parent, legacy)
    return None


@dataclass(frozen=True)
class CalibrationChoice:
    """The calibration an estimate uses: a file, or none (the datasheet cost model)."""

    path: Path | None

    def describe(self) -> str:
        """One line for the user (stderr): which parameters the estimate stands on."""
        if self.path is None:
            return "calibration: none (datasheet cost model)"
        return f"calibration: {self.path}"



def choose_calibration(board: Board, option: str | None,
                       probe_uid: str | None = None) -> CalibrationChoice:
    """``--calibration``: None = the stored one if any, ``none`` = no calibration,
    anything else = that file, which must exist."""
    if option is None:
        return CalibrationChoice(find_calibration(board, probe_uid))
    if option.lower() == "none":
        return CalibrationChoice(None)
    path = Path(option).expanduser()
    if not path.is_file():
        raise ConfigError(f"calibration file {path} does not exist (give a file written by "
                          "`tinymeter calibrate`, or 'none')")
    return CalibrationChoice(path)
