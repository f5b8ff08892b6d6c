// Broadcasting rules and their error text, cat, dtype conversion and copy_ (stack is an
// autograd composite: tests/autograd/test_shape_values.cpp).
#include "tensor/raw_ops.h"
#include "tests/helpers.h"

using namespace gs;

TEST(Broadcast, Shapes) {
  EXPECT_EQ(broadcast_shapes("op", {3, 1}, {1, 4}), (Shape{3, 4}));
  EXPECT_EQ(broadcast_shapes("op", {2, 3, 4}, {4}), (Shape{2, 3, 4}));
  EXPECT_EQ(broadcast_shapes("op", {}, {2, 2}), (Shape{2, 2}));
  EXPECT_EQ(broadcast_shapes("op", {5, 1, 0}, {1, 3, 1}), (Shape{5, 3, 0}));
  EXPECT_THROW_MSG(broadcast_shapes("add", {2, 3}, {4}),
                   "add: shapes [2,3] and [4] cannot be broadcast (dim 1: 3 vs 4)");
  EXPECT_THROW_MSG(raw::binary(raw::BinaryOp::Mul, zeros({2, 3}), zeros({3, 2})), "mul: shapes [2,3] and [3,2]");
  EXPECT_EQ(broadcast_strides({3, 1}, {1, 1}, {2, 3, 4}), (Strides{0, 1, 0}));
}

TEST(Broadcast, BinaryValues) {
  Tensor col = from_vector<float>({1, 2, 3}, {3, 1});
  Tensor row = from_vector<float>({10, 20}, {2});
  Tensor sum = raw::binary(raw::BinaryOp::Add, col, row);
  EXPECT_EQ(sum.shape(), (Shape{3, 2}));
  EXPECT_EQ(sum.to_vector<float>(), (std::vector<float>{11, 21, 12, 22, 13, 23}));
  Tensor s = raw::binary_scalar(raw::BinaryOp::Sub, row, 1.0);
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{9, 19}));
  // A transposed (non-contiguous) operand gives the same values as its contiguous copy.
  Tensor m = raw::reshape(arange(0, 6), {2, 3});
  Tensor t = raw::transpose(m, 0, 1);
  test::expect_close(raw::binary(raw::BinaryOp::Mul, t, t),
                     raw::binary(raw::BinaryOp::Mul, raw::contiguous(t), raw::contiguous(t)), 0);
  // In-place add broadcasts the source only.
  Tensor acc = zeros({2, 3});
  raw::add_(acc, from_vector<float>({1, 2, 3}, {3}), 2.0);
  EXPECT_EQ(acc.to_vector<float>(), (std::vector<float>{2, 4, 6, 2, 4, 6}));
  EXPECT_THROW_MSG(raw::add_(zeros({3}), zeros({2, 3})), "add_: [2,3] does not broadcast to the destination [3]");
}

TEST(Broadcast, Where) {
  Tensor cond = from_vector<int64_t>({1, 0, 1}, {3});
  Tensor out = raw::where(cond, from_vector<float>({1, 2, 3}, {3}), scalar_tensor(-1));
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{1, -1, 3}));
}

TEST(CatStack, Values) {
  Tensor a = raw::reshape(arange(0, 4), {2, 2}), b = raw::reshape(arange(4, 10), {2, 3});
  Tensor c = raw::cat({a, b}, 1);
  EXPECT_EQ(c.shape(), (Shape{2, 5}));
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{0, 1, 4, 5, 6, 2, 3, 7, 8, 9}));
  Tensor r = raw::cat({a, raw::transpose(a, 0, 1)}, 0);
  EXPECT_EQ(r.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 0, 2, 1, 3}));
  EXPECT_EQ(raw::cat({a, zeros({0, 2})}, 0).shape(), (Shape{2, 2}));
}

TEST(CatStack, Errors) {
  Tensor a = zeros({2, 2});
  EXPECT_THROW_MSG(raw::cat({a, zeros({3, 3})}, 0),
                   "cat: tensor 1 has shape [3,3], which does not match [2,2] outside dim 0");
  EXPECT_THROW_MSG(raw::cat({a, zeros({2})}, 0), "cat: tensor 1 has 1 dims");
  EXPECT_THROW_MSG(raw::cat({a, zeros({2, 2}, {DType::F64})}, 0), "cat: dtype mismatch");
  EXPECT_THROW_MSG(raw::cat({}, 0), "cat: expected at least one tensor");
  EXPECT_THROW_MSG(raw::cat({scalar_tensor(1), scalar_tensor(2)}, 0), "cat: zero-dimensional");
}

TEST(Dtype, ToDtypeAndCopy) {
  Tensor f = from_vector<float>({1.75f, -2.5f, 3}, {3});
  Tensor d = raw::to_dtype(f, DType::F64);
  EXPECT_EQ(d.dtype(), DType::F64);
  EXPECT_EQ(d.to_vector<double>(), (std::vector<double>{1.75, -2.5, 3}));
  Tensor i = raw::to_dtype(f, DType::I64);
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{1, -2, 3}));  // truncation, as PyTorch
  EXPECT_TRUE(raw::to_dtype(f, DType::F32).is_same(f));
  Tensor back = raw::to_dtype(raw::transpose(raw::reshape(arange(0, 6, 1, {DType::I64}), {2, 3}), 0, 1), DType::F32);
  EXPECT_EQ(back.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  Tensor dst = zeros({2, 3});
  raw::copy_(dst, from_vector<double>({1, 2, 3}, {3}));
  EXPECT_EQ(dst.to_vector<float>(), (std::vector<float>{1, 2, 3, 1, 2, 3}));
  EXPECT_THROW_MSG(raw::copy_(zeros({3}), zeros({2, 3})), "copy_: source [2,3] does not broadcast to destination [3]");
}
