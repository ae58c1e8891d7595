"""Build tiny bare-metal programs for a board: for simulator tests and benchmarks.

The real firmware comes from ``tinymeter.firmware``; these programs deliberately do
not, so the simulator can be tested (and benchmarked) independently of the runtime.
The build provides its own vector table, startup (``.data`` copy from its flash LMA,
``.bss`` zeroing, FPU enable), semihosting helpers and no-op versions of the firmware
ABI hooks, so a test program is just a ``main()``.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tinymeter.core.boards import Board
from tinymeter.core.cores import Core
from tinymeter.core.errors import BuildError
from tinymeter.core.files import atomic_copy
from tinymeter.firmware.build import content_digest, default_cache_dir

log = logging.getLogger(__name__)

GCC = "arm-none-eabi-gcc"

#: Header every program gets: semihosting calls and the ABI hook declarations.
PRELUDE_H = r"""
#include <stdint.h>
#include <stddef.h>
uint32_t tm_io_next(void);
void tm_io_input_hook(uint32_t index, uint8_t *buf, uint32_t bytes);
void tm_io_output_hook(uint32_t index, const uint8_t *buf, uint32_t bytes);
void tm_prof_begin(uint32_t layer);
void tm_prof_end(uint32_t layer);
void tm_exit(int code);
int tm_semihost(int op, const void *arg);
void tm_puts(const char *s);

/* "<label><v>\n" to the semihosting console (SYS_WRITE0), inline so programs that
   bring their own startup (startup=False) can print their figures too. */
static inline void tm_print_u(const char *label, uint32_t v) {
  char buf[48];
  int n = 0;
  while (*label) buf[n++] = *label++;
  char digits[10];
  int k = 0;
  do { digits[k++] = (char)('0' + v % 10u); v /= 10u; } while (v);
  while (k) buf[n++] = digits[--k];
  buf[n++] = '\n';
  buf[n] = 0;
  register int r0 __asm__("r0") = 4;
  register const char *r1 __asm__("r1") = buf;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
}
"""

RUNTIME_C = r"""
#include "prelude.h"
extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
int main(void);

int tm_semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
void tm_puts(const char *s) { tm_semihost(0x04, s); }

/* Emulator-intercepted ABI hooks: noipa so calls are never folded away. */
__attribute__((noipa)) uint32_t tm_io_next(void) { static uint32_t runs = 1; return runs ? runs-- : 0; }
__attribute__((noipa)) void tm_io_input_hook(uint32_t i, uint8_t *b, uint32_t n) {
    (void)i; (void)b; (void)n;
}
__attribute__((noipa)) void tm_io_output_hook(uint32_t i, const uint8_t *b, uint32_t n) {
    (void)i; (void)b; (void)n;
}
__attribute__((noipa)) void tm_prof_begin(uint32_t layer) { (void)layer; }
__attribute__((noipa)) void tm_prof_end(uint32_t layer) { (void)layer; }

__attribute__((noreturn, noipa)) void tm_exit(int code) {
    uint32_t block[2] = {0x20026u, (uint32_t)code};
    tm_semihost(0x20, block); /* SYS_EXIT_EXTENDED */
    for (;;) {}
}

__attribute__((noreturn)) void reset_handler(void) {
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10/CP11 full access */
    __asm__ volatile("dsb\n isb");
#endif
    tm_exit(main());
}

__attribute__((noreturn)) void default_handler(void) { for (;;) {} }

__attribute__((section(".vectors"), used)) const void *const tm_vectors[16] = {
    &_estack, (void *)reset_handler, (void *)default_handler, (void *)default_handler,
    (void *)default_handler, (void *)default_handler, (void *)default_handler,
};
"""

LINKER_LD = """
MEMORY {{
  TEXT (rx) : ORIGIN = 0x{text_origin:08x}, LENGTH = 0x{text_size:x}
  DATA (rwx) : ORIGIN = 0x{data_origin:08x}, LENGTH = 0x{data_size:x}
}}
ENTRY(reset_handler)
SECTIONS {{
  .text : {{ KEEP(*(.vectors)) *(.text*) *(.rodata*) . = ALIGN(4); }} > TEXT
  .data : {{ _sdata = .; *(.data*) . = ALIGN(4); _edata = .; }} > DATA AT > TEXT
  _sidata = LOADADDR(.data);
  .bss (NOLOAD) : {{ _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; }} > DATA
  end = .;
  _estack = ORIGIN(DATA) + LENGTH(DATA);
  /DISCARD/ : {{ *(.ARM.exidx*) *(.ARM.attributes) }}
}}
"""


def toolchain_available() -> bool:
    return shutil.which(GCC) is not None


#: Flags of a test program besides the core's (``Core.gcc_flags``, the one source of
#: target flags the firmware builds use too): freestanding, no C library, no startup.
PROGRAM_FLAGS = ("-g", "-ffreestanding", "-nostdlib", "-nostartfiles", "-ffunction-sections",
                 "-Wall")


def program_argv(core: Core, opt: str, extra_flags: Sequence[str], script: Path, elf: Path,
                 sources: Sequence[Path]) -> list[str]:
    """Command line compiling and linking a test program in one step (pure)."""
    return [GCC, *core.gcc_flags, opt, *PROGRAM_FLAGS, *extra_flags, "-T", str(script),
            "-o", str(elf), *(str(s) for s in sources), "-lgcc"]


def build_program(board: Board, main_c: str, workdir: Path, *, name: str = "prog",
                  opt: str = "-O1", extra_flags: tuple[str, ...] = (),
                  startup: bool = True, cache_dir: Path | None = None) -> Path:
    """Compile *main_c* (C source with ``main``) with the test runtime for *board*.

    ``startup=False`` leaves out the test runtime (vector table, reset handler,
    semihosting helpers): the program brings its own, as vendor firmware does, and is
    linked with the same script (``.vectors``, ``_sidata``/``_sdata``/``_edata``,
    ``_sbss``/``_ebss``, ``_estack``).
    The ELF is cached like the firmware images (``cache_dir``, default the builder's
    cache, keyed by the sources, the linker script and the command line), so the many
    tests and benchmarks that build the same program compile it once.

    Returns the ELF path (in *workdir*).  Raises :class:`BuildError` with the
    compiler's message.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prelude.h").write_text(PRELUDE_H)
    (workdir / "runtime.c").write_text(RUNTIME_C)
    (workdir / f"{name}.c").write_text('#include "prelude.h"\n' + main_c)
    text, data = board.text, board.data
    script = LINKER_LD.format(text_origin=text.origin, text_size=text.size,
                              data_origin=data.origin, data_size=data.size)
    (workdir / "link.ld").write_text(script)
    elf = workdir / f"{name}.elf"
    runtime = [Path("runtime.c")] if startup else []
    sources = [*runtime, Path(f"{name}.c")]
    key = content_digest(PRELUDE_H, RUNTIME_C if startup else "", main_c, script, " ".join(
        program_argv(board.core, opt, extra_flags, Path("link.ld"), Path(f"{name}.elf"),
                     sources)))
    cached = (cache_dir or default_cache_dir()) / "testfw" / f"{name}-{key}.elf"
    if cached.exists():
        atomic_copy(cached, elf)
        return elf
    cmd = program_argv(board.core, opt, extra_flags, workdir / "link.ld", elf,
                       [workdir / s for s in sources])
    log.debug("building %s: %s", elf, " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BuildError(f"{GCC} not found on PATH") from None
    if proc.returncode != 0:
        raise BuildError(f"test program {name} failed to build for {board.name}:\n"
                         f"{proc.stderr.strip()}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    atomic_copy(elf, cached)
    return elf


OBJCOPY = "arm-none-eabi-objcopy"


def assemble_argv(source: Path, obj: Path, cpu: str, fpu: str | None = None) -> list[str]:
    """Command line assembling a Thumb snippet for ``-mcpu=cpu`` (pure, so tests check it)."""
    return [GCC, f"-mcpu={cpu}", "-mthumb", *([f"-mfpu={fpu}", "-mfloat-abi=hard"] if fpu
                                                 else []), "-c", "-x", "assembler",
            str(source), "-o", str(obj)]


def assemble(asm: str, workdir: Path, *, cpu: str = "cortex-m4",
             fpu: str | None = "fpv4-sp-d16") -> bytes:
    """Assemble *asm* (unified-syntax Thumb, placed at offset 0 of ``.text``) into the raw
    bytes of its ``.text`` section: hand-checkable instruction encodings for decoder tests."""
    workdir.mkdir(parents=True, exist_ok=True)
    source, obj, raw = workdir / "snippet.s", workdir / "snippet.o", workdir / "snippet.bin"
    source.write_text(".syntax unified\n.thumb\n.text\n" + asm + "\n")
    for cmd in (assemble_argv(source, obj, cpu, fpu),
                [OBJCOPY, "-O", "binary", "-j", ".text", str(obj), str(raw)]):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise BuildError(f"{cmd[0]} not found on PATH") from None
        if proc.returncode != 0:
            raise BuildError(f"assembling a snippet for {cpu} failed:\n{proc.stderr.strip()}")
    return raw.read_bytes()
