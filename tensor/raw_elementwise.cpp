// Elementwise and reduction front-ends.
#include <algorithm>

#include "kernels/cpu/parallel.h"
#include "tensor/raw_common.h"
#include "tensor/raw_ops.h"

namespace gs::raw {

Tensor unary(UnaryOp op, const Tensor& x, double alpha, double beta) {
  const char* name = kernels::unary_op_name(op);
  Device device = detail::op_device(name, {&x});
  Tensor in = contiguous(x);
  Tensor out = empty(x.shape(), {x.dtype(), x.device()});
  if (device.is_cuda()) {
    detail::require_cuda_f32(name, x);
    GS_ON_CUDA(kernels::cuda::unary_table().get()(op, in.data<float>(), out.data<float>(), out.numel(), alpha, beta));
    return out;
  }
  GS_DISPATCH_FLOAT(x.dtype(), name, [&] {
    kernels::unary_table<scalar_t>().get()(op, in.data<scalar_t>(), out.data<scalar_t>(), out.numel(), alpha, beta);
  });
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, double alpha, double beta) {
  const char* name = kernels::binary_op_name(op);
  Device device = detail::op_device(name, {&a, &b});
  check_same_dtype(name, a, b);
  Shape shape = broadcast_shapes(name, a.shape(), b.shape());
  Strides as = broadcast_strides(a.shape(), a.strides(), shape);
  Strides bs = broadcast_strides(b.shape(), b.strides(), shape);
  Tensor out = empty(shape, {a.dtype(), a.device()});
  // Long rows for the kernel (out is contiguous in either form); on CUDA this also brings a
  // contiguous tensor of rank > 8 under the kernels' dimension limit.
  Shape rows = shape;
  coalesce_dims(rows, {&as, &bs});
  if (device.is_cuda()) {
    detail::require_cuda_f32(name, a);
    GS_ON_CUDA(kernels::cuda::binary_table().get()(op, a.data<float>(), as.data(), b.data<float>(), bs.data(),
                                                   out.data<float>(), rows.data(), static_cast<int>(rows.size()), alpha,
                                                   beta));
    return out;
  }
  GS_DISPATCH_FLOAT(a.dtype(), name, [&] {
    kernels::binary_table<scalar_t>().get()(op, a.data<scalar_t>(), as.data(), b.data<scalar_t>(), bs.data(),
                                            out.data<scalar_t>(), rows.data(), static_cast<int>(rows.size()), alpha,
                                            beta);
  });
  return out;
}

Tensor binary_scalar(BinaryOp op, const Tensor& a, double b) {
  return binary(op, a, full({}, b, {a.dtype(), a.device()}));
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Device device = detail::op_device("where", {&cond, &a, &b});
  check_same_dtype("where", a, b);
  Tensor c = to_dtype(cond, a.dtype());
  Shape shape = broadcast_shapes("where", broadcast_shapes("where", c.shape(), a.shape()), b.shape());
  Strides cs = broadcast_strides(c.shape(), c.strides(), shape);
  Strides as = broadcast_strides(a.shape(), a.strides(), shape);
  Strides bs = broadcast_strides(b.shape(), b.strides(), shape);
  Tensor out = empty(shape, {a.dtype(), a.device()});
  Shape rows = shape;  // out is contiguous in either form
  coalesce_dims(rows, {&cs, &as, &bs});
  if (device.is_cuda()) {
    detail::require_cuda_f32("where", a);
    GS_ON_CUDA(kernels::cuda::where(c.data<float>(), cs.data(), a.data<float>(), as.data(), b.data<float>(), bs.data(),
                                    out.data<float>(), rows.data(), static_cast<int>(rows.size())));
    return out;
  }
  GS_DISPATCH_FLOAT(a.dtype(), "where", [&] {
    kernels::where_cpu<scalar_t>(c.data<scalar_t>(), cs.data(), a.data<scalar_t>(), as.data(), b.data<scalar_t>(),
                                 bs.data(), out.data<scalar_t>(), rows.data(), static_cast<int>(rows.size()));
  });
  return out;
}

namespace {
// d += a * s over n contiguous elements (pragmas cannot sit inside the dispatch macro).
template <class T> void axpy(T* d, const T* s, T a, int64_t n) {
  kernels::parallel_for(n, 65536, [&](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) d[i] += a * s[i];
  });
}
}  // namespace

void add_(const Tensor& dst, const Tensor& src, double alpha) {
  Device device = detail::op_device("add_", {&dst, &src});
  check_same_dtype("add_", dst, src);
  Shape shape = broadcast_shapes("add_", dst.shape(), src.shape());
  GS_CHECK(shape == dst.shape(), "add_: %s does not broadcast to the destination %s", shape_str(src.shape()).c_str(),
           shape_str(dst.shape()).c_str());
  if (dst.is_contiguous() && src.is_contiguous() && src.shape() == dst.shape()) {
    if (device.is_cuda()) {
      detail::require_cuda_f32("add_", dst);
      GS_ON_CUDA(kernels::cuda::axpy(dst.data<float>(), src.data<float>(), static_cast<float>(alpha), dst.numel()));
      return;
    }
    GS_DISPATCH_FLOAT(dst.dtype(), "add_", [&] {
      axpy(dst.data<scalar_t>(), src.data<scalar_t>(), static_cast<scalar_t>(alpha), dst.numel());
    });
    return;
  }
  Tensor scaled = alpha == 1.0 ? src : binary_scalar(BinaryOp::Mul, src, alpha);
  copy_(dst, binary(BinaryOp::Add, dst, scaled));
}

void mul_(const Tensor& dst, double value) { copy_(dst, binary_scalar(BinaryOp::Mul, dst, value)); }

// ---------------- reductions ----------------
Tensor reduce(ReduceOp op, const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  static const char* names[] = {"sum", "mean", "max", "min"};
  const char* name = names[static_cast<int>(op)];
  Device device = detail::op_device(name, {&x});
  int64_t nd = x.dim();
  std::vector<bool> reduced(nd, dims.empty());
  for (int64_t d : dims) {
    int k = normalize_dim(name, d, nd);
    if (nd == 0) continue;  // a 0-d tensor accepts dim 0 / -1 and reduces to itself (PyTorch)
    GS_CHECK(!reduced[k], "%s: dim %d appears twice in the reduction dims", name, k);
    reduced[k] = true;
  }
  if ((op == ReduceOp::Max || op == ReduceOp::Min)) {
    for (int64_t d = 0; d < nd; ++d) {
      GS_CHECK(!reduced[d] || x.shape()[d] > 0, "%s: cannot reduce the empty dim %lld of %s (no identity)", name,
               (long long)d, shape_str(x.shape()).c_str());
    }
  }
  Shape out_shape, keep_shape;
  for (int64_t d = 0; d < nd; ++d) {
    keep_shape.push_back(reduced[d] ? 1 : x.shape()[d]);
    if (!reduced[d]) out_shape.push_back(x.shape()[d]);
  }
  // Bring the reduced dims together: [kept..., reduced...] unless they already form one block.
  int first = -1, last = -1;
  for (int64_t d = 0; d < nd; ++d) {
    if (reduced[d]) {
      if (first < 0) first = static_cast<int>(d);
      last = static_cast<int>(d);
    }
  }
  bool block = true;
  for (int d = first; d >= 0 && d <= last; ++d) block = block && reduced[d];
  if (!block && x.is_contiguous() && !device.is_cuda()) {
    // Reduced dims in more than one block ((N,C,H,W) over 0, 2, 3): the last block first, in place,
    // then the rest of a result that is smaller by that block's size, instead of a permuted copy
    // of x. Sum, mean (of equal-sized means), max and min all compose so.
    std::vector<int64_t> last_block, rest;
    for (int d = last; d >= 0 && reduced[d]; --d) last_block.insert(last_block.begin(), d);
    for (int d = 0; d < last_block.front(); ++d)
      if (reduced[d]) rest.push_back(d);
    Tensor partial = reduce(op, x, last_block, true);
    return reshape(reduce(op, partial, rest, true), keepdim ? keep_shape : out_shape);
  }
  Tensor src;
  int64_t outer = 1, r = 1, inner = 1;
  if (block && x.is_contiguous()) {
    src = x;
    for (int64_t d = 0; d < nd; ++d) {
      if (first >= 0 && d < first)
        outer *= x.shape()[d];
      else if (first >= 0 && d <= last)
        r *= x.shape()[d];
      else if (first >= 0)
        inner *= x.shape()[d];
      else
        outer *= x.shape()[d];
    }
  } else {
    std::vector<int64_t> perm;
    for (int64_t d = 0; d < nd; ++d)
      if (!reduced[d]) {
        perm.push_back(d);
        outer *= x.shape()[d];
      }
    for (int64_t d = 0; d < nd; ++d)
      if (reduced[d]) {
        perm.push_back(d);
        r *= x.shape()[d];
      }
    src = contiguous(permute(x, perm));
  }
  Tensor out = empty(keepdim ? keep_shape : out_shape, {x.dtype(), x.device()});
  if (device.is_cuda()) {
    detail::require_cuda_f32(name, x);
    GS_ON_CUDA(kernels::cuda::reduce_table().get()(op, src.data<float>(), out.data<float>(), outer, r, inner));
    return out;
  }
  GS_DISPATCH_FLOAT(x.dtype(), name, [&] {
    kernels::reduce_table<scalar_t>().get()(op, src.data<scalar_t>(), out.data<scalar_t>(), outer, r, inner);
  });
  return out;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  GS_CHECK(x.dim() >= (int64_t)shape.size(), "sum_to: cannot sum %s down to %s", shape_str(x.shape()).c_str(),
           shape_str(shape).c_str());
  size_t lead = x.dim() - shape.size();
  std::vector<int64_t> dims;
  for (size_t d = 0; d < (size_t)x.dim(); ++d) {
    if (d < lead) {
      dims.push_back(d);
    } else if (shape[d - lead] == 1 && x.shape()[d] != 1) {
      dims.push_back(d);
    } else {
      GS_CHECK(shape[d - lead] == x.shape()[d], "sum_to: %s is not a broadcast of %s", shape_str(x.shape()).c_str(),
               shape_str(shape).c_str());
    }
  }
  if (dims.empty()) return reshape(x, shape);
  return reshape(reduce(ReduceOp::Sum, x, dims, true), shape);
}

Tensor argmax(const Tensor& x, int64_t dim) {
  Device device = detail::op_device("argmax", {&x});
  int d = normalize_dim("argmax", dim, x.dim());  // 0 and -1 for a 0-d x, as torch
  if (x.dim() == 0) return zeros({}, {DType::I64, x.device()});
  // Move `dim` last, keeping the other dims in order: the result needs no un-permuting.
  std::vector<int64_t> perm;
  for (int64_t k = 0; k < x.dim(); ++k) {
    if (k != d) perm.push_back(k);
  }
  perm.push_back(d);
  Tensor xc = contiguous(permute(x, perm));
  int64_t cols = xc.shape().back(), rows = cols ? xc.numel() / cols : 0;
  GS_CHECK(cols > 0, "argmax: dim %d of %s is empty", d, shape_str(x.shape()).c_str());
  Shape out_shape = xc.shape();
  out_shape.pop_back();
  Tensor out = empty(out_shape, {DType::I64, x.device()});
  if (device.is_cuda()) {
    detail::require_cuda_f32("argmax", x);
    GS_ON_CUDA(kernels::cuda::argmax_rows(xc.data<float>(), out.data<int64_t>(), rows, cols));
    return out;
  }
  int64_t* po = out.data<int64_t>();
  GS_DISPATCH_FLOAT(x.dtype(), "argmax", [&] {
    const scalar_t* p = xc.data<scalar_t>();
    for (int64_t r = 0; r < rows; ++r) {
      const scalar_t* row = p + r * cols;
      int64_t best = 0;
      for (int64_t k = 1; k < cols; ++k) {
        if (row[best] != row[best]) break;  // NaN is the maximum, as in PyTorch
        if (row[k] > row[best] || row[k] != row[k]) best = k;
      }
      po[r] = best;
    }
  });
  return out;
}

}  // namespace gs::raw
