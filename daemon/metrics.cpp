#include "daemon/metrics.hpp"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netdb.h>
#include <netinet/in.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <system_error>
#include <thread>

#include "daemon/pipeline.hpp"
#include "kneeload/fusion/output.hpp"
#include "kneeload/proto/codec.hpp"

namespace kneeload::daemon {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr const char* kKindNames[fusion::kSensorKindCount] = {"insole", "knee", "treadmill", "console"};
constexpr const char* kSeverityNames[4] = {"", "info", "warn", "high"};

class Families {
 public:
  MetricFamily& family(const char* name, const char* help, MetricType type) {
    families_.push_back(MetricFamily{name, help, type, {}});
    return families_.back();
  }
  static ClientMetric& add(MetricFamily& f, std::vector<ClientMetric::Label> labels = {}) {
    f.metric.push_back(ClientMetric{});
    f.metric.back().label = std::move(labels);
    return f.metric.back();
  }
  void counter(MetricFamily& f, double value, std::vector<ClientMetric::Label> labels = {}) {
    add(f, std::move(labels)).counter.value = value;
  }
  void gauge(MetricFamily& f, double value, std::vector<ClientMetric::Label> labels = {}) {
    add(f, std::move(labels)).gauge.value = value;
  }
  void single_gauge(const char* name, const char* help, double value) {
    gauge(family(name, help, MetricType::Gauge), value);
  }
  // Folds the per-thread histograms into one series (non-cumulative counts in, cumulative out).
  void histogram(const char* name, const char* help, const std::vector<const SingleWriterHistogram*>& parts) {
    if (parts.empty()) return;
    std::vector<std::uint64_t> counts;
    std::uint64_t sum_ns = 0;
    for (const SingleWriterHistogram* h : parts) h->add_to(counts, sum_ns);
    MetricFamily& f = family(name, help, MetricType::Histogram);
    ClientMetric& m = add(f);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < counts.size(); ++i) {
      cumulative += counts[i];
      const double bound = i < parts[0]->bound_count() ? static_cast<double>(parts[0]->bound_ns(i)) * 1e-9
                                                       : std::numeric_limits<double>::infinity();
      m.histogram.bucket.push_back({cumulative, bound});
    }
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = static_cast<double>(sum_ns) * 1e-9;
  }
  std::vector<MetricFamily> take() {
    std::vector<MetricFamily> v;
    for (MetricFamily& f : families_) {
      // A family without series (no station yet) would print a bare HELP/TYPE; leave it out.
      if (!f.metric.empty()) v.push_back(std::move(f));
    }
    return v;
  }

 private:
  std::deque<MetricFamily> families_;  // a deque: family() hands out references that must stay valid
};

double as_double(std::uint64_t v) { return static_cast<double>(v); }

void collect_process(Families& out) {
  long rss_pages = 0;
  {
    std::ifstream statm("/proc/self/statm");
    long size_pages = 0;
    statm >> size_pages >> rss_pages;
  }
  out.single_gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                   static_cast<double>(rss_pages) * static_cast<double>(::sysconf(_SC_PAGESIZE)));
  std::size_t fds = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  out.single_gauge("process_open_fds", "Number of open file descriptors.", static_cast<double>(fds));
  timespec cpu{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
  out.counter(out.family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                         MetricType::Counter),
              static_cast<double>(cpu.tv_sec) + static_cast<double>(cpu.tv_nsec) * 1e-9);
}

}  // namespace

std::vector<MetricFamily> collect_metrics(const Pipeline& pipeline, const ControlCounters& control) {
  Families out;
  const Ingest& ingest = pipeline.ingest();
  const proto::DecoderCounters& dec = ingest.decoder_counters();
  const PublisherCounters& pub = pipeline.publisher().counters();

  out.gauge(out.family("kneeload_build_info", "Build of the running kneeloadd (value 1).", MetricType::Gauge), 1,
            {{"version", KNEELOAD_VERSION}});
  out.single_gauge("kneeload_start_time_seconds", "When the daemon started, Unix time in seconds.",
                   static_cast<double>(control.start_unix_s));
  out.single_gauge("kneeload_config_generation", "Registry generation in use: 1 at start, +1 per applied reload.",
                   as_double(pipeline.generation_snapshot()));

  // --- Ingest
  out.counter(out.family("kneeload_frames_received_total", "Frames received on the ingest sockets.",
                         MetricType::Counter),
              as_double(dec.frames_received.get()));
  MetricFamily& frames_rejected = out.family(
      "kneeload_frames_rejected_total", "Frames rejected whole at ingest, by reason (README: Counters).",
      MetricType::Counter);
  MetricFamily& samples_rejected = out.family(
      "kneeload_samples_rejected_total", "Samples rejected at ingest (their frame's other samples kept), by reason.",
      MetricType::Counter);
  for (int r = 0; r < proto::kRejectCount; ++r) {
    const auto reason = static_cast<proto::Reject>(r);
    out.counter(proto::is_frame_reject(reason) ? frames_rejected : samples_rejected,
                as_double(dec.rejected[static_cast<std::size_t>(r)].get()), {{"reason", proto::reject_name(reason)}});
  }
  out.counter(out.family("kneeload_ingest_full_batches_total",
                         "Ingest passes that took their limit of 512 frames, so more may have waited in the "
                         "socket: a steady rise means ingest is saturated (README: Metrics).",
                         MetricType::Counter),
              as_double(ingest.counters().full_batches.get()));
  MetricFamily& ingested = out.family("kneeload_samples_ingested_total",
                                      "Samples accepted at ingest, by sensor kind.", MetricType::Counter);
  for (int k = 0; k < fusion::kSensorKindCount; ++k) {
    out.counter(ingested, as_double(ingest.counters().samples_by_kind[static_cast<std::size_t>(k)].get()),
                {{"kind", kKindNames[k]}});
  }

  // --- CURVE connections (absent without CURVE)
  if (const ZapHandler* zap = pipeline.zap()) {
    MetricFamily& auth = out.family("kneeload_curve_connections_total",
                                    "CURVE connections judged by the ZAP handler, by socket and outcome.",
                                    MetricType::Counter);
    for (std::size_t i = 0; i < 2; ++i) {
      out.counter(auth, as_double(zap->counters().accepted[i].get()), {{"socket", kZapDomains[i]}, {"outcome", "accepted"}});
      out.counter(auth, as_double(zap->counters().refused[i].get()), {{"socket", kZapDomains[i]}, {"outcome", "refused"}});
    }
  }

  // --- Drops: every accepted sample or output lost later, by stage and reason.
  MetricFamily& dropped = out.family(
      "kneeload_dropped_total",
      "Accepted samples or their outputs dropped after ingest, by stage and reason (README: Counters).",
      MetricType::Counter);
  for (const DropCount& d : pipeline.drops()) {
    const std::string_view name = d.name;
    const std::size_t dot = name.find('.');
    out.counter(dropped, as_double(d.value),
                {{"stage", std::string(name.substr(0, dot))}, {"reason", std::string(name.substr(dot + 1))}});
  }

  // --- Rings
  MetricFamily& depth = out.family("kneeload_ring_depth", "Items queued in a pipeline ring now.", MetricType::Gauge);
  MetricFamily& capacity = out.family("kneeload_ring_capacity", "Capacity of a pipeline ring in items.",
                                      MetricType::Gauge);
  for (const Pipeline::RingView& r : pipeline.rings()) {
    const std::vector<ClientMetric::Label> labels = {{"stage", r.stage}, {"ring", std::to_string(r.index)}};
    out.gauge(depth, static_cast<double>(r.depth), labels);
    out.gauge(capacity, static_cast<double>(r.capacity), labels);
  }

  // --- Fusion
  std::uint64_t fused = 0, knee = 0, shank = 0, force = 0, jumps = 0, early = 0, rate_cut = 0, ml_cut = 0;
  std::vector<const SingleWriterHistogram*> fusion_time;
  std::vector<const SingleWriterHistogram*> handoff;
  for (const auto& w : pipeline.workers()) {
    const WorkerCounters& c = w->counters();
    fused += c.samples.get();
    knee += c.knee_gated.get();
    shank += c.shank_gated.get();
    force += c.force_gated.get();
    jumps += c.clock_jumps.get();
    early += c.reorder_early.get();
    rate_cut += c.loading_rate_withheld.get();
    ml_cut += c.ml_excursion_withheld.get();
    fusion_time.push_back(&c.fusion_time);
    handoff.push_back(&c.handoff_latency);
  }
  // With the ingest counters this closes the books on accepted samples: once the rings are
  // empty, ingested = fused + dropped{stage="ingest"}.
  out.counter(out.family("kneeload_samples_fused_total",
                         "Samples the fusion workers took from their rings (those for a runner without a "
                         "session are also counted in kneeload_dropped_total{stage=\"worker\",reason=\"unknown_runner\"}).",
                         MetricType::Counter),
              as_double(fused));
  MetricFamily& gated = out.family("kneeload_filter_gated_total",
                                   "Kalman filter updates refused by the innovation (Mahalanobis) gate, by filter.",
                                   MetricType::Counter);
  out.counter(gated, as_double(knee), {{"filter", "knee_angle"}});
  out.counter(gated, as_double(shank), {{"filter", "shank_tilt"}});
  out.counter(gated, as_double(force), {{"filter", "vgrf"}});
  out.counter(out.family("kneeload_clock_jumps_total", "Device clock jumps detected (each also an F4 event).",
                         MetricType::Counter),
              as_double(jumps));
  out.counter(out.family("kneeload_reorder_released_early_total",
                         "Samples fused before their reorder window had passed because their runner's reorder "
                         "buffer was full (model.clock.capacity too small for the device rates); an older sample "
                         "of that runner arriving afterwards is dropped as late.",
                         MetricType::Counter),
              as_double(early));
  MetricFamily& withheld = out.family(
      "kneeload_step_metric_withheld_total",
      "Steps published without a metric because the stance outlasted the trace kept for that metric's "
      "window (model.stance_trace_samples: walking or standing on the belt at a high insole rate), by metric.",
      MetricType::Counter);
  out.counter(withheld, as_double(rate_cut), {{"metric", "loading_rate"}});
  out.counter(withheld, as_double(ml_cut), {{"metric", "cop_ml_excursion"}});
  out.histogram("kneeload_fusion_duration_seconds",
                "Time to fuse one sample in a worker (one sample in 16 is timed), seconds.", fusion_time);

  // --- Publish
  MetricFamily& published = out.family("kneeload_outputs_published_total",
                                       "Messages handed to the PUB socket, by topic.", MetricType::Counter);
  for (int t = 0; t < proto::kTopicCount; ++t) {
    out.counter(published, as_double(pub.published_by_topic[static_cast<std::size_t>(t)].get()),
                {{"topic", proto::topic_prefix(static_cast<proto::Topic>(t))}});
  }
  out.histogram("kneeload_publish_latency_seconds",
                "Arrival of the frame that released an output from the reorder window to the output's "
                "hand-over to the PUB socket, seconds.",
                {&pub.latency});
  out.histogram("kneeload_worker_handoff_latency_seconds",
                "Arrival of the frame that released an output to the worker's hand-over of it to the "
                "publisher's ring (the wait for the worker and the fusion), seconds. The rest of "
                "kneeload_publish_latency_seconds is publishing: the wait for the publishing right, "
                "encoding, and the outputs published before it.",
                handoff);
  out.counter(out.family("kneeload_outputs_timer_released_total",
                         "Outputs published that no frame's arrival released (the idle flush, a stale "
                         "device, the drain): not in kneeload_publish_latency_seconds.",
                         MetricType::Counter),
              as_double(pub.timer_released.get()));
  out.histogram("kneeload_output_age_seconds",
                "Arrival of the sample an output was computed from to the output's hand-over to the PUB "
                "socket (the reorder window included), seconds.",
                {&pub.age});
  MetricFamily& risk = out.family("kneeload_risk_events_total",
                                  "Risk and sensor-fault event onsets (escalations included), by rule and severity.",
                                  MetricType::Counter);
  for (const fusion::RuleId rule : fusion::kAllRules) {
    for (std::size_t sev = 1; sev < 4; ++sev) {
      const std::uint64_t v = pub.risk_onsets[fusion::rule_slot(rule)][sev].get();
      // Every rule × severity pair exists from the start, so rate() sees the first event.
      out.counter(risk, as_double(v), {{"rule", fusion::rule_info(rule).code}, {"severity", kSeverityNames[sev]}});
    }
  }

  // --- Devices, runners, stations
  out.single_gauge("kneeload_configured_devices", "Devices in the running registry.",
                   static_cast<double>(pipeline.configured_devices()));
  out.single_gauge("kneeload_active_devices",
                   "Streaming devices: heard from and not stale (treadmill consoles not counted).",
                   static_cast<double>(pipeline.streaming_devices()));
  out.single_gauge("kneeload_stale_devices", "Devices silent for longer than stale_after_s.",
                   static_cast<double>(pipeline.stale_devices_snapshot()));
  MetricFamily& reloads = out.family("kneeload_reloads_total", "SIGHUP reloads, by outcome.", MetricType::Counter);
  out.counter(reloads, as_double(control.reloads_applied.load(std::memory_order_relaxed)), {{"outcome", "applied"}});
  out.counter(reloads, as_double(control.reloads_refused.load(std::memory_order_relaxed)), {{"outcome", "refused"}});

  // --- Per station, for the floor dashboard. Only the current registry's stations: the label
  // set is bounded by pipeline.max_stations and a removed station's series end with it.
  const std::vector<Pipeline::StationView> stations = pipeline.stations();
  MetricFamily& cadence = out.family("kneeload_station_cadence_steps_per_minute",
                                     "Cadence at the station's last step, steps per minute.", MetricType::Gauge);
  MetricFamily& contact = out.family("kneeload_station_contact_time_seconds",
                                     "Ground contact time of the station's last step, seconds.", MetricType::Gauge);
  MetricFamily& flexion = out.family("kneeload_station_peak_knee_flexion_degrees",
                                     "Peak knee flexion in stance of the station's last step, degrees.",
                                     MetricType::Gauge);
  MetricFamily& stress = out.family("kneeload_station_pfj_stress_pascals",
                                    "Peak patellofemoral joint stress of the station's last step, pascals.",
                                    MetricType::Gauge);
  MetricFamily& integral = out.family(
      "kneeload_station_stress_time_integral_pascal_seconds",
      "Cumulative PFJ stress-time integral of the open session (cumulative load), pascal-seconds.",
      MetricType::Gauge);
  MetricFamily& damage = out.family("kneeload_station_damage_index",
                                    "Damage index sum (stress/reference)^b of the open session (MODEL.md section 4).",
                                    MetricType::Gauge);
  MetricFamily& level = out.family("kneeload_station_risk_level",
                                   "Highest severity among the station's active rules: 0 none, 1 info, 2 warn, 3 high.",
                                   MetricType::Gauge);
  MetricFamily& distance = out.family("kneeload_station_session_distance_meters",
                                      "Distance of the open session, meters (0 when none is open).",
                                      MetricType::Gauge);
  MetricFamily& acwr = out.family(
      "kneeload_station_acute_chronic_ratio",
      "Uncoupled EWMA acute:chronic ratio of daily distance of the station's runner, from the runner history "
      "(MODEL.md section 4; informative, no rule uses it).",
      MetricType::Gauge);
  std::size_t open_sessions = 0;
  constexpr auto relaxed = std::memory_order_relaxed;
  for (const Pipeline::StationView& s : stations) {
    const StationGauges& g = pipeline.station_gauges(s.index);
    const std::vector<ClientMetric::Label> labels = {{"station", s.name}};
    // Unknown values (no step yet, no load model inputs) are left out rather than exported as NaN.
    auto known = [&](MetricFamily& f, double v) {
      if (std::isfinite(v)) out.gauge(f, v, labels);
    };
    known(cadence, g.cadence_spm.load(relaxed));
    known(contact, g.contact_time_s.load(relaxed));
    known(flexion, g.peak_knee_flexion_deg.load(relaxed));
    known(stress, g.pfj_stress_pa.load(relaxed));
    known(integral, g.stress_time_integral_pa_s.load(relaxed));
    known(damage, g.damage_index.load(relaxed));
    known(acwr, pipeline.acute_chronic_ratio(s.runner));
    out.gauge(level, g.risk_level.load(relaxed), labels);
    out.gauge(distance, g.session_distance_m.load(relaxed), labels);
    if (g.session_open.load(relaxed)) ++open_sessions;
  }
  out.single_gauge("kneeload_active_stations", "Stations with a session open now.", static_cast<double>(open_sessions));
  // One runner per station (the registry enforces it), so open sessions count both.
  out.single_gauge("kneeload_active_runners", "Runners with a session open now.", static_cast<double>(open_sessions));

  collect_process(out);
  return out.take();
}

}  // namespace kneeload::daemon

namespace kneeload::daemon {

namespace {

socklen_t length_of(const sockaddr_storage& address) {
  return address.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

// Whether `address` is one of this host's own: only those take a bind().
bool is_local(const sockaddr_storage& address) {
  const int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_storage any_port = address;
  if (address.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&any_port)->sin_port = 0;
  } else {
    reinterpret_cast<sockaddr_in6*>(&any_port)->sin6_port = 0;
  }
  const bool local = ::bind(fd, reinterpret_cast<const sockaddr*>(&any_port), length_of(address)) == 0;
  ::close(fd);
  return local;
}

// What `host` (as in metrics.address; a literal in brackets without them) resolves to: its IPv4
// and IPv6 addresses with port 0, or the resolver's error. Looked up once, at start-up: the
// refusal of a name civetweb cannot use and the addresses a stop knocks on both come from it,
// so a stop never waits for a name service.
struct HostAddresses {
  std::vector<sockaddr_storage> addresses;
  int error = 0;  // getaddrinfo's, 0 if it resolved
};

HostAddresses resolve_host(std::string host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  HostAddresses out;
  out.error = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), "0", &hints, &found);
  if (out.error != 0) return out;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    sockaddr_storage s{};
    std::memcpy(&s, a->ai_addr, a->ai_addrlen);
    out.addresses.push_back(s);
  }
  ::freeaddrinfo(found);
  return out;
}

// Where this host reaches the listening socket on the resolved host and `port` (the one bound):
// the host's addresses that are this host's own (a name may also resolve to others, which
// civetweb did not bind and which a stop must not connect to), a wildcard on loopback of its
// family.
std::vector<sockaddr_storage> knock_addresses(const HostAddresses& host, std::uint16_t port) {
  std::vector<sockaddr_storage> out;
  for (sockaddr_storage s : host.addresses) {
    if (s.ss_family == AF_INET) {
      auto* v4 = reinterpret_cast<sockaddr_in*>(&s);
      if (v4->sin_addr.s_addr == htonl(INADDR_ANY)) v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      v4->sin_port = htons(port);
    } else {
      auto* v6 = reinterpret_cast<sockaddr_in6*>(&s);
      if (IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr)) v6->sin6_addr = in6addr_loopback;
      v6->sin6_port = htons(port);
    }
    const bool seen = std::any_of(out.begin(), out.end(), [&](const sockaddr_storage& o) {
      return std::memcmp(&o, &s, length_of(s)) == 0;
    });
    if (!seen && is_local(s)) out.push_back(s);
  }
  return out;
}

// One connection, closed at once: it ends the poll of civetweb's listening thread. A connection
// taken before the stop is served an end of file and closed by civetweb's worker. False once the
// port refuses: the listening socket is closed, and nothing more is to be woken there.
bool knock(const sockaddr_storage& address) {
  const int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return true;
  const timeval limit{0, 50'000};  // a connect to this host takes microseconds; never hang here
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  const bool refused = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), length_of(address)) != 0 &&
                       errno == ECONNREFUSED;
  ::close(fd);
  return !refused;
}

// Why civetweb cannot listen on `host` (as in metrics.address), or "" if it can as far as a name
// goes. civetweb resolves a name itself, for IPv4 only when it has no IPv6, and a name it cannot
// resolve fails like a taken port ("null context ... Possible problem binding to port").
std::string unresolved_reason(const std::string& host, const HostAddresses& resolved, bool civetweb_ipv6) {
  if (host.empty() || host.front() == '[') return {};  // a literal: civetweb parses it itself
  if (resolved.error != 0) return "\"" + host + "\" does not resolve: " + ::gai_strerror(resolved.error);
  bool v4 = false, v6 = false;
  for (const sockaddr_storage& a : resolved.addresses) {
    v4 = v4 || a.ss_family == AF_INET;
    v6 = v6 || a.ss_family == AF_INET6;
  }
  if (v4 || (v6 && civetweb_ipv6)) return {};
  if (v6) {
    return "\"" + host + "\" resolves only to IPv6 addresses, and this host's civetweb has no IPv6 support " +
           "(Debian 12 builds it without); use an IPv4 address or a name that has one";
  }
  return "\"" + host + "\" resolves to no IPv4 or IPv6 address";
}

}  // namespace

struct MetricsServer::Knock {
  std::vector<sockaddr_storage> addresses;  // the listening socket, from this host
};

class MetricsServer::Collector final : public prometheus::Collectable {
 public:
  Collector(const Pipeline& pipeline, const ControlCounters& control) : pipeline_(pipeline), control_(control) {}
  std::vector<prometheus::MetricFamily> Collect() const override { return collect_metrics(pipeline_, control_); }

 private:
  const Pipeline& pipeline_;
  const ControlCounters& control_;
};

MetricsServer::MetricsServer(const MetricsEndpoint& endpoint, const Pipeline& pipeline, const ControlCounters& control)
    : collector_(std::make_shared<Collector>(pipeline, control)) {
  const std::string& address = endpoint.address;
  std::string user, password;
  if (!endpoint.basic_auth_file.empty()) {
    std::ifstream in(endpoint.basic_auth_file);
    std::string line;
    std::getline(in, line);
    const std::size_t colon = line.find(':');
    if (!in || colon == std::string::npos || colon == 0) {
      throw StartError("metrics.basic_auth_file \"" + endpoint.basic_auth_file +
                       "\": expected one line user:password, got an unreadable file or no colon");
    }
    user = line.substr(0, colon);
    password = line.substr(colon + 1);
  }
  // civetweb reports only "null context" for an address it cannot parse, and Debian 12 builds it
  // without IPv6 (mg_check_feature(8) is 0), so every IPv6 address would fail as if its port
  // were taken.
  constexpr unsigned kCivetwebIPv6 = 8;  // mg_check_feature's bit for IPv6
  if (address.starts_with("[") && mg_check_feature(kCivetwebIPv6) == 0) {
    throw StartError("cannot serve metrics on \"" + address + "\": this host's civetweb has no IPv6 support " +
                     "(Debian 12 builds it without); use an IPv4 address");
  }
  const std::size_t colon = address.rfind(':');
  const std::string host = address.substr(0, colon);
  const HostAddresses resolved = resolve_host(host);
  if (const std::string why = unresolved_reason(host, resolved, mg_check_feature(kCivetwebIPv6) != 0); !why.empty()) {
    throw StartError("cannot serve metrics on \"" + address + "\": " + why);
  }
  // One civetweb thread: scrapes are rare and the machine has few cores (ENGINEERING.md §1e).
  const std::vector<std::string> options = {"listening_ports", address, "num_threads", "1"};
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(options);
  } catch (const std::exception& e) {
    throw StartError("cannot serve metrics on \"" + address + "\": " + e.what());
  }
  if (!user.empty()) {
    exposer_->RegisterAuth(
        [user, password](const std::string& u, const std::string& p) { return u == user && p == password; },
        "kneeloadd", "/metrics");
  }
  exposer_->RegisterCollectable(collector_, "/metrics");
  const std::vector<int> ports = exposer_->GetListeningPorts();
  const std::string port = ports.empty() ? address.substr(colon + 1) : std::to_string(ports[0]);
  bound_ = host + ":" + port;
  knock_ = std::make_unique<Knock>(
      Knock{knock_addresses(resolved, static_cast<std::uint16_t>(std::strtoul(port.c_str(), nullptr, 10)))});
}

// civetweb's listening thread waits for connections in polls of 2 s (SOCKET_TIMEOUT_QUANTUM in
// civetweb 1.15), and stopping waits for it to see the stop flag, so a stop took up to 2 s after
// the last connection (or the start): measured, SIGTERM to exit 1.02 s one second after start
// and 1.81 s 0.2 s after a scrape. So the server stops on another thread while this one knocks
// on its port every 10 ms until it has stopped.
MetricsServer::~MetricsServer() {
  if (!exposer_) return;
  std::atomic<bool> stopped{false};
  std::thread stopper;
  try {
    stopper = std::thread([&] {
      exposer_.reset();
      stopped.store(true, std::memory_order_release);
    });
  } catch (const std::system_error&) {
    exposer_.reset();  // no thread to spare: stop in civetweb's own time
    return;
  }
  std::vector<sockaddr_storage>& open = knock_->addresses;
  while (!open.empty() && !stopped.load(std::memory_order_acquire)) {
    std::erase_if(open, [](const sockaddr_storage& address) { return !knock(address); });
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stopper.join();
}

}  // namespace kneeload::daemon
