// Checkpoint save/load on top of io/safetensors.
#include "train/checkpoint.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "io/safetensors.h"
#include "tensor/parse.h"
#include "tensor/random.h"

namespace gs::train {

namespace {
using Named = std::vector<std::pair<std::string, Tensor>>;

// Checkpoints hold host copies: a model or optimizer state on a GPU is copied over here.
void append_prefixed(Named& out, const std::string& prefix, const Named& items) {
  for (auto& [name, t] : items) out.emplace_back(prefix + name, t.device().is_cpu() ? t : t.to(Device::cpu()));
}
Named take_prefixed(const Named& items, const std::string& prefix) {
  Named out;
  for (auto& [name, t] : items) {
    if (name.rfind(prefix, 0) == 0) out.emplace_back(name.substr(prefix.size()), t);
  }
  return out;
}
std::string rng_to_string(const std::array<uint64_t, 4>& s) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%016llx%016llx%016llx%016llx", (unsigned long long)s[0], (unsigned long long)s[1],
                (unsigned long long)s[2], (unsigned long long)s[3]);
  return buf;
}
std::array<uint64_t, 4> rng_from_string(const std::string& text, const std::string& path) {
  GS_CHECK(text.size() == 64, "checkpoint %s: rng state '%s' is not 64 hex digits", path.c_str(), text.c_str());
  GS_CHECK(text.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos,
           "checkpoint %s: rng state '%s' is not 64 hex digits", path.c_str(), text.c_str());
  std::array<uint64_t, 4> s{};
  for (int i = 0; i < 4; ++i) s[i] = std::stoull(text.substr(i * 16, 16), nullptr, 16);
  return s;
}
}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer* optimizer,
                     const optim::LRScheduler* scheduler, const CheckpointInfo& info, const nn::Module* trained) {
  Named all;
  append_prefixed(all, "model.", model.state_dict());
  if (trained) append_prefixed(all, "train_model.", trained->state_dict());
  if (optimizer) append_prefixed(all, "optimizer.", optimizer->state_dict());
  if (scheduler) append_prefixed(all, "scheduler.", scheduler->state_dict());
  std::map<std::string, std::string> meta{{"format", kCheckpointFormat},
                                          {"epoch", std::to_string(info.epoch)},
                                          {"best_metric", format("%.17g", info.best_metric)},  // exact
                                          {"best_epoch", std::to_string(info.best_epoch)},
                                          {"rng", rng_to_string(default_generator().state())},
                                          {"config", info.config_json}};
  if (!info.model_repr.empty()) meta["model"] = info.model_repr;
  io::save_safetensors(path, all, meta);
}

CheckpointInfo load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer* optimizer,
                               optim::LRScheduler* scheduler, nn::Module* average) {
  io::SafetensorsFile file = io::load_safetensors(path);
  auto format = file.metadata.find("format");
  GS_CHECK(format != file.metadata.end() && format->second == kCheckpointFormat,
           "checkpoint %s: not a gradscope training checkpoint (metadata format is missing); use --weights for a "
           "plain state_dict", path.c_str());
  // Errors from the model, optimizer or scheduler name the checkpoint they came from.
  try {
    Named trained = take_prefixed(file.tensors, "train_model.");
    if (trained.empty()) {
      model.load_state_dict(take_prefixed(file.tensors, "model."), true);
      if (average) average->load_state_dict(take_prefixed(file.tensors, "model."), true);
    } else {
      GS_CHECK(average, "it holds a weight average (train --ema) besides the trained weights: resume it with --ema");
      model.load_state_dict(trained, true);
      average->load_state_dict(take_prefixed(file.tensors, "model."), true);
    }
    if (optimizer) optimizer->load_state_dict(take_prefixed(file.tensors, "optimizer."));
    if (scheduler) scheduler->load_state_dict(take_prefixed(file.tensors, "scheduler."));
  } catch (const Error& e) {
    throw Error("checkpoint " + path + ": " + e.what());
  }
  CheckpointInfo info;
  auto number = [&](const char* key) {
    const std::string& text = file.metadata[key];
    std::optional<double> v = parse_double(text);
    GS_CHECK(v.has_value(), "checkpoint %s: metadata '%s' is not a number ('%s')", path.c_str(), key, text.c_str());
    return *v;
  };
  // An epoch of nan, 1e300, -3 or 1.5 was cast as it came: a resume ran from epoch -9223372036854775807.
  auto count = [&](const char* key) {
    double v = number(key);
    GS_CHECK(v >= 0 && v <= 1e9 && v == std::floor(v), "checkpoint %s: metadata '%s' is not an epoch count ('%s')",
             path.c_str(), key, file.metadata[key].c_str());
    return static_cast<int64_t>(v);
  };
  info.epoch = count("epoch");
  info.best_metric = number("best_metric");
  if (file.metadata.count("best_epoch")) info.best_epoch = count("best_epoch");
  info.config_json = file.metadata["config"];
  if (auto it = file.metadata.find("model"); it != file.metadata.end()) info.model_repr = it->second;
  default_generator().set_state(rng_from_string(file.metadata["rng"], path));
  return info;
}

std::string model_difference(const std::string& saved_repr, const std::string& built_repr) {
  if (saved_repr == built_repr) return "";
  std::istringstream a(saved_repr), b(built_repr);
  std::string la, lb;
  for (int line = 1;; ++line) {
    const bool more_a = static_cast<bool>(std::getline(a, la)), more_b = static_cast<bool>(std::getline(b, lb));
    if (!more_a) la = "(end)";
    if (!more_b) lb = "(end)";
    auto trim = [](std::string s) { return s.erase(0, std::min(s.find_first_not_of(' '), s.size())); };
    if (la != lb || (!more_a && !more_b))
      return format("line %d of the model's layers: '%s' in the checkpoint, '%s' here", line, trim(la).c_str(),
                    trim(lb).c_str());
  }
}

void load_weights(const std::string& path, nn::Module& model) {
  io::SafetensorsFile file = io::load_safetensors(path);
  auto format = file.metadata.find("format");
  bool checkpoint = format != file.metadata.end() && format->second == kCheckpointFormat;
  try {
    model.load_state_dict(checkpoint ? take_prefixed(file.tensors, "model.") : file.tensors, true);
  } catch (const Error& e) {
    throw Error("weights " + path + ": " + e.what());
  }
  auto saved = file.metadata.find("model");
  if (checkpoint && saved != file.metadata.end()) {
    const std::string difference = model_difference(saved->second, model.repr());
    if (!difference.empty())
      std::fprintf(stderr, "warning: weights %s were trained in another model (%s); they fit, so they are loaded\n",
                   path.c_str(), difference.c_str());
  }
}

}  // namespace gs::train
