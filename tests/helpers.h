// One helper per kind of check, so an op's test is one or two lines:
//   EXPECT_GRADCHECK(fn, {x, y});                  // f64 central differences
//   EXPECT_THROW_MSG(gs::reshape(x, {5}), "reshape");  // error text names the op
//   expect_close(a, b, 1e-6);                      // elementwise, with the worst index
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "autograd/collective.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "tensor/random.h"
#include "tensor/raw_ops.h"

namespace gs::test {

// A random f64 leaf that requires grad; values in [lo, hi] kept at least `gap` from 0 when
// the op has a kink there (relu, abs, max ties are checked separately and honestly).
inline Tensor rand64(const Shape& shape, uint64_t seed, double lo = -2, double hi = 2, double gap = 0.0) {
  Generator g(seed);
  Tensor t = empty(shape, {DType::F64});
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = lo + (hi - lo) * g.uniform();
    if (gap > 0 && std::abs(v) < gap) v = v < 0 ? -gap - g.uniform() * gap : gap + g.uniform() * gap;
    p[i] = v;
  }
  return t.set_requires_grad(true);
}

// A non-contiguous f64 leaf of `shape`: the transpose of a random [shape[1], shape[0], ...] leaf.
inline Tensor transposed64(const Shape& shape, uint64_t seed, double lo = -2, double hi = 2, double gap = 0.0) {
  Shape stored = shape;
  std::swap(stored[0], stored[1]);
  Tensor t = raw::transpose(rand64(stored, seed, lo, hi, gap).detach(), 0, 1);
  return t.set_requires_grad(true);
}

// A non-contiguous f64 leaf of `shape` that is every other element of dim 0 of a bigger leaf.
inline Tensor strided64(const Shape& shape, uint64_t seed, double lo = -2, double hi = 2, double gap = 0.0) {
  Shape stored = shape;
  stored[0] = 2 * shape[0];
  Tensor t = raw::slice(rand64(stored, seed, lo, hi, gap).detach(), 0, 1, stored[0], 2);
  return t.set_requires_grad(true);
}

// A group of `size` processes that all hold this process's values, for the ops across processes
// in one process: its sums multiply by size. `calls` counts the all-reduces.
class MirrorGroup : public Collective {
 public:
  explicit MirrorGroup(int size) : size_(size) {}
  int size() const override { return size_; }
  void all_reduce_sum(const std::vector<Tensor>& tensors) override {
    for (const Tensor& t : tensors) raw::copy_(t, raw::binary_scalar(raw::BinaryOp::Mul, t, double(size_)));
    ++calls;
  }
  void all_reduce_sum(std::vector<double>& values) override {
    for (double& v : values) v *= size_;
    ++calls;
  }
  int calls = 0;

 private:
  int size_;
};

// First derivatives, and then (unless first_order_only) the create_graph gradients too.
inline ::testing::AssertionResult gradcheck_ok(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                                               GradcheckOptions opt = {}, bool first_order_only = false) {
  GradcheckResult r = gradcheck(fn, inputs, opt);
  if (!r.ok) return ::testing::AssertionFailure() << r.message;
  if (first_order_only) return ::testing::AssertionSuccess();
  r = gradgradcheck(fn, inputs, opt);
  if (!r.ok) return ::testing::AssertionFailure() << r.message;
  return ::testing::AssertionSuccess();
}
inline ::testing::AssertionResult first_order_gradcheck_ok(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                                                           GradcheckOptions opt = {}) {
  return gradcheck_ok(fn, inputs, opt, true);
}

inline void expect_close(const Tensor& actual, const Tensor& expected, double tol, const std::string& what = "") {
  ASSERT_EQ(shape_str(actual.shape()), shape_str(expected.shape())) << what;
  auto a = actual.to_vector<double>(), e = expected.to_vector<double>();
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double err = std::abs(a[i] - e[i]);
    if (std::isnan(a[i]) != std::isnan(e[i])) err = INFINITY;
    if (err > worst) {
      worst = err;
      at = i;
    }
  }
  EXPECT_LE(worst, tol) << what << " worst element " << at << ": " << a[at] << " vs " << e[at];
}

}  // namespace gs::test

// gradcheck and gradgradcheck (f64 central differences of the gradients and of the create_graph
// gradients); EXPECT_FIRST_ORDER_GRADCHECK for an op without a double backward.
#define EXPECT_GRADCHECK(fn, ...) EXPECT_TRUE(::gs::test::gradcheck_ok(fn, __VA_ARGS__))
#define EXPECT_FIRST_ORDER_GRADCHECK(fn, ...) EXPECT_TRUE(::gs::test::first_order_gradcheck_ok(fn, __VA_ARGS__))

// Expects `stmt` to throw an exception whose what() contains `text`.
#define EXPECT_THROW_MSG(stmt, text)                                              \
  do {                                                                            \
    bool thrown_ = false;                                                         \
    try {                                                                         \
      stmt;                                                                       \
    } catch (const std::exception& e_) {                                          \
      thrown_ = true;                                                             \
      EXPECT_NE(std::string(e_.what()).find(text), std::string::npos)             \
          << "message was: " << e_.what() << "\nexpected to contain: " << (text); \
    }                                                                             \
    EXPECT_TRUE(thrown_) << #stmt " did not throw";                               \
  } while (0)
