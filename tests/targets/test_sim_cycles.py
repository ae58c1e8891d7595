"""Cycles summed by the native hook, and the emulated DWT CYCCNT / SysTick that expose them.

* The hook's per-(block, layer) cycles must equal count x the fixed-point core cost of
  the block plus the row's branch-outcome costs and memory stalls exactly, with branch
  outcomes counted exactly (a loop of n iterations: n - 1 taken, 1 not taken).
* Firmware that times its layers with the cycle counter (our harness's
  ``tm_prof_begin/tm_prof_end`` -> ``TM1 L i op cycles``) must print the emulator's
  per-layer estimate, up to the exact rule in :func:`expected_firmware_cycles`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from tinymeter.core.boards import Board, load_board
from tinymeter.sim.peripherals import (
    DEMCR,
    DWT_CTRL,
    DWT_CYCCNT,
    DWT_PAGE,
    SCS_PAGE,
    SYST_CSR,
    SYST_CVR,
    SYST_RVR,
    SystemTimers,
    UartTx,
)
from tinymeter.sim.testfw import build_program, toolchain_available

needs_gcc = pytest.mark.skipif(not toolchain_available(), reason="arm-none-eabi-gcc missing")

BOARDS = ("nucleo-g0b1re", "nucleo-f207zg", "nucleo-l4r5zi", "nucleo-f767zi", "nucleo-l552ze-q")

LAYERS_PROGRAM = r"""
__attribute__((naked, noinline)) void known_loop(uint32_t n) {
    __asm__ volatile(".syntax unified\n1: adds r1, r1, #1\n subs r0, r0, #1\n bne 1b\n bx lr\n");
}
int main(void) {
    for (uint32_t l = 0; l < 3; l++) {
        tm_prof_begin(l);
        known_loop(100 * (l + 1));
        tm_prof_end(l);
    }
    return 0;
}
"""


# ---------------------------------------------------------------------------------------
# hook sums == post-hoc cost model

@needs_gcc
@pytest.mark.parametrize("board_name", BOARDS)
def test_hook_cycles_are_core_plus_branches_plus_stalls(board_name: str, tmp_path: Path) -> None:
    from tinymeter.sim.costmodel import cost_model_for, to_fixed
    from tinymeter.sim.elf import ElfImage
    from tinymeter.sim.emulator import Emulator
    from tinymeter.sim.native_hook import CYCLE_SCALE, STAT

    board = load_board(board_name)
    model = cost_model_for(board)
    elf = build_program(board, LAYERS_PROGRAM, tmp_path)
    run = Emulator(board, cost_model=model).run(elf, [[]], budget_instructions=10**7,
                                                timeout_s=20)
    profile = run.profile
    assert profile is not None and run.cost_model is model
    counts = run.blocks.count
    expected_cost = np.array([to_fixed(model.core_cycles(profile.infos[(a, s)]))
                              for a, s in zip(run.blocks.address.tolist(),
                                              run.blocks.size.tolist())], dtype=np.uint64)
    assert np.array_equal(run.block_cost, expected_cost)
    stats = run.stats
    # where the emulator split straight code, the second piece may pipeline/pair with the
    # first (seam executions); stall weights are 1 (datasheet), so the weighted stalls are
    # the raw ones exactly
    seams = np.array([[round(d * CYCLE_SCALE) for d in model.seam_deltas(profile.infos[(a, s)])]
                      for a, s in zip(run.blocks.address.tolist(), run.blocks.size.tolist())],
                     dtype=np.int64).reshape(-1, 2)
    seam_cycles = (stats[:, STAT["seam_pipe"]].astype(np.int64) * seams[:, 0]
                   + stats[:, STAT["seam_pair"]].astype(np.int64) * seams[:, 1])
    assert np.array_equal(run.block_cycles.astype(np.int64),
                          (counts * run.block_cost + stats[:, STAT["branch"]]
                           + stats[:, STAT["ifetch_stall"]] + stats[:, STAT["data_stall"]]
                           ).astype(np.int64) + seam_cycles)
    assert run.cycles_fixed == int(run.block_cycles.sum())
    per_layer = run.cycles_per_layer()
    assert set(per_layer) == {-1, 0, 1, 2}
    assert sum(per_layer.values()) == pytest.approx(run.cycles)
    assert per_layer[0] < per_layer[1] < per_layer[2]
    # exact branch outcomes: the loop block runs 100 (l + 1) times per layer l, its
    # back-edge is taken every time but the last
    loop = ElfImage.load(elf).require_symbol("known_loop").address & ~1
    for layer in range(3):
        row = (run.blocks.address == loop) & (run.blocks.layer == layer)
        n = 100 * (layer + 1)
        assert int(counts[row].sum()) == n
        assert int(stats[row, STAT["taken"]].sum()) == n - 1
        assert int(stats[row, STAT["not_taken"]].sum()) == 1
        if model.params.branch_mispredict is None:
            assert int(stats[row, STAT["branch"]].sum()) == (n - 1) * to_fixed(
                model.params.branch_refill)
        else:  # M7: the 2-bit predictor misses the first back-edge (layer 0) and each exit
            wrong = 2 if layer == 0 else 1
            assert int(stats[row, STAT["mispredict"]].sum()) == wrong
            assert int(stats[row, STAT["branch"]].sum()) == wrong * to_fixed(
                model.params.branch_mispredict)


@needs_gcc
def test_cost_callback_failure_stops_the_run(tmp_path: Path) -> None:
    from tinymeter.core.errors import EmulationError
    from tinymeter.sim.costmodel import CostModel, cost_model_for
    from tinymeter.sim.emulator import Emulator

    class Broken(CostModel):
        def block_cost(self, info):  # type: ignore[no-untyped-def]
            raise ValueError("negative block cost")

    board = load_board("nucleo-l4r5zi")
    good = cost_model_for(board)
    bad = Broken(good.name, good.core, good.clock_hz, good.params, good.active_mw)
    elf = build_program(board, LAYERS_PROGRAM, tmp_path)
    with pytest.raises(EmulationError, match="cost model failed.*negative block cost"):
        Emulator(board, cost_model=bad).run(elf, [[]], budget_instructions=10**7, timeout_s=20)


# ---------------------------------------------------------------------------------------
# the firmware's own cycle counter reports the estimate

def expected_firmware_cycles(run, begin: int, end: int, layer: int) -> tuple[int, int]:
    """Bounds of the cycles the firmware prints for *layer* (the exact rule).

    The hook adds a block's whole cost when the block starts, so a CYCCNT/SysTick read
    sees the cycles up to the end of its own block.  (The rule is exact when the blocks
    involved cost the same every time: the check runs without stall weights, and none of
    these blocks ends in a conditional branch.)  The harness reads the counter in
    ``tm_platform_cycles`` called from ``tm_prof_begin`` and again from ``tm_prof_end``;
    the emulator attributes ``tm_prof_begin``'s first block to the layer and
    ``tm_prof_end``'s first block outside it, and the read block is the same both times.
    So the firmware measures X = layer - cost(first block of tm_prof_begin)
    + cost(first block of tm_prof_end) (fixed point), and as both reads round down to
    whole cycles it prints floor(X) or ceil(X).
    """
    from tinymeter.sim.native_hook import CYCLE_SCALE

    t = run.blocks
    layer_fixed = int(run.block_cycles[t.layer == layer].sum())
    begin_cost = {int(c) for c in run.block_cost[(t.address == begin) & (t.layer == layer)]}
    end_cost = {int(c) for c in run.block_cost[t.address == end]}
    assert len(begin_cost) == 1 and len(end_cost) == 1
    x = layer_fixed - begin_cost.pop() + end_cost.pop()
    return x // CYCLE_SCALE, -(-x // CYCLE_SCALE)


def _fc_model(tmp_path: Path) -> Path:
    from tinymeter.models.builders import bias_tensor, int8_tensor, random_int8, single_op_model

    x = int8_tensor("x", (1, 48), 0.05, 2)
    w = int8_tensor("w", (12, 48), 0.01, 0, data=random_int8((12, 48), seed=3))
    b = bias_tensor("b", np.zeros(12, np.int32), input_scale=0.05, weight_scales=w)
    y = int8_tensor("y", (1, 12), 0.2, -1)
    path = tmp_path / "fc.tflite"
    path.write_bytes(single_op_model("FULLY_CONNECTED", [x, w, b], [y]))
    return path


def _check_firmware_report(board: Board, elf: Path) -> int:
    from dataclasses import replace

    from tinymeter.sim.costmodel import cost_model_for
    from tinymeter.sim.elf import ElfImage
    from tinymeter.sim.emulator import Emulator

    image = ElfImage.load(elf)
    begin = image.require_symbol("tm_prof_begin").address
    end = image.require_symbol("tm_prof_end").address
    datasheet = cost_model_for(board)
    steady = replace(datasheet, params=replace(datasheet.params, ifetch_weight=0.0,
                                               data_weight=0.0))
    run = Emulator(board, cost_model=steady).run(elf, [[]], budget_instructions=2 * 10**9,
                                                 timeout_s=300)
    printed = {int(m.group(1)): int(m.group(2))
               for m in re.finditer(r"^TM1 L (\d+) \S+ (\d+)$", run.stdout, re.MULTILINE)}
    assert printed, run.stdout
    for layer, cycles in printed.items():
        lo, hi = expected_firmware_cycles(run, begin, end, layer)
        assert lo <= cycles <= hi, (layer, cycles, lo, hi)
        # and that is the emulator's per-layer estimate within the two hook blocks
        assert abs(cycles - run.cycles_per_layer()[layer]) < 40
    return len(printed)


@pytest.mark.slow
@needs_gcc
@pytest.mark.parametrize("board_name", BOARDS)
def test_firmware_cycle_counter_reports_the_estimate(board_name: str, tmp_path: Path) -> None:
    """M0+ times itself with SysTick (no DWT on ARMv6-M), the others with DWT CYCCNT."""
    from tinymeter.firmware.build import FirmwareBuilder
    from tinymeter.firmware.codegen import generate
    from tinymeter.models.tflite import load_tflite

    board = load_board(board_name)
    gen = generate(load_tflite(_fc_model(tmp_path)), name="fc")
    image = FirmwareBuilder(cache_dir=tmp_path / "cache").build(gen, board)
    assert _check_firmware_report(board, image.elf) == 1


@pytest.mark.tf
@needs_gcc
def test_firmware_cycle_counter_default_model() -> None:
    """Every layer of the default model (DS-CNN) on the M4: the printed cycles follow the rule."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("the default model needs TensorFlow to build")
    from tinymeter.apps.estimate import resolve_model
    from tinymeter.firmware.build import FirmwareBuilder
    from tinymeter.firmware.codegen import generate
    from tinymeter.models.tflite import load_tflite

    board = load_board("nucleo-l4r5zi")
    path = resolve_model(None)
    gen = generate(load_tflite(path), name=path.stem)
    image = FirmwareBuilder().build(gen, board)
    assert _check_firmware_report(board, image.elf) == len(gen.layers)


# ---------------------------------------------------------------------------------------
# register models (pure)

class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def test_dwt_cyccnt_counts_only_when_enabled() -> None:
    clock = Clock()
    t = SystemTimers(clock)
    clock.now = 100
    assert t.read(DWT_PAGE, DWT_CYCCNT - DWT_PAGE, 4) == 0  # disabled: frozen
    t.write(SCS_PAGE, DEMCR - SCS_PAGE, 4, 1 << 24)
    assert t.read(SCS_PAGE, DEMCR - SCS_PAGE, 4) == 1 << 24
    t.write(DWT_PAGE, DWT_CYCCNT - DWT_PAGE, 4, 0)
    t.write(DWT_PAGE, DWT_CTRL - DWT_PAGE, 4, 1)
    clock.now = 350
    assert t.read(DWT_PAGE, DWT_CYCCNT - DWT_PAGE, 4) == 250
    t.write(DWT_PAGE, DWT_CYCCNT - DWT_PAGE, 4, 0xFFFFFFF0)  # wraps at 2^32
    clock.now = 370
    assert t.read(DWT_PAGE, DWT_CYCCNT - DWT_PAGE, 4) == 4
    assert t.read(DWT_PAGE, DWT_CYCCNT - DWT_PAGE + 1, 1) == 0  # byte access
    t.write(DWT_PAGE, DWT_CTRL - DWT_PAGE, 4, 0)  # stop
    clock.now = 1000
    assert t.read(DWT_PAGE, DWT_CYCCNT - DWT_PAGE, 4) == 4
    # the rest of the page is plain storage
    t.write(DWT_PAGE, 0x20, 4, 0x12345678)
    assert t.read(DWT_PAGE, 0x20, 2) == 0x5678


def test_systick_counts_down_and_reloads() -> None:
    clock = Clock()
    t = SystemTimers(clock)
    rvr, cvr, csr = (a - SCS_PAGE for a in (SYST_RVR, SYST_CVR, SYST_CSR))
    t.write(SCS_PAGE, rvr, 4, 99)
    t.write(SCS_PAGE, cvr, 4, 0)
    clock.now = 10
    t.write(SCS_PAGE, csr, 4, 5)  # enable, processor clock
    assert t.read(SCS_PAGE, cvr, 4) == 0
    clock.now = 11
    assert t.read(SCS_PAGE, cvr, 4) == 99  # reload one cycle after 0
    clock.now = 60
    assert t.read(SCS_PAGE, cvr, 4) == 50
    assert not t.read(SCS_PAGE, csr, 4) & (1 << 16)
    clock.now = 110  # reached 0 at 110
    assert t.read(SCS_PAGE, cvr, 4) == 0
    assert t.read(SCS_PAGE, csr, 4) & (1 << 16)
    assert not t.read(SCS_PAGE, csr, 4) & (1 << 16)  # COUNTFLAG clears on read
    clock.now = 111 + 100 * 7 + 30
    assert t.read(SCS_PAGE, cvr, 4) == 99 - 30
    t.write(SCS_PAGE, csr, 4, 4)  # disable: frozen
    clock.now += 1000
    assert t.read(SCS_PAGE, cvr, 4) == 69
    # the firmware's formula: (RVR - CVR) differences are elapsed cycles
    t.write(SCS_PAGE, rvr, 4, 0xFFFFFF)
    t.write(SCS_PAGE, cvr, 4, 0)
    t.write(SCS_PAGE, csr, 4, 5)
    a = (0xFFFFFF - t.read(SCS_PAGE, cvr, 4)) & 0xFFFFFF
    clock.now += 12345
    b = (0xFFFFFF - t.read(SCS_PAGE, cvr, 4)) & 0xFFFFFF
    assert (b - a) & 0xFFFFFF == 12345


@pytest.mark.parametrize(("kind", "data", "status"), [("stm32-usart", 0x28, 0x1C),
                                                       ("stm32-usart-legacy", 0x04, 0x00)])
def test_uart_tx_model(kind: str, data: int, status: int) -> None:
    out: list[bytes] = []
    u = UartTx(kind, 0x40004800, out.append)
    assert u.pages() == (0x40004000,)
    base = 0x800
    assert u.read(0x40004000, base + status, 4) & 0xC0 == 0xC0
    for ch in b"ok\n":
        u.write(0x40004000, base + data, 4, ch | 0x100)
    u.write(0x40004000, base + 0x0C, 4, 0x2D)  # baud rate register: stored only
    assert b"".join(out) == b"ok\n"
    assert u.read(0x40004000, base + 0x0C, 4) == 0x2D
    with pytest.raises(ValueError, match="unknown UART kind"):
        UartTx("pl011", 0, out.append)


def test_board_uart_kind_is_strict() -> None:
    import tomllib

    from tinymeter.core.boards import parse_board
    from tinymeter.core.errors import ConfigError

    path = Path(__file__).resolve().parents[2] / "tinymeter" / "boards" / "nucleo-f207zg.toml"
    raw = tomllib.loads(path.read_text())
    assert parse_board(raw).uart.kind == "stm32-usart-legacy"
    assert load_board("nucleo-l4r5zi").uart.kind == "stm32-lpuart"
    raw["uart"]["kind"] = "pl011"
    with pytest.raises(ConfigError, match="uart.kind"):
        parse_board(raw)
    raw["uart"]["kind"] = "stm32-usart"
    raw["uart"]["tdr"] = 0x28
    with pytest.raises(ConfigError, match="unknown key"):
        parse_board(raw)


def test_fixed_point_rounding() -> None:
    from tinymeter.sim.costmodel import to_fixed as to_fixed_cycles
    from tinymeter.sim.native_hook import CYCLE_SCALE

    assert to_fixed_cycles(1.0) == CYCLE_SCALE
    assert to_fixed_cycles(0.75) == 3 * CYCLE_SCALE // 4
    assert abs(to_fixed_cycles(0.6) / CYCLE_SCALE - 0.6) <= 0.5 / CYCLE_SCALE
    assert math.isclose(to_fixed_cycles(12.35) / CYCLE_SCALE, 12.35, abs_tol=1e-5)
    with pytest.raises(ValueError):
        to_fixed_cycles(-1.0)
