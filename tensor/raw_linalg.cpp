// matmul, softmax and index front-ends.
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/index.h"
#include "kernels/cpu/softmax.h"
#include "tensor/raw_common.h"
#include "tensor/raw_ops.h"

namespace gs::raw {

namespace {
// The last two dims of x as gemm wants them: row-major with a row stride, or the transpose of
// that. When they are neither, x is made contiguous (once, not per batch entry).
struct GemmOperand {
  Tensor t;
  bool trans;
  int64_t ld;
};
GemmOperand gemm_operand(const Tensor& x) {
  const int r = x.dim() - 2, c = x.dim() - 1;
  const auto& s = x.strides();
  if (s[c] == 1 && s[r] >= std::max<int64_t>(1, x.shape()[c])) return {x, false, s[r]};
  if (s[r] == 1 && s[c] >= std::max<int64_t>(1, x.shape()[r])) return {x, true, s[c]};
  Tensor t = contiguous(x);
  return {t, false, std::max<int64_t>(1, t.shape()[c])};
}

// Element offsets of x's (rows, cols) matrices for each entry of `batch` (row-major), x's batch
// dims (all but the last two) broadcasting to it from the right: stride 0 where x has size 1.
std::vector<int64_t> batch_offsets(const Tensor& x, const Shape& batch) {
  const int64_t B = shape_numel(batch);
  std::vector<int64_t> offsets(static_cast<size_t>(B), 0);
  const int nb = static_cast<int>(batch.size()), xb = x.dim() - 2;
  for (int64_t i = 0; i < B; ++i) {
    int64_t rest = i, off = 0;
    for (int d = nb - 1, e = xb - 1; d >= 0; --d, --e) {
      const int64_t idx = rest % batch[d];
      rest /= batch[d];
      if (e >= 0 && x.shape()[e] != 1) off += idx * x.strides()[e];
    }
    offsets[static_cast<size_t>(i)] = off;
  }
  return offsets;
}

// out (batch..., M, N), contiguous = a (batch_a..., M, K) @ b (batch_b..., K, N), the batch dims
// broadcast: one GEMM per batch entry, straight from the operands' memory into out's.
Tensor matmul_into_new(Device device, const Tensor& a, const Tensor& b, const Shape& batch) {
  const int64_t M = a.shape()[a.dim() - 2], K = a.shape()[a.dim() - 1], N = b.shape()[b.dim() - 1];
  Shape out_shape = batch;
  out_shape.insert(out_shape.end(), {M, N});
  Tensor out = empty(out_shape, {a.dtype(), a.device()});
  const GemmOperand ga = gemm_operand(a), gb = gemm_operand(b);
  const std::vector<int64_t> a_off = batch_offsets(ga.t, batch), b_off = batch_offsets(gb.t, batch);
  const int64_t B = shape_numel(batch), ldc = std::max<int64_t>(1, N);
  if (device.is_cuda()) {
    detail::require_cuda_f32("matmul", a);
    GS_ON_CUDA(kernels::cuda::gemm_batched(ga.trans, gb.trans, M, N, K, ga.t.data<float>(), a_off.data(), ga.ld,
                                           gb.t.data<float>(), b_off.data(), gb.ld, 0.0f, out.data<float>(), ldc,
                                           M * N, B));
    return out;
  }
  GS_DISPATCH_FLOAT(a.dtype(), "matmul", [&] {
    kernels::gemm_batched<scalar_t>(ga.trans, gb.trans, M, N, K, ga.t.data<scalar_t>(), a_off.data(), ga.ld,
                                    gb.t.data<scalar_t>(), b_off.data(), gb.ld, out.data<scalar_t>(), ldc, M * N, B);
  });
  return out;
}
}  // namespace

Tensor mm(const Tensor& a_in, const Tensor& b_in, bool trans_a, bool trans_b) {
  Device device = detail::op_device("matmul", {&a_in, &b_in});
  check_same_dtype("matmul", a_in, b_in);
  GS_CHECK(a_in.dim() == 2 && b_in.dim() == 2, "matmul: mm expects 2-d operands, got %s and %s",
           shape_str(a_in.shape()).c_str(), shape_str(b_in.shape()).c_str());
  Tensor a = trans_a ? transpose(a_in, 0, 1) : a_in;
  Tensor b = trans_b ? transpose(b_in, 0, 1) : b_in;
  GS_CHECK(b.shape()[0] == a.shape()[1], "matmul: inner dimensions differ, %s @ %s", shape_str(a.shape()).c_str(),
           shape_str(b.shape()).c_str());
  return matmul_into_new(device, a, b, {});
}

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  GS_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, "matmul: both arguments need at least 1 dim, got %s and %s",
           shape_str(a_in.shape()).c_str(), shape_str(b_in.shape()).c_str());
  check_same_dtype("matmul", a_in, b_in);
  Device device = detail::op_device("matmul", {&a_in, &b_in});
  // PyTorch's 1-d rules: a vector on the left is a row, on the right a column; removed after.
  Tensor a = a_in.dim() == 1 ? unsqueeze(a_in, 0) : a_in;
  Tensor b = b_in.dim() == 1 ? unsqueeze(b_in, 1) : b_in;
  int64_t K = a.shape()[a.dim() - 1], K2 = b.shape()[b.dim() - 2];
  GS_CHECK(K == K2, "matmul: inner dimensions differ, %s @ %s (%lld vs %lld)", shape_str(a_in.shape()).c_str(),
           shape_str(b_in.shape()).c_str(), (long long)K, (long long)K2);
  Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
  Tensor out;
  if (batch_b.empty() && !batch_a.empty()) {
    // A batch of matrices against one (a Linear layer on a sequence): their rows are one
    // (batch * M, K) matrix, so one GEMM.
    Shape out_shape(a.shape().begin(), a.shape().end() - 1);
    const int64_t rows = shape_numel(out_shape);
    out_shape.push_back(b.shape()[1]);
    out = reshape(matmul_into_new(device, reshape(a, {rows, K}), b, {}), out_shape);
  } else {
    Shape batch;
    try {
      batch = broadcast_shapes("matmul", batch_a, batch_b);
    } catch (const Error&) {  // its text names only the batch dims: name the operands
      GS_CHECK(false, "matmul: the batch dimensions of %s and %s cannot be broadcast", shape_str(a_in.shape()).c_str(),
               shape_str(b_in.shape()).c_str());
    }
    out = matmul_into_new(device, a, b, batch);
  }
  if (a_in.dim() == 1) out = squeeze(out, -2);
  if (b_in.dim() == 1) out = squeeze(out, -1);
  return out;
}

// ---------------- softmax ----------------
namespace {
// Moves `dim` last and makes the result contiguous: (rows, cols).
Tensor dim_last(const Tensor& x, int d) {
  if (d == x.dim() - 1) return contiguous(x);
  return contiguous(transpose(x, d, -1));
}
Tensor dim_back(const Tensor& y, int d, int64_t nd) {
  if (d == nd - 1) return y;
  return contiguous(transpose(y, d, -1));
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  Device device = detail::op_device(name, {&x});
  if (x.dim() == 0) return reshape(softmax(reshape(x, {1}), 0, log), {});
  int d = normalize_dim(name, dim, x.dim());
  Tensor in = dim_last(x, d);
  Tensor out = empty(in.shape(), {x.dtype(), x.device()});
  int64_t cols = in.shape().back(), rows = cols ? in.numel() / cols : 0;
  if (device.is_cuda()) {
    detail::require_cuda_f32(name, x);
    GS_ON_CUDA(kernels::cuda::softmax_table().get()(in.data<float>(), out.data<float>(), rows, cols, log));
    return dim_back(out, d, x.dim());
  }
  GS_DISPATCH_FLOAT(x.dtype(), name, [&] {
    kernels::softmax_table<scalar_t>().get()(in.data<scalar_t>(), out.data<scalar_t>(), rows, cols, log);
  });
  return dim_back(out, d, x.dim());
}

Tensor softmax_backward(const Tensor& y, const Tensor& grad_y, int64_t dim, bool log) {
  const char* name = log ? "log_softmax_backward" : "softmax_backward";
  Device device = detail::op_device(name, {&y, &grad_y});
  GS_CHECK(y.shape() == grad_y.shape(), "%s: output %s and gradient %s differ in shape", name,
           shape_str(y.shape()).c_str(), shape_str(grad_y.shape()).c_str());
  if (y.dim() == 0) return reshape(softmax_backward(reshape(y, {1}), reshape(grad_y, {1}), 0, log), {});
  int d = normalize_dim(name, dim, y.dim());
  Tensor yc = dim_last(y, d), gc = dim_last(grad_y, d);
  Tensor out = empty(yc.shape(), {y.dtype(), y.device()});
  int64_t cols = yc.shape().back(), rows = cols ? yc.numel() / cols : 0;
  if (device.is_cuda()) {
    detail::require_cuda_f32(name, y);
    GS_ON_CUDA(kernels::cuda::softmax_backward_table().get()(yc.data<float>(), gc.data<float>(), out.data<float>(),
                                                             rows, cols, log));
    return dim_back(out, d, y.dim());
  }
  GS_DISPATCH_FLOAT(y.dtype(), name, [&] {
    kernels::softmax_backward_table<scalar_t>().get()(yc.data<scalar_t>(), gc.data<scalar_t>(), out.data<scalar_t>(),
                                                      rows, cols, log);
  });
  return dim_back(out, d, y.dim());
}

// ---------------- indexing ----------------
namespace {
void split_dims(const Shape& shape, int d, int64_t& outer, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int i = 0; i < d; ++i) outer *= shape[i];
  for (size_t i = d + 1; i < shape.size(); ++i) inner *= shape[i];
}
void check_index_range(const char* op, const Tensor& index, int64_t n, int d) {
  for (int64_t v : index.to_vector<int64_t>()) {
    GS_CHECK(v >= 0 && v < n, "%s: index %lld is out of range for dim %d of size %lld", op, (long long)v, d,
             (long long)n);
  }
}
// CUDA index kernels take f32 or i64 values: fn(T{}) with T the value type.
template <class Fn> void dispatch_cuda_index(const char* op, const Tensor& values, Fn fn) {
  GS_CHECK(values.dtype() == DType::F32 || values.dtype() == DType::I64,
           "%s: CUDA index kernels take f32 or i64 values, got %s", op, values.describe().c_str());
  if (values.dtype() == DType::F32) {
    fn(float{});
  } else {
    fn(int64_t{});
  }
}
}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  const Device device = detail::op_device("gather", {&x, &index});
  check_dtype("gather", index, DType::I64, "index");
  GS_CHECK(x.dim() > 0, "gather: the input is 0-d; unsqueeze it first");
  int d = normalize_dim("gather", dim, x.dim());
  GS_CHECK(index.dim() == x.dim(), "gather: index %s must have as many dims as input %s",
           shape_str(index.shape()).c_str(), shape_str(x.shape()).c_str());
  // As torch.gather: outside dim the index may be smaller than the input, which reads its leading part.
  Tensor part = x;
  for (int64_t k = 0; k < x.dim(); ++k) {
    if (k == d) continue;
    GS_CHECK(index.shape()[k] <= x.shape()[k], "gather: index %s is larger than input %s in dim %lld (outside dim %d)",
             shape_str(index.shape()).c_str(), shape_str(x.shape()).c_str(), (long long)k, d);
    if (index.shape()[k] < x.shape()[k]) part = narrow(part, k, 0, index.shape()[k]);
  }
  check_index_range("gather", index, x.shape()[d], d);
  Tensor xc = contiguous(part), ic = contiguous(index);
  Tensor out = empty(index.shape(), {x.dtype(), x.device()});
  int64_t outer, inner;
  split_dims(xc.shape(), d, outer, inner);
  if (device.is_cuda()) {
    dispatch_cuda_index("gather", x, [&](auto tag) {
      using T [[maybe_unused]] = decltype(tag);
      GS_ON_CUDA(kernels::cuda::gather<T>(xc.data<T>(), ic.data<int64_t>(), out.data<T>(), outer, x.shape()[d],
                                          index.shape()[d], inner));
    });
    return out;
  }
  GS_DISPATCH_ALL(x.dtype(), "gather", [&] {
    kernels::gather<scalar_t>(xc.data<scalar_t>(), ic.data<int64_t>(), out.data<scalar_t>(), outer, x.shape()[d],
                              index.shape()[d], inner);
  });
  return out;
}

void scatter_add_(const Tensor& acc, int64_t dim, const Tensor& index, const Tensor& src) {
  const Device device = detail::op_device("scatter_add_", {&acc, &index, &src});
  check_dtype("scatter_add_", index, DType::I64, "index");
  check_same_dtype("scatter_add_", acc, src);
  GS_CHECK(acc.dim() > 0, "scatter_add_: the destination is 0-d");
  int d = normalize_dim("scatter_add_", dim, acc.dim());
  GS_CHECK(acc.is_contiguous(), "scatter_add_: the destination must be contiguous");
  GS_CHECK(index.shape() == src.shape(), "scatter_add_: index %s and src %s must have one shape",
           shape_str(index.shape()).c_str(), shape_str(src.shape()).c_str());
  GS_CHECK(index.dim() == acc.dim(), "scatter_add_: index %s must have as many dims as the destination %s",
           shape_str(index.shape()).c_str(), shape_str(acc.shape()).c_str());
  // As torch: outside dim the index may be smaller than the destination, which then takes the sums in its
  // leading part. That part is summed into a contiguous copy and copied back.
  Tensor part = acc;
  for (int64_t k = 0; k < acc.dim(); ++k) {
    if (k == d) continue;
    GS_CHECK(index.shape()[k] <= acc.shape()[k],
             "scatter_add_: index %s is larger than the destination %s in dim %lld (outside dim %d)",
             shape_str(index.shape()).c_str(), shape_str(acc.shape()).c_str(), (long long)k, d);
    if (index.shape()[k] < acc.shape()[k]) part = narrow(part, k, 0, index.shape()[k]);
  }
  if (!part.is_same(acc)) {
    Tensor sums = clone(part);
    scatter_add_(sums, d, index, src);
    copy_(part, sums);
    return;
  }
  check_index_range("scatter_add_", index, acc.shape()[d], d);
  Tensor ic = contiguous(index), sc = contiguous(src);
  int64_t outer, inner;
  split_dims(acc.shape(), d, outer, inner);
  if (device.is_cuda()) {
    dispatch_cuda_index("scatter_add_", acc, [&](auto tag) {
      using T [[maybe_unused]] = decltype(tag);
      GS_ON_CUDA(kernels::cuda::scatter_add<T>(acc.data<T>(), ic.data<int64_t>(), sc.data<T>(), outer, acc.shape()[d],
                                               index.shape()[d], inner));
    });
    return;
  }
  GS_DISPATCH_ALL(acc.dtype(), "scatter_add_", [&] {
    kernels::scatter_add<scalar_t>(acc.data<scalar_t>(), ic.data<int64_t>(), sc.data<scalar_t>(), outer, acc.shape()[d],
                                   index.shape()[d], inner);
  });
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  const Device device = detail::op_device("index_select", {&x, &index});
  check_dtype("index_select", index, DType::I64, "index");
  GS_CHECK(index.dim() == 1, "index_select: index must be 1-d, got %s", shape_str(index.shape()).c_str());
  GS_CHECK(x.dim() > 0, "index_select: the input is 0-d; unsqueeze it first");
  int d = normalize_dim("index_select", dim, x.dim());
  check_index_range("index_select", index, x.shape()[d], d);
  Tensor xc = contiguous(x), ic = contiguous(index);
  Shape shape = x.shape();
  shape[d] = index.numel();
  Tensor out = empty(shape, {x.dtype(), x.device()});
  int64_t outer, inner;
  split_dims(x.shape(), d, outer, inner);
  if (device.is_cuda()) {
    dispatch_cuda_index("index_select", x, [&](auto tag) {
      using T [[maybe_unused]] = decltype(tag);
      GS_ON_CUDA(kernels::cuda::index_select<T>(xc.data<T>(), ic.data<int64_t>(), out.data<T>(), outer, x.shape()[d],
                                                index.numel(), inner));
    });
    return out;
  }
  GS_DISPATCH_ALL(x.dtype(), "index_select", [&] {
    kernels::index_select<scalar_t>(xc.data<scalar_t>(), ic.data<int64_t>(), out.data<scalar_t>(), outer, x.shape()[d],
                                    index.numel(), inner);
  });
  return out;
}

void index_add_(const Tensor& acc, int64_t dim, const Tensor& index, const Tensor& src) {
  const Device device = detail::op_device("index_add_", {&acc, &index, &src});
  check_dtype("index_add_", index, DType::I64, "index");
  check_same_dtype("index_add_", acc, src);
  GS_CHECK(acc.is_contiguous(), "index_add_: the destination must be contiguous");
  GS_CHECK(acc.dim() > 0, "index_add_: the destination is 0-d");
  int d = normalize_dim("index_add_", dim, acc.dim());
  check_index_range("index_add_", index, acc.shape()[d], d);
  Tensor ic = contiguous(index), sc = contiguous(src);
  int64_t outer, inner;
  split_dims(acc.shape(), d, outer, inner);
  if (device.is_cuda()) {
    dispatch_cuda_index("index_add_", acc, [&](auto tag) {
      using T [[maybe_unused]] = decltype(tag);
      GS_ON_CUDA(kernels::cuda::index_add<T>(acc.data<T>(), ic.data<int64_t>(), sc.data<T>(), outer, acc.shape()[d],
                                             index.numel(), inner));
    });
    return;
  }
  GS_DISPATCH_ALL(acc.dtype(), "index_add_", [&] {
    kernels::index_add<scalar_t>(acc.data<scalar_t>(), ic.data<int64_t>(), sc.data<scalar_t>(), outer, acc.shape()[d],
                                 index.numel(), inner);
  });
}

}  // namespace gs::raw
