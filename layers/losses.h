// Loss functions: functional forms built from differentiable primitives (no backward of their
// own), and module wrappers with forward(input, target) for configs and the trainer.
//
//   Tensor loss = gs::nn::bce_with_logits(logits, target);            // mean over elements
//   gs::nn::CrossEntropyLoss ce(/*label_smoothing=*/0.1);
//   gs::nn::CrossEntropyLoss weighted(0.0, Reduction::Mean, -100, class_weights);  // (C)
//   Tensor l2 = ce(logits, labels);                                   // labels: i64 (N)
#pragma once
#include "layers/module.h"

namespace gs::nn {

using gs::Reduction;

// Binary cross-entropy on logits, stable for any x: max(x,0) - x*t + log(1 + exp(-|x|)).
// logits and target have the same shape; target in [0, 1] (soft labels allowed).
Tensor bce_with_logits(const Tensor& logits, const Tensor& target, Reduction reduction = Reduction::Mean);

// Soft Dice loss for segmentation-style (N, C, H, W) input and one-hot float target of the same
// shape: 1 - mean over (n, c) of (2 sum(p t) + eps) / (sum(p) + sum(t) + eps), sums over H, W.
// from_logits: p = softmax over C (sigmoid when C == 1); otherwise the input already holds p.
Tensor soft_dice_loss(const Tensor& input, const Tensor& target, double eps = 1.0, bool from_logits = true);

// Base of the loss modules: forward takes (input, target); the one-argument forward throws.
class Loss : public Module {
 public:
  using Module::operator();
  Tensor operator()(const Tensor& input, const Tensor& target);  // scoped like Module::operator()
  virtual Tensor forward(const Tensor& input, const Tensor& target) = 0;
  Tensor forward(const Tensor& x) override;
};

class CrossEntropyLoss : public Loss {
 public:
  // weight: class weights (C), a buffer of the module (state_dict key "weight", as PyTorch's).
  explicit CrossEntropyLoss(double label_smoothing = 0.0, Reduction reduction = Reduction::Mean,
                            int64_t ignore_index = -100, const Tensor& weight = {});
  using Loss::forward;
  // gs::cross_entropy's inputs: (N, C), (C) or (N, C, d1, ...) logits; i64 class indices or
  // probabilities.
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string type_name() const override { return "CrossEntropyLoss"; }
  std::string extra_repr() const override;
  const CrossEntropyOptions& options() const { return options_; }

 private:
  CrossEntropyOptions options_;
};

class MSELoss : public Loss {
 public:
  explicit MSELoss(Reduction reduction = Reduction::Mean) : reduction_(reduction) {}
  using Loss::forward;
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string type_name() const override { return "MSELoss"; }

 private:
  Reduction reduction_;
};

class BCEWithLogitsLoss : public Loss {
 public:
  explicit BCEWithLogitsLoss(Reduction reduction = Reduction::Mean) : reduction_(reduction) {}
  using Loss::forward;
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string type_name() const override { return "BCEWithLogitsLoss"; }

 private:
  Reduction reduction_;
};

class DiceLoss : public Loss {
 public:
  explicit DiceLoss(double eps = 1.0, bool from_logits = true) : eps_(eps), from_logits_(from_logits) {}
  using Loss::forward;
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string type_name() const override { return "DiceLoss"; }
  std::string extra_repr() const override;

 private:
  double eps_;
  bool from_logits_;
};

}  // namespace gs::nn
