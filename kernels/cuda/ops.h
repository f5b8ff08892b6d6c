// The CUDA kernels' host entry points, in plain C++ (no CUDA headers), for tensor/ to dispatch
// to. Same signatures as the CPU kernels (kernels/cpu/*.h), f32 only, all pointers on the
// device; op names carry a "cuda." prefix so `--kernel cuda.matmul=tiled` picks a CUDA variant
// without touching the CPU selection. Defined in kernels/cuda/*.cu (only when GS_CUDA=1).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cuda/optim_math.h"

namespace gs::kernels::cuda {

// ---- elementwise (elementwise.cu): shape/stride arrays are host memory, rank <= kMaxDims ----
const VariantTable<UnaryFn<float>>& unary_table();    // "cuda.unary": grid
const VariantTable<BinaryFn<float>>& binary_table();  // "cuda.binary": grid
void where(const float* cond, const int64_t* c_strides, const float* a, const int64_t* a_strides, const float* b,
           const int64_t* b_strides, float* out, const int64_t* shape, int ndim);
// dst (shape, dst_strides) = src (shape, src_strides); Tin/Tout each float or int64_t.
template <class Tin, class Tout>
void copy_strided(const Tin* src, const int64_t* src_strides, Tout* dst, const int64_t* dst_strides,
                  const int64_t* shape, int ndim);
// dst[i] += alpha * src[i], n contiguous elements
void axpy(float* dst, const float* src, float alpha, int64_t n);

// ---- index ops (index.cu): (outer, d, inner) layouts as kernels/cpu/index.h; T is float or int64_t ----
template <class T>
void gather(const T* in, const int64_t* index, T* out, int64_t outer, int64_t d, int64_t k, int64_t inner);
template <class T>
void scatter_add(T* acc, const int64_t* index, const T* src, int64_t outer, int64_t d, int64_t k, int64_t inner);
template <class T>
void index_select(const T* in, const int64_t* index, T* out, int64_t outer, int64_t d, int64_t k, int64_t inner);
template <class T>
void index_add(T* acc, const int64_t* index, const T* src, int64_t outer, int64_t d, int64_t k, int64_t inner);

// ---- reductions and softmax (reduce.cu) ----
const VariantTable<ReduceFn<float>>& reduce_table();                     // "cuda.reduce": block, thread
const VariantTable<SoftmaxFn<float>>& softmax_table();                   // "cuda.softmax": block
const VariantTable<SoftmaxBackwardFn<float>>& softmax_backward_table();  // "cuda.softmax_backward": block
// The CPU kernels' formulas (kernels/cpu/softmax.h); weight (cols) may be null.
void cross_entropy_forward(const float* logits, const int64_t* target, const float* weight, float* loss,
                           float* log_probs, int64_t rows, int64_t cols, double smoothing, int64_t ignore_index);
void cross_entropy_backward(const float* log_probs, const int64_t* target, const float* weight, double weight_sum,
                            const float* grad_loss, float* grad_logits, int64_t rows, int64_t cols, double smoothing,
                            int64_t ignore_index);
// out (rows) = index of the first maximum of each row of x (rows, cols), NaN the maximum
void argmax_rows(const float* x, int64_t* out, int64_t rows, int64_t cols);

// ---- GEMM and convolution (gemm.cu, conv2d.cu) ----
const VariantTable<GemmFn<float>>& gemm_table();      // "cuda.matmul": cublas (default), tiled
// kernels/cpu/gemm.h's gemm_batched on device pointers (the offsets are host arrays), with a
// beta (C + i*c_step = op(A_i) op(B_i) + beta C_i): with the cublas variant and offsets one
// fixed step apart, one cublasSgemmStridedBatched call; else one product of the selected
// variant after another.
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
                  const int64_t* a_offsets, int64_t lda, const float* B, const int64_t* b_offsets, int64_t ldb,
                  float beta, float* C, int64_t ldc, int64_t c_step, int64_t batch);
const VariantTable<Conv2dFn<float>>& conv2d_table();  // "cuda.conv2d": im2col (default), cudnn
const VariantTable<Conv2dBackwardDataFn<float>>& conv2d_backward_data_table();
const VariantTable<Conv2dBackwardWeightFn<float>>& conv2d_backward_weight_table();
// The im2col variants take the batch in chunks: as many images at once as fit this much scratch
// (the chunk's col matrix and channel-major output), at least one. Default 256 MiB.
void set_conv_scratch_limit(size_t bytes);
size_t conv_scratch_limit();

// ---- batch norm, pooling, dropout (nn.cu) ----
const VariantTable<BatchNormFn<float>>& batch_norm_table();  // "cuda.batch_norm": block
const VariantTable<BatchNormBackwardFn<float>>& batch_norm_backward_table();
const VariantTable<BatchNormDoubleBackwardFn<float>>& batch_norm_double_backward_table();  // "block"
const VariantTable<MaxPool2dFn<float>>& max_pool2d_table();  // "cuda.max_pool2d": direct
const VariantTable<MaxPool2dBackwardFn<float>>& max_pool2d_backward_table();
const VariantTable<AvgPool2dFn<float>>& avg_pool2d_table();
const VariantTable<AvgPool2dBackwardFn<float>>& avg_pool2d_backward_table();
const VariantTable<AdaptiveAvgPool2dFn<float>>& adaptive_avg_pool2d_table();
const VariantTable<AdaptiveAvgPool2dBackwardFn<float>>& adaptive_avg_pool2d_backward_table();
// mask (n) = dropout_mask_element(seed, offset, i, p, keep_scale) (kernels/cuda/philox.h)
void dropout_mask(float* mask, int64_t n, float p, float keep_scale, uint64_t seed, uint64_t offset);

// ---- fused optimizer steps (optim.cu): every tensor of the list in one launch (more only past
// the kernel argument's capacity, step_list_capacity); each tensor has its own constants ----
void sgd_steps(const std::vector<SgdTensor>& tensors);
void adam_steps(const std::vector<AdamTensor>& tensors);
void rprop_steps(const std::vector<RpropTensor>& tensors);
void rmsprop_steps(const std::vector<RmspropTensor>& tensors);

// Builds every CUDA variant table (for `gradscope kernels`).
void register_all_tables();

}  // namespace gs::kernels::cuda
