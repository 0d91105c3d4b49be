// `kneeloadctl tap`: see tap.cpp and README "kneeloadctl".
#pragma once

#include "command.hpp"

namespace kneeload::ctl {

extern const Command kTapCommand;

}  // namespace kneeload::ctl
