// MixUp and CutMix of a batch (io/mix.h) against their definitions written out per pixel, and the
// Beta sampler against the distribution's moments.
#include <cmath>

#include "io/mix.h"
#include "tests/helpers.h"

namespace gs::io {
namespace {

// Image n, pixel (c, y, x) = n + (100 c + 10 y + x) / 1000: which image a pixel came from shows.
Tensor batch_of(int64_t n, int64_t c, int64_t h, int64_t w) {
  Tensor t = empty({n, c, h, w});
  float* p = t.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) *p++ = float(i) + float(100 * k + 10 * y + x) / 1000.0f;
  return t;
}

TEST(Mix, BetaSamplesHaveTheDistributionsMoments) {
  for (auto [a, b] : {std::pair{0.2, 0.2}, {1.0, 1.0}, {3.0, 3.0}, {0.5, 2.0}}) {
    Generator gen(11);
    const int n = 40000;
    double sum = 0, sum_sq = 0;
    for (int i = 0; i < n; ++i) {
      const double v = sample_beta(a, b, gen);
      ASSERT_TRUE(v >= 0 && v <= 1) << v;
      sum += v, sum_sq += v * v;
    }
    const double mean = sum / n, var = sum_sq / n - mean * mean;
    const double true_mean = a / (a + b), true_var = a * b / ((a + b) * (a + b) * (a + b + 1));
    EXPECT_NEAR(mean, true_mean, 4 * std::sqrt(true_var / n)) << a << ", " << b;
    EXPECT_NEAR(var, true_var, 0.03 * true_var + 1e-4) << a << ", " << b;
  }
  Generator gen(1);
  EXPECT_THROW_MSG(sample_beta(0, 1, gen), "sample_beta: parameters must be > 0");
}

TEST(Mix, MixupIsTheConvexCombinationWithThePreviousImage) {
  Tensor images = batch_of(4, 2, 3, 5), labels = from_vector<int64_t>({0, 2, 1, 2}, {4});
  Generator gen(5);
  MixedBatch m = mix_batch(images, labels, 3, {.mixup_alpha = 0.4}, gen);
  ASSERT_EQ(m.kind, "mixup");
  const double l = m.lambda;
  ASSERT_TRUE(l > 0 && l < 1) << l;
  auto x = images.to_vector<float>(), got = m.images.to_vector<float>();
  const int64_t image = 2 * 3 * 5;
  for (int64_t n = 0; n < 4; ++n) {
    const int64_t prev = (n + 3) % 4;
    for (int64_t i = 0; i < image; ++i)
      ASSERT_NEAR(got[n * image + i], l * x[n * image + i] + (1 - l) * x[prev * image + i], 1e-6) << n << " " << i;
  }
  // Targets: lambda on the own label, 1 - lambda on the previous image's (image 0 takes image 3's).
  std::vector<double> expected = {l, 0, 1 - l, 1 - l, 0, l, 0, l, 1 - l, 0, 1 - l, l};
  test::expect_close(m.targets, from_vector<double>(expected, {4, 3}), 1e-6);
  // The same seed mixes the same way.
  Generator again(5);
  test::expect_close(mix_batch(images, labels, 3, {.mixup_alpha = 0.4}, again).images, m.images, 0);
}

TEST(Mix, CutmixPastesOneBoxAndWeighsTheLabelsByItsArea) {
  Tensor images = batch_of(3, 2, 8, 10), labels = from_vector<int64_t>({1, 0, 1}, {3});
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Generator gen(seed);
    MixedBatch m = mix_batch(images, labels, 2, {.cutmix_alpha = 1.0}, gen);
    ASSERT_EQ(m.kind, "cutmix");
    auto got = m.images.to_vector<float>();
    // Every pixel is its own image's or the previous one's, the same box in every image and channel.
    int64_t pasted = 0;
    for (int64_t n = 0; n < 3; ++n) {
      for (int64_t k = 0; k < 2; ++k) {
        for (int64_t i = 0; i < 80; ++i) {
          const float v = got[(n * 2 + k) * 80 + i];
          const int64_t from = int64_t(std::floor(v));
          ASSERT_TRUE(from == n || from == (n + 2) % 3) << v;
          ASSERT_EQ(from != n, int64_t(std::floor(got[k * 80 + i])) != 0) << "not one box";
          ASSERT_NEAR(v - float(from), float(100 * k + 10 * (i / 10) + i % 10) / 1000.0f, 1e-6);
          if (n == 0 && k == 0) pasted += from != n;
        }
      }
    }
    EXPECT_DOUBLE_EQ(m.lambda, 1.0 - double(pasted) / 80.0) << "seed " << seed;
    const double l = m.lambda;
    // Image 0 (label 1) takes image 2's box (label 1 too), 1 (label 0) image 0's, 2 (label 1) image 1's.
    test::expect_close(m.targets, from_vector<double>({0, 1, l, 1 - l, 1 - l, l}, {3, 2}), 1e-6);
  }
}

TEST(Mix, BothTakeEachKindAboutHalfTheTimeAndBadInputIsAnError) {
  Tensor images = batch_of(2, 1, 4, 4), labels = from_vector<int64_t>({0, 1}, {2});
  int cutmix = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    Generator gen(mix_seed(3, 1, int64_t(seed)));
    cutmix += mix_batch(images, labels, 2, {.mixup_alpha = 0.2, .cutmix_alpha = 1.0}, gen).kind == "cutmix";
  }
  EXPECT_GT(cutmix, 160);
  EXPECT_LT(cutmix, 240);
  Generator gen(1);
  EXPECT_THROW_MSG(mix_batch(images, labels, 2, {}, gen), "mix_batch: need mixup_alpha or cutmix_alpha > 0");
  EXPECT_THROW_MSG(mix_batch(images, from_vector<int64_t>({0, 2}, {2}), 2, {.mixup_alpha = 1}, gen),
                   "mix_batch: label 2 is out of range for 2 classes");
  EXPECT_THROW_MSG(mix_batch(zeros({2, 4, 4}), labels, 2, {.mixup_alpha = 1}, gen),
                   "mix_batch: images must be f32 (N, C, H, W) on the CPU");
}

}  // namespace
}  // namespace gs::io
