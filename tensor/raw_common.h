// Shared helpers of the raw front-ends (private to tensor/): the device seam. op_device()
// checks that the operands share one device and, for CUDA, that the build has the backend and
// that the kernels' dtype (f32; i64 for indices) is used. GS_ON_CUDA(...) compiles its
// statements only in CUDA builds, where kernels/cuda/ops.h is defined.
#pragma once
#include "tensor/tensor.h"

#if GS_CUDA
#include "kernels/cuda/ops.h"
#include "kernels/cuda/runtime.h"
#define GS_ON_CUDA(...) __VA_ARGS__
#else
#define GS_ON_CUDA(...) ((void)0)
#endif

namespace gs::raw::detail {

// The operands' common device; for CUDA it is made current for the kernels that follow.
inline Device op_device(const char* op, std::initializer_list<const Tensor*> tensors) {
  Device d = common_device(op, tensors);
  if (d.is_cuda()) {
#if GS_CUDA
    try {
      kernels::cuda::set_device(d.index);
    } catch (const std::exception& e) {
      throw Error(std::string(op) + ": " + e.what());
    }
#else
    GS_CHECK(false, "%s: tensors are on %s but this gradscope build has no CUDA backend", op, d.str().c_str());
#endif
  }
  return d;
}

// CUDA kernels are f32: other floating dtypes are a clear error on a CUDA device.
inline void require_cuda_f32(const char* op, const Tensor& t) {
  GS_CHECK(t.dtype() == DType::F32, "%s: CUDA kernels take f32 tensors, got %s%s on %s (convert with to_dtype)", op,
           dtype_name(t.dtype()), shape_str(t.shape()).c_str(), t.device().str().c_str());
}

}  // namespace gs::raw::detail
