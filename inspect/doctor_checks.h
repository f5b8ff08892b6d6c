// The checks of `gradscope doctor` as pure functions: measured numbers in, a verdict (ok / warning /
// problem), the evidence and concrete suggestions out. The runs that produce the numbers (models,
// optimizers, short trainings) live in train/doctor.h; the report files in train/doctor_report.h.
//
//   inspect::CheckResult r = inspect::check_loss_at_init(2.31, 10);   // ok: ln(10) = 2.303
//   if (r.verdict == inspect::Verdict::Problem) std::puts(r.suggestions[0].c_str());
//
// Thresholds are constants below, stated in each check's evidence so a report explains itself.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace gs::inspect {

enum class Verdict { Ok = 0, Warning = 1, Problem = 2 };
std::string verdict_name(Verdict v);  // "ok" | "warning" | "problem"

struct CheckResult {
  std::string name;   // "data", "final_layer", ... (the key in doctor.json)
  std::string title;  // "Data", "Final layer", ...
  Verdict verdict = Verdict::Ok;
  std::string summary;                                 // one line: what was found
  nlohmann::json evidence = nlohmann::json::object();  // the numbers behind the verdict
  std::vector<std::string> suggestions;                // what to do (empty when ok)
  nlohmann::json to_json() const;
};
Verdict worst_verdict(const std::vector<CheckResult>& checks);

// ---- data ----
struct DataSummary {
  int64_t train_size = 0, test_size = 0, num_classes = 0;
  int64_t non_finite = 0;                // NaN/Inf values in train and test images
  int64_t label_min = 0, label_max = 0;  // over train and test labels
  std::vector<int64_t> class_counts;     // training examples per class (labels in range)
  double mean = 0, std = 0;              // of the inputs after the transform (a sample)
  int64_t duplicates_train_test = 0;     // test images whose exact pixels also occur in train
  int64_t duplicates_within_train = 0;   // train images that repeat an earlier train image
  bool test_is_train = false;  // the data has no test set of its own: its "test" images are the training images
};
// 64-bit FNV-1a hash of each image's bytes (images [N, ...], contiguous or not).
std::vector<uint64_t> image_hashes(const Tensor& images);
// How many of `b`'s hashes occur in `a`; and how many entries of `a` repeat an earlier one.
int64_t count_shared(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);
int64_t count_repeats(const std::vector<uint64_t>& a);
CheckResult check_data(const DataSummary& d);

// ---- final layer ----
// `leaf_types`: the leaf modules' type names in the order the forward pass ran them (e.g. "Conv2d",
// "ReLU", ..., "Linear"); `loss_expects_logits`: cross-entropy (softmax inside the loss).
// `negative_logit_fraction`: of the nonzero outputs on a sample at init (< 0 when unknown or all are 0).
CheckResult check_final_layer(const std::vector<std::string>& leaf_types, bool loss_expects_logits,
                              double negative_logit_fraction);

// ---- loss at init ----
CheckResult check_loss_at_init(double loss, int64_t num_classes, double label_smoothing = 0);

// ---- overfit one batch ----
constexpr double kOverfitLoss = 0.05;  // "near zero"
// `losses`: the loss of each step on the same batch (step 0 is before any update).
CheckResult check_overfit_batch(const std::vector<double>& losses, int64_t batch_size, int64_t max_steps);

// ---- gradients ----
struct LayerGradNorms {
  std::vector<std::string> layers;     // weight parameters, input side first
  std::vector<double> at_init;         // gradient norm of each at the first step
  std::vector<double> after;           // ... after `steps` optimizer steps
  std::vector<double> total_per_step;  // global gradient norm at each step (0 = init)
  int64_t steps = 0;
};
constexpr double kVanishingRatio = 1e3;  // last-layer norm / first-layer norm
constexpr double kTinyGradNorm = 1e-7;
constexpr double kExplodingGrowth = 1e2;  // global norm after / at init
CheckResult check_gradients(const LayerGradNorms& g);

// ---- dead units ----
// A unit is a feature of a [N, F] output or a channel of a [N, C, H, W] output; it is dead when it
// is exactly zero for every example (and position) of the sample. `alive` grows per unit as batches
// are added (all false to start: call with an empty vector).
void accumulate_alive_units(const Tensor& output, std::vector<char>& alive);
double dead_fraction(const std::vector<char>& alive);
struct DeadUnitLayer {
  std::string layer;
  int64_t units = 0;
  double dead_at_init = 0, dead_after = 0;  // fractions; after: after the short training run
};
constexpr double kDeadWarning = 0.4, kDeadProblem = 0.7;
CheckResult check_dead_units(const std::vector<DeadUnitLayer>& layers, int64_t sample_size);

// ---- learning rate ----
struct LRRangeSummary {
  double chosen_lr = 0;
  double suggested_lr = 0;  // 0: the range test found no suggestion
  std::string method;       // valley | steepest | minimum
  double diverged_at = 0;   // lr where the range test stopped on divergence (0: did not diverge)
  int64_t steps = 0;
};
constexpr double kFarFactor = 10;  // chosen lr more than 10x away from the suggestion (100x above: problem)
CheckResult check_learning_rate(const LRRangeSummary& s);

// ---- fit ----
struct EpochPoint {
  double train_loss = 0, val_loss = 0, train_acc = 0, val_acc = 0;
};
// `initial_loss`: the training loss before the first update; `curve`: one point per epoch.
// `optimisation_sound`: the overfit-one-batch, gradient and learning-rate checks found no problem; a
// chance-level validation accuracy is then blamed on the labels, else on those checks first.
// "At chance" is within three binomial standard errors of 1/K on `val_images` images (and never
// above 1.5/K); val_images 0: 1.5/K. A training loss that rose is divergence, not underfitting.
CheckResult check_fit(const std::vector<EpochPoint>& curve, double initial_loss, int64_t num_classes,
                      int64_t train_images, bool optimisation_sound = true, int64_t val_images = 0);

}  // namespace gs::inspect
