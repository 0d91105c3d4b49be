// Box–Muller with a guard against log(0): the uniform used in the logarithm is (0, 1].
#include "kneeload/sim/random.hpp"

#include <cmath>
#include <numbers>

namespace kneeload::sim {
namespace {

constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void box_muller(double u_open, double u2, double& z0, double& z1) {
  const double r = std::sqrt(-2.0 * std::log(u_open));
  const double a = 2.0 * std::numbers::pi * u2;
  z0 = r * std::cos(a);
  z1 = r * std::sin(a);
}

}  // namespace

double hashed_uniform(std::uint64_t key, std::uint64_t counter) {
  return to_unit(hash_bits(key, counter));
}

void hashed_normal_pair(std::uint64_t key, std::uint64_t counter, double& z0, double& z1) {
  const std::uint64_t base = counter * 2;
  const double u1 = 1.0 - to_unit(hash_bits(key, base));
  const double u2 = to_unit(hash_bits(key, base + 1));
  box_muller(u1, u2, z0, z1);
}

double hashed_normal(std::uint64_t key, std::uint64_t counter) {
  double z0 = 0.0;
  double z1 = 0.0;
  hashed_normal_pair(key, counter, z0, z1);
  return z0;
}

Xoshiro256::Xoshiro256(std::uint64_t seed) {
  std::uint64_t x = seed;
  for (std::uint64_t& s : s_) {
    s = mix64(x);
    x += 0x9E3779B97F4A7C15ull;
  }
}

Xoshiro256 Xoshiro256::from_state(const std::array<std::uint64_t, 4>& state) {
  Xoshiro256 g;
  g.s_ = state;
  return g;
}

std::uint64_t Xoshiro256::next_bits() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Xoshiro256::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  double z0 = 0.0;
  box_muller(u1, u2, z0, spare_);
  has_spare_ = true;
  return z0;
}

}  // namespace kneeload::sim
