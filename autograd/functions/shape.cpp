// Shape ops (views where possible), cat/stack, gather and index_select.
#include "autograd/ops.h"
#include "tensor/raw_ops.h"

namespace gs {

// y = x viewed as `shape`;  dx += g reshaped back
Tensor reshape(const Tensor& x, const Shape& shape) {
  Tensor out = raw::reshape(x, shape);
  record(OpId::Reshape, {x}, {out}, {},
         [](BackwardContext& c) { c.accumulate(0, reshape(c.grad_output(), c.input_shapes_[0])); });
  return out;
}

Tensor view(const Tensor& x, const Shape& shape) {
  raw::view(x, shape);  // throws when a copy would be needed
  return reshape(x, shape);
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  if (x.dim() == 0) return reshape(x, {1});
  int s = normalize_dim("flatten", start_dim, x.dim()), e = normalize_dim("flatten", end_dim, x.dim());
  GS_CHECK(s <= e, "flatten: start_dim %d comes after end_dim %d", s, e);
  Shape shape(x.shape().begin(), x.shape().begin() + s);
  int64_t n = 1;
  for (int d = s; d <= e; ++d) n *= x.shape()[d];
  shape.push_back(n);
  shape.insert(shape.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, shape);
}

// y = x with dims permuted;  dx += g permuted by the inverse
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  Tensor out = raw::permute(x, dims);
  std::vector<int64_t> inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) inverse[normalize_dim("permute", dims[i], x.dim())] = i;
  record(OpId::Permute, {x}, {out}, {},
         [inverse](BackwardContext& c) { c.accumulate(0, permute(c.grad_output(), inverse)); });
  return out;
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  std::vector<int64_t> dims(x.dim());
  for (int64_t i = 0; i < x.dim(); ++i) dims[i] = i;
  const int a = normalize_dim("transpose", dim0, x.dim()), b = normalize_dim("transpose", dim1, x.dim());
  if (x.dim() > 0) std::swap(dims[a], dims[b]);  // a 0-d tensor transposes to itself
  return permute(x, dims);
}

// y = x[start:end:step] along dim;  dx += g placed back into zeros
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  Tensor out = raw::slice(x, dim, start, end, step);  // checks dim (a 0-d x has none)
  int d = normalize_dim("slice", dim, x.dim());
  record(OpId::Slice, {x}, {out}, {}, [d, start, end, step](BackwardContext& c) {
    const Tensor& g = c.grad_output();
    Tensor dx = zeros(c.input_shapes_[0], {g.dtype(), g.device()});
    raw::copy_(raw::slice(dx, d, start, end, step), g);
    // Linear in g; its adjoint is the slice itself.
    record_derivative(OpId::Slice, {g}, {dx}, {}, [d, start, end, step](BackwardContext& c2) {
      c2.accumulate(0, slice(c2.grad_output(), d, start, end, step));
    });
    c.accumulate(0, dx);
  });
  return out;
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  raw::narrow(x, dim, start, length);  // range check with narrow's message
  int d = normalize_dim("narrow", dim, x.dim());
  if (start < 0) start += x.shape()[d];
  return slice(x, d, start, start + length, 1);
}

Tensor unsqueeze(const Tensor& x, int64_t dim) { return reshape(x, raw::unsqueeze(x, dim).shape()); }
Tensor squeeze(const Tensor& x, int64_t dim) { return reshape(x, raw::squeeze(x, dim).shape()); }

// y = x broadcast to shape;  dx += g summed over the broadcast dims
Tensor expand(const Tensor& x, const Shape& shape) {
  Tensor out = raw::expand(x, shape);
  record(OpId::Expand, {x}, {out}, {}, [](BackwardContext& c) { c.accumulate(0, c.grad_output()); });
  return out;
}

// y = x laid out contiguously;  dx += g
Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor out = raw::contiguous(x);
  record(OpId::Contiguous, {x}, {out}, {}, [](BackwardContext& c) { c.accumulate(0, c.grad_output()); });
  return out;
}

// y = [x_0, x_1, ...] along dim;  dx_i += the slice of g that x_i filled
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  Tensor out = raw::cat(tensors, dim);
  int d = normalize_dim("cat", dim, out.dim());
  record(OpId::Cat, tensors, {out}, {}, [d](BackwardContext& c) {
    int64_t at = 0;
    for (size_t i = 0; i < c.input_shapes_.size(); ++i) {
      int64_t len = c.input_shapes_[i][d];
      if (c.needs_grad(i)) c.accumulate(i, slice(c.grad_output(), d, at, at + len, 1));
      at += len;
    }
  });
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  GS_CHECK(!tensors.empty(), "stack: expected at least one tensor");
  int d = normalize_dim("stack", dim, tensors[0].dim() + 1);
  std::vector<Tensor> parts;
  for (size_t i = 0; i < tensors.size(); ++i) {
    GS_CHECK(tensors[i].shape() == tensors[0].shape(), "stack: tensor %zu has shape %s, tensor 0 has %s", i,
             shape_str(tensors[i].shape()).c_str(), shape_str(tensors[0].shape()).c_str());
    parts.push_back(unsqueeze(tensors[i], d));
  }
  return cat(parts, d);
}

// y[.., j, ..] = x[.., index[.., j, ..], ..];  dx += scatter_add(g by index)
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor out = raw::gather(x, dim, index);
  int d = normalize_dim("gather", dim, x.dim());
  record(OpId::Gather, {x}, {out}, {index}, [d](BackwardContext& c) {
    const Tensor &g = c.grad_output(), &idx = c.saved(0);
    Tensor dx = zeros(c.input_shapes_[0], {g.dtype(), g.device()});
    raw::scatter_add_(dx, d, idx, g);
    // Linear in g; its adjoint is the gather itself.
    record_derivative(OpId::Gather, {g}, {dx}, {idx},
                      [d](BackwardContext& c2) { c2.accumulate(0, gather(c2.grad_output(), d, c2.saved(0))); });
    c.accumulate(0, dx);
  });
  return out;
}

// y = x at the indices along dim;  dx += index_add(g)
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor out = raw::index_select(x, dim, index);
  int d = normalize_dim("index_select", dim, x.dim());
  record(OpId::IndexSelect, {x}, {out}, {index}, [d](BackwardContext& c) {
    const Tensor &g = c.grad_output(), &idx = c.saved(0);
    Tensor dx = zeros(c.input_shapes_[0], {g.dtype(), g.device()});
    raw::index_add_(dx, d, idx, g);
    // Linear in g; its adjoint is the index_select itself.
    record_derivative(OpId::IndexSelect, {g}, {dx}, {idx},
                      [d](BackwardContext& c2) { c2.accumulate(0, index_select(c2.grad_output(), d, c2.saved(0))); });
    c.accumulate(0, dx);
  });
  return out;
}

}  // namespace gs
