// Differentiable ops: each runs its raw forward (tensor/raw_ops.h) and records a tape entry
// whose backward formula sits next to the forward in autograd/functions/*.cpp.
//
//   Tensor y = gs::relu(gs::matmul(x, w) + b);
//   Tensor loss = gs::cross_entropy(y, labels);
//   gs::backward(loss);
//
// Reductions take dims (empty = all) and keepdim, as in PyTorch. max/min split the gradient
// evenly between tied maxima (PyTorch's amax/amin rule). The op list is autograd/op_list.h.
#pragma once
#include <vector>

#include "autograd/tape.h"

namespace gs {

// ---- elementwise (broadcasting) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
Tensor pow(const Tensor& a, double exponent);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor clamp(const Tensor& x, double min, double max);
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor gelu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);  // cond: nonzero = take a

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator-(const Tensor& x);

// ---- reductions ----
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor max(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor min(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Variance with Bessel's correction by default (correction=1), as torch.var.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim);  // i64 indices, not differentiable

// ---- linear algebra, softmax, losses ----
Tensor matmul(const Tensor& a, const Tensor& b);  // batched, broadcasting, 1-d rules as PyTorch
Tensor softmax(const Tensor& x, int64_t dim = -1);
Tensor log_softmax(const Tensor& x, int64_t dim = -1);

enum class Reduction { None, Mean, Sum };
struct CrossEntropyOptions {
  double label_smoothing = 0.0;
  int64_t ignore_index = -100;  // class-index targets only
  Reduction reduction = Reduction::Mean;
  Tensor weight{};  // class weights (C), the logits' dtype and device; undefined = all 1
};
// torch.nn.functional.cross_entropy. logits (N, C), (C) or (N, C, d1, ..., dk); target either
// i64 class indices of the logits' shape without C ((N), (), (N, d1, ..., dk)) or class
// probabilities of the logits' shape (soft labels, differentiable). With class indices the loss
// of an element is -((1-eps) w_t log p_t + eps/C sum_c w_c log p_c), and the mean divides by the
// sum of w_t over the elements not ignored; with probabilities q it is
// -sum_c w_c ((1-eps) q_c + eps/C) log p_c, and the mean divides by the element count.
// Class-index targets run the fused kernel (one tape entry); probabilities are composed of
// log_softmax, mul and sum.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options = {});
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

// ---- indexing ----
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);

// ---- shape (views where possible) ----
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor view(const Tensor& x, const Shape& shape);  // reshape that refuses to copy
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor expand(const Tensor& x, const Shape& shape);
Tensor contiguous(const Tensor& x);
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);

}  // namespace gs
