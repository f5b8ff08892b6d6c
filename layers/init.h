// Parameter initialisers, as torch.nn.init: they fill a tensor in place (no autograd) and take an
// optional Generator (default: gs::default_generator()). Fan computation follows PyTorch:
// fan_in = size(1) * receptive field, fan_out = size(0) * receptive field.
//
//   gs::nn::kaiming_uniform_(conv_weight);            // PyTorch's default for Conv/Linear weights
//   gs::nn::xavier_normal_(w, /*gain=*/1.0, &gen);
#pragma once
#include <cmath>
#include <utility>

#include "tensor/tensor.h"

namespace gs {
class Generator;
}

namespace gs::nn {

enum class FanMode { FanIn, FanOut };
enum class Nonlinearity { Linear, Conv, Sigmoid, Tanh, Relu, LeakyRelu };

// torch.nn.init.calculate_gain; `param` is the leaky_relu negative slope.
double calculate_gain(Nonlinearity nonlinearity, double param = 0.01);
// {fan_in, fan_out} of a weight with at least 2 dims.
std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& t);

// U(-bound, bound), bound = gain * sqrt(3 / fan). With a = sqrt(5) and leaky_relu this is
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for Conv2d and Linear weights.
void kaiming_uniform_(const Tensor& t, double a = std::sqrt(5.0), FanMode mode = FanMode::FanIn,
                      Nonlinearity nonlinearity = Nonlinearity::LeakyRelu, Generator* gen = nullptr);
// N(0, std^2), std = gain / sqrt(fan).
void kaiming_normal_(const Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                     Nonlinearity nonlinearity = Nonlinearity::LeakyRelu, Generator* gen = nullptr);
// U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);
// N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)).
void xavier_normal_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);
void uniform_(const Tensor& t, double low = 0.0, double high = 1.0, Generator* gen = nullptr);
void normal_(const Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
void constant_(const Tensor& t, double value);
void zeros_(const Tensor& t);
void ones_(const Tensor& t);

}  // namespace gs::nn
