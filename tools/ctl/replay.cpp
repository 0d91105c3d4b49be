// kneeloadctl replay: push a recording's frames to kneeloadd again, at the recorded pace times
// --speed or as fast as the daemon takes them.
//
// Determinism. Each frame that parses as a kneeload.v1.Frame is sent with
// Frame.recorded_arrival_us set to its recorded steady-clock arrival time (stamp.hpp), and the
// daemon uses that instead of its own receive time (ingest.proto), so the outputs do not depend
// on the replay's speed. A frame that does not parse is sent unchanged, and refused by the
// daemon as malformed, as in the original run.
//
// The stamp adds up to 11 bytes to a frame: a frame within that much of the daemon's
// ingest.max_frame_bytes is refused as oversize in a replay although it was accepted live.
// --observe shows such rejections.
//
// Damage. The recording is read record by record and each is sent once it checks out, so a
// truncated or corrupted file is replayed up to the damage; then replay says where the damage
// is and exits 1.
#include "replay.hpp"

#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "curve.hpp"
#include "clock.hpp"
#include "published.hpp"
#include "recording.hpp"
#include "sockets.hpp"
#include "stamp.hpp"
#include "stop.hpp"

namespace kneeload::ctl {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kDefaultEndpoint = "tcp://127.0.0.1:5600";
constexpr auto kPollSlice = 100ms;
constexpr auto kProgressInterval = 5s;
// Exit code after Ctrl-C: the shell's convention for SIGINT; the replay is incomplete.
constexpr int kExitInterrupted = 130;

struct ReplayOptions {
  CurveClient curve;  // --server-key/--key-file: a CURVE client of the daemon
  std::string file;
  std::string endpoint = kDefaultEndpoint;
  double speed = 1.0;  // 0: as fast as possible ("max")
  double from_s = 0.0;
  std::uint64_t limit = 0;  // 0: no limit
  std::string observe;
  double timeout_s = 5.0;
};

ArgParser::Setter set_speed(double* out) {
  return [out](std::string_view v) -> std::string {
    if (v == "max") {
      *out = 0.0;
      return {};
    }
    const std::string text(v);
    char* end = nullptr;
    const double s = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(s) || s <= 0.0) {
      return "expects a factor > 0 (1 is the recorded pace) or \"max\"";
    }
    *out = s;
    return {};
  };
}

std::string counts_text(const std::map<std::string, std::uint64_t>& counts) {
  std::string s;
  for (const auto& [name, n] : counts) {
    if (n == 0) continue;
    if (!s.empty()) s += ", ";
    s += name + " " + std::to_string(n);
  }
  return s.empty() ? "none" : s;
}

std::map<std::string, std::uint64_t> by_name(const google::protobuf::RepeatedPtrField<v1::Count>& counts) {
  std::map<std::string, std::uint64_t> m;
  for (const v1::Count& c : counts) m[c.name()] = c.value();
  return m;
}

// Later minus earlier, per name (counters only grow while the daemon runs).
std::map<std::string, std::uint64_t> delta(const google::protobuf::RepeatedPtrField<v1::Count>& later,
                                           const google::protobuf::RepeatedPtrField<v1::Count>& earlier) {
  std::map<std::string, std::uint64_t> d = by_name(later);
  for (const auto& [name, n] : by_name(earlier)) d[name] = d[name] >= n ? d[name] - n : 0;
  return d;
}

// What the daemon published while the replay ran (--observe).
class Observer {
 public:
  explicit Observer(PublishedFeed& feed) : feed_(feed) {}

  // Takes in everything the feed has, waiting up to `wait` for the first message.
  void pump(std::chrono::milliseconds wait) {
    PublishedMessage msg;
    for (bool got = feed_.next(msg, wait); got; got = feed_.next(msg, 0ms)) take(msg);
  }

  // After the last frame: waits until the daemon has received `sent` more frames than at the
  // start and then a whole heartbeat interval passes without an output reaching us. A PUB
  // keeps order, so an output published before a heartbeat arrives before it: two heartbeats
  // with nothing between them mean the daemon has published what the replay caused (unless a
  // worker stalled for a whole interval, which the bound below then reports). Returns false
  // when `timeout` passed first.
  bool settle(std::uint64_t sent, std::chrono::milliseconds timeout) {
    if (!first_) return false;
    const auto deadline = Clock::now() + timeout;
    const std::uint64_t target = first_->frames_received() + sent;
    std::optional<std::uint64_t> outputs_then;  // outputs seen at the previous heartbeat
    std::uint64_t statuses_seen = statuses_;
    while (Clock::now() < deadline && !stop_requested()) {
      pump(kPollSlice);
      if (statuses_ == statuses_seen) continue;
      statuses_seen = statuses_;
      if (last_.frames_received() < target) continue;
      if (outputs_then && *outputs_then == outputs_at_last_status_) return true;
      outputs_then = outputs_at_last_status_;
    }
    return false;
  }

  void report(const std::string& program, const std::string& endpoint) const {
    std::fprintf(stderr, "%s: observed on %s: %llu steps, %llu states, %llu session summaries, %llu risk events\n",
                 program.c_str(), endpoint.c_str(), static_cast<unsigned long long>(steps_),
                 static_cast<unsigned long long>(states_), static_cast<unsigned long long>(sessions_),
                 static_cast<unsigned long long>(risk_));
    std::fprintf(stderr, "%s:   events: %s\n", program.c_str(), counts_text(events_).c_str());
    if (seqs_.total_lost() > 0) {
      std::fprintf(stderr, "%s:   this subscriber lost %llu published message(s) (sequence gaps): counts are low\n",
                   program.c_str(), static_cast<unsigned long long>(seqs_.total_lost()));
    }
    if (first_) {
      std::fprintf(stderr, "%s:   daemon: %llu frames received, %llu samples accepted; rejected: %s; dropped: %s\n",
                   program.c_str(),
                   static_cast<unsigned long long>(last_.frames_received() - first_->frames_received()),
                   static_cast<unsigned long long>(last_.samples_accepted() - first_->samples_accepted()),
                   counts_text(delta(last_.rejected(), first_->rejected())).c_str(),
                   counts_text(delta(last_.dropped(), first_->dropped())).c_str());
    }
  }

 private:
  void take(const PublishedMessage& msg) {
    const TopicKind kind = topic_kind(msg.topic);
    const std::unique_ptr<google::protobuf::Message> m = new_message(kind);
    if (m == nullptr || !m->ParseFromString(msg.payload)) return;
    SeqTracker::Gap gap;
    seqs_.observe(msg.topic, header_of(*m).seq(), gap);
    switch (kind) {
      case TopicKind::kState: ++states_; break;
      case TopicKind::kStep: ++steps_; break;
      case TopicKind::kSession: ++sessions_; break;
      case TopicKind::kRisk: {
        ++risk_;
        const auto& e = static_cast<const v1::RiskEvent&>(*m);
        ++events_[e.rule_code() + " " + e.rule_name() + (e.phase() == v1::EVENT_PHASE_CLEAR ? " clear" : " onset")];
        break;
      }
      case TopicKind::kStatus:
        last_ = static_cast<const v1::DaemonStatus&>(*m);
        if (!first_) first_ = last_;  // the baseline: the heartbeat that proved the join
        ++statuses_;
        outputs_at_last_status_ = steps_ + states_ + sessions_ + risk_;
        break;
      case TopicKind::kUnknown: break;
    }
  }

  PublishedFeed& feed_;
  SeqTracker seqs_;
  std::uint64_t steps_ = 0, states_ = 0, sessions_ = 0, risk_ = 0, statuses_ = 0;
  std::uint64_t outputs_at_last_status_ = 0;
  std::map<std::string, std::uint64_t> events_;
  std::optional<v1::DaemonStatus> first_;
  v1::DaemonStatus last_;
};

class Replayer {
 public:
  Replayer(const ReplayOptions& o, const std::string& program, RecordingReader& reader, zmq::socket_t& push,
           Observer* observer)
      : o_(o), program_(program), reader_(reader), push_(push), observer_(observer) {}

  enum class Outcome : std::uint8_t { kDone, kDamaged, kInterrupted, kSendTimedOut };

  Outcome run() {
    start_ = Clock::now();
    auto next_progress = start_ + kProgressInterval;
    const auto from_us = static_cast<std::int64_t>(std::llround(o_.from_s * 1e6));
    RecordedFrame rec;
    for (;;) {
      if (stop_requested()) return Outcome::kInterrupted;
      if (o_.limit > 0 && sent_ >= o_.limit) return Outcome::kDone;
      const RecordingReader::Next next = reader_.next(rec);
      if (next == RecordingReader::Next::kEnd) return Outcome::kDone;
      if (next == RecordingReader::Next::kDamaged) return Outcome::kDamaged;
      if (!origin_us_) origin_us_ = rec.arrival_steady_us;
      if (rec.arrival_steady_us - *origin_us_ < from_us) {
        ++skipped_;
        continue;
      }
      if (!wait_for_turn(rec.arrival_steady_us)) return Outcome::kInterrupted;
      prepare(rec);
      switch (send_frame(push_, std::as_bytes(std::span<const char>(frame_.data(), frame_.size())))) {
        case SendStatus::kSent: break;
        case SendStatus::kTimedOut: return Outcome::kSendTimedOut;
        case SendStatus::kInterrupted: return Outcome::kInterrupted;
      }
      ++sent_;
      bytes_ += rec.payload.size();
      last_sent_us_ = rec.arrival_steady_us;
      if (observer_ != nullptr) observer_->pump(0ms);
      if (Clock::now() >= next_progress) {
        progress();
        next_progress = Clock::now() + kProgressInterval;
      }
    }
  }

  std::uint64_t sent() const { return sent_; }

  void summary() const {
    const double wall_s = std::chrono::duration<double>(Clock::now() - start_).count();
    const double covered_s =
        first_sent_us_ ? static_cast<double>(last_sent_us_ - *first_sent_us_) / 1e6 : 0.0;
    char speed[32];
    if (o_.speed > 0) {
      std::snprintf(speed, sizeof speed, "speed %g", o_.speed);
    } else {
      std::snprintf(speed, sizeof speed, "speed max");
    }
    std::fprintf(stderr,
                 "%s: sent %llu frames (%llu bytes) in %.2f s (%.0f frames/s), %.2f s of the recording at %s\n",
                 program_.c_str(), static_cast<unsigned long long>(sent_), static_cast<unsigned long long>(bytes_),
                 wall_s, wall_s > 0 ? static_cast<double>(sent_) / wall_s : 0.0, covered_s, speed);
    std::fprintf(stderr, "%s:   samples: %s\n", program_.c_str(), counts_text(samples_).c_str());
    if (skipped_ > 0) {
      std::fprintf(stderr, "%s:   skipped %llu frames before --from %g\n", program_.c_str(),
                   static_cast<unsigned long long>(skipped_), o_.from_s);
    }
    if (unparsed_ > 0) {
      std::fprintf(stderr,
                   "%s:   %llu frames do not parse as a kneeload.v1.Frame: sent unchanged (the daemon refuses "
                   "them as malformed, as in the original run)\n",
                   program_.c_str(), static_cast<unsigned long long>(unparsed_));
    }
  }

 private:
  // Sleeps until the frame recorded at `arrival_us` is due, watching Ctrl-C and the feed.
  // Returns false when asked to stop.
  bool wait_for_turn(std::int64_t arrival_us) {
    if (!first_sent_us_) {
      first_sent_us_ = arrival_us;
      paced_start_ = Clock::now();
    }
    if (o_.speed <= 0) return true;
    const auto offset = std::chrono::duration<double, std::micro>(
        static_cast<double>(arrival_us - *first_sent_us_) / o_.speed);
    const auto due = paced_start_ + std::chrono::duration_cast<Clock::duration>(offset);
    for (;;) {
      if (stop_requested()) return false;
      const auto now = Clock::now();
      if (now >= due) return true;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(due - now);
      const auto slice = std::min<std::chrono::milliseconds>(left, kPollSlice);
      if (observer_ != nullptr && slice > 0ms) {
        observer_->pump(slice);  // waits on the feed instead of sleeping
      } else {
        std::this_thread::sleep_until(std::min(due, now + kPollSlice));
      }
    }
  }

  // frame_ := the bytes to send for `rec`; counts its samples by kind.
  void prepare(const RecordedFrame& rec) {
    frame_ = rec.payload;
    if (!stamp_recorded_arrival(frame_, rec.arrival_steady_us, &samples_)) ++unparsed_;
  }

  void progress() const {
    const double wall_s = std::chrono::duration<double>(Clock::now() - start_).count();
    const std::uint64_t total = reader_.file_size();
    std::fprintf(stderr, "%s: %llu frames sent in %.0f s, %.0f%% of the file\n", program_.c_str(),
                 static_cast<unsigned long long>(sent_), wall_s,
                 total > 0 ? 100.0 * static_cast<double>(reader_.offset()) / static_cast<double>(total) : 100.0);
  }

  const ReplayOptions& o_;
  const std::string& program_;
  RecordingReader& reader_;
  zmq::socket_t& push_;
  Observer* observer_;
  std::string frame_;
  Clock::time_point start_, paced_start_;
  std::optional<std::int64_t> origin_us_;      // first record of the file
  std::optional<std::int64_t> first_sent_us_;  // first record sent (after --from)
  std::int64_t last_sent_us_ = 0;
  std::uint64_t sent_ = 0, bytes_ = 0, skipped_ = 0, unparsed_ = 0;
  std::map<std::string, std::uint64_t> samples_;
};

std::string created_text(std::int64_t unix_us) {
  const std::time_t t = static_cast<std::time_t>(unix_us / 1'000'000);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return buf;
}

int run_replay(int argc, char** argv) {
  ReplayOptions o;
  ArgParser args("replay",
                 "kneeloadctl replay FILE [--endpoint E] [--speed 1|N|max] [--from S] [--limit N]\n"
                 "                          [--observe E] [--timeout S]",
                 "Pushes the frames of a recording (kneeloadctl record) to kneeloadd's ingest endpoint at\n"
                 "the recorded pace times --speed, stamped with their recorded arrival time so the daemon\n"
                 "aligns them as in the original run whatever the speed. A truncated or corrupted\n"
                 "recording is replayed up to the damage, which is reported (byte offset, record, reason)\n"
                 "with exit code 1. Progress and a summary go to stderr.");
  args.positional("FILE", "the recording to replay", &o.file);
  args.option("--endpoint", "E", std::string("kneeloadd's ingest endpoint (default ") + kDefaultEndpoint + ")",
              set_string(&o.endpoint));
  args.option("--speed", "1|N|max", "pace: 1 as recorded (default), N times faster (0.5 is slower),\n"
                                    "max as fast as the daemon takes frames",
              set_speed(&o.speed));
  args.option("--from", "S", "start S seconds into the recording", set_seconds(&o.from_s, true));
  args.option("--limit", "N", "send at most N frames", set_count(&o.limit));
  args.option("--observe", "E",
              "kneeloadd's publish endpoint: subscribe before sending and report the\n"
              "steps and events the replay caused, and the daemon's counters",
              set_string(&o.observe));
  args.option("--timeout", "S",
              "give up when the daemon does not answer or take a frame within S\n"
              "seconds (default 5)",
              set_seconds(&o.timeout_s));
  add_curve_options(args, o.curve);
  if (const std::optional<int> code = args.parse(argc, argv)) return *code;
  if (const std::string e = resolve(o.curve); !e.empty()) return args.usage_error(e);
  const std::string& program = args.program();

  RecordingReader reader;
  std::string error;
  if (!reader.open(o.file, error)) {
    std::fprintf(stderr, "%s: cannot open the recording: %s\n", program.c_str(), error.c_str());
    return kExitFailure;
  }
  if (!reader.header_ok()) {
    std::fprintf(stderr, "%s: %s is damaged at %s; nothing sent\n", program.c_str(), o.file.c_str(),
                 describe(reader.damage()).c_str());
    return kExitFailure;
  }

  install_stop_handlers();
  zmq::context_t ctx{1};
  std::optional<PublishedFeed> feed;
  std::optional<Observer> observer;
  if (!o.observe.empty()) {
    try {
      feed.emplace(ctx, o.observe, std::vector<std::string>{}, 0, &o.curve);  // drained continuously: lose nothing
    } catch (const zmq::error_t& e) {
      if (is_endpoint_syntax_error(e)) {
        return args.usage_error("--observe \"" + o.observe + "\" is not a ZeroMQ endpoint (" + e.what() + ")");
      }
      std::fprintf(stderr, "%s: cannot connect to %s: %s\n", program.c_str(), o.observe.c_str(), e.what());
      return kExitFailure;
    }
    switch (feed->join(to_ms(o.timeout_s))) {
      case PublishedFeed::Join::kJoined: break;
      case PublishedFeed::Join::kInterrupted: return kExitInterrupted;
      case PublishedFeed::Join::kTimedOut:
        std::fprintf(stderr,
                     "%s: --observe: no status heartbeat from %s within %g s: is kneeloadd running, and is "
                     "this its publish endpoint? (--timeout S waits longer)\n",
                     program.c_str(), o.observe.c_str(), o.timeout_s);
        return kExitFailure;
    }
    observer.emplace(*feed);
    observer->pump(0ms);  // the baseline status
  }

  zmq::socket_t push(ctx, zmq::socket_type::push);
  const ConnectResult c = connect_push(ctx, push, o.endpoint, to_ms(o.timeout_s), &o.curve);
  if (const auto code = connect_exit(c, args, "--endpoint", kExitInterrupted)) return *code;
  std::fprintf(stderr, "%s: replaying %s (recorded %s, config snapshot %zu bytes) to %s\n", program.c_str(),
               o.file.c_str(), created_text(reader.header().created_unix_us).c_str(), reader.header().config.size(),
               o.endpoint.c_str());

  Replayer replayer(o, program, reader, push, observer ? &*observer : nullptr);
  const Replayer::Outcome outcome = replayer.run();
  replayer.summary();
  if (observer) {
    if (outcome != Replayer::Outcome::kInterrupted &&
        !observer->settle(replayer.sent(), std::max(to_ms(o.timeout_s), std::chrono::milliseconds(3000)))) {
      std::fprintf(stderr, "%s: the daemon had not settled within %g s; the counts below may be incomplete\n",
                   program.c_str(), std::max(o.timeout_s, 3.0));
    }
    observer->report(program, o.observe);
  }
  switch (outcome) {
    case Replayer::Outcome::kDone: return kExitOk;
    case Replayer::Outcome::kInterrupted:
      std::fprintf(stderr, "%s: interrupted after %llu frames\n", program.c_str(),
                   static_cast<unsigned long long>(replayer.sent()));
      return kExitInterrupted;
    case Replayer::Outcome::kSendTimedOut:
      std::fprintf(stderr, "%s: %s stopped taking frames: a send waited %g s (--timeout); %llu frames sent\n",
                   program.c_str(), o.endpoint.c_str(), o.timeout_s, static_cast<unsigned long long>(replayer.sent()));
      return kExitFailure;
    case Replayer::Outcome::kDamaged:
      std::fprintf(stderr, "%s: %s is damaged at %s; the %llu records before it were read and %llu frames sent\n",
                   program.c_str(), o.file.c_str(), describe(reader.damage()).c_str(),
                   static_cast<unsigned long long>(reader.damage().record_index),
                   static_cast<unsigned long long>(replayer.sent()));
      return kExitFailure;
  }
  return kExitFailure;
}

}  // namespace

const Command kReplayCommand{"replay", "push a recording to kneeloadd at the recorded pace, N times faster, or max",
                             run_replay};

}  // namespace kneeload::ctl
