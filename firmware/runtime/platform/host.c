/* Host platform: the same harness compiled for the build machine, so kernels can be
 * checked bit for bit quickly without the emulator. Inputs arrive on stdin and
 * outputs leave on stdout through the same hook functions the emulator intercepts:
 *   tm_io_next:        reads one byte (1 = run an inference, 0 or EOF = stop)
 *   tm_io_input_hook:  reads exactly `bytes` bytes into the input tensor
 *   tm_io_output_hook: writes exactly `bytes` bytes
 * The report goes to stderr. */
#include <stdio.h>
#include <stdlib.h>

#include "tm_runtime.h"

void tm_platform_init(void) {}

uint32_t tm_platform_cycles(void) { return 0u; }

void tm_platform_write(const char *s, uint32_t len) { fwrite(s, 1, len, stderr); }

void tm_platform_exit(int code) {
  fflush(stdout);
  exit(code);
}

uint32_t tm_io_next(void) {
  int c = getchar();
  return (c == 1) ? 1u : 0u;
}

void tm_io_input_hook(uint32_t index, uint8_t *buf, uint32_t bytes) {
  if (fread(buf, 1, bytes, stdin) != bytes) {
    fprintf(stderr, "tinymeter host: short read for input %u\n", (unsigned)index);
    exit(TM_EXIT_FAILED);
  }
}

void tm_io_output_hook(uint32_t index, const uint8_t *buf, uint32_t bytes) {
  (void)index;
  fwrite(buf, 1, bytes, stdout);
}
