// What kneeloadd publishes, as the tools read it: topic → message type, and per-topic sequence
// tracking (each topic's Header.seq counts from 1; a jump is a loss on the reader's side).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "kneeload/v1/publish.pb.h"

namespace kneeload::ctl {

enum class TopicKind : std::uint8_t { kState, kStep, kRisk, kSession, kStatus, kUnknown };

// By the topic's prefix ("risk/st1" → kRisk), as README "Publish" lists them.
TopicKind topic_kind(std::string_view topic);
// "FusedState", "StepMetrics", …; "" for kUnknown.
const char* type_name(TopicKind kind);
// A new empty message of the topic's type; nullptr for kUnknown.
std::unique_ptr<google::protobuf::Message> new_message(TopicKind kind);
// Every published message starts with a Header (field 1).
const v1::Header& header_of(const google::protobuf::Message& message);

// Per-topic Header.seq continuity for one subscriber.
class SeqTracker {
 public:
  struct Gap {
    std::uint64_t previous = 0;
    std::uint64_t seq = 0;
    bool restarted = false;  // seq went back: the daemon restarted
    std::uint64_t lost() const { return restarted || seq <= previous ? 0 : seq - previous - 1; }
  };
  // Returns true and fills `gap` when `seq` does not follow the topic's previous seq.
  bool observe(const std::string& topic, std::uint64_t seq, Gap& gap);
  std::uint64_t total_lost() const { return total_lost_; }

 private:
  std::map<std::string, std::uint64_t, std::less<>> last_;
  std::uint64_t total_lost_ = 0;
};

}  // namespace kneeload::ctl
