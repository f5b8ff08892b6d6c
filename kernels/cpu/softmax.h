// Softmax, log-softmax and fused softmax-cross-entropy over the last axis of (rows, cols).
// Variants: "ref" (serial, three passes) and "omp" (rows in parallel).
#pragma once
#include <cstdint>

#include "kernels/registry.h"

namespace gs::kernels {

// out (rows, cols) = softmax or log_softmax of in (rows, cols)
template <class T> using SoftmaxFn = void (*)(const T* in, T* out, int64_t rows, int64_t cols, bool log);
// grad_in (rows, cols) = backward of softmax/log_softmax given its output y and grad_out gy
template <class T>
using SoftmaxBackwardFn = void (*)(const T* y, const T* gy, T* grad_in, int64_t rows, int64_t cols, bool log);
template <class T> const VariantTable<SoftmaxFn<T>>& softmax_table();
template <class T> const VariantTable<SoftmaxBackwardFn<T>>& softmax_backward_table();

// Cross-entropy with integer targets, label smoothing eps and optional class weights w (cols;
// null = all 1), as torch.nn.functional.cross_entropy:
//   loss[r] = -((1-eps) w_t lp_t + eps/C sum_c w_c lp_c),  lp = log_softmax(x[r]), t = target[r]
// (0 where t == ignore). logits (rows, cols), target (rows), loss (rows), log_probs (rows, cols)
// saved for backward.
template <class T>
void cross_entropy_forward(const T* logits, const int64_t* target, const T* weight, T* loss, T* log_probs, int64_t rows,
                           int64_t cols, double smoothing, int64_t ignore_index);
// grad_logits[r, c] = grad_loss[r] * (softmax_c * A - a_c) with a_c = (1-eps) w_t [c == t] + eps/C w_c
// and A = sum_c a_c = (1-eps) w_t + eps/C weight_sum (0 for ignored rows). Without weights
// (weight null; weight_sum unused) that is (softmax - q) * grad_loss[r].
template <class T>
void cross_entropy_backward(const T* log_probs, const int64_t* target, const T* weight, double weight_sum,
                            const T* grad_loss, T* grad_logits, int64_t rows, int64_t cols, double smoothing,
                            int64_t ignore_index);

}  // namespace gs::kernels
