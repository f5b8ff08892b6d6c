// Central-difference gradcheck in f64.
#include "autograd/gradcheck.h"

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "tensor/random.h"
#include "tensor/raw_ops.h"

namespace gs {

namespace {
std::string index_str(const Shape& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(idx);
}
}  // namespace

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs, GradcheckOptions opt) {
  GradcheckResult result;
  std::vector<Tensor> grad_inputs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (!t.requires_grad()) continue;
    GS_CHECK(t.dtype() == DType::F64, "gradcheck: input %zu is %s; gradcheck needs f64 inputs", i,
             dtype_name(t.dtype()));
    GS_CHECK(t.is_leaf(), "gradcheck: input %zu must be a leaf tensor", i);
    grad_inputs.push_back(t);
  }
  GS_CHECK(!grad_inputs.empty(), "gradcheck: no input requires grad");

  // Fixed random weights make any output a scalar: L = sum(out * w).
  Tensor out0;
  {
    NoGradGuard no_grad;
    out0 = fn(inputs);
  }
  GS_CHECK(out0.dtype() == DType::F64, "gradcheck: the function returned %s, expected f64", dtype_name(out0.dtype()));
  Generator gen(opt.seed);
  Tensor w = randn(out0.shape(), {DType::F64}, &gen);
  auto scalar_of = [&](const std::vector<Tensor>& in) {
    NoGradGuard no_grad;
    Tensor out = fn(in);
    return raw::reduce(raw::ReduceOp::Sum, raw::binary(raw::BinaryOp::Mul, out, w), {}, false).item();
  };

  Tensor loss = sum(mul(fn(inputs), w));
  std::vector<Tensor> analytic = grad(loss, grad_inputs);

  size_t gi = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    const Tensor& x = inputs[i];
    std::vector<double> a = analytic[gi++].to_vector<double>();
    // Perturb a private copy of the input's storage through a view with the caller's shape,
    // strides and offset, so a non-contiguous input stays non-contiguous.
    size_t storage_elems = x.storage()->nbytes / sizeof(double);
    Tensor holder = empty({static_cast<int64_t>(storage_elems)}, {DType::F64});
    std::copy_n(static_cast<const double*>(x.storage()->data), storage_elems, holder.data<double>());
    Tensor view = raw::as_strided(holder, x.shape(), x.strides(), x.offset());
    std::vector<Tensor> in = inputs;
    in[i] = view;
    int64_t n = x.numel();
    for (int64_t k = 0; k < n; ++k) {
      int64_t off = x.offset(), rest = k;
      for (int64_t d = x.dim() - 1; d >= 0; --d) {
        off += (rest % x.shape()[d]) * x.strides()[d];
        rest /= x.shape()[d];
      }
      double* p = holder.data<double>() + off;
      const double original = *p;
      *p = original + opt.eps;
      double plus = scalar_of(in);
      *p = original - opt.eps;
      double minus = scalar_of(in);
      *p = original;
      double numeric = (plus - minus) / (2 * opt.eps);
      double err = std::abs(a[k] - numeric);
      if (err > result.max_abs_error) {
        result.max_abs_error = err;
        result.worst_input = i;
        result.worst_index = k;
        result.analytic = a[k];
        result.numeric = numeric;
      }
      if (err > opt.atol + opt.rtol * std::abs(numeric) && result.ok) {
        result.ok = false;
      }
    }
  }
  if (!result.ok) {
    const Tensor& x = inputs[result.worst_input];
    result.message = format(
        "gradcheck: input %zu %s, element %lld %s: analytic %.10g vs numeric %.10g (|diff| %.3g > atol %g + rtol %g * "
        "|numeric|)",
        result.worst_input, shape_str(x.shape()).c_str(), (long long)result.worst_index,
        index_str(x.shape(), result.worst_index).c_str(), result.analytic, result.numeric, result.max_abs_error,
        opt.atol, opt.rtol);
  }
  return result;
}

GradcheckResult gradgradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs, GradcheckOptions opt) {
  std::vector<size_t> wrt;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].requires_grad()) wrt.push_back(i);
  }
  GS_CHECK(!wrt.empty(), "gradgradcheck: no input requires grad");
  Tensor out0;
  {
    NoGradGuard no_grad;
    out0 = fn(inputs);
  }
  GS_CHECK(out0.dtype() == DType::F64, "gradgradcheck: the function returned %s, expected f64",
           dtype_name(out0.dtype()));
  Generator gen(opt.seed + 1);
  Tensor seed = randn(out0.shape(), {DType::F64}, &gen).set_requires_grad(true);
  std::vector<Tensor> v;
  for (size_t i : wrt) v.push_back(randn(inputs[i].shape(), {DType::F64}, &gen));
  const size_t n = inputs.size();
  // The differences below differentiate what the create_graph formulas compute, so a value that
  // is wrong in them alone would pass: first, the create_graph gradients must be the plain ones.
  {
    std::vector<Tensor> leaves;
    for (size_t i : wrt) leaves.push_back(inputs[i]);
    std::vector<Tensor> plain = grad(fn(inputs), leaves, seed.detach());
    std::vector<Tensor> recorded = grad(fn(inputs), leaves, seed.detach(), false, true);
    for (size_t k = 0; k < wrt.size(); ++k) {
      if (!plain[k].defined() && !recorded[k].defined()) continue;
      GS_CHECK(plain[k].defined() && recorded[k].defined(),
               "gradgradcheck: input %zu has a gradient in only one of the plain and create_graph passes", wrt[k]);
      std::vector<double> p = plain[k].to_vector<double>(), r = recorded[k].detach().to_vector<double>();
      for (size_t j = 0; j < p.size(); ++j) {
        if (std::abs(p[j] - r[j]) > 1e-9 + 1e-7 * std::abs(p[j])) {
          GradcheckResult bad;
          bad.ok = false;
          bad.worst_input = wrt[k];
          bad.worst_index = static_cast<int64_t>(j);
          bad.analytic = r[j];
          bad.numeric = p[j];
          bad.max_abs_error = std::abs(p[j] - r[j]);
          bad.message = format(
              "gradgradcheck: input %zu %s, element %lld %s: the create_graph gradient %.10g differs from the plain "
              "one %.10g",
              wrt[k], shape_str(inputs[wrt[k]].shape()).c_str(), (long long)j,
              index_str(inputs[wrt[k]].shape(), static_cast<int64_t>(j)).c_str(), r[j], p[j]);
          return bad;
        }
      }
    }
  }
  // (x, w) -> sum_i <dL/dx_i, v_i>. gradcheck evaluates it under no_grad on plain copies for the
  // differences: recording is switched back on and the copies made leaves that require grad.
  auto first_order = [&](const std::vector<Tensor>& in) {
    EnableGradGuard enable;
    std::vector<Tensor> x(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
    std::vector<Tensor> leaves;
    for (size_t i : wrt) {
      if (!x[i].requires_grad()) x[i] = x[i].detach().set_requires_grad(true);
      leaves.push_back(x[i]);
    }
    std::vector<Tensor> g = grad(fn(x), leaves, in[n], false, true);
    Tensor total = mul(sum(in[n]), 0.0);  // keeps a graph where every gradient is a constant
    for (size_t k = 0; k < g.size(); ++k) total = add(total, sum(mul(g[k], v[k])));
    return total;
  };
  std::vector<Tensor> all = inputs;
  all.push_back(seed);
  GradcheckResult r = gradcheck(first_order, all, opt);
  if (!r.ok) {
    r.message = format("gradgradcheck (d/d%s of the gradients): %s",
                       r.worst_input == n ? "seed" : format("input %zu", r.worst_input).c_str(), r.message.c_str());
  }
  return r;
}

}  // namespace gs
