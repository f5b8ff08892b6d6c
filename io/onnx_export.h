// ONNX export of a gs::nn module tree in inference form, built with the official ONNX protobuf
// classes and checked by the ONNX checker and strict shape inference before the file is written.
//
//   auto net = gs::nn::make_model("fashionnet");
//   gs::train::load_weights("runs/x/last.safetensors", *net);          // (cli/ does this for you)
//   gs::onnx::export_model(*net, gs::randn({1, 1, 28, 28}), "fashionnet.onnx", {.opset = 17});
//   // python: onnxruntime.InferenceSession("fashionnet.onnx").run(None, {"input": x})
//
// The graph has one input "input" (N, C, H, W) with a symbolic batch dimension "batch" (or a fixed
// one), and one output "output" (logits, or probabilities with `softmax`). Node and initializer
// names are module paths and state_dict keys ("3.conv1", "3.conv1.weight"), as gradscope prints them.
// Supported layers and their ONNX form are listed at the top of onnx_export.cpp; anything else is an
// error naming the layer's type and path.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "layers/module.h"

namespace gs::onnx {

struct ExportOptions {
  int64_t opset = 17;    // ONNX default-domain opset; 13 up to what the linked ONNX knows
  int64_t batch = 0;     // 0: dynamic batch dimension "batch"; N > 0: fixed batch size N
  bool softmax = false;  // append Softmax over the last axis (output = probabilities)
  std::string graph_name = "gradscope";
  std::string doc;  // free text stored as the model's doc_string (e.g. the model name)
  // Non-empty (one value, or one per channel): the graph starts with (input - mean) / std over the
  // channel dim, the training normalisation, so the exported model takes the raw [0, 1] images.
  std::vector<double> input_mean, input_std;
  std::map<std::string, std::string> metadata;  // the model's metadata_props
};

struct ExportResult {
  int64_t nodes = 0;
  int64_t initializers = 0;
  std::vector<int64_t> output_shape;  // of the example input's forward pass, batch included
};

// Serialised ModelProto for `module` in eval form. `example_input` (N, C, H, W) fixes C, H and W and
// is run once through the module (in eval mode, no grad; the module's mode is restored) to learn each
// layer's input shape. Throws gs::Error naming the module path for unsupported layers, BatchNorm
// without running statistics, parameters that are not f32, and anything the ONNX checker refuses.
std::string export_model_bytes(nn::Module& module, const Tensor& example_input, const ExportOptions& options = {},
                               ExportResult* result = nullptr);
// The same, written atomically to `path`.
ExportResult export_model(nn::Module& module, const Tensor& example_input, const std::string& path,
                          const ExportOptions& options = {});

// The highest default-domain opset the linked ONNX library (and so the checker) knows.
int64_t max_supported_opset();

}  // namespace gs::onnx
