// TrainConfig: every setting of a training run, resolved, as written to <run>/config.json and
// read back by `gradscope train --config` so a run can be repeated exactly.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gs::train {

struct TrainConfig {
  std::string model = "fashionnet";  // zoo name, ignored when model_spec is set
  std::string model_spec;            // JSON model spec file (layers/spec.h)
  std::string data = "fashion-mnist";
  int64_t epochs = 10;
  int64_t batch_size = 64;
  int64_t accumulate = 1;             // batches whose gradients are summed into one optimizer step
  std::string optimizer = "adamw";
  double lr = 2e-3;
  bool lr_auto = false;               // --lr auto: run the LR range test first; lr then holds its suggestion
  double momentum = 0.9;             // sgd, rmsprop
  double weight_decay = 5e-4;
  double ema = 0;                     // decay of a moving average of the weights (optim/ema.h; 0 = off)
  bool nesterov = false;
  double beta1 = 0.9, beta2 = 0.999;
  std::string schedule = "onecycle";  // optim::make_scheduler spec; "none" keeps lr
  double clip_norm = 0;               // 0 = off
  double clip_value = 0;              // 0 = off
  double label_smoothing = 0;
  // Input-gradient penalty ("double backpropagation", Drucker & LeCun 1992): the training objective
  // adds grad_penalty * the batch mean of |d(sum of losses)/d(image)|^2, by a create_graph backward.
  double grad_penalty = 0;             // 0 = off
  // Activation checkpointing (torch's checkpoint_sequential): the model's top-level layers in this
  // many segments, all but the last recomputed in backward instead of kept (1 = off). Same numbers.
  int64_t recompute_segments = 1;
  std::string class_weights = "none";  // none | balanced | w0,w1,...: cross-entropy weights (training_loss)
  std::string augment = "none";       // io::make_augmentation spec, e.g. "crop:2,flip"
  std::string sampler = "shuffle";    // shuffle | balanced (equal classes, with replacement) | sequential
  double mixup = 0, cutmix = 0;       // Beta alphas of io/mix.h's batch mixing (0 = off)
  uint64_t seed = 0;
  int threads = 0;                    // 0 = OMP_NUM_THREADS or all cores
  std::string out = "runs/latest";
  int64_t limit_train = 0;            // 0 = all; else a stratified subset of this size
  int64_t limit_test = 0;             // 0 = all; else a stratified subset of the test set
  std::string exclude_list;           // training-set indices (file order) to leave out (train/exclude_list.h)
  double val_fraction = 0.0;          // held out of the training set
  int64_t patience = 0;               // early stopping: epochs without a better val acc (0 = off)
  std::string weights;                // initial weights (state_dict or checkpoint .safetensors)
  std::string resume;                 // checkpoint to continue from
  std::string kernels;                // "op=variant,..." as GS_KERNELS
  std::string device = "cpu";         // cpu, cuda or cuda:N: where the model runs (run_device in trainer.h)
  bool sync_bn = false;               // data-parallel: batch norms take every process's batch statistics
  bool progress = true;
  // Probes (inspect/probes.h): per-layer statistics every probe_every steps to <out>/probes.jsonl and,
  // unless tensorboard is off, TensorBoard event files in <out>; detect_anomaly checks every step.
  int64_t probe_every = 0;            // 0 = off
  std::vector<std::string> probe;     // module / parameter globs (empty = all)
  bool detect_anomaly = false;        // stop at the first op (forward or backward) that makes NaN/Inf
  bool tensorboard = true;            // event files (epoch curves, images; probe data with probe_every)

  std::string to_json() const;
  static TrainConfig from_json(const std::string& text, const std::string& source);
  static TrainConfig from_file(const std::string& path);
  // Hyperparameters for optim::make_optimizer.
  std::map<std::string, double> optimizer_hyper() const;
  // The values every command that trains checks before any work: an Error naming the flag, e.g.
  // "train: --clip-value must be a finite number >= 0, got nan". (lr is checked by the optimizer.)
  void check_values(const std::string& command) const;
};

}  // namespace gs::train
