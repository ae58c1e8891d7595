"""An STM32Cube-style application (``tests/data/cube_app.c``) runs unpatched in the
emulator: HAL-like clock setup polling ready flags, SysTick-driven HAL_Delay, TIM3
update interrupts, LPUART1 printf after TEACK/REACK, TIM2 timing a workload, GPIO
marks, and an inlined Error_Handler that is an error.  The firmware's own TIM2 reading
must agree with tinymeter's span cycles within 1%."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tinymeter.core.boards import Board, load_board
from tinymeter.sim.testfw import build_program, toolchain_available

pytestmark = pytest.mark.skipif(not toolchain_available(), reason="arm-none-eabi-gcc missing")

SOURCE = Path(__file__).resolve().parents[1] / "data" / "cube_app.c"
SPAN = ("start_timer", "stop_timer_and_measure")


def build_cube(board: Board, workdir: Path, *defines: str) -> Path:
    return build_program(board, SOURCE.read_text(), workdir, name="cube_app", opt="-O2",
                         extra_flags=tuple(f"-D{d}" for d in defines), startup=False)


@pytest.fixture(scope="module")
def board() -> Board:
    return load_board("nucleo-l4r5zi")


def _firmware_cycles(stdout: str) -> int:
    m = re.search(r"workload -?\d+: (\d+) cycles", stdout)
    assert m, stdout
    return int(m.group(1))


def test_cube_app_unpatched_timer_matches_span(board: Board, tmp_path: Path) -> None:
    from tinymeter.apps.estimate import estimate_elf
    from tinymeter.sim.emulator import Emulator

    elf = build_cube(board, tmp_path, "TIM3_TICKS=5u")
    est = estimate_elf(elf, board, span=SPAN, span_count=0, budget_instructions=10**7,
                       timeout_s=60)
    assert len(est.layers) == 1
    span_cycles = est.layers[0].cycles
    run = Emulator(board, stop_on_idle=True).run(elf, [], budget_instructions=10**7,
                                                 timeout_s=60)
    lines = run.stdout.splitlines()
    assert lines[:2] == ["boot at 120000000 Hz", "delay 3 ms: 4 ticks"]  # HAL: >= delay + 1
    assert re.fullmatch(r"tim3 5 updates at tick (9|10)", lines[2])
    firmware = _firmware_cycles(run.stdout)
    assert firmware == pytest.approx(span_cycles, rel=0.01)  # SysTick/TIM3 handlers in both
    assert firmware < span_cycles  # TIM2 starts inside start_timer, after the span does
    assert run.stop_reason.startswith("idle loop at main+")
    led = [(m.mark, m.level) for m in run.marks if m.mark == "PB7"]
    assert led == [("PB7", 1), ("PB7", 0)]
    rows = {f.name for f in est.functions}
    assert "workload" in rows and "SystemClock_Config" not in rows


def test_cube_app_error_handler_inlined_is_an_error(board: Board, tmp_path: Path) -> None:
    from tinymeter.apps.estimate import estimate_elf
    from tinymeter.core.errors import FirmwareFault

    elf = build_cube(board, tmp_path, "NO_DELAY", "FLASH_LATENCY_EXPECTED=4u")
    with pytest.raises(FirmwareFault, match=r"error trap Error_Handler; call path: "
                       r"Error_Handler \(inlined into SystemClock_Config\) <- main"):
        estimate_elf(elf, board, span=SPAN, budget_instructions=10**7, timeout_s=60)


def test_cube_app_one_command(board: Board, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """The README's one command: span rows, span profile and the firmware's own output."""
    from tinymeter.cli.main import main

    elf = build_cube(board, tmp_path)
    assert main(["estimate", "--elf", str(elf), "--board", board.name, "-q", "--profile", "3",
                 "--span", f"{SPAN[0]}:{SPAN[1]}"]) == 0
    out = capsys.readouterr().out
    assert f"{SPAN[0]}:{SPAN[1]} #1" in out
    assert f"top functions (span {SPAN[0]}:{SPAN[1]}):" in out
    # the run stopped at the end of the span: the firmware has not printed its number yet
    assert "firmware console (last lines):\n  boot at 120000000 Hz\n  delay 3 ms: 4 ticks" in out
