/* RESHAPE: a byte copy (TFLM copies unless input and output share memory). */
#include <string.h>

#include "tm_ops_reshape.h"

void tm_reshape(const void *params) {
  const tm_reshape_params *p = (const tm_reshape_params *)params;
  if (p->input != p->output) {
    memmove(p->output, p->input, p->bytes);
  }
}
