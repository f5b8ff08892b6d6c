// The scalar formula of every elementwise op, in one place, used by every CPU variant (and
// usable from CUDA: plain inline templates). with_unary/with_binary pick the formula once,
// outside the loop, so the loops see a concrete lambda and vectorise.
#pragma once
#include <cmath>

#include "kernels/cpu/elementwise.h"

namespace gs::kernels {

template <class T, class Body> void with_unary(UnaryOp op, T alpha, T beta, Body body) {
  switch (op) {
    case UnaryOp::Neg: return body([](T x) { return -x; });
    case UnaryOp::Exp: return body([](T x) { return std::exp(x); });
    case UnaryOp::Log: return body([](T x) { return std::log(x); });
    case UnaryOp::Sqrt: return body([](T x) { return std::sqrt(x); });
    case UnaryOp::Abs: return body([](T x) { return std::abs(x); });
    case UnaryOp::Relu: return body([](T x) { return x <= T(0) ? T(0) : x; });  // nan stays nan, as torch
    case UnaryOp::LeakyRelu: return body([alpha](T x) { return x > T(0) ? x : alpha * x; });
    case UnaryOp::Gelu:  // exact (erf) form, PyTorch's default
      return body([](T x) { return T(0.5) * x * (T(1) + std::erf(x * T(M_SQRT1_2))); });
    case UnaryOp::Sigmoid: return body([](T x) { return T(1) / (T(1) + std::exp(-x)); });
    case UnaryOp::Tanh: return body([](T x) { return std::tanh(x); });
    case UnaryOp::Clamp: return body([alpha, beta](T x) { return x < alpha ? alpha : (x > beta ? beta : x); });
    case UnaryOp::PowScalar: return body([alpha](T x) { return std::pow(x, alpha); });
    case UnaryOp::Sign: return body([](T x) { return T((x > T(0)) - (x < T(0))); });
    case UnaryOp::Square: return body([](T x) { return x * x; });
    case UnaryOp::Copy: return body([](T x) { return x; });
  }
}

template <class T, class Body> void with_binary(BinaryOp op, T alpha, T beta, Body body) {
  switch (op) {
    case BinaryOp::Add: return body([](T x, T y) { return x + y; });
    case BinaryOp::Sub: return body([](T x, T y) { return x - y; });
    case BinaryOp::Mul: return body([](T x, T y) { return x * y; });
    case BinaryOp::Div: return body([](T x, T y) { return x / y; });
    case BinaryOp::Pow: return body([](T x, T y) { return std::pow(x, y); });
    case BinaryOp::Maximum: return body([](T x, T y) { return (x != x || x > y) ? x : y; });
    case BinaryOp::Minimum: return body([](T x, T y) { return (x != x || x < y) ? x : y; });
    case BinaryOp::Eq: return body([](T x, T y) { return T(x == y); });
    case BinaryOp::Ne: return body([](T x, T y) { return T(x != y); });
    case BinaryOp::Lt: return body([](T x, T y) { return T(x < y); });
    case BinaryOp::Le: return body([](T x, T y) { return T(x <= y); });
    case BinaryOp::Gt: return body([](T x, T y) { return T(x > y); });
    case BinaryOp::Ge: return body([](T x, T y) { return T(x >= y); });
    case BinaryOp::ReluBackward: return body([](T g, T x) { return x <= T(0) ? T(0) : g; });
    case BinaryOp::LeakyReluBackward: return body([alpha](T g, T x) { return x > T(0) ? g : alpha * g; });
    case BinaryOp::GeluBackward:
      return body([](T g, T x) {
        T cdf = T(0.5) * (T(1) + std::erf(x * T(M_SQRT1_2)));
        T pdf = std::exp(T(-0.5) * x * x) * T(0.3989422804014327);  // 1/sqrt(2*pi)
        return g * (cdf + x * pdf);
      });
    case BinaryOp::SigmoidBackward: return body([](T g, T y) { return g * y * (T(1) - y); });
    case BinaryOp::TanhBackward: return body([](T g, T y) { return g * (T(1) - y * y); });
    case BinaryOp::AbsBackward: return body([](T g, T x) { return g * T((x > T(0)) - (x < T(0))); });
    case BinaryOp::ClampBackward:
      return body([alpha, beta](T g, T x) { return (x >= alpha && x <= beta) ? g : T(0); });
  }
}

}  // namespace gs::kernels
