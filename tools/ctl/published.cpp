#include "published.hpp"

#include <google/protobuf/descriptor.h>

#include "kneeload/proto/codec.hpp"

namespace kneeload::ctl {

TopicKind topic_kind(std::string_view topic) {
  const std::string_view prefix = topic.substr(0, topic.find('/'));
  const auto is = [&](proto::Topic t) { return prefix == proto::topic_prefix(t); };
  if (is(proto::Topic::kState)) return TopicKind::kState;
  if (is(proto::Topic::kStep)) return TopicKind::kStep;
  if (is(proto::Topic::kRisk)) return TopicKind::kRisk;
  if (is(proto::Topic::kSession)) return TopicKind::kSession;
  // status has no station part: "status/…" is not a topic the daemon publishes.
  if (topic == proto::topic_prefix(proto::Topic::kStatus)) return TopicKind::kStatus;
  return TopicKind::kUnknown;
}

const char* type_name(TopicKind kind) {
  switch (kind) {
    case TopicKind::kState: return "FusedState";
    case TopicKind::kStep: return "StepMetrics";
    case TopicKind::kRisk: return "RiskEvent";
    case TopicKind::kSession: return "SessionSummary";
    case TopicKind::kStatus: return "DaemonStatus";
    case TopicKind::kUnknown: break;
  }
  return "";
}

std::unique_ptr<google::protobuf::Message> new_message(TopicKind kind) {
  switch (kind) {
    case TopicKind::kState: return std::make_unique<v1::FusedState>();
    case TopicKind::kStep: return std::make_unique<v1::StepMetrics>();
    case TopicKind::kRisk: return std::make_unique<v1::RiskEvent>();
    case TopicKind::kSession: return std::make_unique<v1::SessionSummary>();
    case TopicKind::kStatus: return std::make_unique<v1::DaemonStatus>();
    case TopicKind::kUnknown: break;
  }
  return nullptr;
}

const v1::Header& header_of(const google::protobuf::Message& message) {
  const google::protobuf::FieldDescriptor* field = message.GetDescriptor()->FindFieldByNumber(1);
  if (field == nullptr || field->message_type() != v1::Header::descriptor()) {
    return v1::Header::default_instance();
  }
  return static_cast<const v1::Header&>(message.GetReflection()->GetMessage(message, field));
}

bool SeqTracker::observe(const std::string& topic, std::uint64_t seq, Gap& gap) {
  const auto it = last_.find(topic);
  if (it == last_.end()) {
    last_.emplace(topic, seq);
    return false;  // the first message of a topic: we joined mid-stream
  }
  const std::uint64_t previous = it->second;
  it->second = seq;
  if (seq == previous + 1) return false;
  gap = Gap{previous, seq, seq <= previous};
  total_lost_ += gap.lost();
  return true;
}

}  // namespace kneeload::ctl
