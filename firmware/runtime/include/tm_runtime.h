/* tinymeter device runtime: types shared by the generated model file, the harness
 * and the kernels. The host precomputes everything (arena offsets, quantization
 * integers); the device only walks the layer table. */
#ifndef TM_RUNTIME_H
#define TM_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "tm_abi.h" /* generated from tinymeter/abi.py: report pieces, exit codes */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TM_NOINLINE __attribute__((noinline, used))
#define TM_ALIGNED(n) __attribute__((aligned(n)))
#else
#define TM_NOINLINE
#define TM_ALIGNED(n)
#endif

/* Every kernel has this signature; it casts params to its own struct. */
typedef void (*tm_kernel_fn)(const void *params);

typedef struct {
  tm_kernel_fn kernel;
  const void *params;
  const char *op_name;
} tm_layer;

typedef struct {
  uint8_t *data;              /* where the tensor lives in the arena */
  uint32_t bytes;
  const uint8_t *default_data; /* input used on hardware (NULL for outputs) */
} tm_io_tensor;

/* Defined by the generated model file. */
extern const tm_layer tm_layers[];
extern const uint32_t tm_num_layers;
extern const tm_io_tensor tm_inputs[];
extern const uint32_t tm_num_inputs;
extern const tm_io_tensor tm_outputs[];
extern const uint32_t tm_num_outputs;
extern const uint32_t tm_arena_bytes;
extern const char tm_model_name[];

/* Harness hooks (noinline; the emulator intercepts their entry). */
uint32_t tm_io_next(void);
void tm_io_input_hook(uint32_t index, uint8_t *buf, uint32_t bytes);
void tm_io_output_hook(uint32_t index, const uint8_t *buf, uint32_t bytes);
/* r0 = layer index, r1 = op name: a debugger or emulator breaking here sees both. */
void tm_prof_begin(uint32_t layer, const char *op_name);
void tm_prof_end(uint32_t layer);

/* Platform services (platform/<name>.c). */
void tm_platform_init(void);
void tm_platform_write(const char *s, uint32_t len);
void tm_platform_exit(int code);
uint32_t tm_platform_cycles(void);
/* Bits of tm_platform_cycles that count: ARMv6-M has no DWT CYCCNT and counts with the
 * 24-bit SysTick, so differences are taken modulo 2^24 (a layer may span a wrap),
 * unless the hardware image's board provides a 32-bit counter (tm_board.c). */
#if defined(__ARM_ARCH_6M__) && defined(TM_IO_UART)
extern const uint32_t tm_board_cycle_mask;
#define TM_CYCLE_MASK tm_board_cycle_mask
#elif defined(__ARM_ARCH_6M__)
#define TM_CYCLE_MASK 0x00FFFFFFu
#else
#define TM_CYCLE_MASK 0xFFFFFFFFu
#endif

#if defined(TM_IO_UART)
/* Hardware build: power-monitor marks (platform/cortexm.c, pins from tm_board.c), and
 * the idle loop the firmware ends in once its report is out (no debugger to exit to;
 * the emulator intercepts its entry and stops with r0 as the exit code). */
void tm_platform_mark_inference(uint32_t high);
void tm_platform_mark_layer(uint32_t high);
void tm_halt(int code);
#define TM_MARK_INFERENCE(high) tm_platform_mark_inference(high)
#define TM_MARK_LAYER(high) tm_platform_mark_layer(high)
#else
/* Semihosting and host builds have no marks: they must not cost an instruction. */
#define TM_MARK_INFERENCE(high) ((void)0)
#define TM_MARK_LAYER(high) ((void)0)
#endif

/* Runs every layer once, bracketed by the profiler hooks. */
void tm_invoke(void);

#ifdef __cplusplus
}
#endif

#endif /* TM_RUNTIME_H */
