// The training loop behind `gradscope train`: builds the model, data, optimizer and schedule
// from a TrainConfig, trains with a progress bar, evaluates, and keeps the run directory:
//   config.json      the resolved config (train --config repeats the run)
//   metrics.jsonl    one line per epoch: losses, accuracies, lr (no timings: same seed => same file)
//   timing.jsonl     per-epoch wall time and images/s
//   summary.json     final test accuracy/loss, best validation accuracy, epochs, train images/s
//   last.safetensors / best.safetensors   checkpoints (train/checkpoint.h): the last epoch, and
//                    the epoch of highest validation accuracy (only with a validation set)
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "autograd/ops.h"
#include "io/dataloader.h"
#include "io/dataset.h"
#include "layers/module.h"
#include "train/config.h"

namespace gs::train {

struct EvalResult {
  double loss = 0;
  double accuracy = 0;
  int64_t count = 0;
};

// Mean cross-entropy and accuracy over a loader, in eval mode under no_grad (restores the mode).
// Runs on the device of the model's parameters (batches are moved there).
EvalResult evaluate(nn::Module& model, io::DataLoader& loader);
// The same over the shards of a data-parallel run (each rank's loader holds its shard): the model
// takes rank 0's buffers first, and the sums over the shards give the whole set's loss and
// accuracy on every rank. A world of one: evaluate(). Every rank must call it.
class ProcessGroup;
EvalResult evaluate_data_parallel(nn::Module& model, io::DataLoader& loader, ProcessGroup& world);
// The epoch's value of a schedule's metric (LRScheduler::metric(): val_loss, val_acc, train_loss,
// train_acc), for its observe().
double epoch_metric(const std::string& metric, double train_loss, double train_acc, const EvalResult& val);
// --device as a Device, checked: a CUDA device needs a CUDA build and a GPU. Every training
// feature runs on either device (probes and anomaly checks read device tensors through copies).
Device run_device(const TrainConfig& config);

struct TrainResult {
  int64_t epochs = 0;
  double final_train_loss = 0;
  double test_loss = 0, test_accuracy = 0;
  double best_metric = -1;     // best validation accuracy (-1 without a validation set)
  bool stopped_early = false;  // --patience ran out before --epochs
  double train_images_per_s = 0;
  double wall_seconds = 0;
};

// The training criterion's options: --label-smoothing and --class-weights, the weights an f32
// (C) tensor on `device`. --class-weights: "none"; "balanced", n / (C n_c) over `train` (the
// images trained on; a class without images is an error); or C comma-separated weights >= 0,
// not all 0. Any other spec is an error naming the flag. The trainer, lr-find and the doctor's
// gradient, LR and fit runs train on it; evaluation losses stay plain cross-entropy.
CrossEntropyOptions training_loss(const TrainConfig& config, const io::Dataset& train, Device device);
// The training loader's order for --sampler (shuffle | balanced | sequential; any other is an error
// naming the flag) and --batch, one process's whole set: train adds its shard, lr-find takes it as is.
io::DataLoaderOptions training_loader_options(const TrainConfig& config, const io::Dataset& train);

// The model a config describes (zoo name or spec file), for the data's channels/classes/size,
// split into config.recompute_segments checkpointed segments (a Sequential only; else an error).
nn::ModulePtr build_model(const TrainConfig& config, int64_t in_channels, int64_t num_classes, int64_t image_size);
// --sync-bn: every batch norm of `model` takes the statistics of all the processes' batches in
// training (nn::convert_sync_batchnorm with ProcessGroup::world(); with one process nothing
// changes). Without the flag it does nothing; with it, a model without batch norm is an error.
void apply_sync_bn(const TrainConfig& config, nn::Module& model);
// One image of image_shape (N, C, H, W) through the model in eval mode under no_grad: an Error
// naming the model and the data's image shape if it does not take them, or if its output is not
// (1, num_classes). Run before anything is written; the model is left as it was.
void check_model_fits(nn::Module& model, const TrainConfig& config, const Shape& image_shape, int64_t num_classes,
                      const Device& device);
// --grad-penalty: objective = loss + lambda / n |d(n loss)/d input|^2, the input's gradient taken
// with create_graph so that backward(objective) differentiates the penalty too. `input` must
// require grad and `loss` be the mean over its n images; penalty is the second term.
struct PenalisedLoss {
  Tensor objective, penalty;
};
PenalisedLoss add_grad_penalty(const Tensor& loss, const Tensor& input, int64_t n, double lambda);
// The per-channel normalisation used for a data set (Fashion-MNIST: 0.2860 / 0.3530).
std::shared_ptr<io::Transform> default_normalization(const std::string& data_spec, const io::Dataset& train);

class Trainer {
 public:
  explicit Trainer(TrainConfig config);
  // Trains to config.epochs; stop_after_epoch > 0 stops early as if interrupted there
  // (the schedule still spans config.epochs), which is how resume is tested.
  TrainResult run(int64_t stop_after_epoch = 0);

 private:
  TrainConfig config_;
};

// Applies --threads / OMP_NUM_THREADS and --kernels; returns the thread count in use.
int apply_runtime_settings(int threads, const std::string& kernels);

}  // namespace gs::train
