"""Board files: every shipped board loads; strict parsing rejects typos and bad maps."""

from __future__ import annotations

import tomllib

import pytest

from tinymeter.core.boards import list_boards, load_board, parse_board
from tinymeter.core.errors import ConfigError

SHIPPED = ["nucleo-f207zg", "nucleo-f767zi", "nucleo-g0b1re", "nucleo-l4r5zi", "nucleo-l552ze-q"]


def test_shipped_boards_cover_every_core() -> None:
    assert list_boards() == SHIPPED
    cores = {load_board(b).core.name for b in SHIPPED}
    assert cores == {"cortex-m0plus", "cortex-m3", "cortex-m4f", "cortex-m7", "cortex-m33"}


def test_m4_board_facts() -> None:
    b = load_board("nucleo-l4r5zi")
    assert b.clock_hz == 120_000_000
    assert b.core.gcc_flags == ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")
    assert b.text.origin == 0x08000000 and b.text.wait_states == 5
    assert b.data.size == 640 * 1024
    assert b.region_of(0x20000010).name == "RAM"
    assert b.region_of(0x30000000) is None


def test_m0plus_has_soft_float() -> None:
    assert load_board("nucleo-g0b1re").core.gcc_flags == (
        "-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft")


def _raw(name: str = "nucleo-l4r5zi") -> dict:
    b = load_board(name)
    assert b.path is not None
    return tomllib.loads(b.path.read_text())


def test_unknown_key_is_an_error() -> None:
    raw = _raw()
    raw["clock_mhz"] = 80
    with pytest.raises(ConfigError, match="unknown key.*clock_mhz"):
        parse_board(raw)
    raw = _raw()
    raw["memory"][0]["waitstates"] = 3
    with pytest.raises(ConfigError, match=r"memory\[0\].*unknown key.*waitstates"):
        parse_board(raw)


def test_wrong_types_and_missing_fields() -> None:
    raw = _raw()
    raw["clock_hz"] = "fast"
    with pytest.raises(ConfigError, match="clock_hz: expected int"):
        parse_board(raw)
    raw = _raw()
    del raw["core"]
    with pytest.raises(ConfigError, match="missing key.*core"):
        parse_board(raw)
    raw = _raw()
    raw["core"] = "cortex-m85"
    with pytest.raises(ConfigError, match="unknown core 'cortex-m85'"):
        parse_board(raw)


def test_overlapping_regions_and_bad_layout() -> None:
    raw = _raw()
    raw["memory"][1]["origin"] = raw["memory"][0]["origin"] + 16
    with pytest.raises(ConfigError, match="overlap"):
        parse_board(raw)
    raw = _raw()
    raw["layout"]["data"] = "SRAM9"
    with pytest.raises(ConfigError, match="no memory region named 'SRAM9'"):
        parse_board(raw)


def test_unknown_board_name_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown board 'nucleo-xyz'.*nucleo-l4r5zi"):
        load_board("nucleo-xyz")


def test_board_from_path(tmp_path) -> None:
    src = load_board("nucleo-f767zi").path
    dst = tmp_path / "my-board.toml"
    dst.write_text(src.read_text().replace('name = "nucleo-f767zi"', 'name = "mine"'))
    b = load_board(dst)
    assert b.name == "mine" and b.core.name == "cortex-m7"
