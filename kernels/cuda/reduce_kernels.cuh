// Reduction, softmax and softmax-cross-entropy CUDA kernels: a block (block_reduce.cuh) or a
// thread per output.
// Device code only: reduce.cu launches these. The CUDA emulator
// (kernels/cuda/emulator/cuda_emulator.h) runs the very same kernels on the CPU: against the
// CPU ref kernels in tests/kernels/test_cuda_emulated.cpp, and as the device of the emulated
// build (GS_CUDA=EMULATE). Kernels have internal linkage: each includer gets its own copy.
#pragma once
#include <cmath>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/device_code.h"
#include "kernels/cuda/index_math.h"

namespace gs::kernels::cuda {
namespace {

// One block per output (o, i): blockIdx.x walks outer*inner in a grid-stride loop.
__global__ void reduce_block_kernel(ReduceOp op, const float* in, float* out, int64_t outer, int64_t r, int64_t inner) {
  __shared__ double shared[kWarpSize];
  for (int64_t idx = blockIdx.x; idx < outer * inner; idx += gridDim.x) {
    int64_t o = idx / inner, i = idx % inner;
    double v = reduce_thread_partial(op, in, r, inner, o, i, threadIdx.x, blockDim.x);
    v = block_reduce(op, v, shared);
    if (threadIdx.x == 0) out[idx] = static_cast<float>(reduce_finish(op, v, r));
  }
}
__global__ void reduce_thread_kernel(ReduceOp op, const float* in, float* out, int64_t outer, int64_t r,
                                     int64_t inner) {
  for (int64_t idx = grid_first(blockIdx.x, blockDim.x, threadIdx.x); idx < outer * inner;
       idx += grid_step(gridDim.x, blockDim.x)) {
    int64_t o = idx / inner, i = idx % inner;
    out[idx] = static_cast<float>(reduce_finish(op, reduce_thread_partial(op, in, r, inner, o, i, 0, 1), r));
  }
}
// Row max and log(sum(exp(x - max))) of one row, by the whole block.
__device__ void row_max_logsumexp(const float* x, int64_t cols, float* shared, float& row_max, float& log_sum) {
  float m = reduce_identity<float>(ReduceOp::Max);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = reduce_combine(ReduceOp::Max, m, x[c]);
  row_max = block_reduce(ReduceOp::Max, m, shared);
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += expf(x[c] - row_max);
  log_sum = logf(block_reduce(ReduceOp::Sum, s, shared));
}

__global__ void softmax_kernel(const float* in, float* out, int64_t rows, int64_t cols, bool log) {
  __shared__ float shared[kWarpSize];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* x = in + row * cols;
    float* y = out + row * cols;
    float row_max, log_sum;
    row_max_logsumexp(x, cols, shared, row_max, log_sum);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
      y[c] = log ? x[c] - row_max - log_sum : expf(x[c] - row_max - log_sum);
  }
}
// softmax: gx = y (gy - sum(gy y));  log_softmax: gx = gy - exp(y) sum(gy)
__global__ void softmax_backward_kernel(const float* y, const float* gy, float* gx, int64_t rows, int64_t cols,
                                        bool log) {
  __shared__ float shared[kWarpSize];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* yr = y + row * cols;
    const float* gr = gy + row * cols;
    float s = 0.0f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += log ? gr[c] : gr[c] * yr[c];
    s = block_reduce(ReduceOp::Sum, s, shared);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
      gx[row * cols + c] = log ? gr[c] - expf(yr[c]) * s : yr[c] * (gr[c] - s);
  }
}
// loss[r] = -((1-eps) w_t lp[t] + eps/C sum_c w_c lp[c]), lp = log_softmax(x[r]), w = weight
// (all 1 when null); 0 for ignored rows.
__global__ void cross_entropy_forward_kernel(const float* logits, const int64_t* target, const float* weight,
                                             float* loss, float* log_probs, int64_t rows, int64_t cols, float eps,
                                             int64_t ignore_index) {
  __shared__ float shared[kWarpSize];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* x = logits + row * cols;
    float* lp = log_probs + row * cols;
    float row_max, log_sum;
    row_max_logsumexp(x, cols, shared, row_max, log_sum);
    float s = 0.0f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      lp[c] = x[c] - row_max - log_sum;
      s += weight ? weight[c] * lp[c] : lp[c];
    }
    s = block_reduce(ReduceOp::Sum, s, shared);  // its barriers also make lp[t] visible below
    if (threadIdx.x == 0) {
      int64_t t = target[row];
      // Without smoothing the sum term is left out, as on the CPU: 0 * (-inf) for a masked-out
      // logit would make the loss NaN.
      loss[row] = t == ignore_index ? 0.0f
                                    : -((1.0f - eps) * (weight ? weight[t] : 1.0f) * lp[t] +
                                        (eps != 0.0f ? eps / static_cast<float>(cols) * s : 0.0f));
    }
  }
}
// grad[r, c] = grad_loss[r] (softmax_c A - a_c), a_c = (1-eps) w_t [c == t] + eps/C w_c,
// A = (1-eps) w_t + eps/C weight_sum; with w all 1 (weight null) that is softmax - q.
__global__ void cross_entropy_backward_kernel(const float* log_probs, const int64_t* target, const float* weight,
                                              float weight_sum, const float* grad_loss, float* grad_logits,
                                              int64_t rows, int64_t cols, float eps, int64_t ignore_index) {
  const float uniform = eps / static_cast<float>(cols);
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < rows * cols;
       i += grid_step(gridDim.x, blockDim.x)) {
    int64_t row = i / cols, c = i % cols, t = target[row];
    if (t == ignore_index) {
      grad_logits[i] = 0.0f;
      continue;
    }
    const float w_t = (1.0f - eps) * (weight ? weight[t] : 1.0f);
    const float total = weight ? w_t + uniform * weight_sum : 1.0f;
    const float a = uniform * (weight ? weight[c] : 1.0f) + (c == t ? w_t : 0.0f);
    grad_logits[i] = (expf(log_probs[i]) * total - a) * grad_loss[row];
  }
}
// out[r] = index of the first maximum of row r of x (rows, cols); a NaN is the maximum (the
// first NaN wins), as PyTorch. A thread per row: argmax feeds metrics, not the training step.
__global__ void argmax_rows_kernel(const float* x, int64_t* out, int64_t rows, int64_t cols) {
  for (int64_t r = grid_first(blockIdx.x, blockDim.x, threadIdx.x); r < rows; r += grid_step(gridDim.x, blockDim.x)) {
    const float* row = x + r * cols;
    int64_t best = 0;
    for (int64_t k = 1; k < cols; ++k) {
      if (row[best] != row[best]) break;
      if (row[k] > row[best] || row[k] != row[k]) best = k;
    }
    out[r] = best;
  }
}

}  // namespace
}  // namespace gs::kernels::cuda
