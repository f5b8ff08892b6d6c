// GEMM, row-major, BLAS-style: C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C.
// op(X) = X or X^T by the trans flags; lda/ldb/ldc are row strides of the stored matrices.
// Variants: "ref" (triple loop, the truth), "eigen" (Eigen GEMM on mapped memory) and "packed"
// (gemm_packed.cpp: our own packed panels + 6x32 register micro-kernel, OpenMP stripes).
#pragma once
#include <cstdint>

#include "kernels/registry.h"

namespace gs::kernels {

template <class T>
using GemmFn = void (*)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                        int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);
template <class T> const VariantTable<GemmFn<T>>& gemm_table();

}  // namespace gs::kernels
