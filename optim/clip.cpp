// Gradient clipping by total norm and by value, and the total gradient norm.
// CPU grads are updated in place through their data pointer (a strided grad goes through a
// copy), with norms summed in double; CUDA grads through device ops (norms summed in f32).
#include "optim/clip.h"

#include <algorithm>
#include <cmath>

#include "autograd/tape.h"
#include "optim/optimizer.h"
#include "tensor/raw_ops.h"

namespace gs::optim {
namespace {

std::vector<Tensor> defined_grads(const char* op, const std::vector<Tensor>& params) {
  std::vector<Tensor> grads;
  for (const Tensor& p : params) {
    if (!p.defined() || !p.grad().defined()) continue;
    Tensor g = p.grad();
    GS_CHECK(is_floating(g.dtype()), "%s: grad %s is not an f32/f64 tensor", op, g.describe().c_str());
    grads.push_back(g);
  }
  return grads;
}

// Applies fn to every element of g (dtype T) in place.
template <class T, class Fn>
void update_in_place(const Tensor& g, Fn fn) {
  Tensor work = g.is_contiguous() ? g : raw::contiguous(g);
  T* data = work.data<T>();
  parallel_for(work.numel(), [&](int64_t i) { data[i] = fn(data[i]); });
  if (!work.is_same(g)) raw::copy_(g, work);
}

// sum |x|^p (or max |x| when p is inf) over n elements, in double.
template <class T>
double norm_part(const T* x, int64_t n, double p) {
  double acc = 0;
  if (std::isinf(p)) {
    for (int64_t i = 0; i < n; ++i) {
      double a = std::abs(static_cast<double>(x[i]));
      if (std::isnan(a)) return a;
      acc = std::max(acc, a);
    }
  } else if (p == 2) {
    // Fixed chunks summed in order: the result does not depend on the thread count, so a resumed
    // run on another machine clips exactly as the original did.
    constexpr int64_t kChunk = 1 << 15;
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
#if defined(GS_OPENMP)
#pragma omp parallel for schedule(static) if (chunks > 1)
#endif
    for (int64_t c = 0; c < chunks; ++c) {
      double sum = 0;
      for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i)
        sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
      partial[static_cast<size_t>(c)] = sum;
    }
    for (double part : partial) acc += part;
  } else if (p == 1) {
    for (int64_t i = 0; i < n; ++i) acc += std::abs(static_cast<double>(x[i]));
  } else {
    for (int64_t i = 0; i < n; ++i) acc += std::pow(std::abs(static_cast<double>(x[i])), p);
  }
  return acc;
}

// The same sum (or max) on the device, read back as one number.
double norm_part_on_device(const Tensor& g, double p) {
  using raw::UnaryOp;
  Tensor a = raw::unary(UnaryOp::Abs, raw::reshape(g, {-1}));
  if (std::isinf(p)) return raw::reduce(raw::ReduceOp::Max, a, {0}, false).item();
  Tensor powered = p == 1 ? a : p == 2 ? raw::unary(UnaryOp::Square, a) : raw::unary(UnaryOp::PowScalar, a, p);
  return raw::reduce(raw::ReduceOp::Sum, powered, {0}, false).item();
}

double norm_part(const Tensor& g, double p) {
  if (!g.device().is_cpu()) return g.numel() == 0 ? 0.0 : norm_part_on_device(g, p);
  Tensor c = raw::contiguous(g);
  return GS_DISPATCH_FLOAT(c.dtype(), "grad_norm", [&] { return norm_part(c.data<scalar_t>(), c.numel(), p); });
}

double total_norm(const char* op, const std::vector<Tensor>& grads, double norm_type) {
  GS_CHECK(norm_type > 0, "%s: norm_type must be > 0 or inf, got %g", op, norm_type);
  NoGradGuard no_grad;
  double acc = 0;
  for (const Tensor& g : grads) {
    double part = norm_part(g, norm_type);
    if (std::isnan(part)) return part;
    acc = std::isinf(norm_type) ? std::max(acc, part) : acc + part;
  }
  if (std::isinf(norm_type) || norm_type == 1) return acc;
  if (norm_type == 2) return std::sqrt(acc);
  return std::pow(acc, 1.0 / norm_type);
}

}  // namespace

double grad_norm(const std::vector<Tensor>& params, double norm_type) {
  return total_norm("grad_norm", defined_grads("grad_norm", params), norm_type);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  GS_CHECK(max_norm >= 0, "clip_grad_norm: max_norm must be >= 0, got %g", max_norm);
  std::vector<Tensor> grads = defined_grads("clip_grad_norm", params);
  const double norm = total_norm("clip_grad_norm", grads, norm_type);
  if (!std::isfinite(norm)) {
    GS_CHECK(!error_if_nonfinite,
             "clip_grad_norm: the total norm of order %g of the gradients is non-finite (%g), so it cannot be "
             "clipped; pass error_if_nonfinite=false to leave such gradients unchanged",
             norm_type, norm);
    return norm;
  }
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1) {
    NoGradGuard no_grad;
    for (const Tensor& g : grads) {
      if (!g.device().is_cpu()) {
        raw::mul_(g, coef);
        continue;
      }
      GS_DISPATCH_FLOAT(g.dtype(), "clip_grad_norm", [&] {
        const scalar_t c = static_cast<scalar_t>(coef);
        update_in_place<scalar_t>(g, [c](scalar_t x) { return x * c; });
      });
    }
  }
  return norm;
}

void clip_grad_value(const std::vector<Tensor>& params, double clip_value) {
  GS_CHECK(clip_value >= 0, "clip_grad_value: clip_value must be >= 0, got %g", clip_value);
  NoGradGuard no_grad;
  for (const Tensor& g : defined_grads("clip_grad_value", params)) {
    if (!g.device().is_cpu()) {
      raw::copy_(g, raw::unary(raw::UnaryOp::Clamp, g, -clip_value, clip_value));
      continue;
    }
    GS_DISPATCH_FLOAT(g.dtype(), "clip_grad_value", [&] {
      const scalar_t hi = static_cast<scalar_t>(clip_value);
      update_in_place<scalar_t>(g, [hi](scalar_t x) { return x > hi ? hi : (x < -hi ? -hi : x); });
    });
  }
}

}  // namespace gs::optim
