// p5rec native kernels: the N-API surface (plain C N-API, node_api.h).
//
// Every function is synchronous and works in place on caller-owned memory:
// a memory argument is an ArrayBuffer or any TypedArray/DataView (e.g. the
// wasm backend's heap, `HEAPU8.buffer` or `HEAPU8`), and its companion
// argument is a byte offset into it (added to the view's own offset). All
// ranges are bounds-checked; a detached buffer (the wasm heap grew since the
// view was taken) is a TypeError. Exports:
//
//   sgemm(a, aOff, b, bOff, c, cOff, M, N, K, transA, transB, alpha, beta,
//         batch, strideA, strideB, strideC,
//         [bias, biasOff, biasLen, activation, activationAlpha])
//       C_i = act(alpha * op(A_i) op(B_i) + beta * C_i + bias), i < batch;
//       strides in floats (0: broadcast A or B); biasLen is N or 1 (bias may
//       be null); activation: 0 linear, 1 relu, 2 relu6, 3 sigmoid, 4 elu,
//       5 leakyrelu (slope activationAlpha).
//   softmax(x, xOff, rows, cols[, y, yOff])   row-wise, into y (default: in place)
//   rmsnorm(x, xOff, w, wOff, y, yOff, rows, cols, eps)   w may be null
//   dropoutMask(y, yOff, n, a, b, c, d, threshold, keep)   counter-based inverted-dropout multipliers
//   rmsnormForward(x, xOff, w, wOff, y, yOff, r, rOff, rows, cols, eps)
//   rmsnormBackward(dy, dyOff, x, xOff, w, wOff, r, rOff, dx, dxOff, dw, dwOff, rows, cols)
//   xentForward(x, xOff, target, tOff, weight, wOff, lse, lseOff, rows, cols) -> loss
//   xentBackward(x, xOff, target, tOff, weight, wOff, lse, lseOff, dy, dx, dxOff, rows, cols)
//   attentionForward(q, qOff, k, kOff, v, vOff, bias, biasOff, mask, maskOff, o, oOff, p, pOff, dims, dropout)
//   attentionBackward(q, qOff, k, kOff, v, vOff, p, pOff, dout, doutOff, dq, dqOff, dk, dkOff, dv, dvOff,
//                     dbias, dbiasOff, dims, dropout)
//       fused T5 attention (native/attention.h); dims = [B, H, Lq, Lk, dk, qStride, kStride, vStride, causal];
//       q/k/v offsets point at column 0 of head 0 (rows of *Stride floats); bias [H, Lq, Lk], mask [B, Lk]
//       and dbias may be null; dropout = null or [a, b, threshold, keep]
//   adamw(params, pOff, grads, gOff, m, mOff, v, vOff, n, beta1, beta2, eps, keep, stepSize, sqrtBc2, gradScale)
//       in place, bit-identical to src/train/adamw.ts's loop
//   info() -> { isa, detectedIsa, threads, version }
//   setThreads(n) -> n            setIsa('avx512'|'avx2'|'scalar') -> isa used
#define NAPI_VERSION 8
#include <node_api.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "attention.h"
#include "gemm.h"
#include "pool.h"

namespace {

using p5::FlushSubnormals;

constexpr int kVersion = 3;
constexpr double kMaxSafe = 9007199254740991.0;  // 2^53 - 1

struct Ctx {
  napi_env env;
  bool failed = false;

  void type_error(const std::string& msg) {
    if (!failed) napi_throw_type_error(env, "P5REC_NATIVE_ARG", msg.c_str());
    failed = true;
  }
  void range_error(const std::string& msg) {
    if (!failed) napi_throw_range_error(env, "P5REC_NATIVE_RANGE", msg.c_str());
    failed = true;
  }
};

size_t elem_size(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array:
      return 1;
    case napi_int16_array:
    case napi_uint16_array:
      return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      return 4;
    default:
      return 8;
  }
}

struct Mem {
  uint8_t* data = nullptr;
  size_t bytes = 0;
};

/** An ArrayBuffer / TypedArray / DataView argument. */
bool get_mem(Ctx& cx, napi_value v, const char* what, Mem* out) {
  napi_env env = cx.env;
  bool is = false;
  napi_value ab = nullptr;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length = 0, offset = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok) {
      cx.type_error(std::string(what) + ": cannot read the typed array");
      return false;
    }
    out->data = static_cast<uint8_t*>(data);
    out->bytes = length * elem_size(type);
  } else if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    size_t length = 0, offset = 0;
    void* data = nullptr;
    if (napi_get_dataview_info(env, v, &length, &data, &ab, &offset) != napi_ok) {
      cx.type_error(std::string(what) + ": cannot read the DataView");
      return false;
    }
    out->data = static_cast<uint8_t*>(data);
    out->bytes = length;
  } else if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    ab = v;
    void* data = nullptr;
    size_t length = 0;
    if (napi_get_arraybuffer_info(env, v, &data, &length) != napi_ok) {
      cx.type_error(std::string(what) + ": cannot read the ArrayBuffer");
      return false;
    }
    out->data = static_cast<uint8_t*>(data);
    out->bytes = length;
  } else {
    cx.type_error(std::string(what) + " must be an ArrayBuffer, a TypedArray or a DataView");
    return false;
  }
  bool detached = false;
  if (ab && napi_is_detached_arraybuffer(env, ab, &detached) == napi_ok && detached) {
    cx.type_error(std::string(what) +
                  ": the ArrayBuffer is detached (a wasm heap that grew? take views after allocating)");
    return false;
  }
  return true;
}

bool get_int(Ctx& cx, napi_value v, const char* what, int64_t lo, double hi, int64_t* out) {
  double d = 0;
  if (napi_get_value_double(cx.env, v, &d) != napi_ok) {
    cx.type_error(std::string(what) + " must be a number");
    return false;
  }
  if (!(d >= static_cast<double>(lo) && d <= hi) || d != static_cast<double>(static_cast<int64_t>(d))) {
    char got[32];
    std::snprintf(got, sizeof got, "%.17g", d);
    cx.range_error(std::string(what) + " must be an integer in [" + std::to_string(lo) + ", " +
                   std::to_string(static_cast<int64_t>(hi)) + "], got " + got);
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool get_float(Ctx& cx, napi_value v, const char* what, float* out) {
  double d = 0;
  if (napi_get_value_double(cx.env, v, &d) != napi_ok) {
    cx.type_error(std::string(what) + " must be a number");
    return false;
  }
  *out = static_cast<float>(d);
  return true;
}

bool get_bool(Ctx& cx, napi_value v, const char* what, bool* out) {
  if (napi_get_value_bool(cx.env, v, out) != napi_ok) {
    cx.type_error(std::string(what) + " must be a boolean");
    return false;
  }
  return true;
}

bool is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_null || t == napi_undefined);
}

bool mul_add(int64_t a, int64_t b, int64_t c, int64_t* out) {
  int64_t p;
  if (__builtin_mul_overflow(a, b, &p)) return false;
  return !__builtin_add_overflow(p, c, out);
}

/**
 * The float range [off, off + 4*count) of `m`, checked. count 0 is always
 * fine (nothing is touched).
 */
bool float_range(Ctx& cx, const Mem& m, int64_t off, int64_t count, const char* what, float** out) {
  if (off % 4 != 0) {
    cx.range_error(std::string(what) + ": byte offset " + std::to_string(off) + " is not a multiple of 4");
    return false;
  }
  int64_t end = 0;
  if (!mul_add(count, 4, off, &end) || static_cast<uint64_t>(end) > m.bytes) {
    if (count == 0 && static_cast<uint64_t>(off) <= m.bytes) {
      *out = reinterpret_cast<float*>(m.data + off);
      return true;
    }
    cx.range_error(std::string(what) + ": " + std::to_string(count) + " floats at byte offset " + std::to_string(off) +
                   " exceed the " + std::to_string(m.bytes) + "-byte buffer");
    return false;
  }
  *out = reinterpret_cast<float*>(m.data + off);
  return true;
}

bool overlap(const float* a, int64_t na, const float* b, int64_t nb) {
  if (na <= 0 || nb <= 0) return false;
  return a < b + nb && b < a + na;
}

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

template <size_t N>
bool get_args(napi_env env, napi_callback_info info, napi_value (&argv)[N], size_t* argc) {
  *argc = N;
  if (napi_get_cb_info(env, info, argc, argv, nullptr, nullptr) != napi_ok) return false;
  for (size_t i = *argc; i < N; ++i) argv[i] = undefined(env);
  return true;
}

// ------------------------------------------------------------------ sgemm
napi_value Sgemm(napi_env env, napi_callback_info info) {
  Ctx cx{env};
  napi_value argv[22];
  size_t argc = 0;
  if (!get_args(env, info, argv, &argc)) return nullptr;
  if (argc < 17) {
    cx.type_error("sgemm(a, aOff, b, bOff, c, cOff, M, N, K, transA, transB, alpha, beta, batch, strideA, strideB, "
                  "strideC[, bias, biasOff, biasLen, activation, activationAlpha]) takes 17 or 22 arguments");
    return nullptr;
  }
  Mem ma, mb, mc;
  int64_t aOff, bOff, cOff, M, N, K, batch, sa, sb, sc;
  bool ta, tb;
  float alpha, beta;
  constexpr double kDim = 2147483647.0;
  if (!get_mem(cx, argv[0], "a", &ma) || !get_int(cx, argv[1], "aOff", 0, kMaxSafe, &aOff) ||
      !get_mem(cx, argv[2], "b", &mb) || !get_int(cx, argv[3], "bOff", 0, kMaxSafe, &bOff) ||
      !get_mem(cx, argv[4], "c", &mc) || !get_int(cx, argv[5], "cOff", 0, kMaxSafe, &cOff) ||
      !get_int(cx, argv[6], "M", 0, kDim, &M) || !get_int(cx, argv[7], "N", 0, kDim, &N) ||
      !get_int(cx, argv[8], "K", 0, kDim, &K) || !get_bool(cx, argv[9], "transA", &ta) ||
      !get_bool(cx, argv[10], "transB", &tb) || !get_float(cx, argv[11], "alpha", &alpha) ||
      !get_float(cx, argv[12], "beta", &beta) || !get_int(cx, argv[13], "batch", 0, kDim, &batch) ||
      !get_int(cx, argv[14], "strideA", 0, kMaxSafe, &sa) || !get_int(cx, argv[15], "strideB", 0, kMaxSafe, &sb) ||
      !get_int(cx, argv[16], "strideC", 0, kMaxSafe, &sc))
    return nullptr;
  const int64_t sizeA = M * K, sizeB = K * N, sizeC = M * N;  // < 2^62
  if (batch > 1 && sc < sizeC) {
    cx.range_error("strideC must be >= M*N when batch > 1 (output items may not overlap)");
    return nullptr;
  }
  // Extents: the last item's offset plus one matrix (nothing when the matrix is empty or batch is 0).
  int64_t extA = 0, extB = 0, extC = 0;
  if (batch > 0) {
    if ((sizeA > 0 && !mul_add(batch - 1, sa, sizeA, &extA)) || (sizeB > 0 && !mul_add(batch - 1, sb, sizeB, &extB)) ||
        (sizeC > 0 && !mul_add(batch - 1, sc, sizeC, &extC))) {
      cx.range_error("sgemm: batch * stride overflows");
      return nullptr;
    }
  }
  float *A, *B, *C;
  if (!float_range(cx, ma, aOff, extA, "a", &A) || !float_range(cx, mb, bOff, extB, "b", &B) ||
      !float_range(cx, mc, cOff, extC, "c", &C))
    return nullptr;
  if (overlap(C, extC, A, extA) || overlap(C, extC, B, extB)) {
    cx.range_error("sgemm: c overlaps a or b");
    return nullptr;
  }
  p5::Epilogue epi;
  if (argc > 17) {
    int64_t act = 0;
    if (!get_int(cx, argv[20], "activation", 0, 5, &act) || !get_float(cx, argv[21], "activationAlpha", &epi.act_alpha))
      return nullptr;
    epi.act = static_cast<int>(act);
    if (!is_nullish(env, argv[17])) {
      Mem mbias;
      int64_t biasOff, biasLen;
      float* bias;
      if (!get_mem(cx, argv[17], "bias", &mbias) || !get_int(cx, argv[18], "biasOff", 0, kMaxSafe, &biasOff) ||
          !get_int(cx, argv[19], "biasLen", 0, kDim, &biasLen))
        return nullptr;
      if (biasLen != N && biasLen != 1) {
        cx.range_error("biasLen must be N or 1");
        return nullptr;
      }
      if (!float_range(cx, mbias, biasOff, biasLen, "bias", &bias)) return nullptr;
      if (overlap(C, extC, bias, biasLen)) {
        cx.range_error("sgemm: c overlaps the bias");
        return nullptr;
      }
      epi.bias = bias;
      epi.bias_len = biasLen;
    }
  }
  p5::sgemm(ta, tb, M, N, K, alpha, A, sa, B, sb, beta, C, sc, batch, epi);
  return undefined(env);
}

// ------------------------------------------------------------------ softmax, rmsnorm
napi_value Softmax(napi_env env, napi_callback_info info) {
  Ctx cx{env};
  napi_value argv[6];
  size_t argc = 0;
  if (!get_args(env, info, argv, &argc)) return nullptr;
  Mem mx;
  int64_t off, rows, cols;
  float *x, *y;
  if (!get_mem(cx, argv[0], "x", &mx) || !get_int(cx, argv[1], "xOff", 0, kMaxSafe, &off) ||
      !get_int(cx, argv[2], "rows", 0, 2147483647.0, &rows) || !get_int(cx, argv[3], "cols", 0, 2147483647.0, &cols) ||
      !float_range(cx, mx, off, rows * cols, "x", &x))
    return nullptr;
  y = x;
  if (!is_nullish(env, argv[4])) {
    Mem my;
    int64_t yOff;
    if (!get_mem(cx, argv[4], "y", &my) || !get_int(cx, argv[5], "yOff", 0, kMaxSafe, &yOff) ||
        !float_range(cx, my, yOff, rows * cols, "y", &y))
      return nullptr;
    if (y != x && overlap(x, rows * cols, y, rows * cols)) {
      cx.range_error("softmax: y partially overlaps x (in place needs y == x)");
      return nullptr;
    }
  }
  p5::softmax_rows(x, y, rows, cols);
  return undefined(env);
}

napi_value Rmsnorm(napi_env env, napi_callback_info info) {
  Ctx cx{env};
  napi_value argv[9];
  size_t argc = 0;
  if (!get_args(env, info, argv, &argc)) return nullptr;
  Mem mx, my;
  int64_t xOff, yOff, rows, cols;
  float eps = 0.0f;
  float *x, *y, *w = nullptr;
  if (!get_mem(cx, argv[0], "x", &mx) || !get_int(cx, argv[1], "xOff", 0, kMaxSafe, &xOff) ||
      !get_mem(cx, argv[4], "y", &my) || !get_int(cx, argv[5], "yOff", 0, kMaxSafe, &yOff) ||
      !get_int(cx, argv[6], "rows", 0, 2147483647.0, &rows) || !get_int(cx, argv[7], "cols", 0, 2147483647.0, &cols) ||
      !get_float(cx, argv[8], "eps", &eps) || !float_range(cx, mx, xOff, rows * cols, "x", &x) ||
      !float_range(cx, my, yOff, rows * cols, "y", &y))
    return nullptr;
  if (!is_nullish(env, argv[2])) {
    Mem mw;
    int64_t wOff;
    if (!get_mem(cx, argv[2], "w", &mw) || !get_int(cx, argv[3], "wOff", 0, kMaxSafe, &wOff) ||
        !float_range(cx, mw, wOff, rows > 0 ? cols : 0, "w", &w))
      return nullptr;
    if (overlap(y, rows * cols, w, cols)) {
      cx.range_error("rmsnorm: y overlaps w");
      return nullptr;
    }
  }
  if (x != y && overlap(x, rows * cols, y, rows * cols)) {
    cx.range_error("rmsnorm: y partially overlaps x (in place needs y == x)");
    return nullptr;
  }
  p5::rmsnorm_rows(x, w, y, rows, cols, eps);
  return undefined(env);
}

napi_value num(napi_env env, double d);

// ------------------------------------------------------------------ fused training kernels
/** A checked float range argument pair (memory, byte offset). */
bool arg_floats(Ctx& cx, napi_value mem, napi_value off, int64_t count, const char* what, float** out) {
  Mem m;
  int64_t o;
  return get_mem(cx, mem, what, &m) && get_int(cx, off, what, 0, kMaxSafe, &o) && float_range(cx, m, o, count, what, out);
}

napi_value DropoutMask(napi_env env, napi_callback_info info) {
  Ctx cx{env};
  napi_value argv[9];
  size_t argc = 0;
  if (!get_args(env, info, argv, &argc)) return nullptr;
  int64_t n, a, b, c, d, thr;
  float keep = 0.0f;
  float* y;
  if (!get_int(cx, argv[2], "n", 0, 2147483647.0, &n) || !arg_floats(cx, argv[0], argv[1], n, "y", &y) ||
      !get_int(cx, argv[3], "a", 0, 4294967295.0, &a) || !get_int(cx, argv[4], "b", 0, 4294967295.0, &b) ||
      !get_int(cx, argv[5], "c", 0, 4294967295.0, &c) || !get_int(cx, argv[6], "d", 0, 4294967295.0, &d) ||
      !get_int(cx, argv[7], "threshold", -2147483648LL, 2147483647.0, &thr) || !get_float(cx, argv[8], "keep", &keep))
    return nullptr;
  p5::dropout_mask(y, n, static_cast<uint32_t>(a), static_cast<uint32_t>(b), static_cast<uint32_t>(c),
                   static_cast<uint32_t>(d), static_cast<int32_t>(thr), keep);
  return undefined(env);
}

napi_value RmsnormForward(napi_env env, napi_callback_info info) {
  Ctx cx{env};
  napi_value argv[11];
  size_t argc = 0;
  if (!get_args(env, info, argv, &argc)) return nullptr;
  int64_t rows, cols;
  float eps = 0.0f;
  float *x, *w, *y, *r;
  if (!get_int(cx, argv[8], "rows", 0, 2147483647.0, &rows) || !get_int(cx, argv[9], "cols", 1, 2147483647.0, &cols) ||
      !get_float(cx, argv[10], "eps", &eps) || !arg_floats(cx, argv[0], argv[1], rows * cols, "x", &x) ||
      !arg_floats(cx, argv[2], argv[3], cols, "w", &w) || !arg_floats(cx, argv[4], argv[5], rows * cols, "y", &y) ||
      !arg_floats(cx, argv[6], argv[7], rows, "r", &r))
    return nullptr;
  if (overlap(y, rows * cols, x, rows * cols) || overlap(y, rows * cols, w, cols) || overlap(r, rows, x, rows * cols) ||
      overlap(r, rows, y, rows * cols) || overlap(r, rows, w, cols)) {
    cx.range_error("rmsnormForward: outputs overlap");
    return nullptr;
  }
  p5::rmsnorm_forward(x, w, y, r, rows, cols, eps);
  return undefined(env);
}

napi_value RmsnormBackward(napi_env env, napi_callback_info info) {
  Ctx cx{env};
  napi_value argv[14];
  size_t argc = 0;
  if (!get_args(env, info, argv, &argc)) return nullptr;
  int64_t rows, cols;
  float *dy, *x, *w, *r, *dx, *dw;
  if (!get_int(cx, argv[12], "rows", 0, 2147483647.0, &rows) || !get_int(cx, argv[13], "cols", 1, 2147483647.0, &cols) ||
      !arg_floats(cx, argv[0], argv[1], rows * cols, "dy", &dy) || !arg_floats(cx, argv[2], argv[3], rows * cols, "x", &x) ||
      !arg_floats(cx, argv[4], argv[5], cols, "w", &w) || !arg_floats(cx, argv[6], argv[7], rows, "r", &r) ||
      !arg_floats(cx, argv[8], argv[9], rows * cols, "dx", &dx) || !arg_floats(cx, argv[10], argv[11], cols, "dw", &dw))
    return nullptr;
  const int64_t n = rows * cols;
  if (overlap(dx, n, dy, n) || overlap(dx, n, x, n) || overlap(dx, n, w, cols) || overlap(dx, n, r, rows) ||
      overlap(dw, cols, dy, n) || overlap(dw, cols, x, n) || overlap(dw, cols, w, cols) || overlap(dw, cols, r, rows) ||
      overlap(dw, cols, dx, n)) {
    cx.range_error("rmsnormBackward: outputs overlap");
    return nullptr;
  }
  p5::rmsnorm_backward(dy, x, w, r, dx, dw, rows, cols);
  return undefined(env);
}

/** target / weight / lse of an xent call (targets checked against cols). */
bool xent_args(Ctx& cx, napi_value* argv, int64_t rows, int64_t cols, float** x, int32_t** target, float** weight,
               float** lse) {
  float* t;
  if (!arg_floats(cx, argv[0], argv[1], rows * cols, "x", x) || !arg_floats(cx, argv[2], argv[3], rows, "target", &t) ||
      !arg_floats(cx, argv[4], argv[5], rows, "weight", weight) || !arg_floats(cx, argv[6], argv[7], rows, "lse", lse))
    return false;
  *target = reinterpret_cast<int32_t*>(t);
  for (int64_t i = 0; i < rows; ++i) {
    if ((*target)[i] < 0 || (*target)[i] >= cols) {
      cx.range_error("xent: target " + std::to_string((*target)[i]) + " is outside [0, " + std::to_string(cols) + ")");
      return false;
    }
  }
  return true;
}

napi_value XentForward(napi_env env, napi_callback_info info) {
  Ctx cx{env};
  napi_value argv[10];
  size_t argc = 0;
  if (!get_args(env, info, argv, &argc)) return nullptr;
  int64_t rows, cols;
  float *x, *weight, *lse;
  int32_t* target;
  if (!get_int(cx, argv[8], "rows", 0, 2147483647.0, &rows) || !get_int(cx, argv[9], "cols", 1, 2147483647.0, &cols) ||
      !xent_args(cx, argv, rows, cols, &x, &target, &weight, &lse))
    return nullptr;
  if (overlap(lse, rows, x, rows * cols) || overlap(lse, rows, weight, rows) ||
      overlap(lse, rows, reinterpret_cast<float*>(target), rows)) {
    cx.range_error("xentForward: lse overlaps an input");
    return nullptr;
  }
  return num(env, p5::xent_forward(x, target, weight, lse, rows, cols));
}

napi_value XentBackward(napi_env env, napi_callback_info info) {
  Ctx cx{env};
  napi_value argv[13];
  size_t argc = 0;
  if (!get_args(env, info, argv, &argc)) return nullptr;
  int64_t rows, cols;
  float *x, *weight, *lse, *dx;
  float dy = 0.0f;
  int32_t* target;
  if (!get_int(cx, argv[11], "rows", 0, 2147483647.0, &rows) || !get_int(cx, argv[12], "cols", 1, 2147483647.0, &cols) ||
      !xent_args(cx, argv, rows, cols, &x, &target, &weight, &lse) || !get_float(cx, argv[8], "dy", &dy) ||
      !arg_floats(cx, argv[9], argv[10], rows * cols, "dx", &dx))
    return nullptr;
  const int64_t n = rows * cols;
  if (overlap(dx, n, x, n) || overlap(dx, n, weight, rows) || overlap(dx, n, lse, rows) ||
      overlap(dx, n, reinterpret_cast<float*>(target), rows)) {
    cx.range_error("xentBackward: dx overlaps an input");
    return nullptr;
  }
  p5::xent_backward(x, target, weight, lse, dy, dx, rows, cols);
  return undefined(env);
}

// ------------------------------------------------------------------ fused attention
/** dims = [B, H, Lq, Lk, dk, qStride, kStride, vStride, causal] and dropout = null | [a, b, threshold, keep]. */
bool attn_params(Ctx& cx, napi_value dims, napi_value dropout, p5::AttnShape* s, p5::AttnDropout* d) {
  napi_env env = cx.env;
  bool is = false;
  uint32_t len = 0;
  if (napi_is_array(env, dims, &is) != napi_ok || !is || napi_get_array_length(env, dims, &len) != napi_ok || len != 9) {
    cx.type_error("dims must be [B, H, Lq, Lk, dk, qStride, kStride, vStride, causal]");
    return false;
  }
  const char* names[9] = {"B", "H", "Lq", "Lk", "dk", "qStride", "kStride", "vStride", "causal"};
  int64_t v[9];
  for (uint32_t i = 0; i < 9; ++i) {
    napi_value e;
    if (napi_get_element(env, dims, i, &e) != napi_ok || !get_int(cx, e, names[i], 0, 2147483647.0, &v[i])) {
      if (!cx.failed) cx.type_error("dims must hold numbers");
      return false;
    }
  }
  *s = p5::AttnShape{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8] != 0};
  const int64_t hd = s->H * s->dk;
  if (s->q_stride < hd || s->k_stride < hd || s->v_stride < hd) {
    cx.range_error("attention: a row stride is below H*dk");
    return false;
  }
  if (s->Lk == 0 && s->Lq > 0) {
    cx.range_error("attention: no keys (Lk = 0)");
    return false;
  }
  if (s->causal && s->Lq != s->Lk) {
    cx.range_error("attention: causal needs Lq == Lk");
    return false;
  }
  if (s->B * s->H * s->Lq * s->Lk > 4294967295LL) {
    cx.range_error("attention: B*H*Lq*Lk exceeds 2^32 (dropout counters)");
    return false;
  }
  if (is_nullish(env, dropout)) return true;
  if (napi_is_array(env, dropout, &is) != napi_ok || !is || napi_get_array_length(env, dropout, &len) != napi_ok || len != 4) {
    cx.type_error("dropout must be null or [a, b, threshold, keep]");
    return false;
  }
  napi_value e[4];
  for (uint32_t i = 0; i < 4; ++i) napi_get_element(env, dropout, i, &e[i]);
  int64_t a, b, thr;
  if (!get_int(cx, e[0], "dropout a", 0, 4294967295.0, &a) || !get_int(cx, e[1], "dropout b", 0, 4294967295.0, &b) ||
      !get_int(cx, e[2], "dropout threshold", -2147483648LL, 2147483647.0, &thr) ||
      !get_float(cx, e[3], "dropout keep", &d->keep))
    return false;
  d->on = true;
  d->a = static_cast<uint32_t>(a);
  d->b = static_cast<uint32_t>(b);
  d->threshold = static_cast<int32_t>(thr);
  return true;
}

/** Floats spanned by `rows` rows of `width` at `stride`. */
int64_t rows_extent(int64_t rows, int64_t stride, int64_t width) { return rows > 0 && width > 0 ? (rows - 1) * stride + width : 0; }

/** An optional (memory, offset) pair: null memory gives a null pointer. */
bool opt_floats(Ctx& cx, napi_value mem, napi_value off, int64_t count, const char* what, float** out) {
  *out = nullptr;
  return is_nullish(cx.env, mem) || arg_floats(cx, mem, off, count, what, out);
}

napi_value AttentionForward(napi_env env, napi_callback_info info) {
  Ctx cx{env};
  napi_value argv[16];
  size_t argc = 0;
  if (!get_args(env, info, argv, &argc)) return nullptr;
  p5::AttnShape s;
  p5::AttnDropout d;
  if (!attn_params(cx, argv[14], argv[15], &s, &d)) return nullptr;
  const int64_t hd = s.H * s.dk, nq = rows_extent(s.B * s.Lq, s.q_stride, hd), nk = rows_extent(s.B * s.Lk, s.k_stride, hd),
                nv = rows_extent(s.B * s.Lk, s.v_stride, hd), no = s.B * s.Lq * hd, np = s.B * s.H * s.Lq * s.Lk;
  float *q, *k, *v, *bias, *mask, *o, *p;
  if (!arg_floats(cx, argv[0], argv[1], nq, "q", &q) || !arg_floats(cx, argv[2], argv[3], nk, "k", &k) ||
      !arg_floats(cx, argv[4], argv[5], nv, "v", &v) ||
      !opt_floats(cx, argv[6], argv[7], s.H * s.Lq * s.Lk, "bias", &bias) ||
      !opt_floats(cx, argv[8], argv[9], s.B * s.Lk, "mask", &mask) || !arg_floats(cx, argv[10], argv[11], no, "o", &o) ||
      !arg_floats(cx, argv[12], argv[13], np, "p", &p))
    return nullptr;
  for (auto [out, n] : {std::pair<float*, int64_t>{o, no}, {p, np}}) {
    if (overlap(out, n, q, nq) || overlap(out, n, k, nk) || overlap(out, n, v, nv) ||
        (bias && overlap(out, n, bias, s.H * s.Lq * s.Lk)) || (mask && overlap(out, n, mask, s.B * s.Lk))) {
      cx.range_error("attentionForward: an output overlaps an input");
      return nullptr;
    }
  }
  if (overlap(o, no, p, np)) {
    cx.range_error("attentionForward: o overlaps p");
    return nullptr;
  }
  p5::attention_forward(s, q, k, v, bias, mask, d, o, p);
  return undefined(env);
}

napi_value AttentionBackward(napi_env env, napi_callback_info info) {
  Ctx cx{env};
  napi_value argv[20];
  size_t argc = 0;
  if (!get_args(env, info, argv, &argc)) return nullptr;
  p5::AttnShape s;
  p5::AttnDropout d;
  if (!attn_params(cx, argv[18], argv[19], &s, &d)) return nullptr;
  const int64_t hd = s.H * s.dk, nq = rows_extent(s.B * s.Lq, s.q_stride, hd), nk = rows_extent(s.B * s.Lk, s.k_stride, hd),
                nv = rows_extent(s.B * s.Lk, s.v_stride, hd), no = s.B * s.Lq * hd, np = s.B * s.H * s.Lq * s.Lk,
                nb = s.H * s.Lq * s.Lk;
  float *q, *k, *v, *p, *dout, *dq, *dk, *dv, *dbias;
  if (!arg_floats(cx, argv[0], argv[1], nq, "q", &q) || !arg_floats(cx, argv[2], argv[3], nk, "k", &k) ||
      !arg_floats(cx, argv[4], argv[5], nv, "v", &v) || !arg_floats(cx, argv[6], argv[7], np, "p", &p) ||
      !arg_floats(cx, argv[8], argv[9], no, "dout", &dout) || !arg_floats(cx, argv[10], argv[11], nq, "dq", &dq) ||
      !arg_floats(cx, argv[12], argv[13], nk, "dk", &dk) || !arg_floats(cx, argv[14], argv[15], nv, "dv", &dv) ||
      !opt_floats(cx, argv[16], argv[17], nb, "dbias", &dbias))
    return nullptr;
  // dq, dk, dv may share one buffer (fused QKV: disjoint columns); none may overlap an input
  for (auto [out, n] : {std::pair<float*, int64_t>{dq, nq}, {dk, nk}, {dv, nv}, {dbias, dbias ? nb : 0}}) {
    if (overlap(out, n, q, nq) || overlap(out, n, k, nk) || overlap(out, n, v, nv) || overlap(out, n, p, np) ||
        overlap(out, n, dout, no)) {
      cx.range_error("attentionBackward: an output overlaps an input");
      return nullptr;
    }
  }
  if (dbias && (overlap(dbias, nb, dq, nq) || overlap(dbias, nb, dk, nk) || overlap(dbias, nb, dv, nv))) {
    cx.range_error("attentionBackward: dbias overlaps dq, dk or dv");
    return nullptr;
  }
  p5::attention_backward(s, q, k, v, p, dout, d, dq, dk, dv, dbias);
  return undefined(env);
}

napi_value Adamw(napi_env env, napi_callback_info info) {
  Ctx cx{env};
  napi_value argv[16];
  size_t argc = 0;
  if (!get_args(env, info, argv, &argc)) return nullptr;
  int64_t n;
  float *p, *g, *m, *v;
  double d[7];
  const char* names[7] = {"beta1", "beta2", "eps", "keep", "stepSize", "sqrtBc2", "gradScale"};
  if (!get_int(cx, argv[8], "n", 0, kMaxSafe, &n) || !arg_floats(cx, argv[0], argv[1], n, "params", &p) ||
      !arg_floats(cx, argv[2], argv[3], n, "grads", &g) || !arg_floats(cx, argv[4], argv[5], n, "m", &m) ||
      !arg_floats(cx, argv[6], argv[7], n, "v", &v))
    return nullptr;
  for (int i = 0; i < 7; ++i) {
    if (napi_get_value_double(env, argv[9 + i], &d[i]) != napi_ok) {
      cx.type_error(std::string(names[i]) + " must be a number");
      return nullptr;
    }
  }
  if (overlap(p, n, g, n) || overlap(p, n, m, n) || overlap(p, n, v, n) || overlap(g, n, m, n) || overlap(g, n, v, n) ||
      overlap(m, n, v, n)) {
    cx.range_error("adamw: params, grads, m and v must not overlap");
    return nullptr;
  }
  p5::adamw(p, g, m, v, n, d[0], d[1], d[2], d[3], d[4], d[5], d[6]);
  return undefined(env);
}

// ------------------------------------------------------------------ info, settings
napi_value str(napi_env env, const char* s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

napi_value num(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "isa", str(env, p5::isa_name(p5::current_isa())));
  napi_set_named_property(env, o, "detectedIsa", str(env, p5::isa_name(p5::detect_isa())));
  napi_set_named_property(env, o, "threads", num(env, p5::threads()));
  napi_set_named_property(env, o, "version", num(env, kVersion));
  return o;
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  Ctx cx{env};
  napi_value argv[1];
  size_t argc = 0;
  int64_t n;
  if (!get_args(env, info, argv, &argc) || !get_int(cx, argv[0], "threads", 1, 256, &n)) return nullptr;
  return num(env, p5::set_threads(static_cast<int>(n)));
}

napi_value SetIsa(napi_env env, napi_callback_info info) {
  Ctx cx{env};
  napi_value argv[1];
  size_t argc = 0;
  if (!get_args(env, info, argv, &argc)) return nullptr;
  char buf[16] = {0};
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], buf, sizeof buf, &len) != napi_ok) {
    cx.type_error("setIsa takes 'avx512', 'avx2' or 'scalar'");
    return nullptr;
  }
  p5::Isa want;
  if (!std::strcmp(buf, "avx512")) want = p5::Isa::avx512;
  else if (!std::strcmp(buf, "avx2")) want = p5::Isa::avx2;
  else if (!std::strcmp(buf, "scalar")) want = p5::Isa::scalar;
  else {
    cx.type_error("setIsa takes 'avx512', 'avx2' or 'scalar'");
    return nullptr;
  }
  return str(env, p5::isa_name(p5::set_isa(want)));
}

}  // namespace

/** A compute entry point run with subnormal floats flushed to zero, the caller's mode restored after (pool.h). */
template <napi_value (*F)(napi_env, napi_callback_info)>
napi_value Flushed(napi_env env, napi_callback_info info) {
  const FlushSubnormals flush;
  return F(env, info);
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  const napi_property_descriptor props[] = {
      {"sgemm", nullptr, Flushed<Sgemm>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"softmax", nullptr, Flushed<Softmax>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"rmsnorm", nullptr, Flushed<Rmsnorm>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"dropoutMask", nullptr, Flushed<DropoutMask>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"rmsnormForward", nullptr, Flushed<RmsnormForward>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"rmsnormBackward", nullptr, Flushed<RmsnormBackward>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"xentForward", nullptr, Flushed<XentForward>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"xentBackward", nullptr, Flushed<XentBackward>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"attentionForward", nullptr, Flushed<AttentionForward>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"attentionBackward", nullptr, Flushed<AttentionBackward>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"adamw", nullptr, Flushed<Adamw>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"setIsa", nullptr, SetIsa, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
