// Protobuf message → one JSON object, for `kneeloadctl tap --json` and the research scripts it
// feeds.
//
// Why not google::protobuf::util::MessageToJsonString: its proto3 JSON mapping writes 64-bit
// integers as strings and NaN as the string "NaN", which every consumer must then undo. Here,
// by reflection: proto field names, every field including defaults (a reader need not know
// proto3's defaults), enums by name, 64-bit integers as plain numbers (exact in Python, and in
// any reader with 64-bit integers), NaN and ±infinity as null (the daemon's NaN means
// "unknown"), floats in their shortest round-trip form, an unset message field as null.
#pragma once

#include <string>
#include <string_view>

namespace google::protobuf {
class Message;
}

namespace kneeload::ctl {

void append_json(const google::protobuf::Message& message, std::string& out);
// `s` as a JSON string literal; bytes that are not valid UTF-8 pass through unchanged.
void append_json_string(std::string_view s, std::string& out);

}  // namespace kneeload::ctl
