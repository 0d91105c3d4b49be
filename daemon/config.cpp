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
#include <optional>
#include <memory>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>

#include "kneeload/proto/codec.hpp"
#include "kneeload/proto/curve_keys.hpp"

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
constexpr const char* kCurveKeyRule = "a 40-character Z85 CURVE public key (kneeloadctl keygen)";
constexpr const char* kAddressRule =
    "HOST:PORT with PORT 0..65535 (0: any free port, see --endpoints-file), or \"\" to disable";
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
  if (address.empty()) return true;
  // Port 0 lets the kernel pick (tests, several daemons on one host); the endpoints file
  // tells which port it picked.
  if (address.ends_with(":0")) return valid_host(address.substr(0, address.size() - 2));
  return valid_host_port(address, false);
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
  // The same, naming the section by its path: "in [model.knee]".
  void refuse_unknown(const std::vector<std::string_view>& allowed) const {
    refuse_unknown(allowed, "in [" + path_ + "]");
  }
  bool given(std::string_view key) const { return find(key) != nullptr; }

  const toml::node* find(std::string_view key) const { return table_.get(key); }

  std::int64_t integer(std::string_view key, IntRange range, std::int64_t fallback) const {
    const toml::node* node = find(key);
    return node == nullptr ? fallback : integer_at(file_, key_path(key), *node, range);
  }
  double number(std::string_view key, Range range, double fallback) const {
    const toml::node* node = find(key);
    return node == nullptr ? fallback : number_at(file_, key_path(key), *node, range);
  }
  // An angle or angular rate configured in degrees (the key ends in _deg or _dps), returned in
  // radians. An absent key returns fallback_rad untouched: a default never round-trips through
  // degrees, and a value written in degrees converts exactly as filter_units::rad_from_deg does.
  double radians(std::string_view key, Range degrees, double fallback_rad) const {
    const toml::node* node = find(key);
    if (node == nullptr) return fallback_rad;
    return fusion::filter_units::rad_from_deg(number_at(file_, key_path(key), *node, degrees));
  }
  // A duration configured in units of us_per_unit microseconds (1000 for _ms, 1e6 for _s),
  // returned in whole µs; an absent key returns fallback_us.
  std::int64_t micros(std::string_view key, Range range, double us_per_unit,
                      std::int64_t fallback_us) const {
    const toml::node* node = find(key);
    if (node == nullptr) return fallback_us;
    return std::llround(number_at(file_, key_path(key), *node, range) * us_per_unit);
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

std::vector<std::string> parse_key_list(const Section& s, std::string_view key) {
  std::vector<std::string> keys;
  const toml::array* a = s.array(key, std::string("an array of ") + kCurveKeyRule);
  if (a == nullptr) return keys;
  for (std::size_t i = 0; i < a->size(); ++i) {
    const toml::node& node = *a->get(i);
    const auto* str = node.as_string();
    const std::string at = s.key_path(key) + "[" + std::to_string(i) + "]";
    if (str == nullptr || !proto::valid_curve_key(str->get())) {
      fail(s.file(), at, std::string("expected ") + kCurveKeyRule + ", got " +
                             (str == nullptr ? describe(node) : quote(str->get())));
    }
    if (std::find(keys.begin(), keys.end(), str->get()) != keys.end()) {
      fail(s.file(), at, "expected each key once, got " + quote(str->get()) + " again");
    }
    keys.push_back(str->get());
  }
  return keys;
}

void parse_security(const Section& s, SecurityConfig& out) {
  s.refuse_unknown({"curve", "secret_key_file", "gateway_keys", "subscriber_keys", "allow_plaintext"},
                   "in [security]");
  out.curve = s.boolean("curve", out.curve);
  out.allow_plaintext = s.boolean("allow_plaintext", out.allow_plaintext);
  if (auto f = s.string("secret_key_file", "a path to a key file written by kneeloadctl keygen")) {
    out.secret_key_file = *f;
  }
  out.gateway_keys = parse_key_list(s, "gateway_keys");
  out.subscriber_keys = parse_key_list(s, "subscriber_keys");
  if (!out.curve) return;
  if (out.secret_key_file.empty()) {
    s.fail_at("secret_key_file", "expected the daemon's key file (kneeloadctl keygen) with curve = true, got nothing");
  }
  std::string error;
  const std::optional<proto::CurveKeyPair> read = proto::read_key_file(out.secret_key_file, error);
  if (!read) s.fail_at("secret_key_file", "expected a key file written by kneeloadctl keygen, got " + error);
  const proto::CurveKeyPair& pair = *read;
  if (pair.secret_key.empty()) {
    s.fail_at("secret_key_file", "expected a secret key file (secret_key = ...), got a public-only key file " +
                                     quote(out.secret_key_file));
  }
  out.public_key = pair.public_key;
  out.secret_key = pair.secret_key;
}

void parse_pipeline(const Section& s, PipelineConfig& out) {
  s.refuse_unknown({"workers", "ingest_ring_capacity", "output_ring_capacity", "max_devices",
                    "max_runners", "max_stations", "idle_flush_ms"},
                   "in [pipeline]");
  constexpr IntRange kRing{2, std::int64_t{1} << 24};
  constexpr IntRange kTable{1, 1'000'000};
  const auto size = [&](std::string_view key, IntRange range, std::size_t fallback) {
    return static_cast<std::size_t>(s.integer(key, range, static_cast<std::int64_t>(fallback)));
  };
  out.workers = static_cast<int>(s.integer("workers", {0, 64}, out.workers));
  out.ingest_ring_capacity = size("ingest_ring_capacity", kRing, out.ingest_ring_capacity);
  out.output_ring_capacity = size("output_ring_capacity", kRing, out.output_ring_capacity);
  out.max_devices = size("max_devices", kTable, out.max_devices);
  out.max_runners = size("max_runners", kTable, out.max_runners);
  out.max_stations = size("max_stations", kTable, out.max_stations);
  out.idle_flush_us = s.micros("idle_flush_ms", {10.0, 60'000.0, false, "ms"}, 1000.0, out.idle_flush_us);
}

// ---- [model] and [rules]: the fusion model's parameters ----------------------------------------
//
// Every key sets one field of fusion::ModelParams and an absent key keeps the struct's default,
// so the fusion headers stay the one source of defaults; the example config repeats them and
// ConfigModelKeys.TheExampleSetsEveryKeyToTheCodeDefault keeps the two equal. Angles are written
// in degrees (keys ending _deg, rates _dps) and stored in radians, except the rule thresholds,
// which risk_rules.hpp itself keeps in degrees. Ranges are what makes physical sense, not what
// merely keeps the code from crashing; cross-field rules (min < max, hysteresis the right way
// round, windows that fit their buffers) run right after the fields they relate.
//
// Left internal on purpose (no key):
// - The filters' initial state and covariance bounds (standing_angle_rad, initial_*,
//   max_*_sigma*, min_sigma), their gap growth rates (gap_rate_sigma_radps) and the gyro-bias
//   random walks (bias_walk_sigma): numerical guards or MODEL.md §9 constants that act only
//   for the first seconds, across gaps, or over hours. Nothing at a treadmill station can
//   measure them, so a key would invite a tuning that breaks the filter instead of trading one
//   error for another.
// - The vGRF filter's swing pseudo-measurement sigmas: MODEL.md §9 pins F = Ḟ = 0 in swing;
//   loosening it only lets swing noise leak into the next stance.
// - ForceCalibrationParams::initial_gain: a known static gain belongs in the insoles'
//   force_gain; the loop then starts at 1.
// - The clock aligner's envelope internals (bucket_us, bucket_count, relock_span_us,
//   jump_confirm_us, shift_threshold_us, shift_buckets, max_drift_slew_ppm_per_s): sized
//   together for BLE-bridged devices (time_align.hpp says how), and coupled to each other in
//   ways a single key cannot respect. The exposed jump threshold's range stays above
//   shift_threshold_us (2 ms) and lock_span_s stays below half the drift-fit history (128 s),
//   which is what invalid_reason() and the slew limit need.
// - F4's onset timing: a confirmed clock jump is already persistent evidence (the aligner
//   waits for jump_confirm_frames), so the rule fires at once and clears after clock_quiet_s.

// Which way a rule's value must move to fire: above its onset threshold (most rules) or below
// it (low cadence, a cadence drop).
enum class Fires : std::uint8_t { kAbove, kBelow };

// "onset_rel (0.15)" or "onset_rel (0.15, its default)": the other key in a cross-field refusal.
std::string other_key(const Section& s, std::string_view key, double value) {
  return std::string(key) + " (" + number_text(value) + (s.given(key) ? "" : ", its default") +
         ")";
}

// Refuses lo > hi (lo >= hi when strict) for two keys of one table. Blames hi_key if the file
// gives it, else lo_key: the refusal names a key the user wrote whenever there is one.
void require_order(const Section& s, std::string_view lo_key, double lo, std::string_view hi_key,
                   double hi, bool strict) {
  if (strict ? lo < hi : lo <= hi) return;
  if (s.given(hi_key) || !s.given(lo_key)) {
    s.fail_at(hi_key, std::string("expected a number ") + (strict ? "> " : ">= ") +
                          other_key(s, lo_key, lo) + ", got " + number_text(hi));
  }
  s.fail_at(lo_key, std::string("expected a number ") + (strict ? "< " : "<= ") +
                        other_key(s, hi_key, hi) + ", got " + number_text(lo));
}

// Hysteresis (risk_rules.hpp): an active rule clears only once its value is back past the clear
// threshold, so that threshold must lie on the near side of the onset threshold (equal: no
// band). Blames clear_key if the file gives it, else onset_key.
void require_hysteresis(const Section& s, std::string_view onset_key, double onset,
                        std::string_view clear_key, double clear, Fires fires) {
  const bool above = fires == Fires::kAbove;
  if (above ? clear <= onset : clear >= onset) return;
  const std::string why = std::string(": a rule that fires ") + (above ? "above" : "below") +
                          " its onset threshold clears " + (above ? "below" : "above") +
                          " it (hysteresis)";
  if (s.given(clear_key) || !s.given(onset_key)) {
    s.fail_at(clear_key, std::string("expected a number ") + (above ? "<= " : ">= ") +
                             other_key(s, onset_key, onset) + why + ", got " +
                             number_text(clear));
  }
  s.fail_at(onset_key, std::string("expected a number ") + (above ? ">= " : "<= ") +
                           other_key(s, clear_key, clear) + why + ", got " + number_text(onset));
}

// Runs parse on the sub-table `key` of s, if the file has it.
template <typename Params>
void sub_table(const Section& s, std::string_view key, void (*parse)(const Section&, Params&),
               Params& out) {
  if (const toml::table* t = s.table(key)) parse(Section(s.file(), *t, s.key_path(key)), out);
}

constexpr Range kChi2Range{1.0, 1000.0};  // Mahalanobis gate, 1 dof: 3.84 = 95 %, 10.8 = 99.9 %
constexpr IntRange kReacquireRange{1, 100'000};
constexpr Range kMaxDtRange{0.001, 1.0, false, "s"};
constexpr Range kFractionRange{0.0, 1.0};
constexpr Range kRelRange{0.0, 5.0};  // a change against a baseline, as a fraction (+0.15)
constexpr Range kDegreeRange{0.0, 90.0, false, "°"};
constexpr Range kSigmaDegRange{0.1, 45.0, false, "°"};
// Per foot, at a cadence of 240 steps/min: a rolling or baseline window must hold this many
// steps per second of its length, or its oldest steps are dropped (rolling) or never kept.
constexpr double kMaxStepsPerSidePerS = 2.0;
constexpr std::int64_t kUsPerMs = 1000;
constexpr std::int64_t kUsPerS = 1'000'000;

// MODEL.md §2, §9: the knee-angle KF.
void parse_knee(const Section& s, fusion::KneeAngleParams& p) {
  s.refuse_unknown({"angular_accel_sigma_radps2", "gyro_sigma_dps", "accel_angle_sigma_deg",
                    "sleeve_angle_sigma_deg", "accel_norm_diff_max_g", "gate_chi2",
                    "reacquire_after", "max_dt_s"});
  p.angular_accel_sigma = s.number("angular_accel_sigma_radps2",
                                   {1.0, 1000.0, false, "rad/s²/√Hz"}, p.angular_accel_sigma);
  p.gyro_sigma_radps = s.radians("gyro_sigma_dps", {0.01, 20.0, false, "°/s"}, p.gyro_sigma_radps);
  p.accel_angle_sigma_rad = s.radians("accel_angle_sigma_deg", kSigmaDegRange,
                                      p.accel_angle_sigma_rad);
  p.sleeve_angle_sigma_rad = s.radians("sleeve_angle_sigma_deg", kSigmaDegRange,
                                       p.sleeve_angle_sigma_rad);
  p.accel_norm_diff_max_g =
      s.number("accel_norm_diff_max_g", {0.1, 16.0, false, "g"}, p.accel_norm_diff_max_g);
  p.gate_chi2 = s.number("gate_chi2", kChi2Range, p.gate_chi2);
  p.reacquire_after = static_cast<int>(s.integer("reacquire_after", kReacquireRange,
                                                 p.reacquire_after));
  p.max_dt_s = s.number("max_dt_s", kMaxDtRange, p.max_dt_s);
}

// MODEL.md §3A, §9: the shank-inclination KF.
void parse_shank(const Section& s, fusion::ShankTiltParams& p) {
  s.refuse_unknown({"gyro_noise_density_dps", "tilt_sigma_deg", "quasi_static_tol_g",
                    "gate_chi2", "reacquire_after", "max_dt_s"});
  p.gyro_noise_density = s.radians("gyro_noise_density_dps", {0.001, 5.0, false, "°/s/√Hz"},
                                   p.gyro_noise_density);
  p.tilt_sigma_rad = s.radians("tilt_sigma_deg", kSigmaDegRange, p.tilt_sigma_rad);
  p.quasi_static_tol_g =
      s.number("quasi_static_tol_g", {0.01, 1.0, false, "g"}, p.quasi_static_tol_g);
  p.gate_chi2 = s.number("gate_chi2", kChi2Range, p.gate_chi2);
  p.reacquire_after = static_cast<int>(s.integer("reacquire_after", kReacquireRange,
                                                 p.reacquire_after));
  p.max_dt_s = s.number("max_dt_s", kMaxDtRange, p.max_dt_s);
}

// MODEL.md §1, §9: the vGRF KF.
void parse_force(const Section& s, fusion::ForceFilterParams& p) {
  s.refuse_unknown(
      {"rate_noise_sigma_bwps2", "force_sigma_bw", "gate_chi2", "reacquire_after", "max_dt_s"});
  p.rate_noise_sigma = s.number("rate_noise_sigma_bwps2", {10.0, 100'000.0, false, "BW/s²/√Hz"},
                                p.rate_noise_sigma);
  p.force_sigma_bw = s.number("force_sigma_bw", {0.001, 1.0, false, "BW"}, p.force_sigma_bw);
  p.gate_chi2 = s.number("gate_chi2", kChi2Range, p.gate_chi2);
  p.reacquire_after = static_cast<int>(s.integer("reacquire_after", kReacquireRange,
                                                 p.reacquire_after));
  p.max_dt_s = s.number("max_dt_s", kMaxDtRange, p.max_dt_s);
}

// MODEL.md §1, §9: the stride-mean = 1 BW outer loop (g_cal).
void parse_calibration(const Section& s, fusion::ForceCalibrationParams& p) {
  s.refuse_unknown({"time_constant_s", "min_gain", "max_gain", "min_stride_s", "max_stride_s",
                    "min_steady_s", "convergence_window_s", "convergence_tolerance"});
  p.time_constant_s = s.number("time_constant_s", {1.0, 3600.0, false, "s"}, p.time_constant_s);
  // initial_gain (1) stays inside [min_gain, max_gain] by these ranges.
  p.min_gain = s.number("min_gain", {0.1, 1.0}, p.min_gain);
  p.max_gain = s.number("max_gain", {1.0, 10.0}, p.max_gain);
  require_order(s, "min_gain", p.min_gain, "max_gain", p.max_gain, true);
  p.min_stride_s = s.number("min_stride_s", {0.2, 2.0, false, "s"}, p.min_stride_s);
  p.max_stride_s = s.number("max_stride_s", {0.4, 5.0, false, "s"}, p.max_stride_s);
  require_order(s, "min_stride_s", p.min_stride_s, "max_stride_s", p.max_stride_s, true);
  p.min_steady_s = s.number("min_steady_s", {0.0, 3600.0, false, "s"}, p.min_steady_s);
  p.convergence_window_s =
      s.number("convergence_window_s", {1.0, 600.0, false, "s"}, p.convergence_window_s);
  p.convergence_tolerance =
      s.number("convergence_tolerance", {0.0001, 0.5}, p.convergence_tolerance);
}

// MODEL.md §1: VALR/VILR windows.
void parse_loading_rate(const Section& s, fusion::LoadingRateParams& p) {
  s.refuse_unknown({"impact_search_fraction", "impact_min_drop_bw", "no_ip_window_start",
                    "no_ip_window_end"});
  p.impact_search_fraction =
      s.number("impact_search_fraction", {0.0, 1.0, true}, p.impact_search_fraction);
  p.impact_min_drop_bw =
      s.number("impact_min_drop_bw", {0.0, 1.0, false, "BW"}, p.impact_min_drop_bw);
  p.no_ip_window_start = s.number("no_ip_window_start", kFractionRange, p.no_ip_window_start);
  p.no_ip_window_end = s.number("no_ip_window_end", kFractionRange, p.no_ip_window_end);
  require_order(s, "no_ip_window_start", p.no_ip_window_start, "no_ip_window_end",
                p.no_ip_window_end, true);
}

// MODEL.md §4: D = Σ(σᵢ/σ_ref)^b. The exponents are [model] keys (they are part of the model id).
void parse_session_load(const Section& s, fusion::SessionLoadParams& p) {
  s.refuse_unknown({"damage_reference_stress_mpa"});
  p.damage_reference_stress_mpa = s.number("damage_reference_stress_mpa",
                                           {0.0, 100.0, true, "MPa"},
                                           p.damage_reference_stress_mpa);
}

// A window of window_s seconds needs capacity for window_s × kMaxStepsPerSidePerS steps.
void require_capacity(const Section& s, std::string_view capacity_key, int capacity,
                      std::string_view window_text, double window_s) {
  const auto needed = static_cast<std::int64_t>(std::ceil(window_s * kMaxStepsPerSidePerS));
  if (capacity >= needed) return;
  s.fail_at(capacity_key, "expected at least " + std::to_string(needed) + " steps (" +
                              std::string(window_text) + " = " + number_text(window_s) +
                              " s at 2 steps/s per foot, a 240 spm cadence), got " +
                              std::to_string(capacity));
}

// MODEL.md §6: rolling windows and the runner baseline.
void parse_trends(const Section& s, fusion::GaitTrendParams& p) {
  s.refuse_unknown({"rolling_window_s", "baseline_start_s", "baseline_end_s",
                    "baseline_min_steps", "rolling_capacity_steps", "baseline_capacity_steps"});
  constexpr IntRange kSteps{16, 65536};
  p.rolling_window_s = s.number("rolling_window_s", {10.0, 3600.0, false, "s"}, p.rolling_window_s);
  p.baseline_start_s = s.number("baseline_start_s", {0.0, 7200.0, false, "s"}, p.baseline_start_s);
  p.baseline_end_s = s.number("baseline_end_s", {0.0, 7200.0, false, "s"}, p.baseline_end_s);
  require_order(s, "baseline_start_s", p.baseline_start_s, "baseline_end_s", p.baseline_end_s,
                true);
  p.rolling_capacity_steps =
      static_cast<int>(s.integer("rolling_capacity_steps", kSteps, p.rolling_capacity_steps));
  p.baseline_capacity_steps =
      static_cast<int>(s.integer("baseline_capacity_steps", kSteps, p.baseline_capacity_steps));
  p.baseline_min_steps =
      static_cast<int>(s.integer("baseline_min_steps", {1, 65536}, p.baseline_min_steps));
  require_capacity(s, "rolling_capacity_steps", p.rolling_capacity_steps, "rolling_window_s",
                   p.rolling_window_s);
  require_capacity(s, "baseline_capacity_steps", p.baseline_capacity_steps,
                   "baseline_end_s - baseline_start_s", p.baseline_end_s - p.baseline_start_s);
  if (p.baseline_min_steps > p.baseline_capacity_steps) {
    s.fail_at("baseline_min_steps", "expected an integer <= baseline_capacity_steps (" +
                                        std::to_string(p.baseline_capacity_steps) +
                                        "): a baseline never holds more, got " +
                                        std::to_string(p.baseline_min_steps));
  }
}

// Device clocks and the reorder window (time_align.hpp). The aligner keys apply to every slot.
void parse_clock(const Section& s, fusion::RunnerClockParams& p) {
  s.refuse_unknown({"window_ms", "capacity", "jump_threshold_ms", "jump_confirm_frames",
                    "lock_span_s", "min_latency_ms", "max_drift_ppm"});
  p.reorder.window_us =
      s.micros("window_ms", {1.0, 10'000.0, false, "ms"}, kUsPerMs, p.reorder.window_us);
  p.reorder.capacity = static_cast<std::uint32_t>(
      s.integer("capacity", {16, std::int64_t{1} << 24}, p.reorder.capacity));
  fusion::AlignerParams a = p.aligners[0];
  a.jump_threshold_us =
      s.micros("jump_threshold_ms", {5.0, 10'000.0, false, "ms"}, kUsPerMs, a.jump_threshold_us);
  a.jump_confirm_frames =
      static_cast<int>(s.integer("jump_confirm_frames", {1, 1000}, a.jump_confirm_frames));
  a.lock_span_us = s.micros("lock_span_s", {1.0, 60.0, false, "s"}, kUsPerS, a.lock_span_us);
  a.min_latency_us =
      s.micros("min_latency_ms", {0.0, 1000.0, false, "ms"}, kUsPerMs, a.min_latency_us);
  a.max_drift_ppm = s.number("max_drift_ppm", {10.0, 100'000.0, false, "ppm"}, a.max_drift_ppm);
  for (fusion::AlignerParams& slot : p.aligners) {
    slot.jump_threshold_us = a.jump_threshold_us;
    slot.jump_confirm_frames = a.jump_confirm_frames;
    slot.lock_span_us = a.lock_span_us;
    slot.min_latency_us = a.min_latency_us;
    slot.max_drift_ppm = a.max_drift_ppm;
    // The ranges above keep these valid; this guards the internal fields they depend on.
    if (const char* why = fusion::invalid_reason(slot)) {
      fail(s.file(), s.key_path("jump_threshold_ms"),
           std::string("expected clock parameters the aligner accepts, got: ") + why);
    }
  }
  if (const char* why = fusion::invalid_reason(p.reorder)) {
    fail(s.file(), s.key_path("window_ms"),
         std::string("expected reorder parameters the buffer accepts, got: ") + why);
  }
}

struct AreaModelName {
  const char* name;
  fusion::ContactAreaModel model;
};
constexpr std::array<AreaModelName, 3> kAreaModels{{
    {"mri-male", fusion::ContactAreaModel::kMriMale},
    {"mri-female", fusion::ContactAreaModel::kMriFemale},
    {"quadratic-powers", fusion::ContactAreaModel::kQuadraticPowers},
}};

// MODEL.md §1 (contact detection, calibration), §2, §3, §4 (session end, damage), §9.
// pain_high_score is returned, not applied: it is an alias of [rules.r10_pain] high_score,
// settled once both tables are read.
void parse_model(const Section& s, fusion::ModelParams& out,
                 std::optional<int>& pain_high_score) {
  s.refuse_unknown({"state_rate_hz", "contact_threshold_n", "contact_threshold_bw",
                    "contact_hysteresis", "refractory_s", "session_idle_end_s", "pain_high_score",
                    "accel_ic_exclusion_s", "ankle_x_norm", "insole_width_m", "midfoot_x_min",
                    "midfoot_x_max", "device_silent_s", "dynamic_calibration", "pta_lead_s",
                    "pta_window_s", "stance_trace_samples",
                    "calibration_max_incline", "calibration_max_speed_change_mps",
                    "pfj_area_model", "damage_exponent", "damage_exponent_sensitivity", "knee",
                    "shank", "force", "calibration", "loading_rate", "session_load", "trends",
                    "clock"},
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
  if (s.given("pain_high_score")) {
    pain_high_score = static_cast<int>(s.integer("pain_high_score", {0, 10}, 0));
  }

  out.accel_ic_exclusion_s =
      s.number("accel_ic_exclusion_s", {0.0, 0.5, false, "s"}, out.accel_ic_exclusion_s);
  out.ankle_x_norm = s.number("ankle_x_norm", {0.0, 0.5}, out.ankle_x_norm);
  out.insole_width_m = s.number("insole_width_m", {0.04, 0.2, false, "m"}, out.insole_width_m);
  out.midfoot_x_min = s.number("midfoot_x_min", kFractionRange, out.midfoot_x_min);
  out.midfoot_x_max = s.number("midfoot_x_max", kFractionRange, out.midfoot_x_max);
  require_order(s, "midfoot_x_min", out.midfoot_x_min, "midfoot_x_max", out.midfoot_x_max, true);
  out.pta_lead_s = s.number("pta_lead_s", {0.0, 0.1, true, "s"}, out.pta_lead_s);
  out.pta_window_s = s.number("pta_window_s", {0.005, 0.5, false, "s"}, out.pta_window_s);
  out.stance_trace_samples =
      static_cast<int>(s.integer("stance_trace_samples", {16, 8192}, out.stance_trace_samples));
  out.device_silent_s =
      s.number("device_silent_s", {0.1, 3600.0, false, "s"}, out.device_silent_s);
  out.dynamic_calibration = s.boolean("dynamic_calibration", out.dynamic_calibration);
  out.calibration_max_incline =
      s.number("calibration_max_incline", {0.0, 0.15}, out.calibration_max_incline);
  out.calibration_max_speed_change_mps = s.number(
      "calibration_max_speed_change_mps", {0.0, 1.0, false, "m/s"},
      out.calibration_max_speed_change_mps);

  std::string area_expected;
  for (const AreaModelName& m : kAreaModels) {
    area_expected += area_expected.empty() ? "" : &m == &kAreaModels.back() ? " or " : ", ";
    area_expected += quote(m.name);
  }
  if (const std::optional<std::string> name = s.string("pfj_area_model", area_expected)) {
    const auto* it = std::find_if(kAreaModels.begin(), kAreaModels.end(),
                                  [&](const AreaModelName& m) { return *name == m.name; });
    if (it == kAreaModels.end()) {
      s.fail_at("pfj_area_model", "expected " + area_expected + ", got " + quote(*name));
    }
    out.area_model = it->model;
  }
  // The exponents name the model id (load_model_id) and drive D (SessionLoad): one value each.
  constexpr Range kExponent{1.0, 20.0};
  out.damage_exponents.primary =
      s.number("damage_exponent", kExponent, out.damage_exponents.primary);
  out.damage_exponents.sensitivity =
      s.number("damage_exponent_sensitivity", kExponent, out.damage_exponents.sensitivity);
  out.session_load.damage_exponents = out.damage_exponents;

  sub_table(s, "knee", parse_knee, out.knee);
  sub_table(s, "shank", parse_shank, out.shank);
  sub_table(s, "force", parse_force, out.force);
  sub_table(s, "calibration", parse_calibration, out.calibration);
  sub_table(s, "loading_rate", parse_loading_rate, out.loading_rate);
  sub_table(s, "session_load", parse_session_load, out.session_load);
  sub_table(s, "trends", parse_trends, out.trends);
  sub_table(s, "clock", parse_clock, out.clock);
}

// The three keys of a RuleTiming, each prefixed ("" or "km_", "drift_", "dropout_", ...).
fusion::RuleTiming parse_timing(const Section& s, const std::string& prefix,
                                fusion::RuleTiming t) {
  t.persist_s = s.number(prefix + "persist_s", {0.0, 3600.0, false, "s"}, t.persist_s);
  t.clear_hold_s = s.number(prefix + "clear_hold_s", {0.0, 3600.0, false, "s"}, t.clear_hold_s);
  t.cooldown_s = s.number(prefix + "cooldown_s", {0.0, 86400.0, false, "s"}, t.cooldown_s);
  return t;
}

// A threshold pair: onset and clear with the same range and a hysteresis check.
void threshold_pair(const Section& s, std::string_view onset_key, double& onset,
                    std::string_view clear_key, double& clear, Range range, Fires fires) {
  onset = s.number(onset_key, range, onset);
  clear = s.number(clear_key, range, clear);
  require_hysteresis(s, onset_key, onset, clear_key, clear, fires);
}

// MODEL.md §9 R1, [L]/[H].
void parse_r1(const Section& s, fusion::PfjOverloadParams& p) {
  s.refuse_unknown({"persist_s", "clear_hold_s", "cooldown_s", "onset_rel", "clear_rel"});
  p.timing = parse_timing(s, "", p.timing);
  threshold_pair(s, "onset_rel", p.onset_rel, "clear_rel", p.clear_rel, kRelRange, Fires::kAbove);
}

// MODEL.md §9 R2, [L].
void parse_r2(const Section& s, fusion::LowCadenceParams& p) {
  s.refuse_unknown({"persist_s", "clear_hold_s", "cooldown_s", "cadence_spm",
                    "cadence_clear_spm", "min_speed_mps", "preferred_fraction",
                    "preferred_clear_fraction", "peak_flexion_deg", "peak_flexion_clear_deg"});
  p.timing = parse_timing(s, "", p.timing);
  threshold_pair(s, "cadence_spm", p.cadence_spm, "cadence_clear_spm", p.cadence_clear_spm,
                 {100.0, 240.0, false, "spm"}, Fires::kBelow);
  p.min_speed_mps = s.number("min_speed_mps", {0.0, 10.0, false, "m/s"}, p.min_speed_mps);
  threshold_pair(s, "preferred_fraction", p.preferred_fraction, "preferred_clear_fraction",
                 p.preferred_clear_fraction, {0.5, 1.5}, Fires::kBelow);
  threshold_pair(s, "peak_flexion_deg", p.peak_flexion_deg, "peak_flexion_clear_deg",
                 p.peak_flexion_clear_deg, kDegreeRange, Fires::kAbove);
}

// MODEL.md §9 R3, [P] mixed.
void parse_r3(const Section& s, fusion::ImpactParams& p) {
  s.refuse_unknown({"persist_s", "clear_hold_s", "cooldown_s", "valr_bw_per_s",
                    "valr_clear_bw_per_s", "min_force_rate_hz", "onset_rel", "clear_rel", "pta_g",
                    "pta_clear_g", "min_pta_rate_hz"});
  p.timing = parse_timing(s, "", p.timing);
  threshold_pair(s, "valr_bw_per_s", p.valr_bw_per_s, "valr_clear_bw_per_s",
                 p.valr_clear_bw_per_s, {1.0, 1000.0, false, "BW/s"}, Fires::kAbove);
  constexpr Range kRate{10.0, 10'000.0, false, "Hz"};
  p.min_force_rate_hz = s.number("min_force_rate_hz", kRate, p.min_force_rate_hz);
  threshold_pair(s, "onset_rel", p.onset_rel, "clear_rel", p.clear_rel, kRelRange, Fires::kAbove);
  threshold_pair(s, "pta_g", p.pta_g, "pta_clear_g", p.pta_clear_g, {1.0, 100.0, false, "g"},
                 Fires::kAbove);
  p.min_pta_rate_hz = s.number("min_pta_rate_hz", kRate, p.min_pta_rate_hz);
}

// MODEL.md §9 R4, [P] (Frandsen 2025 bands).
void parse_r4(const Section& s, fusion::SessionSpikeParams& p) {
  s.refuse_unknown({"persist_s", "clear_hold_s", "cooldown_s", "info_ratio", "warn_ratio",
                    "high_ratio", "clear_ratio"});
  p.timing = parse_timing(s, "", p.timing);
  constexpr Range kRatio{1.0, 10.0};
  p.info_ratio = s.number("info_ratio", kRatio, p.info_ratio);
  p.warn_ratio = s.number("warn_ratio", kRatio, p.warn_ratio);
  p.high_ratio = s.number("high_ratio", kRatio, p.high_ratio);
  require_order(s, "info_ratio", p.info_ratio, "warn_ratio", p.warn_ratio, false);
  require_order(s, "warn_ratio", p.warn_ratio, "high_ratio", p.high_ratio, false);
  p.clear_ratio = s.number("clear_ratio", {0.5, 10.0}, p.clear_ratio);
  require_hysteresis(s, "info_ratio", p.info_ratio, "clear_ratio", p.clear_ratio, Fires::kAbove);
}

// MODEL.md §9 R5, [P] weak.
void parse_r5(const Section& s, fusion::WeeklyJumpParams& p) {
  s.refuse_unknown({"persist_s", "clear_hold_s", "cooldown_s", "onset_ratio", "clear_ratio",
                    "min_reference_km"});
  p.timing = parse_timing(s, "", p.timing);
  p.onset_ratio = s.number("onset_ratio", {1.0, 10.0}, p.onset_ratio);
  p.clear_ratio = s.number("clear_ratio", {0.5, 10.0}, p.clear_ratio);
  require_hysteresis(s, "onset_ratio", p.onset_ratio, "clear_ratio", p.clear_ratio,
                     Fires::kAbove);
  p.min_reference_km =
      s.number("min_reference_km", {0.0, 1000.0, false, "km"}, p.min_reference_km);
}

// MODEL.md §9 R6, §5, [L]/[H].
void parse_r6(const Section& s, fusion::ItbsPatternParams& p) {
  s.refuse_unknown({"persist_s", "clear_hold_s", "cooldown_s", "ic_min_deg", "ic_max_deg",
                    "ic_margin_deg", "onset_rel", "clear_rel", "min_increase_s",
                    "decline_fraction"});
  p.timing = parse_timing(s, "", p.timing);
  p.ic_min_deg = s.number("ic_min_deg", kDegreeRange, p.ic_min_deg);
  p.ic_max_deg = s.number("ic_max_deg", kDegreeRange, p.ic_max_deg);
  require_order(s, "ic_min_deg", p.ic_min_deg, "ic_max_deg", p.ic_max_deg, true);
  p.ic_margin_deg = s.number("ic_margin_deg", {0.0, 30.0, false, "°"}, p.ic_margin_deg);
  threshold_pair(s, "onset_rel", p.onset_rel, "clear_rel", p.clear_rel, kRelRange, Fires::kAbove);
  p.min_increase_s = s.number("min_increase_s", {0.0, 1.0, false, "s"}, p.min_increase_s);
  p.decline_fraction = s.number("decline_fraction", {-0.5, 0.0}, p.decline_fraction);
}

// MODEL.md §9 R7, §6, [P] direction only.
void parse_r7(const Section& s, fusion::FatigueDriftParams& p) {
  s.refuse_unknown({"persist_s", "clear_hold_s", "cooldown_s", "min_changes",
                    "contact_time_rel", "contact_time_clear_rel", "cadence_rel",
                    "cadence_clear_rel", "impact_rel", "impact_clear_rel", "knee_ic_deg",
                    "knee_ic_clear_deg", "timing_si_pp", "timing_si_clear_pp",
                    "max_speed_change_rel"});
  p.timing = parse_timing(s, "", p.timing);
  p.min_changes = static_cast<int>(s.integer("min_changes", {1, 5}, p.min_changes));
  threshold_pair(s, "contact_time_rel", p.contact_time_rel, "contact_time_clear_rel",
                 p.contact_time_clear_rel, kFractionRange, Fires::kAbove);
  threshold_pair(s, "cadence_rel", p.cadence_rel, "cadence_clear_rel", p.cadence_clear_rel,
                 {-1.0, 0.0}, Fires::kBelow);
  threshold_pair(s, "impact_rel", p.impact_rel, "impact_clear_rel", p.impact_clear_rel,
                 kRelRange, Fires::kAbove);
  threshold_pair(s, "knee_ic_deg", p.knee_ic_deg, "knee_ic_clear_deg", p.knee_ic_clear_deg,
                 {0.0, 45.0, false, "°"}, Fires::kAbove);
  threshold_pair(s, "timing_si_pp", p.timing_si_pp, "timing_si_clear_pp", p.timing_si_clear_pp,
                 {0.0, 100.0, false, "pp"}, Fires::kAbove);
  p.max_speed_change_rel =
      s.number("max_speed_change_rel", kFractionRange, p.max_speed_change_rel);
}

// MODEL.md §9 R8, §7, [L]/[H]. SI is at most 200 %.
void parse_r8(const Section& s, fusion::AsymmetryParams& p) {
  s.refuse_unknown({"persist_s", "clear_hold_s", "cooldown_s", "contact_time_si_pct",
                    "contact_time_si_clear_pct", "step_time_si_pct", "step_time_si_clear_pct",
                    "peak_force_si_pct", "peak_force_si_clear_pct", "valr_si_pct",
                    "valr_si_clear_pct", "knee_peak_diff_deg", "knee_peak_diff_clear_deg"});
  p.timing = parse_timing(s, "", p.timing);
  constexpr Range kSi{0.0, 200.0, false, "%"};
  threshold_pair(s, "contact_time_si_pct", p.contact_time_si_pct, "contact_time_si_clear_pct",
                 p.contact_time_si_clear_pct, kSi, Fires::kAbove);
  threshold_pair(s, "step_time_si_pct", p.step_time_si_pct, "step_time_si_clear_pct",
                 p.step_time_si_clear_pct, kSi, Fires::kAbove);
  threshold_pair(s, "peak_force_si_pct", p.peak_force_si_pct, "peak_force_si_clear_pct",
                 p.peak_force_si_clear_pct, kSi, Fires::kAbove);
  threshold_pair(s, "valr_si_pct", p.valr_si_pct, "valr_si_clear_pct", p.valr_si_clear_pct, kSi,
                 Fires::kAbove);
  threshold_pair(s, "knee_peak_diff_deg", p.knee_peak_diff_deg, "knee_peak_diff_clear_deg",
                 p.knee_peak_diff_clear_deg, kDegreeRange, Fires::kAbove);
}

// MODEL.md §9 R9, §8, [L]/[H]. CoP shifts are written in mm, stored in m.
void parse_r9(const Section& s, fusion::ShoeParams& p) {
  s.refuse_unknown({"km_persist_s", "km_clear_hold_s", "km_cooldown_s", "warn_km", "high_km",
                    "drift_persist_s", "drift_clear_hold_s", "drift_cooldown_s", "impact_rel",
                    "impact_clear_rel", "medial_cop_shift_mm", "medial_cop_shift_clear_mm",
                    "cop_min_steps", "midfoot_pressure_rel", "midfoot_pressure_clear_rel",
                    "max_speed_change_rel"});
  p.km_timing = parse_timing(s, "km_", p.km_timing);
  constexpr Range kKm{0.0, 10'000.0, false, "km"};
  p.warn_km = s.number("warn_km", kKm, p.warn_km);
  p.high_km = s.number("high_km", kKm, p.high_km);
  require_order(s, "warn_km", p.warn_km, "high_km", p.high_km, false);
  p.drift_timing = parse_timing(s, "drift_", p.drift_timing);
  threshold_pair(s, "impact_rel", p.impact_rel, "impact_clear_rel", p.impact_clear_rel,
                 kRelRange, Fires::kAbove);
  // Division, not multiplication by 1e-3: 3 mm becomes the double nearest 0.003 m.
  constexpr double kMmPerM = 1000.0;
  constexpr Range kShiftMm{0.0, 50.0, false, "mm"};
  if (s.given("medial_cop_shift_mm")) {
    p.medial_cop_shift_m = s.number("medial_cop_shift_mm", kShiftMm, 0.0) / kMmPerM;
  }
  if (s.given("medial_cop_shift_clear_mm")) {
    p.medial_cop_shift_clear_m = s.number("medial_cop_shift_clear_mm", kShiftMm, 0.0) / kMmPerM;
  }
  require_hysteresis(s, "medial_cop_shift_mm", p.medial_cop_shift_m * kMmPerM,
                     "medial_cop_shift_clear_mm", p.medial_cop_shift_clear_m * kMmPerM,
                     Fires::kAbove);
  p.cop_min_steps = static_cast<int>(s.integer("cop_min_steps", {1, 1'000'000}, p.cop_min_steps));
  threshold_pair(s, "midfoot_pressure_rel", p.midfoot_pressure_rel, "midfoot_pressure_clear_rel",
                 p.midfoot_pressure_clear_rel, kRelRange, Fires::kAbove);
  p.max_speed_change_rel =
      s.number("max_speed_change_rel", kFractionRange, p.max_speed_change_rel);
}

// MODEL.md §9 R10, [H].
void parse_r10(const Section& s, fusion::PainParams& p) {
  s.refuse_unknown(
      {"persist_s", "clear_hold_s", "cooldown_s", "high_score", "lateral_min_score"});
  p.timing = parse_timing(s, "", p.timing);
  p.high_score = static_cast<int>(s.integer("high_score", {0, 10}, p.high_score));
  p.lateral_min_score =
      static_cast<int>(s.integer("lateral_min_score", {1, 10}, p.lateral_min_score));
}

// F1..F4, [H] engineering defaults.
void parse_faults(const Section& s, fusion::SensorFaultParams& p) {
  s.refuse_unknown({"dropout_persist_s", "dropout_clear_hold_s", "dropout_cooldown_s",
                    "saturation_persist_s", "saturation_clear_hold_s", "saturation_cooldown_s",
                    "cell_full_scale_kpa", "saturation_fraction", "saturation_min_samples",
                    "stuck_persist_s", "stuck_clear_hold_s", "stuck_cooldown_s", "stuck_s",
                    "stuck_tolerance_pa", "stuck_min_other_changes", "stuck_zero_pa",
                    "clock_quiet_s"});
  p.dropout_timing = parse_timing(s, "dropout_", p.dropout_timing);
  p.saturation_timing = parse_timing(s, "saturation_", p.saturation_timing);
  constexpr double kPaPerKpa = 1000.0;
  if (s.given("cell_full_scale_kpa")) {
    p.cell_full_scale_pa =
        s.number("cell_full_scale_kpa", {0.0, 10'000.0, false, "kPa"}, 0.0) * kPaPerKpa;
  }
  p.saturation_fraction = s.number("saturation_fraction", {0.5, 1.0}, p.saturation_fraction);
  p.saturation_min_samples = static_cast<int>(
      s.integer("saturation_min_samples", {0, 100'000}, p.saturation_min_samples));
  p.stuck_timing = parse_timing(s, "stuck_", p.stuck_timing);
  p.stuck_s = s.number("stuck_s", {0.1, 3600.0, false, "s"}, p.stuck_s);
  p.stuck_tolerance_pa =
      s.number("stuck_tolerance_pa", {0.0, 10'000.0, false, "Pa"}, p.stuck_tolerance_pa);
  p.stuck_min_other_changes =
      s.number("stuck_min_other_changes", kFractionRange, p.stuck_min_other_changes);
  p.stuck_zero_pa = s.number("stuck_zero_pa", {0.0, 100'000.0, false, "Pa"}, p.stuck_zero_pa);
  p.clock_quiet_s = s.number("clock_quiet_s", {1.0, 3600.0, false, "s"}, p.clock_quiet_s);
}

// MODEL.md §9 risk rules: "each has config thresholds, a persistence window, hysteresis (onset
// and clear), a cooldown". One sub-table per rule, named by its code and name.
void parse_rules(const Section& s, fusion::RiskRuleParams& out) {
  s.refuse_unknown({"max_gap_s", "min_rolling_steps", "r1_pfj_overload", "r2_low_cadence",
                    "r3_impact", "r4_session_spike", "r5_weekly_jump", "r6_itbs_pattern",
                    "r7_fatigue_drift", "r8_asymmetry", "r9_shoes", "r10_pain", "faults"},
                   "in [rules]");
  out.max_gap_s = s.number("max_gap_s", {1.0, 3600.0, false, "s"}, out.max_gap_s);
  out.min_rolling_steps =
      static_cast<int>(s.integer("min_rolling_steps", {1, 65536}, out.min_rolling_steps));
  sub_table(s, "r1_pfj_overload", parse_r1, out.pfj_overload);
  sub_table(s, "r2_low_cadence", parse_r2, out.low_cadence);
  sub_table(s, "r3_impact", parse_r3, out.impact);
  sub_table(s, "r4_session_spike", parse_r4, out.session_spike);
  sub_table(s, "r5_weekly_jump", parse_r5, out.weekly_jump);
  sub_table(s, "r6_itbs_pattern", parse_r6, out.itbs_pattern);
  sub_table(s, "r7_fatigue_drift", parse_r7, out.fatigue_drift);
  sub_table(s, "r8_asymmetry", parse_r8, out.asymmetry);
  sub_table(s, "r9_shoes", parse_r9, out.shoes);
  sub_table(s, "r10_pain", parse_r10, out.pain);
  sub_table(s, "faults", parse_faults, out.faults);
}

// Rules that relate [model] and [rules]: the pain alias, and a rolling window that can hold the
// steps the rules wait for.
void settle_model_and_rules(const Section& root, const std::optional<int>& model_pain,
                            fusion::ModelParams& model) {
  const toml::table* rules_table = root.table("rules");
  const toml::table* r10_table = nullptr;
  if (rules_table != nullptr) {
    if (const toml::node* n = rules_table->get("r10_pain")) r10_table = n->as_table();
  }
  const bool rules_pain = r10_table != nullptr && r10_table->get("high_score") != nullptr;
  if (model_pain && rules_pain && *model_pain != model.rules.pain.high_score) {
    fail(root.file(), "rules.r10_pain.high_score",
         "expected the same score as model.pain_high_score (" + std::to_string(*model_pain) +
             "), an older name for this key; give one of the two, got " +
             std::to_string(model.rules.pain.high_score));
  }
  if (model_pain) model.rules.pain.high_score = *model_pain;
  model.pain_high_score = model.rules.pain.high_score;

  // A rolling window holds at most rolling_capacity_steps per side; a rule waiting for more
  // would never evaluate.
  const int needed = model.rules.min_rolling_steps;
  const int capacity = model.trends.rolling_capacity_steps;
  if (needed <= capacity) return;
  const bool rules_given = rules_table != nullptr && rules_table->get("min_rolling_steps");
  if (rules_given) {
    fail(root.file(), "rules.min_rolling_steps",
         "expected an integer <= model.trends.rolling_capacity_steps (" +
             std::to_string(capacity) + "): a rolling window holds no more, got " +
             std::to_string(needed));
  }
  fail(root.file(), "model.trends.rolling_capacity_steps",
       "expected an integer >= rules.min_rolling_steps (" + std::to_string(needed) +
           ", its default): the rules wait for that many steps, got " + std::to_string(capacity));
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

// Three numbers, each within `range`, not all zero; nullopt when the key is absent.
std::optional<std::array<double, 3>> parse_vec3(const Section& s, std::string_view key,
                                                const char* expected, Range range) {
  const toml::array* a = s.array(key, expected);
  if (a == nullptr) return std::nullopt;
  if (a->size() != 3) {
    s.fail_at(key, std::string("expected ") + expected + ", got " + std::to_string(a->size()) +
                       (a->size() == 1 ? " number" : " numbers"));
  }
  std::array<double, 3> v{};
  for (std::size_t i = 0; i < 3; ++i) {
    const std::string path = s.key_path(key) + "[" + std::to_string(i) + "]";
    v[i] = number_at(s.file(), path, *a->get(i), range);
  }
  const double norm = std::hypot(v[0], v[1], v[2]);
  if (!(norm > 0.0) || !std::isfinite(norm)) {
    s.fail_at(key, std::string("expected ") + expected + ", got [" + number_text(v[0]) + ", " +
                       number_text(v[1]) + ", " + number_text(v[2]) + "]");
  }
  return v;
}

// MODEL.md §2: hinge-axis directions j₁ (thigh) and j₂ (shank); unit vectors after loading.
std::array<double, 3> parse_axis(const Section& s, std::string_view key,
                                 const std::array<double, 3>& fallback) {
  auto v = parse_vec3(s, key, "an array of 3 numbers, not all zero", Range{-kInf, kInf});
  if (!v) return fallback;
  const double norm = std::hypot((*v)[0], (*v)[1], (*v)[2]);
  for (double& c : *v) c /= norm;
  return *v;
}

// The vector knee joint centre → sensor, in the sensor's frame (m): each component within
// ±0.8 m (a sensor is on the leg), not all zero. Not normalised: it is a position.
std::array<double, 3> parse_offset(const Section& s, std::string_view key,
                                   const std::array<double, 3>& fallback) {
  return parse_vec3(s, key, "an array of 3 numbers in metres, each within -0.8..0.8, not all zero",
                    Range{-0.8, 0.8})
      .value_or(fallback);
}

std::vector<std::string_view> device_keys(fusion::SensorKind kind) {
  std::vector<std::string_view> keys{"id", "station", "runner", "kind", "side", "public_key"};
  if (kind == fusion::SensorKind::kInsole) {
    keys.insert(keys.end(), {"cell_areas_cm2", "cell_x", "cell_y", "force_gain"});
  } else if (kind == fusion::SensorKind::kKnee) {
    keys.insert(keys.end(), {"thigh_axis", "shank_axis", "thigh_sensor_m", "shank_sensor_m"});
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
      d.knee.thigh_sensor_m = parse_offset(s, "thigh_sensor_m", d.knee.thigh_sensor_m);
      d.knee.shank_sensor_m = parse_offset(s, "shank_sensor_m", d.knee.shank_sensor_m);
    }
    if (auto key = s.string("public_key", kCurveKeyRule)) {
      if (!proto::valid_curve_key(*key)) s.fail_at("public_key", std::string("expected ") + kCurveKeyRule + ", got " + quote(*key));
      d.public_key = *key;
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

// Device keys and gateway keys name who may send for which device: one key, one role.
void check_keys(const Config& c) {
  std::map<std::string_view, std::string> owner;  // key → where it was first given
  for (std::size_t i = 0; i < c.security.gateway_keys.size(); ++i) {
    owner.emplace(c.security.gateway_keys[i], "security.gateway_keys[" + std::to_string(i) + "]");
  }
  for (std::size_t i = 0; i < c.devices.size(); ++i) {
    const std::string& key = c.devices[i].public_key;
    if (key.empty()) continue;
    const std::string at = "devices[" + std::to_string(i) + "].public_key";
    if (!c.security.curve) {
      fail(c.source, at, "expected security.curve = true for a device key to mean anything, got curve = false");
    }
    if (const auto [it, fresh] = owner.emplace(key, at); !fresh) {
      fail(c.source, at, "expected a key used by one device or gateway only, got the key of " + it->second);
    }
  }
}

// Loopback: 127.0.0.0/8, ::1 and localhost. Anything else reaches the network.
bool loopback_endpoint(std::string_view endpoint) {
  if (endpoint.starts_with("ipc://")) return true;
  std::string_view host = endpoint.substr(6);  // after tcp://
  host = host.substr(0, host.rfind(':'));
  return host.starts_with("127.") || host == "[::1]" || host == "localhost";
}

// Secure by default: plaintext only where no stranger can reach it.
void check_transport_security(const Config& c, const std::vector<std::string>& ingest, const std::string& publish,
                              const EndpointKeys& keys) {
  if (c.security.curve || c.security.allow_plaintext) return;
  const auto refuse = [&](const std::string& key, const std::string& endpoint) {
    fail(c.source, key,
         "expected a loopback or ipc endpoint without CURVE (set security.curve = true, or "
         "security.allow_plaintext = true to accept unauthenticated plaintext on the network), got " +
             quote(endpoint));
  };
  for (std::size_t i = 0; i < ingest.size(); ++i) {
    if (!loopback_endpoint(ingest[i])) refuse(keys.ingest(i), ingest[i]);
  }
  if (!loopback_endpoint(publish)) refuse(keys.publish(), publish);
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
  root.refuse_unknown({"ingest", "publish", "metrics", "security", "pipeline", "health", "state_dir",
                       "store", "model", "rules", "runners", "devices"},
                      "at the top level");
  if (const toml::table* t = root.table("ingest")) {
    parse_ingest(Section(c.source, *t, "ingest"), c.ingest);
  }
  if (const toml::table* t = root.table("publish")) {
    parse_publish(Section(c.source, *t, "publish"), c.publish);
  }
  if (const toml::table* t = root.table("metrics")) {
    const Section s(c.source, *t, "metrics");
    s.refuse_unknown({"address", "basic_auth_file"}, "in [metrics]");
    if (auto a = s.string("address", kAddressRule)) c.metrics_address = *a;
    if (auto f = s.string("basic_auth_file", "a path to a file holding user:password")) {
      c.metrics_basic_auth_file = *f;
    }

  }
  if (const toml::table* t = root.table("security")) {
    parse_security(Section(c.source, *t, "security"), c.security);
  }
  if (const toml::table* t = root.table("pipeline")) {
    parse_pipeline(Section(c.source, *t, "pipeline"), c.pipeline);
  }
  if (const toml::table* t = root.table("health")) {
    const Section s(c.source, *t, "health");
    s.refuse_unknown({"stale_after_s"}, "in [health]");
    c.stale_after_s = s.number("stale_after_s", {0.1, 3600.0, false, "s"}, c.stale_after_s);
  }
  if (auto dir = root.string("state_dir", "a directory path string (\"\" disables the store)")) {
    c.state_dir = *dir;
  }
  if (const toml::table* t = root.table("store")) {
    const Section s(c.source, *t, "store");
    s.refuse_unknown({"enabled", "checkpoint_interval_s", "ring_capacity", "required"});
    c.store.enabled = s.boolean("enabled", c.store.enabled);
    c.store.checkpoint_interval_s =
        s.number("checkpoint_interval_s", {0.1, 3600.0, false, "s"}, c.store.checkpoint_interval_s);
    c.store.ring_capacity = static_cast<std::size_t>(s.integer(
        "ring_capacity", {2, std::int64_t{1} << 24}, static_cast<std::int64_t>(c.store.ring_capacity)));
    c.store.required = s.boolean("required", c.store.required);
  }
  std::optional<int> model_pain_high_score;
  if (const toml::table* t = root.table("model")) {
    parse_model(Section(c.source, *t, "model"), c.model, model_pain_high_score);
  }
  if (const toml::table* t = root.table("rules")) {
    parse_rules(Section(c.source, *t, "rules"), c.model.rules);
  }
  settle_model_and_rules(root, model_pain_high_score, c.model);
  // Live data must be released by arrivals, the flush only taking what no arrival will: a flush
  // inside the reorder window would cut it short for every runner between two frames.
  if (c.pipeline.idle_flush_us <= c.model.clock.reorder.window_us) {
    fail(c.source, "pipeline.idle_flush_ms",
         "expected more than model.clock.window_ms (" + number_text(static_cast<double>(c.model.clock.reorder.window_us) / 1000.0) +
             "), got " + number_text(static_cast<double>(c.pipeline.idle_flush_us) / 1000.0));
  }
  if (const toml::array* a = root.table_array("runners")) c.runners = parse_runners(c.source, *a);
  if (const toml::array* a = root.table_array("devices")) {
    c.devices = parse_devices(c.source, *a, c.runners);
  }

  check_endpoints(c.source, c.ingest.endpoints, c.publish.endpoint, EndpointKeys{});
  check_metrics_address(c.source, "metrics.address", c.metrics_address);
  check_registry_fits(c);
  check_keys(c);
  check_transport_security(c, c.ingest.endpoints, c.publish.endpoint, EndpointKeys{});
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
  check_transport_security(config, ingest, publish, keys);
  // Validated first, assigned after: a refused override leaves the config as it was.
  if (overrides.state_dir) config.state_dir = *overrides.state_dir;
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
  note("metrics.basic_auth_file", running.metrics_basic_auth_file != next.metrics_basic_auth_file);
  note("security.curve", running.security.curve != next.security.curve);
  note("security.secret_key_file", running.security.secret_key_file != next.security.secret_key_file ||
                                       running.security.secret_key != next.security.secret_key);
  note("security.allow_plaintext", running.security.allow_plaintext != next.security.allow_plaintext);
  note("state_dir", running.state_dir != next.state_dir);
  note("store.enabled", running.store.enabled != next.store.enabled);
  note("store.checkpoint_interval_s",
       running.store.checkpoint_interval_s != next.store.checkpoint_interval_s);
  note("store.ring_capacity", running.store.ring_capacity != next.store.ring_capacity);
  note("store.required", running.store.required != next.store.required);
  note("pipeline.workers", running.pipeline.workers != next.pipeline.workers);
  note("pipeline.ingest_ring_capacity",
       running.pipeline.ingest_ring_capacity != next.pipeline.ingest_ring_capacity);
  note("pipeline.output_ring_capacity",
       running.pipeline.output_ring_capacity != next.pipeline.output_ring_capacity);
  note("pipeline.max_devices", running.pipeline.max_devices != next.pipeline.max_devices);
  note("pipeline.max_runners", running.pipeline.max_runners != next.pipeline.max_runners);
  note("pipeline.max_stations", running.pipeline.max_stations != next.pipeline.max_stations);
  // RunnerSession::reconfigure() applies every other model key to running sessions; the
  // reorder buffer's capacity sizes the storage its held samples live in, so a running session
  // keeps it (new sessions take the new value).
  note("model.clock.capacity",
       running.model.clock.reorder.capacity != next.model.clock.reorder.capacity);
  // Likewise the stance traces' size (StepLoad, CopPath).
  note("model.stance_trace_samples",
       running.model.stance_trace_samples != next.model.stance_trace_samples);
  return changed;
}

void release_inventory(Config& config) {
  std::vector<DeviceConfig>().swap(config.devices);
  std::vector<RunnerConfig>().swap(config.runners);
}

void take_reloadable(Config& running, const Config& next) {
  running.model = next.model;
  running.stale_after_s = next.stale_after_s;
  running.pipeline.idle_flush_us = next.pipeline.idle_flush_us;
}

std::vector<std::string> reload_resets(const Config& running, const Config& next) {
  std::vector<std::string> changed;
  const fusion::GaitTrendParams& a = running.model.trends;
  const fusion::GaitTrendParams& b = next.model.trends;
  if (a.rolling_capacity_steps != b.rolling_capacity_steps) {
    changed.emplace_back("model.trends.rolling_capacity_steps");
  }
  if (a.baseline_capacity_steps != b.baseline_capacity_steps) {
    changed.emplace_back("model.trends.baseline_capacity_steps");
  }
  return changed;
}

}  // namespace kneeload::daemon
