// Probes: per-module and per-parameter statistics of a training step, taken every N steps,
// written to TensorBoard (io/tensorboard.h), to <run>/probes.jsonl and to a console table.
//
//   inspect::Inspector probes(model, {.every = 50, .patterns = {"0", "4*"}, .tensorboard_dir = run});
//   for each step:
//     probes.begin_step(step);                  // arms the hooks when the step is sampled
//     Tensor loss = ...forward...;  probes.after_forward(loss);
//     backward(loss);               probes.after_backward();      // grads before clipping
//     clip...;                      probes.after_clip(clipped);   // grads after clipping (false: none ran)
//     optimizer.step();             probes.after_step(lr);        // updates; writes the record
//   at each epoch end:  std::fputs(probes.end_epoch(epoch).c_str(), stderr);
//
// What is recorded on a sampled step (tag names as in TensorBoard):
//   act/<module>/...      module output: mean std min max zero_fraction nonfinite + histogram
//   actgrad/<module>/...  gradient of the module output: norm mean std max_abs nonfinite + histogram
//   grad/<param>/...      parameter gradient before clipping: norm mean std max_abs nonfinite + histogram
//   param/<param>/...     after the step: weight_norm update_norm update_ratio distance_from_init
//   train/loss train/lr train/grad_norm train/grad_norm_clipped
// Probes only read: a step with probes gives bit-identical parameters to one without
// (tests/inspect/test_probes.cpp). Module outputs are watched through Module forward hooks and
// gradient hooks on those outputs; NaN/Inf origin uses the tape hooks (anomaly.h).
#pragma once
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "inspect/anomaly.h"
#include "inspect/stats.h"
#include "io/tensorboard.h"
#include "layers/module.h"

namespace gs::inspect {

struct ProbeOptions {
  int64_t every = 0;                  // sample steps 0, every, 2*every, ...; 0 = never
  std::vector<std::string> patterns;  // globs over module paths and parameter names; empty = all
  bool histograms = true;
  bool detect_anomaly = false;        // NaN/Inf origin on every step (sampled steps are always checked)
  std::string tensorboard_dir;        // "" = no event file (else one, also without sampling)
  std::string jsonl_path;             // "" = no probes.jsonl
  bool append = false;                // keep an existing probes.jsonl (resumed runs)
  // Resumed runs: the first step this run takes, and the epochs done. The event file starts with a
  // SessionLog START there, so TensorBoard drops what a killed run logged past its checkpoint (once
  // step > epoch, or it would drop the last epoch's curves, logged at step = epoch, too).
  int64_t resume_step = -1, resume_epoch = 0;
};

// True when `name` matches one of the comma-free globs (fnmatch: *, ?, [..]); empty = all.
bool matches_any(const std::vector<std::string>& patterns, const std::string& name);
// TensorBoard's histogram message for a tensor's statistics (the fixed edges of stats.h).
io::HistogramSummary histogram_summary(const TensorStats& stats);
// Splits "a,b" entries of repeatable --probe flags into single patterns.
std::vector<std::string> split_patterns(const std::vector<std::string>& flags);

struct ModuleProbe {
  std::string path, type;
  bool has_act = false, has_grad = false;
  TensorStats act, grad;  // the module's output and the gradient of its output
};

struct ParamProbe {
  std::string name;
  Tensor param, init;     // the live parameter and its value when probing started
  Tensor before_step;     // snapshot taken in after_clip on sampled steps
  bool has_grad = false, has_update = false;
  TensorStats grad;
  double weight_norm = 0, update_norm = 0, update_ratio = 0, distance_from_init = 0;
};

struct StepProbe {
  int64_t step = -1;
  double loss = 0, lr = 0, grad_norm = 0, grad_norm_clipped = 0;
};

class Inspector {
 public:
  Inspector(nn::ModulePtr model, ProbeOptions options);
  ~Inspector();
  Inspector(const Inspector&) = delete;
  Inspector& operator=(const Inspector&) = delete;

  bool active() const { return options_.every > 0 || options_.detect_anomaly; }
  bool sampling() const { return sampling_; }
  void begin_step(int64_t step);
  void after_forward(const Tensor& loss);
  void after_backward();
  void after_clip(bool clipped = true);  // clipped = false: no clipping ran, the norm is after_backward's
  void after_step(double lr);
  // The per-layer table of this epoch's sampled steps (means), and TensorBoard epoch scalars.
  std::string end_epoch(int64_t epoch);

  // Images: a grid of a batch (first `max_images` of [N,C,H,W], each tile min-max scaled); with
  // labels (and predictions) each tile gets a caption strip "p3 t3", green when right, red when wrong.
  void log_images(const std::string& tag, const Tensor& images, int64_t step, const std::vector<int64_t>& labels = {},
                  const std::vector<int64_t>& predictions = {}, int max_images = 32);

  // Runs `model` in eval mode under no_grad on a fixed sample and logs the grid with predictions
  // and labels as the image "predictions" (restores the model's mode; touches no RNG).
  void log_predictions(nn::Module& model, const Tensor& images, const Tensor& labels, int64_t step);

  const std::vector<ModuleProbe>& modules() const { return modules_; }
  const std::vector<ParamProbe>& params() const { return params_; }
  const StepProbe& last_step() const { return step_; }
  AnomalyDetector* anomaly() { return anomaly_.get(); }
  io::EventWriter* tensorboard() { return tensorboard_.get(); }

 private:
  void write_record();
  // Module outputs already summarised on this sampled step: a view of one (Flatten's output, a
  // container's output) gets its statistics without a second read.
  struct SeenOutput {
    std::weak_ptr<Storage> storage;
    int64_t offset, numel;
    DType dtype;
    TensorStats stats;
  };
  TensorStats output_stats(const Tensor& t);
  std::vector<SeenOutput> seen_outputs_;

  nn::ModulePtr model_;
  ProbeOptions options_;
  bool sampling_ = false;
  StepProbe step_;
  std::vector<ModuleProbe> modules_;
  std::vector<std::pair<nn::Module*, int>> forward_hooks_;
  std::vector<ParamProbe> params_;
  std::unique_ptr<AnomalyDetector> anomaly_;
  std::unique_ptr<io::EventWriter> tensorboard_;
  std::ofstream jsonl_;
  // Epoch sums for the console table: per module {dead fraction, act std}, per param {grad norm^2,
  // update^2, weight^2}, and the number of sampled steps.
  std::vector<double> epoch_dead_, epoch_grad_sq_, epoch_update_sq_, epoch_weight_sq_;
  int64_t epoch_samples_ = 0;
};

}  // namespace gs::inspect
