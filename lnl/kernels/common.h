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

#endif
