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

/* Apply STMT to every output element of a broadcast binary op whose params
 * struct P has size, broadcast, dims[ND], strides1[ND], strides2[ND]: inside
 * STMT, A and B point at the two input elements and O at the output element
 * (pointers to the given element types). The order is the output's row-major
 * order; non-broadcast ops take one flat loop. */
#define TM_BROADCAST_FOR_EACH(P, ND, TA, IN1, TB, IN2, TO, OUT, A, B, O, STMT)           \
  do {                                                                                  \
    const TA *A##_base = (IN1);                                                         \
    const TB *B##_base = (IN2);                                                         \
    TO *O = (OUT);                                                                      \
    if (!(P)->broadcast) {                                                              \
      for (int32_t i_ = 0; i_ < (P)->size; ++i_, ++O) {                                 \
        const TA *A = A##_base + i_;                                                    \
        const TB *B = B##_base + i_;                                                    \
        STMT;                                                                           \
      }                                                                                 \
      break;                                                                            \
    }                                                                                   \
    const int32_t last_ = (ND) - 1;                                                     \
    const int32_t inner_ = (P)->dims[last_];                                            \
    const int32_t is1_ = (P)->strides1[last_], is2_ = (P)->strides2[last_];             \
    const int32_t outer_ = (P)->size / inner_;                                          \
    int32_t idx_[(ND) - 1] = {0};                                                       \
    int32_t o1_ = 0, o2_ = 0;                                                           \
    for (int32_t r_ = 0; r_ < outer_; ++r_) {                                           \
      const TA *A = A##_base + o1_;                                                     \
      const TB *B = B##_base + o2_;                                                     \
      for (int32_t k_ = 0; k_ < inner_; ++k_, A += is1_, B += is2_, ++O) {              \
        STMT;                                                                           \
      }                                                                                 \
      tm_broadcast_next_run(last_, (P)->dims, (P)->strides1, (P)->strides2, idx_, &o1_, \
                            &o2_);                                                      \
    }                                                                                   \
  } while (0)

#endif /* TM_BROADCAST_H */
