// A hyperparameter search space, read from JSON: each key is a `train` setting (a config.json key or
// its flag name: "lr", "weight_decay" / "weight-decay", "batch" / "batch_size", "optimizer", ...):
//
//   {"lr":           {"type": "loguniform", "low": 1e-4, "high": 1e-1},
//    "momentum":     {"type": "uniform", "low": 0.8, "high": 0.99},
//    "epochs":       {"type": "int", "low": 2, "high": 6},            (add "log": true for a log scale)
//    "batch":        {"type": "choice", "values": [32, 64, 128]}}
//
// Values are drawn in a unit cube (one coordinate per parameter, log scale for loguniform), which is
// the space the strategies of train/search.h work in; to_value() maps a coordinate back.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tensor/random.h"
#include "train/config.h"

namespace gs::train {

struct ParamSpec {
  enum class Kind { Uniform, LogUniform, Int, Choice };
  std::string name;  // as written in the space file
  std::string key;   // the TrainConfig key it sets
  Kind kind = Kind::Uniform;
  double low = 0, high = 1;
  bool log = false;                    // Int on a log scale
  std::vector<nlohmann::json> values;  // Choice

  // unit coordinate u in [0, 1) -> the parameter's value (Choice: values[floor(u * n)]).
  nlohmann::json to_value(double u) const;
  // Inverse of to_value (the middle of a choice's cell), for modelling past trials.
  double to_unit(const nlohmann::json& value) const;
  bool categorical() const { return kind == Kind::Choice; }
  int64_t num_choices() const { return int64_t(values.size()); }
};

struct SearchSpace {
  std::vector<ParamSpec> params;

  static SearchSpace from_json(const std::string& text, const std::string& source);
  static SearchSpace from_file(const std::string& path);
  nlohmann::json to_json() const;

  nlohmann::json sample(Generator& g) const;  // {name: value}, each parameter uniform in its unit coordinate
  // Every combination: `points` values per continuous/int parameter (ends included; ints deduplicated),
  // every value of a choice.
  std::vector<nlohmann::json> grid(int points) const;
  // `base` with the trial's values written in (checked by TrainConfig::from_json: a wrong type is an error).
  TrainConfig apply(const TrainConfig& base, const nlohmann::json& params) const;
};

// "weight-decay" -> "weight_decay", "batch" -> "batch_size", "kernel" -> "kernels"; errors for keys
// TrainConfig does not have.
std::string config_key(const std::string& name);

}  // namespace gs::train
