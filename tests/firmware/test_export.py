"""``tinymeter export``: the own runtime as a C library a user builds into firmware.

The exported folder is compiled as a user would (its own ``main`` using only the API
header, the sources listed in ``sources.txt``, ``-Iinclude -I.``), linked with
tinymeter's start-up code and run in the emulator: the outputs must equal the
tflite-micro interpreter's bit for bit.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinymeter.core.boards import load_board
from tinymeter.firmware.build import ARM_CC, link_argv, linker_script, runtime_dir

MODELS = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "mlperf-tiny"
KWS = MODELS / "kws_ref_model.tflite"

needs_gcc = pytest.mark.skipif(shutil.which(ARM_CC) is None, reason="arm-none-eabi-gcc missing")

#: The user's main: only the exported API, plus the three I/O functions the emulator
#: intercepts to feed inputs and read outputs (on a board: a sensor and a UART).
USER_MAIN = r"""
#include <stdint.h>
#include "tinymeter_model.h"
#define HOOK __attribute__((noipa, used))
HOOK uint32_t tm_io_next(void) { __asm__ volatile("" ::: "memory"); return 0u; }
HOOK void tm_io_input_hook(uint32_t i, uint8_t *buf, uint32_t n) {
  (void)i; (void)buf; (void)n; __asm__ volatile("" ::: "memory");
}
HOOK void tm_io_output_hook(uint32_t i, const uint8_t *buf, uint32_t n) {
  (void)i; (void)buf; (void)n; __asm__ volatile("" ::: "memory");
}
void tm_platform_exit(int code);
int main(void) {
  if (tinymeter_init() != 0) return 1;
  while (tm_io_next()) {
    for (uint32_t i = 0; i < TINYMETER_NUM_INPUTS; ++i)
      tm_io_input_hook(i, tinymeter_input(i), tinymeter_input_bytes(i));
    if (tinymeter_invoke() != 0) return 2;
    for (uint32_t i = 0; i < TINYMETER_NUM_OUTPUTS; ++i)
      tm_io_output_hook(i, tinymeter_output(i), tinymeter_output_bytes(i));
  }
  return 0;
}
"""


def test_export_files_are_complete() -> None:
    from tinymeter.firmware.codegen import generate
    from tinymeter.firmware.export import export_files
    from tinymeter.models.tflite import load_tflite

    gen = generate(load_tflite(KWS), name="kws")
    m0 = export_files(gen, load_board("nucleo-g0b1re"), "optimized")
    assert "kernels/optimized/conv2d.c" not in m0  # no DSP on M0+: reference set
    assert "reference kernels" in m0["tinymeter_model.h"].splitlines()[0]
    m4 = export_files(gen, load_board("nucleo-l4r5zi"), "optimized")
    sources = m4["sources.txt"].split()
    assert sources[:2] == ["model.c", "tinymeter_api.c"]
    assert "kernels/optimized/conv2d.c" in sources and "kernels/reference/conv2d.c" not in sources
    assert "kernels/reference/conv2d.c" in m4  # included by the optimized one
    header = m4["tinymeter_model.h"]
    assert f"#define TINYMETER_ARENA_BYTES {gen.arena_bytes}u" in header
    assert "#define TINYMETER_INPUT0_SHAPE {1, 49, 10, 1}" in header
    assert "#define TINYMETER_INPUT0_ZERO_POINT 83" in header
    assert "int tinymeter_invoke(void);" in header and "TINYMETER_OUTPUT0_BYTES 12u" in header
    assert "$(TINYMETER_DIR)/kernels/optimized/conv2d.c" in m4["tinymeter.mk"]
    assert "tinymeter_invoke()" in m4["README.md"]


@pytest.mark.slow
@needs_gcc
@pytest.mark.skipif(not KWS.exists(), reason="MLPerf Tiny models missing")
def test_exported_library_builds_with_user_main_and_is_bit_exact(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tinymeter.apps.validate import random_inputs
    from tinymeter.cli.main import main
    from tinymeter.firmware.codegen import io_tensors
    from tinymeter.models.builders import run_tflm
    from tinymeter.models.tflite import load_tflite
    from tinymeter.sim.emulator import Emulator

    board = load_board("nucleo-l4r5zi")
    out = tmp_path / "kws_lib"
    assert main(["export", str(KWS), "--board", board.name, "--out", str(out)]) == 0
    assert "API in tinymeter_model.h" in capsys.readouterr().out
    (tmp_path / "main.c").write_text(USER_MAIN)
    platform = runtime_dir() / "platform"
    sources = [out / s for s in (out / "sources.txt").read_text().split()]
    sources += [tmp_path / "main.c", platform / "cortexm.c", platform / "startup_cortexm.c"]
    objects = []
    for i, src in enumerate(sources):
        obj = tmp_path / f"{i:02d}_{src.stem}.o"
        subprocess.run([ARM_CC, *board.core.gcc_flags, "-O2", "-std=c11",
                        "-ffunction-sections", "-fdata-sections", "-ffp-contract=off",
                        f"-I{out / 'include'}", f"-I{out}", "-c", str(src), "-o", str(obj)],
                       check=True, capture_output=True, text=True)
        objects.append(obj)
    (tmp_path / "fw.ld").write_text(linker_script(board, 8192))
    elf = tmp_path / "fw.elf"
    subprocess.run(link_argv(ARM_CC, board.core, objects, tmp_path / "fw.ld", elf,
                             tmp_path / "fw.map"), check=True, capture_output=True, text=True)
    model = load_tflite(KWS)
    ins, outs = io_tensors(model, model.main.inputs), io_tensors(model, model.main.outputs)
    samples = random_inputs(ins, 3, seed=7)
    run = Emulator(board).run(elf, [[s[0].tobytes()] for s in samples],
                              budget_instructions=10**9, timeout_s=120, count=False)
    assert run.inferences == 3
    for sample, got in zip(samples, run.outputs):
        want = run_tflm(KWS.read_bytes(), sample)[0]
        assert np.frombuffer(got[0], np.int8).reshape(outs[0].shape).tolist() == want.tolist()
