// The LR range test: the sweep with its restore, the three suggestions, and the CSV/SVG outputs.
// The setup of model/data/optimizer from a config mirrors Trainer::run (train/trainer.cpp).
#include "train/lr_finder.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "autograd/ops.h"
#include "io/dataloader.h"
#include "io/mix.h"
#include "io/safetensors.h"
#include "io/tensorboard.h"
#include "io/transforms.h"
#include "optim/clip.h"
#include "tensor/random.h"
#include "tensor/raw_ops.h"
#include "train/checkpoint.h"
#include "train/exclude_list.h"
#include "train/trainer.h"

namespace gs::train {

double lr_at_step(const LRFinderOptions& o, int64_t step) {
  if (o.num_steps <= 1) return o.start_lr;
  return o.start_lr * std::pow(o.end_lr / o.start_lr, double(step) / double(o.num_steps - 1));
}

LRFinderResult lr_find(nn::Module& model, optim::Optimizer& optimizer, const std::function<Tensor()>& next_loss,
                       const LRFinderOptions& o) {
  GS_CHECK(o.start_lr > 0 && o.end_lr > o.start_lr, "lr_find: need 0 < start lr < end lr, got %g and %g", o.start_lr,
           o.end_lr);
  GS_CHECK(o.num_steps >= 2, "lr_find: need at least 2 steps, got %lld", (long long)o.num_steps);
  GS_CHECK(o.smooth_beta >= 0 && o.smooth_beta < 1, "lr_find: smoothing beta must be in [0, 1), got %g", o.smooth_beta);
  GS_CHECK(o.diverge_factor > 1,
           "lr_find: the divergence factor (--diverge) must be > 1 (a multiple of the best loss), got %g",
           o.diverge_factor);
  pick_suggestion({}, o.suggestion);  // rejects an unknown method before any work

  // Everything the sweep changes, saved as copies (state_dict tensors are the module's own).
  std::vector<Tensor> saved_model;
  nn::NamedTensors model_state = model.state_dict();
  for (auto& [name, t] : model_state) saved_model.push_back(raw::clone(t));
  optim::NamedTensors saved_optimizer = optimizer.state_dict();
  auto saved_rng = default_generator().state();
  bool was_training = model.is_training();

  LRFinderResult r;
  double avg = 0, best = INFINITY;
  model.train();
  try {
    for (int64_t i = 0; i < o.num_steps; ++i) {
      double lr = lr_at_step(o, i);
      optimizer.set_lr(lr);
      Tensor loss = next_loss();
      optimizer.zero_grad();
      backward(loss);
      double l = loss.item();
      if (o.after_backward) l = o.after_backward(l);
      if (!std::isfinite(l)) {
        r.diverged = true;
        break;
      }
      if (o.clip_value > 0) optim::clip_grad_value(optimizer.params(), o.clip_value);
      if (o.clip_norm > 0) optim::clip_grad_norm(optimizer.params(), o.clip_norm);
      optimizer.step();
      // fastai's debiased exponential moving average: the early points are not pulled towards 0.
      avg = o.smooth_beta * avg + (1 - o.smooth_beta) * l;
      double smoothed = avg / (1 - std::pow(o.smooth_beta, double(i + 1)));
      r.points.push_back({i, lr, l, smoothed});
      if (smoothed < best) best = smoothed;
      if (smoothed > o.diverge_factor * best) {
        r.diverged = true;
        break;
      }
    }
  } catch (...) {
    // Restore even when a batch throws, so a caller that catches keeps its model.
    optimizer.zero_grad();
    for (size_t k = 0; k < model_state.size(); ++k) raw::copy_(model_state[k].second, saved_model[k]);
    optimizer.load_state_dict(saved_optimizer);
    default_generator().set_state(saved_rng);
    model.train(was_training);
    throw;
  }
  optimizer.zero_grad();
  for (size_t k = 0; k < model_state.size(); ++k) raw::copy_(model_state[k].second, saved_model[k]);
  optimizer.load_state_dict(saved_optimizer);
  default_generator().set_state(saved_rng);
  model.train(was_training);

  r.suggestions = suggest_lr(r.points);
  r.method = o.suggestion;
  r.suggested_lr = pick_suggestion(r.suggestions, o.suggestion);
  return r;
}

LRSuggestions suggest_lr(const std::vector<LRFinderPoint>& all) {
  LRSuggestions s;
  // fastai drops the first tenth (noisy warm-up of the EMA) and the last 5 points (the blow-up).
  size_t n_all = all.size(), skip_start = n_all / 10, skip_end = 5;
  std::vector<LRFinderPoint> p;
  if (n_all >= skip_start + skip_end + 3) {
    p.assign(all.begin() + skip_start, all.end() - skip_end);
  } else {
    p = all;
  }
  const size_t n = p.size();
  if (n == 0) return s;

  // minimum / 10
  size_t min_i = 0;
  for (size_t i = 1; i < n; ++i)
    if (p[i].smoothed_loss < p[min_i].smoothed_loss) min_i = i;
  s.minimum = p[min_i].lr / 10;
  if (n < 3) return s;

  // steepest: gradient of the smoothed loss against log10(lr), central differences inside and
  // one-sided at the ends (numpy.gradient).
  double best_grad = INFINITY;
  for (size_t i = 0; i < n; ++i) {
    size_t a = i == 0 ? 0 : i - 1, b = i + 1 == n ? n - 1 : i + 1;
    double dx = std::log10(p[b].lr) - std::log10(p[a].lr);
    double g = (p[b].smoothed_loss - p[a].smoothed_loss) / dx;
    if (g < best_grad) {
      best_grad = g;
      s.steepest = p[i].lr;
    }
  }

  // valley (fastai): the longest decreasing subsequence of the loss; its span is cut in thirds and
  // the suggestion sits half a third past the first third - well inside the descent, before the bottom.
  std::vector<int64_t> lds(n, 1);
  int64_t max_start = 0, max_end = 0;  // max_start may be -1 (a run from the very first point), as in fastai
  for (int64_t i = 1; i < int64_t(n); ++i) {
    for (int64_t j = 0; j < i; ++j) {
      if (p[i].smoothed_loss < p[j].smoothed_loss && lds[i] < lds[j] + 1) lds[i] = lds[j] + 1;
      if (lds[max_end] < lds[i]) {
        max_end = i;
        max_start = max_end - lds[max_end];
      }
    }
  }
  double sections = double(max_end - max_start) / 3.0;
  int64_t idx = max_start + int64_t(sections) + int64_t(sections / 2);
  s.valley = p[std::clamp<int64_t>(idx, 0, int64_t(n) - 1)].lr;
  return s;
}

double pick_suggestion(const LRSuggestions& s, const std::string& method) {
  if (method == "valley") return s.valley;
  if (method == "steepest") return s.steepest;
  if (method == "minimum") return s.minimum;
  GS_CHECK(false, "lr_find: unknown suggestion '%s' (valley, steepest or minimum)", method.c_str());
  return 0;
}

LRFinderResult lr_find_for_config(const TrainConfig& c, const LRFinderOptions& options) {
  c.check_values("lr-find");
  GS_CHECK(c.val_fraction >= 0 && c.val_fraction < 1, "lr-find: --val-fraction must be in [0, 1), got %g",
           c.val_fraction);
  GS_CHECK(c.grad_penalty >= 0 && std::isfinite(c.grad_penalty),
           "lr-find: --grad-penalty must be a finite number >= 0, got %g", c.grad_penalty);
  GS_CHECK(c.mixup >= 0 && c.cutmix >= 0, "lr-find: --mixup and --cutmix must be >= 0 (got %g, %g)", c.mixup, c.cutmix);
  GS_CHECK(std::isfinite(options.end_lr), "lr-find: --end-lr must be finite, got %g", options.end_lr);
  const Device device = run_device(c);  // before the data is loaded: a missing GPU fails at once
  apply_runtime_settings(c.threads, c.kernels);
  manual_seed(c.seed);
  io::Dataset train_full = load_training_set(c);  // minus --exclude-list
  io::Dataset train = train_full, val;
  if (c.val_fraction > 0) std::tie(train, val) = io::split_validation(train_full, c.val_fraction, c.seed);
  if (c.limit_train > 0 && c.limit_train < train.size()) train = io::stratified_subset(train, c.limit_train, c.seed);
  auto norm = default_normalization(c.data, train_full);
  auto augment = io::make_augmentation(c.augment);
  std::shared_ptr<io::Transform> transform = norm;
  if (augment) transform = std::make_shared<io::Compose>(std::vector<std::shared_ptr<io::Transform>>{augment, norm});
  io::DataLoader loader(train, training_loader_options(c, train), transform);  // --sampler as train's
  const Shape& image_shape = train.images.shape();
  nn::ModulePtr model = build_model(c, image_shape[1], train_full.num_classes, image_shape[2]);
  if (!c.weights.empty()) load_weights(c.weights, *model);
  model->to(device);
  check_model_fits(*model, c, image_shape, train_full.num_classes, device);
  auto optimizer = optim::make_optimizer(c.optimizer, model->parameters(), c.optimizer_hyper());

  return lr_find_on_loader(*model, *optimizer, loader, c, options);
}

LRFinderResult lr_find_on_loader(nn::Module& model, optim::Optimizer& optimizer, io::DataLoader& loader,
                                 const TrainConfig& c, const LRFinderOptions& options) {
  // Cycles through epochs when the sweep is longer than one (the order depends only on seed and epoch,
  // so the loader is left as if unused).
  int64_t epoch = 0, batch_index = 0;
  loader.start_epoch(epoch);
  const Device device = model.device();  // batches go where the model is
  const CrossEntropyOptions criterion = training_loss(c, loader.dataset(), device);
  const io::MixOptions mix{.mixup_alpha = c.mixup, .cutmix_alpha = c.cutmix};
  auto next_loss = [&]() -> Tensor {
    io::Batch batch;
    if (!loader.next(batch)) {
      loader.start_epoch(++epoch);
      batch_index = 0;
      GS_CHECK(loader.next(batch), "lr-find: the training set is empty");
    }
    // The objective train minimises: with --mixup / --cutmix, mixed batches against their mixed
    // labels (a Generator of its own per batch, as train's); with --grad-penalty, the loss plus
    // its input-gradient penalty.
    Tensor images = batch.images, targets = batch.labels;
    if (mix.enabled()) {
      Generator mix_gen(io::mix_seed(c.seed, epoch, batch_index));
      io::MixedBatch mixed = io::mix_batch(batch.images, batch.labels, loader.dataset().num_classes, mix, mix_gen);
      images = mixed.images, targets = mixed.targets;
    }
    ++batch_index;
    Tensor input = images.to(device);
    if (c.grad_penalty > 0) input = input.detach().set_requires_grad(true);
    Tensor loss = cross_entropy(model(input), targets.to(device), criterion);
    if (c.grad_penalty > 0) loss = add_grad_penalty(loss, input, batch.labels.numel(), c.grad_penalty).objective;
    return loss;
  };
  LRFinderOptions o = options;
  o.clip_norm = c.clip_norm;
  o.clip_value = c.clip_value;
  return lr_find(model, optimizer, next_loss, o);
}

// ---------------- outputs ----------------

void write_lr_find_outputs(const std::string& dir, const LRFinderResult& r) {
  std::filesystem::create_directories(dir);
  std::ostringstream csv;
  csv.precision(9);
  csv << "step,lr,loss,smoothed_loss\n";
  for (const auto& p : r.points) csv << p.step << "," << p.lr << "," << p.loss << "," << p.smoothed_loss << "\n";
  io::write_file_atomic(dir + "/lr_find.csv", csv.str());
  io::write_file_atomic(dir + "/lr_find.svg", lr_find_svg(r));
  // TensorBoard: the curve against the step (the lr is its own scalar: TensorBoard plots by step).
  io::EventWriter tb(dir, ".lr_find");
  for (const auto& p : r.points) {
    tb.add_scalar("lr_find/loss", p.loss, p.step);
    tb.add_scalar("lr_find/smoothed_loss", p.smoothed_loss, p.step);
    tb.add_scalar("lr_find/lr", p.lr, p.step);
  }
  tb.add_scalar("lr_find/suggested_lr", r.suggested_lr, 0);
}

std::string lr_find_svg(const LRFinderResult& r) {
  constexpr double W = 720, H = 440, left = 70, right = 20, top = 40, bottom = 50;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">LR range test: suggested lr "
    << format("%.3g", r.suggested_lr) << " (" << r.method << ")</text>\n";
  if (r.points.empty()) {
    s << "<text x=\"" << W / 2 << "\" y=\"" << H / 2 << "\" text-anchor=\"middle\">no points recorded</text>\n</svg>\n";
    return s.str();
  }
  double x_lo = std::floor(std::log10(r.points.front().lr)), x_hi = std::ceil(std::log10(r.points.back().lr));
  if (x_hi <= x_lo) x_hi = x_lo + 1;
  // y range: the smoothed curve up to its starting level (the blow-up is cut so the valley stays readable).
  double y_lo = INFINITY, y_hi = -INFINITY;
  for (const auto& p : r.points) y_lo = std::min(y_lo, p.smoothed_loss);
  y_hi = std::max(r.points.front().smoothed_loss, y_lo) * 1.25;
  for (const auto& p : r.points) y_hi = std::max(y_hi, std::min(p.smoothed_loss, 2 * r.points.front().smoothed_loss));
  if (!(y_hi > y_lo)) y_hi = y_lo + 1;
  double pad = 0.05 * (y_hi - y_lo);
  y_lo -= pad;
  y_hi += pad;
  auto X = [&](double lr) { return left + (std::log10(lr) - x_lo) / (x_hi - x_lo) * (W - left - right); };
  auto Y = [&](double v) {
    v = std::clamp(v, y_lo, y_hi);
    return top + (y_hi - v) / (y_hi - y_lo) * (H - top - bottom);
  };
  // axes, decade ticks and loss ticks
  s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << W - left - right << "\" height=\""
    << H - top - bottom << "\" fill=\"none\" stroke=\"#444\"/>\n";
  for (double d = x_lo; d <= x_hi + 1e-9; d += 1) {
    double x = X(std::pow(10.0, d));
    s << "<line x1=\"" << x << "\" y1=\"" << top << "\" x2=\"" << x << "\" y2=\"" << H - bottom
      << "\" stroke=\"#ddd\"/>\n<text x=\"" << x << "\" y=\"" << H - bottom + 16 << "\" text-anchor=\"middle\">1e"
      << int(d) << "</text>\n";
  }
  for (int k = 0; k <= 4; ++k) {
    double v = y_lo + (y_hi - y_lo) * k / 4, y = Y(v);
    s << "<text x=\"" << left - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">" << format("%.3g", v)
      << "</text>\n";
  }
  s << "<text x=\"" << (left + W - right) / 2 << "\" y=\"" << H - 12
    << "\" text-anchor=\"middle\">learning rate (log scale)</text>\n";
  s << "<text x=\"16\" y=\"" << (top + H - bottom) / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 16 "
    << (top + H - bottom) / 2 << ")\">loss</text>\n";
  // raw loss faint, smoothed loss bold
  for (int smoothed = 0; smoothed < 2; ++smoothed) {
    s << "<polyline fill=\"none\" stroke=\"" << (smoothed ? "#1f77b4" : "#bbb") << "\" stroke-width=\""
      << (smoothed ? 2 : 1) << "\" points=\"";
    for (const auto& p : r.points) s << X(p.lr) << "," << Y(smoothed ? p.smoothed_loss : p.loss) << " ";
    s << "\"/>\n";
  }
  // suggestions: vertical lines, the chosen one solid and labelled first
  struct Mark {
    const char* name;
    double lr;
    const char* colour;
  };
  const Mark marks[] = {{"valley", r.suggestions.valley, "#d62728"},
                        {"steepest", r.suggestions.steepest, "#ff7f0e"},
                        {"minimum/10", r.suggestions.minimum, "#2ca02c"}};
  int row = 0;
  for (const Mark& m : marks) {
    if (!(m.lr > 0)) continue;
    bool chosen = (r.method == "minimum" ? std::string("minimum/10") : r.method) == m.name;
    double x = std::clamp(X(m.lr), left, W - right);
    s << "<line x1=\"" << x << "\" y1=\"" << top << "\" x2=\"" << x << "\" y2=\"" << H - bottom << "\" stroke=\""
      << m.colour << "\" stroke-width=\"" << (chosen ? 2 : 1) << "\"" << (chosen ? "" : " stroke-dasharray=\"5,4\"")
      << "/>\n";
    s << "<text x=\"" << W - right - 8 << "\" y=\"" << top + 18 + 16 * row++ << "\" text-anchor=\"end\" fill=\""
      << m.colour << "\"" << (chosen ? " font-weight=\"bold\"" : "") << ">" << m.name << " " << format("%.3g", m.lr)
      << (chosen ? " (suggested)" : "") << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace gs::train
