// WeightEma (optim/ema.h): in-place averaging through the raw ops, so it runs on either device.
#include "optim/ema.h"

#include "tensor/raw_ops.h"

namespace gs::optim {

WeightEma::WeightEma(NamedTensors target, double decay) : target_(std::move(target)), decay_(decay) {
  GS_CHECK(decay >= 0 && decay < 1, "ema: decay must be in [0, 1), got %g", decay);
}

void WeightEma::check(const NamedTensors& source) const {
  GS_CHECK(source.size() == target_.size(), "ema: the model has %zu tensors, its average %zu", source.size(),
           target_.size());
  for (size_t i = 0; i < source.size(); ++i) {
    const auto& [name, t] = target_[i];
    const Tensor& s = source[i].second;
    GS_CHECK(source[i].first == name && s.shape() == t.shape() && s.dtype() == t.dtype() && s.device() == t.device(),
             "ema: tensor %zu is '%s' %s in the model but '%s' %s in its average", i, source[i].first.c_str(),
             s.describe().c_str(), name.c_str(), t.describe().c_str());
  }
}

void WeightEma::copy_from(const NamedTensors& source) {
  check(source);
  for (size_t i = 0; i < source.size(); ++i) raw::copy_(target_[i].second, source[i].second);
}

void WeightEma::update(const NamedTensors& source) {
  check(source);
  for (size_t i = 0; i < source.size(); ++i) {
    const Tensor& avg = target_[i].second;
    const Tensor& value = source[i].second;
    if (!is_floating(avg.dtype())) {
      raw::copy_(avg, value);
      continue;
    }
    Tensor mixed = raw::binary(raw::BinaryOp::Add, raw::binary_scalar(raw::BinaryOp::Mul, avg, decay_),
                               raw::binary_scalar(raw::BinaryOp::Mul, value, 1.0 - decay_));
    raw::copy_(avg, mixed);
  }
}

}  // namespace gs::optim
