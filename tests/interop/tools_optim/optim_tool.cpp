// Runs one optimizer or LR-schedule case described in JSON (file argument) and prints the result as
// JSON on stdout, for tests/interop/test_optim.py to compare step by step with torch.optim.
//   optimizer: {"kind":"optimizer","name":"adam","hyper":{...},"dtype":"f64","params":[{"shape":[..],
//               "data":[..]}], "groups":[{"params":[0],"lr":..,"weight_decay":..,"options":{..}}] (optional),
//               "grads":[[flat grad or null per param] per step], "reload_at":k (optional: after step k
//               the state goes through state_dict into a fresh optimizer)}
//              -> {"params":[[flat param per param] per step]}
//   scheduler: {"kind":"scheduler","spec":"..","lr":0.1,"group_lrs":[..] (optional),"steps":N,
//               "steps_per_epoch":..,"epochs":..,"reload_at":k (optional),"optimizer":"sgd"|"adam",
//               "metrics":[value per step] (optional: observe(value) after each step, for plateau)}
//              -> {"lrs":[[lr per group] per step], "momentum_key":"beta1"|"momentum"|"",
//                  "momenta":[[that option per group] per step]}
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "optim/optim.h"
#include "tensor/raw_ops.h"

using json = nlohmann::json;
namespace optim = gs::optim;

namespace {

gs::Tensor tensor_from(const json& data, const gs::Shape& shape, gs::DType dtype) {
  std::vector<double> values = data.get<std::vector<double>>();
  return gs::from_vector(values, shape, {dtype});
}

std::unique_ptr<optim::Optimizer> build(const json& spec, const std::vector<gs::Tensor>& params) {
  std::map<std::string, double> hyper = spec.value("hyper", std::map<std::string, double>{});
  const std::string name = spec.at("name");
  if (!spec.contains("groups")) return optim::make_optimizer(name, params, hyper);
  std::vector<optim::ParamGroup> groups;
  for (const json& g : spec.at("groups")) {
    optim::ParamGroup group{{},
                            g.at("lr").get<double>(),
                            g.value("weight_decay", 0.0),
                            g.value("options", std::map<std::string, double>{})};
    for (int index : g.at("params")) group.params.push_back(params.at(static_cast<size_t>(index)));
    groups.push_back(std::move(group));
  }
  return optim::make_optimizer(name, groups, hyper);
}

json run_optimizer(const json& spec) {
  const gs::DType dtype = spec.value("dtype", std::string("f64")) == "f32" ? gs::DType::F32 : gs::DType::F64;
  std::vector<gs::Tensor> params;
  for (const json& p : spec.at("params")) {
    gs::Tensor t = tensor_from(p.at("data"), p.at("shape").get<gs::Shape>(), dtype);
    params.push_back(t.set_requires_grad(true));
  }
  auto opt = build(spec, params);
  const int reload_at = spec.value("reload_at", -1);
  json trajectory = json::array();
  int step = 0;
  for (const json& grads : spec.at("grads")) {
    opt->zero_grad();
    for (size_t i = 0; i < params.size(); ++i)
      if (!grads.at(i).is_null()) params[i].set_grad(tensor_from(grads.at(i), params[i].shape(), dtype));
    opt->step();
    ++step;
    json row = json::array();
    for (const auto& p : params) row.push_back(p.to_vector<double>());
    trajectory.push_back(row);
    if (step == reload_at) {
      optim::NamedTensors state = opt->state_dict();
      opt = build(spec, params);
      opt->load_state_dict(state);
    }
  }
  return {{"params", trajectory}};
}

json run_scheduler(const json& spec) {
  std::vector<double> lrs = spec.value("group_lrs", std::vector<double>{spec.value("lr", 0.1)});
  std::vector<optim::ParamGroup> groups;
  for (double lr : lrs) groups.push_back({{gs::zeros({1}).set_requires_grad(true)}, lr, 0.0, {}});
  std::unique_ptr<optim::Optimizer> owned;
  if (spec.value("optimizer", "sgd") == "adam") {
    owned = std::make_unique<optim::Adam>(groups);
  } else {
    owned = std::make_unique<optim::SGD>(groups);
  }
  optim::Optimizer& opt = *owned;
  auto make = [&] {
    return optim::make_scheduler(spec.at("spec"), opt, spec.value("steps_per_epoch", 0), spec.value("epochs", 0));
  };
  auto sched = make();
  const int reload_at = spec.value("reload_at", -1);
  json out = json::array(), momenta = json::array();
  const std::string key = sched->momentum_key();
  auto record = [&] {
    json row = json::array(), m = json::array();
    for (const auto& g : opt.param_groups()) {
      row.push_back(g.lr);
      if (!key.empty()) m.push_back(g.options.at(key));
    }
    out.push_back(row);
    momenta.push_back(m);
  };
  record();
  std::vector<double> metrics;  // null: NaN (JSON has none)
  for (const json& m : spec.value("metrics", json::array())) metrics.push_back(m.is_null() ? NAN : m.get<double>());
  for (int step = 1; step <= spec.at("steps").get<int>(); ++step) {
    sched->step();
    if (!metrics.empty()) sched->observe(metrics.at(size_t(step - 1)));
    record();
    if (step == reload_at) {
      optim::NamedTensors state = sched->state_dict();
      for (size_t g = 0; g < lrs.size(); ++g) opt.param_groups()[g].lr = lrs[g];  // as a fresh run would start
      sched = make();
      sched->load_state_dict(state);
    }
  }
  return {{"lrs", out}, {"name", sched->name()}, {"momentum_key", key}, {"momenta", momenta}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s case.json\n", argv[0]);
    return 2;
  }
  try {
    std::ifstream in(argv[1]);
    json spec = json::parse(in);
    json out = spec.at("kind") == "optimizer" ? run_optimizer(spec) : run_scheduler(spec);
    std::cout << out.dump() << "\n";
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gs_optim_tool: %s\n", e.what());
    return 1;
  }
  return 0;
}
