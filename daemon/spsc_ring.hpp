// SpscRing: bounded single-producer/single-consumer lock-free queue, rigtorp/SPSCQueue style.
//
// Why this shape: each index that two threads write sits on its own cache line, and each side
// keeps a cached copy of the other side's index, so it touches the shared line only when the
// ring looks full (producer) or empty (consumer). front()/pop() let the consumer read in place,
// which boost::lockfree::spsc_queue's pop-by-copy does not. ENGINEERING.md §1d measured 2–3×
// Boost's throughput with a throwaway program; bench/ring_bench re-measures both in one run
// (the ratio varies with the load on this shared machine: see the issue notes).
//
// Thread ownership: exactly one thread calls try_push(), and one other at a time calls
// front()/pop(). The consumer side may pass between threads if each hand-over is a
// release/acquire pair (the Publisher's publishing right is one).
// Memory: one allocation at construction, capacity + 1 slots plus padding; none afterwards.
#pragma once

#include <atomic>
#include <cassert>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>

namespace kneeload::daemon {

template <typename T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "ring items are copied with plain stores");

 public:
  // REQUIRES: capacity >= 1.
  explicit SpscRing(std::size_t capacity)
      : slots_count_(capacity + 1),  // one slot stays empty to tell full from empty
        storage_(std::make_unique<T[]>(slots_count_ + 2 * kPadding)) {
    assert(capacity >= 1);
  }
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  // Producer only. Returns false when the ring is full; the item is not stored and the caller
  // counts the drop. Never blocks, never allocates.
  [[nodiscard]] bool try_push(const T& item) {
    const std::size_t write = write_idx_.load(std::memory_order_relaxed);
    std::size_t next = write + 1;
    if (next == slots_count_) next = 0;
    if (next == read_idx_cache_) {
      read_idx_cache_ = read_idx_.load(std::memory_order_acquire);
      if (next == read_idx_cache_) return false;
    }
    slot(write) = item;
    write_idx_.store(next, std::memory_order_release);
    return true;
  }

  // Consumer only. The oldest item, read in place, or nullptr when empty.
  T* front() {
    const std::size_t read = read_idx_.load(std::memory_order_relaxed);
    if (read == write_idx_cache_) {
      write_idx_cache_ = write_idx_.load(std::memory_order_acquire);
      if (read == write_idx_cache_) return nullptr;
    }
    return &slot(read);
  }

  // Consumer only. REQUIRES: front() returned non-null since the last pop().
  void pop() {
    const std::size_t read = read_idx_.load(std::memory_order_relaxed);
    // Checks the cache, not the shared index: a pop() without a front() that saw the item
    // would leave the cache behind the read index and make the next front() read garbage.
    assert(read != write_idx_cache_ && "pop() requires a non-null front()");
    std::size_t next = read + 1;
    if (next == slots_count_) next = 0;
    read_idx_.store(next, std::memory_order_release);
  }

  // Any thread; approximate while the other side runs. For metrics and status only.
  std::size_t size_approx() const {
    const std::size_t write = write_idx_.load(std::memory_order_acquire);
    const std::size_t read = read_idx_.load(std::memory_order_acquire);
    return write >= read ? write - read : slots_count_ - read + write;
  }
  std::size_t capacity() const { return slots_count_ - 1; }

 private:
  // Hard-coded rather than std::hardware_destructive_interference_size: g++ 12 warns that the
  // latter may change with -mtune (ENGINEERING.md pitfall 8).
  static constexpr std::size_t kCacheLine = 64;
  // Padding slots keep neighbouring heap objects off the first and last slots' cache lines.
  static constexpr std::size_t kPadding = (kCacheLine - 1) / sizeof(T) + 1;

  T& slot(std::size_t i) { return storage_[i + kPadding]; }

  const std::size_t slots_count_;
  const std::unique_ptr<T[]> storage_;

  alignas(kCacheLine) std::atomic<std::size_t> write_idx_{0};
  alignas(kCacheLine) std::size_t read_idx_cache_ = 0;  // producer's view of read_idx_
  alignas(kCacheLine) std::atomic<std::size_t> read_idx_{0};
  alignas(kCacheLine) std::size_t write_idx_cache_ = 0;  // consumer's view of write_idx_
  char tail_padding_[kCacheLine - sizeof(std::size_t)] = {};
};

}  // namespace kneeload::daemon
