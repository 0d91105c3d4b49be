// A counter with one writing thread and any number of reading threads.
// The writer pays a relaxed load+store (no lock prefix); readers see a recent value.
// Used on the hot path instead of prometheus counters (STYLE.md: fold in at scrape time).
#pragma once

#include <atomic>
#include <cstdint>

namespace kneeload::proto {

class Counter {
 public:
  // Only the owning thread may call add()/inc().
  void add(std::uint64_t n) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void inc() { add(1); }
  std::uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

}  // namespace kneeload::proto
