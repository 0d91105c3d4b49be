// Frame.recorded_arrival_us stamping, shared by `replay` (every replayed frame) and
// `record --stamp-forwarded` (every forwarded frame, so the live run aligns as replays will).
//
// The field is appended to the frame's bytes as one varint field rather than the frame being
// parsed and re-serialised: protobuf lets a later scalar field win over an earlier one, so the
// result is the frame exactly as it was plus the stamp, with no re-encoding that could change
// what the daemon sees (field order, unknown fields, non-canonical encodings). It costs 1 + up
// to 10 bytes (7 for a steady clock below 2^41 µs, ~25 days of uptime).
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace kneeload::ctl {

// Appends recorded_arrival_us = `arrival_us` to `frame` iff the bytes parse as a
// kneeload.v1.Frame and arrival_us != 0, and returns true iff they parse. Bytes that do not
// parse are left unchanged: appending could turn a malformed frame into a valid one, and the
// daemon refuses them as malformed either way, stamped or not. When `samples_by_kind` is given,
// the frame's samples are counted into it by payload kind ("insole", "pain", …).
bool stamp_recorded_arrival(std::string& frame, std::int64_t arrival_us,
                            std::map<std::string, std::uint64_t>* samples_by_kind = nullptr);

}  // namespace kneeload::ctl
