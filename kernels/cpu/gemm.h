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

// `batch` products of one shape and one set of leading dimensions, with the selected variant:
// C + i*c_step = op(A + a_offsets[i]) op(B + b_offsets[i]) for i < batch (alpha 1, beta 0).
// Small products run in parallel over the batch (OpenMP); larger ones one after another, each
// with the variant's own threads.
template <class T>
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, const int64_t* a_offsets,
                  int64_t lda, const T* B, const int64_t* b_offsets, int64_t ldb, T* C, int64_t ldc, int64_t c_step,
                  int64_t batch);

}  // namespace gs::kernels
