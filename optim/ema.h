// An exponential moving average of a model's weights, as timm's ModelEmaV2 and torch's
// AveragedModel(get_ema_multi_avg_fn(decay), use_buffers=True): after each optimizer step,
//   avg = decay * avg + (1 - decay) * value   for floating tensors (parameters and buffers),
//   avg = value                               for integer ones (num_batches_tracked).
// The averages are a second model's own tensors, updated in place, so that model evaluates,
// saves and exports like any other.
//
//   auto ema_model = make_same_model();  ema_model->to(device);
//   gs::optim::WeightEma ema(ema_model->state_dict(), 0.999);
//   ema.copy_from(model->state_dict());                          // start equal
//   for (...) { ...; optimizer.step(); ema.update(model->state_dict()); }
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace gs::optim {

class WeightEma {
 public:
  using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
  // target: the averaged copy's tensors; decay in [0, 1) (0: a copy of the live weights).
  WeightEma(NamedTensors target, double decay);
  void copy_from(const NamedTensors& source);  // target = source
  void update(const NamedTensors& source);     // one averaging step
  double decay() const { return decay_; }

 private:
  void check(const NamedTensors& source) const;  // names, shapes, dtypes and devices match
  NamedTensors target_;
  double decay_;
};

}  // namespace gs::optim
