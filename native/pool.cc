#include "pool.h"

#include <chrono>
#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define P5_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define P5_RELAX() __asm__ __volatile__("yield")
#else
#define P5_RELAX() ((void)0)
#endif

namespace p5 {

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t spin_ns_from_env() {
  const char* s = std::getenv("P5REC_SPIN_US");
  if (s && *s) {
    char* end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (end != s && v >= 0 && v <= 1000000) return static_cast<int64_t>(v) * 1000;
  }
  return 50 * 1000;  // 50 us
}

}  // namespace

#if defined(__x86_64__) || defined(__i386__)
FlushSubnormals::FlushSubnormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }  // FTZ (bit 15) | DAZ (bit 6)
FlushSubnormals::~FlushSubnormals() { _mm_setcsr(saved_); }
#else
// Elsewhere (e.g. aarch64's FPCR.FZ) not set yet: subnormals stay exact, only slower.
FlushSubnormals::FlushSubnormals() {}
FlushSubnormals::~FlushSubnormals() {}
#endif

Pool::Pool(int threads) : spin_ns_(spin_ns_from_env()) {
  if (threads < 1) threads = 1;
  workers_.reserve(static_cast<size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_main(); });
}

Pool::~Pool() {
  {
    std::lock_guard<std::mutex> busy(busy_);
    std::lock_guard<std::mutex> lock(m_);
    stop_.store(true, std::memory_order_seq_cst);
    cv_.notify_all();
  }
  for (auto& t : workers_) t.join();
}

bool Pool::wait_for_job(uint64_t seen) {
  const int64_t t0 = now_ns();
  for (uint32_t i = 1;; ++i) {
    if (gen_.load(std::memory_order_acquire) != seen) return true;
    if (stop_.load(std::memory_order_relaxed)) return false;
    P5_RELAX();
    if ((i & 63) == 0 && now_ns() - t0 > spin_ns_) break;
  }
  std::unique_lock<std::mutex> lock(m_);
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  cv_.wait(lock, [&] { return gen_.load(std::memory_order_seq_cst) != seen || stop_.load(); });
  sleepers_.fetch_sub(1, std::memory_order_relaxed);
  return !stop_.load();
}

void Pool::work() {
  for (;;) {
    const int64_t t = next_.fetch_add(1, std::memory_order_relaxed);
    if (t >= n_) break;
    fn_(ctx_, t);
    done_.fetch_add(1, std::memory_order_release);
  }
}

void Pool::worker_main() {
  const FlushSubnormals flush;  // for the worker's whole life: it runs only kernels
  uint64_t seen = 0;
  for (;;) {
    if (!wait_for_job(seen)) return;
    seen = gen_.load(std::memory_order_acquire);
    // Join the job that is open now (if any). Joining a newer job than the
    // one that woke us is fine: its fields were written before it opened.
    int a = active_.load(std::memory_order_acquire);
    bool joined = false;
    while (a >= 0) {
      if (active_.compare_exchange_weak(a, a + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        joined = true;
        break;
      }
    }
    if (!joined) continue;
    work();
    active_.fetch_sub(1, std::memory_order_release);
  }
}

void Pool::run(int64_t n, TaskFn fn, void* ctx) {
  if (n <= 0) return;
  std::unique_lock<std::mutex> busy = try_acquire();
  if (!busy.owns_lock()) {
    for (int64_t t = 0; t < n; ++t) fn(ctx, t);
    return;
  }
  run_locked(n, fn, ctx);
}

void Pool::run_locked(int64_t n, TaskFn fn, void* ctx) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    for (int64_t t = 0; t < n; ++t) fn(ctx, t);
    return;
  }
  fn_ = fn;
  ctx_ = ctx;
  n_ = n;
  next_.store(0, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  active_.store(0, std::memory_order_release);  // open
  gen_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(m_);
    cv_.notify_all();
  }
  work();
  for (uint32_t i = 1; done_.load(std::memory_order_acquire) < n; ++i) {
    P5_RELAX();
    if ((i & 1023) == 0) std::this_thread::yield();  // a worker holding a task may share our core
  }
  // Close: wait for the workers still inside (they have no task left).
  for (uint32_t i = 1;; ++i) {
    int zero = 0;
    if (active_.compare_exchange_weak(zero, -1, std::memory_order_acq_rel, std::memory_order_relaxed)) break;
    P5_RELAX();
    if ((i & 1023) == 0) std::this_thread::yield();
  }
}

}  // namespace p5
