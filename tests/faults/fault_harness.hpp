// Helpers for the fault tests: a subscriber with topic filters and its own receive HWM (one that
// never reads, or one that must not be flooded by another station's outputs), scraping the
// daemon's Prometheus endpoint into named figures, and the one-line report each test prints of
// what it sent and what the daemon counted.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daemon_harness.hpp"
#include "http.hpp"

namespace kneeload::testing {

// A SUB socket on chosen topic prefixes. rcvhwm 0 (unbounded) means this side never loses
// what the daemon sent; PUB filters topics on the daemon's side, so other stations' outputs
// do not even reach it.
class TopicSubscriber {
 public:
  TopicSubscriber(zmq::context_t& ctx, const std::string& endpoint, const std::vector<std::string>& prefixes,
                  int rcvhwm = 0)
      : socket_(ctx, zmq::socket_type::sub) {
    socket_.set(zmq::sockopt::rcvhwm, rcvhwm);
    socket_.set(zmq::sockopt::linger, 0);
    for (const std::string& p : prefixes) socket_.set(zmq::sockopt::subscribe, p);
    socket_.connect(endpoint);
  }
  // Joined once a status heartbeat arrived: nothing sent later is lost to the slow-joiner window.
  // REQUIRES: subscribed to "status" (or to everything).
  bool wait_joined(std::chrono::milliseconds timeout) {
    return eventually([&] {
      poll(0ms);
      return count("status") > 0;
    }, timeout);
  }
  void poll(std::chrono::milliseconds timeout) {
    std::vector<zmq::pollitem_t> items{{socket_.handle(), 0, ZMQ_POLLIN, 0}};
    if (zmq::poll(items, timeout) <= 0) return;
    for (;;) {
      std::vector<zmq::message_t> parts;
      if (!zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait)) break;
      if (parts.size() == 2) received_.push_back({parts[0].to_string(), parts[1].to_string()});
    }
  }
  bool collect_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
    return eventually([&] {
      poll(5ms);
      return cond();
    }, timeout);
  }
  std::size_t count(const std::string& prefix) const {
    std::size_t n = 0;
    for (const Received& r : received_) n += r.topic.rfind(prefix, 0) == 0 ? 1 : 0;
    return n;
  }
  template <typename Msg>
  std::vector<Msg> decoded(const std::string& prefix) const {
    std::vector<Msg> out;
    for (const Received& r : received_) {
      if (r.topic.rfind(prefix, 0) != 0) continue;
      Msg m;
      if (m.ParseFromString(r.payload)) out.push_back(m);
    }
    return out;
  }
  std::optional<v1::DaemonStatus> last_status() const {
    auto all = decoded<v1::DaemonStatus>("status");
    if (all.empty()) return std::nullopt;
    return all.back();
  }
  // Messages this subscriber missed since it first heard each topic, from the per-topic
  // Header.seq (+1 per message the daemon meant to send): the sum over topics of
  // (last seq - first seq + 1 - messages received).
  std::uint64_t seq_gaps() const {
    struct Span {
      std::uint64_t first = 0, last = 0, count = 0;
    };
    std::map<std::string, Span> by_topic;
    for (const Received& r : received_) {
      v1::StepMetrics any;  // every payload starts with field 1 = Header
      if (!any.ParseFromString(r.payload)) continue;
      Span& s = by_topic[r.topic];
      if (s.count == 0) s.first = any.header().seq();
      s.last = std::max<std::uint64_t>(s.last, any.header().seq());
      ++s.count;
    }
    std::uint64_t gaps = 0;
    for (const auto& [topic, s] : by_topic) gaps += s.last - s.first + 1 - s.count;
    return gaps;
  }
  const std::vector<Received>& received() const { return received_; }
  zmq::socket_t& socket() { return socket_; }

 private:
  zmq::socket_t socket_;
  std::vector<Received> received_;
};

// One scrape of the daemon's metrics, with the sums the tests need.
struct Scrape {
  Exposition e;

  double get(const std::string& series) const { return e.get(series).value_or(-1.0); }
  // Sum of every series of a family (all label sets), e.g. "kneeload_dropped_total".
  double sum(const std::string& family) const {
    double s = 0;
    for (const auto& [series, v] : e.samples) {
      if (series == family || series.rfind(family + "{", 0) == 0) s += v;
    }
    return s;
  }
  double ingested() const { return sum("kneeload_samples_ingested_total"); }
  double fused() const { return get("kneeload_samples_fused_total"); }
  double dropped() const { return sum("kneeload_dropped_total"); }
  // The series of `family` whose labels include every `name="value"` pair given, in any order.
  double labelled(const std::string& family, const std::vector<std::string>& pairs) const {
    for (const auto& [series, v] : e.samples) {
      if (series.rfind(family + "{", 0) != 0) continue;
      bool all = true;
      for (const std::string& p : pairs) all = all && series.find(p) != std::string::npos;
      if (all) return v;
    }
    return -1.0;
  }
  double dropped(const std::string& stage, const std::string& reason) const {
    return labelled("kneeload_dropped_total", {"stage=\"" + stage + "\"", "reason=\"" + reason + "\""});
  }
  double frame_rejects(const std::string& reason) const {
    return get("kneeload_frames_rejected_total{reason=\"" + reason + "\"}");
  }
  double sample_rejects(const std::string& reason) const {
    return get("kneeload_samples_rejected_total{reason=\"" + reason + "\"}");
  }
  double published(const std::string& topic) const {
    return get("kneeload_outputs_published_total{topic=\"" + topic + "\"}");
  }
  double ring_depth() const { return sum("kneeload_ring_depth"); }
  double rss_bytes() const { return get("process_resident_memory_bytes"); }
  double fds() const { return get("process_open_fds"); }
};

inline Scrape scrape(const Daemon& daemon) {
  const auto r = http_get(daemon.metrics_address(), "/metrics");
  Scrape s;
  if (r && r->status == 200) s.e = parse_exposition(r->body);
  return s;
}

// The books on accepted samples are closed when nothing is queued and every accepted sample is
// either fused or counted as dropped at ingest: waits for that state (the rings empty out and
// the last frames are counted).
inline bool wait_settled(const Daemon& daemon, double frames_sent, std::chrono::milliseconds timeout) {
  return eventually([&] {
    const Scrape s = scrape(daemon);
    return s.get("kneeload_frames_received_total") >= frames_sent && s.ring_depth() == 0 &&
           s.ingested() == s.fused() + s.dropped("ingest", "worker_ring_full");
  }, timeout);
}

// "[ figures  ] test: sent …; counted …" on stdout, the record of what a test proved.
inline void report(const std::string& what) {
  std::cout << "[ figures  ] " << ::testing::UnitTest::GetInstance()->current_test_info()->name() << ": " << what
            << std::endl;
  ::testing::Test::RecordProperty("figures", what);
}

// Counts the samples of frames by kind, as the daemon's kneeload_samples_ingested_total does.
struct Sent {
  std::uint64_t frames = 0;
  std::uint64_t samples = 0;
  void add(const v1::Frame& f) {
    ++frames;
    samples += static_cast<std::uint64_t>(f.samples_size());
  }
};

inline zmq::socket_t make_push(zmq::context_t& ctx, const std::string& endpoint) {
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::sndtimeo, 5000);
  push.set(zmq::sockopt::linger, 0);
  push.connect(endpoint);
  return push;
}

// base_toml() with extra lines added to one of its sections ("[pipeline]", "[publish]").
inline std::string with_keys(std::string toml, const std::string& section, const std::string& lines) {
  const std::size_t at = toml.find(section + "\n");
  if (at == std::string::npos) return toml + "\n" + section + "\n" + lines + "\n";
  toml.insert(at + section.size() + 1, lines + "\n");
  return toml;
}

}  // namespace kneeload::testing
