"""Exact command lines of pyOCD and OpenOCD, and the runner's error paths."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tinymeter.core.boards import Probe, load_board
from tinymeter.core.errors import ConfigError, HardwareError, HardwareTimeout, ToolMissingError
from tinymeter.hw.probe import (
    ProbeConfig,
    ProbeRunner,
    flash_argv,
    openocd_program_argv,
    openocd_reset_argv,
    pyocd_load_argv,
    pyocd_reset_argv,
    reset_argv,
)

L4 = load_board("nucleo-l4r5zi")


def test_pyocd_load_and_reset_argv() -> None:
    assert pyocd_load_argv(L4, "firmware.elf") == [
        "pyocd", "load", "--target", "stm32l4r5zitx", "--format", "elf", "firmware.elf"]
    assert pyocd_load_argv(L4, Path("fw/firmware.elf"), uid="0669FF") == [
        "pyocd", "load", "--target", "stm32l4r5zitx", "--format", "elf", "--uid", "0669FF",
        "fw/firmware.elf"]
    assert pyocd_reset_argv(L4) == ["pyocd", "reset", "--target", "stm32l4r5zitx"]
    assert pyocd_reset_argv(L4, uid="0669FF") == ["pyocd", "reset", "--target", "stm32l4r5zitx",
                                                  "--uid", "0669FF"]


def test_openocd_program_and_reset_argv() -> None:
    assert openocd_program_argv(L4, "firmware.elf") == [
        "openocd", "-f", "board/st_nucleo_l4.cfg", "-c", "program firmware.elf verify reset exit"]
    assert openocd_program_argv(L4, "firmware.elf", serial="066DFF") == [
        "openocd", "-f", "board/st_nucleo_l4.cfg", "-c", "adapter serial 066DFF",
        "-c", "program firmware.elf verify reset exit"]
    assert openocd_reset_argv(L4) == ["openocd", "-f", "board/st_nucleo_l4.cfg", "-c", "init",
                                      "-c", "reset run", "-c", "shutdown"]


def test_every_board_has_probe_names() -> None:
    from tinymeter.core.boards import list_boards

    for name in list_boards():
        board = load_board(name)
        assert flash_argv(board, "f.elf", ProbeConfig("pyocd"))[3] == board.probe.pyocd_target
        assert flash_argv(board, "f.elf", ProbeConfig("openocd"))[2] == board.probe.openocd_config


def test_dispatch_and_executable_override() -> None:
    cfg = ProbeConfig(tool="openocd", uid="X1", executable="/opt/openocd/bin/openocd")
    assert flash_argv(L4, "a.elf", cfg)[0] == "/opt/openocd/bin/openocd"
    assert reset_argv(L4, ProbeConfig("pyocd", uid="U"))[-2:] == ["--uid", "U"]


def test_missing_probe_table_and_bad_tool() -> None:
    bare = dataclasses.replace(L4, probe=Probe())
    with pytest.raises(ConfigError, match="pyocd_target"):
        pyocd_load_argv(bare, "f.elf")
    with pytest.raises(ConfigError, match="openocd_config"):
        openocd_reset_argv(bare)
    with pytest.raises(ConfigError, match="unknown probe tool"):
        ProbeConfig(tool="jlink")


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fakeprobe"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def test_runner_errors(tmp_path: Path) -> None:
    elf = tmp_path / "f.elf"
    elf.write_bytes(b"\x7fELF")
    with pytest.raises(ToolMissingError, match="pip install pyocd"):
        ProbeRunner(L4, ProbeConfig(executable="no-such-pyocd-xyz")).flash(elf)
    failing = _script(tmp_path, 'echo "0001 E No target device available" >&2; exit 1')
    with pytest.raises(HardwareError, match="No target device available"):
        ProbeRunner(L4, ProbeConfig(executable=failing)).reset()
    slow = _script(tmp_path, "sleep 5")
    with pytest.raises(HardwareTimeout, match="did not finish within 0.2 s"):
        ProbeRunner(L4, ProbeConfig(executable=slow, timeout_s=0.2)).flash(elf)
    ok = _script(tmp_path, 'echo "0.36.0"')
    runner = ProbeRunner(L4, ProbeConfig(executable=ok))
    runner.flash(elf)
    assert runner.tool_version() == "pyocd 0.36.0"
    with pytest.raises(ConfigError, match="does not exist"):
        runner.flash(tmp_path / "missing.elf")
