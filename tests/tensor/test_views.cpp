// Views share storage: reshape (a view exactly when PyTorch's rule allows one, else a copy),
// permute/transpose/narrow/slice/unsqueeze/squeeze/expand, contiguous().
#include "tensor/raw_ops.h"
#include "tests/helpers.h"

using namespace gs;

namespace {
Tensor grid(int64_t rows, int64_t cols) { return raw::reshape(arange(0, double(rows * cols)), {rows, cols}); }
bool shares(const Tensor& a, const Tensor& b) { return a.storage() == b.storage(); }
// Strides of the non-size-1 dims (size-1 strides are arbitrary, as in PyTorch).
Strides real_strides(const Tensor& t) {
  Strides s;
  for (int64_t d = 0; d < t.dim(); ++d) s.push_back(t.shape()[d] == 1 ? -1 : t.strides()[d]);
  return s;
}
}  // namespace

struct ReshapeCase {
  const char* name;
  int which;  // 0: x.t() of [4,6]; 1: x[:, :4]; 2: [3,1] expanded to [3,4]; 3: [2,3,4] permuted (1,0,2)
  Shape shape;
  bool view;
  Strides strides;  // PyTorch's strides (-1 for size-1 dims)
};

// Expected results taken from torch 1.13 (data_ptr and stride()).
TEST(Views, ReshapeIsAViewExactlyWhenPyTorchSaysSo) {
  std::vector<ReshapeCase> cases = {
      {"t same", 0, {6, 4}, true, {1, 6}},
      {"t flat", 0, {24}, false, {1}},
      {"t split first", 0, {2, 3, 4}, true, {3, 1, 6}},
      {"t split last", 0, {6, 2, 2}, true, {1, 12, 6}},
      {"t merge", 0, {3, 8}, false, {8, 1}},
      {"slice flat", 1, {16}, false, {1}},
      {"slice split rows", 1, {2, 2, 4}, true, {12, 6, 1}},
      {"slice split cols", 1, {4, 2, 2}, true, {6, 2, 1}},
      {"expand flat", 2, {12}, false, {1}},
      {"expand split", 2, {3, 2, 2}, true, {1, 0, 0}},
      {"expand new 1", 2, {3, 4, 1}, true, {1, 0, -1}},
      {"perm merge", 3, {3, 8}, false, {8, 1}},
      {"perm merge2", 3, {6, 4}, false, {4, 1}},
      {"perm split", 3, {3, 2, 2, 2}, true, {4, 12, 2, 1}},
  };
  for (const auto& c : cases) {
    Tensor base;
    if (c.which == 0) base = raw::transpose(grid(4, 6), 0, 1);
    if (c.which == 1) base = raw::slice(grid(4, 6), 1, 0, 4);
    if (c.which == 2) base = raw::expand(raw::reshape(arange(0, 3), {3, 1}), {3, 4});
    if (c.which == 3) base = raw::permute(raw::reshape(arange(0, 24), {2, 3, 4}), {1, 0, 2});
    Tensor r = raw::reshape(base, c.shape);
    EXPECT_EQ(r.shape(), c.shape) << c.name;
    EXPECT_EQ(shares(r, base), c.view) << c.name;
    EXPECT_EQ(real_strides(r), c.strides) << c.name;
    // Either way the values are the base's, in row-major order.
    EXPECT_EQ(r.to_vector<float>(), base.to_vector<float>()) << c.name;
    if (!c.view) EXPECT_THROW_MSG(raw::view(base, c.shape), "view: cannot view");
  }
}

TEST(Views, ReshapeInfersOneDim) {
  Tensor x = grid(4, 6);
  EXPECT_EQ(raw::reshape(x, {-1, 3}).shape(), (Shape{8, 3}));
  EXPECT_EQ(raw::reshape(x, {2, -1, 2}).shape(), (Shape{2, 6, 2}));
  EXPECT_THROW_MSG(raw::reshape(x, {-1, -1}), "only one dimension can be -1");
  EXPECT_THROW_MSG(raw::reshape(x, {5, -1}), "reshape: shape [5,-1] is invalid for input of size 24");
  EXPECT_THROW_MSG(raw::reshape(x, {5, 5}), "reshape: shape [5,5] is invalid for input of size 24");
  EXPECT_EQ(raw::reshape(scalar_tensor(3), {1, 1}).shape(), (Shape{1, 1}));
  EXPECT_THROW_MSG(raw::reshape(zeros({3, 0}), {0, -1}), "reshape");  // -1 is ambiguous with no element
}

TEST(Views, EmptyTensorsViewFreely) {
  Tensor z = raw::transpose(zeros({3, 0}), 0, 1);  // [0,3] with odd strides
  EXPECT_TRUE(z.is_contiguous());
  EXPECT_EQ(raw::view(z, {0, 3}).shape(), (Shape{0, 3}));
  EXPECT_EQ(raw::view(z, {-1}).shape(), (Shape{0}));
}

TEST(Views, PermuteTransposeShareStorage) {
  Tensor x = raw::reshape(arange(0, 24), {2, 3, 4});
  Tensor p = raw::permute(x, {2, 0, 1});
  EXPECT_TRUE(shares(p, x));
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Strides{1, 12, 4}));
  EXPECT_FALSE(p.is_contiguous());
  Tensor t = raw::transpose(x, 0, -1);
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(t.strides(), (Strides{1, 4, 12}));
  // Writing through a view changes the base.
  raw::fill_(raw::narrow(t, 0, 1, 1), -1);
  auto v = x.to_vector<float>();
  EXPECT_EQ(v[1], -1);
  EXPECT_EQ(v[13], -1);
  EXPECT_EQ(v[0], 0);
  EXPECT_THROW_MSG(raw::permute(x, {0, 1}), "permute: 2 dims given for a 3-d tensor");
  EXPECT_THROW_MSG(raw::permute(x, {0, 1, 1}), "permute: dim 1 repeated");
}

TEST(Views, NarrowAndSliceWithStep) {
  Tensor x = grid(4, 6);
  Tensor n = raw::narrow(x, 1, 2, 3);
  EXPECT_TRUE(shares(n, x));
  EXPECT_EQ(n.offset(), 2);
  EXPECT_EQ(n.to_vector<float>(), (std::vector<float>{2, 3, 4, 8, 9, 10, 14, 15, 16, 20, 21, 22}));
  Tensor s = raw::slice(x, 1, 1, 6, 2);  // columns 1, 3, 5
  EXPECT_TRUE(shares(s, x));
  EXPECT_EQ(s.shape(), (Shape{4, 3}));
  EXPECT_EQ(s.strides(), (Strides{6, 2}));
  EXPECT_EQ(raw::slice(x, 0, 0, 4, 3).to_vector<float>(),
            (std::vector<float>{0, 1, 2, 3, 4, 5, 18, 19, 20, 21, 22, 23}));
  EXPECT_EQ(raw::slice(x, 1, -2, 100).shape(), (Shape{4, 2}));  // negative start, end clamped
  EXPECT_EQ(raw::slice(x, 1, 4, 2).shape(), (Shape{4, 0}));     // empty, not an error
  EXPECT_THROW_MSG(raw::slice(x, 1, 0, 2, 0), "slice: step must be positive");
  EXPECT_THROW_MSG(raw::narrow(x, 1, 4, 3), "narrow: range [4, 7) is outside dim 1 of size 6");
  EXPECT_THROW_MSG(raw::narrow(x, 2, 0, 1), "narrow: dim 2 out of range for a 2-d tensor");
}

TEST(Views, UnsqueezeSqueezeExpand) {
  Tensor x = grid(2, 3);
  Tensor u = raw::unsqueeze(x, 1);
  EXPECT_EQ(u.shape(), (Shape{2, 1, 3}));
  EXPECT_TRUE(shares(u, x));
  EXPECT_EQ(raw::unsqueeze(x, -1).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(raw::unsqueeze(scalar_tensor(1), 0).shape(), (Shape{1}));
  EXPECT_EQ(raw::squeeze(u, 1).shape(), (Shape{2, 3}));
  EXPECT_EQ(raw::squeeze(u, 0).shape(), (Shape{2, 1, 3}));  // not size 1: unchanged
  EXPECT_EQ(raw::squeeze(zeros({1, 2, 1})).shape(), (Shape{2}));
  Tensor col = raw::reshape(arange(0, 3), {3, 1});
  Tensor e = raw::expand(col, {2, 3, 4});
  EXPECT_TRUE(shares(e, col));
  EXPECT_EQ(e.strides(), (Strides{0, 1, 0}));
  EXPECT_EQ(raw::expand(col, {-1, 2}).shape(), (Shape{3, 2}));
  EXPECT_THROW_MSG(raw::expand(col, {4, 4}), "expand: the size 3 at dim 0 of [3,1] cannot become 4");
  EXPECT_THROW_MSG(raw::unsqueeze(x, 3), "unsqueeze: dim 3 out of range");
  EXPECT_THROW_MSG(raw::expand(col, {-2, 3, 1}), "expand: invalid size -2");
}

TEST(Views, ContiguousCopiesOnlyWhenNeeded) {
  Tensor x = grid(3, 4);
  EXPECT_TRUE(raw::contiguous(x).is_same(x));
  Tensor t = raw::transpose(x, 0, 1);
  Tensor c = raw::contiguous(t);
  EXPECT_FALSE(shares(c, x));
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.strides(), (Strides{3, 1}));
  EXPECT_EQ(c.to_vector<float>(), t.to_vector<float>());
  Tensor cl = raw::clone(x);
  EXPECT_FALSE(shares(cl, x));
  EXPECT_TRUE(raw::unsqueeze(x, 0).is_contiguous());
  EXPECT_TRUE(raw::slice(x, 0, 1, 3).is_contiguous());
  EXPECT_FALSE(raw::slice(x, 1, 1, 3).is_contiguous());
}

TEST(Views, LargeStridedCopies) {
  // Above the kernels' parallel threshold: every thread's block of rows lands in the right place.
  Tensor x = grid(300, 301);
  Tensor c = raw::contiguous(raw::transpose(x, 0, 1));  // [301,300]
  auto v = c.to_vector<float>();
  bool ok = true;
  for (int64_t i = 0; i < 301 && ok; ++i)
    for (int64_t j = 0; j < 300 && ok; ++j) ok = v[i * 300 + j] == float(j * 301 + i);
  EXPECT_TRUE(ok);
  Tensor s = raw::contiguous(raw::slice(x, 1, 0, 301, 3));  // [300,101], stride 3 inside rows
  EXPECT_EQ(s.to_vector<float>()[5 * 101 + 7], float(5 * 301 + 21));
}
