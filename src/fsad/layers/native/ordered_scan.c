/*
 * Selective scans of channel-last maps read in several orders (the 2-D mixers of Wave-MambaAD's HFSS and
 * MambaAD's HSS), with the reading of the map and the putting back of the outputs fused into the scan.
 *
 * Compiled with selective_scan.c by fsad/layers/native_scan.py; semantics: fsad.layers.selective_scan.ordered_scan.
 *
 * Layouts (all contiguous; b batch rows, L positions, d channels, K orders, n states, G groups of b / G rows):
 *   u, out, grad_u, grad_out: (b, L, d);  delta, grad_delta: (K, b, L, d);  B, C, grad_B, grad_C: (b, L, K, n)
 *   A: (K d, n);  D, delta_bias: (K d,);  reads, slots: (G, K, L) int64 positions
 *   grad_A, grad_D, grad_delta_bias: per-thread partials (threads, K d, n), (threads, K d), (threads, K d)
 * Row i, order k, channel c reads the sequence x_s = u[i, reads[g, k, s], c] (g = i / (b / G)) with its step,
 * B and C at the same positions and the parameters of channel k d + c; the scan's output y_s + D x_s is added to
 * out[i, slots[g, k, s], c].
 *
 * Vectorised over LANES channels: a block of channels is scanned together, each lane one channel, the states in
 * blocks of STATE_BLOCK (n in registers as STATE_BLOCK vectors); B_t and C_t are scalars shared by the lanes.
 * Forward units are (row, channel block); backward units are rows (the gradients of B and C sum over channels).
 * The backward recomputes the states of one state block into a thread-local buffer and sweeps back as the row
 * kernel of selective_scan.c does; the gradients of B and C are summed per lane over the channel blocks first
 * and over the lanes once per (row, order).
 */

#include "scan_math.h"

#define LANES 8
#define STATE_BLOCK 8

typedef struct {
    int64_t batch, length, channels, orders, state, groups;
    int64_t threads, delta_softplus;
    const int64_t *reads, *slots;
    const REAL *u, *delta, *delta_bias, *A, *B, *C, *D; /* delta_bias, D may be NULL */
    REAL *out;
    const REAL *grad_out;
    REAL *grad_u, *grad_delta, *grad_A, *grad_B, *grad_C, *grad_D, *grad_delta_bias; /* grad_D, grad_delta_bias may
                                                                                        be NULL */
} FN(ordered_args);

/* Where one (row, order) reads and writes. */
typedef struct {
    const int64_t *reads, *slots;
    const REAL *B, *C; /* element (position p, state s) at p * stride + s */
    int64_t stride;
} FN(order_view);

static FN(order_view) FN(view_of)(const FN(ordered_args) *a, int64_t row, int64_t k) {
    const int64_t g = row / (a->batch / a->groups), L = a->length, n = a->state;
    const int64_t at = (g * a->orders + k) * L, bc = row * L * a->orders * n + k * n;
    return (FN(order_view)){a->reads + at, a->slots + at, a->B + bc, a->C + bc, a->orders * n};
}

/* The block's steps in lane order: raw = delta + bias, dt (raw after the softplus),
 * du = dt x, x, and A (n, LANES) with
 * A2 = A log2(e) (lanes beyond width get x = 0 and A = 0: they stay zero and are never written back). width is a
 * compile-time constant in the dispatched copies (LANES for every block but a last partial one). */
INLINE void FN(load_block)(const FN(ordered_args) *a, int64_t row, int64_t k, int64_t c0, const int64_t *reads,
                           REAL *restrict raw, REAL *restrict dt, REAL *restrict du, REAL *restrict x,
                           REAL *restrict A, REAL *restrict A2, const int64_t width) {
    const int64_t L = a->length, d = a->channels, n = a->state;
    REAL bias[LANES];
    for (int64_t v = 0; v < LANES; ++v) {
        bias[v] = a->delta_bias && v < width ? a->delta_bias[k * d + c0 + v] : 0;
        for (int64_t s = 0; s < n; ++s) {
            A[s * LANES + v] = v < width ? a->A[(k * d + c0 + v) * n + s] : 0;
            A2[s * LANES + v] = A[s * LANES + v] * (REAL)LOG2E;
        }
    }
    const int softplus_step = (int)a->delta_softplus;
    for (int64_t t = 0; t < L; ++t) {
        const int64_t p = reads[t];
        const REAL *restrict u = a->u + (row * L + p) * d + c0;
        const REAL *restrict delta = a->delta + ((k * a->batch + row) * L + p) * d + c0;
        if (width == LANES) {
#pragma omp simd
            for (int64_t v = 0; v < LANES; ++v) {
                const REAL r = delta[v] + bias[v], step = softplus_step ? softplus(r) : r;
                dt[t * LANES + v] = step;
                x[t * LANES + v] = u[v];
                du[t * LANES + v] = step * u[v];
                raw[t * LANES + v] = r;
            }
            continue;
        }
        for (int64_t v = 0; v < LANES; ++v) {
            const REAL r = v < width ? delta[v] + bias[v] : 0, step = softplus_step ? softplus(r) : r;
            dt[t * LANES + v] = step;
            x[t * LANES + v] = v < width ? u[v] : 0;
            du[t * LANES + v] = step * x[t * LANES + v];
            raw[t * LANES + v] = r;
        }
    }
}

/* y[t] += sum over states s0 .. s0 + nb - 1 of C_t,s h_t,s. */
INLINE void FN(forward_states)(const FN(order_view) *o, int64_t L, const REAL *dt, const REAL *du, const REAL *A2,
                               REAL *restrict y, int64_t s0, const int64_t nb) {
    REAL h[nb][LANES];
    memset(h, 0, sizeof(h));
    for (int64_t t = 0; t < L; ++t) {
        const REAL *Bt = o->B + o->reads[t] * o->stride + s0, *Ct = o->C + o->reads[t] * o->stride + s0;
        REAL acc[LANES] = {0};
        for (int64_t j = 0; j < nb; ++j) {
            const REAL bj = Bt[j], cj = Ct[j];
#pragma omp simd
            for (int64_t v = 0; v < LANES; ++v) {
                h[j][v] = scan_exp2(dt[t * LANES + v] * A2[(s0 + j) * LANES + v]) * h[j][v] + du[t * LANES + v] * bj;
                acc[v] += cj * h[j][v];
            }
        }
#pragma omp simd
        for (int64_t v = 0; v < LANES; ++v)
            y[t * LANES + v] += acc[v];
    }
}

INLINE void FN(forward_block)(const FN(ordered_args) *a, int64_t row, int64_t c0, REAL *work, const int64_t width) {
    const int64_t L = a->length, d = a->channels, n = a->state;
    REAL *raw = work, *dt = raw + L * LANES, *du = dt + L * LANES, *x = du + L * LANES, *y = x + L * LANES;
    REAL *A = y + L * LANES;
    REAL *A2 = A + n * LANES;
    for (int64_t t = 0; t < L; ++t)
        memset(a->out + (row * L + t) * d + c0, 0, sizeof(REAL) * width);
    for (int64_t k = 0; k < a->orders; ++k) {
        const FN(order_view) o = FN(view_of)(a, row, k);
        FN(load_block)(a, row, k, c0, o.reads, raw, dt, du, x, A, A2, width);
        memset(y, 0, sizeof(REAL) * L * LANES);
        int64_t s0 = 0;
        for (; s0 + STATE_BLOCK <= n; s0 += STATE_BLOCK)
            FN(forward_states)(&o, L, dt, du, A2, y, s0, STATE_BLOCK);
        if (s0 < n)
            FN(forward_states)(&o, L, dt, du, A2, y, s0, n - s0);
        REAL D[LANES];
        for (int64_t v = 0; v < LANES; ++v)
            D[v] = a->D && v < width ? a->D[k * d + c0 + v] : 0;
        for (int64_t t = 0; t < L; ++t) {
            REAL *restrict out = a->out + (row * L + o.slots[t]) * d + c0;
#pragma omp simd
            for (int64_t v = 0; v < width; ++v)
                out[v] += y[t * LANES + v] + D[v] * x[t * LANES + v];
        }
    }
}

static void FN(forward_unit)(const FN(ordered_args) *a, int64_t row, int64_t c0, REAL *work) {
    if (a->channels - c0 >= LANES)
        FN(forward_block)(a, row, c0, work, LANES);
    else
        FN(forward_block)(a, row, c0, work, a->channels - c0);
}

/* The adjoint over states s0 .. s0 + nb - 1 of one (row, order, channel block): recomputes the states and decays
 * into hs and es (L, nb, LANES), then sweeps back; adds to s_input[t] = sum_s B_t,s g_t,s and s_decay[t] =
 * sum_s A_s q_t,s (q = g e h_{t-1}), to the lane partials of grad_B / grad_C (gB, gC: (L, n, LANES)) and to
 * grad_A2 (n, LANES) (the gradient of A). */
INLINE void FN(backward_states)(const FN(order_view) *o, int64_t L, int64_t n, const REAL *dt, const REAL *du,
                                const REAL *gy, const REAL *A_lanes, const REAL *A2, REAL *restrict hs, REAL *restrict es,
                                REAL *restrict s_input, REAL *restrict s_decay, REAL *restrict gB,
                                REAL *restrict gC, REAL *restrict grad_A, int64_t s0, const int64_t nb) {
    REAL h[nb][LANES], G[nb][LANES], gA[nb][LANES], zeros[nb][LANES];
    const REAL *A = A_lanes + s0 * LANES;
    memset(h, 0, sizeof(h));
    memset(G, 0, sizeof(G));
    memset(gA, 0, sizeof(gA));
    memset(zeros, 0, sizeof(zeros));
    for (int64_t t = 0; t < L; ++t) {
        const REAL *Bt = o->B + o->reads[t] * o->stride + s0;
        for (int64_t j = 0; j < nb; ++j) {
            const REAL bj = Bt[j];
#pragma omp simd
            for (int64_t v = 0; v < LANES; ++v) {
                const REAL e = scan_exp2(dt[t * LANES + v] * A2[(s0 + j) * LANES + v]);
                h[j][v] = e * h[j][v] + du[t * LANES + v] * bj;
                hs[(t * nb + j) * LANES + v] = h[j][v];
                es[(t * nb + j) * LANES + v] = e;
            }
        }
    }
    for (int64_t t = L - 1; t >= 0; --t) {
        const int64_t p = o->reads[t];
        const REAL *Bt = o->B + p * o->stride + s0, *Ct = o->C + p * o->stride + s0;
        const REAL *prev = t ? hs + (t - 1) * nb * LANES : &zeros[0][0];
        REAL si[LANES] = {0}, sd[LANES] = {0};
        for (int64_t j = 0; j < nb; ++j) {
            const REAL bj = Bt[j], cj = Ct[j];
            REAL *restrict gBt = gB + (t * n + s0 + j) * LANES, *restrict gCt = gC + (t * n + s0 + j) * LANES;
            const REAL *ht = hs + (t * nb + j) * LANES, *et = es + (t * nb + j) * LANES, *hp = prev + j * LANES;
#pragma omp simd
            for (int64_t v = 0; v < LANES; ++v) {
                const REAL g = G[j][v] + gy[t * LANES + v] * cj, q = g * et[v] * hp[v];
                gCt[v] += gy[t * LANES + v] * ht[v];
                gBt[v] += du[t * LANES + v] * g;
                si[v] += bj * g;
                sd[v] += q * A[j * LANES + v];
                gA[j][v] += q * dt[t * LANES + v];
                G[j][v] = g * et[v];
            }
        }
#pragma omp simd
        for (int64_t v = 0; v < LANES; ++v) {
            s_input[t * LANES + v] += si[v];
            s_decay[t * LANES + v] += sd[v];
        }
    }
    for (int64_t j = 0; j < nb; ++j)
        for (int64_t v = 0; v < LANES; ++v)
            grad_A[(s0 + j) * LANES + v] += gA[j][v];
}

/* Thread-local buffers of the backward (see backward_work for their sizes). */
typedef struct {
    REAL *raw, *dt, *du, *x, *gy, *s_input, *s_decay, *A, *A2, *grad_A, *hs, *es, *gB, *gC;
} FN(backward_buffers);

/* The adjoint of one (row, order, channel block): everything but grad_B and grad_C, whose lane partials it adds to
 * gB and gC. */
INLINE void FN(backward_block)(const FN(ordered_args) *a, const FN(order_view) *o, int64_t row, int64_t k, int64_t c0,
                               int64_t thread, const FN(backward_buffers) *w, const int64_t width) {
    const int64_t L = a->length, d = a->channels, n = a->state, K = a->orders;
    REAL *restrict gy = w->gy, *restrict x = w->x, *restrict s_input = w->s_input, *restrict s_decay = w->s_decay;
    const REAL *restrict dt = w->dt;
    FN(load_block)(a, row, k, c0, o->reads, w->raw, w->dt, w->du, x, w->A, w->A2, width);
    REAL grad_D[LANES] = {0}, D[LANES];
    for (int64_t v = 0; v < LANES; ++v)
        D[v] = a->D && v < width ? a->D[k * d + c0 + v] : 0;
    for (int64_t t = 0; t < L; ++t) {
        const REAL *restrict g = a->grad_out + (row * L + o->slots[t]) * d + c0;
        for (int64_t v = 0; v < LANES; ++v) {
            gy[t * LANES + v] = v < width ? g[v] : 0;
            grad_D[v] += gy[t * LANES + v] * x[t * LANES + v];
        }
    }
    memset(s_input, 0, sizeof(REAL) * L * LANES);
    memset(s_decay, 0, sizeof(REAL) * L * LANES);
    memset(w->grad_A, 0, sizeof(REAL) * n * LANES);
    int64_t s0 = 0;
    for (; s0 + STATE_BLOCK <= n; s0 += STATE_BLOCK)
        FN(backward_states)(o, L, n, w->dt, w->du, gy, w->A, w->A2, w->hs, w->es, s_input, s_decay, w->gB, w->gC,
                            w->grad_A, s0, STATE_BLOCK);
    if (s0 < n)
        FN(backward_states)(o, L, n, w->dt, w->du, gy, w->A, w->A2, w->hs, w->es, s_input, s_decay, w->gB, w->gC,
                            w->grad_A, s0, n - s0);
    /* through the step: d dt / d delta = sigmoid(delta + bias) under softplus, else 1 */
    REAL grad_bias[LANES] = {0};
    const int softplus_step = (int)a->delta_softplus;
    const REAL *restrict raw = w->raw;
    for (int64_t t = 0; t < L; ++t) {
        const int64_t p = o->reads[t];
        REAL *restrict grad_u = a->grad_u + (row * L + p) * d + c0;
        REAL *restrict grad_delta = a->grad_delta + ((k * a->batch + row) * L + p) * d + c0;
        REAL gd[LANES], gu[LANES];
#pragma omp simd
        for (int64_t v = 0; v < LANES; ++v) {
            const REAL sig = sigmoid(raw[t * LANES + v]), slope = softplus_step ? sig : (REAL)1;
            gd[v] = (s_input[t * LANES + v] * x[t * LANES + v] + s_decay[t * LANES + v]) * slope;
            gu[v] = s_input[t * LANES + v] * dt[t * LANES + v] + gy[t * LANES + v] * D[v];
            grad_bias[v] += gd[v];
        }
        for (int64_t v = 0; v < width; ++v) {
            grad_delta[v] += gd[v];
            grad_u[v] += gu[v];
        }
    }
    for (int64_t v = 0; v < width; ++v) {
        const int64_t c = k * d + c0 + v;
        if (a->grad_D)
            a->grad_D[thread * K * d + c] += grad_D[v];
        if (a->grad_delta_bias)
            a->grad_delta_bias[thread * K * d + c] += grad_bias[v];
        for (int64_t s = 0; s < n; ++s)
            a->grad_A[(thread * K * d + c) * n + s] += w->grad_A[s * LANES + v];
    }
}

/* One row's adjoint. */
static void FN(backward_unit)(const FN(ordered_args) *a, int64_t row, int64_t thread, REAL *work) {
    const int64_t L = a->length, d = a->channels, n = a->state, K = a->orders;
    FN(backward_buffers) w;
    w.raw = work, w.dt = w.raw + L * LANES, w.du = w.dt + L * LANES, w.x = w.du + L * LANES, w.gy = w.x + L * LANES;
    w.s_input = w.gy + L * LANES, w.s_decay = w.s_input + L * LANES, w.A = w.s_decay + L * LANES;
    w.A2 = w.A + n * LANES, w.grad_A = w.A2 + n * LANES, w.hs = w.grad_A + n * LANES;
    w.es = w.hs + L * STATE_BLOCK * LANES, w.gB = w.es + L * STATE_BLOCK * LANES, w.gC = w.gB + L * n * LANES;
    for (int64_t k = 0; k < K; ++k) {
        const FN(order_view) o = FN(view_of)(a, row, k);
        memset(w.gB, 0, sizeof(REAL) * 2 * L * n * LANES);
        for (int64_t c0 = 0; c0 < d; c0 += LANES) {
            if (d - c0 >= LANES)
                FN(backward_block)(a, &o, row, k, c0, thread, &w, LANES);
            else
                FN(backward_block)(a, &o, row, k, c0, thread, &w, d - c0);
        }
        for (int64_t t = 0; t < L; ++t) {
            const int64_t at = (row * L + o.reads[t]) * K * n + k * n;
            for (int64_t s = 0; s < n; ++s) {
                REAL sum_b = 0, sum_c = 0;
#pragma omp simd reduction(+ : sum_b, sum_c)
                for (int64_t v = 0; v < LANES; ++v) {
                    sum_b += w.gB[(t * n + s) * LANES + v];
                    sum_c += w.gC[(t * n + s) * LANES + v];
                }
                a->grad_B[at + s] += sum_b;
                a->grad_C[at + s] += sum_c;
            }
        }
    }
}

static size_t FN(backward_work)(const FN(ordered_args) *a) {
    const size_t L = (size_t)a->length, n = (size_t)a->state;
    return (7 * L + 3 * n + 2 * L * STATE_BLOCK + 2 * L * n) * LANES;
}

/* Forward units: (row, block of LANES channels); backward units: rows (see the top of the file). */
static void FN(forward_item)(const void *args, int64_t i, int thread, REAL *work) {
    const FN(ordered_args) *a = (const FN(ordered_args) *)args;
    const int64_t blocks = (a->channels + LANES - 1) / LANES;
    (void)thread;
    FN(forward_unit)(a, i / blocks, (i % blocks) * LANES, work);
}

static void FN(backward_item)(const void *args, int64_t i, int thread, REAL *work) {
    FN(backward_unit)((const FN(ordered_args) *)args, i, thread, work);
}

static int FN(run_ordered)(const FN(ordered_args) *a, int backward) {
    const int64_t blocks = (a->channels + LANES - 1) / LANES;
    if (backward)
        return FN(run_units)(a->batch, a->threads, FN(backward_work)(a), FN(backward_item), a);
    return FN(run_units)(a->batch * blocks, a->threads, (size_t)(5 * a->length + 2 * a->state) * LANES,
                         FN(forward_item), a);
}

int FN(ordered_forward)(const FN(ordered_args) *args) { return FN(run_ordered)(args, 0); }

int FN(ordered_backward)(const FN(ordered_args) *args) { return FN(run_ordered)(args, 1); }
