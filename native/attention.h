// Fused multi-head attention for T5 training (forward and backward), see attention.cc.
#pragma once

#include <cstdint>

namespace p5 {

struct AttnShape {
  int64_t B, H, Lq, Lk, dk;
  /** floats between consecutive rows of q / k / v (and of dq / dk / dv): H*dk, or more for fused QKV / KV */
  int64_t q_stride, k_stride, v_stride;
  /** key j > query i is masked (decoder self-attention; needs Lq == Lk) */
  bool causal;
};

/** Counter-based dropout of the attention weights (as dropout_mask over [B, H, Lq, Lk]); on false: none. */
struct AttnDropout {
  bool on = false;
  uint32_t a = 0, b = 0;
  int32_t threshold = 0;
  float keep = 1.0f;
};

/**
 * Per (b, h): S = Q K^T + bias[h] + mask[b] (bias [H, Lq, Lk] and mask [B, Lk]
 * may be null; causal entries excluded), P = softmax(S) written to p
 * [B, H, Lq, Lk] (0 where causal-masked), O = dropout(P) V written to o
 * [B*Lq, H*dk]. q points at row 0 / column 0 of the queries (rows of
 * q_stride floats, head h at column h*dk), likewise k and v.
 */
void attention_forward(const AttnShape& s, const float* q, const float* k, const float* v, const float* bias,
                       const float* mask, const AttnDropout& drop, float* o, float* p);

/**
 * Gradients of attention_forward from p (its saved softmax) and dout [B*Lq, H*dk]:
 * dq / dk / dv in the layouts (strides) of q / k / v, each written for its
 * head columns only, and, when dbias is not null, d(bias) [H, Lq, Lk] summed
 * over the batch in a fixed order (independent of the thread count).
 */
void attention_backward(const AttnShape& s, const float* q, const float* k, const float* v, const float* p,
                        const float* dout, const AttnDropout& drop, float* dq, float* dk, float* dv, float* dbias);

}  // namespace p5
