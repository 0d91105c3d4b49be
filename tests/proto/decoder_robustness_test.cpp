// FrameDecoder on hostile input: thousands of random byte strings and random mutations of valid
// frames. None may crash; each is accepted or counted, exactly once; and the decoder's hand-
// written top-level parser refuses exactly the inputs protobuf's generated parser refuses.
#include <algorithm>
#include <array>
#include <cstdint>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <google/protobuf/stubs/logging.h>
#include <gtest/gtest.h>

#include "kneeload/proto/codec.hpp"
#include "test_frames.hpp"

namespace kneeload::proto {

// Found by argument-dependent lookup, so it must live in ValidationLimits' own namespace.
void PrintTo(const ValidationLimits& l, std::ostream* os);
void PrintTo(const ValidationLimits& l, std::ostream* os) {
  *os << "{max_frame_bytes=" << l.max_frame_bytes
      << ", max_samples_per_frame=" << l.max_samples_per_frame << "}";
}

namespace {

using namespace kneeload::proto::test;  // NOLINT(google-build-using-namespace): test builders

constexpr std::uint64_t kSeed = 0x6b6e65656c6f6164;  // fixed, so a failure reproduces

struct Snapshot {
  std::uint64_t frames_received, frames_accepted, samples_accepted;
  std::array<std::uint64_t, kRejectCount> rejected;
};

Snapshot snapshot(const DecoderCounters& c) {
  Snapshot s{c.frames_received.get(), c.frames_accepted.get(), c.samples_accepted.get(), {}};
  for (int r = 0; r < kRejectCount; ++r) {
    s.rejected[static_cast<std::size_t>(r)] = c.rejected[static_cast<std::size_t>(r)].get();
  }
  return s;
}

// What the decoder must say at frame level, worked out independently from protobuf's own
// parse of the bytes and the device's track before the call. Returns true and sets `reason`
// when the frame must be refused.
bool expected_frame_reject(const std::string& bytes, std::size_t wire_size,
                           const ValidationLimits& limits, const DeviceTable& table,
                           const std::vector<DeviceTrack>& tracks, Reject& reason) {
  if (wire_size > limits.max_frame_bytes || bytes.size() > limits.max_frame_bytes) {
    reason = Reject::kOversize;
    return true;
  }
  v1::Frame ref;
  bool parsed = false;
  {
    google::protobuf::LogSilencer quiet;  // protobuf logs every invalid UTF-8 string it meets
    parsed = ref.ParseFromString(bytes);
  }
  if (!parsed) {
    reason = Reject::kMalformed;
    return true;
  }
  const std::string& id = ref.device_id();
  const DeviceInfo* info = table.find(id);
  const int n = ref.samples_size();
  if (ref.protocol_version() != kProtocolVersion) {
    reason = Reject::kWrongVersion;
  } else if (id.empty() || id.size() > kMaxDeviceIdBytes) {
    reason = Reject::kBadDeviceId;
  } else if (info == nullptr) {
    reason = Reject::kUnknownDevice;
  } else if (n == 0) {
    reason = Reject::kEmptyFrame;
  } else if (n > limits.max_samples_per_frame) {
    reason = Reject::kTooManySamples;
  } else {
    const DeviceTrack& t = tracks[info->device];
    if (t.seen && ref.seq() == t.last_seq) {
      reason = Reject::kDuplicateSeq;
    } else if (t.seen && ref.seq() < t.last_seq && ref.seq() != 0) {
      reason = Reject::kReorderedSeq;
    } else {
      return false;
    }
  }
  return true;
}

class DecoderRobustness : public ::testing::TestWithParam<ValidationLimits> {
 protected:
  // Decodes one input and checks the accounting. Returns false after the first failure so a
  // broken invariant produces one message, not thousands.
  bool decode_and_check(const std::string& bytes, std::size_t wire_size, const char* what,
                        int index) {
    const Snapshot before = snapshot(decoder_.counters());
    Reject expected_reason = Reject::kMalformed;
    const bool expect_rejected =
        expected_frame_reject(bytes, wire_size, limits_, table_, tracks_, expected_reason);
    arrival_t_us_ += 100;
    const DecodeResult r =
        decoder_.decode(as_bytes(bytes), wire_size, table_, tracks_, arrival_t_us_, out_);
    const Snapshot after = snapshot(decoder_.counters());
    ++inputs_;

    std::uint64_t frame_level = 0;
    std::uint64_t sample_level = 0;
    for (int i = 0; i < kRejectCount; ++i) {
      const std::uint64_t d = after.rejected[static_cast<std::size_t>(i)] -
                              before.rejected[static_cast<std::size_t>(i)];
      (is_frame_reject(static_cast<Reject>(i)) ? frame_level : sample_level) += d;
    }
    const auto fail = [&](const std::string& msg) {
      ADD_FAILURE() << what << " #" << index << " (" << bytes.size() << " bytes): " << msg
                    << "; result: accepted=" << r.accepted << " frame_rejected=" << r.frame_rejected
                    << " reason=" << reject_name(r.frame_reason)
                    << " samples_rejected=" << r.samples_rejected;
      return false;
    };
    if (after.frames_received != before.frames_received + 1) return fail("frames_received not +1");
    if (r.frame_rejected != expect_rejected) {
      return fail(std::string("frame_rejected: expected ") + (expect_rejected ? "true" : "false") +
                  " (" + reject_name(expected_reason) + ")");
    }
    if (expect_rejected) {
      if (r.frame_reason != expected_reason) {
        return fail(std::string("reason: expected ") + reject_name(expected_reason) + ", got " +
                    reject_name(r.frame_reason));
      }
      if (frame_level != 1 || sample_level != 0 || r.accepted != 0 || r.samples_rejected != 0) {
        return fail("a refused frame must count exactly one frame-level reason and nothing else");
      }
    } else {
      v1::Frame ref;
      ref.ParseFromString(bytes);
      if (frame_level != 0) return fail("sequenced frame counted a frame-level reason");
      if (r.accepted + r.samples_rejected != ref.samples_size()) {
        return fail("accepted + rejected samples != samples in the frame (" +
                    std::to_string(ref.samples_size()) + ")");
      }
      if (sample_level != static_cast<std::uint64_t>(r.samples_rejected)) {
        return fail("sample-level counters moved by " + std::to_string(sample_level));
      }
    }
    if (after.samples_accepted - before.samples_accepted !=
        static_cast<std::uint64_t>(r.accepted)) {
      return fail("samples_accepted did not move by accepted");
    }
    if (after.frames_accepted - before.frames_accepted != (r.accepted > 0 ? 1u : 0u)) {
      return fail("frames_accepted must count frames with >= 1 accepted sample");
    }
    return true;
  }

  std::vector<std::string> valid_frames() const {
    std::uint32_t seq = 1;
    std::vector<std::string> frames;
    frames.push_back(serialize(make_frame(
        kInsoleLeftId, seq++, {insole_sample(10), insole_sample(20), status_sample(30)})));
    frames.push_back(serialize(
        make_frame(kKneeLeftId, seq++, {knee_sample(10), knee_sample(20, 0.1f, false, true)})));
    frames.push_back(serialize(make_frame(kTreadmillId, seq++, {treadmill_sample(10)})));
    frames.push_back(
        serialize(make_frame(kConsoleId, seq++, {pain_sample(10), session_end_sample(20)})));
    return frames;
  }

  ValidationLimits limits_ = GetParam();
  FrameDecoder decoder_{limits_};
  DeviceTable table_ = make_table();
  std::vector<DeviceTrack> tracks_ = std::vector<DeviceTrack>(kDeviceCapacity);
  std::vector<fusion::Sample> out_ =
      std::vector<fusion::Sample>(static_cast<std::size_t>(limits_.max_samples_per_frame));
  std::int64_t arrival_t_us_ = 0;
  int inputs_ = 0;
  std::mt19937_64 rng_{kSeed};
};

TEST_P(DecoderRobustness, RandomBytesAreAcceptedOrCountedAndMatchProtobufsParser) {
  std::uniform_int_distribution<int> length(0, 300);
  std::uniform_int_distribution<int> byte(0, 255);
  // Bytes that are common in real frames (tags of fields 1..4, small lengths, continuation
  // bits), so that random strings get past the first byte more often than pure noise would.
  constexpr std::array<std::uint8_t, 12> kLikely = {0x08, 0x12, 0x18, 0x22, 0x0a, 0x10,
                                                    0x1a, 0x01, 0x00, 0x80, 0xff, 0x7f};
  std::uniform_int_distribution<std::size_t> likely(0, kLikely.size() - 1);
  std::bernoulli_distribution use_likely(0.5);
  constexpr int kInputs = 4000;
  for (int i = 0; i < kInputs; ++i) {
    std::string b(static_cast<std::size_t>(length(rng_)), '\0');
    const bool biased = i % 2 == 1;
    for (char& ch : b) {
      const int v = biased && use_likely(rng_) ? kLikely[likely(rng_)] : byte(rng_);
      ch = static_cast<char>(v);
    }
    if (!decode_and_check(b, b.size(), "random", i)) return;
  }
  const DecoderCounters& c = decoder_.counters();
  std::cout << "[ counts   ] " << kInputs << " random inputs: " << reject_counts(c)
            << "frames_accepted=" << c.frames_accepted.get() << '\n';
  EXPECT_EQ(c.frames_received.get(), static_cast<std::uint64_t>(kInputs));
  EXPECT_GT(c.rejected[static_cast<std::size_t>(Reject::kMalformed)].get(), 0u);
}

TEST_P(DecoderRobustness, MutatedValidFramesAreAcceptedOrCountedAndMatchProtobufsParser) {
  const std::vector<std::string> seeds = valid_frames();
  std::uniform_int_distribution<std::size_t> pick(0, seeds.size() - 1);
  std::uniform_int_distribution<int> op(0, 6);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> edits(1, 4);
  constexpr int kInputs = 6000;
  for (int i = 0; i < kInputs; ++i) {
    std::string b = seeds[pick(rng_)];
    const int n = edits(rng_);
    for (int e = 0; e < n && !b.empty(); ++e) {
      std::uniform_int_distribution<std::size_t> pos(0, b.size() - 1);
      const std::size_t p = pos(rng_);
      switch (op(rng_)) {
        case 0: b[p] = static_cast<char>(b[p] ^ (1 << (byte(rng_) % 8))); break;  // bit flip
        case 1: b[p] = static_cast<char>(byte(rng_)); break;                      // byte
        case 2: b.insert(p, 1, static_cast<char>(byte(rng_))); break;             // insert
        case 3: b.erase(p, 1); break;                                             // delete
        case 4: b.resize(p); break;                                               // truncate
        case 5: b += b.substr(p); break;                                          // repeat a tail
        default: b[p] = static_cast<char>(b[p] + 1); break;                       // off by one
      }
    }
    // Now and then a good frame (fresh seq) in between: mutations never stop good input.
    if (i % 100 == 0) {
      v1::Frame good = make_frame(kTreadmillId, 0, {treadmill_sample(0)});
      const DeviceTrack& t = tracks_[kTreadmillDevice];
      good.set_seq(t.seen ? t.last_seq + 1 : 1);
      good.mutable_samples(0)->set_t_us(t.seen && t.last_t_us > 0 ? t.last_t_us : 0);
      const std::string gb = serialize(good);
      const std::uint64_t accepted_before = decoder_.counters().samples_accepted.get();
      if (!decode_and_check(gb, gb.size(), "good between mutations", i)) return;
      EXPECT_EQ(decoder_.counters().samples_accepted.get(), accepted_before + 1)
          << "a good frame after " << i
          << " mutations was not accepted: " << reject_name(decoder_.last_reject().reason);
    }
    if (!decode_and_check(b, b.size(), "mutation", i)) return;
  }
  const DecoderCounters& c = decoder_.counters();
  std::cout << "[ counts   ] " << kInputs << " mutations (+ good frames): " << reject_counts(c)
            << "frames_accepted=" << c.frames_accepted.get()
            << " samples_accepted=" << c.samples_accepted.get() << '\n';
  EXPECT_GT(c.frames_accepted.get(), 0u) << "no mutation survived: the oracle was never tested "
                                            "on accepted frames";
}

TEST_P(DecoderRobustness, EveryTruncationOfAValidFrameIsAcceptedOrCounted) {
  for (const std::string& frame : valid_frames()) {
    for (std::size_t len = 0; len <= frame.size(); ++len) {
      if (!decode_and_check(frame.substr(0, len), len, "truncation", static_cast<int>(len))) return;
    }
  }
}

// Encodings at the edges of the wire format, where a hand-written parser most easily differs
// from protobuf's. Each is appended to a valid frame; `malformed` is what protobuf 3.21 says,
// and decode_and_check() also compares with protobuf's parser directly.
TEST_P(DecoderRobustness, WireFormatEdgeCasesMatchProtobufsParser) {
  struct Edge {
    const char* name;
    std::string tail;
    bool malformed;
  };
  const auto groups = [](int depth) {
    return std::string(static_cast<std::size_t>(depth), '\x7b') +  // start group, field 15
           std::string(static_cast<std::size_t>(depth), '\x7c');   // end group, field 15
  };
  const std::vector<Edge> edges = {
      {"tag_in_5_bytes", std::string("\xf8\x80\x80\x80\x00\x01", 6), false},
      {"tag_in_6_bytes", std::string("\xf8\x80\x80\x80\x80\x00\x01", 7), true},
      {"tag_wrapping_past_32_bits", std::string("\xf8\x80\x80\x80\x10\x01", 6), false},
      {"tag_all_ones_is_wire_type_7", std::string("\xff\xff\xff\xff\x7f\x01", 6), true},
      {"varint_in_10_bytes", "\x78" + std::string(9, '\x80') + "\x01", false},
      {"varint_in_11_bytes", "\x78" + std::string(10, '\x80') + "\x01", true},
      {"length_in_5_bytes", std::string("\x7a\x80\x80\x80\x80\x00", 6), false},
      {"length_in_6_bytes", std::string("\x7a\x80\x80\x80\x80\x80\x00", 7), true},
      {"length_of_2_gib", std::string("\x7a\x80\x80\x80\x80\x08", 6), true},
      {"length_past_end", std::string("\x7a\x05\x01\x02", 4), true},
      {"fixed64_cut_short", std::string("\x79\x01\x02\x03", 4), true},
      {"fixed32_complete", std::string("\x7d\x01\x02\x03\x04", 5), false},
      {"field_number_0_varint", std::string("\x00\x01", 2), true},
      {"field_number_0_length", std::string("\x02\x00", 2), true},
      {"wire_type_6", std::string("\x7e\x00", 2), true},
      {"wire_type_7", std::string("\x7f\x00", 2), true},
      {"end_group_at_top_level", std::string("\x7c", 1), true},
      {"group_closed_by_another_field", std::string("\x7b\x84\x01", 3), true},
      {"group_never_closed", std::string("\x7b\x08\x01", 3), true},
      {"groups_nested_100_deep", groups(100), false},
      {"groups_nested_101_deep", groups(101), true},
      {"version_as_length_delimited_is_unknown", std::string("\x0a\x01\x02", 3), false},
      {"samples_as_varint_is_unknown", std::string("\x20\x05", 2), false},
      {"seq_in_10_bytes_truncates_to_32_bits",
       "\x18" + std::string("\x85\x80\x80\x80\x90\x80\x80\x80\x80\x01", 10), false},
  };
  std::uint32_t seq = 1;
  for (const Edge& e : edges) {
    v1::Frame base = make_frame(kTreadmillId, 0, {treadmill_sample(0)});
    base.set_seq(seq++);
    const std::string bytes = serialize(base) + e.tail;
    const std::uint64_t malformed_before =
        decoder_.counters().rejected[static_cast<std::size_t>(Reject::kMalformed)].get();
    if (!decode_and_check(bytes, bytes.size(), e.name, 0)) return;
    const bool refused_as_malformed =
        decoder_.counters().rejected[static_cast<std::size_t>(Reject::kMalformed)].get() !=
        malformed_before;
    if (bytes.size() <= limits_.max_frame_bytes) {
      EXPECT_EQ(refused_as_malformed, e.malformed)
          << e.name << ": expected " << (e.malformed ? "malformed" : "parsed") << ", got "
          << (refused_as_malformed ? "malformed" : "parsed");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Limits, DecoderRobustness,
                         ::testing::Values(ValidationLimits{},
                                           // tight limits, so oversize and too_many_samples occur
                                           ValidationLimits{96, 2}),
                         [](const ::testing::TestParamInfo<ValidationLimits>& param_info) {
                           return param_info.param.max_samples_per_frame == 2
                                      ? std::string("Tight")
                                      : std::string("Default");
                         });

}  // namespace
}  // namespace kneeload::proto
