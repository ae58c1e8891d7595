"""Linking the TFLM harness against a prebuilt TFLM static library.

In CI, compile + link + run is tested against a FAKE TFLM: a test double written below
(headers laid out as a TFLM checkout + a static library) implementing only the API
subset ``runtime/tflm/tm_tflm_main.cc`` uses, with TFLM's shapes (resolver FindOp,
TFLMRegistration invoke, arena_used_bytes, RegisterDebugLogCallback).  Its "ops" are
busy loops.  That verifies the harness, argv, linker script, arena sizing and emulator
attribution; compatibility with real TFLM libraries is checked by the opt-in suite
``tests/firmware/test_tflm_real.py`` (``pytest --tflm-root DIR --tflm-lib LIB``).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tinymeter.core.boards import load_board
from tinymeter.core.cores import get_core
from tinymeter.firmware.build import BuildConfig, section_sizes
from tinymeter.firmware.tflm import (
    TflmBuild,
    TflmLibrary,
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
    from tinymeter.core.errors import UnsupportedModelError

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
        "-funsigned-char", "-DNDEBUG", "-DTF_LITE_STATIC_MEMORY", "-DTM_RUNS=2", "-Igen",
        "-I/tflm", "-I/tflm/third_party/fb", "-c", "h.cc", "-o", "h.o"]
    m0 = get_core("cortex-m0plus")
    assert tflm_link_argv("g++", m0, [Path("a.o"), Path("b.o")], Path("/l/libtflm.a"),
                          Path("l.ld"), Path("fw.elf"), Path("fw.map")) == [
        "g++", "-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft", "-nostartfiles",
        "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections", "-Wl,-Map=fw.map",
        "-Tl.ld", "a.o", "b.o", "-Wl,--start-group", "/l/libtflm.a", "-lm",
        "-Wl,--end-group", "-o", "fw.elf"]


def test_tflm_generated_files_and_linker_script() -> None:
    source, header = tflm_model_files(b"\x01\x02\xff", "kws", ["SOFTMAX", "CONV_2D", "CONV_2D"],
                                      n_operators=3)
    assert "const char tm_model_name[] = \"kws\";" in source
    assert "aligned(16))) const unsigned char tm_tflm_model_data[] = {\n  0x01, 0x02, 0xff\n};" \
        in source
    assert "#define TM_TFLM_NUM_OPS 2" in header and "#define TM_TFLM_MAX_LAYERS 3" in header
    assert "#define TM_TFLM_ADD_OPS(r) do { (r).AddConv2D(); (r).AddSoftmax(); } while (0)" \
        in header
    board = load_board("nucleo-l4r5zi")
    script = tflm_linker_script(board, 8192, 4096)
    assert "__init_array_start = .;" in script and "KEEP(*(.init_array))" in script
    assert script.index(".init_array :") < script.index(".ARM.exidx :")
    assert ("  .tflm_arena (NOLOAD) : ALIGN(16)\n  {\n    __tm_arena_start = .;\n"
            "    . = . + 4096;\n    __tm_arena_end = .;\n  } > RAM\n") in script
    assert script.index("_ebss = .;") < script.index(".tflm_arena") < script.index(".stack")
    largest = tflm_linker_script(board, 8192, None)
    assert "    . = ALIGN(ORIGIN(RAM) + LENGTH(RAM) - 8192 - 31, 16);\n" in largest
    from tinymeter.core.errors import ConfigError
    with pytest.raises(ConfigError, match="multiple of 16"):
        tflm_linker_script(board, 8192, 1000)


def test_tflm_pure_helpers(tmp_path: Path) -> None:
    """Kernel set from the library's symbol names, include folders from one checkout,
    the harness's arena line, the enlarged sizing board."""
    from tinymeter.abi import parse_arena
    from tinymeter.core.errors import ConfigError
    from tinymeter.firmware.tflm import (
        archive_symbols,
        arena_for,
        harness_flags_for,
        include_dirs,
        kernel_set_of_archive,
        search_sizes,
        sizing_board,
    )

    def archive(*names: bytes) -> bytes:
        body = len(names).to_bytes(4, "big") + b"\0\0\0\0" * len(names) + b"\0".join(names) + b"\0"
        header = b"/".ljust(16) + b"0".ljust(12) + b"0".ljust(6) * 2 + b"0".ljust(8)
        return b"!<arch>\n" + header + str(len(body)).encode().ljust(10) + b"`\n" + body

    release = archive(b"_ZN6tflite16MicroInterpreter6InvokeEv", b"DebugLog")
    debug = archive(b"_ZN6tflite16MicroInterpreter6InvokeEv", b"_Z11MicroPrintfPKcz")
    assert archive_symbols(release) == {b"_ZN6tflite16MicroInterpreter6InvokeEv", b"DebugLog"}
    assert harness_flags_for(release) == ("-DTF_LITE_STRIP_ERROR_STRINGS",)
    assert harness_flags_for(debug) == () and harness_flags_for(b"not an archive") == ()
    assert kernel_set_of_archive(b"!<arch>\n...arm_convolve_wrapper_s8\0...") == "cmsis-nn"
    assert kernel_set_of_archive(b"!<arch>\n..._ZN6tflite12Register_ADDEv\0") == "reference"
    with pytest.raises(ConfigError, match="not a TFLM source checkout"):
        include_dirs(tmp_path)
    (tmp_path / "tensorflow/lite/micro").mkdir(parents=True)
    (tmp_path / "tensorflow/lite/micro/micro_interpreter.h").touch()
    with pytest.raises(ConfigError, match="lacks tensorflow/lite/micro/tools/make/downloads/"
                                          "flatbuffers/include"):
        include_dirs(tmp_path)
    downloads = tmp_path / "tensorflow/lite/micro/tools/make/downloads"
    (downloads / "flatbuffers/include").mkdir(parents=True)
    (downloads / "gemmlowp").mkdir()
    assert include_dirs(tmp_path) == [tmp_path, downloads / "flatbuffers/include",
                                      downloads / "gemmlowp"]
    out = "TM1 LOG Arena size is too small\nTM1 ARENA size=4096 failed\nTM1 FAULT Alloc\n"
    report = parse_arena(out)
    assert report is not None and (report.size, report.used) == (4096, None)
    assert report.log == ("Arena size is too small",)
    assert parse_arena("TM1 ARENA size=131072 used=100660\n").used == 100660
    assert parse_arena("no line") is None
    assert (arena_for(100660), arena_for(100656), arena_for(0)) == (100672, 100656, 16)
    for need in (49, 64, 65, 160, 1000, 4096):
        tried: list[int] = []

        def fits(size: int, need: int = need, tried: list[int] = tried) -> bool:
            tried.append(size)
            return size >= need

        assert search_sizes(48, 8192, fits) == (need + 15) // 16 * 16
        assert len(tried) <= 2 * 9 and all(s % 16 == 0 for s in tried)
    board = load_board("nucleo-l4r5zi")
    big = sizing_board(board)
    assert big.data.origin == board.data.origin and big.data.size == 16 * 1024 * 1024
    assert big.text == board.text


def test_tflm_registry(tmp_path: Path) -> None:
    """Config entries: parse/format round trip, unknown keys are errors, selection per
    core and kernel set."""
    from tinymeter.core.errors import ConfigError
    from tinymeter.firmware.tflmconfig import (
        TflmEntry,
        format_entries,
        libraries_for,
        parse_entries,
        select,
        with_entry,
    )

    a = TflmEntry(Path("/l/ref.a"), "cortex-m4f", Path('/t "x"'), "reference")
    b = TflmEntry(Path("/l/cmsis.a"), "cortex-m4f", Path("/t"), "cmsis-nn")
    c = TflmEntry(Path("/l/m0.a"), "cortex-m0plus", Path("/t"), "reference")
    import tomllib
    entries = parse_entries(tomllib.loads(format_entries([a, b, c])), "cfg")
    assert entries == [a, b, c]
    assert select(entries, "cortex-m4f") == b
    assert select(entries, "cortex-m4f", "reference") == a
    assert libraries_for(entries, "cortex-m4f") == [b, a]
    with pytest.raises(ConfigError, match="no TFLM library registered for cortex-m7;"):
        select(entries, "cortex-m7")
    newer = TflmEntry(Path("/l/ref2.a"), "cortex-m4f", Path("/t"), "reference")
    assert with_entry(entries, newer) == [b, c, newer]
    with pytest.raises(ConfigError, match="cfg: unknown key.s. boards; allowed: tflm"):
        parse_entries({"boards": 1}, "cfg")
    with pytest.raises(ConfigError, match=r"cfg: tflm\[0\]: unknown key\(s\) path"):
        parse_entries({"tflm": [{"path": "x"}]}, "cfg")
    with pytest.raises(ConfigError, match="unknown core 'cortex-m9'"):
        parse_entries({"tflm": [{"lib": "a", "core": "cortex-m9", "root": "r",
                                 "kernels": "reference"}]}, "cfg")


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
typedef struct TfLiteContext { int unused; } TfLiteContext;
typedef struct TfLiteNode { const uint8_t *in; uint8_t *out; uint32_t reps; } TfLiteNode;
""",
    "tensorflow/lite/micro/micro_common.h": r"""
#pragma once
#include "tensorflow/lite/c/common.h"
struct TFLMRegistration {
  void *(*init)(TfLiteContext *context, const char *buffer, size_t length);
  void (*free)(TfLiteContext *context, void *buffer);
  TfLiteStatus (*prepare)(TfLiteContext *context, TfLiteNode *node);
  TfLiteStatus (*invoke)(TfLiteContext *context, TfLiteNode *node);
  void (*reset)(TfLiteContext *context, void *buffer);
  int32_t builtin_code;
  const char *custom_name;
};
""",
    "tensorflow/lite/schema/schema_generated.h": r"""
#pragma once
namespace tflite {
struct Model;
const Model *GetModel(const void *buf);
enum BuiltinOperator { BuiltinOperator_FULLY_CONNECTED = 9, BuiltinOperator_SOFTMAX = 25 };
inline const char *EnumNameBuiltinOperator(BuiltinOperator e) {
  return e == BuiltinOperator_FULLY_CONNECTED ? "FULLY_CONNECTED" : "SOFTMAX";
}
}
""",
    "tensorflow/lite/micro/micro_op_resolver.h": r"""
#pragma once
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_common.h"
#include "tensorflow/lite/schema/schema_generated.h"
namespace tflite {
typedef TfLiteStatus (*TfLiteBridgeBuiltinParseFunction)(const void *, void *, void *, void **);
class MicroOpResolver {
 public:
  virtual const TFLMRegistration *FindOp(BuiltinOperator op) const = 0;
  virtual const TFLMRegistration *FindOp(const char *op) const = 0;
  virtual TfLiteBridgeBuiltinParseFunction GetOpDataParser(BuiltinOperator op) const = 0;
  virtual ~MicroOpResolver() {}
};
}
""",
    "tensorflow/lite/micro/micro_mutable_op_resolver.h": r"""
#pragma once
#include "tensorflow/lite/micro/micro_op_resolver.h"
namespace tflite {
TFLMRegistration FakeRegistration(BuiltinOperator op);
template <unsigned N> class MicroMutableOpResolver : public MicroOpResolver {
 public:
  TfLiteStatus AddFullyConnected() { return Add(BuiltinOperator_FULLY_CONNECTED); }
  TfLiteStatus AddSoftmax() { return Add(BuiltinOperator_SOFTMAX); }
  const TFLMRegistration *FindOp(BuiltinOperator op) const override {
    for (unsigned i = 0; i < count_; ++i)
      if (regs_[i].builtin_code == op) return &regs_[i];
    return nullptr;
  }
  const TFLMRegistration *FindOp(const char *) const override { return nullptr; }
  TfLiteBridgeBuiltinParseFunction GetOpDataParser(BuiltinOperator) const override {
    return nullptr;
  }
 private:
  TfLiteStatus Add(BuiltinOperator op) {
    if (count_ >= N) return kTfLiteError;
    regs_[count_++] = FakeRegistration(op);
    return kTfLiteOk;
  }
  TFLMRegistration regs_[N];
  unsigned count_ = 0;
};
}
""",
    "tensorflow/lite/micro/micro_interpreter.h": r"""
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
namespace tflite {
class MicroResourceVariables;
class MicroProfilerInterface;
class MicroInterpreter {
 public:
  MicroInterpreter(const Model *model, const MicroOpResolver &op_resolver,
                   uint8_t *tensor_arena, size_t tensor_arena_size,
                   MicroResourceVariables *resource_variables = nullptr,
                   MicroProfilerInterface *profiler = nullptr);
  TfLiteStatus AllocateTensors();
  TfLiteStatus Invoke();
  size_t arena_used_bytes() const { return used_; }
  size_t inputs_size() const { return 1; }
  size_t outputs_size() const { return 1; }
  TfLiteTensor *input(size_t index);
  TfLiteTensor *output(size_t index);
 private:
  const MicroOpResolver &resolver_;
  uint8_t *arena_;
  size_t arena_size_;
  size_t used_ = 0;
  TfLiteTensor input_, output_;
};
}
""",
}

# The fake's "model" is every op the resolver knows, FULLY_CONNECTED then SOFTMAX, each
# looked up through the (wrapped) resolver and invoked through its registration, as
# TFLM does.  Op k sums the 16 input bytes (k + 1) * 100 times; the output is the plain
# byte sum, so inputs and outputs go through the harness's I/O hooks for real.  It
# needs FAKE_ARENA_NEED bytes of arena and logs through the cortex_m_generic callback.
FAKE_LIB = r"""
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#ifndef FAKE_ARENA_NEED
#define FAKE_ARENA_NEED 48
#endif
#ifndef FAKE_ARENA_TEMP
#define FAKE_ARENA_TEMP 0 /* needed during AllocateTensors only, not in arena_used_bytes */
#endif
static void (*fake_log)(const char *) = nullptr;
extern "C" void RegisterDebugLogCallback(void (*cb)(const char *)) { fake_log = cb; }
namespace tflite {
const Model *GetModel(const void *buf) { return static_cast<const Model *>(buf); }
__attribute__((noinline)) static TfLiteStatus fake_op(TfLiteContext *, TfLiteNode *node) {
  uint32_t sum = 0;
  for (uint32_t r = 0; r < node->reps; ++r) {
    sum = 0;
    for (int i = 0; i < 16; ++i) sum += node->in[i];
    __asm__ volatile("" : "+r"(sum));
  }
  for (int i = 0; i < 4; ++i) node->out[i] = (uint8_t)(sum >> (8 * i));
  return kTfLiteOk;
}
TFLMRegistration FakeRegistration(BuiltinOperator op) {
  TFLMRegistration r = {nullptr, nullptr, nullptr, fake_op, nullptr, op, nullptr};
  return r;
}
MicroInterpreter::MicroInterpreter(const Model *, const MicroOpResolver &op_resolver,
                                   uint8_t *tensor_arena, size_t tensor_arena_size,
                                   MicroResourceVariables *, MicroProfilerInterface *)
    : resolver_(op_resolver), arena_(tensor_arena), arena_size_(tensor_arena_size) {}
TfLiteStatus MicroInterpreter::AllocateTensors() {
  if (arena_size_ < FAKE_ARENA_NEED + FAKE_ARENA_TEMP) {
    if (fake_log) fake_log("Failed to allocate tail memory.\nArena too small");
    return kTfLiteError;
  }
  if (fake_log) fake_log("fake TFLM allocated its tensors\n");
  input_.data.data = arena_;
  input_.bytes = 16;
  output_.data.data = arena_ + 16;
  output_.bytes = 4;
  used_ = FAKE_ARENA_NEED;
  return kTfLiteOk;
}
TfLiteStatus MicroInterpreter::Invoke() {
  static const BuiltinOperator order[] = {BuiltinOperator_FULLY_CONNECTED,
                                          BuiltinOperator_SOFTMAX};
  uint32_t k = 0;
  for (BuiltinOperator op : order) {
    const TFLMRegistration *reg = resolver_.FindOp(op);
    if (reg == nullptr) continue;
    TfLiteContext context = {0};
    TfLiteNode node = {static_cast<const uint8_t *>(input_.data.data),
                       static_cast<uint8_t *>(output_.data.data), (++k) * 100u};
    if (reg->invoke(&context, &node) != kTfLiteOk) return kTfLiteError;
  }
  return kTfLiteOk;
}
TfLiteTensor *MicroInterpreter::input(size_t) { return &input_; }
TfLiteTensor *MicroInterpreter::output(size_t) { return &output_; }
}
"""


def build_fake_tflm(root: Path, core_name: str, arena_need: int = 48,
                    arena_temp: int = 0) -> tuple[Path, Path]:
    """Write the fake TFLM as a checkout (headers where TFLM has them, the downloads
    folders its makefile creates) and build its static library for *core_name*;
    returns (library, checkout root)."""
    checkout = root / "tflite-micro"
    for rel, text in FAKE_HEADERS.items():
        (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
        (checkout / rel).write_text(text)
    (checkout / "tensorflow/lite/micro/micro_interpreter.h").touch()
    for sub in ("flatbuffers/include", "gemmlowp"):
        (checkout / "tensorflow/lite/micro/tools/make/downloads" / sub).mkdir(parents=True,
                                                                            exist_ok=True)
    (root / "fake_tflm.cc").write_text(FAKE_LIB)
    core = get_core(core_name)
    obj, lib = root / "fake_tflm.o", root / f"libfake_tflm_{arena_need + arena_temp}.a"
    config = BuildConfig(extra_cflags=(f"-DFAKE_ARENA_NEED={arena_need}",
                                       f"-DFAKE_ARENA_TEMP={arena_temp}"))
    subprocess.run(tflm_compile_argv("arm-none-eabi-g++", core, config, root / "fake_tflm.cc",
                                     obj, [checkout]), check=True, capture_output=True, text=True)
    subprocess.run(["arm-none-eabi-ar", "rcs", str(lib), str(obj)], check=True)
    return lib, checkout


def _fc_model(tmp_path: Path) -> Path:
    import numpy as np

    from tinymeter.models.builders import bias_tensor, int8_tensor, random_int8, single_op_model

    x = int8_tensor("x", (1, 16), 0.05, 2)
    w = int8_tensor("w", (4, 16), 0.01, 0, data=random_int8((4, 16), seed=1))
    b = bias_tensor("b", np.zeros(4, np.int32), input_scale=0.05, weight_scales=w)
    y = int8_tensor("y", (1, 4), 0.2, -1)
    model = tmp_path / "fc.tflite"
    model.write_bytes(single_op_model("FULLY_CONNECTED", [x, w, b], [y]))
    return model


@needs_gxx
@pytest.mark.parametrize("board_name", ["nucleo-l4r5zi", "nucleo-g0b1re"])
def test_fake_tflm_compile_link_run(board_name: str, tmp_path: Path) -> None:
    from tinymeter.sim.emulator import Emulator
    from tinymeter.sim.native_hook import CYCLE_SCALE

    board = load_board(board_name)
    lib, root = build_fake_tflm(tmp_path / "tflm", board.core.name)
    library = TflmLibrary.from_root(lib, root)
    assert library.kernels == "reference" and library.label == "TFLM reference (libfake_tflm_48.a)"
    build = TflmBuild(b"TFL3-not-parsed-by-the-fake", "fake", ["FULLY_CONNECTED", "SOFTMAX"],
                      board, library, work=tmp_path / "fw")
    elf = build.link(1024)
    assert section_sizes(elf)[".tflm_arena"] == 1024
    inputs = [[bytes(range(16))], [bytes([7] * 16)]]
    run = Emulator(board).run(elf, inputs, budget_instructions=10**8, timeout_s=60)
    assert [struct.unpack("<I", out[0])[0] for out in run.outputs] == [120, 112]
    assert "TM1 ARENA size=1024 used=48\n" in run.stdout
    assert "TM1 LOG fake TFLM allocated its tensors\n" in run.stdout
    # one layer per invoked operator, in execution order, named by the builtin op
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
    """``tinymeter estimate MODEL --tflm-lib LIB --tflm-root DIR``: the arena sized from
    arena_used_bytes(), one row per operator with the model's MACs, weights and output
    shape, TFLM's log forwarded, flash and RAM of the linked ELF."""
    import json

    from tinymeter.cli.main import main

    model = _fc_model(tmp_path)
    lib, root = build_fake_tflm(tmp_path / "tflm", "cortex-m4f")
    report = tmp_path / "est.json"
    assert main(["estimate", str(model), "-q", "--tflm-lib", str(lib), "--tflm-root", str(root),
                 "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "TFLM reference (libfake_tflm_48.a) kernels" in out
    assert "runtime log: fake TFLM allocated its tensors" in out
    row = next(line for line in out.splitlines() if line.lstrip().startswith("0 "))
    assert row.split()[:5] == ["0", "FULLY_CONNECTED", "1x4", "80", "64"]
    data = json.loads(report.read_text())
    assert data["runtime"] == "tflm" and data["arena_bytes"] == 48
    assert data["weight_bytes"] == 80 and data["layers"][0]["macs"] == 64
    assert data["layers"][0]["output_shape"] == [1, 4] and len(data["layers"]) == 1
    assert data["flash_bytes"] > 0 and data["ram_bytes"] >= 48 + 16 * 1024


@needs_gxx
def test_tflm_build_keeps_sized_elf_and_too_big_is_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``build --tflm-lib --out DIR`` keeps an ELF with exactly the arena TFLM uses; a
    model needing more than the board's RAM is one error naming both sizes."""
    from tinymeter.cli.main import main

    model = _fc_model(tmp_path)
    lib, root = build_fake_tflm(tmp_path / "tflm", "cortex-m0plus")
    out_dir = tmp_path / "fw"
    assert main(["build", str(model), "--board", "nucleo-g0b1re", "--tflm-lib", str(lib),
                 "--tflm-root", str(root), "--out", str(out_dir)]) == 0
    assert section_sizes(out_dir / "firmware.elf")[".tflm_arena"] == 48
    assert {p.name for p in out_dir.iterdir()} >= {"firmware.elf", "firmware.map", "linker.ld",
                                                   "tm_tflm_model.c", "tm_tflm_model.h"}
    assert "arena 48 B (TFLM's arena_used_bytes() 48 B)" in capsys.readouterr().out
    # the kept ELF profiles as a foreign ELF too, with TFLM's arena figure
    assert main(["estimate", "--elf", str(out_dir / "firmware.elf"), "--board", "nucleo-g0b1re",
                 "-q"]) == 0
    assert "memory    arena 48 B" in capsys.readouterr().out
    big, _root = build_fake_tflm(tmp_path / "big", "cortex-m0plus", arena_need=1_000_000)
    assert main(["estimate", str(model), "-q", "--board", "nucleo-g0b1re", "--tflm-lib",
                 str(big), "--tflm-root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: model fc needs a 1,000,000 B TFLM tensor arena, but the "
                          "147,456 B")
    assert err.count("\n") == 0 and "leaves at most" in err
    # arena_used_bytes() short of what AllocateTensors needs: the minimum is searched
    temp, _root = build_fake_tflm(tmp_path / "temp", "cortex-m0plus", arena_temp=100)
    assert main(["build", str(model), "--board", "nucleo-g0b1re", "--tflm-lib", str(temp),
                 "--tflm-root", str(root), "--out", str(tmp_path / "fw2")]) == 0
    assert section_sizes(tmp_path / "fw2" / "firmware.elf")[".tflm_arena"] == 160
    assert "arena 160 B (TFLM's arena_used_bytes() 48 B)" in capsys.readouterr().out
    # an explicit arena that is too small says so
    assert main(["estimate", str(model), "-q", "--tflm-lib", str(lib), "--tflm-root", str(root),
                 "--board", "nucleo-g0b1re", "--tflm-arena", "32"]) == 2
    assert "could not allocate the model's tensors in a 32 B arena (TFLM: Arena too small)" \
        in capsys.readouterr().err


@needs_gxx
def test_registered_library_runs_with_runtime_tflm(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``tinymeter tflm add`` once, then ``--runtime tflm`` needs no paths."""
    from tinymeter.cli.main import main

    config = tmp_path / "config.toml"
    monkeypatch.setenv("TINYMETER_CONFIG", str(config))
    monkeypatch.chdir(tmp_path)
    model = _fc_model(tmp_path)
    lib, root = build_fake_tflm(tmp_path / "tflm", "cortex-m4f")
    assert main(["estimate", str(model), "-q", "--runtime", "tflm"]) == 2
    assert "no TFLM library registered for cortex-m4f" in capsys.readouterr().err
    assert main(["tflm", "add", str(lib), "--core", "cortex-m4f", "--root", str(root)]) == 0
    assert "(reference kernels)" in capsys.readouterr().out
    assert 'kernels = "reference"' in config.read_text()
    assert main(["tflm", "list"]) == 0
    assert str(lib.resolve()) in capsys.readouterr().out
    assert main(["estimate", str(model), "-q", "--runtime", "tflm"]) == 0
    assert "TFLM reference (libfake_tflm_48.a) kernels" in capsys.readouterr().out
    # a project file wins over the user's; its unknown keys are errors
    other, _r = build_fake_tflm(tmp_path / "other", "cortex-m4f", arena_need=64)
    assert main(["tflm", "add", str(other), "--core", "cortex-m4f", "--root", str(root),
                 "--project"]) == 0
    assert (tmp_path / "tinymeter.toml").exists()
    assert main(["estimate", str(model), "-q", "--runtime", "tflm"]) == 0
    assert "libfake_tflm_64.a" in capsys.readouterr().out
    assert main(["tflm", "remove", "--core", "cortex-m4f", "--project"]) == 0
    assert "removed 1 library of cortex-m4f" in capsys.readouterr().out
    assert main(["estimate", str(model), "-q", "--runtime", "tflm"]) == 0
    assert "libfake_tflm_48.a" in capsys.readouterr().out  # the user's again
    (tmp_path / "tinymeter.toml").write_text("[tflm_libs]\n")
    assert main(["estimate", str(model), "-q", "--runtime", "tflm"]) == 2
    assert "tinymeter.toml: unknown key(s) tflm_libs; allowed: tflm" in capsys.readouterr().err


@needs_gxx
def test_compare_runtimes_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``estimate --compare-runtimes``: own reference, own optimized and the TFLM library
    per layer, speedups over the first; misaligned layers are an error."""
    import json
    from dataclasses import replace

    from tinymeter.analysis.runtimecmp import RuntimeRun, check_aligned
    from tinymeter.cli.main import main
    from tinymeter.core.errors import EmulationError

    model = _fc_model(tmp_path)
    lib, root = build_fake_tflm(tmp_path / "tflm", "cortex-m4f")
    report = tmp_path / "cmp.json"
    assert main(["estimate", str(model), "-q", "--compare-runtimes", "--tflm-lib", str(lib),
                 "--tflm-root", str(root), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("#"))
    assert [h.strip() for h in header.split("  ") if h.strip()] == [
        "#", "op", "MACs", "own ref instr", "own ref cycles", "own opt instr", "own opt cycles",
        "own opt speedup", "TFLM ref instr", "TFLM ref cycles", "TFLM ref speedup"]
    row = next(line for line in out.splitlines() if line.startswith("0 "))
    assert row.split()[:3] == ["0", "FULLY_CONNECTED", "64"]
    data = json.loads(report.read_text())
    runs = data["runtimes"]
    assert [r["label"] for r in runs] == ["own ref", "own opt", "TFLM ref"]
    assert [r["runtime"] for r in runs] == ["own", "own", "tflm"]
    ref, tflm = runs[0], runs[2]
    speedup = ref["layers"][0]["cycles"] / tflm["layers"][0]["cycles"]
    assert f"{speedup:.2f}x" in row
    from tinymeter.analysis.report import Estimate, LayerEstimate
    fields = {k: v for k, v in ref.items() if k in Estimate.__dataclass_fields__}
    est = Estimate(**{**fields, "layers": ()})
    extra = LayerEstimate(0, "ADD", 0, 1, 1, 0.0, 0.0, 1.0)
    with pytest.raises(EmulationError, match="b ran 1 layers, a 0: layers do not align"):
        check_aligned([RuntimeRun("a", est), RuntimeRun("b", replace(est, layers=(extra,)))])


@pytest.mark.slow
@needs_gxx
def test_measure_tflm_on_virtual_board(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``measure --tflm-lib`` builds the TFLM harness's hardware image (UART report, marker
    pins) and measures it per layer like the own runtime's (virtual board)."""
    from tinymeter.cli.main import main

    model = _fc_model(tmp_path)
    lib, root = build_fake_tflm(tmp_path / "tflm", "cortex-m4f")
    assert main(["measure", str(model), "--probe", "virtual", "--tflm-lib", str(lib),
                 "--tflm-root", str(root), "--runs", "2", "--warmup", "0",
                 "--db", str(tmp_path / "db.sqlite"), "--json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "fc on nucleo-l4r5zi: 2 runs" in out
    import json
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["runtime"] == "tflm" and data["kernels"] == "TFLM reference (libfake_tflm_48.a)"
    assert data["ops"] == ["FULLY_CONNECTED"]
    assert "FULLY_CONNECTED" in out
    measured, estimated = data["measured_cycles"][0], data["estimated_cycles"][0]
    assert measured > 0 and abs(estimated / measured - 1) < 0.5


@needs_gxx
def test_check_and_sweep_targets_run_in_tflm(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``check MODEL --tflm-lib`` gates the TFLM run; sweep targets ``tflm``/``tflm-reference``
    estimate candidates in the registered library of the board's core."""
    import json

    from tinymeter.apps.sweep.space import SweepConfig, Target
    from tinymeter.apps.sweep.worker import estimate_tflite
    from tinymeter.cli.main import main
    from tinymeter.core.errors import ConfigError

    model = _fc_model(tmp_path)
    lib, root = build_fake_tflm(tmp_path / "tflm", "cortex-m4f")
    base = tmp_path / "baseline.json"
    tflm = ["--tflm-lib", str(lib), "--tflm-root", str(root)]
    assert main(["check", str(model), "--baseline", str(base), "--update-baseline", *tflm]) == 0
    entries = json.loads(base.read_text())
    assert "48" in json.dumps(entries)  # the TFLM arena, not the own runtime's
    assert main(["check", str(model), "--baseline", str(base), *tflm]) == 0
    capsys.readouterr()
    monkeypatch.setenv("TINYMETER_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.chdir(tmp_path)
    assert main(["tflm", "add", str(lib), "--core", "cortex-m4f", "--root", str(root)]) == 0
    summary = estimate_tflite(model.read_bytes(), Target("nucleo-l4r5zi", "tflm-reference"))
    assert summary["arena_bytes"] == 48
    with pytest.raises(ConfigError, match="no TFLM library registered for cortex-m4f with "
                                          "cmsis-nn kernels"):
        estimate_tflite(model.read_bytes(), Target("nucleo-l4r5zi", "tflm-cmsis-nn"))
    assert SweepConfig.from_mapping({"kernel_sets": ["tflm", "optimized"]}).kernel_sets == (
        "tflm", "optimized")
    with pytest.raises(ConfigError, match="unknown kernel set"):
        SweepConfig.from_mapping({"kernel_sets": ["tflm-x"]})


@needs_gxx
@pytest.mark.slow
def test_calibrate_with_tflm_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``calibrate --tflm-lib``: the campaign builds, emulates and measures TFLM images."""
    from tinymeter.cli.main import main

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _fc_model(tmp_path / "a")
    b = _fc_model(tmp_path / "b").rename(tmp_path / "b" / "fc2.tflite")
    lib, root = build_fake_tflm(tmp_path / "tflm", "cortex-m4f")
    assert main(["calibrate", str(a), str(b), "--probe", "virtual", "--tflm-lib", str(lib),
                 "--tflm-root", str(root), "--no-microbench", "--no-save", "--runs", "2",
                 "--warmup", "0", "--db", str(tmp_path / "db.sqlite")]) == 0
    out = capsys.readouterr().out
    assert "calibration of nucleo-l4r5zi (cortex-m4f) from 2 models, 2 layers" in out


def test_abi_mismatch_hint() -> None:
    from tinymeter.firmware.tflm import abi_mismatch_hint

    board = load_board("nucleo-g0b1re")
    msg = "linking failed: ld: error: lib.a(x.o) uses VFP register arguments, fw.elf does not"
    hint = abi_mismatch_hint(msg, "lib.a", board)
    assert hint.startswith("lib.a was built for another core or float ABI than nucleo-g0b1re's "
                           "cortex-m0plus (-mcpu=cortex-m0plus -mthumb -mfloat-abi=soft)")
    assert abi_mismatch_hint("undefined reference to `x'", "lib.a", board) == \
        "undefined reference to `x'"
