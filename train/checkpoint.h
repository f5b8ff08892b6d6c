// Training checkpoints: one safetensors file holding the model state_dict ("model.*"),
// optimizer state ("optimizer.*"), scheduler state ("scheduler.*"), and in its metadata the
// epoch, the default generator's state and the config. Written atomically (io/safetensors).
// load_weights() also accepts a plain PyTorch state_dict saved with safetensors.
#pragma once
#include <string>

#include "layers/module.h"
#include "optim/optimizer.h"
#include "optim/lr_scheduler.h"
#include "train/config.h"

namespace gs::train {

inline constexpr const char* kCheckpointFormat = "gradscope-checkpoint-1";

struct CheckpointInfo {
  int64_t epoch = 0;           // epochs completed
  double best_metric = -1;     // best validation accuracy so far (-1: none, or no validation set)
  std::string config_json;
  int64_t best_epoch = 0;  // the epoch of best_metric (0: none); older checkpoints lack it
  // Module::repr() of the model as build_model made it (before --sync-bn): layer types and their
  // settings, which the weights alone do not pin down (ReLU for Tanh, another dropout p, a stride
  // that keeps the shapes). Empty: not recorded (older checkpoints).
  std::string model_repr;
};

// "" when the two reprs are the same; else where they first differ ("line 4: 'ReLU()' in the
// checkpoint, 'Tanh()' here").
std::string model_difference(const std::string& saved_repr, const std::string& built_repr);

// `model` is saved as "model.*", the weights that eval, export and inspect load. With a weight
// average (train --ema) that is the average, and `trained` (the weights the optimizer steps) goes
// to "train_model.*" for --resume.
void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer* optimizer,
                     const optim::LRScheduler* scheduler, const CheckpointInfo& info,
                     const nn::Module* trained = nullptr);
// Restores everything save_checkpoint wrote, including the default generator's state. With
// `average` (resuming with --ema): a checkpoint holding "train_model.*" loads that into `model` and
// "model.*" into `average`; one without starts the average at the model's weights. A checkpoint
// with an average and no `average` to take it is an error.
CheckpointInfo load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer* optimizer,
                               optim::LRScheduler* scheduler, nn::Module* average = nullptr);
// Model weights only, from a checkpoint or a plain state_dict file (strict: every key must match).
// A checkpoint recorded for another model (model_repr) whose weights still fit is loaded with a
// warning naming the difference (fine-tuning into a changed model is allowed; a silent one is not).
void load_weights(const std::string& path, nn::Module& model);

}  // namespace gs::train
