// BatchNorm1d / BatchNorm2d over gs::batch_norm. State as torch.nn: weight, bias (affine),
// running_mean, running_var, num_batches_tracked (i64 scalar) when tracking running stats.
// Training normalises with batch statistics and updates the running ones; eval uses the running
// ones (or the batch's when track_running_stats is false, as PyTorch).
//
// Data-parallel runs may synchronise the batch statistics over the processes, as
// torch.nn.SyncBatchNorm: convert_sync_batchnorm(model, group) (train --sync-bn). The module stays
// a BatchNorm1d/2d (same state_dict, same ONNX export); in training with a group of more than one
// process its forward is gs::sync_batch_norm, and otherwise what it was.
#pragma once
#include "autograd/collective.h"
#include "layers/module.h"

namespace gs::nn {

struct BatchNormOptions {
  int64_t num_features = 0;
  double eps = 1e-5;
  double momentum = 0.1;
  bool affine = true;
  bool track_running_stats = true;
};

class BatchNormBase : public Module {
 public:
  BatchNormBase(const BatchNormOptions& options, int min_dim, int max_dim);
  // weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0.
  void reset();
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  const BatchNormOptions& options() const { return options_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Tensor& running_mean() const { return running_mean_; }
  const Tensor& running_var() const { return running_var_; }
  const Tensor& num_batches_tracked() const { return num_batches_tracked_; }
  // The group whose batches share statistics in training (null: this process's batch alone). Not
  // owned: it must outlive the module's forward and backward passes.
  void set_sync_group(Collective* group) { sync_group_ = group; }
  Collective* sync_group() const { return sync_group_; }

 private:
  BatchNormOptions options_;
  int min_dim_, max_dim_;
  Tensor weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
  Collective* sync_group_ = nullptr;
};

// x (N, C) or (N, C, L)
class BatchNorm1d : public BatchNormBase {
 public:
  explicit BatchNorm1d(const BatchNormOptions& options) : BatchNormBase(options, 2, 3) {}
  explicit BatchNorm1d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                       bool track_running_stats = true)
      : BatchNorm1d(BatchNormOptions{num_features, eps, momentum, affine, track_running_stats}) {}
  std::string type_name() const override { return "BatchNorm1d"; }
};

// x (N, C, H, W)
class BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(const BatchNormOptions& options) : BatchNormBase(options, 4, 4) {}
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                       bool track_running_stats = true)
      : BatchNorm2d(BatchNormOptions{num_features, eps, momentum, affine, track_running_stats}) {}
  std::string type_name() const override { return "BatchNorm2d"; }
};

// Sets `group` as the sync group of every batch norm in `root`'s tree (null: none), as
// torch.nn.SyncBatchNorm.convert_sync_batchnorm; returns how many there are.
int convert_sync_batchnorm(Module& root, Collective* group);

}  // namespace gs::nn
