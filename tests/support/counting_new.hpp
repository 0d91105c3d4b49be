// Counts heap allocations, for tests and benchmarks that prove a path allocates nothing.
//
// Linking the object library kneeload_counting_new into a binary replaces the global operator
// new/delete (every form) there with versions that count and forward to malloc/free. Eigen
// allocates through std::malloc, not operator new, so on glibc builds without a sanitizer
// malloc/calloc/realloc are interposed and counted too (forwarding to glibc's own entry points);
// a sanitizer runtime owns malloc, so there the operator new count stands alone. Link it only
// into binaries of their own: every test in such a binary runs with these operators.
// Thread-safe: the counters are relaxed atomics, counted from any thread.
#pragma once

#include <cstdint>

namespace kneeload::alloc_count {

// Whether malloc/calloc/realloc are counted in this build (glibc, no sanitizer).
bool counts_malloc();
// Calls of any operator new since the start of the process.
std::uint64_t new_calls();
// Calls of any operator delete on a non-null pointer since the start of the process.
std::uint64_t delete_calls();
// Calls of malloc, calloc and realloc since the start; 0 when !counts_malloc().
std::uint64_t malloc_calls();
// Heap allocations, each counted once: with malloc counted, the mallocs (those under operator new
// included) plus the aligned operator new calls, which glibc serves without malloc; else the
// operator new calls.
std::uint64_t allocations();

// Operator new calls and mallocs side by side, so a test can report both across a piece of code.
struct Calls {
  std::uint64_t news = 0;
  std::uint64_t mallocs = 0;  // 0 when !counts_malloc()
  Calls& operator+=(const Calls& o) {
    news += o.news;
    mallocs += o.mallocs;
    return *this;
  }
};

// The calls fn() made.
template <class Fn>
Calls count_calls(Fn&& fn) {
  const Calls before{new_calls(), malloc_calls()};
  fn();
  return {new_calls() - before.news, malloc_calls() - before.mallocs};
}

}  // namespace kneeload::alloc_count
