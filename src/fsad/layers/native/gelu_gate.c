/*
 * Wave-MambaAD's DSE gate out = a GELU(b) + b GELU(a) (exact GELU, x Phi(x)) and its gradient, one pass each
 * (fsad.layers.dse.symmetric_gelu_gate). y is (rows, 2 h) contiguous, a its first h columns and b its last h; out
 * is (rows, h); the gradient of y is written as one (rows, 2 h) tensor. Compiled with selective_scan.c.
 *
 * Phi(x) = erfc(-x / sqrt 2) / 2. float: erfc(|y|) = t P(t) exp(-y^2) with t = 1 / (1 + p |y|) (Abramowitz and
 * Stegun 7.1.26, absolute error of erf below 1.5e-7), branch-free so that the loops vectorise; double: libm's erfc.
 * Gradient: d/dx GELU(x) = Phi(x) + x phi(x), phi the standard normal density.
 */

#include "scan_math.h"

#define SQRT_HALF 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794

/* Phi(x) and phi(x), the standard normal distribution function and density. */
static inline void FN(normal)(REAL x, REAL *cdf, REAL *pdf) {
    const REAL y = x * (REAL)SQRT_HALF, ay = y < 0 ? -y : y;
    const REAL gauss = scan_exp2(-(x * x) * (REAL)(0.5 * LOG2E)); /* exp(-x^2 / 2) = exp(-y^2) */
#if defined(SCAN_DOUBLE)
    const REAL tail = erfc(ay) / 2; /* Phi(-|x|) */
#else
    const REAL t = (REAL)1 / ((REAL)1 + (REAL)0.3275911 * ay);
    REAL p = (REAL)1.061405429;
    p = p * t - (REAL)1.453152027;
    p = p * t + (REAL)1.421413741;
    p = p * t - (REAL)0.284496736;
    p = p * t + (REAL)0.254829592;
    const REAL tail = p * t * gauss / 2; /* Phi(-|x|) = erfc(|y|) / 2 */
#endif
    *cdf = x < 0 ? tail : (REAL)1 - tail;
    *pdf = gauss * (REAL)INV_SQRT_2PI;
}

void FN(gelu_gate_forward)(const REAL *y, REAL *out, int64_t rows, int64_t half, int64_t threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const REAL *restrict a = y + r * 2 * half, *restrict b = a + half;
        REAL *restrict o = out + r * half;
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
            REAL ca, pa, cb, pb;
            FN(normal)(a[i], &ca, &pa);
            FN(normal)(b[i], &cb, &pb);
            o[i] = a[i] * b[i] * (ca + cb); /* a b Phi(b) + b a Phi(a) */
            (void)pa;
            (void)pb;
        }
    }
}

void FN(gelu_gate_backward)(const REAL *y, const REAL *grad, REAL *grad_y, int64_t rows, int64_t half,
                            int64_t threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const REAL *restrict a = y + r * 2 * half, *restrict b = a + half, *restrict g = grad + r * half;
        REAL *restrict ga = grad_y + r * 2 * half, *restrict gb = ga + half;
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
            REAL ca, pa, cb, pb;
            FN(normal)(a[i], &ca, &pa);
            FN(normal)(b[i], &cb, &pb);
            /* out = a b (Phi(a) + Phi(b)): d/da = b (Phi(a) + Phi(b)) + a b phi(a) */
            const REAL both = ca + cb, ab = a[i] * b[i];
            ga[i] = g[i] * (b[i] * both + ab * pa);
            gb[i] = g[i] * (a[i] * both + ab * pb);
        }
    }
}
