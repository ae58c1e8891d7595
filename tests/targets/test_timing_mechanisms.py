"""Timing mechanisms against cycles derived by hand from the board data.

Each case runs a small hand-written loop in the emulator on a board whose memory
system is set up so the expected stall of every mechanism can be worked out on paper
(the derivation is in each docstring), then checks the native hook's statistics of
the loop's block exactly: data loads streamed from flash versus SRAM through the flash
data cache, a loop smaller and larger than the instruction cache, the prefetch buffer
overlapping sequential fetch, and the outcomes of a data-dependent branch.

Notation: WS = flash wait states, a flash access delivers one 8-byte unit after WS
extra cycles (the one-cycle fetch is in the core cycles), the prefetch buffer reads
the next unit right after a unit is delivered and takes WS + 1 cycles for it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinymeter.analysis.report import timing_lines
from tinymeter.core.boards import Board, load_board, parse_board
from tinymeter.sim import emulator as emulator_module
from tinymeter.sim.costmodel import cost_model_for, timing_config, to_fixed
from tinymeter.sim.elf import ElfImage
from tinymeter.sim.emulator import Emulator, RunResult
from tinymeter.sim.native_hook import CYCLE_SCALE, STAT
from tinymeter.sim.testfw import build_program, toolchain_available
from tinymeter.sim.timing import group_splits

pytestmark = pytest.mark.skipif(not toolchain_available(), reason="arm-none-eabi-gcc missing")

BOARDS = Path(__file__).resolve().parents[2] / "tinymeter" / "boards"


def board_with(flash: dict[str, Any] | None = None, accelerator: dict[str, Any] | None = None
               ) -> Board:
    """NUCLEO-L4R5ZI (Cortex-M4F) with its flash region and accelerator replaced."""
    raw = tomllib.loads((BOARDS / "nucleo-l4r5zi.toml").read_text())
    raw["name"] = "timing-test"
    raw["memory"][0].update(flash or {})
    if accelerator is not None:
        raw["flash_accelerator"] = accelerator
    return parse_board(raw)


def run_program(board: Board, source: str, tmp_path: Path) -> tuple[RunResult, ElfImage]:
    elf = build_program(board, source, tmp_path)
    run = Emulator(board).run(elf, [[]], budget_instructions=10**7, timeout_s=30)
    return run, ElfImage.load(elf)


def rows_of(run: RunResult, image: ElfImage, function: str, layer: int | None = None) -> np.ndarray:
    """Mask of the table rows whose block starts at *function* (in *layer*)."""
    address = image.require_symbol(function).address & ~1
    mask = run.blocks.address == address
    if layer is not None:
        mask &= run.blocks.layer == layer
    assert mask.any(), f"{function} never ran"
    return mask


def stat(run: RunResult, mask: np.ndarray, name: str) -> float:
    value = int(run.stats[mask, STAT[name]].sum())
    return value / CYCLE_SCALE if name in ("ifetch_stall", "data_stall", "branch", "cycles") else value


STREAM_PROGRAM = r"""
#define WORDS 1024
static const uint32_t rom[WORDS] __attribute__((aligned(32))) = {[0 ... WORDS - 1] = 7u};
static uint32_t ram[WORDS] __attribute__((aligned(32)));
__attribute__((naked, noinline)) void stream(const uint32_t *p, uint32_t n) {
    __asm__ volatile(".syntax unified\n1: ldr r2, [r0], #4\n subs r1, r1, #1\n bne 1b\n bx lr\n");
}
int main(void) {
    tm_prof_begin(0);
    stream(rom, WORDS);
    tm_prof_end(0);
    tm_prof_begin(1);
    stream(ram, WORDS);
    tm_prof_end(1);
    return 0;
}
"""


def test_flash_stream_through_the_data_cache_vs_sram(tmp_path: Path) -> None:
    """``ldr r2, [r0], #4`` over 1024 words.  From flash (WS = 5, 8-byte units, a 256-byte
    data cache of 32-byte lines): the first word of every unit misses, the second hits:
    512 misses, 512 hits.  Between two misses the loop runs twice (>= 6 cycles each:
    LDR 2, SUBS 1, BNE 1 + refill 2), longer than the flash port is busy (WS + 1 = 6), so
    every miss stalls WS: 512 x 5 = 2560 cycles; only the very first load may also wait
    for the instruction prefetch the loop's own first fetch left on the flash port (a read
    in flight is not aborted: at most WS + 1 per 8-byte code unit of the loop, 2 here).
    From SRAM (0 WS): no stall, no cache lookups.  Every load is counted in its region."""
    board = board_with()
    run, image = run_program(board, STREAM_PROGRAM, tmp_path)
    flash, ram = rows_of(run, image, "stream", 0), rows_of(run, image, "stream", 1)
    assert stat(run, flash, "count") == 1024
    assert stat(run, flash, "loads.flash") == 1024 and stat(run, flash, "loads.sram") == 0
    assert (stat(run, flash, "dcache_miss"), stat(run, flash, "dcache_hit")) == (512, 512)
    assert 512 * 5 <= stat(run, flash, "data_stall") <= 512 * 5 + 2 * 6
    assert stat(run, ram, "loads.sram") == 1024 and stat(run, ram, "loads.flash") == 0
    assert stat(run, ram, "data_stall") == 0
    # the flash array is read once per D-cache miss (512), not per flash load (1024), plus
    # the loop's first fetch (at most 2 units on demand and their prefetches); from SRAM
    # only that fetch
    assert 512 <= stat(run, flash, "flash_reads") <= 512 + 4
    assert stat(run, ram, "flash_reads") <= 4
    assert (stat(run, ram, "dcache_miss"), stat(run, ram, "dcache_hit")) == (0, 0)
    # and the loop costs that stall more from flash, and nothing else (fetch aside)
    assert stat(run, flash, "cycles") - stat(run, ram, "cycles") == pytest.approx(
        stat(run, flash, "data_stall") + stat(run, flash, "ifetch_stall")
        - stat(run, ram, "ifetch_stall"))


def test_flash_stream_without_a_data_cache_pays_every_load(tmp_path: Path) -> None:
    """The same stream with no data cache: each of the 1024 loads is a flash access of
    WS = 5 cycles (the port is free again after 6 cycles, before the next load), the first
    one possibly after the loop's first prefetch (see above)."""
    board = board_with(accelerator={"prefetch": True, "icache_bytes": 1024, "icache_line": 32})
    run, image = run_program(board, STREAM_PROGRAM, tmp_path)
    flash = rows_of(run, image, "stream", 0)
    assert 1024 * 5 <= stat(run, flash, "data_stall") <= 1024 * 5 + 2 * 6
    assert (stat(run, flash, "dcache_miss"), stat(run, flash, "dcache_hit")) == (0, 0)
    assert 1024 <= stat(run, flash, "flash_reads") <= 1024 + 4


def _nops(n: int) -> str:
    return " ".join(["nop\\n"] * n)


def loop_program(nops: int) -> str:
    """``loop(n)``: *nops* NOPs, SUBS, BNE back; aligned to the 32-byte cache line."""
    return r"""
__attribute__((naked, noinline, aligned(32))) void loop(uint32_t n) {
    __asm__ volatile(".syntax unified\n1: """ + _nops(nops) + r""" subs r0, r0, #1\n bne 1b\n bx lr\n");
}
int main(void) {
    tm_prof_begin(0);
    loop(10);
    tm_prof_end(0);
    tm_prof_begin(1);
    loop(30);
    tm_prof_end(1);
    return 0;
}
"""


#: WS = 4, no prefetch, a 64-byte instruction cache of two 32-byte lines.
SMALL_CACHE = {"prefetch": False, "icache_bytes": 64, "icache_line": 32, "dcache_bytes": 0}


def test_loop_that_fits_the_instruction_cache(tmp_path: Path) -> None:
    """24 NOPs + SUBS + BNE = 52 bytes = units 0..6 of 8 bytes, two cache lines: the first
    iteration misses all 7 units (each a new flash access, WS = 4 without prefetch:
    7 x 4 = 28 cycles); every later iteration hits.  10 and 30 iterations stall the same
    (the harness code run between the two calls evicts both lines again)."""
    board = board_with({"wait_states": 4}, SMALL_CACHE)
    run, image = run_program(board, loop_program(24), tmp_path)
    for layer, n in ((0, 10), (1, 30)):
        rows = rows_of(run, image, "loop", layer)
        assert stat(run, rows, "count") == n
        assert stat(run, rows, "icache_miss") == 7
        assert stat(run, rows, "icache_hit") == 7 * n - 7
        assert stat(run, rows, "ifetch_stall") == 7 * 4
        assert stat(run, rows, "flash_reads") == 7  # one array read per missed unit


def test_loop_larger_than_the_instruction_cache(tmp_path: Path) -> None:
    """40 NOPs + SUBS + BNE = 84 bytes = 11 units on three 32-byte lines, cycled through a
    two-line LRU cache: every line is evicted before it comes round again, so all 11
    units miss on every iteration, each a flash access of WS = 4: 44 cycles per
    iteration, exactly."""
    board = board_with({"wait_states": 4}, SMALL_CACHE)
    run, image = run_program(board, loop_program(40), tmp_path)
    for layer, n in ((0, 10), (1, 30)):
        rows = rows_of(run, image, "loop", layer)
        assert stat(run, rows, "icache_miss") == 11 * n
        assert stat(run, rows, "icache_hit") == 0
        assert stat(run, rows, "ifetch_stall") == 44 * n
        assert stat(run, rows, "flash_reads") == 11 * n


def test_prefetch_overlaps_sequential_fetch(tmp_path: Path) -> None:
    """No cache, prefetch on, WS = 4: 42 NOPs + SUBS + BNE = 88 bytes = 11 units of 4
    one-cycle instructions.  An iteration starts after a taken branch: the first unit is a
    new access (stall WS = 4; the useless prefetch of the unit after the loop finished
    while the last unit and the refill ran).  Each later unit was requested when the one
    before was delivered and arrives WS + 1 = 5 cycles after it, while the core spends 4
    cycles on a unit: 1 cycle of stall each.  So 4 + 10 x 1 = 14 cycles per iteration; the
    30- and 10-iteration calls differ by 20 x 14 = 280.  The first iteration's first unit
    may also wait for a prefetch the caller's code left in flight (at most WS + 1)."""
    board = board_with({"wait_states": 4}, {"prefetch": True})
    run, image = run_program(board, loop_program(42), tmp_path)
    short, long = (stat(run, rows_of(run, image, "loop", layer), "ifetch_stall")
                   for layer in (0, 1))
    assert long - short == 20 * 14
    assert 10 * 14 <= short <= 10 * 14 + 5
    # flash array reads per iteration: the first unit on demand, then one prefetch per
    # delivered unit (11), the last one discarded by the taken branch: 12
    assert [stat(run, rows_of(run, image, "loop", layer), "flash_reads")
            for layer in (0, 1)] == [10 * 12, 30 * 12]


BRANCH_PROGRAM = r"""
static const uint8_t pattern[64] = {
    0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0,
    0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1};
/* counts the ones; CBZ skips the increment on a zero */
__attribute__((naked, noinline)) uint32_t ones(const uint8_t *p, uint32_t n) {
    __asm__ volatile(".syntax unified\n movs r2, #0\n"
                     "1: ldrb r3, [r0], #1\n cbz r3, 2f\n"
                     "adds r2, r2, #1\n"
                     "2: subs r1, r1, #1\n bne 1b\n mov r0, r2\n bx lr\n");
}
int main(void) {
    tm_prof_begin(0);
    uint32_t n = ones(pattern, 64);
    tm_prof_end(0);
    return n == 16 ? 0 : 1;
}
"""


def test_data_dependent_branch_outcomes_are_exact(tmp_path: Path) -> None:
    """The pattern has 48 zeros and 16 ones.  Blocks of ``ones`` and their outcomes:
    entry (MOVS; LDRB; CBZ) once, taken (pattern[0] = 0); loop head (LDRB; CBZ) 63 times,
    taken on the 47 other zeros, falling through on the 16 ones; (ADDS; SUBS; BNE) 16
    times, back-edge taken but for the last element (a one); (SUBS; BNE) 48 times, all
    taken; (MOV; BX LR) once, taken.  Each taken outcome costs the refill, a
    fall-through nothing."""
    board = board_with()
    run, image = run_program(board, BRANCH_PROGRAM, tmp_path)
    assert run.exit_code == 0
    inside = np.array([(image.symbol_at(a) or (None,))[0] is not None
                       and image.symbol_at(a)[0].name == "ones"
                       for a in run.blocks.address.tolist()])
    rows = sorted((int(run.blocks.count[i]), int(run.stats[i, STAT["taken"]]),
                   int(run.stats[i, STAT["not_taken"]])) for i in np.flatnonzero(inside))
    assert rows == sorted([(1, 1, 0), (63, 47, 16), (16, 15, 1), (48, 48, 0), (1, 1, 0)])
    refill = to_fixed(cost_model_for(board).params.branch_refill)
    assert int(run.stats[inside, STAT["branch"]].sum()) == (1 + 47 + 15 + 48 + 1) * refill


SEAM_PROGRAM = r"""
#define LOOP ".syntax unified\n1: ldr r2, [r0]\n ldr r3, [r0, #4]\n ldr r2, [r0, #8]\n" \
             " ldr r3, [r0, #12]\n subs r1, r1, #1\n bne 1b\n bx lr\n"
static uint32_t data[4];
/* the loop starts 4 bytes (two 16-bit loads) before a 1 KiB boundary: the emulator's
 * translation blocks end at such boundaries, so it cuts the loop between its 2nd and 3rd
 * load */
__attribute__((naked, noinline, aligned(1024))) void straddle(const uint32_t *p, uint32_t n) {
    __asm__ volatile(".syntax unified\n b 2f\n .balign 1024\n .space 1020\n 2:\n" LOOP);
}
__attribute__((naked, noinline, aligned(1024))) void whole(const uint32_t *p, uint32_t n) {
    __asm__ volatile(LOOP);
}
int main(void) {
    tm_prof_begin(0);
    straddle(data, 100);
    tm_prof_end(0);
    tm_prof_begin(1);
    whole(data, 100);
    tm_prof_end(1);
    return 0;
}
"""


@pytest.mark.parametrize("board_name", ["nucleo-l4r5zi", "nucleo-f207zg", "nucleo-f767zi"])
def test_core_cycles_do_not_depend_on_where_the_emulator_cuts_blocks(board_name: str,
                                                                       tmp_path: Path) -> None:
    """Four back-to-back loads: on M3/M4 the first takes 2 cycles, the next three pipeline
    (1 each).  Crossing a 1 KiB boundary, the loop is two translation blocks in the
    emulator; the second piece's first load still pipelines behind the first piece's
    last (the hook joins blocks that fall through), so both loops cost the same core
    cycles: loads + SUBS + BNE per iteration."""
    from tinymeter.sim.timing import group_splits

    board = load_board(board_name)
    run, image = run_program(board, SEAM_PROGRAM, tmp_path)
    model = cost_model_for(board)
    splits = group_splits(run.stats, run.blocks.layer, 2)
    loop_rows = [rows_of(run, image, "whole", 1)]
    whole_core = stat(run, loop_rows[0], "cycles") - stat(run, loop_rows[0], "branch") \
        - stat(run, loop_rows[0], "ifetch_stall") - stat(run, loop_rows[0], "data_stall")
    p = model.params
    per_iteration = p.cpi["load"] + 3 * p.pipelined_load + p.cpi["alu"] + p.cpi["branch"]
    if p.dual_issue_alu is not None:  # M7: SUBS pairs with the last load
        per_iteration += p.dual_issue_alu - p.cpi["alu"]
    assert whole_core == pytest.approx(100 * per_iteration)
    # the straddling loop: every block of layer 0 except the B that skips the padding
    # and the calls around it; compare the loop's core cycles through the split rows
    straddle = image.require_symbol("straddle").address & ~1
    loop = straddle + 2 + 1022 + 1020  # after the B and the padding to the next 1 KiB
    cut = (run.blocks.layer == 0) & (run.blocks.address >= loop) \
        & (run.blocks.address < loop + 10)
    assert int(run.blocks.count[cut].max()) == 100 and cut.sum() >= 2  # really cut in two
    straddle_core = sum(stat(run, cut, n) * sign for n, sign in
                        (("cycles", 1), ("branch", -1), ("ifetch_stall", -1), ("data_stall", -1)))
    assert straddle_core == pytest.approx(whole_core)
    assert splits[0].cycles["core"] > 0


def test_unified_cache_serves_flash_data_through_the_instruction_cache(tmp_path: Path) -> None:
    """A Cortex-M33-style ICACHE on the code bus (``unified``): no data cache, yet flash
    data reads go through the 8 KiB instruction cache, so the 4 KiB stream misses once per
    8-byte unit (512 x WS = 2560 cycles) and its lookups show up as data-cache traffic;
    without ``unified`` every load would pay (1024 x 5)."""
    board = board_with(accelerator={"prefetch": True, "icache_bytes": 8192, "icache_line": 32,
                                    "unified": True})
    run, image = run_program(board, STREAM_PROGRAM, tmp_path)
    flash = rows_of(run, image, "stream", 0)
    assert (stat(run, flash, "dcache_miss"), stat(run, flash, "dcache_hit")) == (512, 512)
    assert 512 * 5 <= stat(run, flash, "data_stall") <= 512 * 5 + 2 * 6


def test_m7_predicts_a_loop_back_edge_and_pays_only_mispredictions(tmp_path: Path) -> None:
    """Cortex-M7: ``loop(n)`` (4 NOPs, SUBS, BNE back) is one block whose BNE the hook
    predicts with a 2-bit counter per block end, starting weakly not-taken.  loop(10):
    the first back-edge is mispredicted (counter 1 -> 2), the next 8 are predicted taken
    (-> 3), the exit falls through against the prediction (-> 2): 2 mispredictions.
    loop(30) then starts with the counter at 2: its 29 back-edges are predicted, the exit
    is mispredicted: 1.  Only mispredictions cost (4 cycles each on the datasheet
    model); a correctly predicted taken branch costs no refill.  On the Cortex-M4 (no
    predictor) every taken outcome pays the refill and nothing is mispredicted."""

    m7 = load_board("nucleo-f767zi")
    run, image = run_program(m7, loop_program(4), tmp_path)
    penalty = cost_model_for(m7).params.branch_mispredict
    assert penalty == 4.0
    for layer, n, wrong in ((0, 10, 2), (1, 30, 1)):
        rows = rows_of(run, image, "loop", layer)
        assert (stat(run, rows, "taken"), stat(run, rows, "not_taken")) == (n - 1, 1)
        assert stat(run, rows, "mispredict") == wrong
        assert stat(run, rows, "branch") == wrong * penalty
    # the virtual silicon's 1-bit predictor repeats the last outcome (starting not taken):
    # every loop call mispredicts its first back-edge and its exit, 2 per call
    from dataclasses import replace

    model = cost_model_for(m7)
    one_bit = replace(model, params=replace(model.params, branch_predictor="1bit"))
    elf = build_program(m7, loop_program(4), tmp_path / "1bit")
    run = Emulator(m7, cost_model=one_bit).run(elf, [[]], budget_instructions=10**7,
                                               timeout_s=30)
    for layer in (0, 1):
        assert stat(run, rows_of(run, image, "loop", layer), "mispredict") == 2
    m4 = board_with()
    run, image = run_program(m4, loop_program(4), tmp_path / "m4")
    rows = rows_of(run, image, "loop", 1)
    assert stat(run, rows, "mispredict") == 0
    assert stat(run, rows, "branch") == 29 * cost_model_for(m4).params.branch_refill


UNALIGNED_PROGRAM = r"""
static uint8_t ram[64] __attribute__((aligned(32)));
/* the same five 32-bit encodings, at unaligned and at aligned offsets */
__attribute__((naked, noinline, aligned(32))) void unaligned(uint8_t *p, uint32_t n) {
    __asm__ volatile(".syntax unified\n1: ldr.w r2, [r0, #1]\n ldr.w r3, [r0, #6]\n"
                     "ldrh.w r2, [r0, #11]\n ldrh.w r3, [r0, #12]\n str.w r2, [r0, #17]\n"
                     "subs r1, r1, #1\n bne 1b\n bx lr\n");
}
__attribute__((naked, noinline, aligned(32))) void aligned(uint8_t *p, uint32_t n) {
    __asm__ volatile(".syntax unified\n1: ldr.w r2, [r0, #0]\n ldr.w r3, [r0, #4]\n"
                     "ldrh.w r2, [r0, #10]\n ldrh.w r3, [r0, #12]\n str.w r2, [r0, #16]\n"
                     "subs r1, r1, #1\n bne 1b\n bx lr\n");
}
__attribute__((naked, noinline, aligned(32))) void ldrd_off(uint8_t *p, uint32_t n) {
    __asm__ volatile(".syntax unified\n adds r0, #2\n1: ldrd r2, r3, [r0]\n"
                     "subs r1, r1, #1\n bne 1b\n bx lr\n");
}
int main(void) {
    tm_prof_begin(0);
    unaligned(ram, 100);
    tm_prof_end(0);
    tm_prof_begin(1);
    aligned(ram, 100);
    tm_prof_end(1);
    TAIL
    return 0;
}
"""


def _core_and_memory(run: RunResult, mask: np.ndarray) -> float:
    """A row's cycles without its fetch and data stalls (which depend on where the code
    sits in the caches, not on the data addresses)."""
    return stat(run, mask, "cycles") - stat(run, mask, "ifetch_stall") \
        - stat(run, mask, "data_stall")


@pytest.mark.parametrize(("board_name", "extra"), [("nucleo-l4r5zi", 6), ("nucleo-f767zi", 4),
                                                   ("nucleo-l552ze-q", 6)])
def test_unaligned_accesses_are_split_and_charged(board_name: str, extra: int,
                                                  tmp_path: Path) -> None:
    """Per iteration, in SRAM: LDR at 1 mod 4, LDR at 2 mod 4, LDRH at an odd address, an
    aligned LDRH and STR at 1 mod 4.  Cortex-M3/M4 TRM load/store timings (and the M33's
    AHB split): byte + halfword + byte (+2), two halfwords (+1), two bytes (+1), none,
    +2: 6 extra transactions.  Cortex-M7: each unaligned access is two accesses: 4.
    100 iterations: 100 x extra in ``unaligned.sram``, and the loop costs exactly that many
    cycles (``unaligned`` = 1 cycle per transaction) more than its aligned twin of the
    same encodings; with ``unaligned`` calibrated to 2.5 the difference scales with it."""
    from dataclasses import replace


    board = load_board(board_name)
    source = UNALIGNED_PROGRAM.replace("TAIL", "")
    run, image = run_program(board, source, tmp_path)
    odd, even = rows_of(run, image, "unaligned", 0), rows_of(run, image, "aligned", 1)
    assert stat(run, odd, "unaligned.sram") == 100 * extra
    assert stat(run, even, "unaligned.sram") == 0
    assert stat(run, odd, "align_faults") == 0 and run.align_faults == 0
    assert (stat(run, odd, "loads.sram"), stat(run, odd, "stores.sram")) == (400, 100)
    assert _core_and_memory(run, odd) - _core_and_memory(run, even) == 100 * extra
    # the report says so per layer (JSON ``timing`` and the text "why" lines)
    split = group_splits(run.stats, run.blocks.layer, 2)[0].to_dict()
    assert split["unaligned"] == {"sram": 100 * extra} and split["align_faults"] == 0
    assert f"unaligned sram {100 * extra} extra bus transactions" in timing_lines(split)
    model = cost_model_for(board)
    slow = replace(model, params=replace(model.params, unaligned=2.5))
    elf = build_program(board, source, tmp_path)
    run2 = Emulator(board, cost_model=slow).run(elf, [[]], budget_instructions=10**7,
                                                 timeout_s=30)
    assert _core_and_memory(run2, odd) - _core_and_memory(run2, even) == 250 * extra


def test_unaligned_ldrd_is_reported_not_priced(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                               ) -> None:
    """LDRD must be word aligned (ARMv7-M A3.2.1: UsageFault UNALIGNED); the emulator
    executes it at 2 mod 4 anyway, so the hook counts it as a fault at its PC (the
    function's second halfword, after the 16-bit ADDS) instead of pricing a split."""

    board = load_board("nucleo-l4r5zi")
    with caplog.at_level("WARNING"):
        run, image = run_program(board, UNALIGNED_PROGRAM.replace("TAIL", "ldrd_off(ram, 10);"),
                                 tmp_path)
    pc = (image.require_symbol("ldrd_off").address & ~1) + 2
    assert run.align_faults == 10 and run.align_fault_pc == pc
    rows = run.blocks.address == pc
    assert stat(run, rows, "align_faults") == 9  # the first execution is in the entry block
    assert int(run.stats[:, STAT["align_faults"]].sum()) == 10
    assert int(run.stats[:, [STAT[f"unaligned.{b}"] for b in ("flash", "sram")]].sum()) == 600
    assert f"pc=0x{pc:08x}" in caplog.text and "ldrd_off" in caplog.text
    split = group_splits(run.stats, run.blocks.layer, 1)[0].to_dict()
    assert split["align_faults"] == 0  # outside the layers; the whole run has them:
    whole = group_splits(run.stats, np.zeros_like(run.blocks.layer), 1)[0].to_dict()
    assert whole["align_faults"] == 10
    assert "10 accesses that fault on silicon" in timing_lines(whole)[2]


def test_unaligned_access_on_armv6m_names_the_fault(tmp_path: Path) -> None:
    """ARMv6-M faults on every unaligned access (the emulator takes the data abort too):
    the error says that it was the alignment, at the instruction's PC."""
    from tinymeter.core.errors import FirmwareFault

    board = load_board("nucleo-g0b1re")
    source = r"""
static uint8_t ram[16] __attribute__((aligned(8)));
__attribute__((naked, noinline)) uint32_t odd(uint8_t *p) {
    __asm__ volatile(".syntax unified\n movs r3, #1\n ldr r0, [r0, r3]\n bx lr\n");
}
int main(void) { return (int)odd(ram); }
"""
    elf = build_program(board, source, tmp_path)
    pc = (ElfImage.load(elf).require_symbol("odd").address & ~1) + 2
    with pytest.raises(FirmwareFault, match=f"unaligned access the cortex-m0plus does not "
                                            f"allow.*pc=0x{pc:08x}"):
        Emulator(board).run(elf, [[]], budget_instructions=10**6, timeout_s=30)


MEMO_PROGRAM = r"""
static const uint8_t rom[256] __attribute__((aligned(32))) = {[0 ... 255] = 3};
static uint8_t ram[256] __attribute__((aligned(32)));
/* halfword and word loads through a pointer that steps by one byte (its alignment
 * changes every iteration), a store, and a literal-pool load from flash */
__attribute__((naked, noinline)) uint32_t walk(const uint8_t *p, uint32_t n, uint8_t *out) {
    __asm__ volatile(".syntax unified\n movs r3, #0\n mov ip, r3\n"
                     "1: ldrh r3, [r0, #1]\n add ip, ip, r3\n ldr r3, [r0, #4]\n"
                     "add ip, ip, r3\n ldr r3, =0x12345678\n strb r3, [r2, #1]\n"
                     "adds r0, r0, #1\n subs r1, r1, #1\n bne 1b\n mov r0, ip\n bx lr\n"
                     ".ltorg\n");
}
int main(void) {
    uint32_t s = 0;
    for (int k = 0; k < 4; k++) {
        tm_prof_begin(k);
        s += walk(k & 1 ? rom : ram, 200, ram);  /* the same blocks over SRAM, then flash */
        tm_prof_end(k);
    }
    return s == 0xFFFFFFFFu;
}
"""


def runs_with_and_without_data_memo(monkeypatch: pytest.MonkeyPatch, board: Board, elf: Path,
                                    budget_instructions: int, timeout_s: float
                                    ) -> RunResult:
    """Run *elf* with the hook's data memo on and off; assert every cycle and statistic is
    the same (the memo is an exact shortcut) and return the run with the memo."""

    def run(memo: int) -> RunResult:
        def config(*args: Any, **kwargs: Any) -> Any:
            cfg = timing_config(*args, **kwargs)
            cfg.data_memo = memo
            return cfg

        monkeypatch.setattr(emulator_module, "timing_config", config)
        return Emulator(board).run(elf, [[]], budget_instructions=budget_instructions,
                                   timeout_s=timeout_s)

    fast, full = run(1), run(0)
    assert fast.cycles_fixed == full.cycles_fixed
    assert np.array_equal(fast.blocks.address, full.blocks.address)
    assert np.array_equal(fast.stats, full.stats)
    return fast


@pytest.mark.parametrize("board_name", ["nucleo-l4r5zi", "nucleo-f767zi"])
def test_data_memo_is_exact(board_name: str, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook's data-side memo skips evaluating accesses to free (zero-wait, uncached)
    regions after a block's first execution; every statistic and cycle must be what the
    full evaluation of every access gives: here a pointer whose alignment changes every
    iteration (unaligned halfword/word loads, split per the TRM), the same blocks walking
    SRAM and then flash (the memo must re-record), a store, a literal load from flash."""

    board = load_board(board_name)
    elf = build_program(board, MEMO_PROGRAM, tmp_path)

    fast = runs_with_and_without_data_memo(monkeypatch, board, elf, 10**7, 30)
    walked = (fast.blocks.layer >= 0) & (fast.stats[:, STAT["loads.sram"]] > 0)
    assert int(fast.stats[walked, STAT["unaligned.sram"]].sum()) > 0
    assert int(fast.stats[:, STAT["unaligned.flash"]].sum()) > 0


MLPERF_KWS = (Path(__file__).resolve().parents[2].parent / "shared" / "models" / "mlperf-tiny"
              / "kws_ref_model.tflite")


@pytest.mark.slow
@pytest.mark.skipif(not MLPERF_KWS.exists(), reason="MLPerf Tiny models not present")
def test_data_memo_is_exact_on_a_real_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """KWS with the reference kernels on the L4R5 (activations in SRAM, weights and literal
    pools in flash, byte pointers): every statistic and cycle identical with and without
    the data memo."""
    from tinymeter.apps.estimate import build_model
    from tinymeter.firmware.build import BuildConfig

    board = load_board("nucleo-l4r5zi")
    elf = build_model(MLPERF_KWS, board, BuildConfig(kernels="reference")).elf

    runs_with_and_without_data_memo(monkeypatch, board, elf, 10**9, 300)
