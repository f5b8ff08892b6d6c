// Gradient clipping and norms over a list of parameters' grads (undefined grads are skipped).
// Semantics follow torch.nn.utils.clip_grad_norm_ / clip_grad_value_, except that a non-finite
// total norm leaves the grads untouched (PyTorch would scale them by nan or 0).
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace gs::optim {

// The norm of all grads taken together (norm_type > 0, or INFINITY for the max-abs norm),
// accumulated in double. 0 when no parameter has a grad.
double grad_norm(const std::vector<Tensor>& params, double norm_type = 2.0);

// Scales every grad by max_norm / (total_norm + 1e-6) when that is below 1, and returns the
// pre-clip total norm. A nan/inf norm is returned as it is and the grads are left unchanged,
// unless error_if_nonfinite, which throws gs::Error instead.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                      bool error_if_nonfinite = false);

// Clamps every grad element to [-clip_value, clip_value] (nan stays nan).
void clip_grad_value(const std::vector<Tensor>& params, double clip_value);

}  // namespace gs::optim
