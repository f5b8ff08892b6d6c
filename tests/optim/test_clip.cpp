// Gradient clipping: by total norm (returns the pre-clip norm, scales, leaves non-finite norms
// alone unless asked to throw), by value, and grad_norm with other norm types.
#include <cmath>

#include "tensor/raw_ops.h"
#include "tests/optim/optim_test_util.h"

namespace gs::test {
namespace {

struct TwoParams {
  Tensor a = param64({0, 0}), b = param64({0});
  std::vector<Tensor> list() const { return {a, b}; }
};

TEST(ClipGradNorm, ScalesToMaxNormAndReturnsThePreClipNorm) {
  TwoParams p;
  set_grad64(p.a, {3, 4});
  set_grad64(p.b, {12});
  const double norm = optim::clip_grad_norm(p.list(), 6.5);
  EXPECT_DOUBLE_EQ(norm, 13);  // sqrt(9 + 16 + 144)
  const double coef = 6.5 / (13 + 1e-6);
  expect_values(p.a.grad(), {3 * coef, 4 * coef}, 1e-15);
  expect_values(p.b.grad(), {12 * coef}, 1e-15);
}

TEST(ClipGradNorm, ClipsJustAboveMaxNorm) {
  TwoParams p;
  set_grad64(p.a, {3, 4});
  EXPECT_DOUBLE_EQ(optim::clip_grad_norm(p.list(), 4), 5);
  expect_values(p.a.grad(), {3 * 4 / (5 + 1e-6), 4 * 4 / (5 + 1e-6)}, 1e-15);
}

TEST(ClipGradNorm, LeavesSmallGradientsAlone) {
  TwoParams p;
  set_grad64(p.a, {3, 4});
  EXPECT_DOUBLE_EQ(optim::clip_grad_norm(p.list(), 10), 5);  // b has no grad: skipped
  expect_values(p.a.grad(), {3, 4}, 0);
  EXPECT_DOUBLE_EQ(optim::clip_grad_norm({param64({1})}, 1), 0);  // no grads at all
}

TEST(ClipGradNorm, OtherNormTypes) {
  TwoParams p;
  set_grad64(p.a, {3, -4});
  set_grad64(p.b, {12});
  EXPECT_DOUBLE_EQ(optim::grad_norm(p.list(), INFINITY), 12);
  EXPECT_DOUBLE_EQ(optim::grad_norm(p.list(), 1), 19);
  EXPECT_NEAR(optim::grad_norm(p.list(), 3), std::cbrt(27 + 64 + 1728), 1e-12);
  EXPECT_DOUBLE_EQ(optim::clip_grad_norm(p.list(), 6, INFINITY), 12);
  expect_values(p.b.grad(), {12 * 6 / (12 + 1e-6)}, 1e-15);
  EXPECT_THROW_MSG(optim::grad_norm(p.list(), 0), "norm_type must be > 0");
}

TEST(ClipGradNorm, NonFiniteNormsLeaveGradientsUnchanged) {
  TwoParams p;
  set_grad64(p.a, {NAN, 1});
  set_grad64(p.b, {100});
  EXPECT_TRUE(std::isnan(optim::clip_grad_norm(p.list(), 1)));
  expect_values(p.b.grad(), {100}, 0);
  EXPECT_THROW_MSG(optim::clip_grad_norm(p.list(), 1, 2.0, true), "non-finite");
  set_grad64(p.a, {INFINITY, 1});
  EXPECT_TRUE(std::isinf(optim::clip_grad_norm(p.list(), 1)));
  expect_values(p.b.grad(), {100}, 0);
  EXPECT_TRUE(std::isinf(optim::clip_grad_norm(p.list(), 1, INFINITY)));
}

TEST(ClipGradNorm, Float32AndStridedGradients) {
  Tensor p = zeros({2, 2}).set_requires_grad(true);
  // A transposed (non-contiguous) grad is clipped in place too.
  p.set_grad(raw::transpose(from_vector(std::vector<float>{3, 0, 4, 0}, {2, 2}), 0, 1));
  EXPECT_NEAR(optim::clip_grad_norm({p}, 1), 5, 1e-6);
  auto g = raw::contiguous(p.grad()).to_vector<float>();  // [[3,4],[0,0]] / 5
  EXPECT_NEAR(g[0], 0.6f, 1e-6);
  EXPECT_NEAR(g[1], 0.8f, 1e-6);
}

TEST(ClipGradNorm, LargeGradientsInChunks) {
  const int64_t n = 100003;  // several chunks of the parallel sum, the last one partial
  Tensor p = zeros({n}).set_requires_grad(true);
  p.set_grad(full({n}, 2.0));
  EXPECT_NEAR(optim::grad_norm({p}), 2 * std::sqrt(static_cast<double>(n)), 1e-9);
}

TEST(ClipGradValue, ClampsEachElement) {
  Tensor p = param64({0, 0, 0, 0});
  set_grad64(p, {-3, 0.5, 2, NAN});
  optim::clip_grad_value({p}, 1);
  auto g = p.grad().to_vector<double>();
  EXPECT_EQ(g[0], -1);
  EXPECT_EQ(g[1], 0.5);
  EXPECT_EQ(g[2], 1);
  EXPECT_TRUE(std::isnan(g[3]));
  EXPECT_THROW_MSG(optim::clip_grad_value({p}, -1), "clip_value must be >= 0");
}

}  // namespace
}  // namespace gs::test
