// Fused multi-head attention for T5 training: forward and backward in one
// pass per (batch item, head).
//
// Why it exists: composed from tfjs ops, one attention layer is ~10
// memory-bound passes over [B*L, H*dk] and [B, H, Lq, Lk] tensors (head
// transposes, small batched products, the materialised bias = position bias
// + padding mask, softmax, the dropout multiply) and as many again for the
// gradients, including a broadcast-reduce of the bias gradient over the
// batch. At T5-for-P5 sizes (L ~ 50, dk 16-32) each (b, h) block fits in L1/L2,
// so one task per block copies its Q, K, V rows out of the projections
// (row strides: separate, fused QKV or KV) into packed scratch, runs the
// products in the SGEMM micro-kernels, writes O straight into [B*Lq, H*dk]
// and keeps everything else in cache.
//
// Saved for backward: P = softmax(S) (before dropout), [B, H, Lq, Lk]. It is
// the one [Lq, Lk]-sized tensor kept per layer (the composed path keeps
// scores, probabilities and the dropout mask); recomputing it would cost
// Q K^T and the exps again in backward. The dropout mask is recomputed from
// its counter (two integer hashes per element) instead of stored.
//
// Numbers: the same formulas as the composed path (S + (bias + mask),
// max-shifted softmax, P * mask multiplier), float32 throughout; the
// products run in the same SGEMM micro-kernels (per block, not batched), so
// results agree to float32 rounding, the dropout bits exactly.
#include "attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "gemm.h"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define P5_ATTN_X86 1
#define P5_ATTN_AVX2 __attribute__((target("avx2,fma")))
#else
#define P5_ATTN_X86 0
#endif

namespace p5 {

namespace {

/** Dropout multipliers of elements base .. base+n-1 (a block's [Lq, Lk]; gemm.cc's dropout_mults: the same bits, widened). */
inline void drop_block(const AttnDropout& d, uint32_t base, int64_t n, float* out) {
  dropout_mults(out, base, n, d.a, d.b, d.threshold, d.keep);
}

/**
 * exp(x) for x <= 0 (scores after the max is subtracted), branch-free so the
 * compiler widens the softmax loop (std::exp stays a scalar call): x = n ln2 + r,
 * a degree-6 polynomial for e^r, 2^n from the exponent bits; ~2 ulp, 0 below
 * -87.3 (the same reduction and constants as gemm.cc's AVX-512 softmax).
 */
inline float exp_nonpos(float x) {
  const float xc = x < -87.33654f ? -87.33654f : x;
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + (r + 1.0f);
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x < -87.33654f ? 0.0f : p * scale;
}

struct Job {
  const AttnShape* s;
  const float *q, *k, *v, *bias, *mask, *p, *dout;
  const AttnDropout* drop;
  float *o, *pout, *dq, *dk, *dv;
  float* ds;  // backward with a bias gradient: dS per (b, h), [B, H, Lq, Lk]
  float* dbias;
  int64_t per;  // bias reduction: elements per task
};

/** Per-thread scratch, grown on demand (a few KB at T5 sizes). */
float* scratch(size_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

/** Columns j < this are computed for query row i (the rest is causal-masked). */
inline int64_t keys_for(const AttnShape& s, int64_t i) { return s.causal ? std::min(s.Lk, i + 1) : s.Lk; }

/** Copy n rows of w floats from a strided source (row stride ld) into a packed [n, w] block, or back. */
inline void gather_rows(const float* src, int64_t ld, int64_t n, int64_t w, float* dst) {
  for (int64_t r = 0; r < n; ++r) std::memcpy(dst + r * w, src + r * ld, static_cast<size_t>(w) * sizeof(float));
}
inline void scatter_rows(const float* src, int64_t n, int64_t w, float* dst, int64_t ld) {
  for (int64_t r = 0; r < n; ++r) std::memcpy(dst + r * ld, src + r * w, static_cast<size_t>(w) * sizeof(float));
}

/** C [M, N] = op(A) op(B) on this thread (the products are far below sgemm's threshold for the pool). */
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C) {
  sgemm(ta, tb, M, N, K, 1.0f, A, 0, B, 0, 0.0f, C, 0, 1, Epilogue{});
}

// The products run in the engine's SGEMM micro-kernels on packed copies of
// the block's Q, K, V (a few KB); the elementwise loops between them run
// over contiguous floats without a reduction, so the compiler widens them
// (the AVX2 copies below are the same code compiled for AVX2 + FMA).
__attribute__((always_inline)) inline void forward_block(const Job& jb, int64_t t) {
  const AttnShape& s = *jb.s;
  const int64_t b = t / s.H, h = t % s.H, Lq = s.Lq, Lk = s.Lk, dk = s.dk, HD = s.H * s.dk;
  const float* bias = jb.bias ? jb.bias + h * Lq * Lk : nullptr;
  const float* mask = jb.mask ? jb.mask + b * Lk : nullptr;
  const AttnDropout& drop = *jb.drop;
  float* P = jb.pout + t * Lq * Lk;
  // Q, K, V packed [L, dk]; O [Lq, dk]; dropout(P) [Lq, Lk]
  float* Qp = scratch(static_cast<size_t>(2 * Lq * dk + 2 * Lk * dk + Lq * Lk));
  float* Kp = Qp + Lq * dk;
  float* Vp = Kp + Lk * dk;
  float* Op = Vp + Lk * dk;
  float* Pd = Op + Lq * dk;
  gather_rows(jb.q + b * Lq * s.q_stride + h * dk, s.q_stride, Lq, dk, Qp);
  gather_rows(jb.k + b * Lk * s.k_stride + h * dk, s.k_stride, Lk, dk, Kp);
  gather_rows(jb.v + b * Lk * s.v_stride + h * dk, s.v_stride, Lk, dk, Vp);
  gemm(false, true, Lq, Lk, dk, Qp, Kp, P);  // S = Q K^T
  for (int64_t i = 0; i < Lq; ++i) {
    const int64_t jn = keys_for(s, i);
    float* row = P + i * Lk;
    // S + (bias + mask): the composed path adds the pre-summed bias tensor
    const float* brow = bias ? bias + i * Lk : nullptr;
    if (brow && mask) for (int64_t j = 0; j < jn; ++j) row[j] += brow[j] + mask[j];
    else if (brow) for (int64_t j = 0; j < jn; ++j) row[j] += brow[j];
    else if (mask) for (int64_t j = 0; j < jn; ++j) row[j] += mask[j];
    float mx = -INFINITY;
    for (int64_t j = 0; j < jn; ++j) mx = std::max(mx, row[j]);
    for (int64_t j = 0; j < jn; ++j) row[j] = exp_nonpos(row[j] - mx);
    float sum = 0.0f;
    for (int64_t j = 0; j < jn; ++j) sum += row[j];
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < jn; ++j) row[j] *= inv;
    for (int64_t j = jn; j < Lk; ++j) row[j] = 0.0f;
  }
  if (drop.on) {
    drop_block(drop, static_cast<uint32_t>(t * Lq * Lk), Lq * Lk, Pd);
    for (int64_t e = 0; e < Lq * Lk; ++e) Pd[e] *= P[e];
  }
  gemm(false, false, Lq, dk, Lk, drop.on ? Pd : P, Vp, Op);  // O = dropout(P) V
  scatter_rows(Op, Lq, dk, jb.o + b * Lq * HD + h * dk, HD);
}

__attribute__((always_inline)) inline void backward_block(const Job& jb, int64_t t) {
  const AttnShape& s = *jb.s;
  const int64_t b = t / s.H, h = t % s.H, Lq = s.Lq, Lk = s.Lk, dk = s.dk, HD = s.H * s.dk;
  const float* P = jb.p + t * Lq * Lk;
  const AttnDropout& drop = *jb.drop;
  // Q, K, V, dO packed; dQ, dK, dV packed; dropout(P), dS and the dropout multipliers [Lq, Lk]
  float* Qp = scratch(static_cast<size_t>(3 * Lq * dk + 4 * Lk * dk + 3 * Lq * Lk));
  float* Kp = Qp + Lq * dk;
  float* Vp = Kp + Lk * dk;
  float* dOp = Vp + Lk * dk;
  float* gQ = dOp + Lq * dk;
  float* gK = gQ + Lq * dk;
  float* gV = gK + Lk * dk;
  float* Pd = gV + Lk * dk;
  float* dS = jb.ds ? jb.ds + t * Lq * Lk : Pd + Lq * Lk;  // written straight into the bias-gradient blocks
  float* M = Pd + 2 * Lq * Lk;  // hashed once, used for dropout(P) and for dP
  gather_rows(jb.q + b * Lq * s.q_stride + h * dk, s.q_stride, Lq, dk, Qp);
  gather_rows(jb.k + b * Lk * s.k_stride + h * dk, s.k_stride, Lk, dk, Kp);
  gather_rows(jb.v + b * Lk * s.v_stride + h * dk, s.v_stride, Lk, dk, Vp);
  gather_rows(jb.dout + b * Lq * HD + h * dk, HD, Lq, dk, dOp);
  if (drop.on) {
    drop_block(drop, static_cast<uint32_t>(t * Lq * Lk), Lq * Lk, M);
    for (int64_t e = 0; e < Lq * Lk; ++e) Pd[e] = P[e] * M[e];
  }
  gemm(true, false, Lk, dk, Lq, drop.on ? Pd : P, dOp, gV);  // dV = dropout(P)^T dO
  gemm(false, true, Lq, Lk, dk, dOp, Vp, dS);                // dPd = dO V^T
  for (int64_t i = 0; i < Lq; ++i) {
    const int64_t jn = keys_for(s, i);
    const float* prow = P + i * Lk;
    float* dp = dS + i * Lk;
    if (drop.on) {
      const float* m = M + i * Lk;
      for (int64_t j = 0; j < jn; ++j) dp[j] *= m[j];
    }
    // softmax: dS = P * (dP - sum(dP * P))
    float r = 0.0f;
    for (int64_t j = 0; j < jn; ++j) r += dp[j] * prow[j];
    for (int64_t j = 0; j < jn; ++j) dp[j] = prow[j] * (dp[j] - r);
    for (int64_t j = jn; j < Lk; ++j) dp[j] = 0.0f;
  }
  gemm(false, false, Lq, dk, Lk, dS, Kp, gQ);  // dQ = dS K
  gemm(true, false, Lk, dk, Lq, dS, Qp, gK);   // dK = dS^T Q
  scatter_rows(gQ, Lq, dk, jb.dq + b * Lq * s.q_stride + h * dk, s.q_stride);
  scatter_rows(gK, Lk, dk, jb.dk + b * Lk * s.k_stride + h * dk, s.k_stride);
  scatter_rows(gV, Lk, dk, jb.dv + b * Lk * s.v_stride + h * dk, s.v_stride);
}

void forward_scalar(const Job& jb, int64_t t) { forward_block(jb, t); }
void backward_scalar(const Job& jb, int64_t t) { backward_block(jb, t); }
#if P5_ATTN_X86
P5_ATTN_AVX2 void forward_avx2(const Job& jb, int64_t t) { forward_block(jb, t); }
P5_ATTN_AVX2 void backward_avx2(const Job& jb, int64_t t) { backward_block(jb, t); }
#endif

void forward_task(void* ctx, int64_t t) {
  const Job& jb = *static_cast<const Job*>(ctx);
#if P5_ATTN_X86
  if (current_isa() != Isa::scalar) return forward_avx2(jb, t);
#endif
  forward_scalar(jb, t);
}

void backward_task(void* ctx, int64_t t) {
  const Job& jb = *static_cast<const Job*>(ctx);
#if P5_ATTN_X86
  if (current_isa() != Isa::scalar) return backward_avx2(jb, t);
#endif
  backward_scalar(jb, t);
}

/** d(bias)[e] = sum over b of dS[b][e] (e over [H, Lq, Lk]), b in order: the same bits on any thread count. */
void bias_reduce_task(void* ctx, int64_t t) {
  const Job& jb = *static_cast<const Job*>(ctx);
  const AttnShape& s = *jb.s;
  const int64_t n = s.H * s.Lq * s.Lk;
  const int64_t e0 = t * jb.per, e1 = std::min(n, e0 + jb.per);
  for (int64_t e = e0; e < e1; ++e) jb.dbias[e] = 0.0f;
  for (int64_t b = 0; b < s.B; ++b) {
    const float* src = jb.ds + b * n;
    for (int64_t e = e0; e < e1; ++e) jb.dbias[e] += src[e];
  }
}

}  // namespace

void attention_forward(const AttnShape& s, const float* q, const float* k, const float* v, const float* bias,
                       const float* mask, const AttnDropout& drop, float* o, float* p) {
  if (s.B <= 0 || s.H <= 0 || s.Lq <= 0) return;
  Job jb{};
  jb.s = &s;
  jb.q = q, jb.k = k, jb.v = v, jb.bias = bias, jb.mask = mask, jb.drop = &drop, jb.o = o, jb.pout = p;
  run_tasks(s.B * s.H, &forward_task, &jb);
}

void attention_backward(const AttnShape& s, const float* q, const float* k, const float* v, const float* p,
                        const float* dout, const AttnDropout& drop, float* dq, float* dk, float* dv, float* dbias) {
  if (s.B <= 0 || s.H <= 0) return;
  Job jb{};
  jb.s = &s;
  jb.q = q, jb.k = k, jb.v = v, jb.p = p, jb.dout = dout, jb.drop = &drop, jb.dq = dq, jb.dk = dk, jb.dv = dv;
  const int64_t n = s.H * s.Lq * s.Lk;
  std::vector<float> ds;
  if (dbias && n > 0) {
    ds.resize(static_cast<size_t>(s.B * n));
    jb.ds = ds.data();
  }
  run_tasks(s.B * s.H, &backward_task, &jb);
  if (!dbias || n == 0) return;
  // a fixed number of element ranges (not one per thread): bits never depend on the pool size
  jb.dbias = dbias;
  jb.per = std::max<int64_t>(1024, (n + 15) / 16);
  run_tasks((n + jb.per - 1) / jb.per, &bias_reduce_task, &jb);
}

}  // namespace p5
