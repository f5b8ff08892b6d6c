// The LR range test (Smith 2015; fastai's lr_find): train for N mini-batches while the lr grows
// exponentially from start_lr to end_lr, record the debiased-EMA smoothed loss, stop once it
// exceeds 4x the best, then put the weights, buffers, optimizer state and RNG back as they were.
//
//   gs::train::LRFinderResult r = gs::train::lr_find(*model, *optimizer, [&] { return loss_of_next_batch(); });
//   std::printf("suggested lr: %g\n", r.suggested_lr);
//
// Suggestions, all computed, one chosen (options.suggestion):
//   valley    the middle of the longest run of decreasing smoothed loss (fastai's default)
//   steepest  the lr where d(smoothed loss)/d(log10 lr) is most negative
//   minimum   the lr of the lowest smoothed loss, divided by 10
// lr_find_for_config() builds the model, data and optimizer a `train` config describes and runs it
// on train's objective (the loss, of mixed batches with --mixup / --cutmix, plus its input-gradient
// penalty with --grad-penalty);
// write_lr_find_outputs() writes the curve (CSV, SVG, TensorBoard scalars) into a directory.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "io/dataloader.h"
#include "layers/module.h"
#include "optim/optimizer.h"
#include "train/config.h"

namespace gs::train {

struct LRFinderOptions {
  double start_lr = 1e-7;
  double end_lr = 10;
  int64_t num_steps = 100;
  double smooth_beta = 0.98;             // EMA weight of the past (fastai)
  double diverge_factor = 4.0;           // stop when smoothed loss > factor * best smoothed loss
  std::string suggestion = "valley";     // valley | steepest | minimum
  double clip_norm = 0, clip_value = 0;  // applied before each step, as the trainer does
  // Data-parallel: called after each backward with the batch's loss; it averages the gradients
  // over the processes and returns the averaged loss, so that every process sweeps the curve one
  // process would at the whole step's batch, and every process stops at the same step.
  std::function<double(double)> after_backward;
};

struct LRFinderPoint {
  int64_t step = 0;
  double lr = 0;
  double loss = 0;           // raw mini-batch loss
  double smoothed_loss = 0;  // debiased EMA
};

struct LRSuggestions {
  double valley = 0, steepest = 0, minimum = 0;  // 0 when the curve is too short to tell
};

struct LRFinderResult {
  std::vector<LRFinderPoint> points;
  LRSuggestions suggestions;
  std::string method;       // the chosen suggestion's name
  double suggested_lr = 0;  // the chosen suggestion's value
  bool diverged = false;    // stopped by the divergence rule (or a non-finite loss) before num_steps
};

// The lr of step i of n: start * (end/start)^(i/(n-1)).
double lr_at_step(const LRFinderOptions& options, int64_t step);

// Runs the sweep. next_loss() returns the loss of the next mini-batch (graph recorded); lr_find
// zeroes grads, runs backward and steps `optimizer` (whose group lrs it sets each step).
// Afterwards model parameters and buffers, optimizer state and lrs, the default generator and the
// model's train/eval mode are exactly as before (bit for bit).
LRFinderResult lr_find(nn::Module& model, optim::Optimizer& optimizer, const std::function<Tensor()>& next_loss,
                       const LRFinderOptions& options = {});

// The three suggestions from a recorded curve (uses the smoothed losses, dropping the first tenth
// of the recorded points and the last five when the curve is long enough; fastai drops a tenth of
// the requested steps, which differs when the sweep stopped early on divergence).
LRSuggestions suggest_lr(const std::vector<LRFinderPoint>& points);
double pick_suggestion(const LRSuggestions& s, const std::string& method);

// Builds model, data (train split after --val-fraction/--limit-train, with the config's
// augmentation and normalisation) and optimizer from `config`, and runs lr_find on them.
LRFinderResult lr_find_for_config(const TrainConfig& config, const LRFinderOptions& options);

// The same on an existing model, optimizer and training loader (train --lr auto), with the config's
// training loss (label smoothing, class weights over the loader's images) and clipping.
LRFinderResult lr_find_on_loader(nn::Module& model, optim::Optimizer& optimizer, io::DataLoader& loader,
                                 const TrainConfig& config, const LRFinderOptions& options);

// <dir>/lr_find.csv (step,lr,loss,smoothed_loss), <dir>/lr_find.svg (log-lr plot, suggestions marked) and
// TensorBoard scalars lr_find/{loss,smoothed_loss,lr,suggested_lr} in an events file there.
void write_lr_find_outputs(const std::string& dir, const LRFinderResult& result);
std::string lr_find_svg(const LRFinderResult& result);

}  // namespace gs::train
