// The doctor's verdict rules (numbers -> verdict, evidence, suggestions) and the small data helpers
// they need (image hashes, dead-unit masks). The measuring runs are in train/doctor.cpp.
#include "inspect/doctor_checks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_set>

#include "inspect/stats.h"
#include "tensor/error.h"
#include "tensor/raw_ops.h"

namespace gs::inspect {

using nlohmann::json;

namespace {
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
std::string g3(double v) { return format("%.3g", v); }
bool all_finite_values(const std::vector<double>& v) {
  return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}
CheckResult make(const char* name, const char* title) {
  CheckResult r;
  r.name = name;
  r.title = title;
  return r;
}
void raise(CheckResult& r, Verdict v) { r.verdict = std::max(r.verdict, v); }
}  // namespace

std::string verdict_name(Verdict v) {
  switch (v) {
    case Verdict::Ok: return "ok";
    case Verdict::Warning: return "warning";
    case Verdict::Problem: return "problem";
  }
  return "?";
}

json CheckResult::to_json() const {
  return json{{"name", name},       {"title", title},       {"verdict", verdict_name(verdict)},
              {"summary", summary}, {"evidence", evidence}, {"suggestions", suggestions}};
}

Verdict worst_verdict(const std::vector<CheckResult>& checks) {
  Verdict v = Verdict::Ok;
  for (const auto& c : checks) v = std::max(v, c.verdict);
  return v;
}

// ---------------- data ----------------

std::vector<uint64_t> image_hashes(const Tensor& images) {
  GS_CHECK(images.dim() >= 1, "doctor: image_hashes wants [N, ...], got a scalar");
  Tensor c = raw::contiguous(on_host(images));
  const int64_t n = c.shape()[0];
  const size_t bytes = n ? size_t(c.numel() / n) * dtype_size(c.dtype()) : 0;
  const auto* base = static_cast<const unsigned char*>(c.raw_data());
  std::vector<uint64_t> out(static_cast<size_t>(n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    uint64_t h = 1469598103934665603ull;
    const unsigned char* p = base + size_t(i) * bytes;
    for (size_t k = 0; k < bytes; ++k) h = (h ^ p[k]) * 1099511628211ull;
    out[size_t(i)] = h;
  }
  return out;
}

int64_t count_shared(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  std::unordered_set<uint64_t> seen(a.begin(), a.end());
  return std::count_if(b.begin(), b.end(), [&](uint64_t h) { return seen.count(h) > 0; });
}

int64_t count_repeats(const std::vector<uint64_t>& a) {
  std::unordered_set<uint64_t> seen;
  int64_t repeats = 0;
  for (uint64_t h : a) repeats += !seen.insert(h).second;
  return repeats;
}

CheckResult check_data(const DataSummary& d) {
  CheckResult r = make("data", "Data");
  std::vector<std::string> found;
  r.evidence = json{{"train_images", d.train_size},
                    {"test_images", d.test_size},
                    {"num_classes", d.num_classes},
                    {"non_finite_values", d.non_finite},
                    {"label_min", d.label_min},
                    {"label_max", d.label_max},
                    {"class_counts", d.class_counts},
                    {"input_mean", num(d.mean)},
                    {"input_std", num(d.std)},
                    {"duplicates_train_test", d.duplicates_train_test},
                    {"duplicates_within_train", d.duplicates_within_train},
                    {"test_is_train", d.test_is_train}};
  if (d.non_finite > 0) {
    raise(r, Verdict::Problem);
    found.push_back(format("%lld NaN/Inf input values", (long long)d.non_finite));
    r.suggestions.push_back(
        "Find and drop or repair the images with NaN/Inf values (check decoding, divisions by a "
        "zero std, and missing-value handling) before training.");
  }
  if (d.label_min < 0 || d.label_max >= d.num_classes) {
    raise(r, Verdict::Problem);
    found.push_back(format("labels span %lld..%lld but there are %lld classes", (long long)d.label_min,
                           (long long)d.label_max, (long long)d.num_classes));
    r.suggestions.push_back("Map labels to 0..num_classes-1 (and make the model's last layer output num_classes).");
  }
  if (!d.class_counts.empty()) {
    auto [lo, hi] = std::minmax_element(d.class_counts.begin(), d.class_counts.end());
    double ratio = *lo > 0 ? double(*hi) / double(*lo) : INFINITY;
    r.evidence["class_imbalance_ratio"] = num(ratio);
    if (*lo == 0) {
      raise(r, Verdict::Problem);
      std::string empty;
      int64_t n_empty = 0;
      for (size_t k = 0; k < d.class_counts.size(); ++k) {
        if (d.class_counts[k] != 0) continue;
        if (++n_empty <= 5) empty += (empty.empty() ? "" : ", ") + std::to_string(k);
      }
      found.push_back(n_empty == 1
                          ? format("class %s has no training examples", empty.c_str())
                          : format("%lld of the %zu classes have no training examples (%s%s)", (long long)n_empty,
                                   d.class_counts.size(), empty.c_str(), n_empty > 5 ? ", ..." : ""));
      r.suggestions.push_back("Every class needs training examples: collect some, or drop the class.");
    } else if (ratio > 10) {
      raise(r, Verdict::Warning);
      found.push_back(format("classes are imbalanced (largest/smallest %.1fx)", ratio));
      r.suggestions.push_back(
          "Balance the classes: resample (train --sampler balanced oversamples rare classes), weight "
          "the loss by inverse class frequency (train --class-weights balanced), and judge the model by "
          "per-class metrics (inspect errors), not accuracy alone.");
    }
  }
  r.evidence["normalised_if"] = "|mean| <= 0.5 and 0.5 <= std <= 2";
  if (!std::isfinite(d.mean) || !std::isfinite(d.std) || d.std < 1e-6 || std::fabs(d.mean) > 10 || d.std > 50) {
    raise(r, Verdict::Problem);
    found.push_back(format("inputs after the transform have mean %s, std %s", g3(d.mean).c_str(), g3(d.std).c_str()));
    r.suggestions.push_back(d.std < 1e-6 ? "The inputs are constant after the transform: check the loader and the "
                                           "normalisation (a std of 0, or images that are all one value)."
                                         : "Scale the inputs (x/255 for 8-bit images) and normalise per channel to "
                                           "mean 0, std 1 with the training set's statistics.");
  } else if (std::fabs(d.mean) > 0.5 || d.std < 0.5 || d.std > 2) {
    raise(r, Verdict::Warning);
    found.push_back(format("inputs are not normalised (mean %s, std %s)", g3(d.mean).c_str(), g3(d.std).c_str()));
    r.suggestions.push_back(
        "Normalise the inputs per channel with the training set's mean and std (mean 0, std 1): "
        "it keeps early activations and gradients in a good range.");
  }
  if (d.test_is_train) {
    // Every "test" image is a training image: not a leak to remove, a test set that is missing.
    raise(r, Verdict::Warning);
    found.push_back("the data has no test set of its own: test scores are measured on the training images");
    r.suggestions.push_back(
        "Hold out a test set: an image folder with train/ and test/ sub-folders, or idx:<dir> with the "
        "t10k-* files beside the train-* files.");
  }
  const double dup_fraction =
      d.test_size && !d.test_is_train ? double(d.duplicates_train_test) / double(d.test_size) : 0;
  r.evidence["duplicate_test_fraction"] = dup_fraction;
  if (dup_fraction > 0.10) {
    raise(r, Verdict::Problem);
  } else if (dup_fraction > 0.01) {
    raise(r, Verdict::Warning);
  }
  if (dup_fraction > 0.01) {
    found.push_back(format("%lld test images (%.1f%%) also occur in the training set",
                           (long long)d.duplicates_train_test, 100 * dup_fraction));
    r.suggestions.push_back(
        "Remove the test images that also occur in the training set (exact pixel duplicates): "
        "they leak the answers and inflate the test score.");
  }
  const double repeat_fraction = d.train_size ? double(d.duplicates_within_train) / double(d.train_size) : 0;
  r.evidence["repeated_train_fraction"] = repeat_fraction;
  if (repeat_fraction > 0.01) {
    raise(r, Verdict::Warning);
    found.push_back(format("%lld training images (%.1f%%) repeat an earlier one exactly",
                           (long long)d.duplicates_within_train, 100 * repeat_fraction));
    r.suggestions.push_back(
        "Remove the repeated training images (exact pixel duplicates): they count several times in the loss, and "
        "copies that land in the validation set make it optimistic.");
  }
  if (found.empty()) {
    r.summary = format(
        "no NaN/Inf, labels 0..%lld in range, inputs normalised (mean %s, std %s), %lld of %lld test "
        "images duplicated in train",
        (long long)d.label_max, g3(d.mean).c_str(), g3(d.std).c_str(), (long long)d.duplicates_train_test,
        (long long)d.test_size);
  } else {
    for (size_t i = 0; i < found.size(); ++i) r.summary += (i ? "; " : "") + found[i];
  }
  return r;
}

// ---------------- final layer ----------------

CheckResult check_final_layer(const std::vector<std::string>& leaf_types, bool loss_expects_logits,
                              double negative_logit_fraction) {
  CheckResult r = make("final_layer", "Final layer");
  static const std::vector<std::string> activations = {"ReLU",       "Sigmoid", "Tanh",     "Softmax",
                                                       "LogSoftmax", "GELU",    "LeakyReLU"};
  int last_weighted = -1;
  for (size_t i = 0; i < leaf_types.size(); ++i) {
    if (leaf_types[i] == "Linear" || leaf_types[i] == "Conv2d") last_weighted = int(i);
  }
  std::vector<std::string> after;
  for (size_t i = size_t(last_weighted + 1); i < leaf_types.size(); ++i) after.push_back(leaf_types[i]);
  r.evidence =
      json{{"loss_expects_logits", loss_expects_logits},
           {"last_weighted_layer", last_weighted >= 0 ? json(leaf_types[size_t(last_weighted)]) : json(nullptr)},
           {"layers_after_it", after},
           {"negative_output_fraction", negative_logit_fraction >= 0 ? json(negative_logit_fraction) : json(nullptr)}};
  std::string activation;
  for (const auto& t : after) {
    if (std::find(activations.begin(), activations.end(), t) != activations.end()) activation = t;
  }
  if (last_weighted < 0) {
    raise(r, Verdict::Warning);
    r.summary = "no Linear or Conv2d layer found: cannot tell what the model outputs";
    r.suggestions.push_back("End the model with a Linear (or 1x1 Conv2d) layer that outputs one logit per class.");
  } else if (loss_expects_logits && !activation.empty()) {
    raise(r, Verdict::Problem);
    r.summary = format("the model ends with %s after its last %s, but cross-entropy expects raw logits",
                       activation.c_str(), leaf_types[size_t(last_weighted)].c_str());
    r.suggestions.push_back(
        format("Remove the final %s: cross-entropy applies log-softmax itself, so the last Linear's "
               "output should go to the loss unchanged%s.",
               activation.c_str(),
               activation == "ReLU" ? " (a ReLU clips every negative logit to 0, so the model "
                                      "cannot push wrong classes down)"
                                    : ""));
  } else if (loss_expects_logits && negative_logit_fraction == 0) {
    raise(r, Verdict::Warning);
    r.summary = "no output on the sample is negative: the logits look clipped";
    r.suggestions.push_back("Check the last layers: cross-entropy expects unbounded logits.");
  } else {
    r.summary = format(
        "the model ends with %s (raw logits%s)", leaf_types[size_t(last_weighted)].c_str(),
        negative_logit_fraction >= 0 ? format(", %.0f%% negative at init", 100 * negative_logit_fraction).c_str() : "");
  }
  return r;
}

// ---------------- loss at init ----------------

CheckResult check_loss_at_init(double loss, int64_t num_classes, double label_smoothing) {
  CheckResult r = make("loss_at_init", "Loss at init");
  const double expected = std::log(double(std::max<int64_t>(num_classes, 2)));
  const double rel = std::fabs(loss - expected) / expected;
  r.evidence = json{{"loss", num(loss)},
                    {"expected_ln_num_classes", expected},
                    {"relative_difference", num(rel)},
                    {"ok_within", 0.2},
                    {"label_smoothing", label_smoothing}};
  if (!std::isfinite(loss)) {
    raise(r, Verdict::Problem);
    r.summary = "the loss at init is not finite";
    r.suggestions.push_back(
        "Find the op that makes NaN/Inf (gradscope train --detect-anomaly): often a log of 0, an "
        "overflow from unnormalised inputs, or a too-large init.");
    return r;
  }
  r.summary = format("loss %.3f at init vs ln(%lld) = %.3f", loss, (long long)num_classes, expected);
  if (rel <= 0.2) return r;
  raise(r, rel > 0.5 ? Verdict::Problem : Verdict::Warning);
  if (loss > expected) {
    r.summary += ": the model starts confidently wrong";
    r.suggestions.push_back(
        "The initial predictions should be near uniform: shrink the last layer's init (small or "
        "zero weights and bias), and check the inputs are normalised.");
  } else {
    r.summary += ": lower than chance before any training";
    r.suggestions.push_back(
        "A loss below ln(num_classes) at init means the labels are easy to guess without learning: "
        "check that num_classes matches the labels used, and that the classes are not very "
        "imbalanced or leaked into the inputs.");
  }
  return r;
}

// ---------------- overfit one batch ----------------

CheckResult check_overfit_batch(const std::vector<double>& losses, int64_t batch_size, int64_t max_steps) {
  CheckResult r = make("overfit_batch", "Overfit one batch");
  GS_CHECK(!losses.empty(), "doctor: overfit check needs at least one loss");
  const double initial = losses.front();
  double best = INFINITY;
  int64_t reached = -1, non_finite_at = -1;
  for (size_t i = 0; i < losses.size(); ++i) {
    if (!std::isfinite(losses[i])) {
      non_finite_at = int64_t(i);
      break;
    }
    best = std::min(best, losses[i]);
    if (reached < 0 && losses[i] <= kOverfitLoss) reached = int64_t(i);
  }
  r.evidence = json{{"batch_size", batch_size},
                    {"max_steps", max_steps},
                    {"steps_run", int64_t(losses.size()) - 1},
                    {"initial_loss", num(initial)},
                    {"final_loss", num(losses.back())},
                    {"best_loss", num(best)},
                    {"target_loss", kOverfitLoss},
                    {"reached_at_step", reached >= 0 ? json(reached) : json(nullptr)}};
  const std::vector<std::string> bug_hunt = {
      "There is likely a bug in the model, loss or labels: check that each label belongs to its image, that the last "
      "layer outputs raw logits for cross-entropy, and that the optimizer steps the model's parameters (gradients "
      "zeroed, step called).",
      "Make sure augmentation and dropout are really off and the learning rate is reasonable (try x10 and /10)."};
  if (non_finite_at >= 0) {
    raise(r, Verdict::Problem);
    r.summary = format("the loss became non-finite at step %lld while fitting one batch of %lld",
                       (long long)non_finite_at, (long long)batch_size);
    r.suggestions.push_back(
        "Lower the learning rate (a NaN/Inf on one batch is almost always a too-high lr), or add "
        "gradient clipping (--clip-norm 1).");
    r.suggestions.push_back(bug_hunt[0]);
  } else if (reached >= 0) {
    r.summary = format("loss fell from %.3f to %.3g within %lld steps on one batch of %lld", initial,
                       losses[size_t(reached)], (long long)reached, (long long)batch_size);
    const double worst = *std::max_element(losses.begin(), losses.begin() + reached + 1);
    r.evidence["worst_loss"] = num(worst);
    if (worst > 1.5 * initial) {
      // Memorised, but by way of a blow-up (1.7e14 at lr 1e3): the step size is too large for training.
      raise(r, Verdict::Warning);
      r.summary += format(", but it rose to %.3g on the way: the learning rate looks too high", worst);
      r.suggestions.push_back("Lower the learning rate (try /10 until the loss falls steadily on this one batch).");
    }
  } else if (best <= 0.1 * initial) {
    raise(r, Verdict::Warning);
    r.summary = format("loss fell from %.3f to %.3g in %lld steps but not below %.2g", initial, best,
                       (long long)max_steps, kOverfitLoss);
    r.suggestions.push_back(
        "Almost: give it more steps (--overfit-steps) or a higher lr; if it stalls, look for a "
        "bug in the model, loss or labels.");
  } else {
    raise(r, Verdict::Problem);
    r.summary = format("could not overfit one batch of %lld: loss %.3f -> best %.3f in %lld steps",
                       (long long)batch_size, initial, best, (long long)max_steps);
    const double worst = *std::max_element(losses.begin(), losses.end());
    r.evidence["worst_loss"] = num(worst);
    if (worst > 1.5 * initial) {
      // The loss went up on a batch it should memorise: the step size, not the model, is the first suspect.
      r.summary += format(" (it rose to %.3g on the way: the learning rate looks too high)", worst);
      r.suggestions.push_back("Lower the learning rate (try /10 until the loss falls steadily on this one batch).");
    }
    for (const auto& s : bug_hunt) r.suggestions.push_back(s);
  }
  return r;
}

// ---------------- gradients ----------------

CheckResult check_gradients(const LayerGradNorms& g) {
  CheckResult r = make("gradients", "Gradients");
  GS_CHECK(!g.at_init.empty() && g.at_init.size() == g.layers.size() && g.after.size() == g.layers.size(),
           "doctor: gradient check needs one norm per layer (%zu layers, %zu init, %zu after)", g.layers.size(),
           g.at_init.size(), g.after.size());
  const double first = g.at_init.front(), last = g.at_init.back();
  const double ratio_init = first > 0 ? last / first : INFINITY;
  const double ratio_after = g.after.front() > 0 ? g.after.back() / g.after.front() : INFINITY;
  // Vanishing is what lasts: a zero-initialised last layer passes no gradient back at init (norms
  // 0, 0, 0.3) and does after one step. So the ratio must be too large in both measurements, and a
  // norm too small after the steps (a layer whose gradient died during them counts).
  const double ratio = std::min(ratio_init, ratio_after);
  double smallest = INFINITY;
  std::string smallest_layer;
  for (size_t i = 0; i < g.layers.size(); ++i) {
    if (std::isfinite(g.after[i]) && g.after[i] < smallest) smallest = g.after[i], smallest_layer = g.layers[i];
  }
  const double total0 = g.total_per_step.empty() ? NAN : g.total_per_step.front();
  double peak = 0;
  for (double v : g.total_per_step) peak = std::isfinite(v) ? std::max(peak, v) : INFINITY;
  const double growth = total0 > 0 ? peak / total0 : NAN;
  const bool finite = all_finite_values(g.at_init) && all_finite_values(g.after) && all_finite_values(g.total_per_step);
  r.evidence = json{{"first_layer", g.layers.front()},
                    {"last_layer", g.layers.back()},
                    {"first_norm_at_init", num(first)},
                    {"last_norm_at_init", num(last)},
                    {"last_over_first", num(ratio_init)},
                    {"last_over_first_after", num(ratio_after)},
                    {"vanishing_if_ratio_above", kVanishingRatio},
                    {"smallest_norm", num(smallest)},
                    {"smallest_norm_layer", smallest_layer},
                    {"tiny_if_below", kTinyGradNorm},
                    {"global_norm_at_init", num(total0)},
                    {"global_norm_peak", num(peak)},
                    {"growth", num(growth)},
                    {"exploding_if_growth_above", kExplodingGrowth},
                    {"steps", g.steps},
                    {"all_finite", finite}};
  std::vector<std::string> found;
  if (!finite || growth > kExplodingGrowth) {
    raise(r, Verdict::Problem);
    found.push_back(
        !finite ? format("gradients became NaN/Inf within %lld steps", (long long)g.steps)
                : format("exploding gradients: the global norm grew %.3gx in %lld steps", growth, (long long)g.steps));
    r.suggestions.push_back("Lower the learning rate (try /10) and clip gradients (--clip-norm 1).");
    r.suggestions.push_back(
        "Add batch norm after conv/linear layers and check the init scale (He/Kaiming for ReLU, "
        "Xavier/Glorot for tanh/sigmoid).");
  }
  if (ratio > kVanishingRatio || smallest < kTinyGradNorm) {
    raise(r, Verdict::Problem);
    found.push_back(smallest < kTinyGradNorm ? format("vanishing gradients: %s has gradient norm %.3g after %lld steps",
                                                      smallest_layer.c_str(), smallest, (long long)g.steps)
                                             : format("vanishing gradients: %s gets %.3gx less gradient than %s",
                                                      g.layers.front().c_str(), ratio, g.layers.back().c_str()));
    r.suggestions.push_back("Use ReLU-family activations instead of sigmoid/tanh in hidden layers.");
    r.suggestions.push_back(
        "Initialise with He/Kaiming (ReLU) or Xavier/Glorot (tanh/sigmoid) scaling; add batch "
        "norm; for deep nets add residual connections.");
  }
  if (found.empty() && first > 0 && last > 0 && first / last > kVanishingRatio) {
    raise(r, Verdict::Warning);
    found.push_back(
        format("%s gets %.3gx more gradient than %s", g.layers.front().c_str(), first / last, g.layers.back().c_str()));
    r.suggestions.push_back(
        "Gradients grow towards the input: check the init scale and consider batch norm or "
        "gradient clipping (--clip-norm).");
  }
  if (found.empty()) {
    r.summary = format("norms %s (%s) to %s (%s) at init, %s to %s after %lld steps; global norm x%.3g",
                       g3(first).c_str(), g.layers.front().c_str(), g3(last).c_str(), g.layers.back().c_str(),
                       g3(g.after.front()).c_str(), g3(g.after.back()).c_str(), (long long)g.steps, growth);
  } else {
    for (size_t i = 0; i < found.size(); ++i) r.summary += (i ? "; " : "") + found[i];
  }
  return r;
}

// ---------------- dead units ----------------

void accumulate_alive_units(const Tensor& output, std::vector<char>& alive) {
  GS_CHECK(output.dim() >= 2, "doctor: dead units need a batched output [N, ...], got %s",
           shape_str(output.shape()).c_str());
  const Tensor host = on_host(output);  // a CUDA model's outputs are read through a copy
  Tensor c = raw::contiguous(host.dtype() == DType::F32 ? host : raw::to_dtype(host, DType::F32));
  const int64_t n = c.shape()[0], units = c.shape()[1];
  const int64_t inner = n ? c.numel() / (n * units) : 0;  // positions per unit (H*W for conv maps)
  if (alive.empty()) alive.assign(size_t(units), 0);
  GS_CHECK(int64_t(alive.size()) == units, "doctor: dead units: output has %lld units, earlier batches had %zu",
           (long long)units, alive.size());
  const float* p = c.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t u = 0; u < units; ++u) {
      if (alive[size_t(u)]) continue;
      const float* q = p + (i * units + u) * inner;
      for (int64_t k = 0; k < inner; ++k) {
        if (q[k] != 0.0f) {
          alive[size_t(u)] = 1;
          break;
        }
      }
    }
  }
}

double dead_fraction(const std::vector<char>& alive) {
  if (alive.empty()) return 0;
  return double(std::count(alive.begin(), alive.end(), 0)) / double(alive.size());
}

CheckResult check_dead_units(const std::vector<DeadUnitLayer>& layers, int64_t sample_size) {
  CheckResult r = make("dead_units", "Dead units");
  json per_layer = json::array();
  const DeadUnitLayer* worst = nullptr;
  double worst_fraction = -1;
  for (const auto& l : layers) {
    per_layer.push_back(
        {{"layer", l.layer}, {"units", l.units}, {"dead_at_init", l.dead_at_init}, {"dead_after", l.dead_after}});
    double f = std::max(l.dead_at_init, l.dead_after);
    if (f > worst_fraction) worst_fraction = f, worst = &l;
  }
  r.evidence = json{{"sample_images", sample_size},
                    {"layers", per_layer},
                    {"warning_above", kDeadWarning},
                    {"problem_above", kDeadProblem}};
  if (!worst) {
    r.summary = "no ReLU layers";
    return r;
  }
  const bool at_init = worst->dead_at_init >= worst->dead_after;
  r.summary = format("worst: %s with %.0f%% of %lld units always zero over %lld images (%s)", worst->layer.c_str(),
                     100 * worst_fraction, (long long)worst->units, (long long)sample_size,
                     at_init ? "at init" : "after the short run");
  if (worst_fraction < kDeadWarning) return r;
  raise(r, worst_fraction >= kDeadProblem ? Verdict::Problem : Verdict::Warning);
  if (at_init) {
    r.suggestions.push_back(
        "Units are dead from the start: check the init (He/Kaiming for ReLU) and that biases are "
        "not large and negative; normalise the inputs.");
  } else {
    r.suggestions.push_back(
        "Units died during training: lower the learning rate (a too-large step pushes ReLUs into "
        "the always-negative region for good).");
  }
  r.suggestions.push_back("Use LeakyReLU or GELU, or put batch norm before the ReLU, so units can recover.");
  return r;
}

// ---------------- learning rate ----------------

CheckResult check_learning_rate(const LRRangeSummary& s) {
  CheckResult r = make("learning_rate", "Learning rate");
  const double ratio = s.suggested_lr > 0 ? s.chosen_lr / s.suggested_lr : NAN;
  r.evidence = json{{"chosen_lr", s.chosen_lr},
                    {"suggested_lr", s.suggested_lr},
                    {"method", s.method},
                    {"chosen_over_suggested", num(ratio)},
                    {"far_if_factor_above", kFarFactor},
                    {"diverged_at_lr", s.diverged_at > 0 ? json(s.diverged_at) : json(nullptr)},
                    {"range_test_steps", s.steps}};
  if (!(s.suggested_lr > 0)) {
    raise(r, Verdict::Warning);
    r.summary = format("the LR range test found no suggestion in %lld steps", (long long)s.steps);
    r.suggestions.push_back(
        "Run a longer range test (--lr-steps) or check the fit and overfit checks: a loss that "
        "never falls has no good lr.");
    return r;
  }
  r.summary = format("chosen lr %.3g, range test suggests %.3g (%s): %.3gx", s.chosen_lr, s.suggested_lr,
                     s.method.c_str(), ratio);
  if (s.diverged_at > 0 && s.chosen_lr >= s.diverged_at) {
    raise(r, Verdict::Problem);
    r.summary += format("; the loss diverged at lr %.3g in the range test", s.diverged_at);
    r.suggestions.push_back(
        format("The learning rate is too high: use about %.3g (gradscope train --lr auto picks it).", s.suggested_lr));
  } else if (ratio > kFarFactor) {
    // The range test's suggestion is rough: 10x above it is suspicious, 100x above is broken.
    raise(r, ratio > kFarFactor * kFarFactor ? Verdict::Problem : Verdict::Warning);
    r.summary += ": far above the suggestion";
    r.suggestions.push_back(format("Lower the learning rate towards %.3g (/10 steps), or add warmup.", s.suggested_lr));
  } else if (ratio < 1 / kFarFactor) {
    raise(r, Verdict::Warning);
    r.summary += ": far below the suggestion (training will be slow)";
    r.suggestions.push_back(format("Raise the learning rate towards %.3g (x10 steps).", s.suggested_lr));
  }
  return r;
}

// ---------------- fit ----------------

CheckResult check_fit(const std::vector<EpochPoint>& curve, double initial_loss, int64_t num_classes,
                      int64_t train_images, bool optimisation_sound, int64_t val_images) {
  CheckResult r = make("fit", "Fit (train vs validation)");
  GS_CHECK(!curve.empty(), "doctor: fit check needs at least one epoch");
  json points = json::array();
  bool finite = std::isfinite(initial_loss);
  for (const auto& p : curve) {
    points.push_back({{"train_loss", num(p.train_loss)},
                      {"val_loss", num(p.val_loss)},
                      {"train_acc", num(p.train_acc)},
                      {"val_acc", num(p.val_acc)}});
    finite = finite && std::isfinite(p.train_loss) && std::isfinite(p.val_loss);
  }
  const EpochPoint& end = curve.back();
  const double chance = 1.0 / double(std::max<int64_t>(num_classes, 2));
  // 1.5/K alone called 74% on 300 images of 2 classes (8 standard errors above 50%) chance.
  const double chance_limit =
      val_images > 0 ? std::min(1.5 * chance, chance + 3 * std::sqrt(chance * (1 - chance) / double(val_images)))
                     : 1.5 * chance;
  const double drop = 1 - end.train_loss / initial_loss;
  const double gap_first = curve.front().val_loss - curve.front().train_loss, gap_last = end.val_loss - end.train_loss;
  double best_val = INFINITY;
  for (const auto& p : curve) best_val = std::min(best_val, p.val_loss);
  r.evidence = json{
      {"epochs", curve.size()},       {"train_images", train_images},      {"initial_loss", num(initial_loss)},
      {"train_loss_drop", num(drop)}, {"chance_accuracy", chance},         {"at_chance_if_val_acc_below", chance_limit},
      {"val_images", val_images},     {"final_val_acc", num(end.val_acc)}, {"gap_first", num(gap_first)},
      {"gap_last", num(gap_last)},    {"best_val_loss", num(best_val)},    {"curve", points}};
  const std::string underfit_remedies =
      "Underfitting remedies: train longer, try the lr x10 and /10 (see the learning-rate check), add capacity (wider "
      "or deeper layers), reduce regularisation (weight decay, dropout).";
  if (!finite) {
    raise(r, Verdict::Problem);
    r.summary = "the loss became NaN/Inf during the short run";
    r.suggestions.push_back(
        "Lower the learning rate and add gradient clipping (--clip-norm 1); "
        "gradscope train --detect-anomaly names the op that produced the first NaN/Inf.");
    return r;
  }
  r.summary =
      format("after %zu epochs on %lld images: train loss %.3f -> %.3f, val loss %.3f, val acc %.1f%%", curve.size(),
             (long long)train_images, initial_loss, end.train_loss, end.val_loss, 100 * end.val_acc);
  if (end.train_loss > 1.1 * initial_loss) {
    // The loss went up: the steps are too large (or the loss is broken), not the model too small.
    raise(r, Verdict::Problem);
    r.summary += ": the training loss rose (training diverges)";
    r.suggestions.push_back(
        "Lower the learning rate (try /10, or gradscope train --lr auto) and clip gradients (--clip-norm 1); "
        "warmup (--schedule warmup=500+cosine) helps when it diverges early.");
  } else if (end.val_acc <= chance_limit) {
    raise(r, Verdict::Problem);
    const std::string labels =
        "Check that the labels match the inputs (shuffled or misaligned labels look exactly like this), and that "
        "train and validation use the same preprocessing.";
    if (optimisation_sound) {
      // The model can memorise a batch and its gradients and lr are fine, yet nothing carries over.
      r.summary += format(
          ": validation accuracy is at chance (%.0f%%) although the model fits a batch and its "
          "gradients and lr look sound: the labels probably do not match the inputs",
          100 * chance);
      r.suggestions.push_back(labels);
    } else {
      r.summary += format(
          ": validation accuracy is at chance (%.0f%%); the overfit, gradient or learning-rate "
          "check failed too: fix that first",
          100 * chance);
      r.suggestions.push_back(
          "Fix what the overfit-one-batch, gradient and learning-rate checks report first (a "
          "too-high learning rate looks exactly like this).");
      r.suggestions.push_back(labels);
    }
    r.suggestions.push_back(underfit_remedies);
  } else if (drop < 0.1) {
    raise(r, Verdict::Problem);
    r.summary += ": the training loss hardly fell (underfitting)";
    r.suggestions.push_back(underfit_remedies);
  } else if (end.train_loss > 0.5 * initial_loss) {
    raise(r, Verdict::Warning);
    r.summary += ": the training loss is still high (underfitting)";
    r.suggestions.push_back(underfit_remedies);
  } else if (curve.size() >= 2 && gap_last > gap_first && end.val_loss > 1.05 * best_val &&
             end.train_loss < 0.67 * end.val_loss) {
    raise(r, Verdict::Warning);
    r.summary += ": overfitting (validation loss rising while the gap to training loss grows)";
    r.suggestions.push_back(
        "Overfitting remedies: more data or augmentation (--augment crop:2,flip), dropout, more "
        "weight decay, early stopping on the validation loss, or a smaller model.");
  }
  return r;
}

}  // namespace gs::inspect
