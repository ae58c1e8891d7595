/* Broadcast walk shared by the binary element-wise kernels (ADD/MUL, int8 and float).
 *
 * The host (firmware/lower/elementwise.py, broadcast_plan) folds the output shape
 * into a few dims with per-input element strides, 0 along a dim where that input
 * is broadcast. A kernel processes the innermost dim as one run and then calls
 * tm_broadcast_next_run, which steps the outer dims like an odometer and moves
 * each input's offset to the start of its next run. The visiting order is the
 * output's row-major order, so every output element meets the input pair TFLM's
 * BroadcastAdd6DSlow / BroadcastMul*DSlow index arithmetic selects. */
#ifndef TM_BROADCAST_H
#define TM_BROADCAST_H

#include <stdint.h>

/* Advance the *n_outer* outer dims (all but the innermost) by one run: idx holds
 * their counters, *off1 / *off2 the element offsets of input1 / input2. */
static inline void tm_broadcast_next_run(int32_t n_outer, const int32_t *dims,
                                         const int32_t *strides1, const int32_t *strides2,
                                         int32_t *idx, int32_t *off1, int32_t *off2) {
  for (int32_t d = n_outer - 1; d >= 0; --d) {
    *off1 += strides1[d];
    *off2 += strides2[d];
    if (++idx[d] < dims[d]) return;
    *off1 -= strides1[d] * dims[d];
    *off2 -= strides2[d] * dims[d];
    idx[d] = 0;
  }
}

#endif /* TM_BROADCAST_H */
