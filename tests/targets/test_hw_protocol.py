"""The TM1 report parser and serial collection: recorded and corrupted transcripts."""

from __future__ import annotations

import random

import pytest

from tinymeter.abi import report_lines
from tinymeter.core.errors import FirmwareFaultReport, HardwareError, HardwareTimeout
from tinymeter.hw.protocol import Fault, Report, ReportParser, parse_transcript, summarize
from tinymeter.hw.serialport import collect_reports

OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def run_bytes(run: int, cycles: list[int], model: str = "kws") -> bytes:
    return b"".join(report_lines(model, run, cycles, OPS))


def cycles_of(run: int) -> list[int]:
    return [1000 + run, 2000 + 3 * run, 300 + run]


RECORDED = b"".join(run_bytes(k, cycles_of(k)) for k in range(5))


def reports(events: list[Report | Fault]) -> list[Report]:
    return [e for e in events if isinstance(e, Report)]


def test_recorded_transcript() -> None:
    events, stats = parse_transcript(b"boot banner\r\n" + RECORDED)
    got = reports(events)
    assert [r.run for r in got] == [0, 1, 2, 3, 4]
    assert [list(r.cycles) for r in got] == [cycles_of(k) for k in range(5)]
    assert got[0].ops == OPS and got[0].model == "kws" and got[0].total == sum(cycles_of(0))
    assert stats.noise_lines == 1 and stats.discarded_reports == 0 and stats.boots == 1


@pytest.mark.parametrize("seed", range(20))
def test_arbitrary_chunking_gives_the_same_reports(seed: int) -> None:
    rng = random.Random(seed)
    data = RECORDED.replace(b"\n", b"\r\n") if seed % 2 else RECORDED
    parser = ReportParser()
    got: list[Report | Fault] = []
    i = 0
    while i < len(data):
        n = rng.randint(1, 40)
        got += parser.feed(data[i:i + n])
        i += n
    assert reports(got) == reports(parse_transcript(RECORDED)[0])


def _drop(data: bytes, at: int, n: int = 1) -> bytes:
    return data[:at] + data[at + n:]


def test_dropped_bytes_discard_only_the_damaged_report() -> None:
    # Every single-byte drop inside run 2's report: that report goes, the others stay
    # intact, nothing is double counted, and no damaged report is ever accepted.
    start = len(run_bytes(0, cycles_of(0)) + run_bytes(1, cycles_of(1)))
    end = start + len(run_bytes(2, cycles_of(2)))
    for at in range(start, end):
        got = reports(parse_transcript(_drop(RECORDED, at))[0])
        runs = [r.run for r in got]
        assert len(runs) == len(set(runs))
        for r in got:
            assert list(r.cycles) == cycles_of(r.run) or r.ops != OPS, f"drop at {at}"
        assert {0, 1, 3, 4} <= set(runs)
    # with the firmware's layer names known, a damaged op name is caught as well
    for at in range(start, end):
        parser = ReportParser(expect_model="kws", expect_ops=OPS)
        got = reports(parser.feed(_drop(RECORDED, at)))
        assert all(list(r.cycles) == cycles_of(r.run) for r in got)
        assert [r.run for r in got] in ([0, 1, 3, 4], [0, 1, 2, 3, 4])


def test_corrupted_digit_caught_by_total() -> None:
    bad = RECORDED.replace(b"L 1 DEPTHWISE_CONV_2D 2003", b"L 1 DEPTHWISE_CONV_2D 2903")
    events, stats = parse_transcript(bad)
    assert [r.run for r in reports(events)] == [0, 2, 3, 4]
    assert "does not match" in stats.last_problem


def test_reset_mid_report_and_new_boot() -> None:
    partial = run_bytes(2, cycles_of(2))[:50]
    data = run_bytes(0, cycles_of(0)) + run_bytes(1, cycles_of(1)) + partial + RECORDED
    events, stats = parse_transcript(data)
    got = reports(events)
    assert [(r.boot, r.run) for r in got] == [(1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (2, 3),
                                               (2, 4)]
    assert stats.resets_mid_report == 1 and stats.boots == 2
    m = summarize(got, warmup=1)
    # warm-up run 0 of each boot dropped; (boot, run) pairs kept once
    assert m.runs == 5
    assert m.layers[0].median == 1002  # median of 1001, 1001, 1002, 1003, 1004


def test_garbage_merged_lines_and_overlong_lines() -> None:
    r0, r1 = run_bytes(0, cycles_of(0)), run_bytes(1, cycles_of(1))
    merged = r1.replace(b"\nTM1 L 1", b"TM1 L 1", 1)  # lost newline
    noisy = b"\xff\xfe\x00" + r0 + b"x" * 2000 + b"\n" + merged + run_bytes(2, cycles_of(2))
    events, stats = parse_transcript(noisy)
    assert [r.run for r in reports(events)] == [0, 2]
    # the 2000-byte line is over-long (garbled) even though it arrived in one chunk
    assert stats.garbled_lines == 2 and stats.noise_lines == 0
    # a line that never ends is dropped without unbounded buffering
    parser = ReportParser(max_line=100)
    for _ in range(50):
        assert parser.feed(b"y" * 64) == []
    assert len(parser._buffer) <= 164
    assert [r.run for r in reports(parser.feed(b"\n" + r0))] == [0]
    assert parser.stats.garbled_lines == 1
    binary = r0[:30] + b"\x80\x81" + r0[30:]
    assert reports(parse_transcript(binary)[0]) == []


def test_fault_line() -> None:
    events, _ = parse_transcript(run_bytes(0, cycles_of(0)) + b"TM1 FAULT hardfault\n")
    assert isinstance(events[-1], Fault) and events[-1].what == "hardfault"


def test_summarize_majority_layout_and_errors() -> None:
    good = reports(parse_transcript(RECORDED)[0])
    odd = Report("kws", 9, 1, good[0].layers[:2], 0)
    m = summarize([*good, odd])
    assert m.runs == 5 and m.cycles == (1002.0, 2006.0, 302.0)
    with pytest.raises(HardwareError, match="no complete report"):
        summarize(good, warmup=10)


class FakeSource:
    """Replays chunks; every read advances a fake clock by the poll time."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        self.now += timeout_s if not self.chunks or not self.chunks[0] else 0.001
        if not self.chunks:
            return b""
        chunk = self.chunks.pop(0)
        return chunk[:max_bytes]


def test_collect_stops_after_enough_runs() -> None:
    src = FakeSource([RECORDED[i:i + 7] for i in range(0, len(RECORDED), 7)])
    got = collect_reports(src, runs=3, warmup=1, clock=src.clock, timeout_s=5)
    assert got.complete and [r.run for r in got.kept(1)] == [1, 2, 3]


def test_collect_idle_and_total_timeouts() -> None:
    src = FakeSource([run_bytes(0, cycles_of(0))])
    with pytest.raises(HardwareTimeout, match="no output for 1 s: 0 good report"):
        collect_reports(src, runs=2, warmup=1, clock=src.clock, idle_timeout_s=1, timeout_s=10)
    src = FakeSource([])
    with pytest.raises(HardwareTimeout, match="nothing received"):
        collect_reports(src, runs=1, clock=src.clock, idle_timeout_s=1, timeout_s=10)
    # a board that keeps talking garbage hits the overall deadline
    src = FakeSource([b"noise\n"] * 100000)
    src.read = lambda n, t: (setattr(src, "now", src.now + 0.5), b"noise\n")[1]  # type: ignore[method-assign]
    got = collect_reports(src, runs=1, clock=src.clock, idle_timeout_s=5, timeout_s=3,
                          raise_on_timeout=False)
    assert not got.complete and got.reports == []


def test_collect_raises_on_fault() -> None:
    src = FakeSource([run_bytes(0, cycles_of(0)), b"TM1 FAULT hardfault\n"])
    with pytest.raises(FirmwareFaultReport, match="hardfault"):
        collect_reports(src, runs=5, clock=src.clock)


def test_corrupted_run_index_caught_by_check() -> None:
    """run=0 -> run=8 in a BEGIN line: without the check the warm-up report would be
    kept and counted as a new boot."""
    bad = RECORDED.replace(b"run=1 ", b"run=9 ", 1)
    events, stats = parse_transcript(bad)
    assert [r.run for r in reports(events)] == [0, 2, 3, 4] and stats.boots == 1
    assert "check=" in stats.last_problem
    bad = run_bytes(0, cycles_of(0)).replace(b"run=0 ", b"run=8 ") + RECORDED
    events, stats = parse_transcript(bad)
    assert [r.run for r in reports(events)] == [0, 1, 2, 3, 4] and stats.boots == 1
    # the layer count and the check digits themselves are covered too
    r0 = run_bytes(0, cycles_of(0))
    check = r0.rsplit(b"check=", 1)[1].strip()
    assert reports(parse_transcript(r0.replace(b"check=" + check, b"check=1" + check))[0]) == []


@pytest.mark.parametrize("length", [511, 512, 513, 600])
def test_long_line_verdict_does_not_depend_on_chunking(length: int) -> None:
    """A line over max_line bytes is dropped whether it arrives in one chunk or byte by byte."""
    line = b"y" * (length - 12) + b"TM1 FAULT xy\n"  # length bytes before the newline
    whole = ReportParser()
    one = whole.feed(line)
    split = ReportParser()
    many = [e for i in range(len(line)) for e in split.feed(line[i:i + 1])]
    assert one == many and whole.stats.garbled_lines == split.stats.garbled_lines
    assert (whole.stats.garbled_lines == 1) == (length > 512)
    assert (len(one) == 1) == (length <= 512)


def test_report_names_are_parser_safe() -> None:
    from tinymeter.abi import MAX_REPORT_NAME, report_name

    assert report_name("kws_ref_model") == "kws_ref_model"
    assert report_name("my model (v2)") == "my_model__v2_"
    assert report_name("") == "model" and len(report_name("x" * 600)) == MAX_REPORT_NAME
    line = f"TM1 BEGIN {report_name('mödel ' * 100)} run=4294967295 layers=999999\n".encode()
    parser = ReportParser()
    parser.feed(line)
    assert parser.in_report and len(line) < 512
