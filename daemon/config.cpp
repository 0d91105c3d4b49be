// Config parsing and validation. The contract is in config.hpp; every key is documented in
// deploy/config/kneeloadd.example.toml and the README's "Configuration" section.
//
// Why the shape: each TOML table is read through a Section that knows its dotted path and the
// keys it allows, so every refusal can name FILE: KEY and say what was expected and what was
// got. Unknown keys are refused before any value is read, so a typo is reported as the typo and
// not as a missing key elsewhere. Cross-record rules (ids unique, runner defined, one runner per
// station, one device per slot, the registry fits its tables) run after each record is valid.

#include "daemon/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>

#include "kneeload/proto/codec.hpp"

namespace kneeload::daemon {

namespace {
std::string error_text(const std::string& file, const std::string& key, const std::string& reason) {
  // File-level errors (unreadable file) have no key; "FILE: : REASON" would read as a typo.
  return key.empty() ? file + ": " + reason : file + ": " + key + ": " + reason;
}
}  // namespace

ConfigError::ConfigError(std::string file, std::string key, std::string reason)
    : std::runtime_error(error_text(file, key, reason)),
      file_(std::move(file)),
      key_(std::move(key)),
      reason_(std::move(reason)) {}

namespace {

// Ids travel on the wire and live in the registry's fixed-size name tables.
constexpr std::size_t kMaxNameBytes = proto::kMaxDeviceIdBytes;
constexpr const char* kNameRule = "1..64 characters from [A-Za-z0-9_.:-]";
constexpr const char* kEndpointRule =
    "a ZeroMQ endpoint tcp://HOST:PORT (PORT 1..65535 or *) or ipc://PATH";
constexpr const char* kAddressRule = "HOST:PORT with PORT 1..65535, or \"\" to disable";
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();
constexpr double kCm2PerM2 = 1e4;

[[noreturn]] void fail(const std::string& file, std::string key, std::string reason) {
  throw ConfigError(file, std::move(key), std::move(reason));
}

// Shortest text that reads back as the same double: "0.05", "60", "1e+300", "inf".
std::string number_text(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::array<char, 64> buf{};
  const auto result = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return std::string(buf.data(), result.ptr);
}

// A string value as the user wrote it, quoted; control bytes escaped and long values cut so a
// binary blob in the file cannot wreck the log line.
std::string quote(std::string_view s) {
  constexpr std::size_t kShown = 80;
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < kShown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr const char* kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (s.size() > kShown) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

const char* type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::none: return "nothing";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
  }
  return "an unknown value";
}

// What a refused value is, with its type: `2.5 (a float)`, `"up" (a string)`, `an array of 3`.
std::string describe(const toml::node& node) {
  if (const auto* s = node.as_string()) return quote(s->get()) + " (a string)";
  if (const auto* i = node.as_integer()) return std::to_string(i->get()) + " (an integer)";
  if (const auto* f = node.as_floating_point()) {
    std::string text = number_text(f->get());
    if (text.find_first_of(".eni") == std::string::npos) text += ".0";
    return text + " (a float)";
  }
  if (const auto* b = node.as_boolean()) {
    return std::string(b->get() ? "true" : "false") + " (a boolean)";
  }
  if (const auto* a = node.as_array()) {
    return "an array of " + std::to_string(a->size()) + (a->size() == 1 ? " element" : " elements");
  }
  return type_name(node.type());
}

// A closed or half-open interval of doubles; every accepted number is also finite.
struct Range {
  double lo;
  double hi;  // kInf: no upper bound
  bool lo_open = false;
  const char* unit = "";

  bool contains(double v) const {
    return std::isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi;
  }
  // "a number 0.05..60 s", "a number >0..2000 N", "a number > 0", "a number >= 0 km"
  std::string expected() const {
    if (lo == -kInf && hi == kInf) return "a finite number";
    std::string t = "a number ";
    t += hi == kInf ? (lo_open ? "> " : ">= ") + number_text(lo)
                    : (lo_open ? ">" : "") + number_text(lo) + ".." + number_text(hi);
    if (*unit != '\0') t += std::string(" ") + unit;
    return t;
  }
};

struct IntRange {
  std::int64_t lo;
  std::int64_t hi;
  std::string text() const { return std::to_string(lo) + ".." + std::to_string(hi); }
};

double number_at(const std::string& file, const std::string& path, const toml::node& node,
                 const Range& range) {
  double v = 0.0;
  if (const auto* i = node.as_integer()) {
    v = static_cast<double>(i->get());
  } else if (const auto* f = node.as_floating_point()) {
    v = f->get();
  } else {
    fail(file, path, "expected " + range.expected() + ", got " + describe(node));
  }
  if (!range.contains(v)) {
    fail(file, path, "expected " + range.expected() + ", got " + number_text(v));
  }
  return v;
}

std::int64_t integer_at(const std::string& file, const std::string& path, const toml::node& node,
                        const IntRange& range) {
  const auto* i = node.as_integer();
  if (i == nullptr) {
    fail(file, path, "expected an integer " + range.text() + ", got " + describe(node));
  }
  const std::int64_t v = i->get();
  if (v < range.lo || v > range.hi) {
    fail(file, path, "expected an integer " + range.text() + ", got " + std::to_string(v));
  }
  return v;
}

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameBytes) return false;
  for (const char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool valid_port(std::string_view port, bool allow_wildcard) {
  if (allow_wildcard && port == "*") return true;
  if (port.empty() || port.size() > 5) return false;
  int value = 0;
  for (const char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  return value >= 1 && value <= 65535;
}

// A host or interface name, "*", or a bracketed IPv6 literal; never blank.
bool valid_host(std::string_view host) {
  if (host.empty()) return false;
  for (const char c : host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  }
  const bool bracketed = host.front() == '[' && host.back() == ']' && host.size() > 2;
  return bracketed || host.find_first_of(":[]") == std::string_view::npos;
}

bool valid_host_port(std::string_view text, bool allow_wildcard_port) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return false;
  return valid_host(text.substr(0, colon)) &&
         valid_port(text.substr(colon + 1), allow_wildcard_port);
}

bool valid_endpoint(std::string_view endpoint) {
  if (endpoint.starts_with("ipc://")) return endpoint.size() > 6;
  if (endpoint.starts_with("tcp://")) return valid_host_port(endpoint.substr(6), true);
  return false;
}

bool valid_metrics_address(std::string_view address) {
  return address.empty() || valid_host_port(address, false);
}

// Two sockets cannot bind the same address; a wildcard port ("*") is a fresh port each time.
bool binds_fixed_address(std::string_view endpoint) {
  return !(endpoint.starts_with("tcp://") && endpoint.ends_with(":*"));
}

// Keys to blame in endpoint errors: the config file's or the command line's.
struct EndpointKeys {
  bool ingest_from_cli = false;
  bool publish_from_cli = false;
  std::string ingest(std::size_t i) const {
    return ingest_from_cli ? "--ingest" : "ingest.endpoints[" + std::to_string(i) + "]";
  }
  std::string publish() const { return publish_from_cli ? "--publish" : "publish.endpoint"; }
};

void check_endpoints(const std::string& file, const std::vector<std::string>& ingest,
                     const std::string& publish, const EndpointKeys& keys) {
  if (ingest.empty()) fail(file, keys.ingest(0), "expected 1 or more endpoints, got none");
  for (std::size_t i = 0; i < ingest.size(); ++i) {
    if (!valid_endpoint(ingest[i])) {
      fail(file, keys.ingest(i),
           std::string("expected ") + kEndpointRule + ", got " + quote(ingest[i]));
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (ingest[j] == ingest[i] && binds_fixed_address(ingest[i])) {
        fail(file, keys.ingest(i),
             "expected each endpoint once, got " + quote(ingest[i]) + " again (also " +
                 keys.ingest(j) + ")");
      }
    }
  }
  if (!valid_endpoint(publish)) {
    fail(file, keys.publish(),
         std::string("expected ") + kEndpointRule + ", got " + quote(publish));
  }
  for (std::size_t i = 0; i < ingest.size(); ++i) {
    if (ingest[i] == publish && binds_fixed_address(publish)) {
      // Blame the side the user just set on the command line, if only one was.
      const bool blame_ingest = keys.ingest_from_cli && !keys.publish_from_cli;
      fail(file, blame_ingest ? keys.ingest(i) : keys.publish(),
           "expected the publish endpoint to differ from every ingest endpoint, got " +
               quote(publish) + " for both (" + keys.ingest(i) + " and " + keys.publish() + ")");
    }
  }
}

void check_metrics_address(const std::string& file, const std::string& key,
                           const std::string& address) {
  if (!valid_metrics_address(address)) {
    fail(file, key, std::string("expected ") + kAddressRule + ", got " + quote(address));
  }
}

std::string join(const std::vector<std::string_view>& words) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += ", ";
    out += words[i];
  }
  return out;
}

// One TOML table being read. Knows its dotted path for messages and refuses keys it does not
// allow; the getters type- and range-check and fall back to a default when a key is absent.
class Section {
 public:
  Section(const std::string& file, const toml::table& table, std::string path)
      : file_(file), table_(table), path_(std::move(path)) {}

  const std::string& file() const { return file_; }
  std::string key_path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  [[noreturn]] void fail_at(std::string_view key, std::string reason) const {
    fail(file_, key_path(key), std::move(reason));
  }

  // `what` names the section in the message: "in [ingest]", "for a knee device".
  void refuse_unknown(const std::vector<std::string_view>& allowed, std::string_view what) const {
    for (const auto& [key, node] : table_) {
      const std::string_view name = key.str();
      if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
      const std::string got = node.is_table() ? "got unknown table [" + key_path(name) + "]"
                              : node.is_array_of_tables()
                                  ? "got unknown table array [[" + key_path(name) + "]]"
                                  : "got unknown key " + quote(name);
      fail_at(name, "expected one of " + join(allowed) + " " + std::string(what) + ", " + got);
    }
  }

  const toml::node* find(std::string_view key) const { return table_.get(key); }

  std::int64_t integer(std::string_view key, IntRange range, std::int64_t fallback) const {
    const toml::node* node = find(key);
    return node == nullptr ? fallback : integer_at(file_, key_path(key), *node, range);
  }
  double number(std::string_view key, Range range, double fallback) const {
    const toml::node* node = find(key);
    return node == nullptr ? fallback : number_at(file_, key_path(key), *node, range);
  }
  bool boolean(std::string_view key, bool fallback) const {
    const toml::node* node = find(key);
    if (node == nullptr) return fallback;
    const auto* b = node->as_boolean();
    if (b == nullptr) fail_at(key, "expected a boolean true or false, got " + describe(*node));
    return b->get();
  }
  // nullopt when absent.
  std::optional<std::string> string(std::string_view key, std::string_view expected) const {
    const toml::node* node = find(key);
    if (node == nullptr) return std::nullopt;
    const auto* s = node->as_string();
    if (s == nullptr) {
      fail_at(key, "expected " + std::string(expected) + ", got " + describe(*node));
    }
    return s->get();
  }
  // A required id: present, a string, and of the name charset.
  std::string name(std::string_view key, std::string_view what) const {
    const std::string expected = std::string(what) + " of " + kNameRule;
    const std::optional<std::string> value = string(key, expected);
    if (!value) fail_at(key, "expected " + expected + " (required), got nothing");
    if (!valid_name(*value)) fail_at(key, "expected " + expected + ", got " + quote(*value));
    return *value;
  }
  // nullptr when absent.
  const toml::table* table(std::string_view key) const {
    const toml::node* node = find(key);
    if (node == nullptr) return nullptr;
    if (!node->is_table()) {
      fail_at(key, "expected a table [" + key_path(key) + "], got " + describe(*node));
    }
    return node->as_table();
  }
  // An array of tables ([[key]]) or an empty array; nullptr when absent.
  const toml::array* table_array(std::string_view key) const {
    const toml::node* node = find(key);
    if (node == nullptr) return nullptr;
    const auto* a = node->as_array();
    if (a == nullptr || !(a->empty() || a->is_array_of_tables())) {
      const std::string got = a == nullptr ? describe(*node) : "an array that is not all tables";
      fail_at(key, "expected an array of tables [[" + key_path(key) + "]], got " + got);
    }
    return a;
  }
  // nullptr when absent.
  const toml::array* array(std::string_view key, std::string_view expected) const {
    const toml::node* node = find(key);
    if (node == nullptr) return nullptr;
    if (!node->is_array()) {
      fail_at(key, "expected " + std::string(expected) + ", got " + describe(*node));
    }
    return node->as_array();
  }

 private:
  const std::string& file_;
  const toml::table& table_;
  std::string path_;
};

void parse_ingest(const Section& s, IngestConfig& out) {
  s.refuse_unknown({"endpoints", "max_frame_bytes", "max_samples_per_frame", "rcvhwm"},
                   "in [ingest]");
  if (const toml::array* a = s.array("endpoints", "an array of endpoint strings")) {
    out.endpoints.clear();
    if (a->empty()) {
      fail(s.file(), s.key_path("endpoints"), "expected 1 or more endpoints, got an empty array");
    }
    for (std::size_t i = 0; i < a->size(); ++i) {
      const toml::node& node = *a->get(i);
      const auto* str = node.as_string();
      if (str == nullptr) {
        fail(s.file(), s.key_path("endpoints") + "[" + std::to_string(i) + "]",
             std::string("expected ") + kEndpointRule + ", got " + describe(node));
      }
      out.endpoints.push_back(str->get());
    }
  }
  out.max_frame_bytes = static_cast<std::size_t>(s.integer(
      "max_frame_bytes", {256, 16777216}, static_cast<std::int64_t>(out.max_frame_bytes)));
  out.max_samples_per_frame =
      static_cast<int>(s.integer("max_samples_per_frame", {1, 4096}, out.max_samples_per_frame));
  out.rcvhwm = static_cast<int>(s.integer("rcvhwm", {0, kIntMax}, out.rcvhwm));
}

void parse_publish(const Section& s, PublishConfig& out) {
  s.refuse_unknown({"endpoint", "sndhwm", "nodrop", "heartbeat_s"}, "in [publish]");
  if (auto e = s.string("endpoint", kEndpointRule)) out.endpoint = *e;
  out.sndhwm = static_cast<int>(s.integer("sndhwm", {0, kIntMax}, out.sndhwm));
  out.nodrop = s.boolean("nodrop", out.nodrop);
  out.heartbeat_s = s.number("heartbeat_s", {0.05, 60.0, false, "s"}, out.heartbeat_s);
}

void parse_pipeline(const Section& s, PipelineConfig& out) {
  s.refuse_unknown({"workers", "ingest_ring_capacity", "output_ring_capacity", "max_devices",
                    "max_runners", "max_stations"},
                   "in [pipeline]");
  constexpr IntRange kRing{2, std::int64_t{1} << 24};
  constexpr IntRange kTable{1, 1'000'000};
  const auto size = [&](std::string_view key, IntRange range, std::size_t fallback) {
    return static_cast<std::size_t>(s.integer(key, range, static_cast<std::int64_t>(fallback)));
  };
  out.workers = static_cast<int>(s.integer("workers", {1, 64}, out.workers));
  out.ingest_ring_capacity = size("ingest_ring_capacity", kRing, out.ingest_ring_capacity);
  out.output_ring_capacity = size("output_ring_capacity", kRing, out.output_ring_capacity);
  out.max_devices = size("max_devices", kTable, out.max_devices);
  out.max_runners = size("max_runners", kTable, out.max_runners);
  out.max_stations = size("max_stations", kTable, out.max_stations);
}

// MODEL.md §1 (contact detection), §4 (session end), §9 R10 (pain).
void parse_model(const Section& s, fusion::ModelParams& out) {
  s.refuse_unknown({"state_rate_hz", "contact_threshold_n", "contact_threshold_bw",
                    "contact_hysteresis", "refractory_s", "session_idle_end_s", "pain_high_score"},
                   "in [model]");
  out.state_rate_hz = s.number("state_rate_hz", {0.1, 1000.0, false, "Hz"}, out.state_rate_hz);
  out.contact_threshold_n =
      s.number("contact_threshold_n", {0.0, 2000.0, true, "N"}, out.contact_threshold_n);
  out.contact_threshold_bw =
      s.number("contact_threshold_bw", {0.0, 1.0, false, "BW"}, out.contact_threshold_bw);
  out.contact_hysteresis = s.number("contact_hysteresis", {0.1, 1.0}, out.contact_hysteresis);
  out.refractory_s = s.number("refractory_s", {0.0, 2.0, false, "s"}, out.refractory_s);
  out.session_idle_end_s =
      s.number("session_idle_end_s", {1.0, 86400.0, false, "s"}, out.session_idle_end_s);
  out.pain_high_score =
      static_cast<int>(s.integer("pain_high_score", {0, 10}, out.pain_high_score));
}

std::vector<RunnerConfig> parse_runners(const std::string& file, const toml::array& array) {
  std::vector<RunnerConfig> runners;
  std::map<std::string, std::size_t, std::less<>> first_index;
  for (std::size_t i = 0; i < array.size(); ++i) {
    const Section s(file, *array.get(i)->as_table(), "runners[" + std::to_string(i) + "]");
    s.refuse_unknown({"id", "body_mass_kg", "height_m", "shoe_id", "shoe_km"}, "for a runner");
    RunnerConfig r;
    r.id = s.name("id", "a runner id");
    if (const auto [it, fresh] = first_index.emplace(r.id, i); !fresh) {
      s.fail_at("id", "expected a unique runner id, got " + quote(r.id) +
                          " again (first at runners[" + std::to_string(it->second) + "])");
    }
    r.params.body_mass_kg =
        s.number("body_mass_kg", {20.0, 300.0, false, "kg"}, r.params.body_mass_kg);
    r.params.height_m = s.number("height_m", {1.0, 2.5, false, "m"}, r.params.height_m);
    if (auto shoe = s.string("shoe_id", "a string")) r.shoe_id = *shoe;
    r.shoe_km = s.number("shoe_km", {0.0, kInf, false, "km"}, r.shoe_km);
    runners.push_back(std::move(r));
  }
  return runners;
}

const char* kind_name(fusion::SensorKind kind) {
  switch (kind) {
    case fusion::SensorKind::kInsole: return "insole";
    case fusion::SensorKind::kKnee: return "knee";
    case fusion::SensorKind::kTreadmill: return "treadmill";
    case fusion::SensorKind::kConsole: return "console";
  }
  return "?";
}

const char* side_name(fusion::Side side) {
  switch (side) {
    case fusion::Side::kNone: return "none";
    case fusion::Side::kLeft: return "left";
    case fusion::Side::kRight: return "right";
  }
  return "?";
}

// "an insole", "a knee", "a treadmill", "a console"
std::string with_article(fusion::SensorKind kind) {
  return std::string(kind == fusion::SensorKind::kInsole ? "an " : "a ") + kind_name(kind);
}

fusion::SensorKind parse_kind(const Section& s) {
  constexpr const char* kExpected = "\"insole\", \"knee\", \"treadmill\" or \"console\"";
  const std::optional<std::string> kind = s.string("kind", kExpected);
  if (!kind) s.fail_at("kind", std::string("expected ") + kExpected + " (required), got nothing");
  for (const auto k : {fusion::SensorKind::kInsole, fusion::SensorKind::kKnee,
                       fusion::SensorKind::kTreadmill, fusion::SensorKind::kConsole}) {
    if (*kind == kind_name(k)) return k;
  }
  s.fail_at("kind", std::string("expected ") + kExpected + ", got " + quote(*kind));
}

fusion::Side parse_side(const Section& s, fusion::SensorKind kind) {
  const bool sided = kind == fusion::SensorKind::kInsole || kind == fusion::SensorKind::kKnee;
  const std::string expected = sided ? "\"left\" or \"right\" for " + with_article(kind)
                                     : "no side (or \"none\") for " + with_article(kind);
  const std::optional<std::string> side = s.string("side", expected);
  if (!side) {
    if (sided) s.fail_at("side", "expected " + expected + " (required), got nothing");
    return fusion::Side::kNone;
  }
  if (sided && *side == "left") return fusion::Side::kLeft;
  if (sided && *side == "right") return fusion::Side::kRight;
  if (!sided && *side == "none") return fusion::Side::kNone;
  s.fail_at("side", "expected " + expected + ", got " + quote(*side));
}

// MODEL.md §1: F = Σ pᵢAᵢ. Areas arrive in cm² (as Moticon documents them), are stored in m².
fusion::InsoleGeometry parse_insole(const Section& s) {
  fusion::InsoleGeometry g;
  const std::string areas_expected = "an array of 1.." + std::to_string(fusion::kMaxInsoleCells) +
                                     " cell areas, each a number > 0 cm²";
  const toml::array* areas = s.array("cell_areas_cm2", areas_expected);
  if (areas == nullptr) {
    s.fail_at("cell_areas_cm2", "expected " + areas_expected + " (required), got nothing");
  }
  if (areas->empty() || areas->size() > static_cast<std::size_t>(fusion::kMaxInsoleCells)) {
    s.fail_at("cell_areas_cm2", "expected 1.." + std::to_string(fusion::kMaxInsoleCells) +
                                    " cell areas, got " + std::to_string(areas->size()));
  }
  const std::size_t cells = areas->size();
  g.cell_count = static_cast<int>(cells);
  const Range area_range{0.0, kInf, true, "cm²"};
  for (std::size_t i = 0; i < cells; ++i) {
    const std::string path = s.key_path("cell_areas_cm2") + "[" + std::to_string(i) + "]";
    // Division, not multiplication by 1e-4: an area exact in cm² then maps to the double
    // nearest the exact m² value (9.5 cm² → 9.5e-4 m² bit for bit).
    g.area_m2[i] = number_at(s.file(), path, *areas->get(i), area_range) / kCm2PerM2;
  }

  const auto positions = [&](std::string_view key,
                             std::array<double, fusion::kMaxInsoleCells>& out) {
    for (std::size_t i = 0; i < cells; ++i) out[i] = 0.5;
    const std::string expected = "an array of " + std::to_string(cells) +
                                 " positions 0..1 (one per entry of cell_areas_cm2)";
    const toml::array* a = s.array(key, expected);
    if (a == nullptr) return;
    if (a->size() != cells) {
      s.fail_at(key, "expected " + std::to_string(cells) +
                         " positions (one per entry of cell_areas_cm2), got " +
                         std::to_string(a->size()));
    }
    for (std::size_t i = 0; i < cells; ++i) {
      const std::string path = s.key_path(key) + "[" + std::to_string(i) + "]";
      out[i] = number_at(s.file(), path, *a->get(i), Range{0.0, 1.0});
    }
  };
  positions("cell_x", g.x_norm);
  positions("cell_y", g.y_norm);
  g.force_gain = s.number("force_gain", {0.0, kInf, true}, g.force_gain);
  return g;
}

// MODEL.md §2: hinge-axis directions j₁ (thigh) and j₂ (shank); unit vectors after loading.
std::array<double, 3> parse_axis(const Section& s, std::string_view key,
                                 const std::array<double, 3>& fallback) {
  constexpr const char* kExpected = "an array of 3 numbers, not all zero";
  const toml::array* a = s.array(key, kExpected);
  if (a == nullptr) return fallback;
  if (a->size() != 3) {
    s.fail_at(key, std::string("expected ") + kExpected + ", got " + std::to_string(a->size()) +
                       (a->size() == 1 ? " number" : " numbers"));
  }
  std::array<double, 3> v{};
  for (std::size_t i = 0; i < 3; ++i) {
    const std::string path = s.key_path(key) + "[" + std::to_string(i) + "]";
    v[i] = number_at(s.file(), path, *a->get(i), Range{-kInf, kInf});
  }
  const double norm = std::hypot(v[0], v[1], v[2]);
  if (!(norm > 0.0) || !std::isfinite(norm)) {
    s.fail_at(key, std::string("expected ") + kExpected + ", got [" + number_text(v[0]) + ", " +
                       number_text(v[1]) + ", " + number_text(v[2]) + "]");
  }
  for (double& c : v) c /= norm;
  return v;
}

std::vector<std::string_view> device_keys(fusion::SensorKind kind) {
  std::vector<std::string_view> keys{"id", "station", "runner", "kind", "side"};
  if (kind == fusion::SensorKind::kInsole) {
    keys.insert(keys.end(), {"cell_areas_cm2", "cell_x", "cell_y", "force_gain"});
  } else if (kind == fusion::SensorKind::kKnee) {
    keys.insert(keys.end(), {"thigh_axis", "shank_axis"});
  }
  return keys;
}

// "one of "r01", "r02"", cut after a few ids.
std::string runner_choices(const std::vector<RunnerConfig>& runners) {
  if (runners.empty()) return "a runner defined in [[runners]] (there are none)";
  constexpr std::size_t kListed = 5;
  std::string out = "one of ";
  for (std::size_t i = 0; i < runners.size() && i < kListed; ++i) {
    if (i > 0) out += ", ";
    out += quote(runners[i].id);
  }
  if (runners.size() > kListed) out += " and " + std::to_string(runners.size() - kListed) + " more";
  return out;
}

std::vector<DeviceConfig> parse_devices(const std::string& file, const toml::array& array,
                                        const std::vector<RunnerConfig>& runners) {
  std::set<std::string, std::less<>> runner_ids;
  for (const RunnerConfig& r : runners) runner_ids.insert(r.id);

  struct Owner {
    std::string runner;
    std::size_t device;
  };
  std::map<std::string, std::size_t, std::less<>> first_index;  // device id
  std::map<std::string, Owner, std::less<>> station_owner;      // station id
  std::map<std::string, Owner, std::less<>> runner_station;     // runner id → its station
  std::map<std::tuple<std::string, fusion::SensorKind, fusion::Side>, std::size_t> slot_owner;

  std::vector<DeviceConfig> devices;
  for (std::size_t i = 0; i < array.size(); ++i) {
    const std::string path = "devices[" + std::to_string(i) + "]";
    const Section s(file, *array.get(i)->as_table(), path);
    DeviceConfig d;
    d.kind = parse_kind(s);
    s.refuse_unknown(device_keys(d.kind), "for " + with_article(d.kind) + " device");

    d.id = s.name("id", "a device id");
    if (const auto [it, fresh] = first_index.emplace(d.id, i); !fresh) {
      s.fail_at("id", "expected a unique device id, got " + quote(d.id) +
                          " again (first at devices[" + std::to_string(it->second) + "])");
    }
    d.station = s.name("station", "a station id");
    d.runner = s.name("runner", "a runner id");
    if (runner_ids.find(d.runner) == runner_ids.end()) {
      s.fail_at("runner", "runner " + quote(d.runner) + " is not defined in [[runners]]: " +
                              "expected " + runner_choices(runners) + ", got " + quote(d.runner));
    }
    d.side = parse_side(s, d.kind);
    if (d.kind == fusion::SensorKind::kInsole) d.insole = parse_insole(s);
    if (d.kind == fusion::SensorKind::kKnee) {
      d.knee.thigh_axis = parse_axis(s, "thigh_axis", d.knee.thigh_axis);
      d.knee.shank_axis = parse_axis(s, "shank_axis", d.knee.shank_axis);
    }

    // A station is one treadmill lane: its devices all belong to one runner.
    if (const auto [it, fresh] = station_owner.try_emplace(d.station, Owner{d.runner, i});
        !fresh && it->second.runner != d.runner) {
      s.fail_at("station", "expected every device of station " + quote(d.station) +
                               " to belong to runner " + quote(it->second.runner) +
                               " (as devices[" + std::to_string(it->second.device) +
                               "] does), got runner " + quote(d.runner));
    }
    // ... and a runner is on one station: its session publishes under that station's topics.
    if (const auto [it, fresh] = runner_station.try_emplace(d.runner, Owner{d.station, i});
        !fresh && it->second.runner != d.station) {
      s.fail_at("station", "expected every device of runner " + quote(d.runner) + " at station " +
                               quote(it->second.runner) + " (as devices[" +
                               std::to_string(it->second.device) + "] is), got station " +
                               quote(d.station));
    }
    // One device per (kind, side) slot of a runner: the session has one input per slot.
    if (const auto [it, fresh] = slot_owner.try_emplace({d.runner, d.kind, d.side}, i); !fresh) {
      const bool sided = d.side != fusion::Side::kNone;
      const std::string slot = sided ? std::string(side_name(d.side)) + " " + kind_name(d.kind)
                                     : std::string(kind_name(d.kind));
      s.fail_at(sided ? "side" : "kind",
                "expected at most one " + slot + " device for runner " + quote(d.runner) +
                    ", got a second (the first is devices[" + std::to_string(it->second) + "] " +
                    quote(devices[it->second].id) + ")");
    }
    devices.push_back(std::move(d));
  }
  return devices;
}

// The registry's name tables are sized from [pipeline] and never grow.
void check_registry_fits(const Config& c) {
  std::set<std::string_view> stations;
  for (const DeviceConfig& d : c.devices) stations.insert(d.station);
  const auto check = [&](const char* key, std::size_t max, std::size_t used, const char* what) {
    if (used > max) {
      fail(c.source, key,
           "expected at least the " + std::to_string(used) + " " + what +
               " this file defines, got " + std::to_string(max));
    }
  };
  check("pipeline.max_runners", c.pipeline.max_runners, c.runners.size(), "runners");
  check("pipeline.max_devices", c.pipeline.max_devices, c.devices.size(), "devices");
  check("pipeline.max_stations", c.pipeline.max_stations, stations.size(), "stations");
}

}  // namespace

Config parse_config(std::string_view toml_text, const std::string& source_name) {
  toml::table root_table;
  try {
    root_table = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    const toml::source_position& at = e.source().begin;
    fail(source_name, "line " + std::to_string(at.line) + ", column " + std::to_string(at.column),
         "TOML syntax error: " + std::string(e.description()));
  }

  Config c;
  c.source = source_name;
  const Section root(c.source, root_table, "");
  root.refuse_unknown(
      {"ingest", "publish", "metrics", "pipeline", "health", "model", "runners", "devices"},
      "at the top level");
  if (const toml::table* t = root.table("ingest")) {
    parse_ingest(Section(c.source, *t, "ingest"), c.ingest);
  }
  if (const toml::table* t = root.table("publish")) {
    parse_publish(Section(c.source, *t, "publish"), c.publish);
  }
  if (const toml::table* t = root.table("metrics")) {
    const Section s(c.source, *t, "metrics");
    s.refuse_unknown({"address"}, "in [metrics]");
    if (auto a = s.string("address", kAddressRule)) c.metrics_address = *a;
  }
  if (const toml::table* t = root.table("pipeline")) {
    parse_pipeline(Section(c.source, *t, "pipeline"), c.pipeline);
  }
  if (const toml::table* t = root.table("health")) {
    const Section s(c.source, *t, "health");
    s.refuse_unknown({"stale_after_s"}, "in [health]");
    c.stale_after_s = s.number("stale_after_s", {0.1, 3600.0, false, "s"}, c.stale_after_s);
  }
  if (const toml::table* t = root.table("model")) {
    parse_model(Section(c.source, *t, "model"), c.model);
  }
  if (const toml::array* a = root.table_array("runners")) c.runners = parse_runners(c.source, *a);
  if (const toml::array* a = root.table_array("devices")) {
    c.devices = parse_devices(c.source, *a, c.runners);
  }

  check_endpoints(c.source, c.ingest.endpoints, c.publish.endpoint, EndpointKeys{});
  check_metrics_address(c.source, "metrics.address", c.metrics_address);
  check_registry_fits(c);
  return c;
}

Config load_config(const std::string& path) {
  const auto closer = [](std::FILE* f) { std::fclose(f); };
  errno = 0;
  const std::unique_ptr<std::FILE, decltype(closer)> file(std::fopen(path.c_str(), "rb"), closer);
  if (!file) {
    fail(path, "", "cannot open the config file: " + std::generic_category().message(errno));
  }
  std::string text;
  std::array<char, 8192> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), file.get())) > 0) text.append(buf.data(), n);
  if (std::ferror(file.get())) {
    fail(path, "", "cannot read the config file: " + std::generic_category().message(errno));
  }
  return parse_config(text, path);
}

void apply_overrides(Config& config, const Overrides& overrides) {
  std::vector<std::string> ingest =
      overrides.ingest.empty() ? config.ingest.endpoints : overrides.ingest;
  std::string publish = overrides.publish.value_or(config.publish.endpoint);
  std::string metrics = overrides.metrics.value_or(config.metrics_address);
  const EndpointKeys keys{!overrides.ingest.empty(), overrides.publish.has_value()};
  check_endpoints(config.source, ingest, publish, keys);
  check_metrics_address(config.source, overrides.metrics ? "--metrics" : "metrics.address",
                        metrics);
  // Validated first, assigned after: a refused override leaves the config as it was.
  config.ingest.endpoints = std::move(ingest);
  config.publish.endpoint = std::move(publish);
  config.metrics_address = std::move(metrics);
}

std::vector<std::string> restart_only_changes(const Config& running, const Config& next) {
  std::vector<std::string> changed;
  const auto note = [&](const char* key, bool differs) {
    if (differs) changed.emplace_back(key);
  };
  note("ingest.endpoints", running.ingest.endpoints != next.ingest.endpoints);
  note("ingest.max_frame_bytes", running.ingest.max_frame_bytes != next.ingest.max_frame_bytes);
  note("ingest.max_samples_per_frame",
       running.ingest.max_samples_per_frame != next.ingest.max_samples_per_frame);
  note("ingest.rcvhwm", running.ingest.rcvhwm != next.ingest.rcvhwm);
  note("publish.endpoint", running.publish.endpoint != next.publish.endpoint);
  note("publish.sndhwm", running.publish.sndhwm != next.publish.sndhwm);
  note("publish.nodrop", running.publish.nodrop != next.publish.nodrop);
  note("publish.heartbeat_s", running.publish.heartbeat_s != next.publish.heartbeat_s);
  note("metrics.address", running.metrics_address != next.metrics_address);
  note("pipeline.workers", running.pipeline.workers != next.pipeline.workers);
  note("pipeline.ingest_ring_capacity",
       running.pipeline.ingest_ring_capacity != next.pipeline.ingest_ring_capacity);
  note("pipeline.output_ring_capacity",
       running.pipeline.output_ring_capacity != next.pipeline.output_ring_capacity);
  note("pipeline.max_devices", running.pipeline.max_devices != next.pipeline.max_devices);
  note("pipeline.max_runners", running.pipeline.max_runners != next.pipeline.max_runners);
  note("pipeline.max_stations", running.pipeline.max_stations != next.pipeline.max_stations);
  return changed;
}

}  // namespace kneeload::daemon
