/* tinymeter harness: runs the generated layer table once per requested inference,
 * bracketing every layer with the profiler hooks, and reports per-layer cycles.
 *
 * The hook functions are deliberately opaque to the optimizer (noipa + a volatile
 * asm memory clobber): the emulator intercepts their entry to inject inputs, read
 * outputs and switch the current layer, so the compiler must neither inline them,
 * drop them, nor assume they leave memory untouched. */
#include <string.h>

#include "tm_runtime.h"

#ifndef TM_RUNS
#define TM_RUNS 1
#endif

#if defined(__GNUC__) && !defined(__clang__)
#define TM_HOOK __attribute__((noipa, used))
#else
#define TM_HOOK __attribute__((noinline, used))
#endif

#define TM_OPAQUE() __asm__ volatile("" ::: "memory")

extern uint32_t tm_layer_cycles[];

static uint32_t tm_layer_start;

#if !defined(TM_PLATFORM_HOST)
/* On the host platform the I/O hooks read stdin/write stdout instead (platform/host.c). */
/* Inferences still to run on hardware; the emulator answers tm_io_next itself. */
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
#endif

TM_HOOK void tm_prof_begin(uint32_t layer, const char *op_name) {
  (void)layer; (void)op_name;
  TM_OPAQUE();
  tm_layer_start = tm_platform_cycles();
}

TM_HOOK void tm_prof_end(uint32_t layer) {
  uint32_t now = tm_platform_cycles();
  tm_layer_cycles[layer] = (now - tm_layer_start) & TM_CYCLE_MASK;
  TM_OPAQUE();
}

/* On hardware builds the marker lines frame the inference (layer line low first, so
 * the window opens with it settled) and the layer line toggles between layers, outside
 * the cycle-counted spans: n layers give n - 1 toggles inside the window. */
void tm_invoke(void) {
  TM_MARK_LAYER(0u);
  TM_MARK_INFERENCE(1u);
  for (uint32_t l = 0; l < tm_num_layers; ++l) {
    const tm_layer *layer = &tm_layers[l];
    if (l != 0u) TM_MARK_LAYER(l & 1u);
    tm_prof_begin(l, layer->op_name);
    layer->kernel(layer->params);
    tm_prof_end(l);
  }
  TM_MARK_INFERENCE(0u);
}

static void tm_puts(const char *s) { tm_platform_write(s, (uint32_t)strlen(s)); }

static void tm_putu(uint32_t v) {
  char buf[11];
  int i = 10;
  buf[i] = '\0';
  do {
    buf[--i] = (char)('0' + v % 10u);
    v /= 10u;
  } while (v != 0u);
  tm_puts(&buf[i]);
}

/* Versioned, line-oriented report: "TM1 L <index> <op> <cycles>" per layer. */
static void tm_report(uint32_t run) {
  uint32_t total = 0;
  tm_puts(TM_ABI_BEGIN);
  tm_puts(tm_model_name);
  tm_puts(TM_ABI_RUN);
  tm_putu(run);
  tm_puts(TM_ABI_LAYERS);
  tm_putu(tm_num_layers);
  tm_puts("\n");
  for (uint32_t l = 0; l < tm_num_layers; ++l) {
    tm_puts(TM_ABI_LAYER);
    tm_putu(l);
    tm_puts(" ");
    tm_puts(tm_layers[l].op_name);
    tm_puts(" ");
    tm_putu(tm_layer_cycles[l]);
    tm_puts("\n");
    total += tm_layer_cycles[l];
  }
  tm_puts(TM_ABI_END);
  tm_putu(total);
  /* check covers the BEGIN line's run index and layer count (tinymeter/abi.py) */
  tm_puts(TM_ABI_CHECK);
  tm_putu(total + run + tm_num_layers);
  tm_puts("\n");
}

int main(void) {
  uint32_t run = 0;
  tm_platform_init();
  while (tm_io_next()) {
    for (uint32_t i = 0; i < tm_num_inputs; ++i) {
      const tm_io_tensor *t = &tm_inputs[i];
      if (t->default_data != NULL) memcpy(t->data, t->default_data, t->bytes);
      tm_io_input_hook(i, t->data, t->bytes);
    }
    tm_invoke();
    for (uint32_t i = 0; i < tm_num_outputs; ++i) {
      tm_io_output_hook(i, tm_outputs[i].data, tm_outputs[i].bytes);
    }
    tm_report(run++);
  }
  tm_platform_exit(TM_EXIT_OK);
  return 0;
}
