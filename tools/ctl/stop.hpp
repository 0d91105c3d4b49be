// Ctrl-C and SIGTERM for the subcommands' loops: the handler only sets a lock-free flag that
// the loops poll between bounded waits (at most ~100 ms each), so every exit path runs the
// normal clean-up: a recording is flushed and closed, a summary printed.
//
// The handlers are installed without SA_RESTART, so a blocking call returns EINTR at once;
// sockets.hpp turns the EINTR that cppzmq throws into "nothing received".
#pragma once

namespace kneeload::ctl {

void install_stop_handlers();
bool stop_requested();

}  // namespace kneeload::ctl
