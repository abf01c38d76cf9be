/*
 * What the CPU scan kernels share: the float type of the variant being compiled, name mangling, and branch-free
 * elementary functions that vectorise (included by selective_scan.c and ordered_scan.c).
 */

#ifndef SCAN_MATH_H
#define SCAN_MATH_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef REAL
#define REAL float
#define SUFFIX f32
#endif

#define JOIN2(a, b) a##_##b
#define JOIN(a, b) JOIN2(a, b)
#define FN(name) JOIN(name, SUFFIX)

#define INLINE static inline __attribute__((always_inline))

#define LOG2E 1.44269504088896340736

#if defined(SCAN_DOUBLE)
static inline double scan_exp2(double x) { return exp2(x); }
#else
/* 2^x for float, branch-free so that loops over it vectorise: x = k + f with k an integer and |f| <= 1/2, the
 * degree-6 Taylor polynomial of 2^f = exp(f ln 2) (relative error below 1.3e-7) and 2^k built in the exponent
 * bits. x is clamped to [-126, 127]: results below 2^-126 come out as 2^-126 (about 1e-38) instead of 0. */
static inline float scan_exp2(float x) {
    x = x < -126.0f ? -126.0f : x;
    x = x > 127.0f ? 127.0f : x;
    const float k = floorf(x + 0.5f), f = x - k;
    float p = 1.5403530393381608e-4f;
    p = p * f + 1.3333558146428443e-3f;
    p = p * f + 9.6181291076284772e-3f;
    p = p * f + 5.5504108664821580e-2f;
    p = p * f + 2.4022650695910071e-1f;
    p = p * f + 6.9314718055994531e-1f;
    p = p * f + 1.0f;
    union { int32_t i; float f; } scale;
    scale.i = ((int32_t)k + 127) << 23;
    return p * scale.f;
}
#endif

/* silu(z) = z sigmoid(z); with ds: d silu / dz = sigmoid(z) (1 + z (1 - sigmoid(z))). */
static inline REAL sigmoid(REAL z) {
    const REAL e = scan_exp2((z < 0 ? z : -z) * (REAL)LOG2E), r = (REAL)1 / ((REAL)1 + e); /* e in (0, 1] */
    return z < 0 ? e * r : r;
}

#if defined(SCAN_DOUBLE)
static inline double log1p_unit(double e) { return log1p(e); }
#else
/* log(1 + e) for e in [0, 1]: 2 atanh(s) with s = e / (2 + e) <= 1/3, series to s^13 (error below 1e-8). */
static inline float log1p_unit(float e) {
    const REAL s = e / ((REAL)2 + e), s2 = s * s;
    REAL p = (REAL)1 / 13;
    p = p * s2 + (REAL)1 / 11;
    p = p * s2 + (REAL)1 / 9;
    p = p * s2 + (REAL)1 / 7;
    p = p * s2 + (REAL)1 / 5;
    p = p * s2 + (REAL)1 / 3;
    p = p * s2 + (REAL)1;
    return (REAL)2 * s * p;
}
#endif

/* softplus(x) = max(x, 0) + log(1 + e^-|x|). */
static inline REAL softplus(REAL x) {
    const REAL negative_abs = x < 0 ? x : -x;
    return (x > 0 ? x : 0) + log1p_unit(scan_exp2(negative_abs * (REAL)LOG2E));
}

/* One unit of a kernel's work: item i of the kernel's arguments, on thread `thread`, with that thread's buffer. */
typedef void (*FN(unit_fn))(const void *args, int64_t item, int thread, REAL *work);

/* Items 0 .. items-1 in contiguous ranges over at most `threads` threads, each with its own work buffer of `size`
 * REALs; 0 on success, 1 when a buffer could not be allocated. With OpenMP this is the process's OpenMP runtime,
 * the one PyTorch's intra-op threads use (torch loads libgomp.so.1 first, and this library links the same soname):
 * no second pool competes for the cores. */
static inline int FN(run_units)(int64_t items, int64_t threads, size_t size, FN(unit_fn) unit, const void *args) {
    int team = (int)(threads < 1 ? 1 : threads), status = 0;
    if (team > items)
        team = (int)(items < 1 ? 1 : items);
#pragma omp parallel num_threads(team) reduction(| : status)
    {
        int thread = 0, count = 1;
#ifdef _OPENMP
        thread = omp_get_thread_num();
        count = omp_get_num_threads();
#endif
        REAL *work = (REAL *)malloc(sizeof(REAL) * (size ? size : 1));
        if (!work)
            status = 1;
        for (int64_t i = items * thread / count; work && i < items * (thread + 1) / count; ++i)
            unit(args, i, thread, work);
        free(work);
    }
    return status;
}

#endif
