/* DEPTHWISE_CONV_2D int8 reference kernel: the arithmetic of TFLM's
 * reference_integer_ops::DepthwiseConvPerChannel, with the in-image tap range
 * computed once per output row/column (no bounds checks in the tap loops) and
 * the output written sequentially (channel c = ic * depth_multiplier + m). */
#include "tm_fixedpoint.h"
#include "tm_ops_conv.h"
#include "tm_window.h"

void tm_depthwise_conv2d_s8(const void *params) {
  const tm_depthwise_conv2d_s8_params *p = (const tm_depthwise_conv2d_s8_params *)params;
  const int8_t *const input = p->input;
  const int8_t *const filter = p->filter;
  const int32_t *const bias = p->bias;
  const int32_t *const mult = p->out_mult;
  const int32_t *const shift = p->out_shift;
  int8_t *restrict out = p->output;

  const int32_t input_offset = p->input_offset;
  const int32_t output_offset = p->output_offset;
  const int32_t act_min = p->act_min;
  const int32_t act_max = p->act_max;
  const int32_t in_h = p->in_h, in_w = p->in_w, in_ch = p->in_ch;
  const int32_t out_h = p->out_h, out_w = p->out_w, out_ch = p->out_ch;
  const int32_t depth_multiplier = p->depth_multiplier;
  const int32_t filter_h = p->filter_h, filter_w = p->filter_w;
  const int32_t stride_h = p->stride_h, stride_w = p->stride_w;
  const int32_t dil_h = p->dilation_h, dil_w = p->dilation_w;

  const int32_t in_row_stride = in_w * in_ch;
  const int32_t in_tap_row_step = dil_h * in_row_stride;
  const int32_t in_tap_col_step = dil_w * in_ch;
  const int32_t filter_row_stride = filter_w * out_ch;

  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *const in_batch = input + b * in_h * in_row_stride;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      const int32_t iy0 = oy * stride_h - p->pad_h;
      int32_t ky0, ky1;
      tm_valid_taps(iy0, dil_h, filter_h, in_h, &ky0, &ky1);
      const int32_t taps_y = ky1 - ky0;
      for (int32_t ox = 0; ox < out_w; ++ox) {
        const int32_t ix0 = ox * stride_w - p->pad_w;
        int32_t kx0, kx1;
        tm_valid_taps(ix0, dil_w, filter_w, in_w, &kx0, &kx1);
        const int32_t taps_x = kx1 - kx0;
        const int8_t *const in_pix =
            in_batch + (iy0 + dil_h * ky0) * in_row_stride + (ix0 + dil_w * kx0) * in_ch;
        const int8_t *const filter_tap0 = filter + ky0 * filter_row_stride + kx0 * out_ch;
        int32_t oc = 0;
        for (int32_t ic = 0; ic < in_ch; ++ic) {
          const int8_t *const in_c = in_pix + ic;
          for (int32_t m = 0; m < depth_multiplier; ++m, ++oc) {
            const int8_t *restrict f_row = filter_tap0 + oc;
            const int8_t *restrict in_row = in_c;
            int32_t acc = 0;
            for (int32_t ty = 0; ty < taps_y; ++ty) {
              const int8_t *fp = f_row;
              const int8_t *ip = in_row;
              for (int32_t tx = 0; tx < taps_x; ++tx) {
                acc += (int32_t)*fp * ((int32_t)*ip + input_offset);
                fp += out_ch;
                ip += in_tap_col_step;
              }
              f_row += filter_row_stride;
              in_row += in_tap_row_step;
            }
            if (bias) {
              acc += bias[oc];
            }
            acc = tm_multiply_by_quantized_multiplier(acc, mult[oc], (int)shift[oc]);
            acc += output_offset;
            *out++ = tm_clamp_s8(acc, act_min, act_max);
          }
        }
      }
    }
  }
}
