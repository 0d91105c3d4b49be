// kneeloadctl runners, sessions and export: read the runner history kneeloadd keeps under its
// state directory (daemon/store). The file is opened read-only (SQLITE_OPEN_READONLY, WAL, a
// busy timeout), so these commands are safe while the daemon runs: each listing reads one
// consistent snapshot of what the daemon had committed.
#pragma once

#include "command.hpp"

namespace kneeload::ctl {

extern const Command kRunnersCommand;
extern const Command kSessionsCommand;
extern const Command kExportCommand;

}  // namespace kneeload::ctl
