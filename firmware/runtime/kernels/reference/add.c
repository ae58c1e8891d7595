/* ADD int8 reference kernel: TFLM's reference_integer_ops::AddFunc applied
 * element-wise (Add) or with numpy broadcasting (BroadcastAdd6DSlow).
 *
 * The broadcast walk is an odometer over the (host-folded) output dims: the
 * innermost dim runs as a tight loop with constant per-input strides (1, or 0
 * for a broadcast input), the outer dims advance two offsets. Each output
 * element sees exactly the same pair of inputs TFLM's index arithmetic
 * selects, so results match bit for bit. */
#include "tm_broadcast.h"
#include "tm_fixedpoint.h"
#include "tm_ops_elementwise.h"

typedef struct {
  int32_t off1, off2, out_off;
  int32_t left_shift;
  int32_t m1, s1, m2, s2, mo, so;
  int32_t lo, hi;
} tm_add_q;

/* One input's contribution: (x + offset) << left_shift, rescaled to the common
 * scale (TFLM's scaled_input{1,2}_val). */
static TM_ALWAYS_INLINE int32_t tm_add_scale(int32_t x, int32_t off, int32_t left_shift,
                                             int32_t mult, int32_t shift) {
  return tm_multiply_by_quantized_multiplier_smaller_than_one_exp((x + off) * (1 << left_shift),
                                                                  mult, (int)shift);
}

static TM_ALWAYS_INLINE int8_t tm_add_out(int32_t sa, int32_t sb, const tm_add_q *q) {
  const int32_t raw =
      tm_multiply_by_quantized_multiplier_smaller_than_one_exp(sa + sb, q->mo, (int)q->so) +
      q->out_off;
  return tm_clamp_s8(raw, q->lo, q->hi);
}

static TM_ALWAYS_INLINE int8_t tm_add_one(int32_t x, int32_t y, const tm_add_q *q) {
  return tm_add_out(tm_add_scale(x, q->off1, q->left_shift, q->m1, q->s1),
                    tm_add_scale(y, q->off2, q->left_shift, q->m2, q->s2), q);
}

void tm_add_s8(const void *params) {
  const tm_add_s8_params *p = (const tm_add_s8_params *)params;
  const tm_add_q q = {p->input1_offset, p->input2_offset, p->output_offset, p->left_shift,
                      p->input1_multiplier, p->input1_shift, p->input2_multiplier,
                      p->input2_shift, p->output_multiplier, p->output_shift,
                      p->act_min, p->act_max};
  const int8_t *restrict in1 = p->input1;
  const int8_t *restrict in2 = p->input2;
  int8_t *restrict out = p->output;

  if (!p->broadcast) {
    for (int32_t i = 0; i < p->size; ++i) out[i] = tm_add_one(in1[i], in2[i], &q);
    return;
  }

  const int32_t last = TM_ADD_MAX_DIMS - 1;
  const int32_t inner = p->dims[last];
  const int32_t is1 = p->strides1[last];
  const int32_t is2 = p->strides2[last];
  const int32_t outer = p->size / inner;
  int32_t idx[TM_ADD_MAX_DIMS - 1] = {0};
  int32_t o1 = 0, o2 = 0;
  for (int32_t o = 0; o < outer; ++o) {
    const int8_t *a = in1 + o1;
    const int8_t *b = in2 + o2;
    if (is2 == 0) {
      /* input2 constant along the run (e.g. a per-channel or scalar operand
       * broadcast over the inner dim): rescale it once. */
      const int32_t sb = tm_add_scale(*b, q.off2, q.left_shift, q.m2, q.s2);
      for (int32_t k = 0; k < inner; ++k, a += is1) {
        *out++ = tm_add_out(tm_add_scale(*a, q.off1, q.left_shift, q.m1, q.s1), sb, &q);
      }
    } else if (is1 == 0) {
      const int32_t sa = tm_add_scale(*a, q.off1, q.left_shift, q.m1, q.s1);
      for (int32_t k = 0; k < inner; ++k, b += is2) {
        *out++ = tm_add_out(sa, tm_add_scale(*b, q.off2, q.left_shift, q.m2, q.s2), &q);
      }
    } else {
      for (int32_t k = 0; k < inner; ++k, a += is1, b += is2) *out++ = tm_add_one(*a, *b, &q);
    }
    tm_broadcast_next_run(last, p->dims, p->strides1, p->strides2, idx, &o1, &o2);
  }
}
