"""Board-file peripheral descriptions (``[peripheral_space]``, ``[[peripheral]]``) and
their register models: ready flags following enables, timers on estimated cycles,
GPIO output marks; and the strict parsing of the board-file keys."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tinymeter.core.boards import load_board, parse_board
from tinymeter.core.devicemap import DeviceMap
from tinymeter.core.errors import ConfigError
from tinymeter.sim.devices import DeviceRegisters

RCC = 0x40021000
TIM2 = 0x40000000
GPIOB = 0x48000400


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def _l4r5() -> tuple[DeviceMap, Clock, DeviceRegisters]:
    board = load_board("nucleo-l4r5zi")
    clock = Clock()
    return board.devices, clock, DeviceRegisters(board.devices, clock)


def _rd(dev: DeviceRegisters, address: int) -> int:
    return dev.read(address & ~0xFFF, address & 0xFFF, 4)


def _wr(dev: DeviceRegisters, address: int, value: int, size: int = 4) -> None:
    dev.write(address & ~0xFFF, address & 0xFFF, size, value)


def test_l4r5_device_map_and_pages() -> None:
    devices, _clock, dev = _l4r5()
    assert {p.name for p in devices.peripherals} >= {"RCC", "PWR", "FLASH", "TIM2", "GPIOB"}
    # behaviour pages only: timers, RTC, RCC, GPIO, USB, ADC; PWR and FLASH are plain storage
    assert dev.pages() == (0x40000000, 0x40001000, 0x40002000, 0x40021000, 0x48000000,
                           0x48001000, 0x50000000, 0x50040000)
    assert all(p.section.startswith("RM0432, ") for p in devices.peripherals)


def test_rcc_ready_flags_follow_enables() -> None:
    _devices, _clock, dev = _l4r5()
    assert _rd(dev, RCC) == 0x63  # reset: MSI on and ready, range 6
    _wr(dev, RCC, 0x63 | 0x100)  # HSION
    assert _rd(dev, RCC) & 0x400
    _wr(dev, RCC, 0x163 | 0x01000000)  # PLLON
    assert _rd(dev, RCC) & 0x02000000
    _wr(dev, RCC, 0x163)  # PLL off: PLLRDY drops, as the HAL waits for before reprogramming
    assert not _rd(dev, RCC) & 0x02000000
    _wr(dev, RCC + 0x98, 1)  # CRRCR.HSI48ON (L4+)
    assert _rd(dev, RCC + 0x98) == 0x3
    assert _rd(dev, RCC + 0x08) & 0xC == 0  # SWS = MSI at reset
    _wr(dev, RCC + 0x08, 0x3)
    assert _rd(dev, RCC + 0x08) == 0xF
    _wr(dev, RCC + 0x09, 0x12, size=1)  # byte write keeps the rest of the word
    assert _rd(dev, RCC + 0x08) == 0x120F


def test_timer_counts_estimated_cycles_with_prescaler_and_update() -> None:
    _devices, clock, dev = _l4r5()
    assert _rd(dev, TIM2 + 0x2C) == 0xFFFFFFFF  # 32-bit ARR at reset
    clock.now = 1000
    assert _rd(dev, TIM2 + 0x24) == 0  # disabled: frozen
    _wr(dev, TIM2 + 0x00, 1)  # CEN
    clock.now = 1500
    assert _rd(dev, TIM2 + 0x24) == 500
    _wr(dev, TIM2 + 0x00, 0)
    clock.now = 9000
    assert _rd(dev, TIM2 + 0x24) == 500
    # PSC is preloaded: active only after an update event (EGR.UG), which clears CNT
    _wr(dev, TIM2 + 0x28, 9)
    _wr(dev, TIM2 + 0x14, 1)
    assert _rd(dev, TIM2 + 0x10) & 1  # UG sets UIF
    _wr(dev, TIM2 + 0x10, 0)
    assert _rd(dev, TIM2 + 0x10) == 0
    _wr(dev, TIM2 + 0x2C, 99)  # ARR 99: overflow every 100 ticks = 1000 cycles
    _wr(dev, TIM2 + 0x00, 1)
    timer = dev.timers[0]
    assert timer.next_update_cycle(clock.now) == 10_000
    clock.now = 9000 + 999
    assert _rd(dev, TIM2 + 0x24) == 99 and _rd(dev, TIM2 + 0x10) == 0
    clock.now = 9000 + 1000
    assert _rd(dev, TIM2 + 0x24) == 0 and _rd(dev, TIM2 + 0x10) == 1
    assert timer.next_update_cycle(clock.now) == 11_000
    _wr(dev, TIM2 + 0x0C, 1)  # DIER.UIE
    assert timer.pending_update(clock.now)


def test_gpio_output_changes_are_marks() -> None:
    board = load_board("nucleo-l4r5zi")
    clock = Clock()
    from tinymeter.sim.peripherals import marker_writes

    dev = DeviceRegisters(board.devices, clock, marker_writes(board))
    clock.now = 10
    _wr(dev, GPIOB + 0x18, 1 << 7)  # BSRR set PB7
    clock.now = 20
    _wr(dev, GPIOB + 0x18, 1 << 7)  # no change: no mark
    _wr(dev, GPIOB + 0x14, 0)  # ODR write: PB7 low
    clock.now = 30
    _wr(dev, 0x48001018, 0x200)  # the board's inference marker (PE9) keeps its name
    assert [(m.cycle, m.mark, m.level) for m in dev.events] == [
        (10, "PB7", 1), (20, "PB7", 0), (30, "inference", 1)]
    assert _rd(dev, GPIOB + 0x14) == 0 and _rd(dev, 0x48001014) == 0x200


def _board_with(extra: str) -> dict:
    base = load_board("nucleo-g0b1re").path.read_text().split("# -- the MCU's peripherals")[0]
    return tomllib.loads(base + "\n" + extra)


@pytest.mark.parametrize(("extra", "message"), [
    ("[[peripheral]]\nname='X'\nbase=0x40000000\nsize=0x400\ncolour=1\n", "unknown key"),
    ("[[peripheral]]\nname='X'\nbase=0x40000000\nsize=0x400\nmodel='uart'\n", "model"),
    ("[[peripheral]]\nname='X'\nbase=0x40000000\nsize=0x400\nreset={A=[0x400, 1]}\n",
     "outside the peripheral"),
    ("[[peripheral]]\nname='X'\nbase=0x40000000\nsize=0x400\n"
     "follow=[{what='a', from=[0, 1], to=[0, 6]}]\n", "same"),
    ("[[peripheral]]\nname='X'\nbase=0x40000000\nsize=0x400\n"
     "[[peripheral]]\nname='Y'\nbase=0x40000200\nsize=0x400\n", "overlap"),
    ("[peripheral_space]\nranges=[[0x40000000, 0x40000800]]\n", "4 KiB-aligned"),
    ("[peripheral_space]\nranges=[[0x40000000, 0x40001000]]\nsv='x'\n", "unknown key"),
])
def test_board_peripheral_keys_are_strict(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_board(_board_with(extra), "b.toml")


def test_exception_model_registers_and_choice() -> None:
    from tinymeter.sim.nvic import ExceptionModel

    m = ExceptionModel()
    m.write_word(0xE000E100, 1 << 29)  # ISER0: TIM3 (IRQ 29 = exception 45)
    m.write_word(0xE000E104, 1 << 2)   # ISER1: IRQ 34
    assert m.enabled == {45, 50} and m.read_word(0xE000E104) == 4
    m.write_word(0xE000E41C, 0x4000)   # IPR7 byte 1: IRQ 29 priority 0x40
    m.write_word(0xE000ED20, 0xF0 << 24)  # SHPR3: SysTick priority 0xF0
    assert m.priority[45] == 0x40 and m.priority[15] == 0xF0
    assert m.read_word(0xE000ED20) == 0xF0 << 24
    m.write_word(0xE000ED04, 1 << 26)  # ICSR.PENDSTSET
    m.pending.add(45)
    assert m.choose(primask=0, basepri=0) == 45  # higher priority (lower value) first
    assert m.choose(primask=1, basepri=0) is None and m.masked_pending()
    assert m.choose(primask=0, basepri=0x40) is None  # BASEPRI masks 0x40 and below
    m.enter(45)
    assert m.read_word(0xE000ED04) & 0x1FF == 45 and m.read_word(0xE000E300) == 1 << 29
    assert m.choose(primask=0, basepri=0) is None  # SysTick (0xF0) cannot preempt 0x40
    m.leave()
    assert m.choose(primask=0, basepri=0) == 15
    m.write_word(0xE000E180, 1 << 29)  # ICER0
    m.write_word(0xE000ED04, 1 << 25)  # PENDSTCLR
    assert m.enabled == {50} and 15 not in m.pending
    m.write_word(0xE000ED08, 0x08000400)
    assert m.vtor == 0x08000400


TINY_SVD = """<?xml version="1.0" encoding="utf-8"?>
<device schemaVersion="1.1">
  <name>TINY</name>
  <resetValue>0x00000000</resetValue>
  <peripherals>
    <peripheral>
      <name>FOO1</name>
      <baseAddress>0x40010000</baseAddress>
      <addressBlock><offset>0</offset><size>0x400</size><usage>registers</usage></addressBlock>
      <registers>
        <register><name>CTRL</name><addressOffset>0x0</addressOffset><resetValue>0x12345678</resetValue></register>
        <register><name>CH%s</name><dim>3</dim><dimIncrement>4</dimIncrement>
          <addressOffset>0x10</addressOffset><resetValue>#101</resetValue></register>
        <cluster><name>BANK</name><addressOffset>0x100</addressOffset>
          <register><name>ID</name><addressOffset>0x8</addressOffset><resetValue>0xCAFE</resetValue></register>
        </cluster>
      </registers>
    </peripheral>
    <peripheral derivedFrom="FOO1">
      <name>FOO2</name>
      <baseAddress>0x40020000</baseAddress>
    </peripheral>
  </peripherals>
</device>
"""

SVD_PROGRAM = r"""
#define REG(a) (*(volatile uint32_t *)(a))
static void put_hex(uint32_t v) {
    char s[10];
    for (int i = 0; i < 8; i++) s[i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 15];
    s[8] = '\n'; s[9] = 0;
    tm_puts(s);
}
int main(void) {
    put_hex(REG(0x40010000u)); put_hex(REG(0x40010018u)); put_hex(REG(0x40010108u));
    put_hex(REG(0x40020000u));
    REG(0x40020004u) = 7u;  /* plain storage: reads back */
    put_hex(REG(0x40020004u));
    put_hex(REG(0x40030000u));  /* inside [peripheral_space] ranges: 0 */
    return 0;
}
"""


def test_svd_parse_and_pyocd_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import zipfile

    from tinymeter.core.svd import parse_svd, read_svd

    foo1, foo2 = parse_svd(TINY_SVD.encode(), "tiny.svd")
    assert (foo1.name, foo1.base, foo1.size) == ("FOO1", 0x40010000, 0x400)
    assert dict(foo1.reset) == {0x40010000: 0x12345678, 0x40010010: 5, 0x40010014: 5,
                                0x40010018: 5, 0x40010108: 0xCAFE}
    assert foo2.base == 0x40020000 and dict(foo2.reset)[0x40020000] == 0x12345678
    with pytest.raises(ConfigError, match="not a valid SVD"):
        parse_svd(b"<device>", "bad.svd")
    # a registry package's SVD: pyOCD ships its SVDs in pyocd/debug/svd/svd_data.zip
    pkg = tmp_path / "site" / "pyocd" / "debug" / "svd"
    pkg.mkdir(parents=True)
    (tmp_path / "site" / "pyocd" / "__init__.py").write_text("")
    with zipfile.ZipFile(pkg / "svd_data.zip", "w") as zf:
        zf.writestr("TINY.svd", TINY_SVD)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "pyocd", raising=False)
    data, label = read_svd("pyocd:TINY.svd", None)
    assert data == TINY_SVD.encode() and label == "pyocd:TINY.svd"
    with pytest.raises(ConfigError, match=r"pyOCD ships no SVD named 'NOPE.svd' \(it has: "
                                          r"TINY.svd\)"):
        read_svd("pyocd:NOPE.svd", None)


def test_board_with_svd_serves_every_peripheral(tmp_path: Path) -> None:
    from tinymeter.sim.emulator import Emulator
    from tinymeter.sim.testfw import build_program, toolchain_available

    if not toolchain_available():
        pytest.skip("arm-none-eabi-gcc missing")
    (tmp_path / "tiny.svd").write_text(TINY_SVD)
    text = load_board("nucleo-g0b1re").path.read_text().split(
        "# -- the MCU's peripherals")[0].replace(
        'name = "nucleo-g0b1re"', 'name = "svd-board"')
    board_file = tmp_path / "svd-board.toml"
    board_file.write_text(text + '\n[peripheral_space]\nsvd = "tiny.svd"\n'
                          "ranges = [[0x40030000, 0x40031000]]\n")
    board = load_board(board_file)
    assert board.devices.svd == "tiny.svd"
    elf = build_program(board, SVD_PROGRAM, tmp_path / "fw")
    run = Emulator(board).run(elf, [], budget_instructions=10**6, timeout_s=30)
    assert run.stdout.split() == ["12345678", "00000005", "0000cafe", "12345678", "00000007",
                                  "00000000"]


@pytest.mark.parametrize(("board_name", "rcc", "sws"), [
    ("nucleo-f767zi", 0x40023800, 0x8), ("nucleo-l552ze-q", 0x40021000, 0x8),
    ("nucleo-f207zg", 0x40023800, 0x8), ("nucleo-g0b1re", 0x40021000, 0x10)])
def test_other_boards_describe_rcc_and_timers(board_name: str, rcc: int, sws: int) -> None:
    board = load_board(board_name)
    dev = DeviceRegisters(board.devices, Clock())
    _wr(dev, rcc, 1 << 24)  # PLLON
    assert _rd(dev, rcc) & (1 << 25)
    _wr(dev, rcc + 0x08, 0x2)  # SW = PLL (G0: SW[2:0] = 2, SWS[5:3])
    assert _rd(dev, rcc + 0x08) & 0x38 & ~0x7 | _rd(dev, rcc + 0x08) & 0xC == sws
    assert {t.spec.name for t in dev.timers} >= {"TIM2", "TIM3", "TIM6"}
    if board_name == "nucleo-f767zi":  # over-drive: ready flags in another register
        _wr(dev, 0x40007000, 0x0000C000 | (3 << 16))
        assert _rd(dev, 0x40007004) & (3 << 16) == 3 << 16


def test_find_unmask_points() -> None:
    from tinymeter.sim.elf import find_unmask_points

    code = bytes.fromhex(
        "62b6"        # 0x100 cpsie i
        "00bf"        # 0x102 nop
        "80f31088"    # 0x104 msr PRIMASK, r0
        "81f31188"    # 0x108 msr BASEPRI, r1
        "72b6"        # 0x10c cpsid i (masks: no point)
        "80f30988")   # 0x10e msr PSP, r0 (not a mask)
    assert find_unmask_points(code, 0x100) == [0x102, 0x108, 0x10C]


def test_usb_rtc_adc_waits_end_at_once() -> None:
    """What HAL's USB_CoreReset, HAL_RTC_Init/WaitForSynchro and HAL_ADCEx_Calibration
    wait on (each would time out into Error_Handler on plain storage)."""
    _devices, _clock, dev = _l4r5()
    grstctl = 0x50000010
    assert _rd(dev, grstctl) & (1 << 31)  # AHBIDL
    _wr(dev, grstctl, _rd(dev, grstctl) | 1)  # CSRST
    assert _rd(dev, grstctl) == 1 << 31
    rtc_isr = 0x4000280C
    _wr(dev, rtc_isr, 0)  # HAL clears RSF (rc_w0) and waits for it
    assert _rd(dev, rtc_isr) & 0x20
    _wr(dev, rtc_isr, 0x80)  # INIT -> INITF
    assert _rd(dev, rtc_isr) & 0x40
    adc_cr, adc_isr = 0x50040008, 0x50040000
    _wr(dev, adc_cr, 0x80000000)  # ADCAL: done at once
    assert _rd(dev, adc_cr) & 0x80000000 == 0
    _wr(dev, adc_cr, 1)  # ADEN -> ADRDY
    assert _rd(dev, adc_isr) & 1


def test_self_clearing_and_always_set_keys_are_strict() -> None:
    extra = ("[[peripheral]]\nname='X'\nbase=0x40000000\nsize=0x400\n"
             "self_clearing=[{what='a', reg=[0x400, 1]}]\n")
    with pytest.raises(ConfigError, match="must be a word inside the peripheral"):
        parse_board(_board_with(extra), "b.toml")
    extra = ("[[peripheral]]\nname='X'\nbase=0x40000000\nsize=0x400\n"
             "always_set=[{what='a', reg=[0, 1], value=3}]\n")
    with pytest.raises(ConfigError, match="unknown key"):
        parse_board(_board_with(extra), "b.toml")


POLL_PROGRAM = r"""
#define REG(a) (*(volatile uint32_t *)(a))
int main(void) {
    REG(0x40021000u) |= 1u << 24;                   /* RCC_CR.PLLON */
    uint32_t spins = 0;
    while (!(REG(0x40021000u) & (1u << 25))) spins++;  /* PLLRDY follows */
    REG(0x40000000u) = 1u;                          /* TIM2 CEN */
    uint32_t t0 = REG(0x40000024u), n = 0;
    while (REG(0x40000024u) - t0 < 2000u) n++;      /* a delay on the firmware's timer */
    REG(0xE0001000u) = 1u;                          /* DWT CYCCNTENA */
    uint32_t c0 = REG(0xE0001004u);
    while (REG(0xE0001004u) - c0 < 2000u) n++;      /* a delay on CYCCNT */
    REG(0xE000E014u) = 999u;                        /* SysTick RVR */
    REG(0xE000E018u) = 0u;
    REG(0xE000E010u) = 5u;                          /* enabled, no interrupt */
    for (int k = 0; k < 3; k++)                     /* LL_mDelay: poll COUNTFLAG */
        while (!(REG(0xE000E010u) & (1u << 16))) n++;
    REG(0x48000418u) = 1u << 7;                     /* PB7 high */
    return n < 10u || spins != 0u;
}
"""


def test_polled_behaviour_registers_cost_no_python(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """RCC follow rules, the TIM2 counter, DWT CYCCNT, SysTick and GPIO marks are served
    by C callbacks: the engine maps no page with a Python MMIO callback (issue 11:
    polling at emulation speed), and their semantics are the ones the unit tests above
    check."""
    from unicorn import Uc

    from tinymeter.sim import emulator
    from tinymeter.sim.testfw import build_program, toolchain_available

    if not toolchain_available():
        pytest.skip("arm-none-eabi-gcc missing")
    python_pages: list[int] = []
    monkeypatch.setattr(Uc, "mmio_map", lambda _uc, address, *_a, **_k:
                        python_pages.append(address))
    board = load_board("nucleo-l4r5zi")
    elf = build_program(board, POLL_PROGRAM, tmp_path / "fw", opt="-O2")
    emu = emulator.Emulator(board)
    run = emu.run(elf, [], budget_instructions=10**6, timeout_s=30)
    assert run.exit_code == 0
    assert python_pages == []
    assert {RCC, TIM2, GPIOB & ~0xFFF, 0xE0001000, 0xE000E000} <= set(emu.bus.pages())
    assert [(m.mark, m.level) for m in run.marks] == [("PB7", 1)]
    assert 0 < run.marks[0].cycle <= run.cycles
