// `kneeloadctl replay`: see replay.cpp and README "kneeloadctl".
#pragma once

#include "command.hpp"

namespace kneeload::ctl {

extern const Command kReplayCommand;

}  // namespace kneeload::ctl
