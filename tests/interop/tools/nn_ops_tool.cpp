// Runs one nn op or loss forward and backward for tests/interop/test_nn_ops.py and
// test_losses.py, which run the same op in PyTorch and compare. Usage: gs_nn_ops_tool
// <case.json>. The JSON names the op, its parameters and the inputs; each input `name` is raw
// little-endian f32 in <dir>/<name>.bin (class-index targets too: params.target_index turns
// "target" into i64). Outputs go to <dir>/out_<name>.bin: y, and the gradients (from the seed gy,
// or of y itself when there is no gy) of x, weight, bias and target, plus running_mean/running_var
// after the step for batch_norm. With params.double the gradients are taken with create_graph, and
// s = sum over x, weight, bias of sum(grad_<name> * v_<name>) (v_<name> given as inputs) is
// backpropagated again: out_gg_<name>.bin is ds/d<name>, for the seed gy too.
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "autograd/nn_ops.h"
#include "layers/losses.h"
#include "tensor/raw_ops.h"

using namespace gs;
using json = nlohmann::json;

namespace {

Tensor read_input(const std::string& dir, const std::string& name, const Shape& shape) {
  std::ifstream in(dir + "/" + name + ".bin", std::ios::binary);
  GS_CHECK(in.good(), "nn_ops_tool: cannot open %s/%s.bin", dir.c_str(), name.c_str());
  std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
  in.read(reinterpret_cast<char*>(values.data()), std::streamsize(values.size() * sizeof(float)));
  GS_CHECK(in.gcount() == std::streamsize(values.size() * sizeof(float)), "nn_ops_tool: %s.bin is too short for %s",
           name.c_str(), shape_str(shape).c_str());
  return from_vector<float>(values, shape);
}

void write_output(const std::string& dir, const std::string& name, const Tensor& t) {
  if (!t.defined()) return;
  std::vector<float> values = t.to_vector<float>();
  std::ofstream out(dir + "/out_" + name + ".bin", std::ios::binary);
  out.write(reinterpret_cast<const char*>(values.data()), std::streamsize(values.size() * sizeof(float)));
  GS_CHECK(out.good(), "nn_ops_tool: cannot write %s/out_%s.bin", dir.c_str(), name.c_str());
}

Pool2dParams pool_params(const json& p) {
  Pool2dParams out;
  out.kernel_h = p.at("kernel")[0], out.kernel_w = p.at("kernel")[1];
  out.stride_h = p.at("stride")[0], out.stride_w = p.at("stride")[1];
  out.pad_h = p.at("padding")[0], out.pad_w = p.at("padding")[1];
  return out;
}

int run(const std::string& spec_path) {
  std::ifstream spec_file(spec_path);
  GS_CHECK(spec_file.good(), "nn_ops_tool: cannot open %s", spec_path.c_str());
  json spec = json::parse(spec_file);
  const std::string op = spec.at("op"), dir = spec.at("dir");
  const json& p = spec.at("params");
  std::map<std::string, Tensor> in;
  for (auto& [name, shape] : spec.at("inputs").items()) in[name] = read_input(dir, name, shape.get<Shape>());
  auto get = [&](const std::string& name) { return in.count(name) ? in[name] : Tensor(); };
  const bool target_index = p.value("target_index", false);
  if (target_index) in["target"] = raw::to_dtype(in["target"], DType::I64);
  for (const char* name : {"x", "weight", "bias"}) {
    if (in.count(name)) in[name].set_requires_grad(true);
  }
  if (in.count("target") && !target_index) in["target"].set_requires_grad(true);
  auto reduction = [&] {
    const std::string r = p.value("reduction", "mean");
    GS_CHECK(r == "mean" || r == "sum" || r == "none", "nn_ops_tool: unknown reduction '%s'", r.c_str());
    return r == "mean" ? Reduction::Mean : r == "sum" ? Reduction::Sum : Reduction::None;
  };

  Tensor y;
  if (op == "conv2d") {
    Conv2dParams cp;
    cp.stride_h = p.at("stride")[0], cp.stride_w = p.at("stride")[1];
    cp.pad_h = p.at("padding")[0], cp.pad_w = p.at("padding")[1];
    cp.dilation_h = p.at("dilation")[0], cp.dilation_w = p.at("dilation")[1];
    cp.groups = p.at("groups");
    y = conv2d(get("x"), get("weight"), get("bias"), cp);
  } else if (op == "max_pool2d") {
    y = max_pool2d(get("x"), pool_params(p));
  } else if (op == "avg_pool2d") {
    y = avg_pool2d(get("x"), pool_params(p), p.at("count_include_pad").get<bool>());
  } else if (op == "adaptive_avg_pool2d") {
    y = adaptive_avg_pool2d(get("x"), p.at("output_size")[0], p.at("output_size")[1]);
  } else if (op == "batch_norm") {
    y = batch_norm(get("x"), get("weight"), get("bias"), get("running_mean"), get("running_var"),
                   p.at("training").get<bool>(), p.at("momentum").get<double>(), p.at("eps").get<double>());
  } else if (op == "cross_entropy") {
    CrossEntropyOptions o;
    o.label_smoothing = p.value("label_smoothing", 0.0);
    o.ignore_index = p.value("ignore_index", int64_t(-100));
    o.reduction = reduction();
    o.weight = get("class_weight");
    y = cross_entropy(get("x"), get("target"), o);
  } else if (op == "mse_loss") {
    y = mse_loss(get("x"), get("target"), reduction());
  } else if (op == "bce_with_logits") {
    y = nn::bce_with_logits(get("x"), get("target"), reduction());
  } else if (op == "soft_dice_loss") {
    y = nn::soft_dice_loss(get("x"), get("target"), p.value("eps", 1.0), p.value("from_logits", true));
  } else {
    GS_CHECK(false, "nn_ops_tool: unknown op '%s'", op.c_str());
  }
  if (p.value("double", false)) {
    std::vector<std::string> names;
    std::vector<Tensor> wrt;
    for (const char* name : {"x", "weight", "bias"}) {
      if (in.count(name)) names.push_back(name), wrt.push_back(in[name]);
    }
    Tensor seed = get("gy");
    if (seed.defined()) seed.set_requires_grad(true);
    std::vector<Tensor> g = grad(y, wrt, seed, false, /*create_graph=*/true);
    Tensor s;
    for (size_t k = 0; k < g.size(); ++k) {
      write_output(dir, "grad_" + names[k], g[k]);
      GS_CHECK(in.count("v_" + names[k]), "nn_ops_tool: double needs the input v_%s", names[k].c_str());
      if (!g[k].requires_grad()) continue;  // a gradient that is constant in every input
      Tensor term = sum(mul(g[k], in["v_" + names[k]]));
      s = s.defined() ? add(s, term) : term;
    }
    write_output(dir, "y", y);
    GS_CHECK(s.defined(), "nn_ops_tool: no gradient of %s depends on its inputs", op.c_str());
    backward(s);
    for (const char* name : {"x", "weight", "bias", "gy"}) {
      if (in.count(name) && in[name].grad().defined()) write_output(dir, std::string("gg_") + name, in[name].grad());
    }
    return 0;
  }
  backward(y, get("gy"));
  write_output(dir, "y", y);
  if (in.count("target") && !target_index) write_output(dir, "grad_target", in["target"].grad());
  for (const char* name : {"x", "weight", "bias"}) {
    if (in.count(name)) write_output(dir, std::string("grad_") + name, in[name].grad());
  }
  for (const char* name : {"running_mean", "running_var"}) {
    if (in.count(name)) write_output(dir, name, in[name]);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: gs_nn_ops_tool <case.json>\n";
    return 2;
  }
  try {
    return run(argv[1]);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
