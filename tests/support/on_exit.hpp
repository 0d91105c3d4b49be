// Runs a function when the scope ends, however it ends: for tests that start threads and must
// stop and join them even when an ASSERT returns early (a joinable std::thread destroyed would
// terminate the test binary instead of failing the test). Header-only, standard library only.
#pragma once

#include <functional>
#include <utility>

namespace kneeload::testing {

class OnExit {
 public:
  explicit OnExit(std::function<void()> fn) : fn_(std::move(fn)) {}
  ~OnExit() { fn_(); }
  OnExit(const OnExit&) = delete;
  OnExit& operator=(const OnExit&) = delete;

 private:
  std::function<void()> fn_;
};

}  // namespace kneeload::testing
