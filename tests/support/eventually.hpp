// Polls a condition until it holds or a time limit passes: for tests that wait on another
// thread or process without a hook to be told. Header-only, standard library only.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace kneeload::testing {

// True as soon as cond() holds; after `timeout`, cond()'s last answer.
inline bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

}  // namespace kneeload::testing
