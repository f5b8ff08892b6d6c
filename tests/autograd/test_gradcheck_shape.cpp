// gradcheck (f64) of shape ops, cat/stack, gather and index_select; their forward values.
#include "tests/autograd/gradcheck_registry.h"

using namespace gs;
using namespace gs::test;
using V = std::vector<Tensor>;

GS_GRADCHECK_TEST(Reshape, ViewAndCopy) {
  EXPECT_GRADCHECK([](const V& in) { return reshape(in[0], {4, 3}); }, {rand64({3, 4}, 1)});
  EXPECT_GRADCHECK([](const V& in) { return reshape(in[0], {-1}); }, {transposed64({3, 4}, 2)});  // copies
  EXPECT_GRADCHECK([](const V& in) { return flatten(in[0], 1); }, {rand64({2, 3, 2}, 3)});
  EXPECT_GRADCHECK([](const V& in) { return view(in[0], {2, 2, 3}); }, {strided64({4, 3}, 4)});
}

GS_GRADCHECK_TEST(Permute, ThreeD) {
  EXPECT_GRADCHECK([](const V& in) { return permute(in[0], {2, 0, 1}); }, {rand64({2, 3, 4}, 1)});
  EXPECT_GRADCHECK([](const V& in) { return mul(permute(in[0], {1, 0}), 2.0); }, {transposed64({3, 4}, 2)});
}

GS_GRADCHECK_TEST(Transpose, Plain) {
  EXPECT_GRADCHECK([](const V& in) { return transpose(in[0], 0, -1); }, {rand64({2, 3, 4}, 1)});
}

GS_GRADCHECK_TEST(Slice, StepAndNarrow) {
  EXPECT_GRADCHECK([](const V& in) { return slice(in[0], 1, 1, 6, 2); }, {rand64({3, 7}, 1)});
  EXPECT_GRADCHECK([](const V& in) { return slice(in[0], 0, -2, 100); }, {transposed64({4, 3}, 2)});
  EXPECT_GRADCHECK([](const V& in) { return narrow(in[0], 1, 1, 2); }, {rand64({3, 4}, 3)});
  // Two overlapping slices of one tensor: both paths add up.
  EXPECT_GRADCHECK([](const V& in) { return add(slice(in[0], 0, 0, 3), slice(in[0], 0, 1, 4)); }, {rand64({4, 2}, 4)});
}

GS_GRADCHECK_TEST(Unsqueeze, Plain) {
  EXPECT_GRADCHECK([](const V& in) { return unsqueeze(in[0], 1); }, {transposed64({3, 2}, 1)});
}

GS_GRADCHECK_TEST(Squeeze, Plain) {
  EXPECT_GRADCHECK([](const V& in) { return squeeze(in[0], 1); }, {rand64({3, 1, 2}, 1)});
}

GS_GRADCHECK_TEST(Expand, NewAndSizeOneDims) {
  EXPECT_GRADCHECK([](const V& in) { return expand(in[0], {2, 3, 4}); }, {rand64({3, 1}, 1)});
  EXPECT_GRADCHECK([](const V& in) { return expand(in[0], {3, -1}); }, {rand64({1, 5}, 2)});
}

GS_GRADCHECK_TEST(Contiguous, FromTransposed) {
  EXPECT_GRADCHECK([](const V& in) { return contiguous(in[0]); }, {transposed64({3, 4}, 1)});
  Tensor x = rand64({2, 2}, 2);
  EXPECT_TRUE(contiguous(x).is_same(x));
}

GS_GRADCHECK_TEST(Cat, MixedInputs) {
  Tensor constant = rand64({2, 3}, 9).detach();  // needs no grad
  EXPECT_GRADCHECK(
      [constant](const V& in) {
        return cat({in[0], constant, in[1]}, 1);
      },
      {rand64({2, 2}, 1), transposed64({2, 4}, 2)});
  EXPECT_GRADCHECK([](const V& in) { return cat({in[0], in[0]}, 0); }, {rand64({2, 3}, 3)});
}

GS_GRADCHECK_TEST(Stack, Dims) {
  EXPECT_GRADCHECK([](const V& in) { return stack({in[0], in[1]}, 1); }, {rand64({2, 3}, 1), strided64({2, 3}, 2)});
  EXPECT_GRADCHECK([](const V& in) { return stack({in[0], in[0], in[0]}, -1); }, {rand64({2}, 3)});
}

GS_GRADCHECK_TEST(Gather, RepeatedIndices) {
  Tensor index = from_vector<int64_t>({0, 2, 2, 1, 1, 1, 3, 0, 3}, {3, 3});
  EXPECT_GRADCHECK([index](const V& in) { return gather(in[0], 1, index); }, {rand64({3, 4}, 1)});
  Tensor index0 = from_vector<int64_t>({2, 0, 1, 1}, {2, 2});
  EXPECT_GRADCHECK([index0](const V& in) { return gather(in[0], 0, index0); }, {transposed64({3, 2}, 2)});
  // An index smaller than the input outside dim reads (and sends gradient to) its leading part, as torch.
  Tensor small = from_vector<int64_t>({3, 0, 1, 1}, {2, 2});
  EXPECT_GRADCHECK([small](const V& in) { return gather(in[0], 1, small); }, {rand64({3, 4}, 3)});
  Tensor small0 = from_vector<int64_t>({2, 0}, {1, 2});
  EXPECT_GRADCHECK([small0](const V& in) { return gather(in[0], 0, small0); }, {strided64({3, 4}, 4)});
}

TEST(ShapeValues, GatherAndScatterAddWithASmallerIndexMatchTorch) {
  Tensor a = raw::reshape(arange(0, 12, 1, {DType::F64}), {3, 4}).set_requires_grad(true);
  Tensor g = gather(a, 1, from_vector<int64_t>({3, 0, 1, 1}, {2, 2}));
  EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{3, 0, 5, 5}));  // printed by torch 1.13
  Tensor da = grad(sum(mul(g, from_vector<double>({1, 2, 3, 4}, {2, 2}))), {a})[0];
  EXPECT_EQ(da.to_vector<double>(), (std::vector<double>{2, 0, 0, 1, 0, 7, 0, 0, 0, 0, 0, 0}));
  Tensor acc = zeros({3, 4});
  raw::scatter_add_(acc, 0, from_vector<int64_t>({2, 0}, {1, 2}), from_vector<float>({5, 6}, {1, 2}));
  EXPECT_EQ(acc.to_vector<float>(), (std::vector<float>{0, 6, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0}));
  EXPECT_THROW_MSG(gather(a, 1, zeros({4, 1}, {DType::I64})),
                   "gather: index [4,1] is larger than input [3,4] in dim 0 (outside dim 1)");
  EXPECT_THROW_MSG(raw::scatter_add_(acc, 1, zeros({4, 1}, {DType::I64}), zeros({4, 1})),
                   "scatter_add_: index [4,1] is larger than the destination [3,4] in dim 0 (outside dim 1)");
}

GS_GRADCHECK_TEST(IndexSelect, RepeatedIndices) {
  Tensor index = from_vector<int64_t>({2, 0, 2}, {3});
  EXPECT_GRADCHECK([index](const V& in) { return index_select(in[0], 0, index); }, {rand64({3, 4}, 1)});
  EXPECT_GRADCHECK([index](const V& in) { return index_select(in[0], 1, index); }, {strided64({2, 3}, 2)});
}

TEST(ShapeValues, StackCatGatherIndexSelect) {
  Tensor a = raw::reshape(arange(0, 4), {2, 2});
  Tensor s = stack({a, a, a}, 1);
  EXPECT_EQ(s.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3}));
  EXPECT_EQ(stack({scalar_tensor(1), scalar_tensor(2)}).to_vector<float>(), (std::vector<float>{1, 2}));
  EXPECT_THROW_MSG(stack({a, zeros({2, 3})}), "stack: tensor 1 has shape [2,3], tensor 0 has [2,2]");
  Tensor g = gather(a, 1, from_vector<int64_t>({1, 1, 0, 1}, {2, 2}));
  EXPECT_EQ(g.to_vector<float>(), (std::vector<float>{1, 1, 2, 3}));
  Tensor i = index_select(a, 1, from_vector<int64_t>({1, 0, 1}, {3}));
  EXPECT_EQ(i.to_vector<float>(), (std::vector<float>{1, 0, 1, 3, 2, 3}));
  EXPECT_THROW_MSG(view(raw::transpose(a, 0, 1), {4}), "view: cannot view");
  EXPECT_THROW_MSG(flatten(a, 1, 0), "flatten: start_dim 1 comes after end_dim 0");
  EXPECT_EQ(flatten(scalar_tensor(2)).shape(), (Shape{1}));
}
