// A small persistent thread pool for the native kernels.
//
// The calling thread always works too, so `threads() - 1` workers exist.
// Workers spin briefly after a job (calls come in bursts: one training step
// runs hundreds of matmuls with a little JS/wasm in between) and then sleep
// on a condition variable. One job runs at a time: a call that finds the pool
// busy (another JS thread, e.g. a worker_threads replica, is using it) runs
// all its tasks on its own thread instead of waiting.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace p5 {

/**
 * Flush subnormal floats to zero (FTZ) and read subnormal inputs as zero
 * (DAZ) on x86 while in scope; the previous mode comes back on exit, so JS
 * arithmetic on the calling thread keeps IEEE subnormals. Why: once a model
 * fits its data, some activations and gradients sink into the subnormal
 * range, where each operation costs tens of cycles; a Beauty P5 without
 * dropout slowed from 171 to 412 ms a step that way (docs/native.md).
 * Values below ~1.2e-38 carry nothing a float32 model can use.
 */
class FlushSubnormals {
 public:
  FlushSubnormals();
  ~FlushSubnormals();
  FlushSubnormals(const FlushSubnormals&) = delete;
  FlushSubnormals& operator=(const FlushSubnormals&) = delete;

 private:
  unsigned saved_ = 0;
};

class Pool {
 public:
  using TaskFn = void (*)(void* ctx, int64_t task);

  explicit Pool(int threads);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  /**
   * Runs fn(ctx, t) for every t in [0, n), each exactly once, and returns
   * when all are done: on the pool when it is free, else on this thread.
   */
  void run(int64_t n, TaskFn fn, void* ctx);

  /** The pool for a sequence of jobs (run_locked), if no other thread has it. */
  std::unique_lock<std::mutex> try_acquire() { return std::unique_lock<std::mutex>(busy_, std::try_to_lock); }
  /** run() for a caller holding try_acquire()'s lock. */
  void run_locked(int64_t n, TaskFn fn, void* ctx);

 private:
  void worker_main();
  bool wait_for_job(uint64_t seen);
  void work();

  std::vector<std::thread> workers_;
  std::mutex busy_;  // held by the caller of run() for the whole job
  std::mutex m_;     // for the sleeping workers
  std::condition_variable cv_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  int64_t spin_ns_;

  // The current job. Written by the caller only while no worker has joined
  // it (active_ < 0); read by workers only after joining (active_ >= 0).
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int64_t> done_{0};
  /** -1: closed; otherwise the number of workers inside the current job. */
  std::atomic<int> active_{-1};
};

}  // namespace p5
