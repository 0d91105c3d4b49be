// kneeloadctl tap: subscribe to kneeloadd's PUB socket and show what it publishes, either as
// JSON lines (one object per message, for research scripts) or as a live table of stations.
//
// Joining: a SUB socket misses whatever the PUB sent before the subscription reached it, so
// tap waits for the first `status` heartbeat (it always subscribes to `status`) and only then
// says "subscribed"; a daemon that never answers is an error after --timeout. Once joined, tap
// keeps running when the heartbeats stop (ZeroMQ reconnects to a restarted daemon by itself)
// but says so on stderr, and again when they come back.
#include "tap.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cli.hpp"
#include "curve.hpp"
#include "clock.hpp"
#include "json.hpp"
#include "published.hpp"
#include "sockets.hpp"
#include "station_board.hpp"
#include "stop.hpp"

namespace kneeload::ctl {
namespace {

using namespace std::chrono_literals;

constexpr const char* kDefaultEndpoint = "tcp://127.0.0.1:5601";
// Like the Python reference subscriber: room for bursts while stdout is slow (a terminal).
constexpr int kRcvHwm = 100000;
constexpr auto kRedrawInterval = 1s;
constexpr auto kPollSlice = 100ms;

struct TapOptions {
  CurveClient curve;  // --server-key/--key-file: a CURVE client of the daemon
  std::string endpoint = kDefaultEndpoint;
  std::vector<std::string> topics;
  bool json = false;
  std::uint64_t count = 0;    // 0: no limit
  double duration_s = 0.0;    // 0: no limit
  double timeout_s = 5.0;
};

bool wanted(const TapOptions& o, const std::string& topic) {
  if (o.topics.empty()) return true;
  for (const std::string& p : o.topics) {
    if (topic.compare(0, p.size(), p) == 0) return true;
  }
  return false;
}

std::string title(const std::string& endpoint) {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char clock[16];
  std::strftime(clock, sizeof clock, "%H:%M:%S", &local);
  return "kneeloadctl tap  " + endpoint + "  " + clock;
}

class Tap {
 public:
  explicit Tap(const TapOptions& options) : o_(options), tty_(::isatty(STDOUT_FILENO) == 1) {}

  int run(PublishedFeed& feed) {
    std::fprintf(stderr, "kneeloadctl tap: subscribed to %s\n", o_.endpoint.c_str());
    const auto start = std::chrono::steady_clock::now();
    const std::optional<std::chrono::steady_clock::time_point> end =
        o_.duration_s > 0 ? std::optional(start + to_ms(o_.duration_s)) : std::nullopt;
    auto next_draw = start;
    last_heartbeat_ = start;
    PublishedMessage msg;
    while (!stop_requested() && !(end && std::chrono::steady_clock::now() >= *end) &&
           !(o_.count > 0 && shown_ >= o_.count)) {
      if (feed.next(msg, kPollSlice)) take(msg);
      if (!silent_ && std::chrono::steady_clock::now() - last_heartbeat_ > to_ms(o_.timeout_s)) {
        silent_ = true;
        std::fprintf(stderr,
                     "kneeloadctl tap: no status heartbeat for %g s: is kneeloadd still running? (still "
                     "listening; ZeroMQ reconnects by itself)\n",
                     o_.timeout_s);
      }
      if (!o_.json && std::chrono::steady_clock::now() >= next_draw) {
        draw();
        next_draw = std::chrono::steady_clock::now() + kRedrawInterval;
      }
    }
    if (!o_.json) draw();  // the final state, whatever stopped us
    if (feed.malformed() > 0) {
      std::fprintf(stderr, "kneeloadctl tap: ignored %llu message(s) that were not [topic, payload]\n",
                   static_cast<unsigned long long>(feed.malformed()));
    }
    return kExitOk;
  }

 private:
  void take(const PublishedMessage& msg) {
    const TopicKind kind = topic_kind(msg.topic);
    const std::unique_ptr<google::protobuf::Message> m = new_message(kind);
    if (m == nullptr) {
      if (unknown_topics_.insert(msg.topic).second) {
        std::fprintf(stderr, "kneeloadctl tap: ignoring unknown topic \"%s\"\n", msg.topic.c_str());
      }
      return;
    }
    if (!m->ParseFromString(msg.payload)) {
      std::fprintf(stderr, "kneeloadctl tap: %s: payload of %zu bytes does not decode as %s; skipped\n",
                   msg.topic.c_str(), msg.payload.size(), type_name(kind));
      return;
    }
    SeqTracker::Gap gap;
    if (seqs_.observe(msg.topic, header_of(*m).seq(), gap)) {
      if (gap.restarted) {
        std::fprintf(stderr, "kneeloadctl tap: %s: seq went back from %llu to %llu (daemon restarted?)\n",
                     msg.topic.c_str(), static_cast<unsigned long long>(gap.previous),
                     static_cast<unsigned long long>(gap.seq));
      } else {
        std::fprintf(stderr, "kneeloadctl tap: %s: lost %llu message(s) (seq %llu -> %llu)\n", msg.topic.c_str(),
                     static_cast<unsigned long long>(gap.lost()), static_cast<unsigned long long>(gap.previous),
                     static_cast<unsigned long long>(gap.seq));
      }
    }
    if (kind == TopicKind::kStatus) {
      last_heartbeat_ = std::chrono::steady_clock::now();
      if (silent_) std::fputs("kneeloadctl tap: status heartbeats are back\n", stderr);
      silent_ = false;
    }
    const bool show = wanted(o_, msg.topic);
    if (o_.json) {
      if (show) print_json(msg.topic, kind, *m);
    } else if (show || kind == TopicKind::kStatus) {
      board_.update(kind, *m);  // the footer always shows the daemon's status
    }
    if (show) ++shown_;
  }

  void print_json(const std::string& topic, TopicKind kind, const google::protobuf::Message& m) {
    line_.clear();
    line_ += "{\"topic\": ";
    append_json_string(topic, line_);
    line_ += ", \"type\": ";
    append_json_string(type_name(kind), line_);
    line_ += ", \"message\": ";
    append_json(m, line_);
    line_ += "}\n";
    std::fwrite(line_.data(), 1, line_.size(), stdout);
    std::fflush(stdout);  // a script reading the pipe sees each message as it comes
  }

  void draw() {
    const std::string table = board_.render(title(o_.endpoint));
    if (tty_) {
      std::fputs("\x1b[H\x1b[2J", stdout);  // home, clear screen
      std::fputs(table.c_str(), stdout);
    } else {
      std::fputs(table.c_str(), stdout);
      std::fputc('\n', stdout);
    }
    std::fflush(stdout);
  }

  const TapOptions& o_;
  const bool tty_;
  StationBoard board_;
  SeqTracker seqs_;
  std::set<std::string> unknown_topics_;
  std::uint64_t shown_ = 0;
  std::string line_;
  std::chrono::steady_clock::time_point last_heartbeat_;
  bool silent_ = false;  // heartbeats stopped; said so
};

int run_tap(int argc, char** argv) {
  TapOptions o;
  ArgParser args("tap",
                 "kneeloadctl tap [--endpoint E] [--topic PREFIX]... [--json] [--count N] [--duration S]\n"
                 "                       [--timeout S]",
                 "Subscribes to kneeloadd's publish endpoint and shows what it publishes: a table of\n"
                 "stations redrawn every second (plain text once a second when stdout is not a\n"
                 "terminal), or with --json one JSON object per message. Sequence gaps (messages this\n"
                 "subscriber lost) are reported on stderr. Stops on Ctrl-C, --count or --duration\n"
                 "(exit 0).");
  args.option("--endpoint", "E", std::string("kneeloadd's publish endpoint (default ") + kDefaultEndpoint + ")",
              set_string(&o.endpoint));
  args.option("--topic", "PREFIX",
              "show only topics starting with PREFIX (repeatable): state/, step/,\n"
              "risk/, session/, status, or e.g. step/st01; default everything",
              append_string(&o.topics));
  args.flag("--json", "one JSON object per line: topic, type and every field of the message\n"
                      "(NaN as null, 64-bit integers as numbers)",
            &o.json);
  args.option("--count", "N", "stop after N messages of the chosen topics", set_count(&o.count));
  args.option("--duration", "S", "stop S seconds after subscribing", set_seconds(&o.duration_s));
  args.option("--timeout", "S",
              "give up when no status heartbeat arrives within S seconds (default 5);\n"
              "later, warn when the heartbeats stop for that long",
              set_seconds(&o.timeout_s));
  add_curve_options(args, o.curve);
  if (const std::optional<int> code = args.parse(argc, argv)) return *code;
  if (const std::string e = resolve(o.curve); !e.empty()) return args.usage_error(e);

  install_stop_handlers();
  zmq::context_t ctx{1};
  std::optional<PublishedFeed> feed;
  try {
    feed.emplace(ctx, o.endpoint, o.topics, kRcvHwm, &o.curve);
  } catch (const zmq::error_t& e) {
    if (is_endpoint_syntax_error(e)) {
      return args.usage_error("--endpoint \"" + o.endpoint + "\" is not a ZeroMQ endpoint (" + e.what() +
                              "): expected tcp://HOST:PORT or ipc://PATH");
    }
    std::fprintf(stderr, "%s: cannot connect to %s: %s\n", args.program().c_str(), o.endpoint.c_str(), e.what());
    return kExitFailure;
  }
  switch (feed->join(to_ms(o.timeout_s))) {
    case PublishedFeed::Join::kJoined: break;
    case PublishedFeed::Join::kInterrupted: return kExitOk;
    case PublishedFeed::Join::kTimedOut:
      std::fprintf(stderr,
                   "%s: no status heartbeat from %s within %g s: is kneeloadd running, and is this its "
                   "publish endpoint? (--timeout S waits longer)\n",
                   args.program().c_str(), o.endpoint.c_str(), o.timeout_s);
      return kExitFailure;
  }
  return Tap(o).run(*feed);
}

}  // namespace

const Command kTapCommand{"tap", "show what kneeloadd publishes: a live table of stations, or JSON lines",
                           run_tap};

}  // namespace kneeload::ctl
