/* tinymeter harness for a user-supplied prebuilt TensorFlow Lite Micro library.
 *
 * Instead of tinymeter's own runtime, the model runs in tflite::MicroInterpreter:
 * the .tflite flatbuffer is embedded as a byte array and the op resolver, arena size
 * and model name come from the generated tm_tflm_model.h (firmware/tflm.py).
 *
 * Per-op attribution does not rely on TFLM's MicroProfiler: release builds of TFLM
 * (-DTF_LITE_STRIP_ERROR_STRINGS) emit no profiler events at all.  Instead the op
 * resolver is wrapped: every registration TFLM looks up is copied with its invoke
 * function replaced by a trampoline that brackets the real invoke with
 * tm_prof_begin/tm_prof_end, numbered in execution order.  So layer i is operator i of
 * the model, for any build type, and the emulator attributes cycles per op exactly as
 * for tinymeter's own runtime.  The same I/O hooks (tm_io_next, tm_io_input_hook,
 * tm_io_output_hook), "TM1" report lines and, in the hardware image (TM_IO_UART: report
 * on the board UART, power-monitor marker pins), the same marks are used, plus:
 *   TM1 ARENA size=<bytes given> used=<arena_used_bytes()>   after AllocateTensors
 *   TM1 LOG <text>                                            TFLM's DebugLog output
 *
 * Arena: the linker script's .tflm_arena section (__tm_arena_start/__tm_arena_end),
 * either an exact size or every byte left between .bss and the stack, which is how
 * tinymeter sizes the arena for the user (run once with the largest arena, stop at
 * tm_tflm_arena_hook, read arena_used_bytes(), relink with exactly that).
 *
 * API used: tflite::GetModel, tflite::MicroMutableOpResolver<N>::Add*(),
 * tflite::MicroOpResolver (FindOp, GetOpDataParser), TFLMRegistration,
 * tflite::MicroInterpreter(model, resolver, arena, arena_bytes), AllocateTensors(),
 * arena_used_bytes(), Invoke(), inputs_size()/outputs_size(), input(i)/output(i)
 * (TfLiteTensor data.data and bytes), and, when the library has it (cortex_m_generic
 * builds), RegisterDebugLogCallback. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tm_runtime.h"
#include "tm_tflm_model.h" /* generated: TM_TFLM_NUM_OPS, TM_TFLM_ADD_OPS(r), TM_TFLM_MAX_LAYERS */

#ifndef TM_RUNS
#define TM_RUNS 1
#endif

#define TM_HOOK extern "C" __attribute__((noipa, used))
#define TM_OPAQUE() __asm__ volatile("" ::: "memory")

extern "C" const unsigned char tm_tflm_model_data[];
extern "C" const char tm_model_name[];
/* cortex_m_generic's debug-log hook; weak, so libraries without it still link. */
extern "C" void RegisterDebugLogCallback(void (*callback)(const char *s)) __attribute__((weak));

/* extern "C" without braces: a definition with external linkage despite const */
extern "C" __attribute__((used)) const volatile uint32_t tm_tflm_arena_limit = 0xFFFFFFFFu;

static uint32_t tm_layer_cycles[TM_TFLM_MAX_LAYERS];
static const char *tm_layer_tags[TM_TFLM_MAX_LAYERS];
static uint32_t tm_layer_start;
static uint32_t tm_next_layer;
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

/* Called once the arena is allocated (used = 0 when AllocateTensors failed): the
 * sizing run stops here, so it never runs an inference. */
TM_HOOK void tm_tflm_arena_hook(uint32_t size, uint32_t used) {
  (void)size; (void)used;
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

/* TFLM's log, one "TM1 LOG " line per line of text (messages may or may not end in
 * a newline; a line is closed before the next report line). */
bool tm_log_open = false;

void tm_log_close(void) {
  if (tm_log_open) tm_puts("\n");
  tm_log_open = false;
}

void tm_debug_log(const char *s) {
  for (; *s != '\0'; ++s) {
    if (*s == '\r') continue;
    if (*s == '\n') {
      tm_log_close();
      continue;
    }
    if (!tm_log_open) tm_puts(TM_ABI_LOG);
    tm_log_open = true;
    tm_platform_write(s, 1u);
  }
}

/* -- per-op attribution: the resolver hands TFLM copies of its registrations whose
 * invoke is a trampoline (one per registration slot, so it knows the real invoke). */
constexpr int kMaxSlots = TM_TFLM_NUM_OPS;
TFLMRegistration tm_real[kMaxSlots];   /* the library's registrations */
TFLMRegistration tm_handed[kMaxSlots]; /* what TFLM gets: invoke = trampoline */
const char *tm_slot_names[kMaxSlots];
int tm_slots_used = 0;

TfLiteStatus tm_invoke_slot(int slot, TfLiteContext *context, TfLiteNode *node) {
  uint32_t layer = tm_next_layer++;
  if (layer < TM_TFLM_MAX_LAYERS) tm_layer_tags[layer] = tm_slot_names[slot];
  if (layer != 0u) TM_MARK_LAYER(layer & 1u); /* hardware image: layer marker pin */
  tm_prof_begin(layer, tm_slot_names[slot]);
  TfLiteStatus status = tm_real[slot].invoke(context, node);
  tm_prof_end(layer);
  return status;
}

template <int K>
TfLiteStatus tm_trampoline(TfLiteContext *context, TfLiteNode *node) {
  return tm_invoke_slot(K, context, node);
}

typedef TfLiteStatus (*tm_invoke_fn)(TfLiteContext *, TfLiteNode *);

template <int... K>
struct TmTrampolines {
  static constexpr tm_invoke_fn table[sizeof...(K)] = {&tm_trampoline<K>...};
};

template <int N, int... K>
struct TmMakeTrampolines : TmMakeTrampolines<N - 1, N - 1, K...> {};
template <int... K>
struct TmMakeTrampolines<0, K...> : TmTrampolines<K...> {};

const TFLMRegistration *tm_wrap(const TFLMRegistration *inner, const char *name) {
  if (inner == nullptr || inner->invoke == nullptr) return inner;
  for (int i = 0; i < tm_slots_used; ++i) {
    if (tm_real[i].invoke == inner->invoke && tm_slot_names[i] == name) return &tm_handed[i];
  }
  if (tm_slots_used >= kMaxSlots) return inner; /* one slot per registered op: not reached */
  int slot = tm_slots_used++;
  tm_real[slot] = *inner;
  tm_handed[slot] = *inner;
  tm_handed[slot].invoke = TmMakeTrampolines<kMaxSlots>::table[slot];
  tm_slot_names[slot] = name;
  return &tm_handed[slot];
}

class TmResolver : public tflite::MicroOpResolver {
 public:
  explicit TmResolver(const tflite::MicroOpResolver &inner) : inner_(inner) {}
  const TFLMRegistration *FindOp(tflite::BuiltinOperator op) const override {
    return tm_wrap(inner_.FindOp(op), tflite::EnumNameBuiltinOperator(op));
  }
  const TFLMRegistration *FindOp(const char *op) const override {
    return tm_wrap(inner_.FindOp(op), op);
  }
  tflite::TfLiteBridgeBuiltinParseFunction GetOpDataParser(tflite::BuiltinOperator op) const override {
    return inner_.GetOpDataParser(op);
  }

 private:
  const tflite::MicroOpResolver &inner_;
};

void tm_report(uint32_t run, uint32_t layers) {
  uint32_t total = 0;
  tm_log_close();
  tm_puts(TM_ABI_BEGIN);
  tm_puts(tm_model_name);
  tm_puts(TM_ABI_RUN);
  tm_putu(run);
  tm_puts(TM_ABI_LAYERS);
  tm_putu(layers);
  tm_puts("\n");
  for (uint32_t l = 0; l < layers && l < TM_TFLM_MAX_LAYERS; ++l) {
    tm_puts(TM_ABI_LAYER);
    tm_putu(l);
    tm_puts(" ");
    /* the model's op name of operator l (tm_tflm_model.c), else TFLM's registration name */
    const char *name = l < tm_num_layers ? tm_layers[l].op_name : tm_layer_tags[l];
    tm_puts(name ? name : "?");
    tm_puts(" ");
    tm_putu(tm_layer_cycles[l]);
    tm_puts("\n");
    total += tm_layer_cycles[l];
  }
  tm_puts(TM_ABI_END);
  tm_putu(total);
  /* check covers the BEGIN line's run index and layer count (tinymeter/abi.py) */
  tm_puts(TM_ABI_CHECK);
  tm_putu(total + run + layers);
  tm_puts("\n");
}

void tm_fail(const char *what) {
  tm_log_close();
  tm_puts(TM_ABI_FAULT);
  tm_puts(what);
  tm_puts("\n");
  tm_platform_exit(TM_EXIT_FAILED);
}

/* The arena is the linker script's .tflm_arena section (firmware/tflm.py), at most
 * tm_tflm_arena_limit bytes of it: the sizing search patches that constant in a copy
 * of the ELF to try arena sizes without relinking. */
extern "C" uint8_t __tm_arena_start[], __tm_arena_end[];
uint8_t *tm_arena_base(void) { return __tm_arena_start; }
size_t tm_arena_size(void) {
  size_t size = (size_t)(__tm_arena_end - __tm_arena_start);
  return tm_tflm_arena_limit < size ? (size_t)tm_tflm_arena_limit : size;
}

}  // namespace

extern "C" void (*__init_array_start[])(void) __attribute__((weak));
extern "C" void (*__init_array_end[])(void) __attribute__((weak));

int main(void) {
  /* Our startup code does not run C++ static constructors; the library may have some. */
  for (void (**f)(void) = __init_array_start; f && f < __init_array_end; ++f) (*f)();
  tm_platform_init();
  if (RegisterDebugLogCallback) RegisterDebugLogCallback(tm_debug_log);
  const tflite::Model *model = tflite::GetModel(tm_tflm_model_data);
  /* Objects live in main's frame: no static constructors, no guard variables. */
  tflite::MicroMutableOpResolver<TM_TFLM_NUM_OPS> ops;
  TM_TFLM_ADD_OPS(ops);
  TmResolver resolver(ops);
  tflite::MicroInterpreter interpreter(model, resolver, tm_arena_base(), tm_arena_size());
  TfLiteStatus allocated = interpreter.AllocateTensors();
  tm_log_close();
  tm_puts(TM_ABI_ARENA);
  tm_putu((uint32_t)tm_arena_size());
  tm_puts(allocated == kTfLiteOk ? TM_ABI_ARENA_USED : TM_ABI_ARENA_FAILED);
  if (allocated == kTfLiteOk) tm_putu((uint32_t)interpreter.arena_used_bytes());
  tm_puts("\n");
  tm_tflm_arena_hook((uint32_t)tm_arena_size(),
                     allocated == kTfLiteOk ? (uint32_t)interpreter.arena_used_bytes() : 0u);
  if (allocated != kTfLiteOk) tm_fail("AllocateTensors");
  uint32_t run = 0;
  while (tm_io_next()) {
    for (size_t i = 0; i < interpreter.inputs_size(); ++i) {
      TfLiteTensor *t = interpreter.input(i);
      tm_io_input_hook((uint32_t)i, static_cast<uint8_t *>(t->data.data), (uint32_t)t->bytes);
    }
    tm_next_layer = 0;
    TM_MARK_LAYER(0u);
    TM_MARK_INFERENCE(1u);
    TfLiteStatus invoked = interpreter.Invoke();
    TM_MARK_INFERENCE(0u);
    if (invoked != kTfLiteOk) tm_fail("Invoke");
    for (size_t i = 0; i < interpreter.outputs_size(); ++i) {
      TfLiteTensor *t = interpreter.output(i);
      tm_io_output_hook((uint32_t)i, static_cast<const uint8_t *>(t->data.data),
                        (uint32_t)t->bytes);
    }
    tm_report(run++, tm_next_layer);
  }
  tm_platform_exit(TM_EXIT_OK);
  return 0;
}
