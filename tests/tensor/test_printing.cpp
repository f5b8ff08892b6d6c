// Printing follows torch 1.13's repr (expected strings were printed by torch itself), with
// gradscope's dtype names (dtype=f64 for torch.float64). grad_fn=<...> is checked in
// tests/autograd/test_tape.cpp (it needs the tape).
#include <sstream>

#include "tensor/raw_ops.h"
#include "tests/helpers.h"

using namespace gs;

namespace {
Tensor f32(std::vector<float> v, Shape s = {}) {
  if (s.empty() && v.size() != 1) s = {static_cast<int64_t>(v.size())};
  return from_vector<float>(v, s);
}
}  // namespace

TEST(Printing, SmallTensors) {
  EXPECT_EQ(f32({1, 2, 3}).str(), "tensor([1., 2., 3.])");
  EXPECT_EQ(f32({0.1f, 0.2f, 0.3f, 0.4f}, {2, 2}).str(), "tensor([[0.1000, 0.2000],\n        [0.3000, 0.4000]])");
  EXPECT_EQ(scalar_tensor(3).str(), "tensor(3.)");
  EXPECT_EQ(scalar_tensor(0.25).str(), "tensor(0.2500)");
  EXPECT_EQ(from_vector<double>({1.5, 2}, {2}).str(), "tensor([1.5000, 2.0000], dtype=f64)");
  EXPECT_EQ(scalar_tensor(2, {DType::F64}).str(), "tensor(2., dtype=f64)");
  EXPECT_EQ(from_vector<int64_t>({1, -2, 300}, {3}).str(), "tensor([  1,  -2, 300])");
  EXPECT_EQ(f32({-1.5f, 2.25f, 100}).str(), "tensor([ -1.5000,   2.2500, 100.0000])");
  EXPECT_EQ(zeros({2, 2}).str(), "tensor([[0., 0.],\n        [0., 0.]])");
  EXPECT_EQ(raw::reshape(arange(0, 8), {2, 2, 2}).str(),
            "tensor([[[0., 1.],\n         [2., 3.]],\n\n        [[4., 5.],\n         [6., 7.]]])");
  std::ostringstream os;
  os << f32({1, 2});
  EXPECT_EQ(os.str(), "tensor([1., 2.])");
}

TEST(Printing, ScientificAndNonFinite) {
  EXPECT_EQ(f32({1e-5f, 1}).str(), "tensor([1.0000e-05, 1.0000e+00])");
  EXPECT_EQ(f32({0.5f, 1000.5f}).str(), "tensor([5.0000e-01, 1.0005e+03])");
  EXPECT_EQ(f32({1, 1e9f}).str(), "tensor([1.0000e+00, 1.0000e+09])");
  EXPECT_EQ(f32({1, 2000}).str(), "tensor([1.0000e+00, 2.0000e+03])");
  EXPECT_EQ(f32({NAN, 1, INFINITY}).str(), "tensor([nan, 1., inf])");
  EXPECT_EQ(f32({NAN, 1.5f, -INFINITY}).str(), "tensor([   nan, 1.5000,   -inf])");
}

TEST(Printing, EmptyAndSuffixes) {
  EXPECT_EQ(zeros({0}).str(), "tensor([])");
  EXPECT_EQ(zeros({0, 3}).str(), "tensor([], size=(0, 3))");
  EXPECT_EQ(zeros({0}, {DType::I64}).str(), "tensor([], dtype=i64)");
  Tensor leaf = f32({1, 2}).set_requires_grad(true);
  EXPECT_EQ(leaf.str(), "tensor([1., 2.], requires_grad=True)");
  EXPECT_EQ(Tensor().str(), "tensor(undefined)");
}

TEST(Printing, LongRowsWrapAt80Columns) {
  EXPECT_EQ(arange(0, 30).str(),
            "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n"
            "        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27.,\n"
            "        28., 29.])");
}

TEST(Printing, LargeTensorsAreSummarised) {
  EXPECT_EQ(arange(0, 2000).str(),
            "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n"
            "        1.9990e+03])");
  std::string big2 = raw::reshape(arange(0, 2000), {40, 50}).str();
  EXPECT_EQ(big2,
            "tensor([[0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 4.7000e+01, 4.8000e+01,\n"
            "         4.9000e+01],\n"
            "        [5.0000e+01, 5.1000e+01, 5.2000e+01,  ..., 9.7000e+01, 9.8000e+01,\n"
            "         9.9000e+01],\n"
            "        [1.0000e+02, 1.0100e+02, 1.0200e+02,  ..., 1.4700e+02, 1.4800e+02,\n"
            "         1.4900e+02],\n"
            "        ...,\n"
            "        [1.8500e+03, 1.8510e+03, 1.8520e+03,  ..., 1.8970e+03, 1.8980e+03,\n"
            "         1.8990e+03],\n"
            "        [1.9000e+03, 1.9010e+03, 1.9020e+03,  ..., 1.9470e+03, 1.9480e+03,\n"
            "         1.9490e+03],\n"
            "        [1.9500e+03, 1.9510e+03, 1.9520e+03,  ..., 1.9970e+03, 1.9980e+03,\n"
            "         1.9990e+03]])");
}
