// AdamW over flat float32 buffers, bit-identical to src/train/adamw.ts:
// every operation in double, in the same order, rounded to float32 where JS
// stores into a Float32Array, and NO fused multiply-adds (contraction is
// switched off for this file), so the native and the JS optimizer give the
// same parameters to the last bit.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <cmath>
#include <cstdint>

#include "gemm.h"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define P5_ADAM_X86 1
#include <immintrin.h>
#else
#define P5_ADAM_X86 0
#endif

namespace p5 {

namespace {

struct AdamJob {
  float *p, *g, *m, *v;
  int64_t n, per;
  double b1, b2, c1, c2, eps, keep, step, sqrt_bc2, scale;
  bool avx512;
};

void adam_scalar(const AdamJob& j, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) {
    double g = j.g[i];
    if (j.scale != 1.0) g = static_cast<float>(g * j.scale);
    const double mi = j.b1 * static_cast<double>(j.m[i]) + j.c1 * g;
    j.m[i] = static_cast<float>(mi);
    const double vi = j.b2 * static_cast<double>(j.v[i]) + j.c2 * g * g;
    j.v[i] = static_cast<float>(vi);
    j.p[i] = static_cast<float>(static_cast<double>(j.p[i]) * j.keep - (j.step * mi) / (std::sqrt(vi) / j.sqrt_bc2 + j.eps));
  }
}

#if P5_ADAM_X86
__attribute__((target("avx512f"))) void adam_avx512(const AdamJob& j, int64_t i0, int64_t i1) {
  const __m512d b1 = _mm512_set1_pd(j.b1), b2 = _mm512_set1_pd(j.b2), c1 = _mm512_set1_pd(j.c1), c2 = _mm512_set1_pd(j.c2);
  const __m512d eps = _mm512_set1_pd(j.eps), keep = _mm512_set1_pd(j.keep), step = _mm512_set1_pd(j.step);
  const __m512d sbc2 = _mm512_set1_pd(j.sqrt_bc2), scale = _mm512_set1_pd(j.scale);
  const bool scaled = j.scale != 1.0;
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    __m512d g = _mm512_cvtps_pd(_mm256_loadu_ps(j.g + i));
    if (scaled) g = _mm512_cvtps_pd(_mm512_cvtpd_ps(_mm512_mul_pd(g, scale)));
    const __m512d mi = _mm512_add_pd(_mm512_mul_pd(b1, _mm512_cvtps_pd(_mm256_loadu_ps(j.m + i))), _mm512_mul_pd(c1, g));
    _mm256_storeu_ps(j.m + i, _mm512_cvtpd_ps(mi));
    const __m512d vi = _mm512_add_pd(_mm512_mul_pd(b2, _mm512_cvtps_pd(_mm256_loadu_ps(j.v + i))), _mm512_mul_pd(_mm512_mul_pd(c2, g), g));
    _mm256_storeu_ps(j.v + i, _mm512_cvtpd_ps(vi));
    const __m512d den = _mm512_add_pd(_mm512_div_pd(_mm512_sqrt_pd(vi), sbc2), eps);
    const __m512d p = _mm512_sub_pd(_mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(j.p + i)), keep), _mm512_div_pd(_mm512_mul_pd(step, mi), den));
    _mm256_storeu_ps(j.p + i, _mm512_cvtpd_ps(p));
  }
  adam_scalar(j, i, i1);
}
#endif

void adam_task(void* ctx, int64_t t) {
  const AdamJob& j = *static_cast<const AdamJob*>(ctx);
  const int64_t i0 = t * j.per;
  const int64_t i1 = i0 + j.per < j.n ? i0 + j.per : j.n;
#if P5_ADAM_X86
  if (j.avx512) {
    adam_avx512(j, i0, i1);
    return;
  }
#endif
  adam_scalar(j, i0, i1);
}

}  // namespace

void adamw(float* params, float* grads, float* m, float* v, int64_t n, double beta1, double beta2, double eps,
           double keep, double step_size, double sqrt_bc2, double grad_scale) {
  if (n <= 0) return;
  AdamJob j{params, grads, m, v, n, n, beta1, beta2, 1.0 - beta1, 1.0 - beta2, eps, keep, step_size, sqrt_bc2,
            grad_scale, current_isa() == Isa::avx512};
  const int64_t tasks = n >= (1 << 16) ? 8 : 1;
  j.per = (n + tasks - 1) / tasks;
  j.per = (j.per + 7) / 8 * 8;
  run_tasks((n + j.per - 1) / j.per, &adam_task, &j);
}

}  // namespace p5
