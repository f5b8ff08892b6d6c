// No-grad op front-ends: check shapes/dtypes/devices, then dispatch to the kernel of the
// tensor's device and the selected variant. Autograd builds on these (autograd/ops.h);
// optimizers and data code use them directly for in-place updates.
#pragma once
#include <vector>

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/reduce.h"
#include "tensor/tensor.h"

namespace gs::raw {

using kernels::BinaryOp;
using kernels::ReduceOp;
using kernels::UnaryOp;

// ---- views (share storage) ----
Tensor as_strided(const Tensor& t, const Shape& shape, const Strides& strides, int64_t offset);
Tensor view(const Tensor& t, Shape shape);     // needs a viewable layout; -1 infers one dim
Tensor reshape(const Tensor& t, Shape shape);  // view when possible, else a contiguous copy
Tensor permute(const Tensor& t, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1);
Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length);
Tensor slice(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor unsqueeze(const Tensor& t, int64_t dim);
Tensor squeeze(const Tensor& t, int64_t dim);
Tensor squeeze(const Tensor& t);  // all size-1 dims
Tensor expand(const Tensor& t, const Shape& shape);
Shape infer_shape(const char* op, Shape shape, int64_t numel);

// ---- copies ----
Tensor contiguous(const Tensor& t);  // t itself when already contiguous
Tensor clone(const Tensor& t);
Tensor to_dtype(const Tensor& t, DType dtype);
void copy_(const Tensor& dst, const Tensor& src);  // src broadcast to dst's shape, dtype cast
void fill_(const Tensor& dst, double value);
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);

// ---- elementwise ----
Tensor unary(UnaryOp op, const Tensor& x, double alpha = 0, double beta = 0);
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, double alpha = 0, double beta = 0);
Tensor binary_scalar(BinaryOp op, const Tensor& a, double b);  // a op b
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
void add_(const Tensor& dst, const Tensor& src, double alpha = 1.0);  // dst += alpha * src (broadcast src)
void mul_(const Tensor& dst, double value);

// ---- reductions ----
// dims empty = all dims. Max/Min return values only; ties are the caller's business.
Tensor reduce(ReduceOp op, const Tensor& x, std::vector<int64_t> dims, bool keepdim);
// Sums a broadcast result back to `shape` (the inverse of broadcasting, for backward).
Tensor sum_to(const Tensor& x, const Shape& shape);
// i64 index of the first maximum along dim (a NaN is the maximum), on x's device.
Tensor argmax(const Tensor& x, int64_t dim);

// ---- linear algebra ----
// Batched, broadcasting matmul with PyTorch's 1-d rules.
Tensor matmul(const Tensor& a, const Tensor& b);
// 2-d C = op(A) @ op(B) using the selected gemm variant; a, b any strides.
Tensor mm(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

// ---- softmax family (over `dim`) ----
Tensor softmax(const Tensor& x, int64_t dim, bool log);
Tensor softmax_backward(const Tensor& y, const Tensor& grad_y, int64_t dim, bool log);

// ---- indexing ----
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
void scatter_add_(const Tensor& acc, int64_t dim, const Tensor& index, const Tensor& src);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
void index_add_(const Tensor& acc, int64_t dim, const Tensor& index, const Tensor& src);

}  // namespace gs::raw
