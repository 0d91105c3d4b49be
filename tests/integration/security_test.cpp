// CURVE on a real kneeloadd: an unknown key is refused at the handshake, a known key claiming
// another device's id is refused per frame, plaintext to a CURVE endpoint gets nothing in or
// out, subscribers can be restricted by key; and the legitimate stream beside all of that is
// untouched (every complete contact sent becomes a published step, nothing else is accepted).
#include <gtest/gtest.h>

#include <algorithm>

#include "daemon_harness.hpp"
#include "http.hpp"

namespace kneeload::testing {
namespace {

class SecurityTest : public ::testing::Test {
 protected:
  // Station 1's left insole is pinned to its own key; every other device goes through the
  // gateway. `subscribers` restricts the publish socket when non-empty.
  void start(const std::vector<KeyPair>& subscribers = {}) {
    write_file(dir_.path() / "server.key_secret",
               "public_key = \"" + server_.public_key + "\"\nsecret_key = \"" + server_.secret_key + "\"\n");
    std::string security = "[security]\ncurve = true\nsecret_key_file = \"" +
                           (dir_.path() / "server.key_secret").string() + "\"\ngateway_keys = [\"" +
                           gateway_.public_key + "\"]\n";
    if (!subscribers.empty()) {
      security += "subscriber_keys = [";
      for (std::size_t i = 0; i < subscribers.size(); ++i) security += (i ? ", \"" : "\"") + subscribers[i].public_key + "\"";
      security += "]\n";
    }
    std::string registry = registry_toml(2);
    const std::string pinned = "id = \"s1-L\"\n";
    registry.replace(registry.find(pinned), pinned.size(), pinned + "public_key = \"" + left_.public_key + "\"\n");
    daemon_.emplace(base_toml() + security + registry);
    ASSERT_TRUE(daemon_->started()) << daemon_->log();
  }

  zmq::socket_t push(const KeyPair* key) {
    zmq::socket_t s(ctx_, zmq::socket_type::push);
    if (key != nullptr) curve_client(s, server_.public_key, *key);
    s.set(zmq::sockopt::sndtimeo, 2000);
    s.set(zmq::sockopt::linger, 0);
    s.connect(daemon_->ingest_endpoint());
    return s;
  }

  Exposition scrape() {
    const auto r = http_get(daemon_->metrics_address(), "/metrics");
    return parse_exposition(r ? r->body : std::string());
  }
  double metric(const std::string& series) { return scrape().get(series).value_or(-1); }

  TempDir dir_;
  zmq::context_t ctx_{1};
  KeyPair server_ = curve_key_pair(), gateway_ = curve_key_pair(), left_ = curve_key_pair();
  std::optional<Daemon> daemon_;
};

TEST_F(SecurityTest, OnlyKnownKeysGetInAndOnlyForTheirOwnDevices) {
  start();
  EXPECT_TRUE(eventually([&] {
    const std::vector<std::string> threads = thread_names(daemon_->process().pid());
    return std::count(threads.begin(), threads.end(), "kl-zap") == 1;
  }, 5s)) << "the ZAP handler thread is named";
  Subscriber sub(ctx_, daemon_->publish_endpoint(), server_.public_key, curve_key_pair());
  ASSERT_TRUE(sub.wait_joined(5s)) << daemon_->log();

  // The legitimate stream: station 2 entirely through the gateway; station 1's left insole
  // through its own key, the rest of station 1 through the gateway.
  zmq::socket_t gateway = push(&gateway_), left = push(&left_);
  int contacts_2 = 0;
  std::uint64_t legit_samples = 0;
  for (const v1::Frame& f : running_frames(2, 6.0, 100.0, {}, &contacts_2)) {
    ASSERT_TRUE(send_frame(gateway, f));
    legit_samples += static_cast<std::uint64_t>(f.samples_size());
  }
  std::uint64_t left_samples = 0;
  for (const v1::Frame& f : running_frames(1, 6.0)) {
    const bool is_left = f.device_id() == "s1-L";
    ASSERT_TRUE(send_frame(is_left ? left : gateway, f));
    legit_samples += static_cast<std::uint64_t>(f.samples_size());
    if (is_left) left_samples += static_cast<std::uint64_t>(f.samples_size());
  }
  ASSERT_GT(left_samples, 0u);

  // Attacks beside it.
  // 1. A key the daemon does not know: refused at the handshake, nothing it sends arrives.
  const KeyPair stranger = curve_key_pair();
  zmq::socket_t unknown = push(&stranger);
  v1::Frame from_stranger = frame("s2-L", 9000);
  add_insole(from_stranger, 99'000'000, 100.0, 8.0);
  (void)unknown.send(zmq::buffer(from_stranger.SerializeAsString()), zmq::send_flags::dontwait);
  // 2. Plaintext to a CURVE endpoint: the handshake fails, nothing arrives.
  zmq::socket_t plain = push(nullptr);
  (void)plain.send(zmq::buffer(from_stranger.SerializeAsString()), zmq::send_flags::dontwait);
  // 3. The left insole's key claiming the right insole's id, and 4. the gateway claiming the
  // pinned left insole: authenticated connections, refused frame by frame.
  constexpr int kForged = 5;
  for (int i = 0; i < kForged; ++i) {
    v1::Frame forged_right = frame("s1-R", 5000 + static_cast<std::uint32_t>(i));
    add_insole(forged_right, 50'000'000 + i * 10'000, 3000.0, 8.0);
    ASSERT_TRUE(send_frame(left, forged_right));
    v1::Frame forged_left = frame("s1-L", 5000 + static_cast<std::uint32_t>(i));
    add_insole(forged_left, 50'000'000 + i * 10'000, 3000.0, 8.0);
    ASSERT_TRUE(send_frame(gateway, forged_left));
  }

  ASSERT_TRUE(eventually([&] { return metric("kneeload_frames_rejected_total{reason=\"key_not_allowed\"}") == 2 * kForged; }, 10s))
      << daemon_->log();
  ASSERT_TRUE(eventually([&] {
    return metric("kneeload_curve_connections_total{socket=\"ingest\",outcome=\"refused\"}") >= 1;
  }, 10s)) << daemon_->log();
  ASSERT_TRUE(sub.collect_until([&](const auto&) {
    return static_cast<int>(sub.decoded<v1::StepMetrics>("step/st2").size()) >= contacts_2;
  }, 10s)) << daemon_->log();
  std::this_thread::sleep_for(500ms);
  sub.poll_into_store(100ms);

  const Exposition e = scrape();
  double ingested = 0;
  for (const char* kind : {"insole", "knee", "treadmill", "console"}) {
    ingested += e.get(std::string("kneeload_samples_ingested_total{kind=\"") + kind + "\"}").value_or(0);
  }
  EXPECT_EQ(ingested, static_cast<double>(legit_samples)) << "exactly the legitimate samples, nothing forged";
  EXPECT_EQ(e.get("kneeload_curve_connections_total{socket=\"ingest\",outcome=\"accepted\"}").value_or(0), 2)
      << "the gateway and the left insole";
  EXPECT_EQ(static_cast<int>(sub.decoded<v1::StepMetrics>("step/st2").size()), contacts_2)
      << "the legitimate station publishes every complete contact";
  EXPECT_FALSE(sub.decoded<v1::StepMetrics>("step/st1").empty());
  const std::string log = daemon_->log();
  EXPECT_NE(log.find("refused a connection to the ingest socket from 127.0.0.1: key " + stranger.public_key),
            std::string::npos)
      << log;
}

TEST_F(SecurityTest, SubscribersCanBeRestrictedByKey) {
  const KeyPair allowed = curve_key_pair(), other = curve_key_pair();
  start({allowed});
  Subscriber good(ctx_, daemon_->publish_endpoint(), server_.public_key, allowed);
  Subscriber refused(ctx_, daemon_->publish_endpoint(), server_.public_key, other);
  Subscriber plain(ctx_, daemon_->publish_endpoint());
  ASSERT_TRUE(good.wait_joined(5s)) << daemon_->log();
  zmq::socket_t gateway = push(&gateway_);
  for (const v1::Frame& f : running_frames(2, 3.0)) ASSERT_TRUE(send_frame(gateway, f));
  ASSERT_TRUE(good.collect_until([&](const auto&) { return !good.decoded<v1::StepMetrics>("step/st2").empty(); }, 10s));
  refused.poll_into_store(500ms);
  plain.poll_into_store(100ms);
  EXPECT_TRUE(refused.received().empty()) << "a key not in subscriber_keys reads nothing";
  EXPECT_TRUE(plain.received().empty()) << "plaintext reads nothing from a CURVE publisher";
  EXPECT_GE(metric("kneeload_curve_connections_total{socket=\"publish\",outcome=\"refused\"}"), 1);
}

}  // namespace
}  // namespace kneeload::testing
