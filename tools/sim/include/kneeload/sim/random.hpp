// Deterministic random numbers for the simulator (MODEL.md §10: same seed, same stream).
//
// The standard library's distributions are implementation-defined (std::normal_distribution may
// give different numbers on another standard library), so everything here is written out:
// splitmix64 for seeding and hashing, xoshiro256** for sequential draws, Box–Muller for normals.
// Thread ownership: a Xoshiro256 belongs to one thread; the hash functions are pure.
#pragma once

#include <array>
#include <cstdint>

namespace kneeload::sim {

// splitmix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A key for an independent stream: the same (parent, tag) always gives the same key.
constexpr std::uint64_t derive_key(std::uint64_t parent, std::uint64_t tag) {
  return mix64(parent ^ mix64(tag + 0x632BE59BD9B4E019ull));
}

// Uniform in [0, 1) from the top 53 bits.
constexpr double to_unit(std::uint64_t bits) {
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

// Counter-based ("stateless") draws: the value depends only on (key, counter), so a sample that
// is rendered twice (a duplicated frame) or out of order gets bit-identical noise.
constexpr std::uint64_t hash_bits(std::uint64_t key, std::uint64_t counter) {
  return mix64(key ^ mix64(counter));
}
double hashed_uniform(std::uint64_t key, std::uint64_t counter);  // [0, 1)
// Two independent standard normals from one Box–Muller transform of two hashed uniforms.
void hashed_normal_pair(std::uint64_t key, std::uint64_t counter, double& z0, double& z1);
double hashed_normal(std::uint64_t key, std::uint64_t counter);

// xoshiro256** 1.0 (Blackman & Vigna 2018), seeded through splitmix64 as its authors advise.
class Xoshiro256 {
 public:
  explicit Xoshiro256(std::uint64_t seed);
  // A generator in exactly this state (reference vectors). REQUIRES: not all zero.
  static Xoshiro256 from_state(const std::array<std::uint64_t, 4>& state);

  std::uint64_t next_bits();
  double uniform() { return to_unit(next_bits()); }                 // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal (Box–Muller; the second value of each pair is kept for the next call).
  double normal();

 private:
  Xoshiro256() = default;

  std::array<std::uint64_t, 4> s_{};
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace kneeload::sim
