"""Firmware build: exact compiler/linker argv, linker script from the board file, config errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinymeter.core.boards import load_board
from tinymeter.core.errors import ConfigError
from tinymeter.firmware.build import (
    BuildConfig,
    compile_argv,
    firmware_sources,
    host_compile_argv,
    host_link_argv,
    kernel_sources,
    link_argv,
    linker_script,
    runtime_dir,
)


def test_compile_argv_m4() -> None:
    core = load_board("nucleo-l4r5zi").core
    argv = compile_argv("arm-none-eabi-gcc", core, BuildConfig(), Path("a/k.c"), Path("o/k.o"),
                        Path("inc"))
    assert argv == [
        "arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16",
        "-mfloat-abi=hard", "-O2", "-std=c11", "-Wall", "-Wextra", "-ffunction-sections",
        "-fdata-sections", "-fno-common", "-ffp-contract=off", "-DTM_RUNS=1", "-Iinc", "-c",
        "a/k.c", "-o", "o/k.o",
    ]


def test_compile_argv_m0plus_runs_and_opt() -> None:
    core = load_board("nucleo-g0b1re").core
    argv = compile_argv("arm-none-eabi-gcc", core, BuildConfig(opt="-Os", runs=5),
                        Path("m.c"), Path("m.o"), Path("i"))
    assert argv[:5] == ["arm-none-eabi-gcc", "-mcpu=cortex-m0plus", "-mthumb",
                        "-mfloat-abi=soft", "-Os"]
    assert "-DTM_RUNS=5" in argv


def test_link_argv_m7() -> None:
    core = load_board("nucleo-f767zi").core
    argv = link_argv("arm-none-eabi-gcc", core, [Path("a.o"), Path("b.o")], Path("l.ld"),
                     Path("f.elf"), Path("f.map"))
    assert argv == [
        "arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard",
        "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections",
        "-Wl,-Map=f.map", "-Tl.ld", "a.o", "b.o", "-o", "f.elf",
    ]


def test_host_argv() -> None:
    assert host_compile_argv("gcc", Path("x.c"), Path("x.o"), Path("inc")) == [
        "gcc", "-O2", "-std=c11", "-Wall", "-Wextra", "-ffunction-sections", "-fdata-sections",
        "-fno-common", "-ffp-contract=off", "-DTM_PLATFORM_HOST", "-Iinc", "-c", "x.c", "-o", "x.o"]
    assert host_link_argv("gcc", [Path("a.o"), Path("b.o")], Path("exe")) == [
        "gcc", "a.o", "b.o", "-o", "exe"]


def test_linker_script_uses_board_map() -> None:
    script = linker_script(load_board("nucleo-f767zi"), 8192)
    assert "FLASH (rx) : ORIGIN = 0x08000000, LENGTH = 0x200000" in script
    assert "RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 0x80000" in script
    assert "ITCM (rwx) : ORIGIN = 0x00000000, LENGTH = 0x4000" in script
    assert "} > RAM AT > FLASH" in script
    assert ". = . + 8192;" in script


def test_kernel_sets() -> None:
    root = runtime_dir()
    m0 = load_board("nucleo-g0b1re").core
    m4 = load_board("nucleo-l4r5zi").core
    ref = kernel_sources(root, "reference", m4)
    assert all(p.parent.name == "reference" for p in ref)
    # M0+ has no DSP extension: the optimized set falls back to reference kernels.
    assert kernel_sources(root, "optimized", m0) == ref
    names = [p.name for p in firmware_sources(root, "reference", m4)[:3]]
    assert names == ["tm_main.c", "cortexm.c", "startup_cortexm.c"]


@pytest.mark.parametrize("kwargs,match", [
    ({"kernels": "fast"}, "unknown kernel set 'fast'"),
    ({"opt": "-O9"}, "unsupported optimization level"),
    ({"runs": 0}, "runs must be"),
    ({"stack_bytes": 100}, "stack_bytes"),
])
def test_build_config_errors(kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        BuildConfig(**kwargs)


def test_tool_error_summary_names_the_overflow() -> None:
    from tinymeter.firmware.build import tool_error_summary

    out = ("/usr/lib/gcc/arm-none-eabi/12.2.1/../../../arm-none-eabi/bin/ld: fw.elf section "
           "`.bss' will not fit in region `RAM'\n"
           "/usr/lib/gcc/arm-none-eabi/12.2.1/../../../arm-none-eabi/bin/ld: region `RAM' "
           "overflowed by 917536 bytes\n"
           "collect2: error: ld returned 1 exit status\n")
    assert tool_error_summary(out) == "ld: region `RAM' overflowed by 917536 bytes"
    cc = "k.c: In function 'f':\nk.c:3:5: error: 'x' undeclared\nk.c:4:1: warning: unused\n"
    assert tool_error_summary(cc) == "k.c:3:5: error: 'x' undeclared"
    assert tool_error_summary("something odd\n") == "something odd"


def test_model_that_cannot_fit_is_refused_before_compiling(tmp_path: Path) -> None:
    import numpy as np

    from tinymeter.core.errors import BuildError
    from tinymeter.firmware.build import FirmwareBuilder
    from tinymeter.firmware.codegen import generate
    from tinymeter.models.builders import bias_tensor, int8_tensor, random_int8, single_op_model
    from tinymeter.models.tflite import parse_tflite

    x = int8_tensor("x", (1, 1024), 0.05, 2)
    w = int8_tensor("w", (640, 1024), 0.01, 0, data=random_int8((640, 1024), seed=1))
    b = bias_tensor("b", np.zeros(640, np.int32), input_scale=0.05, weight_scales=w)
    y = int8_tensor("y", (1, 640), 0.2, -1)
    gen = generate(parse_tflite(single_op_model("FULLY_CONNECTED", [x, w, b], [y])), name="fc")
    # cc=/bin/false: nothing may be compiled before the check refuses the model
    builder = FirmwareBuilder(cache_dir=tmp_path, cc="/bin/false")
    with pytest.raises(BuildError, match=r"model fc: 660,488 B of weights do not fit the "
                                         r"524,288 B FLASH of nucleo-g0b1re"):
        builder.build(gen, load_board("nucleo-g0b1re"))
    with pytest.raises(BuildError, match=r"tensor arena \d[\d,]* B \+ stack 1,048,576 B do not "
                                         r"fit the 655,360 B RAM of nucleo-l4r5zi"):
        builder.build(gen, load_board("nucleo-l4r5zi"), BuildConfig(stack_bytes=1 << 20))


def test_object_cache_key_covers_included_reference_kernels(tmp_path: Path) -> None:
    """The optimized conv2d.c #includes ../reference/conv2d.c: editing the reference file
    must change the key of the optimized objects, or a stale build would be reused."""
    import shutil

    from tinymeter.firmware.build import FirmwareBuilder

    builder = FirmwareBuilder(cache_dir=tmp_path / "cache")
    builder.root = tmp_path / "runtime"
    shutil.copytree(runtime_dir(), builder.root)
    sources = firmware_sources(builder.root, "optimized", load_board("nucleo-l4r5zi").core)
    assert builder.root / "kernels" / "reference" / "conv2d.c" not in sources
    before = builder._sources_digest(sources)
    ref = builder.root / "kernels" / "reference" / "conv2d.c"
    ref.write_text(ref.read_text() + "\n/* edited */\n")
    assert builder._sources_digest(sources) != before


def test_one_source_of_target_flags() -> None:
    """Model images, the TFLM harness, test programs and the kernels' warning check all
    take the core's flags from Core.gcc_flags through the same functions."""
    import sys

    from tinymeter.firmware.build import COMMON_CFLAGS, target_flags
    from tinymeter.firmware.tflm import TFLM_CXXFLAGS, tflm_compile_argv
    from tinymeter.sim.testfw import program_argv

    core = load_board("nucleo-l552ze-q").core
    config = BuildConfig(opt="-O3", runs=3, io="uart", extra_cflags=("-DX=1",))
    c = compile_argv("cc", core, config, Path("s.c"), Path("s.o"), Path("inc"))
    cxx = tflm_compile_argv("c++", core, config, Path("h.cc"), Path("h.o"), [Path("t")])
    assert c == ["cc", *target_flags(core, config, COMMON_CFLAGS), "-Iinc", "-c", "s.c", "-o",
                 "s.o"]
    assert cxx == ["c++", *target_flags(core, config, TFLM_CXXFLAGS), "-It", "-c", "h.cc", "-o",
                   "h.o"]
    assert target_flags(core, config, ("-L",)) == [
        "-mcpu=cortex-m33", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard", "-O3", "-L",
        "-DTM_RUNS=3", "-DTM_IO_UART", "-DX=1"]
    assert program_argv(core, "-O1", ("-DY",), Path("l.ld"), Path("p.elf"),
                        [Path("r.c"), Path("p.c")]) == [
        "arm-none-eabi-gcc", "-mcpu=cortex-m33", "-mthumb", "-mfpu=fpv5-sp-d16",
        "-mfloat-abi=hard", "-O1", "-g", "-ffreestanding", "-nostdlib", "-nostartfiles",
        "-ffunction-sections", "-Wall", "-DY", "-T", "l.ld", "-o", "p.elf", "r.c", "p.c",
        "-lgcc"]
    try:
        from kernel_check import warning_argv
    finally:
        sys.path.pop(0)
    assert warning_argv("m33", Path("k.c"), Path("k.o")) == [
        *compile_argv("arm-none-eabi-gcc", core, BuildConfig(), Path("k.c"), Path("k.o"),
                      runtime_dir() / "include")[:-4], "-Werror", "-c", "k.c", "-o", "k.o"]


def test_memory_use_is_one_sum() -> None:
    from tinymeter.firmware.build import memory_use

    sections = {".isr_vector": 0x1C4, ".text": 1000, ".rodata": 7, ".init_array": 4,
                ".ARM.exidx": 8, ".data": 16, ".bss": 100, ".tflm_arena": 4096,
                ".stack": 2048, ".comment": 99}
    assert memory_use(sections) == (0x1C4 + 1000 + 7 + 4 + 8 + 16, 16 + 100 + 4096 + 2048)
    assert memory_use({".text": 10, ".data": 2, ".bss": 3}) == (12, 5)
