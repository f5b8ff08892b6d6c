// Philox4x32-10 of the CUDA dropout (kernels/cuda/philox.h) on the host: the known-answer
// vectors of Random123 (kat_vectors, Salmon et al. SC'11) and the dropout mask's statistics.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cuda/philox.h"

namespace gs {
namespace {
namespace kc = kernels::cuda;

void expect_kat(kc::Philox4 ctr, uint32_t k0, uint32_t k1, kc::Philox4 expected) {
  kc::Philox4 out = kc::philox4x32_10(ctr, k0, k1);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out.v[i], expected.v[i]) << "word " << i;
}

TEST(CudaPhilox, Random123KnownAnswers) {
  expect_kat({{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}});
  expect_kat({{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu,
             {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}});
  expect_kat({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u,
             {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}});
}

TEST(CudaPhilox, UniformRange) {
  EXPECT_EQ(kc::philox_uniform(0), 0.0f);
  EXPECT_LT(kc::philox_uniform(0xffffffffu), 1.0f);
  EXPECT_GT(kc::philox_uniform(0xffffffffu), 0.9999f);
}

TEST(CudaPhilox, DropoutMaskKeepsAboutOneMinusP) {
  const int64_t n = 200000;
  for (float p : {0.1f, 0.5f, 0.9f}) {
    const float scale = 1.0f / (1.0f - p);
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      float m = kc::dropout_mask_element(1234, 0, i, p, scale);
      ASSERT_TRUE(m == 0.0f || m == scale);
      kept += m != 0.0f;
    }
    // Binomial(n, 1-p): 6 standard deviations is far beyond chance for a correct generator.
    const double mean = n * (1.0 - p), sd = std::sqrt(n * p * (1.0 - p));
    EXPECT_NEAR(static_cast<double>(kept), mean, 6 * sd) << "p=" << p;
  }
}

TEST(CudaPhilox, MaskIsAFunctionOfSeedAndIndex) {
  int differ_seed = 0, differ_offset = 0;
  for (int64_t i = 0; i < 1000; ++i) {
    EXPECT_EQ(kc::dropout_mask_element(7, 0, i, 0.5f, 2.0f), kc::dropout_mask_element(7, 0, i, 0.5f, 2.0f));
    differ_seed += kc::dropout_mask_element(7, 0, i, 0.5f, 2.0f) != kc::dropout_mask_element(8, 0, i, 0.5f, 2.0f);
    differ_offset += kc::dropout_mask_element(7, 0, i, 0.5f, 2.0f) != kc::dropout_mask_element(7, 1, i, 0.5f, 2.0f);
  }
  EXPECT_GT(differ_seed, 350);  // about half should differ
  EXPECT_GT(differ_offset, 350);
}

}  // namespace
}  // namespace gs
