// BatchNorm modules: parameter/buffer registration, the running-stats bookkeeping that the
// functional op leaves to the module (num_batches_tracked), and input checks.
#include "layers/batchnorm.h"

#include "autograd/checkpoint.h"
#include "autograd/nn_ops.h"
#include "layers/init.h"
#include "tensor/raw_ops.h"

namespace gs::nn {

BatchNormBase::BatchNormBase(const BatchNormOptions& options, int min_dim, int max_dim)
    : options_(options), min_dim_(min_dim), max_dim_(max_dim) {
  GS_CHECK(options.num_features > 0, "BatchNorm: num_features must be positive, got %lld",
           (long long)options.num_features);
  GS_CHECK(options.eps > 0, "BatchNorm: eps must be positive, got %g", options.eps);
  GS_CHECK(options.momentum >= 0 && options.momentum <= 1, "BatchNorm: momentum must be in [0, 1], got %g",
           options.momentum);
  int64_t c = options.num_features;
  if (options.affine) {
    weight_ = register_parameter("weight", empty({c}));
    bias_ = register_parameter("bias", empty({c}));
  }
  if (options.track_running_stats) {
    running_mean_ = register_buffer("running_mean", empty({c}));
    running_var_ = register_buffer("running_var", empty({c}));
    num_batches_tracked_ = register_buffer("num_batches_tracked", zeros({}, {DType::I64}));
  }
  reset();
}

void BatchNormBase::reset() {
  if (weight_.defined()) ones_(weight_);
  if (bias_.defined()) zeros_(bias_);
  if (running_mean_.defined()) {
    zeros_(running_mean_);
    ones_(running_var_);
    zeros_(num_batches_tracked_);
  }
}

Tensor BatchNormBase::forward(const Tensor& x) {
  const char* op = "batch_norm";
  GS_CHECK(x.dim() >= min_dim_ && x.dim() <= max_dim_, "%s: %s expects input %s, got %s", op, type_name().c_str(),
           max_dim_ == 4 ? "(N, C, H, W)" : "(N, C) or (N, C, L)", shape_str(x.shape()).c_str());
  GS_CHECK(x.size(1) == options_.num_features, "%s: input %s has %lld channels, %s expects %lld", op,
           shape_str(x.shape()).c_str(), (long long)x.size(1), type_name().c_str(), (long long)options_.num_features);
  bool use_batch_stats = is_training() || !options_.track_running_stats;
  if (is_training() && options_.track_running_stats && !is_recomputing()) {  // once per forward, checkpointed too
    if (num_batches_tracked_.device().is_cpu()) {
      num_batches_tracked_.data<int64_t>()[0] += 1;
    } else {  // a counter on the GPU: bump a host copy and write it back
      Tensor host = num_batches_tracked_.to(Device::cpu());
      host.data<int64_t>()[0] += 1;
      raw::copy_(num_batches_tracked_, host);
    }
  }
  if (is_training() && sync_group_ && sync_group_->size() > 1) {
    return gs::sync_batch_norm(x, weight_, bias_, running_mean_, running_var_, options_.momentum, options_.eps,
                               *sync_group_);
  }
  // The functional op takes (N, C) or (N, C, H, W): a 3-d (N, C, L) input runs as (N, C, L, 1).
  if (x.dim() == 3) {
    Tensor y = gs::batch_norm(gs::unsqueeze(x, 3), weight_, bias_, running_mean_, running_var_, use_batch_stats,
                              options_.momentum, options_.eps);
    return gs::squeeze(y, 3);
  }
  return gs::batch_norm(x, weight_, bias_, running_mean_, running_var_, use_batch_stats, options_.momentum,
                        options_.eps);
}

std::string BatchNormBase::extra_repr() const {
  return std::to_string(options_.num_features) + ", eps=" + py_float(options_.eps) +
         ", momentum=" + py_float(options_.momentum) + ", affine=" + py_bool(options_.affine) +
         ", track_running_stats=" + py_bool(options_.track_running_stats);
}

int convert_sync_batchnorm(Module& root, Collective* group) {
  int converted = 0;
  if (auto* bn = dynamic_cast<BatchNormBase*>(&root)) {
    bn->set_sync_group(group);
    converted = 1;
  }
  for (auto& [name, child] : root.named_children()) converted += convert_sync_batchnorm(*child, group);
  return converted;
}

}  // namespace gs::nn
