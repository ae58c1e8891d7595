"""The C register device (``sim/native/periph.c``) rule by rule, through the same
``tm_pv_read``/``tm_pv_write`` the engine's MMIO callbacks call: word merging of
sub-word writes, every rule kind, events, and the table checks on the Python side."""

from __future__ import annotations

import pytest

from tinymeter.sim.native_periph import (
    CLEAR,
    CYCCNT,
    CYCCNT_CTRL,
    CYCLES,
    FOLLOW,
    FORCE,
    GPIO,
    GPIO_BSRR,
    GPIO_ODR,
    MARK,
    OR,
    UART_DATA,
    Event,
    NativeRegisters,
    RegisterTable,
    Rule,
)

P0, P1 = 0x40000000, 0x40001000


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def _dev(rules: list[Rule], **kw: object) -> tuple[NativeRegisters, Clock, list[int]]:
    clock, sent = Clock(), []
    table = RegisterTable(pages=(P0, P1), rules=rules, reset={P0 + 0x10: 0xAABBCCDD},
                          names=["a", "b"])
    return NativeRegisters(table, clock, on_uart=sent.append, **kw), clock, sent  # type: ignore[arg-type]


def rd(d: NativeRegisters, address: int, size: int = 4) -> int:
    return d.read(address & ~0xFFF, address & 0xFFF, size)


def wr(d: NativeRegisters, address: int, value: int, size: int = 4) -> None:
    d.write(address & ~0xFFF, address & 0xFFF, size, value)


def test_storage_reset_and_sub_word_access() -> None:
    d, _clock, _sent = _dev([])
    assert rd(d, P0 + 0x10) == 0xAABBCCDD
    assert rd(d, P0 + 0x11, 1) == 0xCC and rd(d, P0 + 0x12, 2) == 0xAABB
    wr(d, P0 + 0x13, 0x11, 1)
    wr(d, P0 + 0x10, 0x2233, 2)
    assert rd(d, P0 + 0x10) == 0x11BB2233
    wr(d, P1 + 0xFFC, 0xFFFFFFFF)  # last word of the second page
    assert rd(d, P1 + 0xFFC) == 0xFFFFFFFF and rd(d, P0 + 0xFFC) == 0


def test_read_rules_or_follow_across_pages_force() -> None:
    d, _clock, _sent = _dev([Rule(P0, OR, 0x80), Rule(P0, FOLLOW, P1 + 4, 0x3, 0xC, 2),
                             Rule(P0, FOLLOW, P0, 0x100, 0x1, -8), Rule(P0 + 8, FORCE, 0xF0, 0x50)])
    assert rd(d, P0) == 0x80
    wr(d, P1 + 4, 0x2)
    assert rd(d, P0) == 0x88  # bit 1 of the control word at bit 3
    wr(d, P0, 0x100)
    assert rd(d, P0) == 0x189  # own control bit 8 -> status bit 0
    wr(d, P0 + 8, 0xFF)
    assert rd(d, P0 + 8) == 0x5F and rd(d, P0 + 8, 1) == 0x5F


def test_write_rules_clear_mark_uart() -> None:
    d, clock, sent = _dev([Rule(P0, CLEAR, 0x1), Rule(P0 + 4, MARK, 0x55, 1, 1),
                           Rule(P0 + 0x28, UART_DATA)])
    wr(d, P0, 0x3)
    assert rd(d, P0) == 0x2  # the request completed at once
    clock.now = 7
    wr(d, P0 + 4, 0x55)
    wr(d, P0 + 4, 0x55, 1)  # marks are word writes only
    wr(d, P0 + 4, 0x56)
    wr(d, P0 + 0x28, 0x141)
    wr(d, P0 + 0x28, 0x42, 1)
    assert d.events == [Event(7, "b", 1)] and sent == [0x41, 0x42]
    assert rd(d, P0 + 0x28) == 0x142  # stored as written (the byte merged into the word)


def test_gpio_edges_and_named_marks() -> None:
    odr, bsrr = P1 + 0x14, P1 + 0x18
    clock = Clock()
    table = RegisterTable(pages=(P1,), names=[f"PA{i}" for i in range(16)] + ["inference"],
                          rules=[Rule(odr, GPIO, 0, GPIO_ODR, odr),
                                 Rule(bsrr, MARK, 1 << 5, 16, 1),  # sorted after GPIO
                                 Rule(bsrr, GPIO, 0, GPIO_BSRR, odr)])
    d = NativeRegisters(table, clock)
    clock.now = 3
    wr(d, bsrr, (1 << 2) | (1 << 3))
    clock.now = 4
    wr(d, bsrr, 1 << (16 + 2))
    wr(d, odr, 0x8)  # no change: no event
    wr(d, bsrr, 1 << 5)  # the board marker's write keeps its name
    assert rd(d, bsrr) == 0 and rd(d, odr) == 0x28  # BSRR is write-only, ODR follows
    assert d.events == [Event(3, "PA2", 1), Event(3, "PA3", 1), Event(4, "PA2", 0),
                        Event(4, "inference", 1)]


def test_cycles_and_cyccnt() -> None:
    d, clock, _sent = _dev([Rule(P0, CYCLES), Rule(P1, CYCCNT_CTRL), Rule(P1 + 4, CYCCNT, P1)])
    clock.now = (1 << 32) + 5
    assert rd(d, P0) == 5 and rd(d, P0, 2) == 0  # sub-word reads see storage
    assert rd(d, P1 + 4) == 0  # disabled
    wr(d, P1, 1)
    clock.now += 100
    assert rd(d, P1 + 4) == 100
    wr(d, P1 + 4, 0xFFFFFFFF)
    clock.now += 2
    assert rd(d, P1 + 4) == 1
    wr(d, P1, 0)
    clock.now += 50
    assert rd(d, P1 + 4) == 1


def test_rules_off_the_pages_are_dropped_and_addresses_checked() -> None:
    d, _clock, _sent = _dev([Rule(0x50000000, OR, 1), Rule(P0, FOLLOW, 0x50000000, 1, 1, 0)])
    assert rd(d, P0) == 0  # the follow source is not on the device: rule dropped
    with pytest.raises(KeyError):
        rd(d, 0x50000000)
