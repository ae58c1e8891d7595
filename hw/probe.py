"""Flashing and resetting a board through a debug probe (pyOCD or OpenOCD).

The command lines are pure functions of the board file's ``[probe]`` table (tested for
their exact argv); :class:`ProbeRunner` is the thin I/O part that runs them with a
timeout and turns every failure into a :class:`~tinymeter.core.errors.HardwareError`
that names the cause (tool missing, no probe connected, timeout).

Tool syntax:

* pyOCD: ``pyocd load --target T --format elf [--uid ID] firmware.elf`` programs (and,
  unless ``--no-reset``, resets); ``pyocd reset --target T [--uid ID]`` resets and runs.
* OpenOCD: ``openocd -f <board cfg> [-c "adapter serial ID"] -c "program firmware.elf
  verify reset exit"`` (the ``program`` helper of OpenOCD's flash-programming
  chapter); a reset alone is ``-c "init" -c "reset run" -c "shutdown"``.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tinymeter.core.boards import Board
from tinymeter.core.errors import ConfigError, HardwareError, HardwareTimeout, ToolMissingError

log = logging.getLogger(__name__)

TOOLS = ("pyocd", "openocd")
INSTALL_HINT = {
    "pyocd": "install it with: pip install pyocd (then `pyocd pack install <target>` if the "
             "target is not built in)",
    "openocd": "install it with: apt-get install openocd",
}


@dataclass(frozen=True)
class ProbeConfig:
    """Which tool drives the probe, and which probe (when several are plugged in)."""

    tool: str = "pyocd"
    #: Probe unique id (pyOCD ``--uid``) / adapter serial number (OpenOCD ``adapter serial``).
    uid: str | None = None
    executable: str | None = None
    timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.tool not in TOOLS:
            raise ConfigError(f"unknown probe tool {self.tool!r}; choose from {', '.join(TOOLS)}")
        if self.timeout_s <= 0:
            raise ConfigError("probe timeout must be positive")

    @property
    def program(self) -> str:
        return self.executable or self.tool


def _pyocd_target(board: Board) -> str:
    if not board.probe.pyocd_target:
        raise ConfigError(f"board {board.name}: [probe] pyocd_target is not set in its board file")
    return board.probe.pyocd_target


def _openocd_config(board: Board) -> str:
    if not board.probe.openocd_config:
        raise ConfigError(f"board {board.name}: [probe] openocd_config is not set in its board file")
    return board.probe.openocd_config


def pyocd_load_argv(board: Board, elf: Path | str, uid: str | None = None,
                    executable: str = "pyocd") -> list[str]:
    """``pyocd load``: program the ELF (pyOCD resets the target afterwards)."""
    return [executable, "load", "--target", _pyocd_target(board), "--format", "elf",
            *(["--uid", uid] if uid else []), str(elf)]


def pyocd_reset_argv(board: Board, uid: str | None = None, executable: str = "pyocd") -> list[str]:
    """``pyocd reset``: reset the target and let it run."""
    return [executable, "reset", "--target", _pyocd_target(board), *(["--uid", uid] if uid else [])]


def _openocd_prefix(board: Board, serial: str | None, executable: str) -> list[str]:
    return [executable, "-f", _openocd_config(board),
            *(["-c", f"adapter serial {serial}"] if serial else [])]


def openocd_program_argv(board: Board, elf: Path | str, serial: str | None = None,
                         executable: str = "openocd") -> list[str]:
    """OpenOCD's ``program`` helper: init, reset init, write, verify, reset run, exit."""
    return [*_openocd_prefix(board, serial, executable), "-c", f"program {elf} verify reset exit"]


def openocd_reset_argv(board: Board, serial: str | None = None,
                       executable: str = "openocd") -> list[str]:
    """Reset and run the target, then quit OpenOCD."""
    return [*_openocd_prefix(board, serial, executable), "-c", "init", "-c", "reset run",
            "-c", "shutdown"]


def flash_argv(board: Board, elf: Path | str, probe: ProbeConfig) -> list[str]:
    if probe.tool == "pyocd":
        return pyocd_load_argv(board, elf, probe.uid, probe.program)
    return openocd_program_argv(board, elf, probe.uid, probe.program)


def reset_argv(board: Board, probe: ProbeConfig) -> list[str]:
    if probe.tool == "pyocd":
        return pyocd_reset_argv(board, probe.uid, probe.program)
    return openocd_reset_argv(board, probe.uid, probe.program)


def version_argv(probe: ProbeConfig) -> list[str]:
    return [probe.program, "--version"]


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in kept if "error" in line.lower()] or kept
    return " | ".join(errors[-lines:])


class ProbeRunner:
    """Runs probe commands for one board (the I/O half of this module)."""

    def __init__(self, board: Board, probe: ProbeConfig | None = None) -> None:
        self.board = board
        self.probe = probe or ProbeConfig()

    def _run(self, argv: Sequence[str], what: str, timeout_s: float | None = None) -> str:
        timeout = timeout_s if timeout_s is not None else self.probe.timeout_s
        if shutil.which(argv[0]) is None and not Path(argv[0]).exists():
            raise ToolMissingError(f"{argv[0]} not found on PATH; {INSTALL_HINT[self.probe.tool]}")
        log.info("%s: %s", what, " ".join(argv))
        try:
            proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except FileNotFoundError:
            raise ToolMissingError(f"{argv[0]} not found; {INSTALL_HINT[self.probe.tool]}") from None
        except subprocess.TimeoutExpired:
            raise HardwareTimeout(f"{what} on {self.board.name}: {argv[0]} did not finish within "
                                  f"{timeout:g} s (probe unplugged or target held in reset?)") from None
        if proc.returncode != 0:
            raise HardwareError(f"{what} on {self.board.name} failed ({argv[0]} exit "
                                f"{proc.returncode}): {_tail(proc.stderr or proc.stdout)}")
        return proc.stdout + proc.stderr

    def flash(self, elf: Path) -> None:
        """Program *elf* into the board's flash."""
        if not Path(elf).exists():
            raise ConfigError(f"firmware {elf} does not exist")
        self._run(flash_argv(self.board, elf, self.probe), "flashing")

    def reset(self) -> None:
        """Reset the board and let the firmware run."""
        self._run(reset_argv(self.board, self.probe), "reset")

    def tool_version(self) -> str:
        """First line of ``<tool> --version`` (stored with every measurement)."""
        try:
            out = self._run(version_argv(self.probe), "version query", timeout_s=30)
        except HardwareError as exc:
            log.debug("no tool version: %s", exc)
            return "unknown"
        first = out.strip().splitlines()
        return f"{self.probe.tool} {first[0].strip()}" if first else self.probe.tool
