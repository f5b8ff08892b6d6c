// gs_onnx_tool: gradscope's side of tests/interop/test_onnx.py.
//
//   gs_onnx_tool run <model|spec.json> <C> <K> <S> <weights.safetensors> <input.safetensors> <out.safetensors>
//
// Builds the zoo model (or the spec; C, K, S are then ignored), loads the state_dict strictly, runs
// input["input"] in eval mode under no_grad and writes "output".
#include <cstdio>
#include <string>

#include "io/safetensors.h"
#include "layers/layers.h"

int main(int argc, char** argv) {
  if (argc != 9 || std::string(argv[1]) != "run") {
    std::fprintf(stderr, "usage: gs_onnx_tool run <model|spec.json> <C> <K> <S> <weights> <input> <output>\n");
    return 2;
  }
  try {
    std::string model = argv[2];
    gs::nn::ModulePtr net =
        model.size() > 5 && model.substr(model.size() - 5) == ".json"
            ? gs::nn::load_model_spec(model)
            : gs::nn::make_model(model, std::stoll(argv[3]), std::stoll(argv[4]), std::stoll(argv[5]));
    net->load_state_dict(gs::io::load_safetensors(argv[6]).tensors);
    net->eval();
    gs::NoGradGuard no_grad;
    gs::Tensor y = (*net)(gs::io::load_safetensors(argv[7]).at("input"));
    gs::io::save_safetensors(argv[8], {{"output", y}});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gs_onnx_tool: %s\n", e.what());
    return 1;
  }
  return 0;
}
