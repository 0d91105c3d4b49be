// `kneeloadctl load`: see load.cpp and README "kneeloadctl".
#pragma once

#include "command.hpp"

namespace kneeload::ctl {

extern const Command kLoadCommand;

}  // namespace kneeload::ctl
