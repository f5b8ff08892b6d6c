// TrainConfig <-> JSON. Unknown keys are errors, so a typo in a config file is never ignored.
#include "train/config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>

#include "tensor/error.h"

namespace gs::train {

using nlohmann::json;

// clang-format off
#define GS_CONFIG_FIELDS(X)                                                                                \
  X(model) X(model_spec) X(data) X(epochs) X(batch_size) X(accumulate) X(optimizer) X(lr) X(lr_auto)       \
  X(momentum) X(weight_decay) X(ema) X(nesterov) X(beta1) X(beta2) X(schedule) X(clip_norm) X(clip_value)  \
  X(label_smoothing) X(grad_penalty) X(class_weights) X(sampler) X(augment) X(mixup) X(cutmix) X(seed)     \
  X(threads) X(out) X(limit_train) X(limit_test) X(exclude_list) X(val_fraction) X(patience) X(weights)    \
  X(resume) X(kernels) X(device) X(sync_bn) X(progress) X(probe_every) X(probe) X(detect_anomaly)          \
  X(tensorboard) X(recompute_segments)
// clang-format on

std::string TrainConfig::to_json() const {
  json j;
#define GS_TO_JSON(field) j[#field] = field;
  GS_CONFIG_FIELDS(GS_TO_JSON)
#undef GS_TO_JSON
  return j.dump(2);
}

namespace {
// nlohmann's get_to converts between numbers and from booleans (64.7 -> 64, true -> 1, -1 -> a
// uint64 of 2^64-1): a config's values are taken only as what they say.
template <typename T> void read_value(const json& v, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    GS_CHECK(v.is_boolean(), "expected true or false, got %s", v.dump().c_str());
    out = v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    double d = v.is_number() ? v.get<double>() : NAN;
    const bool whole = v.is_number_integer() || (v.is_number_float() && std::isfinite(d) && d == std::floor(d));
    const bool in_range = std::is_signed_v<T> ? !v.is_number_unsigned() || v.get<uint64_t>() <= uint64_t(INT64_MAX)
                                              : v.is_number_unsigned() || (!v.is_number_integer() && d >= 0);
    GS_CHECK(whole && in_range && (!v.is_number_float() || std::fabs(d) < 9.2e18), "expected a whole number%s, got %s",
             std::is_signed_v<T> ? "" : " >= 0", v.dump().c_str());
    out = v.is_number_float() ? static_cast<T>(d) : v.get<T>();
  } else if constexpr (std::is_floating_point_v<T>) {
    GS_CHECK(v.is_number(), "expected a number, got %s", v.dump().c_str());
    out = v.get<T>();
  } else {
    v.get_to(out);
  }
}
}  // namespace

TrainConfig TrainConfig::from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    throw Error(source + ": not valid JSON (" + e.what() + ")");
  }
  GS_CHECK(j.is_object(), "%s: a config must be a JSON object", source.c_str());
  TrainConfig c;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    bool known = false;
    try {
#define GS_FROM_JSON(field)          \
  if (key == #field) {               \
    read_value(it.value(), c.field); \
    known = true;                    \
  }
      GS_CONFIG_FIELDS(GS_FROM_JSON)
#undef GS_FROM_JSON
    } catch (const std::exception& e) {
      throw Error(source + ": key '" + key + "' has the wrong type (" + e.what() + ")");
    }
    GS_CHECK(known, "%s: unknown key '%s' in config", source.c_str(), key.c_str());
  }
  return c;
}

TrainConfig TrainConfig::from_file(const std::string& path) {
  std::ifstream in(path);
  GS_CHECK(in.good(), "config: cannot open '%s'", path.c_str());
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json(ss.str(), path);
}

std::map<std::string, double> TrainConfig::optimizer_hyper() const {
  std::map<std::string, double> h{{"lr", lr}, {"weight_decay", weight_decay}};
  if (optimizer == "sgd") {
    h["momentum"] = momentum;
    h["nesterov"] = nesterov ? 1.0 : 0.0;
  } else if (optimizer == "rmsprop") {
    h["momentum"] = momentum;
  } else if (optimizer == "adam" || optimizer == "adamw") {
    h["beta1"] = beta1;
    h["beta2"] = beta2;
  } else if (optimizer == "rprop") {
    h.erase("weight_decay");
  }
  return h;
}

void TrainConfig::check_values(const std::string& command) const {
  const char* cmd = command.c_str();
  auto non_negative = [&](const char* flag, double v) {
    GS_CHECK(std::isfinite(v) && v >= 0, "%s: %s must be a finite number >= 0, got %g", cmd, flag, v);
  };
  GS_CHECK(batch_size > 0, "%s: --batch must be positive, got %lld", cmd, (long long)batch_size);
  GS_CHECK(std::isfinite(lr) && lr >= 0, "%s: --lr must be a finite number >= 0, got %g", cmd, lr);
  GS_CHECK(threads >= 0, "%s: --threads must be >= 0 (0: OMP_NUM_THREADS or all cores), got %d", cmd, threads);
  GS_CHECK(limit_train >= 0, "%s: --limit-train must be >= 0 (0: all), got %lld", cmd, (long long)limit_train);
  GS_CHECK(limit_test >= 0, "%s: --limit-test must be >= 0 (0: all), got %lld", cmd, (long long)limit_test);
  GS_CHECK(probe_every >= 0, "%s: --probe-every must be >= 0 (0: off), got %lld", cmd, (long long)probe_every);
  non_negative("--clip-norm", clip_norm);
  non_negative("--clip-value", clip_value);
  non_negative("--weight-decay", weight_decay);
  non_negative("--momentum", momentum);
  GS_CHECK(std::isfinite(label_smoothing) && label_smoothing >= 0 && label_smoothing <= 1,
           "%s: --label-smoothing must be in [0, 1], got %g", cmd, label_smoothing);
  GS_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "%s: --beta1 and --beta2 must be in [0, 1), got %g, %g",
           cmd, beta1, beta2);
}

}  // namespace gs::train
