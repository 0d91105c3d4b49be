// A tmpfs mounted for the life of a test: a tiny one stands in for a full disk, a read-only one
// for a state directory the daemon cannot write. Mounting needs root (CAP_SYS_ADMIN); CI runs as
// root, and elsewhere the tests that need it skip and print error().
#pragma once

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

namespace kneeload::testing {

class TmpfsMount {
 public:
  // options: tmpfs mount options, e.g. "size=256k" or "size=1m,ro".
  TmpfsMount(const std::filesystem::path& at, const std::string& options) : at_(at) {
    ok_ = ::mount("tmpfs", at.c_str(), "tmpfs", 0, options.c_str()) == 0;
    if (!ok_) error_ = std::strerror(errno);
  }
  ~TmpfsMount() {
    if (ok_) ::umount2(at_.c_str(), MNT_DETACH);
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }

 private:
  std::filesystem::path at_;
  bool ok_ = false;
  std::string error_;
};

}  // namespace kneeload::testing
