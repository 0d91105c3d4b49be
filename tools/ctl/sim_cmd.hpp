// `kneeloadctl sim`: see sim_cmd.cpp and README "kneeloadctl".
#pragma once

#include "command.hpp"

namespace kneeload::ctl {

extern const Command kSimCommand;

}  // namespace kneeload::ctl
