"""The hardware image: board boot writes, UART report, power-monitor marker pins.

Why: the firmware flashed to a board runs without a debugger, so it must report over
the board UART (semihosting would fault) and mark inference and layer boundaries on
GPIO pins for the power monitor.  Checked here: board-file parsing of ``[[init]]`` and
``[markers]``, the generated C tables and baud divisors (exact), the compiler argv,
the emulator's register model, and the image itself running in the emulator on every
shipped board: the same outputs and report as the semihosting image, the report
arriving through the emulated UART, and marker edges that split an inference into
exactly its layers for :func:`tinymeter.hw.power.trace.layer_energy`.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinymeter.apps.estimate import build_model, resolve_model
from tinymeter.core.boards import UART_LAYOUTS, list_boards, load_board, parse_board
from tinymeter.core.errors import ConfigError
from tinymeter.firmware.boardgen import board_source, uart_brr
from tinymeter.firmware.build import BuildConfig, FirmwareBuilder, board_sources, compile_argv
from tinymeter.hw.power.trace import PowerTrace, layer_energy
from tinymeter.sim.peripherals import BoardRegisters, MarkEvent


def _raw(name: str = "nucleo-l4r5zi") -> dict[str, Any]:
    board = load_board(name)
    assert board.path is not None
    return tomllib.loads(board.path.read_text())


# -- board files ----------------------------------------------------------------------------


def test_shipped_boards_have_hardware_io() -> None:
    for name in list_boards():
        board = load_board(name)
        assert board.uart.layout is not None and board.uart.kernel_clock_hz > 0, name
        assert board.markers.inference is not None and board.markers.layer is not None, name
        assert board.init, name
        # the flash wait states the image programs are the board file's own
        acr = [r for r in board.init if r.what.startswith("FLASH_ACR")]
        assert len(acr) == 1 and acr[0].wait_value == board.text.wait_states, name


def test_init_and_markers_parse() -> None:
    board = load_board("nucleo-l4r5zi")
    acr = next(r for r in board.init if r.addr == 0x40022000)
    assert (acr.addr, acr.set, acr.clear, acr.wait_mask, acr.wait_value) == (
        0x40022000, 0x705, 0xF, 0xF, 0x5)
    assert board.hardware_clock_hz == board.clock_hz == 120_000_000
    assert load_board("nucleo-f767zi").hardware_clock_hz == 16_000_000
    assert board.markers.inference is not None
    assert board.markers.inference.pin == "PE9"
    assert (board.markers.inference.set_addr, board.markers.inference.set_value,
            board.markers.inference.clear_value) == (0x48001018, 1 << 9, 1 << 25)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r["init"][0].update(color="red"), r"init\[0\]: unknown key\(s\) color"),
    (lambda r: r["init"][0].pop("addr"), r"init\[0\]: missing key\(s\) addr"),
    (lambda r: r["init"][0].update(addr=0x40021002), "not word-aligned"),
    (lambda r: r["init"][0].update(set=1 << 32), "does not fit a 32-bit register"),
    (lambda r: r["init"][0].update(wait_mask=0x1, wait_value=0x2), "outside wait_mask"),
    (lambda r: r.update(init=[1]), r"init\[0\]: must be a table"),
    (lambda r: r["markers"].update(debug={}), r"markers: unknown key\(s\) debug"),
    (lambda r: r["markers"]["layer"].pop("pin"), r"markers.layer: missing key\(s\) pin"),
    (lambda r: r["markers"]["layer"].update(set_addr=0x48001019), "word-aligned"),
    (lambda r: r["uart"].update(kernel_clock_hz=-1), "kernel_clock_hz"),
    (lambda r: r.update(cycle_counter={"what": "TIM2_CNT", "addr": 0x40000026}),
     "cycle_counter.addr: 0x40000026 is not word-aligned"),
    (lambda r: r.update(cycle_counter={"addr": 0x40000024}), r"cycle_counter: missing key\(s\) what"),
    (lambda r: r["uart"].update(kind="nrf-uarte"), "uart.kind"),
])
def test_board_io_errors(edit: Any, message: str) -> None:
    raw = copy.deepcopy(_raw())
    edit(raw)
    with pytest.raises(ConfigError, match=message):
        parse_board(raw)


# -- generated tables -----------------------------------------------------------------------


def test_uart_brr_exact() -> None:
    # LPUART: 256 * 4 MHz / 115200 = 8888.9; USART 16x oversampling: 16 MHz / 115200 = 138.9
    assert uart_brr(UART_LAYOUTS["stm32-lpuart"], 4_000_000, 115_200) == 8889
    assert uart_brr(UART_LAYOUTS["stm32-usart"], 16_000_000, 115_200) == 139
    assert uart_brr(UART_LAYOUTS["stm32-usart-legacy"], 16_000_000, 9600) == 1667
    with pytest.raises(ConfigError, match="outside the valid range"):
        uart_brr(UART_LAYOUTS["stm32-lpuart"], 300_000, 115_200)  # 667 < 0x300


def test_board_source_tables() -> None:
    src = board_source(load_board("nucleo-l4r5zi"))
    assert ("    {0x40022000u, 0x0000000Fu, 0x00000705u, 0x0000000Fu, 0x00000005u}, "
            "/* FLASH_ACR: 5 wait states, prefetch, I/D cache */") in src
    assert "const uint32_t tm_board_init_count = 15u;" in src
    # LPUART1 at 115200 baud from PCLK1 = 120 MHz: 256 * 120e6 / 115200 = 266666.7
    assert ("    0x40008000u, 0x28u, 0x1Cu, 0x80u,\n"
            "    0x40u, 0x0Cu, 266667u, 0x00u, 0x9u};") in src
    assert ("    {0x40021008u, 0x00000003u, 0x00000003u, 0x0000000Cu, 0x0000000Cu}, "
            "/* RCC_CFGR.SW = PLL, wait SWS */") in src
    assert ("const tm_gpio_mark tm_board_mark_layer = "
            "{0x48001018u, 0x00000800u, 0x48001018u, 0x08000000u};") in src
    assert "const uint32_t tm_board_l1_icache = 0u;" in src
    m7 = board_source(load_board("nucleo-f767zi"))
    assert "const uint32_t tm_board_l1_icache = 1u;" in m7
    assert "const uint32_t tm_board_l1_dcache = 1u;" in m7
    legacy = board_source(load_board("nucleo-f207zg"))
    assert "    0x40004800u, 0x04u, 0x00u, 0x80u,\n    0x40u, 0x08u, 139u, 0x0Cu, 0x2008u};" in legacy


def test_board_source_without_init_or_marks() -> None:
    raw = _raw()
    raw.pop("init")
    raw.pop("markers")
    raw["init"] = [{"what": "odd */ comment\nline", "addr": 0x40000000}]
    src = board_source(parse_board(raw))
    assert "/* odd * / comment line */" in src
    assert "const tm_gpio_mark tm_board_mark_inference = {0u, 0u, 0u, 0u};" in src


def test_hardware_image_needs_a_uart() -> None:
    raw = _raw()
    raw.pop("uart")
    board = parse_board(raw)
    # the semihosting image needs no UART; it gets only the L1 cache switches (off on an M4)
    assert list(board_sources(board, BuildConfig())) == ["tm_l1.c"]
    assert "tm_board_l1_dcache = 0u" in board_sources(board, BuildConfig())["tm_l1.c"]
    with pytest.raises(ConfigError, match=r"nucleo-l4r5zi: the hardware firmware reports over "
                                          r"the UART, but the board file has no \[uart\]"):
        board_sources(board, BuildConfig(io="uart"))
    raw = _raw()
    raw["uart"].pop("kernel_clock_hz")
    with pytest.raises(ConfigError, match="kernel_clock_hz is needed"):
        board_source(parse_board(raw))
    with pytest.raises(ConfigError, match="unknown firmware I/O 'jtag'"):
        BuildConfig(io="jtag")


def test_compile_argv_uart() -> None:
    core = load_board("nucleo-g0b1re").core
    argv = compile_argv("arm-none-eabi-gcc", core, BuildConfig(io="uart", runs=3), Path("a.c"),
                        Path("a.o"), Path("inc"))
    assert argv == [
        "arm-none-eabi-gcc", "-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft", "-O2",
        "-std=c11", "-Wall", "-Wextra", "-ffunction-sections", "-fdata-sections", "-fno-common",
        "-ffp-contract=off", "-DTM_RUNS=3", "-DTM_IO_UART", "-Iinc", "-c", "a.c", "-o", "a.o"]


# -- emulator register model ---------------------------------------------------------------


def test_board_registers_polls_and_marks() -> None:
    board = load_board("nucleo-l4r5zi")
    now = [100]
    regs = BoardRegisters(board, lambda: now[0], exclude=lambda page: page == 0x40007000)
    assert 0x40007000 not in regs.pages()  # excluded (served elsewhere)
    assert set(regs.pages()) == {0x40021000, 0x48001000, 0x40022000}  # GPIOE+G share a page
    # RCC_CR is polled twice (HSIRDY, then PLLRDY): both bits read as ready
    assert regs.read(0x40021000, 0, 4) == (1 << 10) | (1 << 25)
    # FLASH_ACR is polled for LATENCY == 5: reads show it whatever was stored
    assert regs.read(0x40022000, 0, 4) == 0x5
    regs.write(0x40022000, 0, 4, 0x703)
    assert regs.read(0x40022000, 0, 4) == 0x705
    assert regs.read(0x40021000, 0x4C, 4) == 0  # plain storage
    regs.write(0x40021000, 0x4C, 4, 0x50)
    assert regs.read(0x40021000, 0x4C, 4) == 0x50
    regs.write(0x48001000, 0x18, 4, 1 << 9)
    now[0] = 250
    regs.write(0x48001000, 0x18, 4, 1 << 27)
    regs.write(0x48001000, 0x18, 4, 1 << 3)  # another pin: not a mark
    assert regs.events == [MarkEvent(100, "inference", 1), MarkEvent(250, "layer", 0)]


# -- the hardware image in the emulator ----------------------------------------------------


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory) -> FirmwareBuilder:
    return FirmwareBuilder(cache_dir=tmp_path_factory.mktemp("cache"))


def _trace_from_marks(marks: list[MarkEvent], clock_hz: int, end_cycle: int) -> PowerTrace:
    """A logic-analyser-style trace: one sample per mark edge, constant 10 mA at 3.3 V."""
    cycles = [0]
    levels = [0]
    bits = 0
    for ev in marks:
        bit = 0 if ev.mark == "inference" else 1
        bits = (bits | (1 << bit)) if ev.level else (bits & ~(1 << bit))
        cycles.append(ev.cycle)
        levels.append(bits)
    cycles.append(end_cycle)
    levels.append(bits)
    t = np.array(cycles, dtype=np.float64) / clock_hz
    n = len(t)
    return PowerTrace(time_s=t, current_a=np.full(n, 0.01), voltage_v=np.full(n, 3.3),
                      gpio=np.array(levels, dtype=np.int64), source="marks")


@pytest.mark.slow
@pytest.mark.parametrize("board_name", list_boards())
def test_hardware_image_in_emulator(board_name: str, builder: FirmwareBuilder) -> None:
    from tinymeter.hw.power.trace import inference_windows
    from tinymeter.sim.emulator import Emulator

    board = load_board(board_name)
    model = resolve_model(None)
    images = {io: build_model(model, board, BuildConfig(kernels="optimized", io=io),
                              builder=builder) for io in ("semihosting", "uart")}
    gen = images["uart"].model
    rng = np.random.default_rng(7)
    inputs = [[rng.integers(-128, 128, t.bytes, dtype=np.int8).tobytes() for t in gen.inputs]
              for _ in range(2)]
    # without stall weights: the two images place code differently, and cache and flash
    # line effects of placement are not what this test is about
    from dataclasses import replace

    from tinymeter.sim.costmodel import cost_model_for

    datasheet = cost_model_for(board)
    steady = replace(datasheet, params=replace(datasheet.params, ifetch_weight=0.0,
                                               data_weight=0.0))
    runs = {io: Emulator(board, cost_model=steady).run(img.elf, inputs, budget_instructions=10**9,
                                                       timeout_s=300)
            for io, img in images.items()}
    hw, semi = runs["uart"], runs["semihosting"]
    assert hw.exit_code == 0 and hw.inferences == 2
    assert hw.outputs == semi.outputs
    # the report went through the emulated UART, line for line the semihosting report
    # (the timed cycles may differ by a few: other code addresses, and the M0+ image
    # reads its cycles from TIM2 instead of SysTick)
    hw_lines, semi_lines = hw.stdout.splitlines(), semi.stdout.splitlines()
    assert len(hw_lines) == len(semi_lines) and hw.stdout.count("TM1 END") == 2
    for a, b in zip(hw_lines, semi_lines):
        if a.startswith("TM1 BEGIN"):
            assert a == b
            continue
        a, b = a.split(" check=")[0], b.split(" check=")[0]  # check covers the total
        (head_a, x), (head_b, y) = a.rsplit(maxsplit=1), b.rsplit(maxsplit=1)
        x, y = int(x.removeprefix("total=")), int(y.removeprefix("total="))
        # the images' code sits at other addresses, so the emulator's translation blocks
        # split straight code at other places (1 KiB pages): the hook joins the pieces,
        # so core cycles do not depend on where the splits fall
        assert head_a == head_b and abs(x - y) <= 16 + y // 10_000, (a, b)
    # the device's END check (run index, layer count) is what the host parser computes
    from tinymeter.hw.protocol import Report, parse_transcript

    for out in (hw.stdout, semi.stdout):
        events, stats = parse_transcript(out.encode())
        assert [e.run for e in events if isinstance(e, Report)] == [0, 1], stats
    assert semi.marks == []
    n = len(gen.layers)
    per_inference = [("layer", 0), ("inference", 1),
                     *[("layer", k & 1) for k in range(1, n)], ("inference", 0)]
    assert [(e.mark, e.level) for e in hw.marks] == per_inference * 2
    # the boot writes' polls are answered at once (a poll left waiting costs its limit)
    assert hw.marks[0].cycle < 100_000
    assert all(a.cycle <= b.cycle for a, b in zip(hw.marks, hw.marks[1:]))
    # the layer line splits each inference window into exactly its layers, and each
    # segment holds that layer's reported (DWT) cycles plus the harness between layers
    trace = _trace_from_marks(hw.marks, board.clock_hz, int(hw.cycles) + 1)
    windows = inference_windows(trace)
    assert len(windows) == 2
    reported = [int(line.split()[-1]) for line in hw.stdout.splitlines()
                if line.startswith("TM1 L ")]
    for k, w in enumerate(windows):
        energy = layer_energy(trace, w, n, layer_channel=1)
        seconds = energy * 1e-6 / (0.01 * 3.3)
        segment = seconds * board.clock_hz
        assert len(segment) == n
        for got, want in zip(segment, reported[k * n:(k + 1) * n]):
            assert want <= got + 1 <= want + 120


@pytest.mark.slow
def test_m0plus_hardware_image_times_long_layers(tmp_path: Path, builder: FirmwareBuilder) -> None:
    """A layer of ~40M cycles on the M0+: SysTick (24 bits) can only give it modulo 2^24;
    the hardware image reads the board's 32-bit TIM2 counter and reports it whole."""
    from tinymeter.models.builders import bias_tensor, int8_tensor, random_int8, single_op_model
    from tinymeter.sim.emulator import Emulator

    board = load_board("nucleo-g0b1re")
    assert board.cycle_counter is not None and board.cycle_counter.addr == 0x40000024
    x = int8_tensor("x", (1, 32, 32, 16), 0.05, 3)
    w = int8_tensor("w", (32, 3, 3, 16), 0.01, data=random_int8((32, 3, 3, 16), seed=5))
    b = bias_tensor("b", np.zeros(32, np.int32), input_scale=0.05, weight_scales=w)
    y = int8_tensor("y", (1, 32, 32, 32), 0.1, -2)
    path = tmp_path / "conv.tflite"
    path.write_bytes(single_op_model("CONV_2D", [x, w, b], [y],
                                     options={"padding": "SAME", "stride_w": 1, "stride_h": 1}))
    reports, layers = {}, {}
    for io in ("semihosting", "uart"):
        image = build_model(path, board, BuildConfig(io=io), builder=builder)
        run = Emulator(board).run(image.elf, [[]], budget_instructions=10**9, timeout_s=300)
        reports[io] = int(next(line for line in run.stdout.splitlines()
                               if line.startswith("TM1 L 0 ")).split()[-1])
        layers[io] = run.cycles_per_layer()[0]  # per image: code placement moves stalls
    assert min(layers.values()) > 2**25
    assert reports["semihosting"] == pytest.approx(layers["semihosting"] % 2**24, abs=200)
    assert reports["uart"] == pytest.approx(layers["uart"], abs=200)


def test_boards_command_describes_one_board(capsys: pytest.CaptureFixture[str]) -> None:
    from tinymeter.cli.main import main

    assert main(["boards", "nucleo-g0b1re"]) == 0
    text = capsys.readouterr().out
    assert "cortex-m0plus (armv6-m), 64 MHz" in text
    assert "runs at 16 MHz" in text
    assert "mark inference pin PA8 -> power monitor input 0" in text
    assert "mark layer     pin PA9 -> power monitor input 1" in text
    assert "cycle count  TIM2_CNT at 0x40000024" in text
    assert "uart         USART2 stm32-usart at 0x40004400, 115200 baud" in text
    assert main(["boards"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(list_boards())
    assert main(["boards", "nucleo-nope"]) == 2
    assert "unknown board 'nucleo-nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_uart_inside_memory_is_a_board_error(builder: FirmwareBuilder) -> None:
    from tinymeter.core.errors import EmulationError
    from tinymeter.sim.emulator import Emulator

    board = load_board("nucleo-l4r5zi")
    image = build_model(resolve_model(None), board, BuildConfig(), builder=builder)
    raw = _raw()
    raw["uart"]["base"] = 0x20001000
    with pytest.raises(EmulationError, match=r"board nucleo-l4r5zi: UART base 0x20001000 lies "
                                             r"inside a memory region"):
        Emulator(parse_board(raw)).load(image.elf)
