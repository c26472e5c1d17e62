// p5rec native kernels: SGEMM, softmax and RMSNorm for float32, row-major.
//
// Everything here is plain C++17 plus GCC/Clang intrinsics; the SIMD
// micro-kernels are compiled with per-function target attributes and picked
// at load time (see gemm.cc), so the binary runs on any x86-64 (and builds
// with only the scalar kernels elsewhere).
#pragma once

#include <cstddef>
#include <cstdint>

namespace p5 {

enum class Isa { scalar = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);
/** Best ISA the CPU (and compiler) supports. */
Isa detect_isa();
/** The ISA in use now. */
Isa current_isa();
/** Uses `want` if the CPU supports it, else the best lower one; returns what is used. */
Isa set_isa(Isa want);

enum Activation { act_linear = 0, act_relu = 1, act_relu6 = 2, act_sigmoid = 3, act_elu = 4, act_leakyrelu = 5 };

struct Epilogue {
  /** bias added to every row: bias[j] if bias_len == N, bias[0] if bias_len == 1; null = none */
  const float* bias = nullptr;
  int64_t bias_len = 0;
  int act = act_linear;
  float act_alpha = 0.2f;  // leakyrelu slope
};

/**
 * For b in [0, batch):
 *   C_b = epilogue(alpha * op(A_b) * op(B_b) + beta * C_b)
 * with A_b = A + b*sa, B_b = B + b*sb, C_b = C + b*sc (element strides; 0 =
 * the same matrix for every b). Row-major, contiguous: op(A) is M x K (A is
 * M x K, or K x M when trans_a), op(B) is K x N (B is K x N, or N x K when
 * trans_b), C is M x N. With beta == 0, C is not read. C must not overlap A
 * or B. Runs on the pool (see set_threads) when the product is big enough.
 */
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t sa,
           const float* B, int64_t sb, float beta, float* C, int64_t sc, int64_t batch, const Epilogue& epi);

/** Row-wise: y[r, :] = softmax(x[r, :]) for r < rows; y may equal x (in place). */
void softmax_rows(const float* x, float* y, int64_t rows, int64_t cols);

/** y[r, :] = x[r, :] * w / sqrt(mean(x[r, :]^2) + eps); w may be null (= 1). y may equal x. */
void rmsnorm_rows(const float* x, const float* w, float* y, int64_t rows, int64_t cols, float eps);

/** Inverted-dropout multipliers (0 or keep), element i from mix32(mix32(i ^ a) ^ b) (c, d unused), as model.ts's dropoutMask. */
void dropout_mask(float* y, int64_t n, uint32_t a, uint32_t b, uint32_t c, uint32_t d, int32_t threshold, float keep);

/** The same multipliers for elements start, start+1, … (n of them, counters mod 2^32) on this thread: y[i] is element start+i's. */
void dropout_mults(float* y, uint32_t start, int64_t n, uint32_t a, uint32_t b, int32_t threshold, float keep);

/** RMSNorm with the per-row factor: r[i] = 1/sqrt(mean(x_i^2) + eps), y_i = x_i * r[i] * w. */
void rmsnorm_forward(const float* x, const float* w, float* y, float* r, int64_t rows, int64_t cols, float eps);

/**
 * Its gradient: g = dy*w, xh = x*r, dx = r*(g - xh*mean(g*xh)) per row, dw = sum over rows of dy*xh.
 * dx must not overlap the inputs.
 */
void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* r, float* dx, float* dw, int64_t rows,
                      int64_t cols);

/**
 * Weighted softmax cross-entropy: lse[i] = logsumexp(x_i); returns
 * sum_i weight[i] * (lse[i] - x[i, target[i]]) (targets must be in [0, cols)).
 */
double xent_forward(const float* x, const int32_t* target, const float* weight, float* lse, int64_t rows, int64_t cols);

/** Its gradient: dx_i = dy * weight[i] * (exp(x_i - lse[i]) - onehot(target[i])). */
void xent_backward(const float* x, const int32_t* target, const float* weight, const float* lse, float dy, float* dx,
                   int64_t rows, int64_t cols);

/**
 * AdamW over [0, n): exactly the JS loop of src/train/adamw.ts (double
 * arithmetic in the same order, float32 stores, no FMA), split over the pool.
 * grad_scale (1 = none) multiplies each gradient first, rounded to float32.
 */
void adamw(float* params, float* grads, float* m, float* v, int64_t n, double beta1, double beta2, double eps,
           double keep, double step_size, double sqrt_bc2, double grad_scale);

/** Runs fn(ctx, t) for t in [0, n) on the pool (the caller works too). */
void run_tasks(int64_t n, void (*fn)(void* ctx, int64_t task), void* ctx);

/** Threads used (the caller counts as one). */
int threads();
/** Resizes the pool (n >= 1); returns the new count. Must not race with a running call. */
int set_threads(int n);

}  // namespace p5
