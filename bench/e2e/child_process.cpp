#include "child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

namespace kneeload::bench {
namespace {

constexpr int kMaxChildren = 16;
std::atomic<pid_t> g_children[kMaxChildren];
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<pid_t>::is_always_lock_free, "read from a signal handler");

extern "C" void on_interrupt(int) {
  g_interrupted.store(true);
  for (std::atomic<pid_t>& c : g_children) {
    const pid_t pid = c.load();
    if (pid > 0) ::kill(pid, SIGKILL);  // async-signal-safe; reaped by ~ChildProcess
  }
}

constexpr auto kPollInterval = std::chrono::milliseconds(2);

}  // namespace

void install_interrupt_handlers() {
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGHUP, &action, nullptr);
}

bool interrupted() { return g_interrupted.load(); }

void check_interrupted() {
  if (interrupted()) throw Interrupted();
}

void nap(std::chrono::milliseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
    check_interrupted();
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(end - std::chrono::steady_clock::now(),
                                                                             std::chrono::milliseconds(50)));
  }
  check_interrupted();
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& stdout_path,
                           const std::string& stderr_path) {
  check_interrupted();
  for (int i = 0; i < kMaxChildren && slot_ < 0; ++i) {
    pid_t expected = 0;
    if (g_children[i].compare_exchange_strong(expected, -1)) slot_ = i;  // reserved until forked
  }
  if (slot_ < 0) throw std::runtime_error("too many child processes");
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) {
    g_children[slot_].store(0);
    throw std::runtime_error("fork failed");
  }
  if (pid_ == 0) {
    // The bench dying for any reason (even SIGKILL) takes its children with it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) std::_Exit(126);
    const int out = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0 || err < 0 || ::dup2(out, STDOUT_FILENO) < 0 || ::dup2(err, STDERR_FILENO) < 0) std::_Exit(126);
    std::vector<char*> raw;
    for (const std::string& a : argv) raw.push_back(const_cast<char*>(a.c_str()));
    raw.push_back(nullptr);
    ::execv(raw[0], raw.data());
    std::_Exit(127);
  }
  g_children[slot_].store(pid_);
  // A signal that came between the check above and the store would have missed this child.
  if (interrupted()) ::kill(pid_, SIGKILL);
}

ChildProcess::~ChildProcess() {
  if (!code_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  g_children[slot_].store(0);
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) { return reap(timeout, true); }

std::optional<int> ChildProcess::reap(std::chrono::milliseconds timeout, bool interruptible) {
  if (code_) return code_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      g_children[slot_].store(0);
      return code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    if (interruptible) check_interrupted();
    std::this_thread::sleep_for(kPollInterval);
  }
}

void ChildProcess::signal(int signo) const {
  if (!code_) ::kill(pid_, signo);
}

int ChildProcess::stop(std::chrono::milliseconds grace) noexcept {
  signal(SIGTERM);
  if (const std::optional<int> code = reap(interrupted() ? std::chrono::milliseconds(0) : grace, false)) return *code;
  signal(SIGKILL);
  return reap(std::chrono::milliseconds(5000), false).value_or(128 + SIGKILL);
}

}  // namespace kneeload::bench
