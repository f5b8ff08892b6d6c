// The Inspector: hooks, per-step records and the sinks (TensorBoard, probes.jsonl, console).
#include "inspect/probes.h"

#include <fnmatch.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "autograd/tape.h"
#include "tensor/raw_ops.h"

namespace gs::inspect {

using nlohmann::json;

bool matches_any(const std::vector<std::string>& patterns, const std::string& name) {
  if (patterns.empty()) return true;
  for (const auto& p : patterns) {
    if (fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

std::vector<std::string> split_patterns(const std::vector<std::string>& flags) {
  std::vector<std::string> out;
  for (const auto& flag : flags) {
    size_t start = 0;
    while (start <= flag.size()) {
      size_t comma = flag.find(',', start);
      if (comma == std::string::npos) comma = flag.size();
      if (comma > start) out.push_back(flag.substr(start, comma - start));
      start = comma + 1;
    }
  }
  return out;
}

namespace {

std::string module_of(const std::string& param_name) {
  size_t dot = param_name.rfind('.');
  return dot == std::string::npos ? "" : param_name.substr(0, dot);
}

// A parameter after the step against its value before the step and at init, in one read of the
// three: the L2 norm of its finite values, |param - before| and |param - init|. In double, over
// fixed chunks summed in order, so the result does not depend on the number of threads.
struct UpdateNorms {
  double weight = 0, update = 0, from_init = 0;
};

template <class T>
UpdateNorms update_norms_of(const T* param, const T* before, const T* init, int64_t n) {
  constexpr int64_t kChunk = int64_t(1) << 15;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<UpdateNorms> partial(static_cast<size_t>(chunks));
#ifdef GS_OPENMP
#pragma omp parallel for schedule(static) if (chunks > 1)
#endif
  for (int64_t c = 0; c < chunks; ++c) {
    double weight = 0, update = 0, from_init = 0;
    for (int64_t i = c * kChunk, end = std::min(n, i + kChunk); i < end; ++i) {
      double w = double(param[i]), du = w - double(before[i]), di = w - double(init[i]);
      weight += std::isfinite(w) ? w * w : 0.0;
      update += du * du;
      from_init += di * di;
    }
    partial[c] = {weight, update, from_init};
  }
  UpdateNorms total;
  for (const UpdateNorms& part : partial) {
    total.weight += part.weight;
    total.update += part.update;
    total.from_init += part.from_init;
  }
  return {std::sqrt(total.weight), std::sqrt(total.update), std::sqrt(total.from_init)};
}

UpdateNorms update_norms(const Tensor& param, const Tensor& before, const Tensor& init) {
  Tensor p = raw::contiguous(on_host(param)), b = raw::contiguous(on_host(before)), i = raw::contiguous(on_host(init));
  if (p.dtype() == DType::F32) return update_norms_of(p.data<float>(), b.data<float>(), i.data<float>(), p.numel());
  return update_norms_of(p.data<double>(), b.data<double>(), i.data<double>(), p.numel());
}

// probes.jsonl is written by hand rather than through a json tree: on every-step probing the
// tree's allocations cost more than the numbers. Numbers are the shortest round-trip form,
// non-finite ones null; names go through the json library's escaping.
void put_key(std::string& out, const std::string& key) {
  out += json(key).dump();
  out += ':';
}

void put_number(std::string& out, const char* key, double v) {
  out += '"';
  out += key;
  out += "\":";
  if (!std::isfinite(v)) {
    out += "null";
  } else {
    char buf[32];
    auto end = std::to_chars(buf, buf + sizeof(buf), v).ptr;
    out.append(buf, end);
  }
  out += ',';
}

void put_integer(std::string& out, const char* key, int64_t v) {
  out += '"';
  out += key;
  out += "\":";
  out += std::to_string(v);
  out += ',';
}

void put_stats(std::string& out, const char* key, const TensorStats& s, bool activation) {
  out += '"';
  out += key;
  out += "\":{";
  put_number(out, "mean", s.mean);
  put_number(out, "std", s.std);
  put_integer(out, "nan", s.nan);
  put_integer(out, "inf", s.pos_inf + s.neg_inf);
  if (activation) {
    put_number(out, "min", s.min);
    put_number(out, "max", s.max);
    put_number(out, "zero_fraction", s.fraction_zero());
  } else {
    put_number(out, "norm", s.norm);
    put_number(out, "max_abs", s.max_abs);
  }
  out.back() = '}';
  out += ',';
}

// Ends an object whose members were each written with a trailing comma.
void close_object(std::string& out) {
  if (out.back() == ',') out.back() = '}';
  else out += '}';
}

}  // namespace

io::HistogramSummary histogram_summary(const TensorStats& s) {
  io::HistogramSummary h;
  const auto& edges = histogram_upper_edges();
  h.min = s.min;
  h.max = s.max;
  h.num = double(s.finite);
  h.sum = s.sum;
  h.sum_squares = s.sum_squares;
  h.bucket_limit.assign(edges.begin(), edges.end());
  h.bucket.assign(s.histogram.begin(), s.histogram.end());
  return h;
}

Inspector::Inspector(nn::ModulePtr model, ProbeOptions options) : model_(std::move(model)), options_(std::move(options)) {
  GS_CHECK(options_.every >= 0, "probes: --probe-every must be >= 0, got %lld", (long long)options_.every);
  if (options_.every > 0) {
    for (auto& [path, module] : model_->named_modules()) {
      if (path.empty() || !matches_any(options_.patterns, path)) continue;
      int index = int(modules_.size());
      ModuleProbe probe;
      probe.path = path;
      probe.type = module->type_name();
      modules_.push_back(std::move(probe));
      int id = module->register_forward_hook([this, index](nn::Module&, const Tensor&, const Tensor& output) {
        if (!sampling_) return;
        ModuleProbe& m = modules_[index];
        m.act = output_stats(output);
        m.has_act = true;
        // These statistics count NaN/Inf: the anomaly detector need not read the output again.
        if (anomaly_ && anomaly_->enabled()) anomaly_->vouch(output, m.act.non_finite() == 0);
        if (!output.requires_grad() || !GradMode::is_enabled()) return;
        Tensor out = output;
        register_hook(out, [this, index](const Tensor& grad) {
          if (sampling_) {
            // Gradients are not deduplicated like outputs: a buffer that a hook has seen may
            // still be accumulated into in place (a tensor with two consumers).
            modules_[index].grad = tensor_stats(grad, options_.histograms);
            modules_[index].has_grad = true;
          }
          return Tensor();  // keep the gradient as it is
        });
      });
      forward_hooks_.emplace_back(module.get(), id);
    }
    NoGradGuard no_grad;
    for (auto& [name, p] : model_->named_parameters()) {
      if (!matches_any(options_.patterns, name) && !matches_any(options_.patterns, module_of(name))) continue;
      ParamProbe probe;
      probe.name = name;
      probe.param = p;
      probe.init = raw::clone(p);
      params_.push_back(std::move(probe));
    }
    GS_CHECK(!modules_.empty() || !params_.empty(), "probes: no module or parameter matches --probe %s",
             options_.patterns.empty() ? "" : options_.patterns[0].c_str());
  }
  if (active()) {
    anomaly_ = std::make_unique<AnomalyDetector>(true);
    anomaly_->watch_parameters(model_->named_parameters());
    anomaly_->set_enabled(false);
  }
  // The event file exists whenever asked for: without sampling it still gets the epoch curves
  // and images that the trainer logs through tensorboard().
  if (!options_.tensorboard_dir.empty()) {
    tensorboard_ = std::make_unique<io::EventWriter>(options_.tensorboard_dir);
    if (options_.resume_step > options_.resume_epoch) tensorboard_->add_session_start(options_.resume_step);
  }
  if (options_.every > 0 && !options_.jsonl_path.empty()) {
    jsonl_.open(options_.jsonl_path, options_.append ? std::ios::app : std::ios::trunc);
    GS_CHECK(jsonl_.good(), "probes: cannot write '%s'", options_.jsonl_path.c_str());
  }
  epoch_dead_.assign(modules_.size(), 0);
  epoch_grad_sq_.assign(params_.size(), 0);
  epoch_update_sq_.assign(params_.size(), 0);
  epoch_weight_sq_.assign(params_.size(), 0);
}

Inspector::~Inspector() {
  for (auto& [module, id] : forward_hooks_) module->remove_forward_hook(id);
}

TensorStats Inspector::output_stats(const Tensor& t) {
  // A Flatten (any view) or a container hands on the very values of the module before it: the
  // same memory, read once. Forward ops never write their inputs, and the storage is still alive
  // (the weak pointer says so), so equal storage, offset and length of contiguous tensors mean
  // equal values.
  const bool keyable = t.defined() && t.is_contiguous() && t.numel() > 0;
  if (keyable) {
    for (const SeenOutput& s : seen_outputs_) {
      if (s.offset == t.offset() && s.numel == t.numel() && s.dtype == t.dtype() && !s.storage.expired() &&
          s.storage.lock() == t.storage())
        return s.stats;
    }
  }
  TensorStats stats = tensor_stats(t, options_.histograms);
  if (keyable) seen_outputs_.push_back({t.storage(), t.offset(), t.numel(), t.dtype(), stats});
  return stats;
}

void Inspector::begin_step(int64_t step) {
  sampling_ = options_.every > 0 && step % options_.every == 0;
  seen_outputs_.clear();
  step_ = StepProbe{};
  step_.step = step;
  for (auto& m : modules_) m.has_act = m.has_grad = false;
  for (auto& p : params_) p.has_grad = p.has_update = false;
  if (anomaly_) {
    anomaly_->set_step(step);
    anomaly_->set_enabled(sampling_ || options_.detect_anomaly);
  }
}

void Inspector::after_forward(const Tensor& loss) {
  if (anomaly_) anomaly_->flush();  // the loss's own entry
  if (sampling_) step_.loss = loss.item();
}

void Inspector::after_backward() {
  if (!sampling_) return;
  double total = 0;
  for (auto& p : params_) {
    Tensor g = p.param.grad();
    if (!g.defined()) continue;
    p.grad = tensor_stats(g, options_.histograms);
    p.has_grad = true;
    total += p.grad.sum_squares;
  }
  step_.grad_norm = std::sqrt(total);
}

void Inspector::after_clip(bool clipped) {
  if (!sampling_) return;
  double total = 0;
  NoGradGuard no_grad;
  for (auto& p : params_) {
    Tensor g = p.param.grad();
    if (clipped && g.defined()) total += tensor_stats(g, false).sum_squares;
    p.before_step = raw::clone(p.param);
  }
  step_.grad_norm_clipped = clipped ? std::sqrt(total) : step_.grad_norm;
}

void Inspector::after_step(double lr) {
  if (anomaly_) anomaly_->set_enabled(false);
  if (!sampling_) return;
  sampling_ = false;  // evaluation forwards after the step are not probed
  seen_outputs_.clear();
  step_.lr = lr;
  for (size_t i = 0; i < params_.size(); ++i) {
    ParamProbe& p = params_[i];
    const UpdateNorms norms = update_norms(p.param, p.before_step, p.init);
    p.weight_norm = norms.weight;
    p.update_norm = norms.update;
    p.update_ratio = p.weight_norm > 0 ? p.update_norm / p.weight_norm : 0;
    p.distance_from_init = norms.from_init;
    p.has_update = true;
    p.before_step = Tensor();
    epoch_grad_sq_[i] += p.has_grad ? p.grad.sum_squares : 0;
    epoch_update_sq_[i] += p.update_norm * p.update_norm;
    epoch_weight_sq_[i] += p.weight_norm * p.weight_norm;
  }
  for (size_t i = 0; i < modules_.size(); ++i) epoch_dead_[i] += modules_[i].has_act ? modules_[i].act.fraction_zero() : 0;
  ++epoch_samples_;
  write_record();
}

void Inspector::write_record() {
  const int64_t step = step_.step;
  if (jsonl_.is_open()) {
    std::string line = "{";
    put_integer(line, "step", step);
    put_number(line, "loss", step_.loss);
    put_number(line, "lr", step_.lr);
    put_number(line, "grad_norm", step_.grad_norm);
    put_number(line, "grad_norm_clipped", step_.grad_norm_clipped);
    line += "\"modules\":{";
    for (const auto& m : modules_) {
      put_key(line, m.path);
      line += '{';
      if (m.has_act) put_stats(line, "act", m.act, true);
      if (m.has_grad) put_stats(line, "grad", m.grad, false);
      close_object(line);
      line += ',';
    }
    close_object(line);
    line += ",\"params\":{";
    for (const auto& p : params_) {
      put_key(line, p.name);
      line += '{';
      put_number(line, "weight_norm", p.weight_norm);
      put_number(line, "update_norm", p.update_norm);
      put_number(line, "update_ratio", p.update_ratio);
      put_number(line, "distance_from_init", p.distance_from_init);
      if (p.has_grad) put_stats(line, "grad", p.grad, false);
      close_object(line);
      line += ',';
    }
    close_object(line);
    line += '}';
    jsonl_ << line << "\n";
    jsonl_.flush();
  }
  if (!tensorboard_) return;
  io::EventWriter& tb = *tensorboard_;
  tb.add_scalar("train/loss", step_.loss, step);
  tb.add_scalar("train/lr", step_.lr, step);
  tb.add_scalar("train/grad_norm", step_.grad_norm, step);
  tb.add_scalar("train/grad_norm_clipped", step_.grad_norm_clipped, step);
  for (const auto& m : modules_) {
    if (m.has_act) {
      const std::string t = "act/" + m.path + "/";
      tb.add_scalar(t + "mean", m.act.mean, step);
      tb.add_scalar(t + "std", m.act.std, step);
      tb.add_scalar(t + "min", m.act.min, step);
      tb.add_scalar(t + "max", m.act.max, step);
      tb.add_scalar(t + "zero_fraction", m.act.fraction_zero(), step);
      tb.add_scalar(t + "nonfinite", double(m.act.non_finite()), step);
      if (options_.histograms) tb.add_histogram("act/" + m.path, histogram_summary(m.act), step);
    }
    if (m.has_grad) {
      const std::string t = "actgrad/" + m.path + "/";
      tb.add_scalar(t + "norm", m.grad.norm, step);
      tb.add_scalar(t + "mean", m.grad.mean, step);
      tb.add_scalar(t + "std", m.grad.std, step);
      tb.add_scalar(t + "max_abs", m.grad.max_abs, step);
      tb.add_scalar(t + "nonfinite", double(m.grad.non_finite()), step);
      if (options_.histograms) tb.add_histogram("actgrad/" + m.path, histogram_summary(m.grad), step);
    }
  }
  for (const auto& p : params_) {
    if (p.has_grad) {
      const std::string t = "grad/" + p.name + "/";
      tb.add_scalar(t + "norm", p.grad.norm, step);
      tb.add_scalar(t + "mean", p.grad.mean, step);
      tb.add_scalar(t + "std", p.grad.std, step);
      tb.add_scalar(t + "max_abs", p.grad.max_abs, step);
      tb.add_scalar(t + "nonfinite", double(p.grad.non_finite()), step);
      if (options_.histograms) tb.add_histogram("grad/" + p.name, histogram_summary(p.grad), step);
    }
    const std::string t = "param/" + p.name + "/";
    tb.add_scalar(t + "weight_norm", p.weight_norm, step);
    tb.add_scalar(t + "update_norm", p.update_norm, step);
    tb.add_scalar(t + "update_ratio", p.update_ratio, step);
    tb.add_scalar(t + "distance_from_init", p.distance_from_init, step);
  }
  tb.flush();
}

std::string Inspector::end_epoch(int64_t epoch) {
  if (epoch_samples_ == 0) return "";
  const double n = double(epoch_samples_);
  std::string text = format("probes, epoch %lld (%lld sampled steps, means):\n", (long long)epoch,
                            (long long)epoch_samples_);
  text += format("  %-14s %-12s %7s %11s %11s  %s\n", "layer", "type", "dead%", "grad norm", "upd/weight",
                 "log10(upd/weight) -6 .. 0");
  for (size_t i = 0; i < modules_.size(); ++i) {
    double grad_sq = 0, update_sq = 0, weight_sq = 0;
    bool has_params = false;
    for (size_t k = 0; k < params_.size(); ++k) {
      if (module_of(params_[k].name) != modules_[i].path) continue;
      has_params = true;
      grad_sq += epoch_grad_sq_[k] / n;
      update_sq += epoch_update_sq_[k] / n;
      weight_sq += epoch_weight_sq_[k] / n;
    }
    std::string grad_col = has_params ? format("%.3e", std::sqrt(grad_sq)) : "-";
    std::string ratio_col = "-", bar;
    if (has_params && weight_sq > 0) {
      double ratio = std::sqrt(update_sq / weight_sq);
      ratio_col = format("%.3e", ratio);
      int width = ratio > 0 ? int(std::clamp((std::log10(ratio) + 6) * 4, 0.0, 24.0)) : 0;
      bar = std::string(size_t(width), '#');
    }
    text += format("  %-14s %-12s %6.1f%% %11s %11s  %s\n", modules_[i].path.c_str(), modules_[i].type.c_str(),
                   100 * epoch_dead_[i] / n, grad_col.c_str(), ratio_col.c_str(), bar.c_str());
  }
  if (tensorboard_) {
    for (size_t i = 0; i < modules_.size(); ++i) {
      tensorboard_->add_scalar("epoch/dead_fraction/" + modules_[i].path, epoch_dead_[i] / n, epoch);
    }
    tensorboard_->flush();
  }
  std::fill(epoch_dead_.begin(), epoch_dead_.end(), 0);
  std::fill(epoch_grad_sq_.begin(), epoch_grad_sq_.end(), 0);
  std::fill(epoch_update_sq_.begin(), epoch_update_sq_.end(), 0);
  std::fill(epoch_weight_sq_.begin(), epoch_weight_sq_.end(), 0);
  epoch_samples_ = 0;
  return text;
}

}  // namespace gs::inspect
