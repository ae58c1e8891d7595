"""The shipped board files' register reset values, cross-checked against the CMSIS-SVD
files a registry package ships (issue 11: reset values must not come from memory only).

What PyPI offers (checked 2026-11 with ``pip download --no-deps``): ``cmsis-svd`` 0.6 is
a parser with the SVD XML schemas and no device files; ``cmsis-svd-data`` is not on
PyPI; ``cmsis-pack-manager`` 0.6 ships no packs (it downloads them at run time);
``ortellius``/``ortellius-lite`` ship none; pyOCD 0.46 ships
``pyocd/debug/svd/svd_data.zip`` with STM32F0xx, F103xx, F41x, F429x, F439x, L0x1,
L4x2 and L4x5 only.  So none of the shipped boards' MCUs (STM32L4R5, F767, G0B1, L552,
F207) has its own SVD there, and this test compares each board with the pyOCD SVD of
the closest family that shares the peripheral IP (same register names and offsets):
L4R5 and L552 with L4x5, F207 with F41x (the F2 and F4 share RCC, flash and GPIO
blocks), F767 with F429x.  G0B1 has none (F0's RCC and GPIO bus differ).

Every register of the board file whose name the SVD peripheral also has is compared
(offset and reset value); the differences are listed below with their reason, so the
test fails on any new disagreement (a typo in a board file) and on a disagreement that
went away.  Needs pyOCD (``pip install tinymeter[svd]``; skipped without it).
"""

from __future__ import annotations

import io
import tomllib
import zipfile

import pytest

from tinymeter.core.boards import load_board
from tinymeter.core.svd import pyocd_svd_archive, register_map

PAIRS = {"nucleo-l4r5zi": "STM32L4x5.svd", "nucleo-l552ze-q": "STM32L4x5.svd",
         "nucleo-f207zg": "STM32F41x.svd", "nucleo-f767zi": "STM32F429x.svd"}

_SVD_GPIO = "the SVD's GPIO MODER/OSPEEDR resets are 0 or partial for every port; the " \
            "reference manual's values (analog mode, SWD pins) are in the board file"
_L4PLUS = "L4+ (RM0432) differs from L4 (RM0351)"
_L5 = "L5 (RM0438) differs from L4 (RM0351)"
_F7 = "F7 (RM0410) differs from F42x/43x (RM0090)"

#: (board, "PERIPHERAL.REGISTER" or "PERIPHERAL@base") -> why the board file differs.
EXPECTED: dict[tuple[str, str], str] = {
    ("nucleo-l4r5zi", "RCC.ICSCR"): f"{_L4PLUS}: HSITRIM is 7 bits at [30:24], reset 0x40",
    ("nucleo-l4r5zi", "RCC.APB1ENR1"): f"{_L4PLUS}: RTCAPBEN (bit 10) resets to 1",
    ("nucleo-l4r5zi", "ADC1.CR"): "DEEPPWD resets to 1 (RM0432 and RM0351); the SVD has 0",
    **{("nucleo-l4r5zi", f"GPIO{p}.MODER"): _SVD_GPIO for p in "ABCDEFGH"},
    ("nucleo-l4r5zi", "GPIOA.OSPEEDR"): _SVD_GPIO,
    ("nucleo-l552ze-q", "RCC.ICSCR"): f"{_L5}: HSITRIM reset 0x40 at [30:24]",
    ("nucleo-l552ze-q", "RCC.APB1ENR1"): f"{_L5}: RTCAPBEN resets to 1",
    ("nucleo-l552ze-q", "PWR.CR1"): f"{_L5}: VOS resets to range 2 (0b10)",
    **{("nucleo-l552ze-q", f"GPIO{p}@base"): f"{_L5}: GPIO on AHB2 at 0x42020000 (non-secure)"
       for p in "ABCDEFGH"},
    **{("nucleo-l552ze-q", f"GPIO{p}.MODER"): _SVD_GPIO for p in "ABCDEFGH"},
    ("nucleo-l552ze-q", "GPIOA.OSPEEDR"): _SVD_GPIO,
    ("nucleo-f207zg", "FLASH.OPTCR"): "RM0033/RM0090 give 0x0FFFAAED; the SVD has 0x14",
    ("nucleo-f767zi", "RCC.PLLI2SCFGR"): f"{_F7}: PLLI2SR field, reset 0x24003000",
    ("nucleo-f767zi", "FLASH.OPTCR"): f"{_F7}: F7 option bytes, reset 0xC0FFAAFD",
    ("nucleo-f767zi", "GPIOA.OSPEEDR"): _SVD_GPIO,
}
#: Registers each board must agree on at least (so the check stays substantive).
MIN_AGREEING = {"nucleo-l4r5zi": 15, "nucleo-l552ze-q": 11, "nucleo-f207zg": 12,
                "nucleo-f767zi": 11}


def _compare(board_name: str, svd: dict[str, tuple[int, dict[str, tuple[int, int]]]]
             ) -> tuple[set[str], int]:
    raw = tomllib.loads(load_board(board_name).path.read_text())
    differ, agree = set(), 0
    for p in raw.get("peripheral", []):
        if p["name"] not in svd:
            continue
        base, registers = svd[p["name"]]
        if base != p["base"]:
            differ.add(f"{p['name']}@base")
        for name, (offset, value) in p.get("reset", {}).items():
            if name not in registers:
                continue
            if registers[name] == (offset, value):
                agree += 1
            else:
                differ.add(f"{p['name']}.{name}")
    return differ, agree


@pytest.fixture(scope="module")
def archive() -> zipfile.ZipFile:
    blob = pyocd_svd_archive()
    if blob is None:
        pytest.skip("pyOCD not installed (pip install tinymeter[svd])")
    return zipfile.ZipFile(io.BytesIO(blob))


@pytest.mark.parametrize("board_name", sorted(PAIRS))
def test_board_reset_values_agree_with_the_family_svd(archive: zipfile.ZipFile,
                                                      board_name: str) -> None:
    svd = register_map(archive.read(PAIRS[board_name]), PAIRS[board_name])
    differ, agree = _compare(board_name, svd)
    expected = {key for b, key in EXPECTED if b == board_name}
    assert differ == expected, (f"new: {sorted(differ - expected)}, "
                                f"gone: {sorted(expected - differ)}")
    assert agree >= MIN_AGREEING[board_name]


def test_no_registry_svd_for_the_shipped_mcus(archive: zipfile.ZipFile) -> None:
    """If pyOCD starts shipping one of the boards' own SVDs, use it in the board file."""
    names = {n.rsplit("/", 1)[-1].upper() for n in archive.namelist()}
    for mcu in ("STM32L4R5", "STM32L4R", "STM32F767", "STM32F7", "STM32G0B1", "STM32G0",
                "STM32L552", "STM32L5", "STM32F207", "STM32F2"):
        assert not any(n.startswith(mcu) for n in names), mcu
