/*
 * Selective scan (Mamba S6) on the CPU: fused forward and backward over one (batch, channel) row at a time.
 *
 * Compiled once per machine by fsad/layers/native_scan.py (twice: REAL=float with SUFFIX=f32 and REAL=double
 * with SUFFIX=f64) and called through ctypes. Semantics: see fsad/layers/selective_scan.py.
 *
 * Layouts (element strides; the state index n is always contiguous):
 *   u, delta, z, out, ungated and their gradients: (batch, d, L) contiguous
 *   A: (d, n);  D, delta_bias: (d,);  last, grad_last: (batch, d, n)
 *   grad_A, grad_D, grad_delta_bias: per-thread partials (threads, d, n), (threads, d), (threads, d)
 *   B, C: element (b, group, t, n) at b * batch_stride + group * group_stride + t * time_stride + n, where
 *         channel c uses group c / (d / groups); a zero batch or time stride broadcasts.
 *
 * Forward, per row: dt = softplus(delta + delta_bias) (or without softplus), then per step
 *   h = exp(dt_t A) h + dt_t u_t B_t,  y_t = <C_t, h>,
 *   out_t = (y_t + D u_t) silu(z_t)  (without z: out_t = y_t + D u_t; with z, ungated_t = y_t + D u_t is kept).
 * Backward, per row: grad_y_t = grad_out_t silu(z_t), then steps in reverse with G = dLoss/dh_t (from grad_last):
 *   G += grad_y_t C_t;  grad_C_t += grad_y_t h_t;  grad_B_t += dt_t u_t G;  s = <B_t, G>;
 *   Q = G exp(dt_t A) h_{t-1};  grad_u_t = s dt_t + grad_y_t D;  grad_dt_t = s u_t + <Q, A>;
 *   grad_A += dt_t Q;  G = exp(dt_t A) G;  finally grad_delta_t = grad_dt_t sigmoid(delta_t + delta_bias).
 * The backward first recomputes the row's states and decays into a thread-local (L, n) buffer; exponentials are
 * computed as 2^(delta (A log2 e)).
 *
 * Threads (OpenMP; one thread without it): the forward splits rows over threads. The backward splits units of (batch, channel block) whose
 * blocks contain whole groups of B and of C, so that two threads never write the same grad_B / grad_C element;
 * when B or C is shared over the batch (zero batch stride), each thread writes its own partial gradient (the
 * caller sums them), as for grad_A, grad_D and grad_delta_bias.
 */

#include "scan_math.h"

typedef struct {
    int64_t batch, channels, length, state;
    int64_t b_groups, b_batch_stride, b_group_stride, b_time_stride;
    int64_t c_groups, c_batch_stride, c_group_stride, c_time_stride;
    int64_t unit_channels;     /* backward: channels per unit (a multiple of both group sizes) */
    int64_t grad_b_partial;    /* backward: elements between two threads' grad_B partials (0: one shared) */
    int64_t grad_c_partial;
    int64_t threads, delta_softplus;
    const REAL *u, *delta, *delta_bias, *A, *B, *C, *D, *z; /* delta_bias (d,), D (d,), z (batch, d, L) may be NULL */
    REAL *out, *last, *ungated;                /* ungated (batch, d, L): y + D u, kept when z is given */
    const REAL *grad_out, *grad_last;          /* grad_last may be NULL */
    REAL *grad_u, *grad_delta, *grad_delta_bias, *grad_A, *grad_B, *grad_C, *grad_D, *grad_z;
} FN(scan_args);

/* The effective step of one row into dt (L,): x = delta + bias[c], dt = softplus(x) = max(x, 0) + log(1 + e^-|x|)
 * when delta_softplus, else x. */
static inline void FN(row_steps)(const FN(scan_args) *a, int64_t row, REAL *restrict dt) {
    const REAL *restrict delta = a->delta + row * a->length;
    const REAL bias = a->delta_bias ? a->delta_bias[row % a->channels] : 0;
    if (!a->delta_softplus) {
#pragma omp simd
        for (int64_t t = 0; t < a->length; ++t)
            dt[t] = delta[t] + bias;
        return;
    }
#pragma omp simd
    for (int64_t t = 0; t < a->length; ++t) {
        dt[t] = softplus(delta[t] + bias);
    }
}

static inline const REAL *FN(b_row)(const FN(scan_args) *a, int64_t b, int64_t c) {
    return a->B + b * a->b_batch_stride + (c / (a->channels / a->b_groups)) * a->b_group_stride;
}

static inline const REAL *FN(c_row)(const FN(scan_args) *a, int64_t b, int64_t c) {
    return a->C + b * a->c_batch_stride + (c / (a->channels / a->c_groups)) * a->c_group_stride;
}

/* One row's forward; n_state is a compile-time constant in the dispatched copies, so the state arrays below
 * live in registers. */
INLINE void FN(forward_row_n)(const FN(scan_args) *a, int64_t row, REAL *restrict delta, const int64_t n_state) {
    const int64_t length = a->length, b = row / a->channels, c = row % a->channels;
    const REAL *restrict u = a->u + row * length;
    const REAL *restrict B = FN(b_row)(a, b, c), *restrict C = FN(c_row)(a, b, c);
    REAL *restrict out = a->out + row * length;
    REAL h[n_state], A2[n_state];
    FN(row_steps)(a, row, delta);
    for (int64_t n = 0; n < n_state; ++n) {
        h[n] = 0;
        A2[n] = a->A[c * n_state + n] * (REAL)LOG2E;
    }
    for (int64_t t = 0; t < length; ++t) {
        const REAL dt = delta[t], du = dt * u[t];
        const REAL *restrict Bt = B + t * a->b_time_stride, *restrict Ct = C + t * a->c_time_stride;
        REAL acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t n = 0; n < n_state; ++n) {
            h[n] = scan_exp2(dt * A2[n]) * h[n] + du * Bt[n];
            acc += Ct[n] * h[n];
        }
        out[t] = acc;
    }
    memcpy(a->last + row * n_state, h, sizeof(REAL) * n_state);
    const REAL D = a->D ? a->D[c] : 0;
    if (!a->z) {
#pragma omp simd
        for (int64_t t = 0; t < length; ++t)
            out[t] += D * u[t];
        return;
    }
    const REAL *restrict z = a->z + row * length;
    REAL *restrict ungated = a->ungated + row * length;
#pragma omp simd
    for (int64_t t = 0; t < length; ++t) {
        ungated[t] = out[t] + D * u[t];
        out[t] = ungated[t] * z[t] * sigmoid(z[t]);
    }
}

/* One row's adjoint. work: 2 L n + L elements (states, decays, the gradient of the ungated output). */
INLINE void FN(backward_row_n)(const FN(scan_args) *a, int64_t row, int64_t thread, REAL *work,
                               const int64_t n_state) {
    const int64_t length = a->length, b = row / a->channels, c = row % a->channels;
    const REAL *restrict u = a->u + row * length;
    const REAL *restrict A = a->A + c * n_state, *restrict grad_out = a->grad_out + row * length;
    const REAL *restrict B = FN(b_row)(a, b, c), *restrict C = FN(c_row)(a, b, c);
    REAL *restrict grad_B = a->grad_B + thread * a->grad_b_partial + (B - a->B);
    REAL *restrict grad_C = a->grad_C + thread * a->grad_c_partial + (C - a->C);
    REAL *restrict grad_u = a->grad_u + row * length, *restrict grad_delta = a->grad_delta + row * length;
    REAL *restrict states = work, *restrict decays = work + length * n_state;
    REAL *restrict grad_y = decays + length * n_state, *restrict delta = grad_y + length;
    const REAL D = a->D ? a->D[c] : 0;
    REAL grad_D = 0;

    /* gradient through the gate and the skip: out = (y + D u) silu(z) */
    if (a->z) {
        const REAL *restrict z = a->z + row * length, *restrict ungated = a->ungated + row * length;
        REAL *restrict grad_z = a->grad_z + row * length;
#pragma omp simd reduction(+ : grad_D)
        for (int64_t t = 0; t < length; ++t) {
            const REAL s = sigmoid(z[t]);
            grad_y[t] = grad_out[t] * z[t] * s;
            grad_z[t] = grad_out[t] * ungated[t] * s * ((REAL)1 + z[t] * ((REAL)1 - s));
            grad_D += grad_y[t] * u[t];
        }
    } else {
#pragma omp simd reduction(+ : grad_D)
        for (int64_t t = 0; t < length; ++t) {
            grad_y[t] = grad_out[t];
            grad_D += grad_y[t] * u[t];
        }
    }
    if (a->grad_D)
        a->grad_D[thread * a->channels + c] += grad_D;

    REAL A2[n_state], G[n_state], grad_A[n_state];
    FN(row_steps)(a, row, delta);
    for (int64_t n = 0; n < n_state; ++n) {
        A2[n] = A[n] * (REAL)LOG2E;
        G[n] = a->grad_last ? a->grad_last[row * n_state + n] : 0;
        grad_A[n] = 0;
    }
    for (int64_t t = 0; t < length; ++t) {
        const REAL dt = delta[t], du = dt * u[t];
        const REAL *restrict Bt = B + t * a->b_time_stride;
        REAL *restrict h = states + t * n_state, *restrict e = decays + t * n_state;
        if (t == 0) {
#pragma omp simd
            for (int64_t n = 0; n < n_state; ++n) {
                e[n] = scan_exp2(dt * A2[n]);
                h[n] = du * Bt[n];
            }
            continue;
        }
        const REAL *restrict prev = h - n_state;
#pragma omp simd
        for (int64_t n = 0; n < n_state; ++n) {
            e[n] = scan_exp2(dt * A2[n]);
            h[n] = e[n] * prev[n] + du * Bt[n];
        }
    }
    for (int64_t t = length - 1; t >= 0; --t) {
        const REAL dt = delta[t], ut = u[t], du = dt * ut, gy = grad_y[t];
        const REAL *restrict Bt = B + t * a->b_time_stride, *restrict Ct = C + t * a->c_time_stride;
        REAL *restrict gBt = grad_B + t * a->b_time_stride, *restrict gCt = grad_C + t * a->c_time_stride;
        const REAL *restrict h = states + t * n_state, *restrict e = decays + t * n_state;
        REAL s_input = 0, s_decay = 0;
        if (t == 0) { /* h_{-1} = 0: no decay gradient */
#pragma omp simd reduction(+ : s_input)
            for (int64_t n = 0; n < n_state; ++n) {
                const REAL g = G[n] + gy * Ct[n];
                gCt[n] += gy * h[n];
                gBt[n] += du * g;
                s_input += Bt[n] * g;
            }
        } else {
            const REAL *restrict prev = h - n_state;
#pragma omp simd reduction(+ : s_input, s_decay)
            for (int64_t n = 0; n < n_state; ++n) {
                const REAL g = G[n] + gy * Ct[n];
                const REAL q = g * e[n] * prev[n];
                gCt[n] += gy * h[n];
                gBt[n] += du * g;
                s_input += Bt[n] * g;
                s_decay += q * A[n];
                grad_A[n] += q * dt;
                G[n] = g * e[n];
            }
        }
        grad_u[t] = s_input * dt + gy * D;
        grad_delta[t] = s_input * ut + s_decay;
    }
    /* through the step: d dt / d delta = sigmoid(delta + bias) under softplus, else 1 */
    REAL grad_bias = 0;
    const REAL *restrict raw = a->delta + row * length;
    const REAL bias = a->delta_bias ? a->delta_bias[c] : 0;
    if (a->delta_softplus) {
#pragma omp simd reduction(+ : grad_bias)
        for (int64_t t = 0; t < length; ++t) {
            grad_delta[t] *= sigmoid(raw[t] + bias);
            grad_bias += grad_delta[t];
        }
    } else {
#pragma omp simd reduction(+ : grad_bias)
        for (int64_t t = 0; t < length; ++t)
            grad_bias += grad_delta[t];
    }
    if (a->grad_delta_bias)
        a->grad_delta_bias[thread * a->channels + c] += grad_bias;
    REAL *restrict grad_A_out = a->grad_A + (thread * a->channels + c) * n_state;
    for (int64_t n = 0; n < n_state; ++n)
        grad_A_out[n] += grad_A[n];
}

/* The state loops fully unrolled for the usual state sizes (Mamba's default is 16). */
#define DISPATCH_STATE(call, n)                                                                                  \
    switch (n) {                                                                                                 \
    case 4: call(4); break;                                                                                      \
    case 8: call(8); break;                                                                                      \
    case 16: call(16); break;                                                                                    \
    case 32: call(32); break;                                                                                    \
    case 64: call(64); break;                                                                                    \
    default: call(n); break;                                                                                     \
    }

static void FN(forward_row)(const FN(scan_args) *a, int64_t row, REAL *work) {
#define FORWARD(n) FN(forward_row_n)(a, row, work, n)
    DISPATCH_STATE(FORWARD, a->state)
#undef FORWARD
}

static void FN(backward_row)(const FN(scan_args) *a, int64_t row, int64_t thread, REAL *work) {
#define BACKWARD(n) FN(backward_row_n)(a, row, thread, work, n)
    DISPATCH_STATE(BACKWARD, a->state)
#undef BACKWARD
}

/* Forward items: rows (batch, channel); backward items: units of unit_channels channels of one batch element. */
static void FN(forward_item)(const void *args, int64_t i, int thread, REAL *work) {
    (void)thread;
    FN(forward_row)((const FN(scan_args) *)args, i, work);
}

static void FN(backward_item)(const void *args, int64_t i, int thread, REAL *work) {
    const FN(scan_args) *a = (const FN(scan_args) *)args;
    const int64_t units_per_batch = a->channels / a->unit_channels;
    const int64_t b = i / units_per_batch, first = (i % units_per_batch) * a->unit_channels;
    for (int64_t c = first; c < first + a->unit_channels; ++c)
        FN(backward_row)(a, b * a->channels + c, thread, work);
}

static int FN(run)(const FN(scan_args) *a, int backward) {
    if (backward)
        return FN(run_units)(a->batch * (a->channels / a->unit_channels), a->threads,
                             (size_t)(2 * a->state + 2) * a->length, FN(backward_item), a);
    return FN(run_units)(a->batch * a->channels, a->threads, (size_t)a->length, FN(forward_item), a);
}

int FN(scan_forward)(const FN(scan_args) *args) { return FN(run)(args, 0); }

int FN(scan_backward)(const FN(scan_args) *args) { return FN(run)(args, 1); }
