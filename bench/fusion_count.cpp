// fusion_count: a small driver for instruction counts per fused sample (issue 8), which are
// stable on a noisy machine where timings are not. bench/callgrind.sh runs it under
// valgrind --tool=callgrind twice per kind, with n = 0 and with n = N, and quotes
// (Ir(N) − Ir(0)) / N: everything else (rendering the recording, building the session, the
// warm-up) is identical in both runs and cancels.
//
//   fusion_count <knee|insole|runner> <n>   warm up, then fuse n more samples of that stream
//   fusion_count <knee|insole|runner> --digest
//       fuse the whole stream and finish(), and print a digest of every output: two builds
//       whose digests agree produced the same outputs bit for bit (string literals are hashed
//       by content, not address).
//
// Warm-up: every sample of the stream that arrived in the recording's first 60 s (standing,
// the start blend, the filters and the calibration loop settling, the session open), so the
// counted samples are steady running.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <variant>

#include "recording.hpp"

namespace {

using namespace kneeload;

constexpr std::int64_t kWarmupUs = 60'000'000;

class CountingSink final : public fusion::OutputSink {
 public:
  void emit(const fusion::Output&) override { ++outputs; }
  std::uint64_t outputs = 0;
};

// FNV-1a over outputs, with every string literal (rule evidence names, the load model id)
// hashed by its text: a pointer's value differs between two builds of the same code.
class DigestSink final : public fusion::OutputSink {
 public:
  void emit(const fusion::Output& o) override {
    ++count[o.body.index()];
    fusion::Output copy = o;
    if (auto* e = std::get_if<fusion::RiskEvent>(&copy.body)) {
      add_text(e->model_id);
      e->model_id = nullptr;
      for (fusion::Evidence& ev : e->evidence) {
        add_text(ev.metric);
        ev.metric = nullptr;
      }
    }
    add(&copy, sizeof copy);
  }
  std::uint64_t hash = 1469598103934665603ull;
  std::uint64_t count[std::variant_size_v<fusion::OutputBody>] = {};

 private:
  void add(const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) hash = (hash ^ b[i]) * 1099511628211ull;
  }
  void add_text(const char* s) {
    if (s != nullptr) add(s, std::strlen(s) + 1);
  }
};

int usage() {
  std::fprintf(stderr, "usage: fusion_count <knee|insole|runner> <n | --digest>\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return usage();
  const std::string_view which = argv[1];
  fusion::SensorKind kind_value{};
  const fusion::SensorKind* kind = &kind_value;
  if (which == "knee") {
    kind_value = fusion::SensorKind::kKnee;
  } else if (which == "insole") {
    kind_value = fusion::SensorKind::kInsole;
  } else if (which == "runner") {
    kind = nullptr;
  } else {
    return usage();
  }
  const bench::Recording& rec = bench::healthy_runner();
  const std::vector<fusion::Sample> stream = bench::stream_of(rec, kind);
  fusion::RunnerSession session(bench::session_config(rec));

  if (std::string_view(argv[2]) == "--digest") {
    DigestSink sink;
    for (const fusion::Sample& s : stream) session.on_sample(s, sink);
    session.finish(sink);
    std::printf("%s samples=%zu states=%llu steps=%llu events=%llu summaries=%llu digest=%016llx\n",
                argv[1], stream.size(), static_cast<unsigned long long>(sink.count[0]),
                static_cast<unsigned long long>(sink.count[1]),
                static_cast<unsigned long long>(sink.count[2]),
                static_cast<unsigned long long>(sink.count[3]),
                static_cast<unsigned long long>(sink.hash));
    return 0;
  }

  char* end = nullptr;
  const unsigned long long n = std::strtoull(argv[2], &end, 10);
  if (end == argv[2] || *end != '\0') return usage();
  const std::int64_t warm_until = rec.config.start_t_us + kWarmupUs;
  std::size_t i = 0;
  CountingSink sink;
  while (i < stream.size() && stream[i].arrival_t_us < warm_until) session.on_sample(stream[i++], sink);
  const std::size_t warmup = i;
  if (n > stream.size() - warmup) {
    std::fprintf(stderr, "fusion_count: %s has %zu samples after the warm-up, asked for %llu\n",
                 argv[1], stream.size() - warmup, n);
    return 2;
  }
  for (const std::size_t stop = warmup + n; i < stop;) session.on_sample(stream[i++], sink);
  std::printf("%s warmup=%zu fused=%llu outputs=%llu\n", argv[1], warmup, n,
              static_cast<unsigned long long>(sink.outputs));
  return 0;
}
