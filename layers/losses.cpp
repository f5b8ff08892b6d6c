// Loss functions as compositions of recorded ops (their gradients come from the primitives)
// and the loss modules.
#include "layers/losses.h"

#include "tensor/raw_ops.h"
#include "tensor/scope.h"

namespace gs::nn {

namespace {
Tensor reduce_loss(const Tensor& loss, Reduction reduction) {
  switch (reduction) {
    case Reduction::None:
      return loss;
    case Reduction::Sum:
      return gs::sum(loss);
    case Reduction::Mean:
      return gs::mean(loss);
  }
  return loss;
}

void check_pair(const char* op, const Tensor& input, const Tensor& target) {
  GS_CHECK(input.defined() && target.defined(), "%s: input and target must be defined", op);
  GS_CHECK(input.shape() == target.shape(), "%s: input %s and target %s must have the same shape", op,
           shape_str(input.shape()).c_str(), shape_str(target.shape()).c_str());
  GS_CHECK(is_floating(input.dtype()) && input.dtype() == target.dtype(),
           "%s: input (%s) and target (%s) must be the same floating dtype", op, dtype_name(input.dtype()),
           dtype_name(target.dtype()));
}
}  // namespace

Tensor bce_with_logits(const Tensor& logits, const Tensor& target, Reduction reduction) {
  check_pair("bce_with_logits", logits, target);
  // pos = max(x, 0) taken with where(x >= 0, ...) and -|x| = x - 2 pos: both pieces use the same
  // side at x == 0, so the gradient there is the true sigmoid(0) - t (relu'(0) = 0 with
  // abs'(0) = 0 would give -t, and zero logits are common: a zero-initialised head).
  Tensor x_detached = logits.detach();
  Tensor nonnegative = raw::binary_scalar(raw::BinaryOp::Ge, x_detached, 0.0);
  Tensor pos = gs::where(nonnegative, logits, zeros_like(x_detached));
  Tensor neg_abs = logits - 2.0 * pos;
  Tensor loss = pos - logits * target + gs::log(1.0 + gs::exp(neg_abs));
  return reduce_loss(loss, reduction);
}

Tensor soft_dice_loss(const Tensor& input, const Tensor& target, double eps, bool from_logits) {
  check_pair("soft_dice_loss", input, target);
  GS_CHECK(input.dim() >= 2, "soft_dice_loss: expects (N, C, ...) input, got %s", shape_str(input.shape()).c_str());
  GS_CHECK(eps >= 0, "soft_dice_loss: eps must be non-negative, got %g", eps);
  Tensor probs = input;
  if (from_logits) probs = input.size(1) == 1 ? gs::sigmoid(input) : gs::softmax(input, 1);
  std::vector<int64_t> spatial;
  for (int64_t d = 2; d < input.dim(); ++d) spatial.push_back(d);
  // (N, C) sums over the spatial dims (none for (N, C) input: the per-element ratio).
  auto per_class_sum = [&](const Tensor& t) { return spatial.empty() ? t : gs::sum(t, spatial); };
  Tensor intersection = per_class_sum(probs * target);
  Tensor total = per_class_sum(probs) + per_class_sum(target);
  Tensor dice = (2.0 * intersection + eps) / (total + eps);
  return 1.0 - gs::mean(dice);
}

// ---- modules ----

Tensor Loss::operator()(const Tensor& input, const Tensor& target) {
  if (name_in_parent().empty()) return forward(input, target);
  ScopeGuard scope(name_in_parent());
  return forward(input, target);
}

Tensor Loss::forward(const Tensor& x) {
  GS_CHECK(false, "%s: a loss takes (input, target); call it with both", type_name().c_str());
  return x;
}

CrossEntropyLoss::CrossEntropyLoss(double label_smoothing, Reduction reduction, int64_t ignore_index,
                                   const Tensor& weight) {
  GS_CHECK(label_smoothing >= 0 && label_smoothing <= 1, "CrossEntropyLoss: label_smoothing must be in [0, 1], got %g",
           label_smoothing);
  GS_CHECK(!weight.defined() || weight.dim() == 1, "CrossEntropyLoss: weight must be 1-d (one per class), got %s",
           shape_str(weight.shape()).c_str());
  options_.label_smoothing = label_smoothing;
  options_.reduction = reduction;
  options_.ignore_index = ignore_index;
  // A buffer, as in PyTorch: it moves with to(device), and the handle stays valid.
  if (weight.defined()) options_.weight = register_buffer("weight", weight);
}

Tensor CrossEntropyLoss::forward(const Tensor& input, const Tensor& target) {
  return gs::cross_entropy(input, target, options_);
}

std::string CrossEntropyLoss::extra_repr() const {
  return options_.label_smoothing == 0 ? "" : "label_smoothing=" + py_float(options_.label_smoothing);
}

Tensor MSELoss::forward(const Tensor& input, const Tensor& target) { return gs::mse_loss(input, target, reduction_); }

Tensor BCEWithLogitsLoss::forward(const Tensor& input, const Tensor& target) {
  return bce_with_logits(input, target, reduction_);
}

Tensor DiceLoss::forward(const Tensor& input, const Tensor& target) {
  return soft_dice_loss(input, target, eps_, from_logits_);
}

std::string DiceLoss::extra_repr() const { return "eps=" + py_float(eps_) + ", from_logits=" + py_bool(from_logits_); }

}  // namespace gs::nn
