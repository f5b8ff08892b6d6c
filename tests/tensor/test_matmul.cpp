// raw::matmul's batched paths against a naive triple loop with broadcasting written here:
// contiguous, transposed and strided batches, batch dims that broadcast (operand offsets that
// are not one fixed step apart), a batch against one matrix (one GEMM over all rows), empty
// batches and empty matrices, f32 and f64, with every CPU GEMM variant.
#include <gtest/gtest.h>

#include "kernels/cpu/gemm.h"
#include "kernels/registry.h"
#include "tensor/raw_ops.h"
#include "tests/helpers.h"

namespace gs::test {
namespace {

Tensor random_tensor(const Shape& shape, uint64_t seed, DType dtype) {
  Generator g(seed);
  return randn(shape, {dtype}, &g);
}

// out[batch..., m, n] = sum_k a[..., m, k] b[..., k, n], in double, batch dims broadcast from
// the right (a size-1 dim repeats).
Tensor naive_matmul(const Tensor& a, const Tensor& b) {
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  const size_t nd = std::max(ba.size(), bb.size());
  ba.insert(ba.begin(), nd - ba.size(), 1);
  bb.insert(bb.begin(), nd - bb.size(), 1);
  Shape batch(nd);
  for (size_t d = 0; d < nd; ++d) batch[d] = ba[d] == 1 ? bb[d] : ba[d];
  const std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
  Shape out_shape = batch;
  out_shape.insert(out_shape.end(), {M, N});
  std::vector<double> out(static_cast<size_t>(shape_numel(out_shape)));
  for (int64_t i = 0; i < shape_numel(batch); ++i) {
    int64_t rest = i, ia = 0, ib = 0, step_a = 1, step_b = 1;
    for (int d = static_cast<int>(nd) - 1; d >= 0; --d) {
      const int64_t idx = rest % batch[d];
      rest /= batch[d];
      ia += (ba[d] == 1 ? 0 : idx) * step_a;
      ib += (bb[d] == 1 ? 0 : idx) * step_b;
      step_a *= ba[d];
      step_b *= bb[d];
    }
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += av[(ia * M + m) * K + k] * bv[(ib * K + k) * N + n];
        out[(i * M + m) * N + n] = acc;
      }
  }
  return from_vector(out, out_shape, {DType::F64});
}

struct Case {
  std::string what;
  Tensor a, b;
};

std::vector<Case> cases(DType dt) {
  auto r = [dt](const Shape& s, uint64_t seed) { return random_tensor(s, seed, dt); };
  return {
      {"2-d", r({5, 7}, 1), r({7, 3}, 2)},
      {"contiguous batch", r({3, 4, 5}, 3), r({3, 5, 2}, 4)},
      {"transposed matrices", raw::transpose(r({3, 5, 4}, 5), -1, -2), raw::transpose(r({3, 2, 5}, 6), -1, -2)},
      {"permuted batch dims", raw::permute(r({4, 2, 3, 5}, 7), {1, 0, 2, 3}), r({2, 4, 5, 3}, 8)},
      {"every other batch entry", raw::slice(r({6, 3, 4}, 9), 0, 0, 6, 2), r({3, 4, 2}, 10)},
      {"broadcast both ways", r({2, 1, 3, 4}, 11), r({1, 3, 4, 5}, 12)},
      {"broadcast over more dims", r({3, 4}, 13), r({2, 3, 4, 2}, 14)},
      {"batch against one matrix", r({2, 3, 4, 5}, 15), r({5, 6}, 16)},
      {"transposed batch against one matrix", raw::transpose(r({2, 5, 4}, 17), -1, -2), r({5, 3}, 18)},
      {"batch against a transposed matrix", r({3, 4, 5}, 19), raw::transpose(r({6, 5}, 20), 0, 1)},
      {"empty batch", r({0, 3, 4}, 21), r({4, 5}, 22)},
      {"empty batch both", r({0, 3, 4}, 23), r({0, 4, 5}, 24)},
      {"no rows", r({2, 0, 4}, 25), r({2, 4, 5}, 26)},
      {"no inner dim", r({2, 3, 0}, 27), r({2, 0, 5}, 28)},
      {"no inner dim against one matrix", r({2, 3, 0}, 29), r({0, 5}, 30)},
  };
}

TEST(Matmul, BatchedAndBroadcastMatchTheNaiveLoopOnEveryVariant) {
  for (DType dt : {DType::F32, DType::F64}) {
    const double tol = dt == DType::F32 ? 1e-4 : 1e-12;
    const auto variants =
        dt == DType::F32 ? kernels::gemm_table<float>().names() : kernels::gemm_table<double>().names();
    for (const auto& variant : variants) {
      kernels::select_variant("matmul", variant);
      for (const Case& c : cases(dt)) {
        const std::string what = c.what + " (" + dtype_name(dt) + ", " + variant + ")";
        Tensor got = raw::matmul(c.a, c.b);
        EXPECT_EQ(got.dtype(), dt) << what;
        EXPECT_TRUE(got.is_contiguous()) << what;
        expect_close(got, naive_matmul(c.a, c.b), tol, what);
      }
    }
    kernels::select_variant("matmul", "");
  }
}

// A batch big enough for the parallel loop over products, and products big enough for the
// one-after-another loop (each product then uses the variant's threads).
TEST(Matmul, ManySmallAndFewLargeProducts) {
  Tensor a = random_tensor({64, 9, 7}, 31, DType::F32), b = random_tensor({64, 7, 11}, 32, DType::F32);
  expect_close(raw::matmul(a, b), naive_matmul(a, b), 1e-4, "64 small");
  Tensor c = random_tensor({2, 70, 80}, 33, DType::F32), d = random_tensor({2, 80, 60}, 34, DType::F32);
  expect_close(raw::matmul(c, d), naive_matmul(c, d), 1e-3, "2 large");
}

}  // namespace
}  // namespace gs::test
