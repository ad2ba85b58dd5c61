/* Shared helpers of the lnl CPU kernels: bf16 <-> float rows, OpenMP stubs. */
#ifndef LNL_KERNELS_COMMON_H
#define LNL_KERNELS_COMMON_H
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#else
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
#endif

#define LNL_MAX_C 1024 /* channels a kernel keeps in stack buffers */

static inline float lnl_bf16_to_float(uint16_t b) { uint32_t u = (uint32_t)b << 16; float f; memcpy(&f, &u, 4); return f; }
static inline uint16_t lnl_float_to_bf16(float f) { /* round to nearest even; NaN stays NaN */
    uint32_t u; memcpy(&u, &f, 4);
    uint16_t r = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    return (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40) : r;
}
static inline float lnl_f32(float v) { return v; }
static inline void lnl_load_bf16(const uint16_t *restrict p, float *restrict out, int C) {
    for (int c = 0; c < C; c++) out[c] = lnl_bf16_to_float(p[c]);
}
static inline void lnl_store_bf16(const float *restrict in, uint16_t *restrict q, int C) {
    for (int c = 0; c < C; c++) q[c] = lnl_float_to_bf16(in[c]);
}
static inline void lnl_load_f32(const float *restrict p, float *restrict out, int C) { memcpy(out, p, (size_t)C * 4); }
static inline void lnl_store_f32(const float *restrict in, float *restrict q, int C) { memcpy(q, in, (size_t)C * 4); }

/* exp and log for the loss kernels, written so loops over them vectorize (Cephes' single-precision
 * polynomials, about 1 ulp; libm's expf/logf are scalar calls). lnl_expf: x <= 88; lnl_logf: x > 0 normal. */
static inline float lnl_expf(float x) {
    x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
    /* round to nearest by adding and removing 1.5 * 2^23 (floorf does not vectorize without -ffast-math) */
    float fx = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
    x = x - fx * 0.693359375f + fx * 2.12194440e-4f;
    float z = x * x, y = 1.9875691500e-4f;
    y = y * x + 1.3981999507e-3f; y = y * x + 8.3334519073e-3f; y = y * x + 4.1665795894e-2f;
    y = y * x + 1.6666665459e-1f; y = y * x + 5.0000001201e-1f;
    y = y * z + x + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)fx + 127) << 23; float scale; memcpy(&scale, &bits, 4);
    return y * scale;
}
static inline float lnl_logf(float x) {
    uint32_t u; memcpy(&u, &x, 4);
    float e = (float)((int32_t)((u >> 23) & 0xffu) - 126);  /* x = m * 2^e, m in [0.5, 1) */
    u = (u & 0x807fffffu) | 0x3f000000u; float m; memcpy(&m, &u, 4);
    int small = m < 0.70710678f;
    e = small ? e - 1.0f : e;
    m = small ? m + m - 1.0f : m - 1.0f;
    float z = m * m, y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f; y = y * m + 1.1676998740e-1f; y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f; y = y * m - 1.6668057665e-1f; y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f; y = y * m + 3.3333331174e-1f;
    y = y * m * z - 2.12194440e-4f * e - 0.5f * z;
    return m + y + 0.693359375f * e;
}

#endif
