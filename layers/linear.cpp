// Linear, Flatten and Dropout modules.
#include "layers/linear.h"

#include <cmath>

#include "autograd/nn_ops.h"
#include "layers/init.h"

namespace gs::nn {

Linear::Linear(const LinearOptions& options) : options_(options) {
  GS_CHECK(options.in > 0 && options.out > 0, "Linear: in (%lld) and out (%lld) features must be positive",
           (long long)options.in, (long long)options.out);
  weight_ = register_parameter("weight", empty({options.out, options.in}));
  if (options.bias) bias_ = register_parameter("bias", empty({options.out}));
  reset();
}

void Linear::reset(Generator* gen) {
  kaiming_uniform_(weight_, std::sqrt(5.0), FanMode::FanIn, Nonlinearity::LeakyRelu, gen);
  if (bias_.defined()) {
    double bound = 1.0 / std::sqrt(static_cast<double>(options_.in));
    uniform_(bias_, -bound, bound, gen);
  }
}

Tensor Linear::forward(const Tensor& x) {
  GS_CHECK(x.dim() >= 1 && x.size(-1) == options_.in, "linear: input %s has %lld features, weight expects %lld",
           shape_str(x.shape()).c_str(), (long long)(x.dim() ? x.size(-1) : 0), (long long)options_.in);
  Tensor y = gs::matmul(x, gs::transpose(weight_, 0, 1));
  return bias_.defined() ? y + bias_ : y;
}

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(options_.in) + ", out_features=" + std::to_string(options_.out) +
         ", bias=" + py_bool(options_.bias);
}

std::string Flatten::extra_repr() const {
  return "start_dim=" + std::to_string(start_dim_) + ", end_dim=" + std::to_string(end_dim_);
}

Dropout::Dropout(double p) : p_(p) {
  GS_CHECK(p >= 0 && p <= 1, "Dropout: probability p must be in [0, 1], got %g", p);
}

Tensor Dropout::forward(const Tensor& x) { return gs::dropout(x, p_, is_training(), generator_); }

}  // namespace gs::nn
