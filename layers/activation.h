// Activation layers: thin modules over the differentiable elementwise ops of autograd/ops.h.
// Their repr matches torch.nn (ReLU(), LeakyReLU(negative_slope=0.01), GELU(approximate='none')).
#pragma once
#include "layers/module.h"

namespace gs::nn {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return gs::relu(x); }
  std::string type_name() const override { return "ReLU"; }
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : negative_slope_(negative_slope) {}
  Tensor forward(const Tensor& x) override { return gs::leaky_relu(x, negative_slope_); }
  std::string type_name() const override { return "LeakyReLU"; }
  std::string extra_repr() const override { return "negative_slope=" + py_float(negative_slope_); }
  double negative_slope() const { return negative_slope_; }

 private:
  double negative_slope_;
};

// The exact (erf) GELU, PyTorch's default.
class GELU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return gs::gelu(x); }
  std::string type_name() const override { return "GELU"; }
  std::string extra_repr() const override { return "approximate='none'"; }
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override { return gs::sigmoid(x); }
  std::string type_name() const override { return "Sigmoid"; }
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override { return gs::tanh(x); }
  std::string type_name() const override { return "Tanh"; }
};

class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  std::string type_name() const override { return "Identity"; }
};

}  // namespace gs::nn
