"""Linking the TFLM harness against a prebuilt TFLM static library.

No real TFLM build is available offline, so compile + link + run is tested against a
FAKE TFLM: a test double written below (headers + a static library) implementing only
the API subset ``runtime/tflm/tm_tflm_main.cc`` uses.  Its "ops" are busy loops named by
the registered resolver methods.  That verifies the harness, argv, linker script and
emulator attribution; it does not verify compatibility with a real TFLM library.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tinymeter.boards import load_board
from tinymeter.cores import get_core
from tinymeter.firmware.build import (
    BuildConfig,
    build_tflm,
    resolver_method,
    tflm_compile_argv,
    tflm_link_argv,
    tflm_linker_script,
    tflm_model_files,
)

needs_gxx = pytest.mark.skipif(shutil.which("arm-none-eabi-g++") is None,
                               reason="arm-none-eabi-g++ missing")

# ---------------------------------------------------------------------------------------
# pure parts

def test_resolver_method_names() -> None:
    from tinymeter.errors import UnsupportedModelError

    assert resolver_method("CONV_2D") == "AddConv2D"
    assert resolver_method("DEPTHWISE_CONV_2D") == "AddDepthwiseConv2D"
    assert resolver_method("FULLY_CONNECTED") == "AddFullyConnected"
    assert resolver_method("AVERAGE_POOL_2D") == "AddAveragePool2D"
    assert resolver_method("SOFTMAX") == "AddSoftmax"
    assert resolver_method("RELU6") == "AddRelu6"
    assert resolver_method("BATCH_TO_SPACE_ND") == "AddBatchToSpaceNd"
    assert resolver_method("UNIDIRECTIONAL_SEQUENCE_LSTM") == "AddUnidirectionalSequenceLSTM"
    with pytest.raises(UnsupportedModelError, match="custom op 'MyOp'"):
        resolver_method("CUSTOM:MyOp")


def test_tflm_argv_exact() -> None:
    core = get_core("cortex-m4f")
    cfg = BuildConfig(opt="-O3", runs=2)
    assert tflm_compile_argv("g++", core, cfg, Path("h.cc"), Path("h.o"),
                             [Path("gen"), Path("/tflm"), Path("/tflm/third_party/fb")]) == [
        "g++", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-O3",
        "-std=c++17", "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics",
        "-fno-unwind-tables", "-ffunction-sections", "-fdata-sections", "-Wall",
        "-DTF_LITE_STATIC_MEMORY", "-DTM_RUNS=2", "-Igen", "-I/tflm", "-I/tflm/third_party/fb",
        "-c", "h.cc", "-o", "h.o"]
    m0 = get_core("cortex-m0plus")
    assert tflm_link_argv("g++", m0, [Path("a.o"), Path("b.o")], Path("/l/libtflm.a"),
                          Path("l.ld"), Path("fw.elf"), Path("fw.map")) == [
        "g++", "-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft", "-nostartfiles",
        "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections", "-Wl,-Map=fw.map",
        "-Tl.ld", "a.o", "b.o", "-Wl,--start-group", "/l/libtflm.a", "-lm",
        "-Wl,--end-group", "-o", "fw.elf"]


def test_tflm_generated_files_and_linker_script() -> None:
    source, header = tflm_model_files(b"\x01\x02\xff", "kws", ["SOFTMAX", "CONV_2D", "CONV_2D"],
                                      n_operators=3, arena_bytes=4096)
    assert "const char tm_model_name[] = \"kws\";" in source
    assert "aligned(16))) const unsigned char tm_tflm_model_data[] = {\n  0x01, 0x02, 0xff\n};" \
        in source
    assert "#define TM_TFLM_NUM_OPS 2" in header and "#define TM_TFLM_MAX_LAYERS 3" in header
    assert "#define TM_TFLM_ADD_OPS(r) do { (r).AddConv2D(); (r).AddSoftmax(); } while (0)" \
        in header
    script = tflm_linker_script(load_board("nucleo-l4r5zi"), 8192)
    assert "__init_array_start = .;" in script and "KEEP(*(.init_array))" in script
    assert script.index(".init_array :") < script.index(".ARM.exidx :")
    from tinymeter.errors import ConfigError
    with pytest.raises(ConfigError, match="multiple of 16"):
        tflm_model_files(b"", "m", ["ADD"], 1, 1000)


# ---------------------------------------------------------------------------------------
# the fake TFLM (test double)

FAKE_HEADERS = {
    "tensorflow/lite/c/common.h": r"""
#pragma once
#include <stddef.h>
#include <stdint.h>
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef union { void *data; int8_t *int8; } TfLitePtrUnion;
typedef struct { TfLitePtrUnion data; size_t bytes; } TfLiteTensor;
""",
    "tensorflow/lite/schema/schema_generated.h": r"""
#pragma once
namespace tflite { struct Model; const Model *GetModel(const void *buf); }
""",
    "tensorflow/lite/micro/micro_profiler_interface.h": r"""
#pragma once
#include <stdint.h>
namespace tflite {
class MicroProfilerInterface {
 public:
  virtual ~MicroProfilerInterface() {}
  virtual uint32_t BeginEvent(const char *tag) = 0;
  virtual void EndEvent(uint32_t event_handle) = 0;
};
}
""",
    "tensorflow/lite/micro/micro_mutable_op_resolver.h": r"""
#pragma once
#include "tensorflow/lite/c/common.h"
namespace tflite {
class MicroOpResolver {
 public:
  const char *names[8];
  unsigned count = 0;
};
template <unsigned N> class MicroMutableOpResolver : public MicroOpResolver {
 public:
  TfLiteStatus AddFullyConnected() { return Add("FULLY_CONNECTED"); }
  TfLiteStatus AddSoftmax() { return Add("SOFTMAX"); }
 private:
  TfLiteStatus Add(const char *n) {
    if (count >= N || count >= 8) return kTfLiteError;
    names[count++] = n;
    return kTfLiteOk;
  }
};
}
""",
    "tensorflow/lite/micro/micro_interpreter.h": r"""
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/schema/schema_generated.h"
namespace tflite {
class MicroResourceVariables;
class MicroInterpreter {
 public:
  MicroInterpreter(const Model *model, const MicroOpResolver &op_resolver,
                   uint8_t *tensor_arena, size_t tensor_arena_size,
                   MicroResourceVariables *resource_variables = nullptr,
                   MicroProfilerInterface *profiler = nullptr);
  TfLiteStatus AllocateTensors();
  TfLiteStatus Invoke();
  size_t inputs_size() const { return 1; }
  size_t outputs_size() const { return 1; }
  TfLiteTensor *input(size_t index);
  TfLiteTensor *output(size_t index);
 private:
  const MicroOpResolver &resolver_;
  uint8_t *arena_;
  size_t arena_size_;
  MicroProfilerInterface *profiler_;
  TfLiteTensor input_, output_;
};
}
""",
}

# Op k (k = 0, 1, ...) sums the 16 input bytes (k + 1) * 100 times; the output is the
# plain byte sum, so inputs and outputs go through the harness's I/O hooks for real.
FAKE_LIB = r"""
#include "tensorflow/lite/micro/micro_interpreter.h"
namespace tflite {
const Model *GetModel(const void *buf) { return static_cast<const Model *>(buf); }
MicroInterpreter::MicroInterpreter(const Model *, const MicroOpResolver &op_resolver,
                                   uint8_t *tensor_arena, size_t tensor_arena_size,
                                   MicroResourceVariables *, MicroProfilerInterface *profiler)
    : resolver_(op_resolver), arena_(tensor_arena), arena_size_(tensor_arena_size),
      profiler_(profiler) {}
TfLiteStatus MicroInterpreter::AllocateTensors() {
  if (arena_size_ < 32) return kTfLiteError;
  input_.data.data = arena_;
  input_.bytes = 16;
  output_.data.data = arena_ + 16;
  output_.bytes = 4;
  return kTfLiteOk;
}
__attribute__((noinline)) static uint32_t fake_op(const uint8_t *in, uint32_t reps) {
  uint32_t sum = 0;
  for (uint32_t r = 0; r < reps; ++r) {
    sum = 0;
    for (int i = 0; i < 16; ++i) sum += in[i];
    __asm__ volatile("" : "+r"(sum));
  }
  return sum;
}
TfLiteStatus MicroInterpreter::Invoke() {
  const uint8_t *in = static_cast<const uint8_t *>(input_.data.data);
  uint32_t sum = 0;
  for (unsigned k = 0; k < resolver_.count; ++k) {
    uint32_t h = profiler_ ? profiler_->BeginEvent(resolver_.names[k]) : 0;
    sum = fake_op(in, (k + 1) * 100u);
    if (profiler_) profiler_->EndEvent(h);
  }
  uint8_t *out = static_cast<uint8_t *>(output_.data.data);
  for (int i = 0; i < 4; ++i) out[i] = (uint8_t)(sum >> (8 * i));
  return kTfLiteOk;
}
TfLiteTensor *MicroInterpreter::input(size_t) { return &input_; }
TfLiteTensor *MicroInterpreter::output(size_t) { return &output_; }
}
"""


def build_fake_tflm(root: Path, core_name: str) -> tuple[Path, Path]:
    """Write the fake TFLM headers and build its static library for *core_name*."""
    include = root / "include"
    for rel, text in FAKE_HEADERS.items():
        (include / rel).parent.mkdir(parents=True, exist_ok=True)
        (include / rel).write_text(text)
    (root / "fake_tflm.cc").write_text(FAKE_LIB)
    core = get_core(core_name)
    obj, lib = root / "fake_tflm.o", root / "libfake_tflm.a"
    subprocess.run(tflm_compile_argv("arm-none-eabi-g++", core, BuildConfig(), root / "fake_tflm.cc",
                                     obj, [include]), check=True, capture_output=True, text=True)
    subprocess.run(["arm-none-eabi-ar", "rcs", str(lib), str(obj)], check=True)
    return lib, include


@needs_gxx
@pytest.mark.parametrize("board_name", ["nucleo-l4r5zi", "nucleo-g0b1re"])
def test_fake_tflm_compile_link_run(board_name: str, tmp_path: Path) -> None:
    from tinymeter.sim.emulator import Emulator
    from tinymeter.sim.native_hook import CYCLE_SCALE

    board = load_board(board_name)
    lib, include = build_fake_tflm(tmp_path / "tflm", board.core.name)
    elf = build_tflm(b"TFL3-not-parsed-by-the-fake", "fake", ["SOFTMAX", "FULLY_CONNECTED"], 2,
                     board, lib, [include], arena_bytes=1024, out_dir=tmp_path / "fw")
    inputs = [[bytes(range(16))], [bytes([7] * 16)]]
    run = Emulator(board).run(elf, inputs, budget_instructions=10**8, timeout_s=60)
    assert [struct.unpack("<I", out[0])[0] for out in run.outputs] == [120, 112]
    # one layer per event, in resolver registration order (sorted op names)
    lines = re.findall(r"^TM1 L (\d+) (\S+) (\d+)$", run.stdout, re.MULTILINE)
    assert [(int(i), op) for i, op, _c in lines] == [(0, "FULLY_CONNECTED"), (1, "SOFTMAX")] * 2
    per_layer = run.profile.instructions_per_layer()
    assert set(per_layer) == {-1, 0, 1}
    assert 1.9 < per_layer[1] / per_layer[0] < 2.1  # 200 vs 100 repetitions
    # the harness's cycle counter reports the emulator's estimate (see test_sim_cycles)
    cycles = run.cycles_per_layer()
    last = {int(i): int(c) for i, _op, c in lines[2:]}
    for layer in (0, 1):
        assert abs(last[layer] - cycles[layer] / 2) < 60  # two inferences per layer id
    assert run.cycles_fixed == int(run.block_cycles.sum()) and CYCLE_SCALE > 1


@needs_gxx
def test_estimate_with_fake_tflm_lib(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``tinymeter estimate MODEL --tflm-lib LIB --tflm-include DIR``: layers named by the
    TFLM event tags, costed like the built-in runtime."""
    import numpy as np

    from tinymeter.cli import main
    from tinymeter.models.testing import bias_tensor, int8_tensor, random_int8, single_op_model

    x = int8_tensor("x", (1, 16), 0.05, 2)
    w = int8_tensor("w", (4, 16), 0.01, 0, data=random_int8((4, 16), seed=1))
    b = bias_tensor("b", np.zeros(4, np.int32), input_scale=0.05, weight_scales=w)
    y = int8_tensor("y", (1, 4), 0.2, -1)
    model = tmp_path / "fc.tflite"
    model.write_bytes(single_op_model("FULLY_CONNECTED", [x, w, b], [y]))
    lib, include = build_fake_tflm(tmp_path / "tflm", "cortex-m4f")
    assert main(["estimate", str(model), "-q", "--tflm-lib", str(lib), "--tflm-include",
                 str(include), "--tflm-arena", "2048"]) == 0
    out = capsys.readouterr().out
    assert "FULLY_CONNECTED" in out and "TFLM" in out and "cost model" in out
