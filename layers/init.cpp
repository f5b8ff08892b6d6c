// Parameter initialisers (torch.nn.init formulas), filling through a contiguous f64 buffer so
// any dtype and layout of the target works.
#include "layers/init.h"

#include <vector>

#include "autograd/tape.h"
#include "tensor/random.h"
#include "tensor/raw_ops.h"

namespace gs::nn {

namespace {
template <class Sample>
void fill_with(const Tensor& t, const char* op, Generator* gen, Sample sample) {
  GS_CHECK(t.defined(), "%s: tensor is undefined", op);
  GS_CHECK(is_floating(t.dtype()), "%s: tensor is %s; initialisers need f32 or f64", op, dtype_name(t.dtype()));
  Generator& g = gen ? *gen : default_generator();
  std::vector<double> values(static_cast<size_t>(t.numel()));
  for (auto& v : values) v = sample(g);
  NoGradGuard no_grad;
  raw::copy_(t, from_vector(values, t.shape(), {DType::F64}));
}

double fan_for(const Tensor& t, FanMode mode, const char* op) {
  GS_CHECK(t.dim() >= 2, "%s: fan in and fan out need a tensor with at least 2 dims, got %s", op,
           shape_str(t.shape()).c_str());
  auto [fan_in, fan_out] = fan_in_and_fan_out(t);
  int64_t fan = mode == FanMode::FanIn ? fan_in : fan_out;
  GS_CHECK(fan > 0, "%s: zero-element tensor %s", op, shape_str(t.shape()).c_str());
  return static_cast<double>(fan);
}
}  // namespace

double calculate_gain(Nonlinearity nonlinearity, double param) {
  switch (nonlinearity) {
    case Nonlinearity::Linear:
    case Nonlinearity::Conv:
    case Nonlinearity::Sigmoid:
      return 1.0;
    case Nonlinearity::Tanh:
      return 5.0 / 3.0;
    case Nonlinearity::Relu:
      return std::sqrt(2.0);
    case Nonlinearity::LeakyRelu:
      return std::sqrt(2.0 / (1.0 + param * param));
  }
  return 1.0;
}

std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& t) {
  GS_CHECK(t.dim() >= 2, "fan_in_and_fan_out: needs at least 2 dims, got %s", shape_str(t.shape()).c_str());
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.shape()[d];
  return {t.shape()[1] * receptive, t.shape()[0] * receptive};
}

void kaiming_uniform_(const Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity, Generator* gen) {
  double std = calculate_gain(nonlinearity, a) / std::sqrt(fan_for(t, mode, "kaiming_uniform_"));
  double bound = std::sqrt(3.0) * std;
  fill_with(t, "kaiming_uniform_", gen, [&](Generator& g) { return -bound + 2 * bound * g.uniform(); });
}

void kaiming_normal_(const Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity, Generator* gen) {
  double std = calculate_gain(nonlinearity, a) / std::sqrt(fan_for(t, mode, "kaiming_normal_"));
  fill_with(t, "kaiming_normal_", gen, [&](Generator& g) { return std * g.normal(); });
}

void xavier_uniform_(const Tensor& t, double gain, Generator* gen) {
  double fan_sum = fan_for(t, FanMode::FanIn, "xavier_uniform_") + fan_for(t, FanMode::FanOut, "xavier_uniform_");
  double bound = gain * std::sqrt(6.0 / fan_sum);
  fill_with(t, "xavier_uniform_", gen, [&](Generator& g) { return -bound + 2 * bound * g.uniform(); });
}

void xavier_normal_(const Tensor& t, double gain, Generator* gen) {
  double fan_sum = fan_for(t, FanMode::FanIn, "xavier_normal_") + fan_for(t, FanMode::FanOut, "xavier_normal_");
  double std = gain * std::sqrt(2.0 / fan_sum);
  fill_with(t, "xavier_normal_", gen, [&](Generator& g) { return std * g.normal(); });
}

void uniform_(const Tensor& t, double low, double high, Generator* gen) {
  GS_CHECK(low <= high, "uniform_: low %g is above high %g", low, high);
  fill_with(t, "uniform_", gen, [&](Generator& g) { return low + (high - low) * g.uniform(); });
}

void normal_(const Tensor& t, double mean, double std, Generator* gen) {
  GS_CHECK(std >= 0, "normal_: std %g is negative", std);
  fill_with(t, "normal_", gen, [&](Generator& g) { return mean + std * g.normal(); });
}

void constant_(const Tensor& t, double value) {
  GS_CHECK(t.defined(), "constant_: tensor is undefined");
  NoGradGuard no_grad;
  raw::fill_(t, value);
}
void zeros_(const Tensor& t) { constant_(t, 0.0); }
void ones_(const Tensor& t) { constant_(t, 1.0); }

}  // namespace gs::nn
