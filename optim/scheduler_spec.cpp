// make_scheduler: the CLI's schedule specs ("warmup=500+cosine", "step:step_size=30,gamma=0.1", ...)
// parsed into the schedules of lr_scheduler.h. Every error names the spec part, key or value at fault.
#include <algorithm>
#include <cmath>
#include <map>

#include "optim/lr_scheduler.h"
#include "tensor/parse.h"

namespace gs::optim {
namespace {

const char* kKnownSchedules = "none, step, multistep, exp, cosine, cosine_restarts, onecycle, cyclic, plateau";

std::string join_keys(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

// key=value pairs of one spec part, checked against the keys that part knows.
class SpecArgs {
 public:
  SpecArgs(const std::string& what, const std::string& text, std::vector<std::string> known)
      : what_(what), known_(std::move(known)) {
    size_t start = 0;
    while (start <= text.size() && !text.empty()) {
      size_t comma = text.find(',', start);
      std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      size_t eq = item.find('=');
      GS_CHECK(eq != std::string::npos && eq > 0, "make_scheduler: '%s' in '%s' is not key=value", item.c_str(),
               what_.c_str());
      std::string key = item.substr(0, eq);
      GS_CHECK(std::find(known_.begin(), known_.end(), key) != known_.end(),
               "make_scheduler: unknown key '%s' for '%s' (known: %s)", key.c_str(), what_.c_str(),
               join_keys(known_).c_str());
      GS_CHECK(!values_.count(key), "make_scheduler: key '%s' given twice in '%s'", key.c_str(), what_.c_str());
      values_[key] = item.substr(eq + 1);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }

  bool has(const std::string& key) const { return values_.count(key) > 0; }
  void require(const std::string& key) const {
    GS_CHECK(has(key), "make_scheduler: '%s' needs key '%s' (known: %s)", what_.c_str(), key.c_str(),
             join_keys(known_).c_str());
  }
  std::string text(const std::string& key, const std::string& fallback) const {
    auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }
  double number(const std::string& key, double fallback) const {
    auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    return parse_number(key, it->second);
  }
  int64_t integer(const std::string& key, int64_t fallback) const {
    auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    return parse_integer(key, it->second);
  }
  bool flag(const std::string& key, bool fallback) const {
    auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    const std::string& v = it->second;
    if (v == "1" || v == "true") return true;
    if (v == "0" || v == "false") return false;
    GS_CHECK(false, "make_scheduler: bad value '%s' for key '%s' in '%s' (expected 0, 1, true or false)", v.c_str(),
             key.c_str(), what_.c_str());
    return false;
  }
  std::vector<int64_t> integer_list(const std::string& key) const {
    std::vector<int64_t> out;
    const std::string& v = values_.at(key);
    size_t start = 0;
    while (true) {
      size_t bar = v.find('|', start);
      out.push_back(parse_integer(key, v.substr(start, bar == std::string::npos ? std::string::npos : bar - start)));
      if (bar == std::string::npos) break;
      start = bar + 1;
    }
    return out;
  }

 private:
  double parse_number(const std::string& key, const std::string& v) const {
    std::optional<double> out = parse_double(v);
    GS_CHECK(out && std::isfinite(*out), "make_scheduler: bad value '%s' for key '%s' in '%s' (expected a number)",
             v.c_str(), key.c_str(), what_.c_str());
    return *out;
  }
  int64_t parse_integer(const std::string& key, const std::string& v) const {
    double d = parse_number(key, v);  // accepts 1e3
    GS_CHECK(d == std::floor(d) && std::abs(d) < 9e15,
             "make_scheduler: bad value '%s' for key '%s' in '%s' (expected an integer)", v.c_str(), key.c_str(),
             what_.c_str());
    return static_cast<int64_t>(d);
  }

  std::string what_;
  std::vector<std::string> known_;
  std::map<std::string, std::string> values_;
};

// The schedule after the warmup prefix; `total` is the number of steps it covers.
std::unique_ptr<LRScheduler> make_plain(const std::string& spec, Optimizer& opt, int64_t total) {
  const size_t colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  const std::string args = colon == std::string::npos ? "" : spec.substr(colon + 1);
  auto need_total = [&](const char* key) {
    GS_CHECK(total > 0, "make_scheduler: '%s' needs %s (no default: the run has %lld steps after warmup)", spec.c_str(),
             key, static_cast<long long>(total));
  };
  if (name == "none" || name.empty()) {
    SpecArgs a(spec, args, {});
    return std::make_unique<ConstantLR>(opt);
  }
  if (name == "step") {
    SpecArgs a(spec, args, {"step_size", "gamma"});
    a.require("step_size");
    return std::make_unique<StepLR>(opt, a.integer("step_size", 0), a.number("gamma", 0.1));
  }
  if (name == "multistep") {
    SpecArgs a(spec, args, {"milestones", "gamma"});
    a.require("milestones");
    return std::make_unique<MultiStepLR>(opt, a.integer_list("milestones"), a.number("gamma", 0.1));
  }
  if (name == "exp") {
    SpecArgs a(spec, args, {"gamma"});
    a.require("gamma");
    return std::make_unique<ExponentialLR>(opt, a.number("gamma", 1));
  }
  if (name == "cosine") {
    SpecArgs a(spec, args, {"T_max", "eta_min"});
    if (!a.has("T_max")) need_total("T_max");
    return std::make_unique<CosineAnnealingLR>(opt, a.integer("T_max", total), a.number("eta_min", 0));
  }
  if (name == "cosine_restarts") {
    SpecArgs a(spec, args, {"T_0", "T_mult", "eta_min"});
    a.require("T_0");
    return std::make_unique<CosineAnnealingWarmRestarts>(opt, a.integer("T_0", 0), a.integer("T_mult", 1),
                                                         a.number("eta_min", 0));
  }
  if (name == "onecycle") {
    SpecArgs a(spec, args,
               {"max_lr", "total_steps", "pct_start", "anneal", "div_factor", "final_div_factor", "three_phase",
                "cycle_momentum", "base_momentum", "max_momentum"});
    if (!a.has("total_steps")) need_total("total_steps");
    return std::make_unique<OneCycleLR>(opt, a.number("max_lr", opt.lr()), a.integer("total_steps", total),
                                        a.number("pct_start", 0.3), a.text("anneal", "cos"), a.number("div_factor", 25),
                                        a.number("final_div_factor", 1e4), a.flag("three_phase", false),
                                        a.flag("cycle_momentum", true), a.number("base_momentum", 0.85),
                                        a.number("max_momentum", 0.95));
  }
  if (name == "cyclic") {
    SpecArgs a(spec, args,
               {"base_lr", "max_lr", "step_size_up", "step_size_down", "mode", "gamma", "cycle_momentum",
                "base_momentum", "max_momentum"});
    a.require("max_lr");
    return std::make_unique<CyclicLR>(
        opt, a.number("base_lr", opt.lr()), a.number("max_lr", 0), a.integer("step_size_up", 2000),
        a.integer("step_size_down", -1), a.text("mode", "triangular"), a.number("gamma", 1.0),
        a.flag("cycle_momentum", true), a.number("base_momentum", 0.8), a.number("max_momentum", 0.9));
  }
  if (name == "plateau") {
    SpecArgs a(spec, args,
               {"metric", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps"});
    return std::make_unique<ReduceLROnPlateau>(opt, a.text("metric", "val_loss"), a.number("factor", 0.1),
                                               a.integer("patience", 10), a.number("threshold", 1e-4),
                                               a.text("threshold_mode", "rel"), a.integer("cooldown", 0),
                                               a.number("min_lr", 0), a.number("eps", 1e-8));
  }
  GS_CHECK(false, "make_scheduler: unknown schedule '%s' in '%s' (known: %s; prefix warmup=N+ to warm up)",
           name.c_str(), spec.c_str(), kKnownSchedules);
  return nullptr;
}

}  // namespace

std::unique_ptr<LRScheduler> make_scheduler(const std::string& spec, Optimizer& optimizer, int64_t steps_per_epoch,
                                            int64_t epochs) {
  GS_CHECK(steps_per_epoch >= 0 && epochs >= 0, "make_scheduler: negative steps_per_epoch %lld or epochs %lld",
           static_cast<long long>(steps_per_epoch), static_cast<long long>(epochs));
  const int64_t total = steps_per_epoch * epochs;
  if (spec.rfind("warmup=", 0) != 0) return make_plain(spec, optimizer, total);

  // "warmup=N[,start_factor=F][+rest]"
  const size_t plus = spec.find('+');
  const std::string head = spec.substr(0, plus);
  const std::string rest = plus == std::string::npos ? "none" : spec.substr(plus + 1);
  SpecArgs a(head, head, {"warmup", "start_factor"});
  const int64_t warmup = a.integer("warmup", 0);
  GS_CHECK(warmup > 0, "make_scheduler: bad value '%s' for key 'warmup' in '%s' (expected an integer > 0)",
           a.text("warmup", "").c_str(), spec.c_str());
  GS_CHECK(rest.rfind("warmup=", 0) != 0, "make_scheduler: '%s' has two warmup prefixes", spec.c_str());
  // The wrapped schedule sets the lrs to its own step 0 on construction; LinearWarmup then takes
  // its base lrs from it, so build it first.
  std::unique_ptr<LRScheduler> after =
      make_plain(rest, optimizer, total > 0 ? std::max<int64_t>(total - warmup, 0) : 0);
  return std::make_unique<LinearWarmup>(optimizer, warmup, a.number("start_factor", 0.01), std::move(after));
}

}  // namespace gs::optim
