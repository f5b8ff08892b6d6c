// Model spec parsing (format in spec.h): nlohmann::json, then one small reader per entry that
// records which keys it used, so unknown keys are errors rather than silently ignored.
#include "layers/spec.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "layers/activation.h"
#include "layers/batchnorm.h"
#include "layers/container.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/residual.h"

namespace gs::nn {

namespace {
using json = nlohmann::json;

std::string join(const std::vector<std::string>& names) {
  std::string s;
  for (auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// A value as an error message shows it: its JSON up to 60 characters, nested at most 4 deep (a
// deeper value is not serialised at all: dumping it recurses once per level).
bool shallower_than(const json& v, int levels) {
  if (!v.is_structured()) return true;
  if (levels <= 1) return false;
  for (const auto& item : v) {
    if (!shallower_than(item, levels - 1)) return false;
  }
  return true;
}

std::string shown(const json& v) {
  if (!shallower_than(v, 4)) return std::string(v.type_name()) + " nested more than 4 deep";
  std::string text = v.dump();
  return text.size() <= 60 ? text : text.substr(0, 57) + "...";
}

// Reads one layer entry; every error names the source, the entry index and the type.
class EntryReader {
 public:
  EntryReader(const json& entry, std::string where) : entry_(entry), where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& what) const { throw Error("model spec " + where_ + ": " + what); }

  bool has(const std::string& key) const { return entry_.contains(key); }

  int64_t integer(const std::string& key) {
    const json& v = get(key);
    if (!v.is_number_integer()) fail("key '" + key + "' must be an integer, got " + shown(v));
    return v.get<int64_t>();
  }
  int64_t integer(const std::string& key, int64_t fallback) { return has(key) ? integer(key) : fallback; }

  double number(const std::string& key, double fallback) {
    if (!has(key)) return fallback;
    const json& v = get(key);
    if (!v.is_number()) fail("key '" + key + "' must be a number, got " + shown(v));
    return v.get<double>();
  }

  bool boolean(const std::string& key, bool fallback) {
    if (!has(key)) return fallback;
    const json& v = get(key);
    if (!v.is_boolean()) fail("key '" + key + "' must be true or false, got " + shown(v));
    return v.get<bool>();
  }

  // An int or [h, w].
  std::pair<int64_t, int64_t> pair(const std::string& key) {
    const json& v = get(key);
    if (v.is_number_integer()) return {v.get<int64_t>(), v.get<int64_t>()};
    if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer()) {
      return {v[0].get<int64_t>(), v[1].get<int64_t>()};
    }
    fail("key '" + key + "' must be an integer or [h, w], got " + shown(v));
  }
  std::pair<int64_t, int64_t> pair(const std::string& key, std::pair<int64_t, int64_t> fallback) {
    return has(key) ? pair(key) : fallback;
  }

  // A key the type does not take is a mistake (a typo would otherwise fall back to a default).
  void check_keys(const std::vector<std::string>& allowed) const {
    for (auto& [key, value] : entry_.items()) {
      if (key == "type" || key == "name" || std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      fail("unknown key '" + key + "' (" + (allowed.empty() ? "this type takes no keys" : "known: " + join(allowed)) +
           ")");
    }
  }

 private:
  const json& get(const std::string& key) {
    auto it = entry_.find(key);
    if (it == entry_.end()) fail("missing required key '" + key + "'");
    return *it;
  }

  const json& entry_;
  std::string where_;
};

struct LayerType {
  std::vector<std::string> keys;
  std::function<ModulePtr(EntryReader&)> build;
};

ModulePtr build_pool(EntryReader& r, bool max) {
  auto [kh, kw] = r.pair("kernel");
  auto [sh, sw] = r.pair("stride", {kh, kw});
  auto [ph, pw] = r.pair("padding", {0, 0});
  if (kh <= 0 || kw <= 0 || sh <= 0 || sw <= 0 || ph < 0 || pw < 0) {
    r.fail("kernel and stride must be positive and padding non-negative");
  }
  Pool2dParams p{kh, kw, sh, sw, ph, pw};
  if (max) return std::make_shared<MaxPool2d>(p);
  return std::make_shared<AvgPool2d>(p, r.boolean("count_include_pad", true));
}

ModulePtr build_batchnorm(EntryReader& r, bool two_d) {
  BatchNormOptions o;
  o.num_features = r.integer("features");
  o.eps = r.number("eps", 1e-5);
  o.momentum = r.number("momentum", 0.1);
  o.affine = r.boolean("affine", true);
  o.track_running_stats = r.boolean("track_running_stats", true);
  if (two_d) return std::make_shared<BatchNorm2d>(o);
  return std::make_shared<BatchNorm1d>(o);
}

const std::map<std::string, LayerType>& layer_types() {
  static const std::map<std::string, LayerType> types = {
      {"linear",
       {{"in", "out", "bias"},
        [](EntryReader& r) {
          int64_t in = r.integer("in"), out = r.integer("out");
          return std::make_shared<Linear>(in, out, r.boolean("bias", true));
        }}},
      {"conv2d",
       {{"in", "out", "kernel", "stride", "padding", "dilation", "groups", "bias"},
        [](EntryReader& r) {
          Conv2dOptions o;
          o.in_channels = r.integer("in");
          o.out_channels = r.integer("out");
          std::tie(o.kernel_h, o.kernel_w) = r.pair("kernel");
          std::tie(o.stride_h, o.stride_w) = r.pair("stride", {1, 1});
          std::tie(o.pad_h, o.pad_w) = r.pair("padding", {0, 0});
          std::tie(o.dilation_h, o.dilation_w) = r.pair("dilation", {1, 1});
          o.stride = o.stride_h;
          o.padding = o.pad_h;
          o.dilation = o.dilation_h;
          if (o.kernel_w <= 0) r.fail("kernel must be positive");
          o.groups = r.integer("groups", 1);
          o.bias = r.boolean("bias", true);
          return std::make_shared<Conv2d>(o);
        }}},
      {"batchnorm1d",
       {{"features", "eps", "momentum", "affine", "track_running_stats"},
        [](EntryReader& r) { return build_batchnorm(r, false); }}},
      {"batchnorm2d",
       {{"features", "eps", "momentum", "affine", "track_running_stats"},
        [](EntryReader& r) { return build_batchnorm(r, true); }}},
      {"maxpool2d", {{"kernel", "stride", "padding"}, [](EntryReader& r) { return build_pool(r, true); }}},
      {"avgpool2d",
       {{"kernel", "stride", "padding", "count_include_pad"}, [](EntryReader& r) { return build_pool(r, false); }}},
      {"adaptive_avgpool2d",
       {{"out"},
        [](EntryReader& r) {
          auto [h, w] = r.pair("out");
          return std::make_shared<AdaptiveAvgPool2d>(h, w);
        }}},
      {"flatten",
       {{"start_dim", "end_dim"},
        [](EntryReader& r) {
          int64_t start = r.integer("start_dim", 1);
          return std::make_shared<Flatten>(start, r.integer("end_dim", -1));
        }}},
      {"dropout", {{"p"}, [](EntryReader& r) { return std::make_shared<Dropout>(r.number("p", 0.5)); }}},
      {"relu", {{}, [](EntryReader&) { return std::make_shared<ReLU>(); }}},
      {"leaky_relu", {{"slope"}, [](EntryReader& r) { return std::make_shared<LeakyReLU>(r.number("slope", 0.01)); }}},
      {"gelu", {{}, [](EntryReader&) { return std::make_shared<GELU>(); }}},
      {"sigmoid", {{}, [](EntryReader&) { return std::make_shared<Sigmoid>(); }}},
      {"tanh", {{}, [](EntryReader&) { return std::make_shared<Tanh>(); }}},
      {"identity", {{}, [](EntryReader&) { return std::make_shared<Identity>(); }}},
      {"basic_block",
       {{"in", "out", "stride"},
        [](EntryReader& r) {
          int64_t in = r.integer("in"), out = r.integer("out");
          return std::make_shared<BasicBlock>(in, out, r.integer("stride", 1));
        }}},
  };
  return types;
}
}  // namespace

std::vector<std::string> spec_layer_types() {
  std::vector<std::string> names;
  for (auto& [n, t] : layer_types()) names.push_back(n);
  return names;
}

ModulePtr model_from_spec_json(const std::string& text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error("model spec " + source + ": invalid JSON: " + e.what());
  }
  auto fail = [&](const std::string& what) { throw Error("model spec " + source + ": " + what); };
  if (!doc.is_object()) fail("expected an object {\"layers\": [...]}, got " + std::string(doc.type_name()));
  for (auto& [key, value] : doc.items()) {
    if (key != "layers" && key != "name" && key != "description") {
      fail("unknown top-level key '" + key + "' (known: layers, name, description)");
    }
  }
  if (!doc.contains("layers")) fail("missing required key 'layers'");
  const json& layers = doc["layers"];
  if (!layers.is_array()) fail("'layers' must be an array, got " + shown(layers));
  if (layers.empty()) fail("'layers' is empty");

  auto net = std::make_shared<Sequential>();
  for (size_t i = 0; i < layers.size(); ++i) {
    const json& entry = layers[i];
    std::string where = source + ": layer " + std::to_string(i);
    if (!entry.is_object()) throw Error("model spec " + where + ": expected an object, got " + shown(entry));
    if (!entry.contains("type") || !entry["type"].is_string()) {
      throw Error("model spec " + where + ": missing \"type\" (a string; known: " + join(spec_layer_types()) + ")");
    }
    std::string type = entry["type"].get<std::string>();
    where += " (" + type + ")";
    auto it = layer_types().find(type);
    if (it == layer_types().end()) {
      throw Error("model spec " + where + ": unknown type '" + type + "' (known: " + join(spec_layer_types()) + ")");
    }
    EntryReader reader(entry, where);
    reader.check_keys(it->second.keys);
    ModulePtr module;
    try {
      module = it->second.build(reader);
    } catch (const json::exception& e) {
      reader.fail(e.what());
    } catch (const Error& e) {
      // Layer constructors check their own values; say which entry they came from.
      if (std::string(e.what()).rfind("model spec ", 0) == 0) throw;
      reader.fail(e.what());
    }
    if (entry.contains("name")) {
      if (!entry["name"].is_string()) reader.fail("key 'name' must be a string, got " + shown(entry["name"]));
      try {
        net->push_back(entry["name"].get<std::string>(), module);
      } catch (const Error& e) {
        reader.fail(e.what());
      }
    } else {
      net->push_back(module);
    }
  }
  return net;
}

ModulePtr load_model_spec(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  GS_CHECK(in.good(), "model spec: cannot open '%s'", path.c_str());
  std::stringstream ss;
  ss << in.rdbuf();
  return model_from_spec_json(ss.str(), path);
}

}  // namespace gs::nn
