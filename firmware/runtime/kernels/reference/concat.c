/* CONCATENATION reference kernel (any element type): TFLM's
 * reference_ops::Concatenation, a sequence of slice copies. */
#include <string.h>

#include "tm_ops_misc.h"

void tm_concat(const void *params) {
  const tm_concat_params *p = (const tm_concat_params *)params;
  uint8_t *out = (uint8_t *)p->output;
  for (int32_t k = 0; k < p->outer; ++k) {
    for (int32_t i = 0; i < p->num_inputs; ++i) {
      const uint32_t n = p->copy_bytes[i];
      memcpy(out, (const uint8_t *)p->inputs[i] + (uint32_t)k * n, n);
      out += n;
    }
  }
}
