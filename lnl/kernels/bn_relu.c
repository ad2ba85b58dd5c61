/* relu(batch_norm(x)) in training mode (batch statistics) on channels-last CPU tensors.
 *
 * Eager PyTorch runs batch norm and ReLU as separate kernels: about 5 passes over the
 * activation forward and 8 backward (threshold_backward, then batch-norm backward). Here the
 * forward makes 3 (mean, variance, normalize + ReLU) and the backward 2 (sums, then the input
 * gradient); the ReLU mask is recomputed from the input, bit for bit as the forward computed it
 * (built with -ffp-contract=off), instead of being stored.
 *
 * x, y, dy, dx: (M, C) row-major, M = N*H*W (channels-last). weight, bias, mean, invstd, var,
 * dweight, dbias: (C,) float. Column sums are kept in float over blocks of rows and in double
 * across blocks; the variance is two-pass (as PyTorch's CPU kernel). Returns nonzero on bad sizes
 * or when out of memory.
 */
#include <stdlib.h>
#include <math.h>
#include "common.h"

#define BLOCK 64 /* rows summed in float before the partial sums move to double */

static void col_sums(const float *restrict row, float *restrict acc, int C) { for (int c = 0; c < C; c++) acc[c] += row[c]; }
static void col_sq_sums(const float *restrict row, const float *restrict mean, float *restrict acc, int C) {
    for (int c = 0; c < C; c++) { float d = row[c] - mean[c]; acc[c] += d * d; }
}
static void flush(float *restrict acc, double *restrict part, int C) {
    for (int c = 0; c < C; c++) { part[c] += acc[c]; acc[c] = 0.f; }
}
static void normalize_relu(float *restrict row, const float *restrict scale, const float *restrict shift,
                           const float *restrict mean, int C) {
    for (int c = 0; c < C; c++) { float v = (row[c] - mean[c]) * scale[c] + shift[c]; row[c] = v > 0.f ? v : 0.f; }
}
/* xh = (x - mean) * invstd; d = dy where xh * w + b > 0 (same expression as the forward's). */
static void masked_grad(const float *restrict row, const float *restrict g, const float *restrict mean,
                        const float *restrict invstd, const float *restrict w, const float *restrict b,
                        float *restrict xh, float *restrict d, int C) {
    for (int c = 0; c < C; c++) {
        float h = (row[c] - mean[c]) * invstd[c];
        xh[c] = h; d[c] = h * w[c] + b[c] > 0.f ? g[c] : 0.f;
    }
}
static void grad_sums(const float *restrict xh, const float *restrict d, float *restrict s, float *restrict sx, int C) {
    for (int c = 0; c < C; c++) { s[c] += d[c]; sx[c] += d[c] * xh[c]; }
}
static void input_grad(const float *restrict xh, float *restrict d, const float *restrict k, const float *restrict md,
                       const float *restrict mdx, int C) {
    for (int c = 0; c < C; c++) d[c] = k[c] * (d[c] - md[c] - xh[c] * mdx[c]);
}

static void reduce(const double *part, int nt, int C, double *out) {
    for (int c = 0; c < C; c++) { double s = 0; for (int t = 0; t < nt; t++) s += part[(size_t)t * C + c]; out[c] = s; }
}

#define DEFINE_BN_RELU(NAME, T, LOADROW, STOREROW)                                                        \
int NAME##_fwd(const T *x, T *y, const float *w, const float *b, float *mean, float *invstd, float *var,   \
               long M, int C, float eps) {                                                               \
    if (C > LNL_MAX_C || M < 1) return 2;                                                                \
    int nt = omp_get_max_threads();                                                                      \
    double *part = calloc((size_t)nt * C, sizeof(double)), *tot = malloc((size_t)C * sizeof(double));    \
    if (!part || !tot) { free(part); free(tot); return 1; }                                              \
    for (int pass = 0; pass < 2; pass++) {                                                               \
        _Pragma("omp parallel")                                                                          \
        {                                                                                                \
            double *s = part + (size_t)omp_get_thread_num() * C;                                         \
            float row[LNL_MAX_C], acc[LNL_MAX_C] = {0}; long n = 0;                                      \
            _Pragma("omp for schedule(static)")                                                          \
            for (long r = 0; r < M; r++) {                                                               \
                LOADROW(x + r * C, row, C);                                                              \
                if (pass == 0) col_sums(row, acc, C); else col_sq_sums(row, mean, acc, C);               \
                if (++n == BLOCK) { flush(acc, s, C); n = 0; }                                           \
            }                                                                                            \
            flush(acc, s, C);                                                                            \
        }                                                                                                \
        reduce(part, nt, C, tot);                                                                        \
        memset(part, 0, (size_t)nt * C * sizeof(double));                                                \
        if (pass == 0) for (int c = 0; c < C; c++) mean[c] = (float)(tot[c] / M);                        \
        else for (int c = 0; c < C; c++) { var[c] = (float)(tot[c] / M); invstd[c] = (float)(1.0 / sqrt(tot[c] / M + eps)); } \
    }                                                                                                    \
    free(part); free(tot);                                                                               \
    float scale[LNL_MAX_C];                                                                              \
    for (int c = 0; c < C; c++) scale[c] = invstd[c] * w[c];                                             \
    _Pragma("omp parallel")                                                                              \
    {                                                                                                    \
        float row[LNL_MAX_C];                                                                            \
        _Pragma("omp for schedule(static)")                                                              \
        for (long r = 0; r < M; r++) { LOADROW(x + r * C, row, C); normalize_relu(row, scale, b, mean, C); STOREROW(row, y + r * C, C); } \
    }                                                                                                    \
    return 0;                                                                                            \
}                                                                                                        \
int NAME##_bwd(const T *x, const T *dy, T *dx, const float *w, const float *b, const float *mean,          \
               const float *invstd, float *dw, float *db, long M, int C) {                               \
    if (C > LNL_MAX_C || M < 1) return 2;                                                                \
    int nt = omp_get_max_threads();                                                                      \
    double *part = calloc((size_t)2 * nt * C, sizeof(double)), *tot = malloc((size_t)2 * C * sizeof(double)); \
    if (!part || !tot) { free(part); free(tot); return 1; }                                              \
    _Pragma("omp parallel")                                                                              \
    {                                                                                                    \
        double *s = part + (size_t)omp_get_thread_num() * 2 * C;                                         \
        float row[LNL_MAX_C], g[LNL_MAX_C], xh[LNL_MAX_C], d[LNL_MAX_C], acc[2 * LNL_MAX_C] = {0}; long n = 0; \
        _Pragma("omp for schedule(static)")                                                              \
        for (long r = 0; r < M; r++) {                                                                   \
            LOADROW(x + r * C, row, C); LOADROW(dy + r * C, g, C);                                       \
            masked_grad(row, g, mean, invstd, w, b, xh, d, C);                                           \
            grad_sums(xh, d, acc, acc + C, C);                                                           \
            if (++n == BLOCK) { flush(acc, s, 2 * C); n = 0; }                                           \
        }                                                                                                \
        flush(acc, s, 2 * C);                                                                            \
    }                                                                                                    \
    reduce(part, nt, 2 * C, tot);                                                                        \
    float k[LNL_MAX_C], md[LNL_MAX_C], mdx[LNL_MAX_C];                                                   \
    for (int c = 0; c < C; c++) {                                                                        \
        db[c] = (float)tot[c]; dw[c] = (float)tot[C + c];                                                \
        k[c] = w[c] * invstd[c]; md[c] = (float)(tot[c] / M); mdx[c] = (float)(tot[C + c] / M);            \
    }                                                                                                    \
    free(part); free(tot);                                                                               \
    _Pragma("omp parallel")                                                                              \
    {                                                                                                    \
        float row[LNL_MAX_C], g[LNL_MAX_C], xh[LNL_MAX_C], d[LNL_MAX_C];                                 \
        _Pragma("omp for schedule(static)")                                                              \
        for (long r = 0; r < M; r++) {                                                                   \
            LOADROW(x + r * C, row, C); LOADROW(dy + r * C, g, C);                                       \
            masked_grad(row, g, mean, invstd, w, b, xh, d, C);                                           \
            input_grad(xh, d, k, md, mdx, C);                                                            \
            STOREROW(d, dx + r * C, C);                                                                  \
        }                                                                                                \
    }                                                                                                    \
    return 0;                                                                                            \
}

DEFINE_BN_RELU(lnl_bn_relu_bf16, uint16_t, lnl_load_bf16, lnl_store_bf16)
DEFINE_BN_RELU(lnl_bn_relu_f32, float, lnl_load_f32, lnl_store_f32)
