#include "load_frames.hpp"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string_view>
#include <variant>

#include "frame_encode.hpp"
#include "kneeload/sim/registry.hpp"
#include "kneeload/sim/simulator.hpp"

namespace kneeload::ctl {
namespace {

using fusion::DeviceRole;

constexpr int kTimeVarintBytes = 7;  // every value in [2^42, 2^49)
constexpr int kSeqVarintBytes = 4;   // every value in [2^21, 2^28)
constexpr std::int64_t kTimeLimitUs = std::int64_t{1} << 49;
constexpr std::int64_t kSeqLimit = std::int64_t{1} << 28;
// Placeholder device ids: station 0; write() puts the real digits in.
constexpr int kStationIdPrefix = 2;  // "st"

// The daemon defaults that --print-config raises for many stations (daemon/config.hpp).
constexpr int kDefaultMaxDevices = 4096;
constexpr int kDefaultMaxRunners = 1024;
constexpr int kDefaultMaxStations = 1024;
constexpr int kDefaultReorderCapacity = 512;
constexpr double kReorderWindowS = 0.150;
// pipeline.idle_flush_ms for load's stations: 10,000 stations at 100,000 samples/s are visited
// every ~6 s (61 samples a visit at --batch 10); 10 s leaves room.
constexpr int kLoadIdleFlushMs = 10'000;

const char* role_suffix(DeviceRole role) {
  switch (role) {
    case DeviceRole::kInsoleLeft: return "il";
    case DeviceRole::kInsoleRight: return "ir";
    case DeviceRole::kKneeLeft: return "kl";
    case DeviceRole::kKneeRight: return "kr";
    case DeviceRole::kTreadmill: return "tm";
    case DeviceRole::kConsole: break;
  }
  return "co";
}

std::string numbered(const char* prefix, int n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%0*d", prefix, kLoadStationDigits, n);
  return buf;
}

void put_varint(std::byte* p, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes - 1; ++i) {
    p[i] = static_cast<std::byte>((v & 0x7Fu) | 0x80u);
    v >>= 7;
  }
  assert(v > 0 && v < 0x80);  // the top byte is non-zero: the shortest (canonical) encoding
  p[bytes - 1] = static_cast<std::byte>(v);
}

// Reads protobuf wire format just far enough to find the fields write() patches.
class Walker {
 public:
  explicit Walker(std::string_view bytes) : begin_(bytes.data()), p_(bytes.data()), end_(bytes.data() + bytes.size()) {}
  bool at_end() const { return p_ == end_; }
  std::uint32_t offset() const { return static_cast<std::uint32_t>(p_ - begin_); }

  std::uint64_t varint(int* length = nullptr) {
    std::uint64_t v = 0;
    for (int i = 0; i < 10; ++i) {
      if (p_ == end_) break;
      const auto byte = static_cast<std::uint8_t>(*p_++);
      v |= static_cast<std::uint64_t>(byte & 0x7Fu) << (7 * i);
      if ((byte & 0x80u) == 0) {
        if (length != nullptr) *length = i + 1;
        return v;
      }
    }
    throw std::logic_error("load template: truncated varint");
  }
  std::string_view bytes(std::size_t n) {
    if (n > static_cast<std::size_t>(end_ - p_)) throw std::logic_error("load template: truncated field");
    const std::string_view out(p_, n);
    p_ += n;
    return out;
  }

 private:
  const char* begin_;
  const char* p_;
  const char* end_;
};

std::uint32_t expect_varint(Walker& w, int bytes, const char* what) {
  const std::uint32_t at = w.offset();
  int length = 0;
  w.varint(&length);
  if (length != bytes) {
    throw std::logic_error(std::string("load template: ") + what + " encoded in " + std::to_string(length) +
                           " bytes, expected " + std::to_string(bytes));
  }
  return at;
}

// Finds the patch offsets in a frame FrameEncoder wrote (fields in field-number order, each
// Sample's t_us first).
void locate_fields(LoadTemplate::Frame& f) {
  Walker w(f.bytes);
  std::size_t sample = 0;
  bool seq = false, id = false, arrival = false;
  while (!w.at_end()) {
    const std::uint64_t tag = w.varint();
    switch (tag) {
      case (1 << 3) | 0: w.varint(); break;  // protocol_version
      case (2 << 3) | 2: {
        const std::uint64_t len = w.varint();
        f.digits_at = w.offset() + kStationIdPrefix;
        w.bytes(len);
        id = true;
        break;
      }
      case (3 << 3) | 0:
        f.seq_at = expect_varint(w, kSeqVarintBytes, "seq");
        seq = true;
        break;
      case (4 << 3) | 2: {
        const std::uint64_t len = w.varint();
        Walker s(w.bytes(len));
        if (sample >= f.t_us.size() || s.varint() != ((1 << 3) | 0)) {
          throw std::logic_error("load template: a sample does not start with t_us");
        }
        // The sample's offset inside the frame: its bytes start where the walker was.
        const std::uint32_t sample_at = w.offset() - static_cast<std::uint32_t>(len);
        f.t_us[sample].at = sample_at + expect_varint(s, kTimeVarintBytes, "t_us");
        ++sample;
        break;
      }
      case (5 << 3) | 0:
        f.arrival_at = expect_varint(w, kTimeVarintBytes, "recorded_arrival_us");
        arrival = true;
        break;
      default: throw std::logic_error("load template: unexpected field tag " + std::to_string(tag));
    }
  }
  if (!id || !seq || !arrival || sample != f.t_us.size()) {
    throw std::logic_error("load template: a frame lacks device_id, seq, recorded_arrival_us or samples");
  }
}

}  // namespace

std::string load_station_id(int n) { return numbered("st", n); }
std::string load_runner_id(int n) { return numbered("r", n); }
std::string load_device_id(int n, DeviceRole role) { return load_station_id(n) + "-" + role_suffix(role); }

void load_station_digits(int n, char* out) {
  for (int i = kLoadStationDigits - 1; i >= 0; --i, n /= 10) out[i] = static_cast<char>('0' + n % 10);
}

sim::SimConfig load_sim_config(const LoadTemplateOptions& options) {
  sim::SimConfig c;
  c.seed = options.seed;
  c.duration_s = options.seconds;
  // Running from the first sample: a loop must not stand still and blend in again.
  c.standing_s = 0.0;
  c.start_ramp_s = 0.0;
  c.plan = sim::make_scenario(sim::Scenario::kHealthy, c.runner);
  c.insole.batch = options.batch;
  c.knee.batch = options.batch;
  c.console.enabled = false;
  return c;
}

LoadTemplate::LoadTemplate(const LoadTemplateOptions& options) {
  if (options.batch < 1 || options.batch > kLoadMaxBatch) {
    throw std::invalid_argument("batch: expected 1.." + std::to_string(kLoadMaxBatch));
  }
  sim::SimConfig config = load_sim_config(options);
  // Exact sample periods: the grid below is in whole microseconds.
  std::array<std::int64_t, fusion::kDeviceRoleCount> period_us{};
  std::array<int, fusion::kDeviceRoleCount> batch{};
  for (const DeviceRole role : kLoadRoles) {
    const bool knee = role == DeviceRole::kKneeLeft || role == DeviceRole::kKneeRight;
    const bool tm = role == DeviceRole::kTreadmill;
    const double rate = tm ? config.treadmill.rate_hz : knee ? config.knee.rate_hz : config.insole.rate_hz;
    const auto r = static_cast<std::size_t>(role);
    period_us[r] = std::llround(1e6 / rate);
    batch[r] = tm ? config.treadmill.batch : knee ? config.knee.batch : config.insole.batch;
    if (static_cast<double>(period_us[r]) * rate != 1e6) throw std::logic_error("load template: rate not a whole µs period");
  }
  slot_us_ = 1;
  for (const DeviceRole role : kLoadRoles) {
    const auto r = static_cast<std::size_t>(role);
    slot_us_ = std::lcm(slot_us_, period_us[r] * batch[r]);
  }
  const auto slots = std::max<std::int64_t>(1, std::llround(options.seconds * 1e6 / static_cast<double>(slot_us_)));
  config.duration_s = static_cast<double>(slots * slot_us_) / 1e6;
  for (const DeviceRole role : kLoadRoles) {
    const auto r = static_cast<std::size_t>(role);
    frames_per_slot_[r] = static_cast<std::uint32_t>(slot_us_ / (period_us[r] * batch[r]));
  }
  slots_.resize(static_cast<std::size_t>(slots));

  // Render: the simulator's frames per device in order, each sample on the exact grid.
  sim::Simulator simulator(config);
  FrameEncoder encoder;
  std::array<std::int64_t, fusion::kDeviceRoleCount> sample_index{};
  std::array<std::uint32_t, fusion::kDeviceRoleCount> frame_index{};
  std::vector<std::int64_t> times;
  fusion::Sample s;
  sim::SampleInfo info;
  while (simulator.next(s, &info)) {
    const auto r = static_cast<std::size_t>(info.role);
    if (info.frame_start) {
      encoder.begin(load_device_id(0, info.role), kLoadSeqStart);
      times.clear();
    }
    // A device status rides in its frame with the time of the sample before it.
    const bool status = std::holds_alternative<fusion::DeviceStatus>(s.payload);
    const std::int64_t n = status ? sample_index[r] - 1 : sample_index[r]++;
    times.push_back(n * period_us[r]);
    s.device_t_us = kLoadClockStartUs;
    encoder.add(s);
    if (!info.frame_end) continue;
    Frame f;
    f.role = info.role;
    f.samples = encoder.sample_count();
    encoder.finish(kLoadClockStartUs, f.bytes);
    const std::int64_t slot = times.front() / slot_us_;
    if (times.back() / slot_us_ != slot || slot >= slots) {
      throw std::logic_error("load template: a frame straddles a slot boundary");
    }
    const std::int64_t slot_start = slot * slot_us_;
    f.seq_in_slot = frame_index[r]++ % frames_per_slot_[r];
    f.t_us.resize(times.size());
    for (std::size_t i = 0; i < times.size(); ++i) f.t_us[i].in_slot_us = times[i] - slot_start;
    f.arrival_in_slot_us = times.back() - slot_start + options.transport_delay_us;
    locate_fields(f);
    samples_per_loop_ += static_cast<std::uint64_t>(f.samples);
    slots_[static_cast<std::size_t>(slot)].push_back(std::move(f));
  }
  for (const DeviceRole role : kLoadRoles) {
    const auto r = static_cast<std::size_t>(role);
    if (frame_index[r] != frames_per_slot_[r] * static_cast<std::uint32_t>(slots)) {
      throw std::logic_error("load template: the simulator rendered " + std::to_string(frame_index[r]) + " frames of " +
                             load_device_id(0, role) + ", expected " +
                             std::to_string(frames_per_slot_[r] * static_cast<std::uint32_t>(slots)));
    }
  }
  for (std::vector<Frame>& frames : slots_) {
    std::stable_sort(frames.begin(), frames.end(), [](const Frame& a, const Frame& b) {
      return a.arrival_in_slot_us != b.arrival_in_slot_us ? a.arrival_in_slot_us < b.arrival_in_slot_us : a.role < b.role;
    });
  }
  const std::uint32_t most_frames = *std::max_element(frames_per_slot_.begin(), frames_per_slot_.end());
  const std::int64_t by_seq = (kSeqLimit - kLoadSeqStart) / most_frames - 1;
  const std::int64_t by_time = (kTimeLimitUs - kLoadClockStartUs) / slot_us_ - 2;
  max_position_ = std::min(by_seq, by_time);
}

void LoadTemplate::write(const Frame& frame, const char* digits, std::int64_t q, std::byte* out) const {
  assert(q >= 0 && q <= max_position_);
  std::memcpy(out, frame.bytes.data(), frame.bytes.size());
  std::memcpy(out + frame.digits_at, digits, kLoadStationDigits);
  const std::int64_t slot_start = kLoadClockStartUs + q * slot_us_;
  const auto seq = static_cast<std::uint64_t>(kLoadSeqStart) +
                   static_cast<std::uint64_t>(q) * frames_per_slot(frame.role) + frame.seq_in_slot;
  put_varint(out + frame.seq_at, seq, kSeqVarintBytes);
  for (const TimeField& t : frame.t_us) {
    put_varint(out + t.at, static_cast<std::uint64_t>(slot_start + t.in_slot_us), kTimeVarintBytes);
  }
  put_varint(out + frame.arrival_at, static_cast<std::uint64_t>(slot_start + frame.arrival_in_slot_us),
             kTimeVarintBytes);
}

std::string load_daemon_config(int stations, int workers, int batch, const std::string& command) {
  LoadTemplateOptions options;
  options.batch = batch;
  const sim::SimConfig runner = load_sim_config(options);
  std::string t;
  char buf[1024];
  std::snprintf(buf, sizeof buf, "# kneeloadd configuration for %d load station%s (%s .. %s), written by\n", stations,
                stations == 1 ? "" : "s", load_station_id(1).c_str(), load_station_id(stations).c_str());
  t += buf;
  // The command line is the caller's: appended, not formatted, so no length of it is cut.
  t += "#   " + command + "\n";
  t += "# Each station: a runner, insoles -il/-ir, knee IMU pairs -kl/-kr, treadmill -tm.\n"
       "# Keys not set here keep their defaults (deploy/config/kneeloadd.example.toml).\n"
       "# The runner history goes to the default state_dir, /var/lib/kneeload; for a run\n"
       "# that should leave none, start kneeloadd with --state-dir \"\" (as bench/e2e does).\n\n"
       "[ingest]\nendpoints = [\"tcp://127.0.0.1:5600\"]\n\n"
       "[publish]\nendpoint = \"tcp://127.0.0.1:5601\"\n\n"
       "[metrics]\naddress = \"127.0.0.1:9464\"\n";
  const int devices = stations * static_cast<int>(kLoadRoles.size());
  const bool raise = devices > kDefaultMaxDevices || stations > kDefaultMaxRunners || stations > kDefaultMaxStations;
  t += "\n[pipeline]\n";
  if (workers >= 0) t += "workers = " + std::to_string(workers) + "\n";
  // The generator visits the stations in turn, one slot of a station's frames per visit, and
  // its frames carry recorded arrival times, which fusion aligns on. With many stations the
  // wall time between two visits of one station outgrows the 500 ms default, and every output
  // would be released by the idle flush instead of by the next visit's arrivals, which live
  // devices sending at their own pace never see (bench/RESULTS.md: half the throughput at 10,000).
  std::snprintf(buf, sizeof buf,
                "# Above the wall time between two visits of a station by `kneeloadctl load`, so that\n"
                "# arrivals release the reorder windows, as with live devices. Default: 500.\n"
                "idle_flush_ms = %d\n",
                kLoadIdleFlushMs);
  t += buf;
  if (raise) {
    // The tables are preallocated from these limits; the defaults fit ~800 such stations.
    std::snprintf(buf, sizeof buf,
                  "# Raised from the defaults (4096, 1024, 1024) to fit %d stations of 5 devices.\n"
                  "max_devices = %d\nmax_runners = %d\nmax_stations = %d\n",
                  stations, std::max(devices, kDefaultMaxDevices), std::max(stations, kDefaultMaxRunners),
                  std::max(stations, kDefaultMaxStations));
    t += buf;
  }
  // A runner's reorder buffer holds the window plus a frame's span of all its devices' samples
  // (README model.clock.capacity); twice that for room, as `kneeloadctl sim --print-config`.
  const double runner_rate = 2.0 * runner.insole.rate_hz + 2.0 * runner.knee.rate_hz + runner.treadmill.rate_hz;
  const double span_s = static_cast<double>(batch) / std::min(runner.insole.rate_hz, runner.knee.rate_hz);
  const double needed = 2.0 * (kReorderWindowS + span_s + 0.020) * runner_rate;
  int capacity = kDefaultReorderCapacity;
  while (capacity < needed) capacity *= 2;
  if (capacity > kDefaultReorderCapacity) {
    std::snprintf(buf, sizeof buf,
                  "\n[model.clock]\n# Room in each runner's reorder buffer for frames of %d samples.\ncapacity = %d\n",
                  batch, capacity);
    t += buf;
  }

  const std::vector<sim::DeviceDescription> devs = sim::describe_devices(runner, sim::StationIds{});
  std::string runner_body;
  runner_body += "body_mass_kg = ";
  sim::append_toml_number(runner_body, runner.runner.body_mass_kg);
  runner_body += "\nheight_m = ";
  sim::append_toml_number(runner_body, runner.runner.height_m);
  runner_body += "\n";
  // Each device's table after its id, station and runner lines: the same for every station.
  std::array<std::string, fusion::kDeviceRoleCount> device_body;
  for (const sim::DeviceDescription& d : devs) {
    std::string& b = device_body[static_cast<std::size_t>(d.role)];
    switch (d.kind) {
      case fusion::SensorKind::kInsole:
        b += "kind = \"insole\"\nside = \"";
        b += d.side == fusion::Side::kLeft ? "left" : "right";
        b += "\"\ncell_areas_cm2 = ";
        sim::append_toml_array(b, d.layout.area_cm2.data(), d.layout.cell_count);
        b += "\ncell_x = ";
        sim::append_toml_array(b, d.layout.x_norm.data(), d.layout.cell_count);
        b += "\ncell_y = ";
        sim::append_toml_array(b, d.layout.y_norm.data(), d.layout.cell_count);
        b += "\nforce_gain = ";
        sim::append_toml_number(b, d.force_gain);
        b += "\n";
        break;
      case fusion::SensorKind::kKnee:
        b += "kind = \"knee\"\nside = \"";
        b += d.side == fusion::Side::kLeft ? "left" : "right";
        b += "\"\nthigh_axis = ";
        sim::append_toml_array(b, d.axes.thigh_axis.data(), 3);
        b += "\nshank_axis = ";
        sim::append_toml_array(b, d.axes.shank_axis.data(), 3);
        b += "\n";
        break;
      case fusion::SensorKind::kTreadmill: b += "kind = \"treadmill\"\n"; break;
      case fusion::SensorKind::kConsole: break;
    }
  }
  t += "\n# Load stations: one simulated runner each (tools/sim, healthy).\n";
  for (int n = 1; n <= stations; ++n) {
    t += "\n[[runners]]\nid = \"" + load_runner_id(n) + "\"\n" + runner_body;
  }
  for (int n = 1; n <= stations; ++n) {
    const std::string station = load_station_id(n);
    const std::string runner_id = load_runner_id(n);
    for (const DeviceRole role : kLoadRoles) {
      t += "\n[[devices]]\nid = \"" + load_device_id(n, role) + "\"\nstation = \"" + station + "\"\nrunner = \"" +
           runner_id + "\"\n" + device_body[static_cast<std::size_t>(role)];
    }
  }
  return t;
}

}  // namespace kneeload::ctl
