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

/** Threads used (the caller counts as one). */
int threads();
/** Resizes the pool (n >= 1); returns the new count. Must not race with a running call. */
int set_threads(int n);

}  // namespace p5
