// CUDA_CHECK / CUBLAS_CHECK: every CUDA call goes through one, so a failure throws with the
// file, line and the call's text ("kernels/cuda/gemm.cu:88: cudaMemcpyAsync(...) failed: ...").
// Also the compute stream and the cuBLAS handle shared by the .cu files. Include from .cu only.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace gs::kernels::cuda {

[[noreturn]] inline void throw_cuda_error(const char* file, int line, const char* call, const std::string& what) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " + what);
}

// The stream all kernels and copies of `device` are queued on (created on first use).
cudaStream_t compute_stream(int device);
// The cuBLAS handle of the current device, bound to its compute stream.
cublasHandle_t cublas_handle();

}  // namespace gs::kernels::cuda

#define CUDA_CHECK(call)                                                                                \
  do {                                                                                                  \
    cudaError_t gs_cuda_err_ = (call);                                                                  \
    if (gs_cuda_err_ != cudaSuccess)                                                                    \
      ::gs::kernels::cuda::throw_cuda_error(                                                            \
          __FILE__, __LINE__, #call,                                                                    \
          std::string(cudaGetErrorName(gs_cuda_err_)) + " (" + cudaGetErrorString(gs_cuda_err_) + ")"); \
  } while (0)

#define CUBLAS_CHECK(call)                                                                                    \
  do {                                                                                                        \
    cublasStatus_t gs_cublas_st_ = (call);                                                                    \
    if (gs_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                                               \
      ::gs::kernels::cuda::throw_cuda_error(__FILE__, __LINE__, #call, cublasGetStatusString(gs_cublas_st_)); \
  } while (0)

// After a kernel launch: launch errors (bad configuration) surface here, at the launching line.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
