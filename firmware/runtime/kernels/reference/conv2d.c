/* CONV_2D int8 reference kernel: the arithmetic of TFLM's
 * reference_integer_ops::ConvPerChannel, reorganised for speed without changing
 * a single result bit:
 *  - the range of filter taps that fall inside the image is computed once per
 *    output row/column, so the inner loops carry no bounds checks (TFLM skips
 *    the same out-of-image taps, which is what zero padding means here);
 *  - the output is written sequentially in NHWC order;
 *  - all strides are hoisted into pointer increments.
 * Integer accumulation order differs from TFLM only in ways that cannot change
 * an int32 sum. */
#include "tm_fixedpoint.h"
#include "tm_ops_conv.h"
#include "tm_window.h"

void tm_conv2d_s8(const void *params) {
  const tm_conv2d_s8_params *p = (const tm_conv2d_s8_params *)params;
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
  const int32_t filter_h = p->filter_h, filter_w = p->filter_w;
  const int32_t filter_in_ch = p->filter_in_ch;
  const int32_t stride_h = p->stride_h, stride_w = p->stride_w;
  const int32_t dil_h = p->dilation_h, dil_w = p->dilation_w;

  const int32_t groups = in_ch / filter_in_ch;
  const int32_t filters_per_group = out_ch / groups;
  const int32_t in_row_stride = in_w * in_ch;
  const int32_t in_tap_row_step = dil_h * in_row_stride;
  const int32_t in_tap_col_step = dil_w * in_ch;
  const int32_t filter_row_stride = filter_w * filter_in_ch;
  const int32_t filter_oc_stride = filter_h * filter_row_stride;

  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *const in_batch = input + b * in_h * in_row_stride;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      const int32_t iy0 = oy * stride_h - p->pad_h;
      int32_t ky0, ky1;
      tm_valid_taps(iy0, dil_h, filter_h, in_h, &ky0, &ky1);
      for (int32_t ox = 0; ox < out_w; ++ox) {
        const int32_t ix0 = ox * stride_w - p->pad_w;
        int32_t kx0, kx1;
        tm_valid_taps(ix0, dil_w, filter_w, in_w, &kx0, &kx1);
        const int32_t taps_x = kx1 - kx0;
        /* First in-image tap of this output pixel, channel 0. */
        const int8_t *const in_pix =
            in_batch + (iy0 + dil_h * ky0) * in_row_stride + (ix0 + dil_w * kx0) * in_ch;
        const int32_t filter_tap0 = ky0 * filter_row_stride + kx0 * filter_in_ch;
        int32_t oc = 0;
        for (int32_t g = 0; g < groups; ++g) {
          const int8_t *const in_group = in_pix + g * filter_in_ch;
          for (int32_t j = 0; j < filters_per_group; ++j, ++oc) {
            const int8_t *filter_row = filter + oc * filter_oc_stride + filter_tap0;
            const int8_t *in_row = in_group;
            int32_t acc = 0;
            for (int32_t ky = ky0; ky < ky1; ++ky) {
              const int8_t *restrict fp = filter_row;
              const int8_t *in_tap = in_row;
              for (int32_t t = 0; t < taps_x; ++t) {
                const int8_t *restrict ip = in_tap;
                for (int32_t c = 0; c < filter_in_ch; ++c) {
                  acc += (int32_t)fp[c] * ((int32_t)ip[c] + input_offset);
                }
                fp += filter_in_ch;
                in_tap += in_tap_col_step;
              }
              filter_row += filter_row_stride;
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
