// Fused optimizer steps on CUDA: one kernel per parameter buffer runs the whole update of each
// element (optim_math.h, shared with the host tests) instead of a chain of elementwise ops.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/index_math.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/optim_kernels.cuh"
#include "kernels/cuda/runtime.h"

namespace gs::kernels::cuda {

void sgd_step(const SgdConsts& s, float* p, const float* g, float* buf, int64_t n) {
  launch_1d(n, sgd_kernel, s, p, g, buf, n);
}
void adam_step(const AdamConsts& s, float* p, const float* g, float* m, float* v, float* vmax, int64_t n) {
  launch_1d(n, adam_kernel, s, p, g, m, v, vmax, n);
}
void rprop_step(const RpropConsts& s, float* p, const float* g, float* prev, float* step_size, int64_t n) {
  launch_1d(n, rprop_kernel, s, p, g, prev, step_size, n);
}
void rmsprop_step(const RmspropConsts& s, float* p, const float* g, float* square_avg, float* grad_avg, float* buf,
                  int64_t n) {
  launch_1d(n, rmsprop_kernel, s, p, g, square_avg, grad_avg, buf, n);
}

}  // namespace gs::kernels::cuda
