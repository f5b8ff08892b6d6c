// The scalar formula of every elementwise op as a __host__ __device__ switch, for the CUDA
// kernels (the CPU variants keep their vectorising lambdas in kernels/cpu/elementwise_math.h).
// tests/kernels/test_cuda_elementwise.cpp checks each op here against the CPU ref kernel.
#pragma once
#include <cmath>

#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/hd.h"

namespace gs::kernels::cuda {

GS_HD float unary_apply(UnaryOp op, float x, float alpha, float beta) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Abs: return std::fabs(x);
    case UnaryOp::Relu: return x <= 0.0f ? 0.0f : x;  // nan stays nan, as torch
    case UnaryOp::LeakyRelu: return x > 0.0f ? x : alpha * x;
    case UnaryOp::Gelu: return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case UnaryOp::Sigmoid: return 1.0f / (1.0f + std::exp(-x));
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Clamp: return x < alpha ? alpha : (x > beta ? beta : x);
    case UnaryOp::PowScalar: return std::pow(x, alpha);
    case UnaryOp::Sign: return static_cast<float>((x > 0.0f) - (x < 0.0f));
    case UnaryOp::Square: return x * x;
    case UnaryOp::Copy: return x;
  }
  return x;
}

GS_HD float binary_apply(BinaryOp op, float x, float y, float alpha, float beta) {
  switch (op) {
    case BinaryOp::Add: return x + y;
    case BinaryOp::Sub: return x - y;
    case BinaryOp::Mul: return x * y;
    case BinaryOp::Div: return x / y;
    case BinaryOp::Pow: return std::pow(x, y);
    case BinaryOp::Maximum: return (x != x || x > y) ? x : y;
    case BinaryOp::Minimum: return (x != x || x < y) ? x : y;
    case BinaryOp::Eq: return static_cast<float>(x == y);
    case BinaryOp::Ne: return static_cast<float>(x != y);
    case BinaryOp::Lt: return static_cast<float>(x < y);
    case BinaryOp::Le: return static_cast<float>(x <= y);
    case BinaryOp::Gt: return static_cast<float>(x > y);
    case BinaryOp::Ge: return static_cast<float>(x >= y);
    case BinaryOp::ReluBackward: return y <= 0.0f ? 0.0f : x;
    case BinaryOp::LeakyReluBackward: return y > 0.0f ? x : alpha * x;
    case BinaryOp::GeluBackward: {
      float cdf = 0.5f * (1.0f + std::erf(y * 0.70710678118654752f));
      float pdf = std::exp(-0.5f * y * y) * 0.3989422804014327f;
      return x * (cdf + y * pdf);
    }
    case BinaryOp::SigmoidBackward: return x * y * (1.0f - y);
    case BinaryOp::TanhBackward: return x * (1.0f - y * y);
    case BinaryOp::AbsBackward: return x * static_cast<float>((y > 0.0f) - (y < 0.0f));
    case BinaryOp::ClampBackward: return (y >= alpha && y <= beta) ? x : 0.0f;
  }
  return x;
}

}  // namespace gs::kernels::cuda
