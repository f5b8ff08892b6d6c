// Elementwise CPU kernels: unary maps, binary maps with broadcasting, the ternary where, and
// strided copy. Raw pointers and shapes only. Variants: "ref" (serial, readable) and "omp"
// (contiguous fast paths, OpenMP over elements).
#pragma once
#include <cstdint>

#include "kernels/registry.h"

namespace gs::kernels {

// y = f(x); alpha/beta are the op's parameters (leaky slope, clamp bounds, power).
enum class UnaryOp { Neg, Exp, Log, Sqrt, Abs, Relu, LeakyRelu, Gelu, Sigmoid, Tanh, Clamp, PowScalar, Sign, Square, Copy };
// z = f(x, y). The *Backward ops take (grad, saved) and give the input gradient.
enum class BinaryOp {
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  Maximum,
  Minimum,
  Eq,
  Ne,
  Lt,
  Le,
  Gt,
  Ge,
  ReluBackward,       // x <= 0 ? 0 : g (nan passes g, as torch's threshold_backward)
  LeakyReluBackward,  // g * (x > 0 ? 1 : alpha)
  GeluBackward,       // g * gelu'(x)
  SigmoidBackward,    // g * y * (1 - y), y the saved output
  TanhBackward,       // g * (1 - y^2), y the saved output
  AbsBackward,        // g * sign(x)
  ClampBackward,      // g * (alpha <= x <= beta)
};

const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);

// in, out: contiguous (n)
template <class T> using UnaryFn = void (*)(UnaryOp op, const T* in, T* out, int64_t n, double alpha, double beta);
// out: contiguous (shape); a, b: element strides per dim (0 where broadcast)
template <class T>
using BinaryFn = void (*)(BinaryOp op, const T* a, const int64_t* a_strides, const T* b, const int64_t* b_strides,
                          T* out, const int64_t* shape, int ndim, double alpha, double beta);
// out = cond != 0 ? a : b, all with broadcast strides, out contiguous (shape)
template <class T>
using WhereFn = void (*)(const T* cond, const int64_t* c_strides, const T* a, const int64_t* a_strides, const T* b,
                         const int64_t* b_strides, T* out, const int64_t* shape, int ndim);

template <class T> const VariantTable<UnaryFn<T>>& unary_table();
template <class T> const VariantTable<BinaryFn<T>>& binary_table();
template <class T> void where_cpu(const T* cond, const int64_t* c_strides, const T* a, const int64_t* a_strides,
                                  const T* b, const int64_t* b_strides, T* out, const int64_t* shape, int ndim);

// dst (shape, dst_strides) = src (shape, src_strides); element types may differ (dtype casts).
template <class Tin, class Tout>
void copy_strided(const Tin* src, const int64_t* src_strides, Tout* dst, const int64_t* dst_strides,
                  const int64_t* shape, int ndim);


}  // namespace gs::kernels
