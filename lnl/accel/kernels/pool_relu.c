/* relu(max_pool2d(x, kernel 3, stride 2, padding 1)) on channels-last CPU tensors, forward and backward.
 *
 * The eager chain (max_pool2d_with_indices -> relu, then threshold_backward ->
 * max_pool2d_with_indices_backward) makes five passes over memory, stores int64 indices and
 * zero-fills the 28x28 gradient before scattering into it. Here the forward writes the output
 * and a one-byte window offset per output (255 where the ReLU is off), and the backward
 * gathers: every input position sums the gradients of the (at most four) outputs whose maximum
 * it is, and is written once. Ties go to the first maximum in row-major window order, as in
 * PyTorch's CPU kernel, so values and gradients match the eager chain (bf16 gradients are
 * summed in float and rounded once, so they can differ from eager in the last bit).
 *
 * Layout: x (N, H, W, C), y and off (N, Ho, Wo, C), contiguous. C <= LNL_MAX_C.
 */
#include "common.h"

#define DEFINE_POOL_RELU(NAME, T, LOAD, STORE)                                                          \
int NAME##_fwd(const T *x, T *y, uint8_t *off, int N, int H, int W, int C, int Ho, int Wo) {           \
    if (C > LNL_MAX_C) return 1;                                                                        \
    _Pragma("omp parallel for schedule(static)")                                                        \
    for (int n = 0; n < N; n++) {                                                                       \
        float m[LNL_MAX_C]; uint8_t a[LNL_MAX_C];                                                        \
        for (int oh = 0; oh < Ho; oh++) for (int ow = 0; ow < Wo; ow++) {                               \
            int first = 1;                                                                              \
            for (int kh = 0; kh < 3; kh++) {                                                            \
                int ih = 2 * oh - 1 + kh; if (ih < 0 || ih >= H) continue;                              \
                for (int kw = 0; kw < 3; kw++) {                                                        \
                    int iw = 2 * ow - 1 + kw; if (iw < 0 || iw >= W) continue;                          \
                    const T *p = x + (((size_t)n * H + ih) * W + iw) * C;                               \
                    uint8_t k = (uint8_t)(kh * 3 + kw);                                                 \
                    if (first) { for (int c = 0; c < C; c++) { m[c] = LOAD(p[c]); a[c] = k; } first = 0; } \
                    else for (int c = 0; c < C; c++) {                                                  \
                        float v = LOAD(p[c]); int t = (v > m[c]) | (v != v);  /* NaN wins, as in torch */ \
                        m[c] = t ? v : m[c]; a[c] = t ? k : a[c];                                       \
                    }                                                                                   \
                }                                                                                       \
            }                                                                                           \
            size_t o = (((size_t)n * Ho + oh) * Wo + ow) * C;                                           \
            for (int c = 0; c < C; c++) {                                                               \
                int on = (m[c] > 0.f) | (m[c] != m[c]);                                                 \
                y[o + c] = STORE(on ? m[c] : 0.f); off[o + c] = on ? a[c] : (uint8_t)255;               \
            }                                                                                           \
        }                                                                                               \
    }                                                                                                   \
    return 0;                                                                                           \
}                                                                                                       \
int NAME##_bwd(const T *gy, const uint8_t *off, T *gx, int N, int H, int W, int C, int Ho, int Wo) {   \
    if (C > LNL_MAX_C) return 1;                                                                        \
    _Pragma("omp parallel for schedule(static)")                                                        \
    for (int n = 0; n < N; n++) {                                                                       \
        float acc[LNL_MAX_C];                                                                           \
        for (int ih = 0; ih < H; ih++) for (int iw = 0; iw < W; iw++) {                                 \
            for (int c = 0; c < C; c++) acc[c] = 0.f;                                                   \
            /* the outputs whose window holds (ih, iw): 2*oh - 1 <= ih <= 2*oh + 1 */                   \
            for (int oh = ih / 2; oh <= (ih + 1) / 2 && oh < Ho; oh++) {                                \
                int kh = ih - 2 * oh + 1; if (kh < 0 || kh > 2) continue;                               \
                for (int ow = iw / 2; ow <= (iw + 1) / 2 && ow < Wo; ow++) {                            \
                    int kw = iw - 2 * ow + 1; if (kw < 0 || kw > 2) continue;                           \
                    uint8_t k = (uint8_t)(kh * 3 + kw);                                                 \
                    size_t o = (((size_t)n * Ho + oh) * Wo + ow) * C;                                   \
                    for (int c = 0; c < C; c++) acc[c] += off[o + c] == k ? LOAD(gy[o + c]) : 0.f;      \
                }                                                                                       \
            }                                                                                           \
            T *q = gx + (((size_t)n * H + ih) * W + iw) * C;                                            \
            for (int c = 0; c < C; c++) q[c] = STORE(acc[c]);                                           \
        }                                                                                               \
    }                                                                                                   \
    return 0;                                                                                           \
}

DEFINE_POOL_RELU(lnl_pool_relu_bf16, uint16_t, lnl_bf16_to_float, lnl_float_to_bf16)
DEFINE_POOL_RELU(lnl_pool_relu_f32, float, lnl_f32, lnl_f32)

/* The thread count of the kernels' parallel regions (1 without OpenMP). tests/test_kernels.py checks
 * that torch.set_num_threads reaches it: the kernels run on torch's one OpenMP runtime. */
int lnl_max_threads(void) { return omp_get_max_threads(); }
