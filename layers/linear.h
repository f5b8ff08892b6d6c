// Linear (y = x W^T + b, W [out, in] as torch.nn.Linear), Flatten and Dropout.
#pragma once
#include "layers/module.h"

namespace gs {
class Generator;
}

namespace gs::nn {

struct LinearOptions {
  int64_t in = 0, out = 0;
  bool bias = true;
};

class Linear : public Module {
 public:
  explicit Linear(const LinearOptions& options);
  Linear(int64_t in, int64_t out, bool bias = true) : Linear(LinearOptions{in, out, bias}) {}
  // PyTorch's defaults: kaiming_uniform_(a=sqrt(5)) weight, bias U(-1/sqrt(in), 1/sqrt(in)).
  void reset(Generator* gen = nullptr);
  // x (..., in) -> (..., out)
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;
  const LinearOptions& options() const { return options_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined when options().bias is false

 private:
  LinearOptions options_;
  Tensor weight_, bias_;
};

// Flattens dims start_dim..end_dim into one (torch.nn.Flatten defaults: 1, -1).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim_(start_dim), end_dim_(end_dim) {}
  Tensor forward(const Tensor& x) override { return gs::flatten(x, start_dim_, end_dim_); }
  std::string type_name() const override { return "Flatten"; }
  std::string extra_repr() const override;
  int64_t start_dim() const { return start_dim_; }
  int64_t end_dim() const { return end_dim_; }

 private:
  int64_t start_dim_, end_dim_;
};

// Inverted dropout in training, identity in eval. Uses `generator` if set, else the default one.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override { return "p=" + py_float(p_) + ", inplace=False"; }
  double p() const { return p_; }
  void set_generator(Generator* gen) { generator_ = gen; }

 private:
  double p_;
  Generator* generator_ = nullptr;
};

}  // namespace gs::nn
