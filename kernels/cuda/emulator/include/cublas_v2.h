// cuBLAS as the emulated build (GS_CUDA=EMULATE) sees it: cublasSgemm, its strided-batched form
// and the handle, done on
// the CPU by kernels/cuda/emulator/device/runtime.cpp to cuBLAS's column-major definition.
#pragma once
#include "cuda_runtime.h"

enum cublasStatus_t { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7 };
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
using cublasHandle_t = struct GsEmulatedCublas*;

cublasStatus_t cublasCreate(cublasHandle_t* handle);
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream);
const char* cublasGetStatusString(cublasStatus_t status);
// C (m x n, column-major, ldc) = alpha op(A) op(B) + beta C
cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                           const float* beta, float* C, int ldc);
// batchCount products: matrix i of A, B and C is strideA, strideB, strideC elements after
// matrix i-1 (a stride may be 0: the same matrix for every product).
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float* alpha, const float* A, int lda,
                                         long long int strideA, const float* B, int ldb, long long int strideB,
                                         const float* beta, float* C, int ldc, long long int strideC, int batchCount);

// Not cuBLAS: the number of cuBLAS GEMM calls so far (a strided-batched call counts once), for
// the tests that check how many calls an op makes.
long long gs_emulated_cublas_gemm_calls();
