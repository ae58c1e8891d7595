/* tinymeter harness for a user-supplied prebuilt TensorFlow Lite Micro library.
 *
 * Instead of tinymeter's own runtime, the model runs in tflite::MicroInterpreter:
 * the .tflite flatbuffer is embedded as a byte array and the op resolver, arena size
 * and model name come from the generated tm_tflm_model.h (see firmware/build.py,
 * tflm_model_header).  A MicroProfilerInterface subclass brackets every op with
 * tm_prof_begin/tm_prof_end, so the emulator attributes cycles per op exactly as for
 * the built-in runtime, and the same I/O hooks (tm_io_next, tm_io_input_hook,
 * tm_io_output_hook) and "TM1" report lines are used.
 *
 * Verified here only against a fake TFLM (a test double implementing the API subset
 * this file uses, tests/test_tflm_link.py); use with a real TFLM build is unverified
 * offline.  API used: tflite::GetModel, tflite::MicroMutableOpResolver<N>::Add*(),
 * tflite::MicroInterpreter(model, resolver, arena, arena_bytes, nullptr, profiler),
 * AllocateTensors(), Invoke(), inputs_size()/outputs_size(), input(i)/output(i)
 * (TfLiteTensor data.data and bytes), tflite::MicroProfilerInterface. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tm_runtime.h"
#include "tm_tflm_model.h" /* generated: TM_TFLM_NUM_OPS, TM_TFLM_ARENA_BYTES, TM_TFLM_ADD_OPS(r), TM_TFLM_MAX_LAYERS */

#ifndef TM_RUNS
#define TM_RUNS 1
#endif

#define TM_HOOK extern "C" __attribute__((noipa, used))
#define TM_OPAQUE() __asm__ volatile("" ::: "memory")

extern "C" const unsigned char tm_tflm_model_data[];
extern "C" const char tm_model_name[];

static uint32_t tm_layer_cycles[TM_TFLM_MAX_LAYERS];
static const char *tm_layer_tags[TM_TFLM_MAX_LAYERS];
static uint32_t tm_layer_start;
static volatile uint32_t tm_runs_left = TM_RUNS;

TM_HOOK uint32_t tm_io_next(void) {
  TM_OPAQUE();
  if (tm_runs_left == 0u) return 0u;
  tm_runs_left = tm_runs_left - 1u;
  return 1u;
}

TM_HOOK void tm_io_input_hook(uint32_t index, uint8_t *buf, uint32_t bytes) {
  (void)index; (void)buf; (void)bytes;
  TM_OPAQUE();
}

TM_HOOK void tm_io_output_hook(uint32_t index, const uint8_t *buf, uint32_t bytes) {
  (void)index; (void)buf; (void)bytes;
  TM_OPAQUE();
}

TM_HOOK void tm_prof_begin(uint32_t layer, const char *op_name) {
  (void)layer; (void)op_name;
  TM_OPAQUE();
  tm_layer_start = tm_platform_cycles();
}

TM_HOOK void tm_prof_end(uint32_t layer) {
  uint32_t now = tm_platform_cycles();
  if (layer < TM_TFLM_MAX_LAYERS) tm_layer_cycles[layer] = (now - tm_layer_start) & TM_CYCLE_MASK;
  TM_OPAQUE();
}

namespace {

/* Numbers the events of one Invoke 0, 1, 2... (reset before each inference). */
class TmProfiler : public tflite::MicroProfilerInterface {
 public:
  uint32_t BeginEvent(const char *tag) override {
    uint32_t id = next_++;
    if (id < TM_TFLM_MAX_LAYERS) tm_layer_tags[id] = tag;
    tm_prof_begin(id, tag);
    return id;
  }
  void EndEvent(uint32_t event_handle) override { tm_prof_end(event_handle); }
  void Reset() { next_ = 0; }
  uint32_t events() const { return next_; }

 private:
  uint32_t next_ = 0;
};

void tm_puts(const char *s) { tm_platform_write(s, (uint32_t)strlen(s)); }

void tm_putu(uint32_t v) {
  char buf[11];
  int i = 10;
  buf[i] = '\0';
  do {
    buf[--i] = (char)('0' + v % 10u);
    v /= 10u;
  } while (v != 0u);
  tm_puts(&buf[i]);
}

void tm_report(uint32_t run, uint32_t layers) {
  uint32_t total = 0;
  tm_puts("TM1 BEGIN ");
  tm_puts(tm_model_name);
  tm_puts(" run=");
  tm_putu(run);
  tm_puts(" layers=");
  tm_putu(layers);
  tm_puts("\n");
  for (uint32_t l = 0; l < layers && l < TM_TFLM_MAX_LAYERS; ++l) {
    tm_puts("TM1 L ");
    tm_putu(l);
    tm_puts(" ");
    tm_puts(tm_layer_tags[l] ? tm_layer_tags[l] : "?");
    tm_puts(" ");
    tm_putu(tm_layer_cycles[l]);
    tm_puts("\n");
    total += tm_layer_cycles[l];
  }
  tm_puts("TM1 END total=");
  tm_putu(total);
  /* check covers the BEGIN line's run index and layer count (hw/protocol.py) */
  tm_puts(" check=");
  tm_putu(total + run + layers);
  tm_puts("\n");
}

void tm_fail(const char *what) {
  tm_puts("TM1 FAULT ");
  tm_puts(what);
  tm_puts("\n");
  tm_platform_exit(3);
}

alignas(16) uint8_t tm_tflm_arena[TM_TFLM_ARENA_BYTES];

}  // namespace

extern "C" void (*__init_array_start[])(void) __attribute__((weak));
extern "C" void (*__init_array_end[])(void) __attribute__((weak));

int main(void) {
  /* Our startup code does not run C++ static constructors; the library may have some. */
  for (void (**f)(void) = __init_array_start; f && f < __init_array_end; ++f) (*f)();
  tm_platform_init();
  const tflite::Model *model = tflite::GetModel(tm_tflm_model_data);
  /* Objects live in main's frame: no static constructors, no guard variables. */
  tflite::MicroMutableOpResolver<TM_TFLM_NUM_OPS> resolver;
  TM_TFLM_ADD_OPS(resolver);
  TmProfiler profiler;
  tflite::MicroInterpreter interpreter(model, resolver, tm_tflm_arena, TM_TFLM_ARENA_BYTES,
                                       nullptr, &profiler);
  if (interpreter.AllocateTensors() != kTfLiteOk) tm_fail("AllocateTensors");
  uint32_t run = 0;
  while (tm_io_next()) {
    for (size_t i = 0; i < interpreter.inputs_size(); ++i) {
      TfLiteTensor *t = interpreter.input(i);
      tm_io_input_hook((uint32_t)i, static_cast<uint8_t *>(t->data.data), (uint32_t)t->bytes);
    }
    profiler.Reset();
    if (interpreter.Invoke() != kTfLiteOk) tm_fail("Invoke");
    for (size_t i = 0; i < interpreter.outputs_size(); ++i) {
      TfLiteTensor *t = interpreter.output(i);
      tm_io_output_hook((uint32_t)i, static_cast<const uint8_t *>(t->data.data),
                        (uint32_t)t->bytes);
    }
    tm_report(run++, profiler.events());
  }
  tm_platform_exit(0);
  return 0;
}
