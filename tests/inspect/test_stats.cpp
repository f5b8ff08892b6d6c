// inspect/stats: statistics, the fixed histogram buckets, NaN/Inf counted apart, all_finite.
#include "inspect/stats.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tensor/random.h"
#include "tensor/raw_ops.h"
#include "tensor/tensor.h"

using namespace gs;
using namespace gs::inspect;

TEST(Stats, MomentsMinMaxZeros) {
  Tensor t = from_vector<float>({0, 0, 1, -2, 3, 4}, {2, 3});
  TensorStats s = tensor_stats(t);
  EXPECT_EQ(s.count, 6);
  EXPECT_EQ(s.zeros, 2);
  EXPECT_DOUBLE_EQ(s.mean, 1.0);
  EXPECT_NEAR(s.std, std::sqrt((1 + 1 + 0 + 9 + 4 + 9) / 6.0), 1e-12);
  EXPECT_EQ(s.min, -2);
  EXPECT_EQ(s.max, 4);
  EXPECT_EQ(s.max_abs, 4);
  EXPECT_NEAR(s.norm, std::sqrt(30.0), 1e-12);
  EXPECT_NEAR(s.fraction_zero(), 2.0 / 6, 1e-12);
}

TEST(Stats, BucketEdgesAreFixedBinaryOctaves) {
  const auto& edges = histogram_upper_edges();
  EXPECT_EQ(edges.size(), size_t(kHistBuckets));
  for (int i = 1; i < kHistBuckets; ++i) EXPECT_LT(edges[i - 1], edges[i]) << i;
  EXPECT_EQ(histogram_bucket(0.0), kZeroBucket);
  EXPECT_EQ(histogram_bucket(1e-9), kZeroBucket);
  EXPECT_EQ(histogram_bucket(1.0), kZeroBucket + 1 + 24);   // [1, 2)
  EXPECT_EQ(histogram_bucket(1.999), kZeroBucket + 1 + 24);
  EXPECT_EQ(histogram_bucket(2.0), kZeroBucket + 1 + 25);
  EXPECT_EQ(histogram_bucket(-1.0), kZeroBucket - 1 - 24);  // (-2, -1]
  EXPECT_EQ(histogram_bucket(1e30), kHistBuckets - 1);
  EXPECT_EQ(histogram_bucket(-1e30), 0);
  // Every value lies at or below its bucket's upper edge and above the previous one.
  for (double v : {-70000.0, -3.5, -1e-6, 1e-7, 0.3, 1.0, 5.0, 40000.0, 70000.0}) {
    int b = histogram_bucket(v);
    EXPECT_LE(v, edges[b]) << v;
    if (b > 0) {
      EXPECT_GE(v, edges[b - 1]) << v;
    }
  }
}

TEST(Stats, F32BitsAndF64FrexpAgree) {
  std::vector<double> values{0.0, -0.0, 3e-8, 6e-8, 1.0, -1.0, 0.75, -0.75, 65535.0, 65536.0, -65536.0, 1e-3, -123.0};
  Tensor f = from_vector<float>(std::vector<float>(values.begin(), values.end()), {int64_t(values.size())});
  Tensor d = from_vector<double>(values, {int64_t(values.size())});
  EXPECT_EQ(tensor_stats(f).histogram, tensor_stats(d).histogram);
}

TEST(Stats, NonFiniteCountedApartNeverCrash) {
  Tensor t = from_vector<float>({NAN, INFINITY, -INFINITY, 1.0f, NAN}, {5});
  TensorStats s = tensor_stats(t);
  EXPECT_EQ(s.nan, 2);
  EXPECT_EQ(s.pos_inf, 1);
  EXPECT_EQ(s.neg_inf, 1);
  EXPECT_EQ(s.finite, 1);
  EXPECT_EQ(s.mean, 1.0);
  int64_t in_buckets = 0;
  for (auto c : s.histogram) in_buckets += c;
  EXPECT_EQ(in_buckets, 1);
  TensorStats all_nan = tensor_stats(from_vector<float>({NAN, NAN}, {2}));
  EXPECT_EQ(all_nan.nan, 2);
  EXPECT_EQ(all_nan.mean, 0);
  for (auto c : all_nan.histogram) EXPECT_EQ(c, 0);
}

TEST(Stats, AllFiniteFindsOneBadElement) {
  std::vector<float> v(1001, 1.5f);
  EXPECT_TRUE(all_finite(from_vector<float>(v, {1001})));
  v[777] = NAN;
  EXPECT_FALSE(all_finite(from_vector<float>(v, {1001})));
  v[777] = -INFINITY;
  EXPECT_FALSE(all_finite(from_vector<float>(v, {1001})));
  EXPECT_FALSE(all_finite(from_vector<double>({0.0, INFINITY}, {2})));
  EXPECT_TRUE(all_finite(from_vector<double>({0.0, 1e300}, {2})));
}

TEST(Stats, StridedViewsAreRead) {
  Tensor t = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor tt = raw::transpose(t, 0, 1);
  EXPECT_EQ(tensor_stats(tt).sum, 21);
}

TEST(Stats, ChunkedFastPathMatchesTheGeneralPath) {
  // > 3 chunks of 2^16; a NaN in one block, +Inf/-Inf and a huge finite value sharing another
  // (those blocks are redone by the general path), the other blocks finite (one read).
  Generator g(11);
  Tensor f = randn({200003}, {}, &g);
  f.data<float>()[70000] = NAN;
  f.data<float>()[5] = 0.0f;
  f.data<float>()[140032] = INFINITY;
  f.data<float>()[140033] = 1e25f;
  f.data<float>()[140287] = -INFINITY;
  Tensor d = raw::to_dtype(f, DType::F64);
  TensorStats a = tensor_stats(f), b = tensor_stats(d);
  EXPECT_EQ(a.histogram, b.histogram);
  EXPECT_EQ(a.nan, 1);
  EXPECT_EQ(a.pos_inf, 1);
  EXPECT_EQ(a.neg_inf, 1);
  EXPECT_EQ(a.max, 1e25f);
  EXPECT_EQ(a.zeros, b.zeros);
  EXPECT_EQ(a.min, b.min);
  EXPECT_EQ(a.max, b.max);
  EXPECT_NEAR(a.sum, b.sum, 1e-6 * std::sqrt(b.sum_squares));
  EXPECT_NEAR(a.sum_squares, b.sum_squares, 1e-6 * b.sum_squares);  // f32 partials of 16 values
}

TEST(Stats, HugeFiniteValuesDoNotOverflowTheSums) {
  std::vector<float> v(1024, 3e30f);
  v[7] = -3e30f;
  TensorStats s = tensor_stats(from_vector<float>(v, {1024}));
  EXPECT_EQ(s.non_finite(), 0);
  EXPECT_TRUE(std::isfinite(s.std) && std::isfinite(s.norm)) << s.str();
  EXPECT_NEAR(s.norm, 3e30 * std::sqrt(1024.0), 1e25);
}

TEST(Stats, HistogramsOfSuccessiveTensorsDoNotMix) {
  // The f32 path keeps per-thread pair tables between calls and clears only the cells it used:
  // tensors of very different ranges, one after the other, must each match the f64 path.
  Generator g(5);
  for (double scale : {1.0, 1e-6, 3e4, 1.0, 1e-3}) {
    Tensor f = raw::binary(raw::BinaryOp::Mul, randn({3 * 65536 + 517}, {}, &g), full({1}, scale));
    Tensor d = raw::to_dtype(f, DType::F64);
    TensorStats a = tensor_stats(f), b = tensor_stats(d);
    EXPECT_EQ(a.histogram, b.histogram) << "scale " << scale;
    EXPECT_EQ(a.min, b.min);
    EXPECT_EQ(a.max, b.max);
  }
}
