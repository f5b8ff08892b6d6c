// Shared helpers of the raw front-ends (private to tensor/).
#pragma once
#include "tensor/tensor.h"

namespace gs::raw::detail {

// The device seam: today every raw op runs on the cpu; a CUDA tensor gets a clear error
// until the CUDA backend registers kernels for the op.
inline void require_cpu(const char* op, std::initializer_list<const Tensor*> tensors) {
  Device d = common_device(op, tensors);
  GS_CHECK(d.is_cpu(), "%s: no kernel for device %s in this build", op, d.str().c_str());
}

}  // namespace gs::raw::detail
