// SGEMM (packed panels, Goto/BLIS loop order), softmax and RMSNorm.
//
// Three micro-kernels compute an MR x NR tile of C from packed slivers of A
// (MR rows, k-major) and B (NR columns, k-major):
//   avx512:  8 x 32, 16 zmm accumulators   (target("avx512f"))
//   avx2:    6 x 16, 12 ymm accumulators   (target("avx2,fma"))
//   scalar:  4 x 8, plain C++ (the compiler's baseline vectorisation)
// Only the micro-kernels (and the SIMD softmax / RMSNorm loops) carry target
// attributes; the rest is baseline x86-64 code, and the kernel set is chosen
// once at load time with __builtin_cpu_supports.
#include "gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "pool.h"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define P5_X86 1
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 bug 105593: the AVX-512 intrinsics' _mm512_undefined_ps() trips these.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#define P5_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define P5_AVX2 __attribute__((target("avx2,fma")))
#else
#define P5_X86 0
#endif

namespace p5 {

namespace {

// ------------------------------------------------------------------ blocking
constexpr int64_t KC = 256;   // depth of a packed panel
constexpr int64_t MC = 144;   // rows of A packed at once (multiple of every MR)
constexpr int64_t NC = 3072;  // columns of B packed at once (multiple of every NR)
constexpr size_t kAlign = 64;

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
using Buf = std::unique_ptr<float, AlignedFree>;

float* alloc_floats(size_t n) {
  size_t bytes = (n * sizeof(float) + kAlign - 1) / kAlign * kAlign;
  void* p = nullptr;
  if (posix_memalign(&p, kAlign, bytes) != 0) std::abort();
  return static_cast<float*>(p);
}

/** Per-thread packing buffers (the JS thread, the pool's workers). */
struct PackBuffers {
  Buf a{alloc_floats(static_cast<size_t>(MC * KC))};
  Buf b{alloc_floats(static_cast<size_t>(KC * NC))};
};

PackBuffers& pack_buffers() {
  thread_local PackBuffers bufs;
  return bufs;
}

// ------------------------------------------------------------------ packing
/**
 * Packs rows [i0, i0+mc) x depth [k0, k0+kc) of op(A) into MR-row slivers:
 * dst[s*MR*kc + k*MR + r] = op(A)(i0 + s*MR + r, k0 + k), zero-padded rows.
 */
template <int MR>
void pack_a(bool trans, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* dst) {
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int m = static_cast<int>(std::min<int64_t>(MR, mc - ir));
    if (!trans) {
      // op(A)(i, k) = A[i*lda + k]: MR row streams, interleaved.
      const float* src = A + (i0 + ir) * lda + k0;
      if (m == MR) {
        for (int64_t k = 0; k < kc; ++k)
          for (int r = 0; r < MR; ++r) dst[k * MR + r] = src[r * lda + k];
      } else {
        for (int64_t k = 0; k < kc; ++k) {
          for (int r = 0; r < m; ++r) dst[k * MR + r] = src[r * lda + k];
          for (int r = m; r < MR; ++r) dst[k * MR + r] = 0.0f;
        }
      }
    } else {
      // op(A)(i, k) = A[k*lda + i]: MR contiguous floats per k.
      const float* src = A + k0 * lda + i0 + ir;
      for (int64_t k = 0; k < kc; ++k) {
        const float* s = src + k * lda;
        float* d = dst + k * MR;
        if (m == MR) {
          std::memcpy(d, s, MR * sizeof(float));
        } else {
          for (int r = 0; r < m; ++r) d[r] = s[r];
          for (int r = m; r < MR; ++r) d[r] = 0.0f;
        }
      }
    }
    dst += MR * kc;
  }
}

/**
 * Packs depth [k0, k0+kc) x columns [j0, j0+nc) of op(B) into NR-column
 * slivers: dst[s*NR*kc + k*NR + c] = op(B)(k0 + k, j0 + s*NR + c), zero-padded.
 */
template <int NR>
void pack_b(bool trans, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int n = static_cast<int>(std::min<int64_t>(NR, nc - jr));
    if (!trans) {
      // op(B)(k, j) = B[k*ldb + j]: NR contiguous floats per k.
      const float* src = B + k0 * ldb + j0 + jr;
      for (int64_t k = 0; k < kc; ++k) {
        const float* s = src + k * ldb;
        float* d = dst + k * NR;
        if (n == NR) {
          std::memcpy(d, s, NR * sizeof(float));
        } else {
          for (int c = 0; c < n; ++c) d[c] = s[c];
          for (int c = n; c < NR; ++c) d[c] = 0.0f;
        }
      }
    } else {
      // op(B)(k, j) = B[j*ldb + k]: NR column streams, interleaved.
      const float* src = B + (j0 + jr) * ldb + k0;
      if (n == NR) {
        for (int64_t k = 0; k < kc; ++k)
          for (int c = 0; c < NR; ++c) dst[k * NR + c] = src[c * ldb + k];
      } else {
        for (int64_t k = 0; k < kc; ++k) {
          for (int c = 0; c < n; ++c) dst[k * NR + c] = src[c * ldb + k];
          for (int c = n; c < NR; ++c) dst[k * NR + c] = 0.0f;
        }
      }
    }
    dst += NR * kc;
  }
}

#if P5_X86
// AVX-512 versions of the two transposing pack cases (op(A) = A, op(B) = B^T):
// 16 x 16 in-register transposes instead of one scalar move per element.

/** r[i] = row i (16 floats) -> r[c] = column c. */
P5_AVX512 inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // u[4i+j], 128-bit lane L: column 4L+j of rows 4i..4i+3
    u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int j = 0; j < 4; ++j) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
    const __m512 v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
    const __m512 v2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
    const __m512 v3 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
    r[j] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
    r[4 + j] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
  }
}

template <int MR>
P5_AVX512 void pack_a_avx512(bool trans, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                             float* dst) {
  static_assert(MR <= 16, "one 16 x 16 transpose per 16 k");
  if (trans) {
    pack_a<MR>(trans, A, lda, i0, mc, k0, kc, dst);
    return;
  }
  const int64_t full = mc / MR * MR;
  const int64_t k16 = kc / 16 * 16;
  for (int64_t ir = 0; ir < full; ir += MR) {
    const float* src = A + (i0 + ir) * lda + k0;
    float* d = dst + ir * kc;
    for (int64_t k = 0; k < k16; k += 16) {
      __m512 r[16];
      for (int i = 0; i < MR; ++i) r[i] = _mm512_loadu_ps(src + i * lda + k);
      for (int i = MR; i < 16; ++i) r[i] = _mm512_setzero_ps();
      transpose16(r);
      for (int kk = 0; kk < 16; ++kk) _mm512_mask_storeu_ps(d + (k + kk) * MR, static_cast<__mmask16>((1u << MR) - 1), r[kk]);
    }
    for (int64_t k = k16; k < kc; ++k)
      for (int i = 0; i < MR; ++i) d[k * MR + i] = src[i * lda + k];
  }
  if (full < mc) pack_a<MR>(trans, A, lda, i0 + full, mc - full, k0, kc, dst + full * kc);
}

P5_AVX512 void pack_b_avx512(bool trans, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
                             float* dst) {
  constexpr int NR = 32;
  if (!trans) {
    pack_b<NR>(trans, B, ldb, k0, kc, j0, nc, dst);
    return;
  }
  const int64_t full = nc / NR * NR;
  const int64_t k16 = kc / 16 * 16;
  for (int64_t jr = 0; jr < full; jr += NR) {
    const float* src = B + (j0 + jr) * ldb + k0;
    float* d = dst + jr * kc;
    for (int64_t k = 0; k < k16; k += 16) {
      for (int h = 0; h < 2; ++h) {
        __m512 r[16];
        for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + (16 * h + i) * ldb + k);
        transpose16(r);
        for (int kk = 0; kk < 16; ++kk) _mm512_storeu_ps(d + (k + kk) * NR + 16 * h, r[kk]);
      }
    }
    for (int64_t k = k16; k < kc; ++k)
      for (int c = 0; c < NR; ++c) d[k * NR + c] = src[c * ldb + k];
  }
  if (full < nc) pack_b<NR>(trans, B, ldb, k0, kc, j0 + full, nc - full, dst + full * kc);
}
#endif

// ------------------------------------------------------------------ micro-kernels
// c (m x n valid of an MR x NR tile, row stride ldc) =
//   alpha * sum_k a[k*MR + r] * b[k*NR + j]  (+ beta * c when beta != 0)

using Ukr = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n, float alpha,
                     float beta);

template <int MR, int NR>
void ukr_scalar(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n, float alpha,
                float beta) {
  float acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int r = 0; r < MR; ++r) {
      const float ar = a[k * MR + r];
      for (int j = 0; j < NR; ++j) acc[r][j] += ar * b[k * NR + j];
    }
  }
  for (int r = 0; r < m; ++r) {
    float* cr = c + r * ldc;
    if (beta == 0.0f) {
      for (int j = 0; j < n; ++j) cr[j] = alpha * acc[r][j];
    } else {
      for (int j = 0; j < n; ++j) cr[j] = alpha * acc[r][j] + beta * cr[j];
    }
  }
}

#if P5_X86
template <int MR>
P5_AVX2 void ukr_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n, float alpha,
                      float beta) {
  constexpr int NR = 16;
  __m256 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
    for (int r = 0; r < MR; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
    a += MR;
    b += NR;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  if (m == MR && n == NR) {
    for (int r = 0; r < MR; ++r) {
      float* cr = c + r * ldc;
      for (int h = 0; h < 2; ++h) {
        __m256 v = _mm256_mul_ps(va, acc[r][h]);
        if (beta != 0.0f) v = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8 * h), v);
        _mm256_storeu_ps(cr + 8 * h, v);
      }
    }
    return;
  }
  alignas(32) static const int32_t ramp[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  const __m256i idx = _mm256_load_si256(reinterpret_cast<const __m256i*>(ramp));
  const __m256i mask0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
  const __m256i mask1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), idx);
  for (int r = 0; r < m; ++r) {
    float* cr = c + r * ldc;
    const __m256i masks[2] = {mask0, mask1};
    for (int h = 0; h < 2; ++h) {
      if (n <= 8 * h) break;
      __m256 v = _mm256_mul_ps(va, acc[r][h]);
      if (beta != 0.0f) v = _mm256_fmadd_ps(vb, _mm256_maskload_ps(cr + 8 * h, masks[h]), v);
      _mm256_maskstore_ps(cr + 8 * h, masks[h], v);
    }
  }
}

template <int MR>
P5_AVX512 void ukr_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
                          float alpha, float beta) {
  constexpr int NR = 32;
  __m512 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int r = 0; r < m; ++r) _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
    }
    a += MR;
    b += NR;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vb = _mm512_set1_ps(beta);
  if (m == MR && n == NR) {
    for (int r = 0; r < MR; ++r) {
      float* cr = c + r * ldc;
      for (int h = 0; h < 2; ++h) {
        __m512 v = _mm512_mul_ps(va, acc[r][h]);
        if (beta != 0.0f) v = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr + 16 * h), v);
        _mm512_storeu_ps(cr + 16 * h, v);
      }
    }
    return;
  }
  const __mmask16 k0 = n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1);
  const __mmask16 k1 = n >= 32   ? static_cast<__mmask16>(0xFFFF)
                       : n > 16 ? static_cast<__mmask16>((1u << (n - 16)) - 1)
                                : static_cast<__mmask16>(0);
  for (int r = 0; r < m; ++r) {
    float* cr = c + r * ldc;
    const __mmask16 ks[2] = {k0, k1};
    for (int h = 0; h < 2; ++h) {
      if (!ks[h]) continue;
      __m512 v = _mm512_mul_ps(va, acc[r][h]);
      if (beta != 0.0f) v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(ks[h], cr + 16 * h), v);
      _mm512_mask_storeu_ps(cr + 16 * h, ks[h], v);
    }
  }
}
#endif

// ------------------------------------------------------------------ problem, tasks
struct Problem {
  bool trans_a, trans_b;
  int64_t M, N, K;
  float alpha, beta;
  const float* A;
  int64_t sa;
  const float* B;
  int64_t sb;
  float* C;
  int64_t sc;
  int64_t batch;
  Epilogue epi;
  // task grid: batch x mt x nt blocks of mb rows x nb columns
  int64_t mt, nt, mb, nb;
  // batch 1 only: all of op(A) (or op(B)) packed up front, shared by the
  // tasks: KC-deep panel pc starts at apre + pc*mpad (bpre + pc*npad), its
  // MR-row (NR-column) slivers kc*MR (kc*NR) floats apart.
  const float* apre = nullptr;
  int64_t mpad = 0;
  const float* bpre = nullptr;
  int64_t npad = 0;
  const struct Impl* impl = nullptr;
};

float activate(float v, int act, float alpha) {
  switch (act) {
    case act_relu:
      return v > 0.0f ? v : 0.0f;
    case act_relu6:
      return std::min(std::max(v, 0.0f), 6.0f);
    case act_sigmoid:
      return 1.0f / (1.0f + std::exp(-v));
    case act_elu:
      return v >= 0.0f ? v : std::expm1(v);
    case act_leakyrelu:
      return v < 0.0f ? alpha * v : v;
    default:
      return v;
  }
}

void apply_epilogue(const Epilogue& e, float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  if (!e.bias && e.act == act_linear) return;
  for (int64_t i = m0; i < m1; ++i) {
    float* cr = C + i * ldc;
    if (e.bias) {
      if (e.bias_len == 1) {
        const float b = e.bias[0];
        for (int64_t j = n0; j < n1; ++j) cr[j] += b;
      } else {
        for (int64_t j = n0; j < n1; ++j) cr[j] += e.bias[j];
      }
    }
    switch (e.act) {
      case act_linear:
        break;
      case act_relu:
        for (int64_t j = n0; j < n1; ++j) cr[j] = cr[j] > 0.0f ? cr[j] : 0.0f;
        break;
      default:
        for (int64_t j = n0; j < n1; ++j) cr[j] = activate(cr[j], e.act, e.act_alpha);
    }
  }
}

using PackAFn = void (*)(bool, const float*, int64_t, int64_t, int64_t, int64_t, int64_t, float*);
using PackBFn = void (*)(bool, const float*, int64_t, int64_t, int64_t, int64_t, int64_t, float*);

/** C region [m0,m1) x [n0,n1) of batch item b; everything through the packed kernels. */
template <int MR, int NR, Ukr UKR, PackAFn PACK_A, PackBFn PACK_B>
void gemm_region(const Problem& p, int64_t bi, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  static_assert(MC % MR == 0 && NC % NR == 0, "blocking");
  const float* A = p.A + bi * p.sa;
  const float* B = p.B + bi * p.sb;
  float* C = p.C + bi * p.sc;
  const int64_t lda = p.trans_a ? p.M : p.K;
  const int64_t ldb = p.trans_b ? p.K : p.N;
  const int64_t ldc = p.N;
  if (p.K == 0) {
    for (int64_t i = m0; i < m1; ++i) {
      float* cr = C + i * ldc;
      for (int64_t j = n0; j < n1; ++j) cr[j] = p.beta == 0.0f ? 0.0f : p.beta * cr[j];
    }
  } else {
    PackBuffers& buf = pack_buffers();
    float* ap = buf.a.get();
    float* bp = buf.b.get();
    for (int64_t jc = n0; jc < n1; jc += NC) {
      const int64_t nc = std::min(NC, n1 - jc);
      for (int64_t pc = 0; pc < p.K; pc += KC) {
        const int64_t kc = std::min(KC, p.K - pc);
        const float beta = pc == 0 ? p.beta : 1.0f;
        const float* bpanel = bp;  // slivers of columns jc.. (jc is a multiple of NR when prepacked)
        if (p.bpre) {
          bpanel = p.bpre + pc * p.npad + jc * kc;
        } else {
          PACK_B(p.trans_b, B, ldb, pc, kc, jc, nc, bp);
        }
        for (int64_t ic = m0; ic < m1; ic += MC) {
          const int64_t mc = std::min(MC, m1 - ic);
          const float* apanel = ap;
          if (p.apre) {
            apanel = p.apre + pc * p.mpad + ic * kc;
          } else {
            PACK_A(p.trans_a, A, lda, ic, mc, pc, kc, ap);
          }
          for (int64_t jr = 0; jr < nc; jr += NR) {
            const int n = static_cast<int>(std::min<int64_t>(NR, nc - jr));
            for (int64_t ir = 0; ir < mc; ir += MR) {
              const int m = static_cast<int>(std::min<int64_t>(MR, mc - ir));
              UKR(kc, apanel + ir * kc, bpanel + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc, m, n, p.alpha, beta);
            }
          }
        }
      }
    }
  }
  apply_epilogue(p.epi, C, ldc, m0, m1, n0, n1);
}

using RegionFn = void (*)(const Problem&, int64_t, int64_t, int64_t, int64_t, int64_t);

struct Impl {
  Isa isa;
  int mr, nr;
  RegionFn region;
  PackAFn pack_a;
  PackBFn pack_b;
};

const Impl kScalar = {Isa::scalar, 4, 8, &gemm_region<4, 8, &ukr_scalar<4, 8>, &pack_a<4>, &pack_b<8>>, &pack_a<4>,
                      &pack_b<8>};
#if P5_X86
const Impl kAvx2 = {Isa::avx2, 6, 16, &gemm_region<6, 16, &ukr_avx2<6>, &pack_a<6>, &pack_b<16>>, &pack_a<6>,
                    &pack_b<16>};
#ifndef P5_MR512
#define P5_MR512 8  // 8 x 32 (16 zmm accumulators): on par with 12 x 32 on big products, better at M = 8, 64
#endif
const Impl kAvx512 = {Isa::avx512, P5_MR512, 32,
                      &gemm_region<P5_MR512, 32, &ukr_avx512<P5_MR512>, &pack_a_avx512<P5_MR512>, &pack_b_avx512>,
                      &pack_a_avx512<P5_MR512>, &pack_b_avx512};
#endif

const Impl* impl_for(Isa isa) {
#if P5_X86
  if (isa == Isa::avx512) return &kAvx512;
  if (isa == Isa::avx2) return &kAvx2;
#endif
  (void)isa;
  return &kScalar;
}

Isa isa_from_env(Isa best) {
  const char* s = std::getenv("P5REC_ISA");
  if (!s || !*s) return best;
  Isa want = best;
  if (!std::strcmp(s, "scalar")) want = Isa::scalar;
  else if (!std::strcmp(s, "avx2")) want = Isa::avx2;
  else if (!std::strcmp(s, "avx512")) want = Isa::avx512;
  return static_cast<int>(want) < static_cast<int>(best) ? want : best;
}

std::atomic<const Impl*> g_impl{nullptr};

const Impl* impl() {
  const Impl* i = g_impl.load(std::memory_order_acquire);
  if (!i) {
    i = impl_for(isa_from_env(detect_isa()));
    g_impl.store(i, std::memory_order_release);
  }
  return i;
}

// ------------------------------------------------------------------ the pool
int threads_from_env() {
  const char* s = std::getenv("P5REC_THREADS");
  if (s && *s) {
    char* end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (end != s && v >= 1 && v <= 256) return static_cast<int>(v);
  }
  unsigned hw = std::thread::hardware_concurrency();
  if (hw == 0) hw = 1;
  return static_cast<int>(std::min(hw, 2u));  // default 2 threads (cores), fewer if the machine has fewer
}

// Never destroyed: at process exit the workers sleep (or spin) on state that
// stays valid, and nothing joins them from a static destructor.
std::mutex& g_pool_mutex = *new std::mutex;
std::shared_ptr<Pool>& g_pool = *new std::shared_ptr<Pool>;

std::shared_ptr<Pool> pool() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!g_pool) g_pool = std::make_shared<Pool>(threads_from_env());
  return g_pool;
}

/** Below this many flops a call runs on the calling thread (waking a worker costs ~5-50 us). */
constexpr double kParallelFlops = 1 << 20;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void run_task(void* ctx, int64_t t) {
  const Problem& p = *static_cast<const Problem*>(ctx);
  const int64_t per_item = p.mt * p.nt;
  const int64_t bi = t / per_item;
  const int64_t r = t % per_item;
  const int64_t mi = r / p.nt;
  const int64_t ni = r % p.nt;
  const int64_t m0 = mi * p.mb, m1 = std::min(p.M, m0 + p.mb);
  const int64_t n0 = ni * p.nb, n1 = std::min(p.N, n0 + p.nb);
  p.impl->region(p, bi, m0, m1, n0, n1);
}

/** Packs slivers [t*per_task, ...) of op(B) (or op(A)) for every KC panel into the shared buffer. */
struct Prepack {
  const Problem* p;
  bool b;  // op(B), else op(A)
  float* dst;
  int64_t pad;       // npad or mpad
  int64_t r;         // NR or MR
  int64_t per_task;  // slivers per task
};

void prepack_task(void* ctx, int64_t t) {
  const Prepack& j = *static_cast<const Prepack*>(ctx);
  const Problem& p = *j.p;
  const int64_t dim = j.b ? p.N : p.M;
  const int64_t c0 = t * j.per_task * j.r;
  const int64_t c1 = std::min(dim, c0 + j.per_task * j.r);
  if (c0 >= c1) return;
  for (int64_t pc = 0; pc < p.K; pc += KC) {
    const int64_t kc = std::min(KC, p.K - pc);
    float* dst = j.dst + pc * j.pad + c0 * kc;
    if (j.b) {
      p.impl->pack_b(p.trans_b, p.B, p.trans_b ? p.K : p.N, pc, kc, c0, c1 - c0, dst);
    } else {
      p.impl->pack_a(p.trans_a, p.A, p.trans_a ? p.M : p.K, c0, c1 - c0, pc, kc, dst);
    }
  }
}

/** The shared prepack buffer; only the thread holding the pool uses it. */
float* shared_buffer(size_t floats) {
  static Buf buf;
  static size_t size = 0;
  if (floats > size) {
    buf.reset(alloc_floats(floats));
    size = floats;
  }
  return buf.get();
}

/** Largest operand packed up front (floats): 64 MB. Bigger ones are packed per task. */
constexpr int64_t kMaxPrepack = 16 << 20;

}  // namespace

// ------------------------------------------------------------------ public
const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return "avx512";
    case Isa::avx2:
      return "avx2";
    default:
      return "scalar";
  }
}

Isa detect_isa() {
#if P5_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::scalar;
}

Isa current_isa() { return impl()->isa; }

Isa set_isa(Isa want) {
  const Isa best = detect_isa();
  const Isa use = static_cast<int>(want) < static_cast<int>(best) ? want : best;
  g_impl.store(impl_for(use), std::memory_order_release);
  return impl_for(use)->isa;
}

int threads() { return pool()->threads(); }

int set_threads(int n) {
  if (n < 1) n = 1;
  std::shared_ptr<Pool> old;
  {
    std::lock_guard<std::mutex> lock(g_pool_mutex);
    old = std::move(g_pool);
    g_pool = std::make_shared<Pool>(n);
  }
  old.reset();  // joins its workers once no call holds it any more
  return n;
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t sa,
           const float* B, int64_t sb, float beta, float* C, int64_t sc, int64_t batch, const Epilogue& epi) {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  // A shared B under a batch of row-major A's is one taller GEMM.
  if (batch > 1 && sb == 0 && !trans_a && sa == M * K && sc == M * N) {
    M *= batch;
    batch = 1;
  }
  const Impl* im = impl();
  Problem p{trans_a, trans_b, M, N, K, alpha, beta, A, sa, B, sb, C, sc, batch, epi, 1, 1, M, N};
  p.impl = im;
  std::shared_ptr<Pool> pl = pool();
  const int th = pl->threads();
  const double flops = 2.0 * static_cast<double>(batch) * static_cast<double>(M) * static_cast<double>(N) *
                       static_cast<double>(std::max<int64_t>(K, 1));
  std::unique_lock<std::mutex> lease;
  if (th > 1 && flops >= kParallelFlops) lease = pl->try_acquire();  // busy (another JS thread): run here
  if (!lease.owns_lock()) {
    for (int64_t b = 0; b < batch; ++b) im->region(p, b, 0, M, 0, N);
    return;
  }
  // Tasks are claimed dynamically, ~4 per thread, so that a thread that gets
  // less of the CPU (a shared machine) does less of the work.
  const int64_t mr = im->mr, nr = im->nr;
  if (batch == 1 && K > 0) {
    // Split the larger of M and N into blocks; pack the other operand once,
    // in parallel, and share it (else every block would pack it again).
    const bool split_m = M >= N;
    const int64_t r = split_m ? nr : mr;  // sliver width of the shared operand
    const int64_t pad = ceil_div(split_m ? N : M, r) * r;
    if (pad * K <= kMaxPrepack) {
      Prepack pre{&p, split_m, shared_buffer(static_cast<size_t>(pad * K)), pad, r, 0};
      const int64_t slivers = pad / r;
      pre.per_task = ceil_div(slivers, std::min<int64_t>(slivers, 2 * th));
      pl->run_locked(ceil_div(slivers, pre.per_task), &prepack_task, &pre);
      if (split_m) {
        p.bpre = pre.dst;
        p.npad = pad;
        p.mb = std::min(MC, ceil_div(ceil_div(M, 4 * th), mr) * mr);
        p.mt = ceil_div(M, p.mb);
      } else {
        p.apre = pre.dst;
        p.mpad = pad;
        p.nb = std::min<int64_t>(512, ceil_div(ceil_div(N, 4 * th), nr) * nr);
        p.nt = ceil_div(N, p.nb);
      }
      pl->run_locked(p.mt * p.nt, &run_task, &p);
      return;
    }
  }
  // One task per item when there are many; else split each item along its
  // larger dimension (each block packs both of its operands).
  const int64_t want = batch >= 4 * th ? 1 : ceil_div(4 * th, batch);
  if (want > 1) {
    if (M >= N) {
      p.mb = std::max<int64_t>(mr, ceil_div(ceil_div(M, want), mr) * mr);
      p.mt = ceil_div(M, p.mb);
    } else {
      p.nb = std::max<int64_t>(nr, ceil_div(ceil_div(N, want), nr) * nr);
      p.nt = ceil_div(N, p.nb);
    }
  }
  pl->run_locked(batch * p.mt * p.nt, &run_task, &p);
}

// ------------------------------------------------------------------ softmax, RMSNorm
namespace {

void softmax_row_scalar(const float* x, float* y, int64_t n) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, x[j]);
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    const float e = std::exp(x[j] - mx);
    y[j] = e;
    sum += e;
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t j = 0; j < n; ++j) y[j] *= inv;
}

void rmsnorm_row_scalar(const float* x, const float* w, float* y, int64_t n, float eps) {
  double ss = 0.0;
  for (int64_t j = 0; j < n; ++j) ss += static_cast<double>(x[j]) * x[j];
  const float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t j = 0; j < n; ++j) y[j] = x[j] * r * (w ? w[j] : 1.0f);
}

#if P5_X86
P5_AVX512 inline float hsum512(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  float s = 0.0f;
  for (float x : t) s += x;
  return s;
}

P5_AVX512 inline float hmax512(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  float m = t[0];
  for (float x : t) m = x > m ? x : m;
  return m;
}

/** exp(x) for x <= 0 (softmax after max subtraction); ~2 ulp, 0 below -87.3. */
P5_AVX512 inline __m512 exp_nonpos_avx512(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.33654f);
  const __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  x = _mm512_max_ps(lo, x);  // NaN stays NaN (vmaxps returns its second operand)
  // x = n*ln2 + r, |r| <= ln2/2
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512 e = _mm512_scalef_ps(p, n);
  return _mm512_mask_mov_ps(e, under, _mm512_setzero_ps());
}

P5_AVX512 void softmax_row_avx512(const float* x, float* y, int64_t n) {
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(x + j));
  const __mmask16 tail = static_cast<__mmask16>((1u << (n - j)) - 1);
  if (tail) vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail, x + j));
  const float mx = hmax512(vmax);
  if (!(mx > -INFINITY) || mx == INFINITY) {  // all -inf, +inf or NaN: the scalar path gives NaN like tfjs
    softmax_row_scalar(x, y, n);
    return;
  }
  const __m512 vm = _mm512_set1_ps(mx);
  __m512 vsum = _mm512_setzero_ps();
  for (j = 0; j + 16 <= n; j += 16) {
    const __m512 e = exp_nonpos_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + j), vm));
    _mm512_storeu_ps(y + j, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  if (tail) {
    const __m512 e = exp_nonpos_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + j), vm));
    _mm512_mask_storeu_ps(y + j, tail, e);
    vsum = _mm512_add_ps(vsum, _mm512_maskz_mov_ps(tail, e));
  }
  const __m512 inv = _mm512_set1_ps(1.0f / hsum512(vsum));
  for (j = 0; j + 16 <= n; j += 16) _mm512_storeu_ps(y + j, _mm512_mul_ps(_mm512_loadu_ps(y + j), inv));
  if (tail) _mm512_mask_storeu_ps(y + j, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, y + j), inv));
}

P5_AVX512 void rmsnorm_row_avx512(const float* x, const float* w, float* y, int64_t n, float eps) {
  __m512 ss = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 v = _mm512_loadu_ps(x + j);
    ss = _mm512_fmadd_ps(v, v, ss);
  }
  const __mmask16 tail = static_cast<__mmask16>((1u << (n - j)) - 1);
  if (tail) {
    const __m512 v = _mm512_maskz_loadu_ps(tail, x + j);
    ss = _mm512_fmadd_ps(v, v, ss);
  }
  const float r = 1.0f / std::sqrt(hsum512(ss) / static_cast<float>(n) + eps);
  const __m512 vr = _mm512_set1_ps(r);
  for (j = 0; j + 16 <= n; j += 16) {
    __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + j), vr);
    if (w) v = _mm512_mul_ps(v, _mm512_loadu_ps(w + j));
    _mm512_storeu_ps(y + j, v);
  }
  if (tail) {
    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, x + j), vr);
    if (w) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(tail, w + j));
    _mm512_mask_storeu_ps(y + j, tail, v);
  }
}
#endif

struct RowsJob {
  int64_t rows, cols, per_task;
  float* x;
  const float* w;
  float* y;
  float eps;
  bool avx512;
};

void softmax_task(void* ctx, int64_t t) {
  const RowsJob& j = *static_cast<const RowsJob*>(ctx);
  const int64_t r1 = std::min(j.rows, (t + 1) * j.per_task);
  for (int64_t r = t * j.per_task; r < r1; ++r) {
#if P5_X86
    if (j.avx512) {
      softmax_row_avx512(j.x + r * j.cols, j.y + r * j.cols, j.cols);
      continue;
    }
#endif
    softmax_row_scalar(j.x + r * j.cols, j.y + r * j.cols, j.cols);
  }
}

void rmsnorm_task(void* ctx, int64_t t) {
  const RowsJob& j = *static_cast<const RowsJob*>(ctx);
  const int64_t r1 = std::min(j.rows, (t + 1) * j.per_task);
  for (int64_t r = t * j.per_task; r < r1; ++r) {
#if P5_X86
    if (j.avx512) {
      rmsnorm_row_avx512(j.x + r * j.cols, j.w, j.y + r * j.cols, j.cols, j.eps);
      continue;
    }
#endif
    rmsnorm_row_scalar(j.x + r * j.cols, j.w, j.y + r * j.cols, j.cols, j.eps);
  }
}

void run_rows(RowsJob& job, Pool::TaskFn fn) {
  std::shared_ptr<Pool> pl = pool();
  const int64_t work = job.rows * job.cols;
  const int64_t tasks = work >= (1 << 16) && pl->threads() > 1 ? std::min<int64_t>(job.rows, 4 * pl->threads()) : 1;
  job.per_task = ceil_div(job.rows, tasks);
  pl->run(ceil_div(job.rows, job.per_task), fn, &job);
}

}  // namespace

void softmax_rows(const float* x, float* y, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  RowsJob job{rows, cols, rows, const_cast<float*>(x), nullptr, y, 0.0f, current_isa() == Isa::avx512};
  run_rows(job, &softmax_task);
}

void rmsnorm_rows(const float* x, const float* w, float* y, int64_t rows, int64_t cols, float eps) {
  if (rows <= 0 || cols <= 0) return;
  RowsJob job{rows, cols, rows, const_cast<float*>(x), w, y, eps, current_isa() == Isa::avx512};
  run_rows(job, &rmsnorm_task);
}

// ------------------------------------------------------------------ fused training kernels
// Memory-bound row loops; rows are split over the pool in a FIXED number of
// tasks (not one per thread), so that results never depend on the thread count.

namespace {

// The mask is counter-based: element i's draw depends on i and the key (a, b)
// alone, so the pool can split the range and the compiler can widen the loop;
// a sequential generator (sfc32 was used before) kept it on one thread, about
// a tenth of a small T5's training step.
inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x85ebca6bu;
  x ^= x >> 13;
  x *= 0xc2b2ae35u;
  x ^= x >> 16;
  return x;
}

struct MaskJob {
  float* y;
  int64_t n, per;
  uint32_t a, b;
  int32_t threshold;
  float keep;
};

// Plain locals and a restrict output (no reloads through the job struct) and
// a branch-free select, so the compiler widens the hash to 8 / 16 lanes.
template <int>
inline void mults_range(float* __restrict y, uint32_t start, uint32_t n, uint32_t a, uint32_t b, int32_t threshold, float keep) {
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t t = mix32(mix32((start + i) ^ a) ^ b);
    const int32_t s = static_cast<int32_t>(t ^ 0x80000000u);
    y[i] = s >= threshold ? keep : 0.0f;
  }
}

#if P5_X86
P5_AVX512 void mults_avx512(float* y, uint32_t start, uint32_t n, uint32_t a, uint32_t b, int32_t thr, float keep) {
  mults_range<2>(y, start, n, a, b, thr, keep);
}
__attribute__((target("avx2"))) void mults_avx2(float* y, uint32_t start, uint32_t n, uint32_t a, uint32_t b, int32_t thr, float keep) {
  mults_range<1>(y, start, n, a, b, thr, keep);
}
#endif

void mask_task(void* ctx, int64_t t) {
  const MaskJob& j = *static_cast<const MaskJob*>(ctx);
  const int64_t i0 = t * j.per, i1 = std::min(j.n, i0 + j.per);
  dropout_mults(j.y + i0, static_cast<uint32_t>(i0), i1 - i0, j.a, j.b, j.threshold, j.keep);
}

}  // namespace

void dropout_mults(float* y, uint32_t start, int64_t n, uint32_t a, uint32_t b, int32_t threshold, float keep) {
  // Counters are 32-bit (element i uses uint32(i)), so a range is cut into pieces below 2^31.
  while (n > 0) {
    const uint32_t m = static_cast<uint32_t>(std::min<int64_t>(n, int64_t{1} << 30));
#if P5_X86
    const Isa isa = current_isa();
    if (isa == Isa::avx512) mults_avx512(y, start, m, a, b, threshold, keep);
    else if (isa == Isa::avx2) mults_avx2(y, start, m, a, b, threshold, keep);
    else mults_range<0>(y, start, m, a, b, threshold, keep);
#else
    mults_range<0>(y, start, m, a, b, threshold, keep);
#endif
    y += m, start += m, n -= m;
  }
}

void dropout_mask(float* y, int64_t n, uint32_t a, uint32_t b, uint32_t /*c*/, uint32_t /*d*/, int32_t threshold, float keep) {
  if (n <= 0) return;
  MaskJob job{y, n, n, a, b, threshold, keep};
  std::shared_ptr<Pool> pl = pool();
  // Bits depend on the index only, never on how the range is split.
  if (n >= (1 << 16) && pl->threads() > 1) job.per = ceil_div(n, 4 * pl->threads());
  pl->run(ceil_div(n, job.per), &mask_task, &job);
}

namespace {

constexpr int64_t kRowTasks = 8;

struct NormJob {
  int64_t rows, cols, per;
  const float *x, *w, *dy, *r_in;
  float *y, *r, *dx;
  double* dw_part;  // [tasks, cols]
  float eps;
};

void rmsnorm_fwd_task(void* ctx, int64_t t) {
  const NormJob& j = *static_cast<const NormJob*>(ctx);
  const int64_t r1 = std::min(j.rows, (t + 1) * j.per);
  for (int64_t r = t * j.per; r < r1; ++r) {
    const float* x = j.x + r * j.cols;
    float* y = j.y + r * j.cols;
    float ss = 0.0f;
    for (int64_t k = 0; k < j.cols; ++k) ss += x[k] * x[k];
    const float rr = 1.0f / std::sqrt(ss / static_cast<float>(j.cols) + j.eps);
    j.r[r] = rr;
    for (int64_t k = 0; k < j.cols; ++k) y[k] = x[k] * rr * j.w[k];
  }
}

void rmsnorm_bwd_task(void* ctx, int64_t t) {
  const NormJob& j = *static_cast<const NormJob*>(ctx);
  const int64_t r1 = std::min(j.rows, (t + 1) * j.per);
  double* dw = j.dw_part + t * j.cols;
  for (int64_t k = 0; k < j.cols; ++k) dw[k] = 0.0;
  for (int64_t r = t * j.per; r < r1; ++r) {
    const float* x = j.x + r * j.cols;
    const float* dy = j.dy + r * j.cols;
    float* dx = j.dx + r * j.cols;
    const float rr = j.r_in[r];
    float dot = 0.0f;
    for (int64_t k = 0; k < j.cols; ++k) {
      const float xh = x[k] * rr;
      dot += dy[k] * j.w[k] * xh;
      dw[k] += static_cast<double>(dy[k] * xh);
    }
    const float c = dot / static_cast<float>(j.cols);
    for (int64_t k = 0; k < j.cols; ++k) dx[k] = rr * (dy[k] * j.w[k] - x[k] * rr * c);
  }
}

int64_t row_tasks(int64_t rows, int64_t cols) {
  return rows * cols >= (1 << 15) ? std::min<int64_t>(rows, kRowTasks) : 1;
}

struct XentJob {
  int64_t rows, cols, per;
  const float* x;
  const int32_t* target;
  const float* weight;
  float* lse;
  double* loss_part;  // [tasks]
  float dy;
  float* dx;
  bool avx512;
};

#if P5_X86
P5_AVX512 float row_lse_avx512(const float* x, int64_t n) {
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(x + j));
  const __mmask16 tail = static_cast<__mmask16>((1u << (n - j)) - 1);
  if (tail) vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail, x + j));
  const float mx = hmax512(vmax);
  if (!(mx > -INFINITY) || mx == INFINITY) return NAN;
  const __m512 vm = _mm512_set1_ps(mx);
  __m512 vsum = _mm512_setzero_ps();
  for (j = 0; j + 16 <= n; j += 16) vsum = _mm512_add_ps(vsum, exp_nonpos_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + j), vm)));
  if (tail) vsum = _mm512_add_ps(vsum, _mm512_maskz_mov_ps(tail, exp_nonpos_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + j), vm))));
  return mx + std::log(hsum512(vsum));
}

P5_AVX512 void row_xent_grad_avx512(const float* x, float* dx, int64_t n, float lse, float scale) {
  const __m512 vl = _mm512_set1_ps(lse);
  const __m512 vs = _mm512_set1_ps(scale);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 e = exp_nonpos_avx512(_mm512_min_ps(_mm512_sub_ps(_mm512_loadu_ps(x + j), vl), _mm512_setzero_ps()));
    _mm512_storeu_ps(dx + j, _mm512_mul_ps(e, vs));
  }
  const __mmask16 tail = static_cast<__mmask16>((1u << (n - j)) - 1);
  if (tail) {
    const __m512 e = exp_nonpos_avx512(_mm512_min_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + j), vl), _mm512_setzero_ps()));
    _mm512_mask_storeu_ps(dx + j, tail, _mm512_mul_ps(e, vs));
  }
}
#endif

float row_lse_scalar(const float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) mx = x[j] > mx ? x[j] : mx;
  if (!(mx > -INFINITY) || mx == INFINITY) return NAN;
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) sum += std::exp(static_cast<double>(x[j] - mx));
  return mx + static_cast<float>(std::log(sum));
}

void xent_fwd_task(void* ctx, int64_t t) {
  const XentJob& j = *static_cast<const XentJob*>(ctx);
  const int64_t r1 = std::min(j.rows, (t + 1) * j.per);
  double loss = 0.0;
  for (int64_t r = t * j.per; r < r1; ++r) {
    const float* x = j.x + r * j.cols;
#if P5_X86
    const float l = j.avx512 ? row_lse_avx512(x, j.cols) : row_lse_scalar(x, j.cols);
#else
    const float l = row_lse_scalar(x, j.cols);
#endif
    j.lse[r] = l;
    const float w = j.weight[r];
    if (w != 0.0f) loss += static_cast<double>(w) * static_cast<double>(l - x[j.target[r]]);
  }
  j.loss_part[t] = loss;
}

void xent_bwd_task(void* ctx, int64_t t) {
  const XentJob& j = *static_cast<const XentJob*>(ctx);
  const int64_t r1 = std::min(j.rows, (t + 1) * j.per);
  for (int64_t r = t * j.per; r < r1; ++r) {
    const float* x = j.x + r * j.cols;
    float* dx = j.dx + r * j.cols;
    const float w = j.weight[r];
    const float scale = w * j.dy;
    const float l = j.lse[r];
#if P5_X86
    if (j.avx512) {
      row_xent_grad_avx512(x, dx, j.cols, l, scale);
    } else
#endif
    {
      for (int64_t k = 0; k < j.cols; ++k) dx[k] = static_cast<float>(std::exp(static_cast<double>(x[k] - l))) * scale;
    }
    dx[j.target[r]] -= scale;
  }
}

}  // namespace

void run_tasks(int64_t n, void (*fn)(void* ctx, int64_t task), void* ctx) { pool()->run(n, fn, ctx); }

void rmsnorm_forward(const float* x, const float* w, float* y, float* r, int64_t rows, int64_t cols, float eps) {
  if (rows <= 0) return;
  NormJob job{rows, cols, 0, x, w, nullptr, nullptr, y, r, nullptr, nullptr, eps};
  const int64_t tasks = row_tasks(rows, cols);
  job.per = ceil_div(rows, tasks);
  pool()->run(ceil_div(rows, job.per), &rmsnorm_fwd_task, &job);
}

void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* r, float* dx, float* dw, int64_t rows,
                      int64_t cols) {
  for (int64_t k = 0; k < cols; ++k) dw[k] = 0.0f;
  if (rows <= 0) return;
  const int64_t tasks = row_tasks(rows, cols);
  const int64_t per = ceil_div(rows, tasks);
  const int64_t n = ceil_div(rows, per);
  std::unique_ptr<double[]> part(new double[static_cast<size_t>(n * cols)]);
  NormJob job{rows, cols, per, x, w, dy, r, nullptr, nullptr, dx, part.get(), 0.0f};
  pool()->run(n, &rmsnorm_bwd_task, &job);
  for (int64_t k = 0; k < cols; ++k) {
    double s = 0.0;
    for (int64_t t = 0; t < n; ++t) s += part[t * cols + k];
    dw[k] = static_cast<float>(s);
  }
}

double xent_forward(const float* x, const int32_t* target, const float* weight, float* lse, int64_t rows, int64_t cols) {
  if (rows <= 0) return 0.0;
  const int64_t tasks = row_tasks(rows, cols);
  const int64_t per = ceil_div(rows, tasks);
  const int64_t n = ceil_div(rows, per);
  std::unique_ptr<double[]> part(new double[static_cast<size_t>(n)]);
  XentJob job{rows, cols, per, x, target, weight, lse, part.get(), 0.0f, nullptr, current_isa() == Isa::avx512};
  pool()->run(n, &xent_fwd_task, &job);
  double s = 0.0;
  for (int64_t t = 0; t < n; ++t) s += part[t];
  return s;
}

void xent_backward(const float* x, const int32_t* target, const float* weight, const float* lse, float dy, float* dx,
                   int64_t rows, int64_t cols) {
  if (rows <= 0) return;
  const int64_t tasks = row_tasks(rows, cols);
  const int64_t per = ceil_div(rows, tasks);
  XentJob job{rows, cols, per, x, target, weight, const_cast<float*>(lse), nullptr, dy, dx, current_isa() == Isa::avx512};
  pool()->run(ceil_div(rows, per), &xent_bwd_task, &job);
}

}  // namespace p5
