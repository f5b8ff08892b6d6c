// gs_layers_tool: drives gs::nn for tests/interop/test_layers_state_dict.py.
//
//   gs_layers_tool describe <model> <C> <K> <S>                 JSON: keys, shapes, parameter count, repr
//   gs_layers_tool run <model|spec.json> <C> <K> <S> <weights.safetensors> <input.safetensors> <out.safetensors>
//   [train]
//
// run loads the state_dict strictly, runs input["input"] in eval mode (or train mode) and writes
// "output". With input["out_weight"] it also backpropagates sum(output * out_weight) and writes
// "grad.<param>"; in train mode it writes the updated state as "state.<key>". A model argument
// ending in .json is a model spec (C, K, S are then ignored).
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "io/safetensors.h"
#include "layers/layers.h"

namespace {

gs::nn::ModulePtr build(const std::string& model, char** argv) {
  if (model.size() > 5 && model.substr(model.size() - 5) == ".json") return gs::nn::load_model_spec(model);
  return gs::nn::make_model(model, std::stoll(argv[0]), std::stoll(argv[1]), std::stoll(argv[2]));
}

int describe(const gs::nn::ModulePtr& net) {
  nlohmann::ordered_json out;
  out["num_parameters"] = net->num_parameters();
  out["keys"] = nlohmann::json::array();
  out["shapes"] = nlohmann::json::array();
  out["dtypes"] = nlohmann::json::array();
  for (auto& [k, t] : net->state_dict()) {
    out["keys"].push_back(k);
    out["shapes"].push_back(t.shape());
    out["dtypes"].push_back(gs::dtype_name(t.dtype()));
  }
  out["parameters"] = nlohmann::json::array();
  for (auto& [k, t] : net->named_parameters()) out["parameters"].push_back(k);
  out["repr"] = net->repr();
  std::cout << out.dump() << "\n";
  return 0;
}

int run(const gs::nn::ModulePtr& net, const std::string& weights, const std::string& input, const std::string& output,
        bool train) {
  auto state = gs::io::load_safetensors(weights);
  net->load_state_dict(state.tensors);
  net->train(train);
  auto in = gs::io::load_safetensors(input);
  gs::Tensor y = (*net)(in.at("input"));
  std::vector<std::pair<std::string, gs::Tensor>> results{{"output", y.detach()}};
  if (in.contains("out_weight")) {
    gs::backward(gs::sum(y * in.at("out_weight")));
    for (auto& [k, p] : net->named_parameters()) results.emplace_back("grad." + k, p.grad());
  }
  if (train) {
    for (auto& [k, t] : net->state_dict()) results.emplace_back("state." + k, t.detach());
  }
  gs::io::save_safetensors(output, results);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "describe" && argc == 6) return describe(build(argv[2], argv + 3));
    if (cmd == "run" && (argc == 9 || argc == 10)) {
      bool train = argc == 10 && std::string(argv[9]) == "train";
      return run(build(argv[2], argv + 3), argv[6], argv[7], argv[8], train);
    }
    std::cerr << "usage: gs_layers_tool describe <model> <C> <K> <S>\n"
                 "       gs_layers_tool run <model|spec.json> <C> <K> <S> <weights> <input> <output> [train]\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "gs_layers_tool: " << e.what() << "\n";
    return 1;
  }
}
