/* PAD / PADV2 reference kernel (1-, 2- and 4-byte elements): TFLM's
 * reference_ops::Pad over 5-D extended shapes. Whole innermost rows are
 * filled or copied at once; the element sequence is TFLM's. */
#include <string.h>

#include "tm_ops_misc.h"

static void tm_pad_fill(uint8_t *out, int32_t n, int32_t elem_bytes, uint32_t value) {
  if (elem_bytes == 1) {
    memset(out, (int)(value & 0xffu), (size_t)n);
    return;
  }
  for (int32_t i = 0; i < n; ++i) {
    memcpy(out + elem_bytes * i, &value, (size_t)elem_bytes); /* little-endian low bytes */
  }
}

void tm_pad(const void *params) {
  const tm_pad_params *p = (const tm_pad_params *)params;
  const int32_t eb = p->elem_bytes;
  const int32_t *od = p->out_dims;
  const int32_t depth = od[4];
  const int32_t in_depth = depth - p->left[4] - p->right[4];
  const uint8_t *in = (const uint8_t *)p->input;
  uint8_t *out = (uint8_t *)p->output;
  for (int32_t b = 0; b < od[0]; ++b) {
    const int32_t pb = b < p->left[0] || b >= od[0] - p->right[0];
    for (int32_t q = 0; q < od[1]; ++q) {
      const int32_t pq = pb || q < p->left[1] || q >= od[1] - p->right[1];
      for (int32_t h = 0; h < od[2]; ++h) {
        const int32_t ph = pq || h < p->left[2] || h >= od[2] - p->right[2];
        for (int32_t w = 0; w < od[3]; ++w) {
          if (ph || w < p->left[3] || w >= od[3] - p->right[3]) {
            tm_pad_fill(out, depth, eb, p->pad_value);
            out += depth * eb;
            continue;
          }
          tm_pad_fill(out, p->left[4], eb, p->pad_value);
          out += p->left[4] * eb;
          memcpy(out, in, (size_t)(in_depth * eb));
          out += in_depth * eb;
          in += in_depth * eb;
          tm_pad_fill(out, p->right[4], eb, p->pad_value);
          out += p->right[4] * eb;
        }
      }
    }
  }
}
