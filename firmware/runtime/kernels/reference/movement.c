/* TRANSPOSE / SLICE / STRIDED_SLICE / SPLIT / SPLIT_V / PACK / UNPACK / SHAPE:
 * tm_copy_nd walks each part's index box like an odometer. The innermost dim
 * is one run: a memcpy when both sides are unit-stride, else an element loop
 * specialised per element size. */
#include <string.h>

#include "tm_ops_movement.h"

#define TM_COPY_RUN(type)                                                        \
  do {                                                                           \
    const type *s = (const type *)src;                                           \
    type *d = (type *)dst;                                                       \
    for (int32_t k = 0; k < n; ++k, s += is, d += os) *d = *s;                   \
  } while (0)

static void tm_copy_run(const uint8_t *src, uint8_t *dst, int32_t n, int32_t is, int32_t os,
                        int32_t size) {
  if (is == 1 && os == 1) {
    memcpy(dst, src, (size_t)n * (size_t)size);
    return;
  }
  switch (size) {
    case 1: TM_COPY_RUN(uint8_t); break;
    case 2: TM_COPY_RUN(uint16_t); break;
    case 4: TM_COPY_RUN(uint32_t); break;
    default:
      for (int32_t k = 0; k < n; ++k, src += is * size, dst += os * size) memcpy(dst, src, 8);
      break;
  }
}

static void tm_copy_part_run(const tm_copy_part *p, int32_t size) {
  const int32_t last = TM_COPY_MAX_DIMS - 1;
  int32_t outer = 1;
  for (int32_t d = 0; d < last; ++d) outer *= p->dims[d];
  const uint8_t *in = (const uint8_t *)p->input;
  uint8_t *out = (uint8_t *)p->output;
  int32_t idx[TM_COPY_MAX_DIMS - 1] = {0};
  int32_t oi = p->in_start, oo = p->out_start;
  for (int32_t o = 0; o < outer; ++o) {
    tm_copy_run(in + oi * size, out + oo * size, p->dims[last], p->in_strides[last],
                p->out_strides[last], size);
    for (int32_t d = last - 1; d >= 0; --d) {
      oi += p->in_strides[d];
      oo += p->out_strides[d];
      if (++idx[d] < p->dims[d]) break;
      oi -= p->in_strides[d] * p->dims[d];
      oo -= p->out_strides[d] * p->dims[d];
      idx[d] = 0;
    }
  }
}

void tm_copy_nd(const void *params) {
  const tm_copy_nd_params *p = (const tm_copy_nd_params *)params;
  for (int32_t i = 0; i < p->num_parts; ++i) tm_copy_part_run(&p->parts[i], p->elem_bytes);
}
