// Reductions, softmax / log-softmax and softmax-cross-entropy on CUDA. Reductions over the
// middle axis of (outer, r, inner): "block" (a block per output, warp shuffles) and "thread"
// (a thread per output, a serial loop; good when r is small). Softmax: a block per row.
#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/index_math.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/reduce_kernels.cuh"
#include "kernels/cuda/runtime.h"

namespace gs::kernels::cuda {

namespace {
cudaStream_t stream() { return compute_stream(current_device()); }

void reduce_block(ReduceOp op, const float* in, float* out, int64_t outer, int64_t r, int64_t inner) {
  int64_t n = outer * inner;
  if (n <= 0) return;
  int64_t blocks = n < kMaxBlocks ? n : kMaxBlocks;
  GS_LAUNCH(blocks, kBlockThreads, stream(), reduce_block_kernel)(op, in, out, outer, r, inner);
  CUDA_CHECK_LAUNCH();
}

void reduce_thread(ReduceOp op, const float* in, float* out, int64_t outer, int64_t r, int64_t inner) {
  int64_t n = outer * inner;
  if (n <= 0) return;
  GS_LAUNCH(blocks_for(n, kBlockThreads), kBlockThreads, stream(), reduce_thread_kernel)(op, in, out, outer, r, inner);
  CUDA_CHECK_LAUNCH();
}

void softmax_block(const float* in, float* out, int64_t rows, int64_t cols, bool log) {
  if (rows <= 0 || cols <= 0) return;
  int64_t blocks = rows < kMaxBlocks ? rows : kMaxBlocks;
  GS_LAUNCH(blocks, kBlockThreads, stream(), softmax_kernel)(in, out, rows, cols, log);
  CUDA_CHECK_LAUNCH();
}

void softmax_backward_block(const float* y, const float* gy, float* gx, int64_t rows, int64_t cols, bool log) {
  if (rows <= 0 || cols <= 0) return;
  int64_t blocks = rows < kMaxBlocks ? rows : kMaxBlocks;
  GS_LAUNCH(blocks, kBlockThreads, stream(), softmax_backward_kernel)(y, gy, gx, rows, cols, log);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

const VariantTable<ReduceFn<float>>& reduce_table() {
  static const VariantTable<ReduceFn<float>> table = [] {
    VariantTable<ReduceFn<float>> t("cuda.reduce");
    t.add("block", &reduce_block).add("thread", &reduce_thread);
    return t;
  }();
  return table;
}

const VariantTable<SoftmaxFn<float>>& softmax_table() {
  static const VariantTable<SoftmaxFn<float>> table = [] {
    VariantTable<SoftmaxFn<float>> t("cuda.softmax");
    t.add("block", &softmax_block);
    return t;
  }();
  return table;
}

const VariantTable<SoftmaxBackwardFn<float>>& softmax_backward_table() {
  static const VariantTable<SoftmaxBackwardFn<float>> table = [] {
    VariantTable<SoftmaxBackwardFn<float>> t("cuda.softmax_backward");
    t.add("block", &softmax_backward_block);
    return t;
  }();
  return table;
}

void cross_entropy_forward(const float* logits, const int64_t* target, const float* weight, float* loss,
                           float* log_probs, int64_t rows, int64_t cols, double smoothing, int64_t ignore_index) {
  if (rows <= 0 || cols <= 0) return;
  int64_t blocks = rows < kMaxBlocks ? rows : kMaxBlocks;
  GS_LAUNCH(blocks, kBlockThreads, stream(), cross_entropy_forward_kernel)
  (logits, target, weight, loss, log_probs, rows, cols, static_cast<float>(smoothing), ignore_index);
  CUDA_CHECK_LAUNCH();
}

void cross_entropy_backward(const float* log_probs, const int64_t* target, const float* weight, double weight_sum,
                            const float* grad_loss, float* grad_logits, int64_t rows, int64_t cols, double smoothing,
                            int64_t ignore_index) {
  int64_t n = rows * cols;
  if (n <= 0) return;
  GS_LAUNCH(blocks_for(n, kBlockThreads), kBlockThreads, stream(), cross_entropy_backward_kernel)
  (log_probs, target, weight, static_cast<float>(weight_sum), grad_loss, grad_logits, rows, cols,
   static_cast<float>(smoothing), ignore_index);
  CUDA_CHECK_LAUNCH();
}

void argmax_rows(const float* x, int64_t* out, int64_t rows, int64_t cols) {
  if (rows <= 0) return;
  GS_LAUNCH(blocks_for(rows, kBlockThreads), kBlockThreads, stream(), argmax_rows_kernel)(x, out, rows, cols);
  CUDA_CHECK_LAUNCH();
}

}  // namespace gs::kernels::cuda
