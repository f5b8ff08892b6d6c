// The strided CPU paths against naive loops: coalesce_dims, broadcast binaries and copies of
// permuted, sliced and expanded views (whose dims are merged into long rows), and reductions over
// every subset of dims (split into blocks when the reduced dims are not adjacent).
#include <gtest/gtest.h>

#include <functional>

#include "tensor/random.h"
#include "tensor/raw_ops.h"
#include "tensor/shape.h"

namespace gs {
namespace {

Tensor rand_tensor(const Shape& shape, uint64_t seed) {
  Generator g(seed);
  return randn(shape, {DType::F64}, &g);
}

// Calls fn(index) for every multi-index of shape, in row-major order.
void for_each_index(const Shape& shape, const std::function<void(const std::vector<int64_t>&)>& fn) {
  std::vector<int64_t> idx(shape.size(), 0);
  const int64_t n = shape_numel(shape);
  for (int64_t k = 0; k < n; ++k) {
    fn(idx);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

// The element of t at idx, read through t's own strides and offset (the naive way).
double at(const Tensor& t, const std::vector<int64_t>& idx) {
  const double* base = static_cast<const double*>(t.storage()->data);
  int64_t off = t.offset();
  for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * t.strides()[d];
  return base[off];
}

// Operands to test with: plain, permuted, sliced with a step, and broadcast (expanded) views.
std::vector<std::pair<std::string, Tensor>> views_of_shape(const Shape& shape, uint64_t seed) {
  std::vector<std::pair<std::string, Tensor>> out;
  out.emplace_back("contiguous", rand_tensor(shape, seed));
  Shape reversed(shape.rbegin(), shape.rend());
  std::vector<int64_t> perm;
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) perm.push_back(d);
  out.emplace_back("permuted", raw::permute(rand_tensor(reversed, seed + 1), perm));
  Shape doubled = shape;
  doubled.back() *= 2;
  out.emplace_back("sliced", raw::slice(rand_tensor(doubled, seed + 2), -1, 0, doubled.back(), 2));
  Shape ones_but_1 = shape;
  for (size_t d = 0; d < shape.size(); ++d) ones_but_1[d] = d == 1 ? shape[d] : 1;
  out.emplace_back("expanded", raw::expand(rand_tensor(ones_but_1, seed + 3), shape));
  return out;
}

TEST(CoalesceDims, MergesWhatEveryOperandStepsThroughAsOne) {
  Shape shape{2, 3, 4, 5};
  Strides a = contiguous_strides(shape), b{0, 1, 0, 0};
  coalesce_dims(shape, {&a, &b});
  EXPECT_EQ(shape, (Shape{2, 3, 20}));
  EXPECT_EQ(a, (Strides{60, 20, 1}));
  EXPECT_EQ(b, (Strides{0, 1, 0}));

  Shape s2{1, 6, 1, 7};  // size-1 dims go, then the rest is one run
  Strides c = contiguous_strides(s2);
  coalesce_dims(s2, {&c});
  EXPECT_EQ(s2, (Shape{42}));
  EXPECT_EQ(c, (Strides{1}));

  Shape s3{4, 5};  // a transposed operand merges nothing
  Strides t{1, 4}, u{5, 1};
  coalesce_dims(s3, {&t, &u});
  EXPECT_EQ(s3, (Shape{4, 5}));

  Shape s4{1, 1};  // all size 1: a 0-d run of one element
  Strides v{1, 1};
  coalesce_dims(s4, {&v});
  EXPECT_TRUE(s4.empty() && v.empty());
}

TEST(StridedKernels, BinaryAndCopyOfEveryKindOfViewMatchNaiveLoops) {
  for (const Shape& shape : {Shape{2, 3, 4, 5}, Shape{3, 1, 6}, Shape{2, 4, 1, 3, 2}}) {
    auto as = views_of_shape(shape, 10), bs = views_of_shape(shape, 20);
    for (auto& [an, a] : as) {
      Tensor copy = raw::contiguous(a);
      for_each_index(shape, [&](const std::vector<int64_t>& idx) {
        ASSERT_EQ(at(copy, idx), at(a, idx)) << an << " copy at " << shape_str(idx);
      });
      for (auto& [bn, b] : bs) {
        Tensor sum = raw::binary(raw::BinaryOp::Add, a, b), prod = raw::binary(raw::BinaryOp::Mul, a, b);
        for_each_index(shape, [&](const std::vector<int64_t>& idx) {
          ASSERT_EQ(at(sum, idx), at(a, idx) + at(b, idx)) << an << " + " << bn << " at " << shape_str(idx);
          ASSERT_EQ(at(prod, idx), at(a, idx) * at(b, idx)) << an << " * " << bn << " at " << shape_str(idx);
        });
      }
    }
    // A channel vector against the whole tensor, as the batch-norm formulas broadcast it.
    Tensor x = rand_tensor(shape, 30), per_channel = rand_tensor({shape[1]}, 31);
    Shape channel_shape(shape.size(), 1);
    channel_shape[1] = shape[1];
    Tensor scaled = raw::binary(raw::BinaryOp::Mul, x, raw::reshape(per_channel, channel_shape));
    for_each_index(shape, [&](const std::vector<int64_t>& idx) {
      ASSERT_EQ(at(scaled, idx), at(x, idx) * at(per_channel, {idx[1]})) << shape_str(idx);
    });
  }
}

TEST(StridedKernels, ReductionsOverEverySubsetOfDimsMatchNaiveLoops) {
  const Shape shape{3, 4, 2, 5};
  for (auto& [name, x] : views_of_shape(shape, 40)) {
    for (int mask = 1; mask < 16; ++mask) {
      std::vector<int64_t> dims;
      for (int d = 0; d < 4; ++d)
        if (mask & (1 << d)) dims.push_back(d);
      Shape keep = shape;
      for (int64_t d : dims) keep[d] = 1;
      const int64_t kept = shape_numel(keep);
      std::vector<double> sum(kept, 0.0), mx(kept, -1e300), mn(kept, 1e300);
      int64_t count = shape_numel(shape) / kept;
      for_each_index(shape, [&](const std::vector<int64_t>& idx) {
        int64_t k = 0;
        for (size_t d = 0; d < idx.size(); ++d) k = k * keep[d] + (keep[d] == 1 ? 0 : idx[d]);
        const double v = at(x, idx);
        sum[k] += v, mx[k] = std::max(mx[k], v), mn[k] = std::min(mn[k], v);
      });
      const std::string what = name + " over " + shape_str(dims);
      auto check = [&](raw::ReduceOp op, const std::vector<double>& expected, double tol) {
        for (bool keepdim : {true, false}) {
          Tensor r = raw::reduce(op, x, dims, keepdim);
          Shape want;
          for (size_t d = 0; d < shape.size(); ++d) {
            if (!(mask & (1 << d)))
              want.push_back(shape[d]);
            else if (keepdim)
              want.push_back(1);
          }
          ASSERT_EQ(r.shape(), want) << what;
          std::vector<double> got = r.to_vector<double>();
          for (int64_t k = 0; k < kept; ++k) ASSERT_NEAR(got[k], expected[k], tol) << what << " element " << k;
        }
      };
      std::vector<double> mean = sum;
      for (double& v : mean) v /= double(count);
      check(raw::ReduceOp::Sum, sum, 1e-12);
      check(raw::ReduceOp::Mean, mean, 1e-13);
      check(raw::ReduceOp::Max, mx, 0);
      check(raw::ReduceOp::Min, mn, 0);
    }
  }
}

}  // namespace
}  // namespace gs
