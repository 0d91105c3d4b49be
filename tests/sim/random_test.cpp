// The simulator's own random numbers: reference vectors, statelessness, moments.
#include "kneeload/sim/random.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

namespace kneeload::sim {
namespace {

TEST(Random, Mix64IsSplitmix64) {
  // splitmix64.c (Vigna) with seed 1234567: its first five outputs.
  const std::uint64_t expected[5] = {6457827717110365317ull, 3203168211198807973ull,
                                     9817491932198370423ull, 4593380528125082431ull,
                                     16408922859458223821ull};
  std::uint64_t x = 1234567;
  for (std::uint64_t e : expected) {
    EXPECT_EQ(mix64(x), e);
    x += 0x9E3779B97F4A7C15ull;
  }
}

TEST(Random, Xoshiro256StarStarReferenceFromState1234) {
  Xoshiro256 g = Xoshiro256::from_state({1, 2, 3, 4});
  EXPECT_EQ(g.next_bits(), 11520ull);
  EXPECT_EQ(g.next_bits(), 0ull);
  EXPECT_EQ(g.next_bits(), 1509978240ull);
  EXPECT_EQ(g.next_bits(), 1215971899390074240ull);
}

TEST(Random, SameSeedSameSequenceOtherSeedOther) {
  Xoshiro256 a(42);
  Xoshiro256 b(42);
  Xoshiro256 c(43);
  int differ = 0;
  for (int i = 0; i < 100; ++i) {
    const double x = a.normal();
    EXPECT_EQ(x, b.normal());
    if (x != c.normal()) ++differ;
  }
  EXPECT_EQ(differ, 100);
}

TEST(Random, HashedDrawsAreStateless) {
  double z0 = 0.0;
  double z1 = 0.0;
  double w0 = 0.0;
  double w1 = 0.0;
  hashed_normal_pair(7, 123456, z0, z1);
  hashed_normal_pair(7, 999, w0, w1);
  hashed_normal_pair(7, 123456, w0, w1);
  EXPECT_EQ(z0, w0);
  EXPECT_EQ(z1, w1);
  EXPECT_NE(hashed_normal(7, 1), hashed_normal(8, 1));
}

TEST(Random, NormalMomentsAndUniformRange) {
  constexpr int kN = 200000;
  Xoshiro256 g(1);
  double sum = 0.0;
  double sum2 = 0.0;
  double hsum = 0.0;
  double hsum2 = 0.0;
  for (int i = 0; i < kN; ++i) {
    const double z = g.normal();
    sum += z;
    sum2 += z * z;
    const double h = hashed_normal(99, static_cast<std::uint64_t>(i));
    hsum += h;
    hsum2 += h * h;
    const double u = g.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
  // Standard errors: mean 1/√N ≈ 0.0022, variance √(2/N) ≈ 0.0032; 5 sigma.
  EXPECT_NEAR(sum / kN, 0.0, 0.011);
  EXPECT_NEAR(sum2 / kN, 1.0, 0.016);
  EXPECT_NEAR(hsum / kN, 0.0, 0.011);
  EXPECT_NEAR(hsum2 / kN, 1.0, 0.016);
}

}  // namespace
}  // namespace kneeload::sim
