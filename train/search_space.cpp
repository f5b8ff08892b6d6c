// Search space parsing, unit-cube mapping, random and grid sampling.
#include "train/search_space.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "tensor/error.h"

namespace gs::train {

using nlohmann::json;

std::string config_key(const std::string& name) {
  std::string key = name;
  while (!key.empty() && key[0] == '-') key.erase(0, 1);
  for (auto& ch : key) ch = ch == '-' ? '_' : ch;
  if (key == "batch") key = "batch_size";
  if (key == "kernel") key = "kernels";
  json known = json::parse(TrainConfig().to_json());
  GS_CHECK(known.contains(key), "search space: '%s' is not a train setting (config.json key or flag)", name.c_str());
  GS_CHECK(key != "out" && key != "resume" && key != "lr_auto", "search space: '%s' cannot be searched", name.c_str());
  return key;
}

json ParamSpec::to_value(double u) const {
  u = std::clamp(u, 0.0, std::nextafter(1.0, 0.0));
  switch (kind) {
    // Clamped: exp(log(low)) is 0.0010000000000000002 for low 0.001, just outside the range given.
    case Kind::Uniform: return std::clamp(low + u * (high - low), low, high);
    case Kind::LogUniform: return std::clamp(std::exp(std::log(low) + u * (std::log(high) - std::log(low))), low, high);
    case Kind::Int: {
      // Each integer gets an equal share of [0, 1) (on a log scale when asked).
      if (log) {
        double v = std::exp(std::log(low) + u * (std::log(high + 1) - std::log(low)));
        return std::clamp<int64_t>(int64_t(std::floor(v)), int64_t(low), int64_t(high));
      }
      return std::clamp<int64_t>(int64_t(low) + int64_t(std::floor(u * (high - low + 1))), int64_t(low), int64_t(high));
    }
    case Kind::Choice: return values[size_t(std::floor(u * double(values.size())))];
  }
  return nullptr;
}

double ParamSpec::to_unit(const json& value) const {
  switch (kind) {
    case Kind::Uniform: return (value.get<double>() - low) / (high - low);
    case Kind::LogUniform: return (std::log(value.get<double>()) - std::log(low)) / (std::log(high) - std::log(low));
    case Kind::Int: {
      double v = value.get<double>() + 0.5;
      if (log) return (std::log(v) - std::log(low)) / (std::log(high + 1) - std::log(low));
      return (v - low) / (high - low + 1);
    }
    case Kind::Choice:
      for (size_t i = 0; i < values.size(); ++i)
        if (values[i] == value) return (double(i) + 0.5) / double(values.size());
      return 0.5;
  }
  return 0.5;
}

SearchSpace SearchSpace::from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    throw Error(source + ": not valid JSON (" + e.what() + ")");
  }
  GS_CHECK(j.is_object() && !j.empty(), "%s: a search space is a non-empty JSON object {\"lr\": {...}, ...}",
           source.c_str());
  SearchSpace space;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const char* name = it.key().c_str();
    const json& d = it.value();
    GS_CHECK(d.is_object() && d.contains("type") && d["type"].is_string(), "%s: '%s' needs a \"type\"", source.c_str(),
             name);
    for (auto k = d.begin(); k != d.end(); ++k) {  // a typo ("hihg") is never ignored
      GS_CHECK(k.key() == "type" || k.key() == "values" || k.key() == "low" || k.key() == "high" || k.key() == "log",
               "%s: '%s' has unknown key '%s' (type, values, low, high, log)", source.c_str(), name, k.key().c_str());
    }
    ParamSpec p;
    p.name = it.key();
    p.key = config_key(p.name);
    std::string type = d["type"];
    if (type == "choice" || type == "categorical") {
      p.kind = ParamSpec::Kind::Choice;
      GS_CHECK(d.contains("values") && d["values"].is_array() && !d["values"].empty(),
               "%s: choice '%s' needs a non-empty \"values\" array", source.c_str(), name);
      for (const auto& v : d["values"]) p.values.push_back(v);
    } else {
      if (type == "uniform")
        p.kind = ParamSpec::Kind::Uniform;
      else if (type == "loguniform" || type == "log_uniform")
        p.kind = ParamSpec::Kind::LogUniform;
      else if (type == "int" || type == "randint")
        p.kind = ParamSpec::Kind::Int;
      else
        GS_CHECK(false, "%s: '%s' has unknown type '%s' (uniform, loguniform, int, choice)", source.c_str(), name,
                 type.c_str());
      GS_CHECK(d.contains("low") && d.contains("high") && d["low"].is_number() && d["high"].is_number(),
               "%s: '%s' needs numbers \"low\" and \"high\"", source.c_str(), name);
      p.low = d["low"];
      p.high = d["high"];
      GS_CHECK(p.kind != ParamSpec::Kind::Int || (d["low"].is_number_integer() && d["high"].is_number_integer()),
               "%s: int '%s' needs integer \"low\" and \"high\", got %s and %s", source.c_str(), name,
               d["low"].dump().c_str(), d["high"].dump().c_str());
      p.log = d.value("log", false);
      GS_CHECK(p.low < p.high || (p.kind == ParamSpec::Kind::Int && p.low <= p.high),
               "%s: '%s' needs low < high, got %g and %g", source.c_str(), name, p.low, p.high);
      GS_CHECK((p.kind != ParamSpec::Kind::LogUniform && !p.log) || p.low > 0,
               "%s: '%s' is on a log scale: low must be > 0", source.c_str(), name);
    }
    space.params.push_back(std::move(p));
  }
  return space;
}

SearchSpace SearchSpace::from_file(const std::string& path) {
  std::ifstream in(path);
  GS_CHECK(in.good(), "search: cannot open space file '%s'", path.c_str());
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json(ss.str(), path);
}

json SearchSpace::to_json() const {
  json j = json::object();
  for (const auto& p : params) {
    static const char* kNames[] = {"uniform", "loguniform", "int", "choice"};
    json d{{"type", kNames[int(p.kind)]}};
    if (p.categorical()) {
      d["values"] = p.values;
    } else {
      d["low"] = p.low;
      d["high"] = p.high;
      if (p.log) d["log"] = true;
    }
    j[p.name] = d;
  }
  return j;
}

json SearchSpace::sample(Generator& g) const {
  json out = json::object();
  for (const auto& p : params) out[p.name] = p.to_value(g.uniform());
  return out;
}

std::vector<json> SearchSpace::grid(int points) const {
  GS_CHECK(points >= 1, "search: grid needs at least 1 point per parameter, got %d", points);
  std::vector<std::vector<json>> axes;
  for (const auto& p : params) {
    std::vector<json> axis;
    if (p.categorical()) {
      axis = p.values;
    } else {
      for (int i = 0; i < points; ++i) {
        double t = points == 1 ? 0.5 : double(i) / (points - 1);
        json v;
        // The ends are the range's own numbers (exp(log(0.1)) is 0.10000000000000006).
        if (p.kind == ParamSpec::Kind::Uniform)
          v = i == 0 && points > 1 ? p.low : i == points - 1 && points > 1 ? p.high : p.low + t * (p.high - p.low);
        else if (p.kind == ParamSpec::Kind::LogUniform)
          v = i == 0 && points > 1 ? p.low
              : i == points - 1 && points > 1
                  ? p.high
                  : std::clamp(std::exp(std::log(p.low) + t * (std::log(p.high) - std::log(p.low))), p.low, p.high);
        else
          v = int64_t(std::llround(p.log ? std::exp(std::log(p.low) + t * (std::log(p.high) - std::log(p.low)))
                                         : p.low + t * (p.high - p.low)));
        if (std::find(axis.begin(), axis.end(), v) == axis.end()) axis.push_back(v);
      }
    }
    axes.push_back(axis);
  }
  std::vector<json> out{json::object()};
  for (size_t k = 0; k < params.size(); ++k) {
    std::vector<json> next;
    for (const auto& partial : out)
      for (const auto& v : axes[k]) {
        json e = partial;
        e[params[k].name] = v;
        next.push_back(e);
      }
    out = std::move(next);
  }
  return out;
}

TrainConfig SearchSpace::apply(const TrainConfig& base, const json& values) const {
  json j = json::parse(base.to_json());
  for (const auto& p : params) {
    if (!values.contains(p.name)) continue;
    json v = values[p.name];
    // An int-valued setting given as a float (e.g. from a uniform) is rounded, not a type error.
    if (j[p.key].is_number_integer() && v.is_number_float()) v = int64_t(std::llround(v.get<double>()));
    j[p.key] = v;
  }
  return TrainConfig::from_json(j.dump(), "search trial");
}

}  // namespace gs::train
