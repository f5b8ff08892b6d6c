// The CUDA elementwise formulas (kernels/cuda/elementwise_ops.h), run on the host, against the
// CPU ref kernels: every unary and binary op, including the backward ones and NaN handling.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/elementwise_ops.h"

namespace gs {
namespace {
namespace kc = kernels::cuda;
using kernels::BinaryOp;
using kernels::UnaryOp;

std::vector<float> sample_values() {
  std::vector<float> v{-3.0f, -1.5f, -0.25f, 0.0f, 0.3f, 1.0f, 2.5f, std::numeric_limits<float>::quiet_NaN()};
  for (int i = 0; i < 40; ++i) v.push_back(-4.0f + 0.2f * static_cast<float>(i));
  return v;
}

void expect_same(float got, float expected, const char* op, float x) {
  if (std::isnan(expected)) {
    EXPECT_TRUE(std::isnan(got)) << op << "(" << x << ")";
  } else if (std::isinf(expected)) {
    EXPECT_EQ(got, expected) << op << "(" << x << ")";
  } else {
    EXPECT_NEAR(got, expected, 2e-6 * (1 + std::abs(expected))) << op << "(" << x << ")";
  }
}

TEST(CudaElementwise, UnaryFormulasMatchRef) {
  const auto x = sample_values();
  const int64_t n = static_cast<int64_t>(x.size());
  for (int k = 0; k <= static_cast<int>(UnaryOp::Copy); ++k) {
    const auto op = static_cast<UnaryOp>(k);
    const double alpha = op == UnaryOp::PowScalar ? 2.0 : -0.5, beta = 0.75;
    std::vector<float> expected(x.size());
    kernels::unary_table<float>().get("ref")(op, x.data(), expected.data(), n, alpha, beta);
    for (size_t i = 0; i < x.size(); ++i)
      expect_same(kc::unary_apply(op, x[i], static_cast<float>(alpha), static_cast<float>(beta)), expected[i],
                  kernels::unary_op_name(op), x[i]);
  }
}

TEST(CudaElementwise, BinaryFormulasMatchRef) {
  const auto x = sample_values();
  std::vector<float> y(x.rbegin(), x.rend());
  for (auto& v : y) v = std::isnan(v) ? v : std::abs(v) + 0.5f;  // positive: Pow and Div stay finite
  const int64_t shape[1] = {static_cast<int64_t>(x.size())}, strides[1] = {1};
  for (int k = 0; k <= static_cast<int>(BinaryOp::ClampBackward); ++k) {
    const auto op = static_cast<BinaryOp>(k);
    std::vector<float> expected(x.size());
    kernels::binary_table<float>().get("ref")(op, x.data(), strides, y.data(), strides, expected.data(), shape, 1, -0.5,
                                              0.75);
    for (size_t i = 0; i < x.size(); ++i)
      expect_same(kc::binary_apply(op, x[i], y[i], -0.5f, 0.75f), expected[i], kernels::binary_op_name(op), x[i]);
  }
}

}  // namespace
}  // namespace gs
