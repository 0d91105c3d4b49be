// Doorbell: lets an idle consumer thread sleep in the kernel and be woken by its producers,
// while a busy pipeline pays no syscall at all.
//
// Why: spinning on two shared cores steals the producer's CPU, and a fixed sleep adds its
// whole length to latency. The consumer announces that it is about to sleep; a producer rings
// (futex wake) only when it sees that announcement. A seq_cst fence on each side (Dekker
// pattern) guarantees that either the consumer sees the new item or the producer sees the flag.
// Thread ownership: one consumer calls wait(); any number of producers call ring().
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>

namespace kneeload::daemon {

class Doorbell {
 public:
  // Consumer. `still_empty()` re-checks the inputs after the announcement; the thread sleeps
  // only if they are still empty, until a ring() or the timeout.
  template <typename StillEmpty>
  void wait(StillEmpty&& still_empty, std::chrono::microseconds timeout) {
    state_.store(kSleeping, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (still_empty()) {
      timespec ts{};
      ts.tv_sec = static_cast<time_t>(timeout.count() / 1000000);
      ts.tv_nsec = static_cast<long>((timeout.count() % 1000000) * 1000);
      // EINTR, EAGAIN (already rung) and ETIMEDOUT all just mean: look again.
      ::syscall(SYS_futex, word(), FUTEX_WAIT_PRIVATE, kSleeping, &ts, nullptr, 0);
    }
    state_.store(kAwake, std::memory_order_relaxed);
  }

  // Producer, after making items visible (ring push). Costs a fence; a syscall only when the
  // consumer is asleep.
  void ring() {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (state_.load(std::memory_order_relaxed) == kSleeping) {
      state_.store(kAwake, std::memory_order_relaxed);
      ::syscall(SYS_futex, word(), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    }
  }

 private:
  static constexpr std::uint32_t kAwake = 0;
  static constexpr std::uint32_t kSleeping = 1;
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  // futex(2) needs the address of the 32-bit word; std::atomic<uint32_t> is that word.
  std::uint32_t* word() { return reinterpret_cast<std::uint32_t*>(&state_); }
  alignas(64) std::atomic<std::uint32_t> state_{kAwake};
};

}  // namespace kneeload::daemon
