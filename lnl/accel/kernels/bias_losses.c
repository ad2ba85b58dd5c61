/* LNL's two losses on the bias predictor's logits (lnl.losses), each as one pass that also
 * writes its gradient, on CPU.
 *
 * Eager, each loss is a float copy of the logits, log-softmax, exp, products and sums forward,
 * and as many passes again backward. Here one pass per loss computes the softmax of every pixel
 * over the bins, the loss, and d(loss)/d(logits) up to the scale the backward applies.
 *
 * logits: (B, K, P) with B = N * heads planes (plane b belongs to head b % heads), K bins, P pixels,
 * contiguous. G: (B, K, P) float, the unscaled gradient.
 *   neg_entropy: sum over planes and pixels of sum_k p_k log p_k into *total;
 *                G = p_k (log p_k - sum_j p_j log p_j).
 *   bias_ce:     per head, the summed cross-entropy of the pixels whose label (B, P) is not 255, and
 *                their count; G = p_k - [k == label] there, 0 on ignored pixels.
 * Returns nonzero on bad sizes.
 */
#include <stdlib.h>
#include "common.h"

#define MAX_K 64   /* bins */
#define CHUNK 64   /* pixels handled together (vectorized across pixels) */
#define MAX_HEADS 16
#define IGNORE 255

/* Row helpers over n <= CHUNK pixels (restrict, one statement each: they vectorize). */
static void row_max(const float *restrict a, float *restrict m, int n) { for (int i = 0; i < n; i++) m[i] = a[i] > m[i] ? a[i] : m[i]; }
static void row_shift_exp(float *restrict d, float *restrict e, const float *restrict m, float *restrict s, int n) {
    for (int i = 0; i < n; i++) { d[i] -= m[i]; e[i] = lnl_expf(d[i]); s[i] += e[i]; }
}
static void row_log_inv(const float *restrict s, float *restrict logs, float *restrict inv, int n) {
    for (int i = 0; i < n; i++) { logs[i] = lnl_logf(s[i]); inv[i] = 1.f / s[i]; }
}
/* d -> log p, e -> p; ent += p log p */
static void row_logp(float *restrict d, float *restrict e, const float *restrict logs, const float *restrict inv,
                     float *restrict ent, int n) {
    for (int i = 0; i < n; i++) { d[i] -= logs[i]; e[i] *= inv[i]; ent[i] += e[i] * d[i]; }
}
static void row_entropy_grad(const float *restrict logp, const float *restrict p, const float *restrict ent,
                             float *restrict g, int n) {
    for (int i = 0; i < n; i++) g[i] = p[i] * (logp[i] - ent[i]);
}
/* cross-entropy of bin k: loss += w * [label == k] * (logs - d); g = w * (softmax - [label == k]) */
static void row_ce(const float *restrict d, const float *restrict e, const float *restrict logs,
                   const float *restrict inv, const float *restrict w, const float *restrict label, float k,
                   float *restrict loss, float *restrict g, int n) {
    for (int i = 0; i < n; i++) {
        float hit = label[i] == k ? 1.f : 0.f;
        loss[i] += w[i] * hit * (logs[i] - d[i]);
        g[i] = w[i] * (e[i] * inv[i] - hit);
    }
}

/* d = z - max_k z, e = exp(d), logs = log(sum_k e), inv = 1 / sum_k e; for n <= CHUNK pixels. */
static void softmax_chunk(float d[MAX_K][CHUNK], float e[MAX_K][CHUNK], float *restrict logs,
                          float *restrict inv, int K, int n) {
    float m[CHUNK], s[CHUNK];
    for (int i = 0; i < n; i++) { m[i] = d[0][i]; s[i] = 0.f; }
    for (int k = 1; k < K; k++) row_max(d[k], m, n);
    for (int k = 0; k < K; k++) row_shift_exp(d[k], e[k], m, s, n);
    row_log_inv(s, logs, inv, n);
}

#define DEFINE_LOSSES(NAME, T, LOAD)                                                                     \
static void NAME##_load_chunk(const T *plane, float d[MAX_K][CHUNK], int K, int P, int p0, int n) {      \
    for (int k = 0; k < K; k++) for (int i = 0; i < n; i++) d[k][i] = LOAD(plane[(size_t)k * P + p0 + i]); \
}                                                                                                        \
int NAME##_neg_entropy(const T *z, float *G, long B, int K, int P, double *total) {                     \
    if (K > MAX_K || K < 1) return 2;                                                                    \
    double sum = 0;                                                                                      \
    _Pragma("omp parallel for schedule(static) reduction(+:sum)")                                        \
    for (long b = 0; b < B; b++) {                                                                       \
        float d[MAX_K][CHUNK], e[MAX_K][CHUNK], logs[CHUNK], inv[CHUNK], ent[CHUNK];                     \
        const T *plane = z + (size_t)b * K * P; float *g = G + (size_t)b * K * P;                        \
        for (int p0 = 0; p0 < P; p0 += CHUNK) {                                                          \
            int n = P - p0 < CHUNK ? P - p0 : CHUNK;                                                     \
            NAME##_load_chunk(plane, d, K, P, p0, n);                                                    \
            softmax_chunk(d, e, logs, inv, K, n);                                                        \
            for (int i = 0; i < n; i++) ent[i] = 0.f;                                                    \
            for (int k = 0; k < K; k++) row_logp(d[k], e[k], logs, inv, ent, n);                        \
            for (int k = 0; k < K; k++) row_entropy_grad(d[k], e[k], ent, g + (size_t)k * P + p0, n);    \
            float s = 0.f;                                                                               \
            for (int i = 0; i < n; i++) s += ent[i];                                                     \
            sum += s;                                                                                    \
        }                                                                                                \
    }                                                                                                    \
    *total = sum;                                                                                        \
    return 0;                                                                                            \
}                                                                                                        \
int NAME##_bias_ce(const T *z, const uint8_t *labels, float *G, long B, int K, int P, int heads,        \
                   double *loss, long *count) {                                                          \
    if (K > MAX_K || K < 1 || heads > MAX_HEADS || heads < 1) return 2;                                  \
    int nt = omp_get_max_threads();                                                                      \
    double *part = calloc((size_t)nt * MAX_HEADS, sizeof(double));                                       \
    long *cpart = calloc((size_t)nt * MAX_HEADS, sizeof(long));                                          \
    if (!part || !cpart) { free(part); free(cpart); return 1; }                                          \
    _Pragma("omp parallel")                                                                              \
    {                                                                                                    \
        double *lp = part + (size_t)omp_get_thread_num() * MAX_HEADS;                                    \
        long *cp = cpart + (size_t)omp_get_thread_num() * MAX_HEADS;                                     \
        _Pragma("omp for schedule(static)")                                                              \
        for (long b = 0; b < B; b++) {                                                                   \
            float d[MAX_K][CHUNK], e[MAX_K][CHUNK], logs[CHUNK], inv[CHUNK], w[CHUNK], l[CHUNK], acc[CHUNK];         \
            const T *plane = z + (size_t)b * K * P; float *g = G + (size_t)b * K * P;                    \
            const uint8_t *lab = labels + (size_t)b * P;                                                 \
            float s = 0.f; long c = 0;                                                                   \
            for (int p0 = 0; p0 < P; p0 += CHUNK) {                                                      \
                int n = P - p0 < CHUNK ? P - p0 : CHUNK;                                                 \
                NAME##_load_chunk(plane, d, K, P, p0, n);                                                \
                softmax_chunk(d, e, logs, inv, K, n);                                                    \
                for (int i = 0; i < n; i++) {                                                            \
                    w[i] = lab[p0 + i] != IGNORE; l[i] = lab[p0 + i]; c += lab[p0 + i] != IGNORE; acc[i] = 0.f; \
                }                                                                                        \
                for (int k = 0; k < K; k++) row_ce(d[k], e[k], logs, inv, w, l, (float)k, acc, g + (size_t)k * P + p0, n); \
                for (int i = 0; i < n; i++) s += acc[i];                                                 \
            }                                                                                            \
            lp[b % heads] += s; cp[b % heads] += c;                                                      \
        }                                                                                                \
    }                                                                                                    \
    for (int h = 0; h < heads; h++) {                                                                    \
        loss[h] = 0; count[h] = 0;                                                                       \
        for (int t = 0; t < nt; t++) { loss[h] += part[(size_t)t * MAX_HEADS + h]; count[h] += cpart[(size_t)t * MAX_HEADS + h]; } \
    }                                                                                                    \
    free(part); free(cpart);                                                                             \
    return 0;                                                                                            \
}                                                                                                        \
/* out = G * scale[b] per plane, in the logits' type: the backward of both losses. */                   \
void NAME##_scale_grad(const float *G, const float *scale, T *out, long B, long KP) {                    \
    _Pragma("omp parallel for schedule(static)")                                                         \
    for (long b = 0; b < B; b++) {                                                                       \
        float s = scale[b]; const float *g = G + (size_t)b * KP; T *o = out + (size_t)b * KP;            \
        for (long j = 0; j < KP; j++) o[j] = STORE_##NAME(g[j] * s);                                     \
    }                                                                                                    \
}

#define STORE_lnl_losses_bf16 lnl_float_to_bf16
#define STORE_lnl_losses_f32 lnl_f32
DEFINE_LOSSES(lnl_losses_bf16, uint16_t, lnl_bf16_to_float)
DEFINE_LOSSES(lnl_losses_f32, float, lnl_f32)
