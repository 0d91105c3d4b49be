// Measures live heap bytes exactly, for the tests that bound what kneeloadd keeps per station
// (tests/model/session_memory_test, tests/daemon/station_memory_test).
//
// Linking the object library kneeload_live_bytes_new into a binary replaces the global operator
// new/delete (every form) there with versions that put the block's size in a header before it,
// so live bytes are the sizes asked for, not malloc's rounding. Only blocks allocated while
// counting (between begin() and end()) are counted, and their deletes whenever they come; the
// rest of the program's allocations are not. Eigen's fixed-size matrices, the only kind fusion
// uses, do not allocate. Unlike counting_new.hpp this does not count malloc.
// Thread ownership: one thread allocates while counting (plain globals, no atomics).
#pragma once

#include <cstddef>
#include <cstdint>

namespace kneeload::live_bytes {

struct Measured {
  std::int64_t live = 0;   // counted bytes live at end(), net as live() says
  std::int64_t peak = 0;   // the most they held at once
  std::uint64_t news = 0;  // counted allocations
};

// Counting starts, from zero.
void begin();
// Counting stops; what it saw.
Measured end();
// Counted bytes live now, net since begin(): a block counted in an earlier begin()..end() and
// freed in this one subtracts its size, so the sums of successive measurements track what a
// long-lived object holds (session_memory_test's run through a session).
std::int64_t live();
// The size of the next counted allocation will be kept for recorded_size().
void record_next_size();
std::size_t recorded_size();

// What fn() allocates and keeps.
template <class Fn>
Measured measure(Fn&& fn) {
  begin();
  fn();
  return end();
}

}  // namespace kneeload::live_bytes
