/* ADD / MUL float reference kernels: TFLM's reference_ops::Add /
 * BroadcastAdd6DSlow and Mul / BroadcastMul6DSlow (float): one IEEE add or
 * multiply per output element, clamped with ActivationFunctionWithMinMax.
 * Broadcasting walks the host-folded output dims (tm_broadcast.h), so every
 * output element sees the input pair TFLM's index arithmetic selects. */
#include "tm_broadcast.h"
#include "tm_ops_float.h"

static inline float tm_bin_op(float a, float b, int is_mul) { return is_mul ? a * b : a + b; }

static void tm_binary_f32(const tm_binary_f32_params *p, int is_mul) {
  const float *in1 = p->input1;
  const float *in2 = p->input2;
  float *out = p->output;
  const float lo = p->act_min, hi = p->act_max;
  if (!p->broadcast) {
    for (int32_t i = 0; i < p->size; ++i) out[i] = tm_act_f32(tm_bin_op(in1[i], in2[i], is_mul), lo, hi);
    return;
  }
  const int32_t last = TM_BINARY_F32_MAX_DIMS - 1;
  const int32_t inner = p->dims[last];
  const int32_t is1 = p->strides1[last];
  const int32_t is2 = p->strides2[last];
  const int32_t outer = p->size / inner;
  int32_t idx[TM_BINARY_F32_MAX_DIMS - 1] = {0};
  int32_t o1 = 0, o2 = 0;
  for (int32_t o = 0; o < outer; ++o) {
    const float *a = in1 + o1;
    const float *b = in2 + o2;
    for (int32_t k = 0; k < inner; ++k, a += is1, b += is2) {
      *out++ = tm_act_f32(tm_bin_op(*a, *b, is_mul), lo, hi);
    }
    tm_broadcast_next_run(last, p->dims, p->strides1, p->strides2, idx, &o1, &o2);
  }
}

void tm_add_f32(const void *params) { tm_binary_f32((const tm_binary_f32_params *)params, 0); }

void tm_mul_f32(const void *params) { tm_binary_f32((const tm_binary_f32_params *)params, 1); }
