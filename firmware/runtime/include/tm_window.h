/* Window geometry shared by the convolution kernels. */
#ifndef TM_WINDOW_H
#define TM_WINDOW_H

#include <stdint.h>

/* First and one-past-last filter tap k such that origin + dilation * k lies in
 * [0, size): the taps of one output pixel that fall inside the image. Computing
 * them once per output row/column keeps bounds checks out of the tap loops (the
 * skipped taps are exactly TFLM's zero padding). */
static inline void tm_valid_taps(int32_t origin, int32_t dilation, int32_t taps, int32_t size,
                                 int32_t *first, int32_t *last) {
  int32_t k0 = 0;
  int32_t k1 = taps;
  while (k0 < k1 && origin + dilation * k0 < 0) {
    ++k0;
  }
  while (k1 > k0 && origin + dilation * (k1 - 1) >= size) {
    --k1;
  }
  *first = k0;
  *last = k1;
}

#endif /* TM_WINDOW_H */
