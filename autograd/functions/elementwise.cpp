// Elementwise ops: forward and backward side by side. Broadcasting is undone by
// BackwardContext::accumulate (sum_to the input's shape).
#include "autograd/ops.h"
#include "tensor/raw_ops.h"

namespace gs {

using raw::BinaryOp;
using raw::UnaryOp;

namespace {
Tensor bin(BinaryOp op, const Tensor& a, const Tensor& b, double alpha = 0, double beta = 0) {
  return raw::binary(op, a, b, alpha, beta);
}
Tensor scalar_like(const Tensor& t, double v) { return scalar_tensor(v, {t.dtype(), t.device()}); }

// dx = g * f'(x) for a piecewise-linear f (abs, clamp, relu, leaky_relu): f' is constant between
// the kinks, so a double backward needs only g * f'(x) with f'(x) = fused(1, x) held constant.
Tensor piecewise_backward(const BackwardContext& c, BinaryOp fused, double alpha = 0, double beta = 0) {
  const Tensor &g = c.grad_output(), &x = c.saved(0);
  if (!c.create_graph()) return bin(fused, g, x, alpha, beta);
  return mul(g, bin(fused, ones_like(x.detach()), x.detach(), alpha, beta));
}

// gelu'(x) = Φ(x) + x φ(x), recorded so that it is differentiable in turn: d/dx = φ(x) (2 - x²).
Tensor gelu_derivative(const Tensor& x) {
  Tensor d = bin(BinaryOp::GeluBackward, ones_like(x.detach()), x.detach());
  record_derivative(OpId::Gelu, {x}, {d}, {x}, [](BackwardContext& c) {
    const Tensor& v = c.saved(0);
    Tensor v2 = mul(v, v);
    Tensor phi = mul(exp(mul(v2, -0.5)), 0.3989422804014327);  // 1/sqrt(2 pi)
    c.accumulate(0, mul(c.grad_output(), mul(phi, 2.0 - v2)));
  });
  return d;
}
}  // namespace

// z = a + b;  da += g, db += g
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = bin(BinaryOp::Add, a, b);
  record(OpId::Add, {a, b}, {out}, {}, [](BackwardContext& c) {
    c.accumulate(0, c.grad_output());
    c.accumulate(1, c.grad_output());
  });
  return out;
}

// z = a - b;  da += g, db -= g
Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = bin(BinaryOp::Sub, a, b);
  record(OpId::Sub, {a, b}, {out}, {}, [](BackwardContext& c) {
    c.accumulate(0, c.grad_output());
    if (c.needs_grad(1)) c.accumulate(1, neg(c.grad_output()));
  });
  return out;
}

// z = a * b;  da += g * b, db += g * a
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = bin(BinaryOp::Mul, a, b);
  record(OpId::Mul, {a, b}, {out}, {a, b}, [](BackwardContext& c) {
    if (c.needs_grad(0)) c.accumulate(0, mul(c.grad_output(), c.saved(1)));
    if (c.needs_grad(1)) c.accumulate(1, mul(c.grad_output(), c.saved(0)));
  });
  return out;
}

// z = a / b;  da += g / b, db -= g * a / b^2 = -g * z / b
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = bin(BinaryOp::Div, a, b);
  record(OpId::Div, {a, b}, {out}, {b, out}, [](BackwardContext& c) {
    Tensor g_over_b = div(c.grad_output(), c.saved(0));
    c.accumulate(0, g_over_b);
    if (c.needs_grad(1)) c.accumulate(1, neg(mul(g_over_b, c.saved(1))));
  });
  return out;
}

// z = a^b;  da += g * b * a^(b-1) (0 at 0^0),  db += g * z * log(a)   (only where a > 0; 0 elsewhere)
Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor out = bin(BinaryOp::Pow, a, b);
  record(OpId::Pow, {a, b}, {out}, {a, b, out}, [](BackwardContext& c) {
    const Tensor &x = c.saved(0), &y = c.saved(1), &z = c.saved(2), &g = c.grad_output();
    if (c.needs_grad(0)) {
      // y x^(y-1), and 0 at x = y = 0 (x^0 is constant; 0 * 0^-1 would be nan), as PyTorch. The
      // exponent y - 1 becomes 0 there only, so a double backward stays finite there and exact
      // elsewhere (d/dy of y x^(y-1) at y = 0 is 1/x).
      Tensor zero_zero = mul(bin(BinaryOp::Eq, y, scalar_like(y, 0.0)), bin(BinaryOp::Eq, x, scalar_like(x, 0.0)));
      Tensor y_minus_1 = where(zero_zero, scalar_like(y, 0.0), sub(y, 1.0));
      c.accumulate(0, mul(g, mul(y, pow(x, y_minus_1))));
    }
    if (c.needs_grad(1)) {
      // x^y log x, and 0 where x = 0 and y >= 0 (x^y is 0 or 1 there), as PyTorch: a negative base
      // has no real logarithm, so its exponent's gradient is nan (x^y is real only at whole y).
      Tensor zero_base = mul(bin(BinaryOp::Eq, x, scalar_like(x, 0.0)), bin(BinaryOp::Ge, y, scalar_like(y, 0.0)));
      Tensor safe_x = where(zero_base, scalar_like(x, 1.0), x);
      c.accumulate(1, mul(g, mul(z, log(safe_x))));
    }
  });
  return out;
}

// z = x^p (scalar p);  dx += g * p * x^(p-1)
Tensor pow(const Tensor& a, double p) {
  Tensor out = raw::unary(UnaryOp::PowScalar, a, p);
  record(OpId::Pow, {a}, {out}, {a}, [p](BackwardContext& c) {
    // p x^(p-1); x^0 is 1 (a constant), which keeps p = 1 away from 0^-1 in a double backward,
    // and x^0 is a constant: its gradient is 0 everywhere, x = 0 included (0 * 0^-1 is nan).
    if (p == 0.0) return c.accumulate(0, zeros_like(c.grad_output()));
    Tensor d = p == 1.0 ? ones_like(c.saved(0)) : mul(pow(c.saved(0), p - 1.0), p);
    c.accumulate(0, mul(c.grad_output(), d));
  });
  return out;
}

Tensor add(const Tensor& a, double b) { return add(a, scalar_like(a, b)); }
Tensor sub(const Tensor& a, double b) { return sub(a, scalar_like(a, b)); }
Tensor mul(const Tensor& a, double b) { return mul(a, scalar_like(a, b)); }
Tensor div(const Tensor& a, double b) { return div(a, scalar_like(a, b)); }

// z = -x;  dx -= g
Tensor neg(const Tensor& x) {
  Tensor out = raw::unary(UnaryOp::Neg, x);
  record(OpId::Neg, {x}, {out}, {}, [](BackwardContext& c) { c.accumulate(0, neg(c.grad_output())); });
  return out;
}

// z = e^x;  dx += g * z
Tensor exp(const Tensor& x) {
  Tensor out = raw::unary(UnaryOp::Exp, x);
  record(OpId::Exp, {x}, {out}, {out}, [](BackwardContext& c) { c.accumulate(0, mul(c.grad_output(), c.saved(0))); });
  return out;
}

// z = log x;  dx += g / x
Tensor log(const Tensor& x) {
  Tensor out = raw::unary(UnaryOp::Log, x);
  record(OpId::Log, {x}, {out}, {x}, [](BackwardContext& c) { c.accumulate(0, div(c.grad_output(), c.saved(0))); });
  return out;
}

// z = sqrt x;  dx += g / (2 z)
Tensor sqrt(const Tensor& x) {
  Tensor out = raw::unary(UnaryOp::Sqrt, x);
  record(OpId::Sqrt, {x}, {out}, {out},
         [](BackwardContext& c) { c.accumulate(0, div(c.grad_output(), mul(c.saved(0), 2.0))); });
  return out;
}

// z = |x|;  dx += g * sign(x)   (0 at x = 0, as PyTorch)
Tensor abs(const Tensor& x) {
  Tensor out = raw::unary(UnaryOp::Abs, x);
  record(OpId::Abs, {x}, {out}, {x},
         [](BackwardContext& c) { c.accumulate(0, piecewise_backward(c, BinaryOp::AbsBackward)); });
  return out;
}

// z = min(max(x, lo), hi);  dx += g where lo <= x <= hi (PyTorch passes the gradient at the bounds)
Tensor clamp(const Tensor& x, double lo, double hi) {
  GS_CHECK(lo <= hi, "clamp: min %g is greater than max %g", lo, hi);
  Tensor out = raw::unary(UnaryOp::Clamp, x, lo, hi);
  record(OpId::Clamp, {x}, {out}, {x},
         [lo, hi](BackwardContext& c) { c.accumulate(0, piecewise_backward(c, BinaryOp::ClampBackward, lo, hi)); });
  return out;
}

// z = max(x, 0);  dx += g * (z > 0)   (0 at x = 0, as PyTorch; a nan x stays nan and passes g, as
// torch's relu and threshold_backward, so a nan is not hidden by the next relu). z > 0 exactly where x > 0, so
// the output is saved, as torch's threshold_backward takes it: the next layer (a conv, a linear)
// saves that same tensor as its input, where saving x would keep a second activation alive.
Tensor relu(const Tensor& x) {
  Tensor out = raw::unary(UnaryOp::Relu, x);
  record(OpId::Relu, {x}, {out}, {out},
         [](BackwardContext& c) { c.accumulate(0, piecewise_backward(c, BinaryOp::ReluBackward)); });
  return out;
}

// z = x > 0 ? x : s x;  dx += g * (x > 0 ? 1 : s)
Tensor leaky_relu(const Tensor& x, double slope) {
  Tensor out = raw::unary(UnaryOp::LeakyRelu, x, slope);
  record(OpId::LeakyRelu, {x}, {out}, {x},
         [slope](BackwardContext& c) { c.accumulate(0, piecewise_backward(c, BinaryOp::LeakyReluBackward, slope)); });
  return out;
}

// z = x Φ(x) (exact erf form);  dx += g * (Φ(x) + x φ(x))
Tensor gelu(const Tensor& x) {
  Tensor out = raw::unary(UnaryOp::Gelu, x);
  record(OpId::Gelu, {x}, {out}, {x}, [](BackwardContext& c) {
    if (!c.create_graph()) return c.accumulate(0, bin(BinaryOp::GeluBackward, c.grad_output(), c.saved(0)));
    c.accumulate(0, mul(c.grad_output(), gelu_derivative(c.saved(0))));
  });
  return out;
}

// z = 1 / (1 + e^-x);  dx += g * z (1 - z)
Tensor sigmoid(const Tensor& x) {
  Tensor out = raw::unary(UnaryOp::Sigmoid, x);
  record(OpId::Sigmoid, {x}, {out}, {out}, [](BackwardContext& c) {
    if (!c.create_graph()) return c.accumulate(0, bin(BinaryOp::SigmoidBackward, c.grad_output(), c.saved(0)));
    const Tensor& z = c.saved(0);
    c.accumulate(0, mul(c.grad_output(), mul(z, 1.0 - z)));
  });
  return out;
}

// z = tanh x;  dx += g * (1 - z^2)
Tensor tanh(const Tensor& x) {
  Tensor out = raw::unary(UnaryOp::Tanh, x);
  record(OpId::Tanh, {x}, {out}, {out}, [](BackwardContext& c) {
    if (!c.create_graph()) return c.accumulate(0, bin(BinaryOp::TanhBackward, c.grad_output(), c.saved(0)));
    const Tensor& z = c.saved(0);
    c.accumulate(0, mul(c.grad_output(), 1.0 - mul(z, z)));
  });
  return out;
}

// z = cond ? a : b;  da += g where cond, db += g where !cond
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Tensor out = raw::where(cond, a, b);
  record(OpId::Where, {a, b}, {out}, {cond}, [](BackwardContext& c) {
    const Tensor& g = c.grad_output();
    Tensor zero = zeros({}, {g.dtype(), g.device()});
    if (c.needs_grad(0)) c.accumulate(0, where(c.saved(0), g, zero));
    if (c.needs_grad(1)) c.accumulate(1, where(c.saved(0), zero, g));
  });
  return out;
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator/(const Tensor& a, double b) { return div(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(b, a); }
Tensor operator-(double a, const Tensor& b) { return add(neg(b), a); }
Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
Tensor operator/(double a, const Tensor& b) { return div(scalar_like(b, a), b); }
Tensor operator-(const Tensor& x) { return neg(x); }

}  // namespace gs
