"""Build a firmware ELF (or a host executable) for a generated model.

The command lines are pure functions of the configuration (tested for their exact
argv); :class:`FirmwareBuilder` is the thin I/O part that writes files, runs the
compiler and caches runtime objects between models.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from elftools.elf.elffile import ELFFile

from tinymeter.core.boards import Board
from tinymeter.core.cores import Core
from tinymeter.core.errors import BuildError, ConfigError, DoesNotFit
from tinymeter.core.files import atomic_copy
from tinymeter.firmware.boardgen import board_source, l1_source

if TYPE_CHECKING:
    from tinymeter.firmware.codegen import GeneratedModel

log = logging.getLogger(__name__)

KERNEL_SETS = ("reference", "optimized")
#: Where the firmware's report goes: ``semihosting`` (emulator or debugger) or ``uart``
#: (the hardware image: board boot writes, report on the board UART, marker pins).
IO_MODES = ("semihosting", "uart")
ARM_CC = "arm-none-eabi-gcc"
TOOLCHAIN_HINT = ("install it with: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                  "(or run `make demo`, which does)")
#: -ffp-contract=off: float kernels must round a*b+c twice, as TFLM's reference build does.
COMMON_CFLAGS = ("-std=c11", "-Wall", "-Wextra", "-ffunction-sections", "-fdata-sections",
                 "-fno-common", "-ffp-contract=off")


@dataclass(frozen=True)
class BuildConfig:
    """Everything that changes the firmware binary besides the model."""

    kernels: str = "reference"
    opt: str = "-O2"
    runs: int = 1
    stack_bytes: int = 16 * 1024
    extra_cflags: tuple[str, ...] = ()
    io: str = "semihosting"

    def __post_init__(self) -> None:
        if self.kernels not in KERNEL_SETS:
            raise ConfigError(f"unknown kernel set {self.kernels!r}; choose from {', '.join(KERNEL_SETS)}")
        if self.io not in IO_MODES:
            raise ConfigError(f"unknown firmware I/O {self.io!r}; choose from {', '.join(IO_MODES)}")
        if self.opt not in ("-O0", "-O1", "-O2", "-O3", "-Os", "-Og"):
            raise ConfigError(f"unsupported optimization level {self.opt!r}")
        if not 1 <= self.runs <= 0xFFFFFFFF:  # TM_RUNS counts down in a uint32_t
            raise ConfigError(f"runs must be between 1 and 4294967295, got {self.runs}")
        if self.stack_bytes < 1024 or self.stack_bytes % 8:
            raise ConfigError("stack_bytes must be a multiple of 8 and at least 1024")


@dataclass(frozen=True)
class FirmwareImage:
    """A built firmware ELF and the facts about the model inside it."""

    elf: Path
    board: Board
    config: BuildConfig
    model: GeneratedModel
    flash_bytes: int
    ram_bytes: int
    sections: dict[str, int] = field(default_factory=dict)

    @property
    def report_layout(self) -> tuple[str, tuple[str, ...]]:
        """Model name and op names of the firmware's ``TM1`` report."""
        return self.model.name, tuple(layer.op_name for layer in self.model.layers)


def runtime_dir() -> Path:
    """Root of the C runtime sources shipped with the package."""
    return Path(str(resources.files("tinymeter.firmware") / "runtime"))


def effective_kernels(kernels: str, core: Core) -> str:
    """The kernel set that really runs: cores without the DSP extension (M0+, M3) run
    the reference kernels whatever was asked (reports and ``check`` keys say so)."""
    return kernels if kernels != "optimized" or core.dsp else "reference"


def kernel_sources(root: Path, kernels: str, core: Core | None) -> list[Path]:
    """Kernel files of a set: optimized files replace reference files of the same name.

    Cores without the DSP extension (M0+, M3) always get the reference set.
    """
    ref = {p.name: p for p in sorted((root / "kernels" / "reference").glob("*.c"))}
    if kernels == "optimized" and (core is None or core.dsp):
        for p in sorted((root / "kernels" / "optimized").glob("*.c")):
            ref[p.name] = p
    return [ref[k] for k in sorted(ref)]


def firmware_sources(root: Path, kernels: str, core: Core) -> list[Path]:
    """All runtime C files of a bare-metal firmware (everything but the model file)."""
    return [root / "src" / "tm_main.c", root / "platform" / "cortexm.c",
            root / "platform" / "startup_cortexm.c", *kernel_sources(root, kernels, core)]


def calibration_sources(root: Path) -> list[Path]:
    """Runtime C files of the calibration-microbenchmark firmware: the unchanged harness
    and platform (same profiler hooks and report), the benchmarks instead of kernels.
    The layer table is generated per core (``tinymeter.apps.microbench``)."""
    return [root / "src" / "tm_main.c", root / "platform" / "cortexm.c",
            root / "platform" / "startup_cortexm.c", root / "calib" / "tm_calib.c"]


def host_sources(root: Path) -> list[Path]:
    """Runtime C files of the host build (reference kernels, stdin/stdout platform)."""
    return [root / "src" / "tm_main.c", root / "platform" / "host.c",
            *kernel_sources(root, "reference", None)]


def target_flags(core: Core, config: BuildConfig, language: Sequence[str]) -> list[str]:
    """The one source of target compiler flags, C or C++ (*language*: ``COMMON_CFLAGS``
    or the TFLM harness's C++ flags): the core's, the optimization level, then the
    image's defines (``TM_RUNS``, the UART I/O) and the user's extra flags."""
    io = ["-DTM_IO_UART"] if config.io == "uart" else []
    return [*core.gcc_flags, config.opt, *language, f"-DTM_RUNS={config.runs}", *io,
            *config.extra_cflags]


def compile_argv(cc: str, core: Core, config: BuildConfig, source: Path, obj: Path,
                 include: Path) -> list[str]:
    """Command line compiling one C file for the target core."""
    return [cc, *target_flags(core, config, COMMON_CFLAGS), f"-I{include}", "-c", str(source),
            "-o", str(obj)]


def board_sources(board: Board, config: BuildConfig) -> dict[str, str]:
    """Generated per-board C files of an image (name -> text): the board's I/O tables
    (``tm_board.c``) for the hardware image; for semihosting only the L1 cache switches
    (``tm_l1.c``), so both images run with the memory system the board file describes."""
    if config.io == "uart":
        return {"tm_board.c": board_source(board)}
    return {"tm_l1.c": l1_source(board)}


def link_argv(cc: str, core: Core, objects: Sequence[Path], script: Path, elf: Path,
              map_file: Path) -> list[str]:
    """Command line linking the firmware ELF with newlib-nano and our startup code."""
    return [cc, *core.gcc_flags, "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
            "-Wl,--gc-sections", f"-Wl,-Map={map_file}", f"-T{script}",
            *(str(o) for o in objects), "-o", str(elf)]


#: Flash images written next to the ELF: what ST-LINK drag-and-drop (raw binary from the
#: flash origin) and programmers (Intel HEX, addresses included) take.
FLASH_IMAGES = {"firmware.bin": "binary", "firmware.hex": "ihex"}


def objcopy_for(cc: str) -> str:
    """The toolchain's objcopy next to its compiler (``arm-none-eabi-gcc`` ->
    ``arm-none-eabi-objcopy``; a path keeps its folder)."""
    head, sep, _tail = cc.rpartition("gcc")
    return f"{head}objcopy" if sep else "arm-none-eabi-objcopy"


def objcopy_argv(objcopy: str, elf: Path, out: Path, fmt: str) -> list[str]:
    """Command line converting the ELF to a flash image: the loadable sections at their
    load addresses (initialised .data included, .bss and the stack not)."""
    if fmt not in FLASH_IMAGES.values():
        raise ConfigError(f"unknown flash image format {fmt!r}")
    return [objcopy, "-O", fmt, str(elf), str(out)]


def host_compile_argv(cc: str, source: Path, obj: Path, include: Path) -> list[str]:
    """Command line compiling one runtime or model file for the host platform."""
    return [cc, "-O2", *COMMON_CFLAGS, "-DTM_PLATFORM_HOST", f"-I{include}", "-c", str(source),
            "-o", str(obj)]


def host_link_argv(cc: str, objects: Sequence[Path], exe: Path) -> list[str]:
    """Command line linking the host executable."""
    return [cc, *(str(o) for o in objects), "-o", str(exe)]


def linker_script(board: Board, stack_bytes: int) -> str:
    """GNU ld script from the board file: code and weights in the text region,
    .data/.bss/arena/stack in the data region, with overflow checks that fail the
    link (naming the region) instead of producing a firmware that corrupts memory."""
    text, data = board.text, board.data
    regions = "\n".join(
        f"  {r.name} ({'rx' if r.kind == 'flash' else 'rwx'}) : ORIGIN = 0x{r.origin:08X}, "
        f"LENGTH = 0x{r.size:X}" for r in board.memory)
    return f"""/* Generated by tinymeter for board {board.name}: do not edit. */
ENTRY(Reset_Handler)

MEMORY
{{
{regions}
}}

SECTIONS
{{
  .isr_vector :
  {{
    . = ALIGN(4);
    KEEP(*(.isr_vector))
  }} > {text.name}

  .text :
  {{
    . = ALIGN(4);
    *(.text .text.*)
    *(.rodata .rodata.*)
    KEEP(*(.init))
    KEEP(*(.fini))
    . = ALIGN(4);
  }} > {text.name}

  .ARM.exidx :
  {{
    *(.ARM.exidx* .gnu.linkonce.armexidx.*)
  }} > {text.name}

  .data :
  {{
    . = ALIGN(4);
    _sdata = .;
    *(.data .data.*)
    . = ALIGN(4);
    _edata = .;
  }} > {data.name} AT > {text.name}
  _sidata = LOADADDR(.data);

  .bss (NOLOAD) :
  {{
    . = ALIGN(16);
    _sbss = .;
    *(.bss .bss.*)
    *(COMMON)
    . = ALIGN(4);
    _ebss = .;
  }} > {data.name}

  .stack (NOLOAD) :
  {{
    . = ALIGN(8);
    _sstack = .;
    . = . + {stack_bytes};
    . = ALIGN(8);
    _estack = .;
  }} > {data.name}

  end = _ebss;
  _end = _ebss;

  /DISCARD/ : {{ *(.ARM.attributes) *(.comment) }}
}}
"""


def run_tool(argv: Sequence[str], what: str) -> None:
    """Run a toolchain command; a failure becomes one BuildError line quoting the compiler."""
    log.debug("run: %s", " ".join(argv))
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BuildError(f"{argv[0]} not found; {TOOLCHAIN_HINT}") from None
    if proc.returncode != 0:
        raise BuildError(f"{what} failed: {tool_error_summary(proc.stderr or proc.stdout)}")


def tool_error_summary(output: str, limit: int = 3) -> str:
    """The lines of a failed compiler/linker run that say what is wrong: the linker's
    region overflows first (collect2's "ld returned 1" says nothing), then errors, with
    the toolchain's long path prefixes dropped."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    overflow = [line for line in lines if "overflowed by" in line]
    errors = [line for line in lines if "error" in line.lower() and "collect2" not in line]
    picked = overflow or errors or lines
    return " | ".join(re.sub(r"^\S*/bin/ld(\.bfd)?: ", "ld: ", line) for line in picked[:limit])


_OVERFLOW = re.compile(r"region [`'\"]?(?P<region>[\w.-]+)[`'\"]? overflowed by (?P<bytes>\d+) bytes")


def linker_overflow(message: str, board: Board) -> DoesNotFit | None:
    """A linker "region `X' overflowed by N bytes" error as :class:`DoesNotFit` (code plus
    weights can overflow the flash although the weights alone fit), else None."""
    m = _OVERFLOW.search(message)
    region = next((r for r in board.memory if m and r.name == m["region"]), None)
    if m is None or region is None:
        return None
    memory = "flash" if region.kind == "flash" else "RAM"
    return DoesNotFit(message, memory=memory, needed=region.size + int(m["bytes"]),
                      available=region.size)


def check_fits(model: GeneratedModel, board: Board, config: BuildConfig) -> None:
    """Refuse a model that cannot fit the board before compiling anything: weights
    beyond the text region, or tensor arena plus stack beyond the data region (the
    linker would say the same later, less readably)."""
    text, data = board.text, board.data
    if model.weight_bytes > text.size:
        raise DoesNotFit(f"model {model.name}: {model.weight_bytes:,} B of weights do not fit "
                         f"the {text.size:,} B {text.name} of {board.name}",
                         memory="flash", needed=model.weight_bytes, available=text.size)
    need = model.arena_bytes + config.stack_bytes
    if need > data.size:
        raise DoesNotFit(f"model {model.name}: tensor arena {model.arena_bytes:,} B + stack "
                         f"{config.stack_bytes:,} B do not fit the {data.size:,} B {data.name} "
                         f"of {board.name}", memory="RAM", needed=need, available=data.size)


def content_digest(*parts: bytes | str) -> str:
    """Short SHA-256 of *parts* (separated), the cache key of everything built."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:20]


def default_cache_dir() -> Path:
    """Where built objects and firmware are cached (``TINYMETER_CACHE`` overrides)."""
    return Path(os.environ.get("TINYMETER_CACHE", Path.home() / ".cache" / "tinymeter"))


class FirmwareBuilder:
    """Compiles runtime objects once per (core, config) and links one ELF per model."""

    def __init__(self, cache_dir: Path | None = None, cc: str = ARM_CC, host_cc: str = "gcc",
                 jobs: int = 2) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.cc = cc
        self.host_cc = host_cc
        self.jobs = jobs
        self.root = runtime_dir()

    def _sources_digest(self, sources: Sequence[Path]) -> str:
        """Digest of *sources* and of every runtime file they may include: the headers,
        and the reference kernels the optimized ones ``#include`` (an edit there must
        not reuse stale optimized objects)."""
        runtime = sorted(p for p in self.root.rglob("*") if p.suffix in (".c", ".h", ".cc"))
        return content_digest(*(str(p) for p in sources), *(p.read_bytes() for p in runtime))

    def _objects(self, sources: Sequence[Path], argv: Callable[[Path, Path], list[str]],
                 key_parts: Sequence[str], target: str) -> list[Path]:
        """Compile *sources* once per (contents, flags) into the cache; return the objects.

        Objects are built in a private temporary directory and renamed into place, so
        concurrent builders (test workers, sweep processes) never see half a set.
        """
        # The command line itself is part of the key, so a flag change never reuses stale objects.
        key = content_digest(self._sources_digest(sources), *key_parts,
                      " ".join(argv(Path("src.c"), Path("obj.o"))))
        parent = self._ensure(self.cache_dir / "runtime")
        out = parent / key
        objects = [out / f"{i:02d}_{s.stem}.o" for i, s in enumerate(sources)]
        if all(o.exists() for o in objects):
            return objects
        tmp = Path(tempfile.mkdtemp(prefix="rt-", dir=parent))
        try:
            jobs = [(argv(s, tmp / o.name), f"compiling {s.name} for {target}")
                    for s, o in zip(sources, objects)]
            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                list(pool.map(lambda job: run_tool(*job), jobs))  # re-raises the first failure
            try:
                os.replace(tmp, out)
            except OSError:
                # Another process finished the same objects first; theirs are identical.
                if not all(o.exists() for o in objects):
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return objects

    def target_objects(self, sources: Sequence[Path], core: Core,
                       config: BuildConfig) -> list[Path]:
        """Runtime objects of *sources* for *core* and *config*, compiled once into the
        cache (model images, microbenchmarks and the TFLM harness's platform share them)."""
        include = self.root / "include"
        return self._objects(
            sources, lambda src, obj: compile_argv(self.cc, core, config, src, obj, include),
            (core.name, repr(config), self.cc), core.name)

    def _host_objects(self) -> list[Path]:
        include = self.root / "include"
        return self._objects(host_sources(self.root),
                             lambda src, obj: host_compile_argv(self.host_cc, src, obj, include),
                             ("host", self.host_cc), "the host")

    @staticmethod
    def _ensure(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        return path

    def link_image(self, sources: Sequence[Path], generated: Mapping[str, str], board: Board,
                   config: BuildConfig, kind: str = "firmware") -> Path:
        """Build (or reuse) a firmware ELF for *board* from runtime *sources* (objects
        cached per core and config) plus *generated* C files (name -> text, compiled per
        image); returns its cache directory, holding ``firmware.elf``, the generated
        files, ``linker.ld`` and ``firmware.map``.  *kind* names the cache folder."""
        core = board.core
        objects = self.target_objects(sources, core, config)
        script = linker_script(board, config.stack_bytes)
        key = content_digest(*generated.values(), script, objects[0].parent.name)
        build_dir = self._ensure(self.cache_dir / kind /
                                 f"{board.name}-{config.kernels}-{config.io}-{key}")
        elf = build_dir / "firmware.elf"
        if elf.exists():
            return build_dir
        work = Path(tempfile.mkdtemp(prefix="fw-", dir=build_dir))
        try:
            (work / "linker.ld").write_text(script)
            gen_objects = []
            for name, text in generated.items():
                (work / name).write_text(text)
                obj = work / f"{Path(name).stem}.o"
                run_tool(compile_argv(self.cc, core, config, work / name, obj,
                                      self.root / "include"), f"compiling the generated {name}")
                gen_objects.append(obj)
            try:
                run_tool(link_argv(self.cc, core, [*objects, *gen_objects], work / "linker.ld",
                                   work / "firmware.elf", work / "firmware.map"),
                         f"linking the {kind} for {board.name}")
            except BuildError as exc:
                raise linker_overflow(str(exc), board) or exc from None
            for name in (*generated, "linker.ld", "firmware.map"):
                atomic_copy(work / name, build_dir / name)
            atomic_copy(work / "firmware.elf", elf)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return build_dir

    def build(self, model: GeneratedModel, board: Board, config: BuildConfig | None = None,
              out_dir: Path | None = None) -> FirmwareImage:
        """Build (or reuse from the cache) the firmware ELF for *model* on *board*."""
        config = config or BuildConfig()
        check_fits(model, board, config)
        generated = {"model.c": model.source, **board_sources(board, config)}
        build_dir = self.link_image(firmware_sources(self.root, config.kernels, board.core),
                                    generated, board, config)
        elf = build_dir / "firmware.elf"
        if out_dir is not None:
            self._ensure(Path(out_dir))
            self._flash_images(build_dir)
            for name in ("firmware.elf", *FLASH_IMAGES, *generated, "linker.ld", "firmware.map"):
                atomic_copy(build_dir / name, Path(out_dir) / name)
        sections = section_sizes(elf)
        flash, ram = memory_use(sections)
        return FirmwareImage(elf, board, config, model, flash, ram, sections)

    def _flash_images(self, build_dir: Path) -> None:
        """firmware.bin and firmware.hex of the cached ELF (made once, on first request)."""
        for name, fmt in FLASH_IMAGES.items():
            if (build_dir / name).exists():
                continue
            work = Path(tempfile.mkdtemp(prefix="img-", dir=build_dir))
            try:
                run_tool(objcopy_argv(objcopy_for(self.cc), build_dir / "firmware.elf",
                                      work / name, fmt), f"writing {name}")
                atomic_copy(work / name, build_dir / name)
            finally:
                shutil.rmtree(work, ignore_errors=True)

    def build_host(self, model: GeneratedModel) -> Path:
        """Build (or reuse) a host executable running *model* with reference kernels."""
        objects = self._host_objects()
        key = content_digest(model.source, objects[0].parent.name)
        exe = self._ensure(self.cache_dir / "host") / f"model-{key}"
        if exe.exists():
            return exe
        work = Path(tempfile.mkdtemp(prefix="host-", dir=exe.parent))
        try:
            (work / "model.c").write_text(model.source)
            run_tool(host_compile_argv(self.host_cc, work / "model.c", work / "model.o",
                                   self.root / "include"), "compiling the generated model for the host")
            run_tool(host_link_argv(self.host_cc, [*objects, work / "model.o"], work / "model"),
                 "linking the host model")
            os.replace(work / "model", exe)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return exe


#: Sections an image keeps in flash: code and constants (``.rodata``/``.init_array``
#: only where a foreign or C++ linker script keeps them apart) and .data's load image.
FLASH_SECTIONS = (".isr_vector", ".text", ".rodata", ".init_array", ".ARM.exidx", ".data")
#: Sections in RAM: .data, .bss, the TFLM harness's arena section and the stack.
RAM_SECTIONS = (".data", ".bss", ".tflm_arena", ".stack")


def memory_use(sections: Mapping[str, int]) -> tuple[int, int]:
    """(flash bytes, RAM bytes) of an image from its section sizes: the one sum every
    report uses (own images, TFLM harness images, foreign ELFs)."""
    return (sum(sections.get(s, 0) for s in FLASH_SECTIONS),
            sum(sections.get(s, 0) for s in RAM_SECTIONS))


def section_sizes(elf: Path) -> dict[str, int]:
    """Sizes of the allocated sections of an ELF (for flash/RAM reports)."""
    with open(elf, "rb") as fh:
        f = ELFFile(fh)
        return {s.name: s["sh_size"] for s in f.iter_sections() if s["sh_flags"] & 0x2}
