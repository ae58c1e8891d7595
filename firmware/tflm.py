"""Build the TFLM-harness firmware: a model running in a user's prebuilt TFLM library.

The harness ``runtime/tflm/tm_tflm_main.cc`` runs the model in
``tflite::MicroInterpreter`` instead of tinymeter's runtime; this module generates its
model files, builds its command lines (pure, tested for their exact argv) and links it
against the user's ``libtensorflow-microlite.a``.  Nothing of TFLM is shipped or built
here: the library and its source checkout (for the headers) are the user's.

Arena sizing: the tensor arena is its own linker section between ``.bss`` and the
stack.  :func:`TflmBuild.link` either reserves an exact size or gives the arena every
byte of the data region the rest leaves (``arena_bytes=None``), which is how the
pipeline sizes it for the user: run once with the largest arena, read TFLM's
``arena_used_bytes()`` from the ``TM1 ARENA`` line, relink with exactly that.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from tinymeter.core.boards import Board
from tinymeter.core.cores import Core
from tinymeter.core.errors import BuildError, ConfigError, DoesNotFit, UnsupportedModelError
from tinymeter.core.files import atomic_copy
from tinymeter.firmware.build import (
    ARM_CC,
    BuildConfig,
    FirmwareBuilder,
    board_sources,
    compile_argv,
    content_digest,
    linker_script,
    memory_use,
    run_tool,
    runtime_dir,
    section_sizes,
    target_flags,
)
from tinymeter.firmware.codegen import _c_string

log = logging.getLogger(__name__)

ARM_CXX = "arm-none-eabi-g++"
#: TFLM's own flags that change what its headers declare or how they compile: it is
#: built without exceptions/RTTI, with TF_LITE_STATIC_MEMORY (which changes the
#: TfLiteTensor layout), NDEBUG (DCHECKs and debug-only members) and, on
#: cortex_m_generic, unsigned char.  The harness must see the same.
TFLM_CXXFLAGS = ("-std=c++17", "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics",
                 "-fno-unwind-tables", "-ffunction-sections", "-fdata-sections", "-Wall",
                 "-funsigned-char", "-DNDEBUG", "-DTF_LITE_STATIC_MEMORY")
#: Where TFLM's makefile puts the third-party headers the public API includes.
DOWNLOADS = Path("tensorflow/lite/micro/tools/make/downloads")
#: Resolver method names that do not follow the CamelCase rule of :func:`resolver_method`.
_RESOLVER_EXCEPTIONS = {"UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
                        "LSTM": "AddLstm", "SVDF": "AddSvdf", "PRELU": "AddPrelu",
                        "L2_POOL_2D": "AddL2Pool2D"}
#: Symbols only a CMSIS-NN build of TFLM contains (its kernels call these).
_CMSIS_NN_SYMBOLS = (b"arm_convolve_wrapper_s8", b"arm_fully_connected_s8",
                     b"arm_depthwise_conv_wrapper_s8", b"arm_elementwise_add_s8",
                     b"arm_softmax_s8")
_MICRO_PRINTF = b"_Z11MicroPrintfPKcz"
#: RAM the sizing run gives the arena at most (the board's data region is enlarged to
#: this, if the address space allows, so even a too-big model reports what it needs).
SIZING_RAM_BYTES = 16 * 1024 * 1024


def resolver_method(opcode: str) -> str:
    """``MicroMutableOpResolver`` method registering a builtin op (``CONV_2D`` ->
    ``AddConv2D``).  Custom ops cannot be registered by name."""
    if opcode.startswith("CUSTOM:"):
        raise UnsupportedModelError(f"custom op {opcode[7:]!r}: register it in your own "
                                    "TFLM harness (no resolver method by name)")
    if opcode in _RESOLVER_EXCEPTIONS:
        return _RESOLVER_EXCEPTIONS[opcode]
    # "CONV_2D" -> Conv2D: parts starting with a digit ("2D", "3D") keep their case
    return "Add" + "".join(part if part[:1].isdigit() else part[:1] + part[1:].lower()
                           for part in opcode.split("_"))


def include_dirs(root: Path) -> list[Path]:
    """The include folders a TFLM source checkout provides for the harness: the root,
    flatbuffers and gemmlowp (as TFLM's makefile downloads them).  ruy, CMSIS and
    CMSIS-NN headers are not needed by the public API."""
    root = Path(root)
    if not (root / "tensorflow" / "lite" / "micro" / "micro_interpreter.h").is_file():
        raise ConfigError(f"{root} is not a TFLM source checkout (no "
                          "tensorflow/lite/micro/micro_interpreter.h)")
    dirs = [root, root / DOWNLOADS / "flatbuffers" / "include", root / DOWNLOADS / "gemmlowp"]
    for d in dirs[1:]:
        if not d.is_dir():
            raise ConfigError(f"TFLM checkout {root} lacks {d.relative_to(root)}: build the "
                              "library there once (TFLM's make downloads it)")
    return dirs


def archive_symbols(data: bytes) -> set[bytes]:
    """The global symbols a static library defines, from its archive index (the GNU/SysV
    ``/`` member: big-endian count, offsets, NUL-terminated names); empty without one."""
    if not data.startswith(b"!<arch>\n") or len(data) < 68 or data[8:10] != b"/ ":
        return set()
    size = int(data[56:66].decode("ascii", "replace").strip() or 0)
    body = data[68:68 + size]
    count = int.from_bytes(body[:4], "big")
    names = body[4 + 4 * count:].split(b"\0")
    return {n for n in names[:count] if n}


def kernel_set_of_archive(data: bytes) -> str:
    """Which TFLM kernels a static library holds, from its symbol names: ``cmsis-nn``
    when CMSIS-NN's entry points are in it, else ``reference``."""
    return "cmsis-nn" if any(s in data for s in _CMSIS_NN_SYMBOLS) else "reference"


def harness_flags_for(data: bytes) -> tuple[str, ...]:
    """Flags the harness needs to match how the library was built: a release build
    (``BUILD_TYPE=release``, TF_LITE_STRIP_ERROR_STRINGS) defines no ``MicroPrintf``,
    which TFLM's headers then turn into a no-op, so the harness must be compiled so too."""
    symbols = archive_symbols(data)
    if symbols and _MICRO_PRINTF not in symbols:
        return ("-DTF_LITE_STRIP_ERROR_STRINGS",)
    return ()


def _read_library(lib: Path) -> bytes:
    try:
        return Path(lib).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read TFLM library {lib}: {exc.strerror or exc}") from None


def detect_kernel_set(lib: Path) -> str:
    """:func:`kernel_set_of_archive` of the library file *lib*."""
    return kernel_set_of_archive(_read_library(lib))


def kernel_label(kernels: str) -> str:
    """How reports name a TFLM kernel set."""
    return {"cmsis-nn": "TFLM CMSIS-NN", "reference": "TFLM reference"}.get(kernels,
                                                                           f"TFLM {kernels}")


@dataclass(frozen=True)
class TflmLibrary:
    """A prebuilt TFLM static library and the include folders of its source checkout."""

    path: Path
    includes: tuple[Path, ...]
    kernels: str
    root: Path | None = None
    #: Extra harness flags matching the library's build (:func:`harness_flags_for`).
    flags: tuple[str, ...] = ()

    @classmethod
    def open(cls, path: Path, includes: Sequence[Path], kernels: str | None = None,
             root: Path | None = None) -> TflmLibrary:
        """The library file *path* with its kernel set and build flags detected."""
        data = _read_library(Path(path))
        return cls(Path(path), tuple(map(Path, includes)), kernels or kernel_set_of_archive(data),
                   Path(root) if root is not None else None, harness_flags_for(data))

    @classmethod
    def from_root(cls, path: Path, root: Path, kernels: str | None = None) -> TflmLibrary:
        """The library *path* built from the TFLM checkout *root* (includes derived)."""
        return cls.open(path, include_dirs(root), kernels, root)

    @property
    def label(self) -> str:
        return f"{kernel_label(self.kernels)} ({self.path.name})"


def tflm_model_files(tflite: bytes, name: str, opcodes: Sequence[str],
                     n_operators: int) -> tuple[str, str]:
    """(C source, header) of the generated model part of the TFLM harness: the
    flatbuffer as a 16-byte-aligned array, the model name, and the resolver setup."""
    ops = sorted(set(opcodes))
    methods = [resolver_method(op) for op in ops]
    rows = [", ".join(f"0x{b:02x}" for b in tflite[i:i + 16]) for i in range(0, len(tflite), 16)]
    table = "".join(f"  {{0, 0, {_c_string(op)}}},\n" for op in opcodes) or "  {0, 0, 0},\n"
    source = ("/* Generated by tinymeter: the .tflite model for the TFLM harness. */\n"
              "#include <stdint.h>\n#include \"tm_runtime.h\"\n"
              f"const char tm_model_name[] = {_c_string(name)};\n"
              "/* The model's operators in execution order (no kernels: TFLM runs them), for\n"
              " * tools that read the layer table from the ELF (the virtual board). */\n"
              f"const tm_layer tm_layers[] = {{\n{table}}};\n"
              f"const uint32_t tm_num_layers = {len(opcodes)}u;\n"
              f"const unsigned int tm_tflm_model_len = {len(tflite)}u;\n"
              "__attribute__((aligned(16))) const unsigned char tm_tflm_model_data[] = {\n  "
              + ",\n  ".join(rows) + "\n};\n")
    adds = " ".join(f"(r).{m}();" for m in methods)
    header = ("/* Generated by tinymeter: op resolver and sizes for the TFLM harness. */\n"
              "#ifndef TM_TFLM_MODEL_H\n#define TM_TFLM_MODEL_H\n"
              f"#define TM_TFLM_NUM_OPS {max(len(ops), 1)}\n"
              f"#define TM_TFLM_MAX_LAYERS {max(n_operators, 1)}\n"
              f"#define TM_TFLM_ADD_OPS(r) do {{ {adds} }} while (0)\n"
              f"/* ops: {', '.join(ops)} */\n#endif\n")
    return source, header


def tflm_compile_argv(cxx: str, core: Core, config: BuildConfig, source: Path, obj: Path,
                      includes: Sequence[Path]) -> list[str]:
    """Command line compiling the C++ harness against the TFLM headers."""
    return [cxx, *target_flags(core, config, TFLM_CXXFLAGS), *(f"-I{i}" for i in includes),
            "-c", str(source), "-o", str(obj)]


def tflm_link_argv(cxx: str, core: Core, objects: Sequence[Path], tflm_lib: Path,
                   script: Path, elf: Path, map_file: Path) -> list[str]:
    """Command line linking harness, platform and the TFLM static library (g++ adds
    libstdc++/libsupc++ for the vtables and operator delete of the harness classes)."""
    return [cxx, *core.gcc_flags, "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
            "-Wl,--gc-sections", f"-Wl,-Map={map_file}", f"-T{script}",
            *(str(o) for o in objects), "-Wl,--start-group", str(tflm_lib), "-lm",
            "-Wl,--end-group", "-o", str(elf)]


def tflm_linker_script(board: Board, stack_bytes: int, arena_bytes: int | None) -> str:
    """:func:`~tinymeter.firmware.build.linker_script` plus ``.init_array`` (C++ static
    constructors of the library, run by the harness) in the text region and the
    ``.tflm_arena`` section before the stack: *arena_bytes* exactly, or with ``None``
    everything up to the stack (16-byte aligned both ends)."""
    if arena_bytes is not None and (arena_bytes <= 0 or arena_bytes % 16):
        raise ConfigError("the TFLM arena size must be a positive multiple of 16 bytes")
    data = board.data
    init = (f"  .init_array :\n  {{\n    . = ALIGN(4);\n    __init_array_start = .;\n"
            f"    KEEP(*(SORT(.init_array.*)))\n    KEEP(*(.init_array))\n"
            f"    __init_array_end = .;\n  }} > {board.text.name}\n\n  .ARM.exidx :")
    if arena_bytes is None:
        # the stack is ALIGN(8) + stack_bytes after the arena: stop 16 bytes short
        size = (f"    . = ALIGN(ORIGIN({data.name}) + LENGTH({data.name}) - {stack_bytes} "
                f"- 31, 16);\n")
    else:
        size = f"    . = . + {arena_bytes};\n"
    arena = (f"  .tflm_arena (NOLOAD) : ALIGN(16)\n  {{\n    __tm_arena_start = .;\n"
             f"{size}    __tm_arena_end = .;\n  }} > {data.name}\n\n  .stack (NOLOAD) :")
    script = linker_script(board, stack_bytes).replace("  .ARM.exidx :", init, 1)
    return script.replace("  .stack (NOLOAD) :", arena, 1)


def sizing_board(board: Board, ram_bytes: int = SIZING_RAM_BYTES) -> Board:
    """*board* with its data region grown to *ram_bytes* (never over the next memory
    region, nor past 0x40000000 where peripherals start): the sizing run's arena
    holds any model a Cortex-M could run, so a too-big one still says what it needs."""
    data = board.data
    ceiling = 0x40000000 if data.origin < 0x40000000 else data.origin + ram_bytes
    limit = min([r.origin for r in board.memory if r.origin > data.origin] + [ceiling])
    size = max(data.size, min(ram_bytes, limit - data.origin))
    memory = tuple(replace(r, size=size) if r.name == data.name else r for r in board.memory)
    return replace(board, memory=memory)


def arena_for(used: int) -> int:
    """The arena to link for a model whose ``arena_used_bytes()`` is *used* (the arena
    start is 16-byte aligned, so TFLM needs no more; rounded up to 16)."""
    return max(16, (used + 15) // 16 * 16)


class TflmBuild:
    """The TFLM harness for one model, board and library: compiled once, linked with
    any arena (:meth:`link`).  Files live in *work* (a fresh temporary folder unless
    given); :meth:`keep` copies the ELF and its sources to an output folder.  The
    runtime's platform objects and the compiled C++ harness come from *builder*'s cache
    (the same cache and compiler flags as model images)."""

    def __init__(self, tflite: bytes, name: str, opcodes: Sequence[str], board: Board,
                 library: TflmLibrary, config: BuildConfig | None = None,
                 work: Path | None = None, cc: str = ARM_CC, cxx: str = ARM_CXX,
                 builder: FirmwareBuilder | None = None) -> None:
        self.config = config or BuildConfig()
        if not Path(library.path).is_file():
            raise ConfigError(f"TFLM library {library.path} does not exist")
        for inc in library.includes:
            if not Path(inc).is_dir():
                raise ConfigError(f"TFLM include directory {inc} does not exist")
        self.board, self.library, self.cc, self.cxx = board, library, cc, cxx
        self.builder = builder or FirmwareBuilder(cc=cc)
        self.work = Path(work) if work is not None else Path(tempfile.mkdtemp(prefix="tm-tflm-"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.source, self.header = tflm_model_files(tflite, name, opcodes, len(opcodes))
        self.objects: list[Path] = []

    def compile(self) -> list[Path]:
        """Compile harness, platform and generated model (once)."""
        if self.objects:
            return self.objects
        root, work, core = runtime_dir(), self.work, self.board.core
        (work / "tm_tflm_model.c").write_text(self.source)
        (work / "tm_tflm_model.h").write_text(self.header)
        include = root / "include"
        objects = [self._harness_object(work, include)]
        objects += self.builder.target_objects(
            [root / "platform" / "cortexm.c", root / "platform" / "startup_cortexm.c"], core,
            self.config)
        generated = [work / "tm_tflm_model.c"]
        for name, text in board_sources(self.board, self.config).items():  # hardware image
            (work / name).write_text(text)
            generated.append(work / name)
        for src in generated:
            obj = work / f"{src.stem}.o"
            run_tool(compile_argv(self.cc, core, self.config, src, obj, include),
                     f"compiling {src.name}")
            objects.append(obj)
        self.objects = objects
        return objects

    def _harness_object(self, work: Path, include: Path) -> Path:
        """The compiled C++ harness (seconds of TFLM headers), cached by everything it
        depends on: harness and runtime headers, the generated op header, the command
        line, and the library file's identity (a rebuilt library may come with changed
        headers)."""
        root, core = runtime_dir(), self.board.core
        config = replace(self.config, extra_cflags=(*self.library.flags,
                                                    *self.config.extra_cflags))
        source = root / "tflm" / "tm_tflm_main.cc"
        argv = tflm_compile_argv(self.cxx, core, config, source, Path("h.o"),
                                 [Path("gen"), include, *self.library.includes])
        stat = Path(self.library.path).stat()
        key = content_digest(source.read_bytes(), self.header, " ".join(argv),
                             str(Path(self.library.path).resolve()), str(stat.st_size),
                             str(stat.st_mtime_ns),
                             *(h.read_bytes() for h in sorted(include.glob("*.h"))))
        cached = self.builder.cache_dir / "tflm-harness" / f"{key}.o"
        harness = work / "tm_tflm_main.o"
        if cached.exists():
            atomic_copy(cached, harness)
            return harness
        run_tool(tflm_compile_argv(self.cxx, core, config, source, harness,
                                   [work, include, *self.library.includes]),
                 "compiling the TFLM harness")
        atomic_copy(harness, cached)
        return harness

    def link(self, arena_bytes: int | None, board: Board | None = None,
             stem: str = "firmware") -> Path:
        """Link ``STEM.elf`` for *board* (default the build's) with the given arena
        (``None``: the largest the data region allows)."""
        board = board or self.board
        objects = self.compile()
        script = self.work / f"{stem}.ld"
        script.write_text(tflm_linker_script(board, self.config.stack_bytes, arena_bytes))
        elf = self.work / f"{stem}.elf"
        try:
            run_tool(tflm_link_argv(self.cxx, board.core, objects, self.library.path, script,
                                    elf, self.work / f"{stem}.map"),
                     f"linking against {self.library.path.name} for {board.name}")
        except BuildError as exc:
            raise BuildError(abi_mismatch_hint(str(exc), self.library.path.name, board)) from None
        return elf

    def keep(self, out_dir: Path, stem: str = "firmware") -> Path:
        """Copy the linked ``STEM.elf`` (as firmware.elf), its map, linker script and the
        generated model files to *out_dir*; returns the copied ELF."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for src, dst in ((f"{stem}.elf", "firmware.elf"), (f"{stem}.map", "firmware.map"),
                         (f"{stem}.ld", "linker.ld"), ("tm_tflm_model.c", "tm_tflm_model.c"),
                         ("tm_tflm_model.h", "tm_tflm_model.h")):
            atomic_copy(self.work / src, out / dst)
        return out / "firmware.elf"

    def cleanup(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


ARENA_LIMIT_SYMBOL = "tm_tflm_arena_limit"


def patch_word(elf: Path, symbol: str, value: int, out: Path) -> Path:
    """Copy *elf* to *out* with the 32-bit constant *symbol* (in a loaded segment) set
    to *value*: how the arena search tries sizes without relinking."""
    data = bytearray(Path(elf).read_bytes())
    with open(elf, "rb") as fh:
        f = ELFFile(fh)
        symtab = f.get_section_by_name(".symtab")
        found = symtab.get_symbol_by_name(symbol) if isinstance(symtab, SymbolTableSection) else None
        if not found:
            raise BuildError(f"{elf} has no symbol {symbol!r} (not a tinymeter TFLM harness?)")
        address = found[0]["st_value"]
        offset = next((seg["p_offset"] + address - seg["p_vaddr"] for seg in f.iter_segments()
                       if seg["p_type"] == "PT_LOAD"
                       and seg["p_vaddr"] <= address < seg["p_vaddr"] + seg["p_filesz"]), None)
    if offset is None:
        raise BuildError(f"{elf}: {symbol} is not in a loaded segment")
    data[offset:offset + 4] = int(value).to_bytes(4, "little")
    Path(out).write_bytes(bytes(data))
    return Path(out)


def search_sizes(lo: int, hi: int, fits: Callable[[int], bool]) -> int:
    """The smallest multiple of 16 in (lo, hi] for which *fits* holds, given it holds at
    *hi* and fails at *lo*: doubling steps up from *lo*, then bisection."""
    step, good, bad = 16, hi, lo
    while bad + step < hi:
        if fits(bad + step):
            good = bad + step
            break
        bad, step = bad + step, step * 2
    while good - bad > 16:
        mid = (bad + good) // 2 // 16 * 16
        if mid <= bad:
            break
        if fits(mid):
            good = mid
        else:
            bad = mid
    return good


_ABI_MISMATCH = ("uses VFP register arguments", "conflicting architecture profiles",
                 "conflicting CPU architectures", "failed to merge target specific data")


def abi_mismatch_hint(message: str, lib_name: str, board: Board) -> str:
    """A link failure's message, led by the cause when the library was built for another
    core or float ABI (what the linker says is a wall of per-object errors)."""
    if not any(m in message for m in _ABI_MISMATCH):
        return message
    return (f"{lib_name} was built for another core or float ABI than {board.name}'s "
            f"{board.core.name} ({' '.join(board.core.gcc_flags)}); use a TFLM library built "
            f"for {board.core.name} ({message[:160]}...)")


def elf_memory(elf: Path) -> tuple[int, int, dict[str, int]]:
    """(flash bytes, RAM bytes, section sizes) of a harness ELF: flash holds code,
    constants, the flatbuffer, init arrays and .data's load image; RAM is .data, .bss,
    the arena section and the stack."""
    sections = section_sizes(Path(elf))
    return (*memory_use(sections), sections)


def too_big_error(name: str, board: Board, used: int, arena_room: int,
                  at_least: bool = False) -> DoesNotFit:
    """The error for a model whose arena does not fit: both sizes named (*at_least*:
    the model needs more than *used*, the largest arena tried)."""
    need = f"more than {used:,} B of" if at_least else f"a {used:,} B"
    return DoesNotFit(f"model {name} needs {need} TFLM tensor arena, but the "
                      f"{board.data.size:,} B {board.data.name} of {board.name} leaves at most "
                      f"{arena_room:,} B for it (after .data, .bss and the stack)",
                      memory="RAM for the arena", needed=used + (16 if at_least else 0),
                      available=arena_room)
