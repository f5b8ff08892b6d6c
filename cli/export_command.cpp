// `gradscope export`: a model (zoo or spec) with weights from a state_dict or training checkpoint,
// written as ONNX by io/onnx_export. The input shape comes from --input-shape or from the data set.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "io/dataset.h"
#include "io/onnx_export.h"
#include "io/safetensors.h"
#include "io/transforms.h"
#include "tensor/parse.h"
#include "train/checkpoint.h"
#include "train/exclude_list.h"
#include "train/trainer.h"

namespace gs::cli {

namespace {

struct ExportFlags {
  train::TrainConfig config;
  std::string weights, onnx_path, batch = "dynamic", input_shape;
  int64_t opset = 17;
  int64_t classes = 10;
  bool softmax = false;
  bool normalize = false;
};

// "3x32x32" -> {3, 32, 32}
Shape parse_input_shape(const std::string& text) {
  Shape dims;
  std::stringstream ss(text);
  for (std::string part; std::getline(ss, part, 'x');) {
    std::optional<int64_t> v = parse_int64(part);
    GS_CHECK(v && *v > 0, "export: --input-shape '%s' is not CxHxW with positive sizes (e.g. 1x28x28)", text.c_str());
    dims.push_back(*v);
  }
  GS_CHECK(dims.size() == 3, "export: --input-shape '%s' is not CxHxW (e.g. 1x28x28)", text.c_str());
  return dims;
}

// Missing tensors are named with the shape the model expects before load_weights runs, which then
// reports size and dtype mismatches with both shapes (Module::load_state_dict).
void check_weights_present(const std::string& path, const nn::Module& model) {
  io::SafetensorsFile file = io::load_safetensors(path);
  auto format = file.metadata.find("format");
  bool checkpoint = format != file.metadata.end() && format->second == train::kCheckpointFormat;
  std::string missing;
  for (auto& [key, t] : model.state_dict()) {
    if (file.contains(checkpoint ? "model." + key : key)) continue;
    missing += std::string(missing.empty() ? "" : ", ") + "'" + key + "' (the model expects " + shape_str(t.shape()) +
               " " + dtype_name(t.dtype()) + ")";
  }
  GS_CHECK(missing.empty(), "weights %s: missing tensor(s): %s", path.c_str(), missing.c_str());
}

void run_export(CLI::App* cmd, ExportFlags f) {
  // A training checkpoint brings its model and data (flags given win), as eval and inspect.
  f.config = resolve_for_checkpoint(cmd, f.config, "", f.weights);
  GS_CHECK(Device::parse(f.config.device).is_cpu(),
           "export: --device %s: export traces the model on the CPU (the ONNX file does not depend on it)",
           f.config.device.c_str());
  train::apply_runtime_settings(f.config.threads, f.config.kernels);
  Shape image;
  int64_t classes = f.classes;
  std::shared_ptr<io::Normalize> norm;  // what train applies to the images of --data
  GS_CHECK(!f.normalize || f.input_shape.empty(),
           "export: --normalize takes the statistics of --data, so it cannot go with --input-shape");
  if (!f.input_shape.empty()) {
    image = parse_input_shape(f.input_shape);
  } else {
    io::Dataset train_set = train::load_training_set(f.config);  // minus --exclude-list, as train
    image = train_set.image_shape();
    classes = train_set.num_classes;
    norm = std::dynamic_pointer_cast<io::Normalize>(train::default_normalization(f.config.data, train_set));
  }
  GS_CHECK(image[1] == image[2] || !f.config.model_spec.empty(),
           "export: zoo models take square images, the input is %lldx%lld (use --model-spec for other sizes)",
           (long long)image[1], (long long)image[2]);
  nn::ModulePtr model = train::build_model(f.config, image[0], classes, image[1]);
  check_weights_present(f.weights, *model);
  train::load_weights(f.weights, *model);

  onnx::ExportOptions options;
  options.opset = f.opset;
  options.softmax = f.softmax;
  options.doc = "gradscope export of " + (f.config.model_spec.empty() ? f.config.model : f.config.model_spec) +
                " with weights " + f.weights;
  // The model was trained on normalised images: the file says how, and --normalize puts it in the graph.
  if (norm) {
    auto list = [](const std::vector<double>& v) {
      std::string s;
      for (double x : v) s += (s.empty() ? "" : ",") + format("%.9g", x);
      return "[" + s + "]";
    };
    options.metadata["input_normalization"] =
        "mean=" + list(norm->mean()) + " std=" + list(norm->std()) +
        (f.normalize ? " (in the graph: the input is raw [0,1] images)" : " (not in the graph: apply it to the input)");
    if (f.normalize) options.input_mean = norm->mean(), options.input_std = norm->std();
  }
  if (f.batch != "dynamic") {
    std::optional<int64_t> batch = parse_int64(f.batch);
    GS_CHECK(batch && *batch > 0, "export: --batch '%s' is neither 'dynamic' nor a positive size", f.batch.c_str());
    options.batch = *batch;
  }
  Shape example{options.batch > 0 ? options.batch : 1, image[0], image[1], image[2]};
  const std::filesystem::path parent = std::filesystem::path(f.onnx_path).parent_path();
  std::error_code ec;  // when it cannot be made, writing the file names the path at fault
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);  // as train's --out
  onnx::ExportResult r = onnx::export_model(*model, zeros(example), f.onnx_path, options);
  nlohmann::json input = nlohmann::json::array(), output = nlohmann::json::array();
  input.push_back(options.batch > 0 ? nlohmann::json(options.batch) : nlohmann::json("batch"));
  for (int64_t d : image) input.push_back(d);
  output.push_back(options.batch > 0 ? nlohmann::json(options.batch) : nlohmann::json("batch"));
  for (size_t i = 1; i < r.output_shape.size(); ++i) output.push_back(r.output_shape[i]);
  nlohmann::json out{
      {"onnx", f.onnx_path}, {"opset", options.opset}, {"nodes", r.nodes},          {"initializers", r.initializers},
      {"input", input},      {"output", output},       {"softmax", options.softmax}};
  if (norm) out["normalization"] = {{"mean", norm->mean()}, {"std", norm->std()}, {"in_graph", f.normalize}};
  std::printf("%s\n", out.dump().c_str());
}

}  // namespace

void add_export(CLI::App& app) {
  auto flags = std::make_shared<ExportFlags>();
  CLI::App* cmd = app.add_subcommand("export", "write a model and its weights as ONNX (onnxruntime, Netron)");
  add_model_data_flags(cmd, flags->config);
  cmd->add_option("--weights", flags->weights, "weights: a state_dict or checkpoint .safetensors")->required();
  cmd->add_option("--onnx", flags->onnx_path, "output .onnx file")->required();
  cmd->add_option("--opset", flags->opset, "ONNX opset (13 to 17)")->capture_default_str();
  cmd->add_option("--batch", flags->batch, "batch dimension: dynamic, or a fixed size N")->capture_default_str();
  cmd->add_flag("--softmax", flags->softmax, "append Softmax: the output is probabilities, not logits");
  cmd->add_flag("--normalize", flags->normalize,
                "start the graph with the training normalisation of --data ((x - mean) / std, as train applies): "
                "the model then takes raw [0,1] images (the statistics are in the file's metadata either way)");
  cmd->add_option("--input-shape", flags->input_shape,
                  "input CxHxW (e.g. 3x32x32); without it the shape and class count come from --data");
  cmd->add_option("--classes", flags->classes, "number of classes with --input-shape")->capture_default_str();
  register_action(cmd, [cmd, flags] { run_export(cmd, *flags); });
}

const CommandRegistration register_export{50, add_export};

}  // namespace gs::cli
