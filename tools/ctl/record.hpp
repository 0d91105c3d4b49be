// `kneeloadctl record`: see record.cpp and README "kneeloadctl".
#pragma once

#include "command.hpp"

namespace kneeload::ctl {

extern const Command kRecordCommand;

}  // namespace kneeload::ctl
