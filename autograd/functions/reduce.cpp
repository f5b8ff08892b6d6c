// Reductions: sum, mean, max, min (recorded), var (composite), argmax (no gradient).
#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "tensor/raw_ops.h"

namespace gs {

using raw::BinaryOp;
using raw::ReduceOp;

namespace {
// The reduced dims as a sorted, normalised list (empty input = all dims).
std::vector<int64_t> reduced_dims(const char* op, const Tensor& x, const std::vector<int64_t>& dims) {
  std::vector<int64_t> out;
  if (x.dim() == 0) {  // dim 0 / -1 of a scalar name the scalar itself
    for (int64_t d : dims) normalize_dim(op, d, 0);
    return out;
  }
  if (dims.empty()) {
    for (int64_t d = 0; d < x.dim(); ++d) out.push_back(d);
  } else {
    for (int64_t d : dims) out.push_back(normalize_dim(op, d, x.dim()));
  }
  std::sort(out.begin(), out.end());
  return out;
}
// Shape of the keepdim result, to broadcast a reduced gradient back over x.
Shape keep_shape(const Tensor& x, const std::vector<int64_t>& dims) {
  Shape s = x.shape();
  for (int64_t d : dims) s[d] = 1;
  return s;
}
int64_t reduced_count(const Tensor& x, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= x.shape()[d];
  return n;
}
}  // namespace

// z = sum_k x_k;  dx += broadcast(g)
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  auto dims = reduced_dims("sum", x, dims_in);
  Tensor out = raw::reduce(ReduceOp::Sum, x, dims, keepdim);
  Shape ks = keep_shape(x, dims);
  record(OpId::Sum, {x}, {out}, {},
         [ks](BackwardContext& c) { c.accumulate(0, expand(reshape(c.grad_output(), ks), c.input_shapes_[0])); });
  return out;
}

// z = sum_k x_k / n;  dx += broadcast(g) / n
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  auto dims = reduced_dims("mean", x, dims_in);
  Tensor out = raw::reduce(ReduceOp::Mean, x, dims, keepdim);
  Shape ks = keep_shape(x, dims);
  double n = static_cast<double>(reduced_count(x, dims));
  record(OpId::Mean, {x}, {out}, {}, [ks, n](BackwardContext& c) {
    c.accumulate(0, expand(div(reshape(c.grad_output(), ks), n), c.input_shapes_[0]));
  });
  return out;
}

namespace {
// z = max_k x_k (or min);  dx += g * (x == z) / count(x == z): ties share the gradient evenly.
Tensor extremum(OpId op, ReduceOp rop, const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  const char* name = op_name(op);
  auto dims = reduced_dims(name, x, dims_in);
  Tensor out = raw::reduce(rop, x, dims, keepdim);
  Shape ks = keep_shape(x, dims);
  record(op, {x}, {out}, {x, out}, [ks, dims](BackwardContext& c) {
    // The mask of the extremes is constant (it changes only where values cross).
    Tensor z = raw::reshape(c.saved(1).detach(), ks);
    Tensor mask = raw::binary(BinaryOp::Eq, c.saved(0).detach(), z);
    Tensor count = raw::reduce(ReduceOp::Sum, mask, dims, true);
    c.accumulate(0, mul(mask, div(reshape(c.grad_output(), ks), count)));
  });
  return out;
}
}  // namespace

Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum(OpId::Max, ReduceOp::Max, x, dims, keepdim);
}
Tensor min(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum(OpId::Min, ReduceOp::Min, x, dims, keepdim);
}

// var = sum (x - mean)^2 / (n - correction): composite, its gradient comes from the pieces.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims_in, int64_t correction, bool keepdim) {
  auto dims = reduced_dims("var", x, dims_in);
  int64_t n = reduced_count(x, dims);
  // No degrees of freedom left gives inf or nan (0/0), as torch.var does, not an error. Its gradient is then
  // torch's 2 (x - mean) / 0 = +-inf: the mean's path (zero, since the centred values sum to 0) is cut, or
  // inf - inf would make it nan.
  int64_t dof = std::max<int64_t>(0, n - correction);
  Tensor m = mean(x, dims, true);
  Tensor centred = sub(x, dof == 0 ? m.detach() : m);
  return div(sum(mul(centred, centred), dims, keepdim), static_cast<double>(dof));
}

Tensor argmax(const Tensor& x, int64_t dim) { return raw::argmax(x, dim); }

}  // namespace gs
