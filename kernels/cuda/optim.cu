// Fused optimizer steps on CUDA: one launch per step updates every parameter (a table of them
// as the kernel's argument), each element's whole update (optim_math.h, shared with the host
// tests) in one thread instead of a chain of elementwise ops.
#include <climits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/index_math.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/optim_kernels.cuh"
#include "kernels/cuda/runtime.h"

namespace gs::kernels::cuda {

namespace {
// The tensors in lists of at most the kernel argument's capacity: one launch per list (for a
// model's parameters, one launch in all); empty tensors take no blocks.
template <class T> void launch_steps(const std::vector<T>& tensors) {
  constexpr int kCapacity = step_list_capacity<T>();
  static_assert(sizeof(StepList<T, kCapacity>) <= kKernelArgBytes, "the step list must fit the kernel arguments");
  StepList<T, kCapacity> list;
  size_t next = 0;
  while (next < tensors.size()) {
    list.count = 0;
    int64_t blocks = 0;
    for (; next < tensors.size() && list.count < kCapacity; ++next) {
      if (tensors[next].n <= 0) continue;
      list.tensors[list.count] = tensors[next];
      list.first_block[list.count] = blocks;
      ++list.count;
      blocks += (tensors[next].n + kStepChunk - 1) / kStepChunk;
    }
    if (blocks == 0) continue;
    if (blocks > INT_MAX)
      throw std::invalid_argument("optimizer step (cuda): " + std::to_string(blocks) + " blocks exceed the grid");
    GS_LAUNCH(dim3(static_cast<unsigned>(blocks)), kBlockThreads, compute_stream(current_device()),
              multi_tensor_step_kernel<T, kCapacity>)(list);
    CUDA_CHECK_LAUNCH();
  }
}
}  // namespace

void sgd_steps(const std::vector<SgdTensor>& tensors) { launch_steps(tensors); }
void adam_steps(const std::vector<AdamTensor>& tensors) { launch_steps(tensors); }
void rprop_steps(const std::vector<RpropTensor>& tensors) { launch_steps(tensors); }
void rmsprop_steps(const std::vector<RmspropTensor>& tensors) { launch_steps(tensors); }

}  // namespace gs::kernels::cuda
