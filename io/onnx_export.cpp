// ONNX export (see onnx_export.h): walks the gs::nn module tree and emits one ONNX node (or a
// short decomposition) per layer, with the layer's parameters as initializers named by state_dict key.
//
// Why the module tree and not a trace of the tape: (1) the tape records primitive ops, not the
// layer's settings (stride, pads, eps, count_include_pad) in a form an exporter can read, and an
// eval-mode run under no_grad records nothing at all; (2) walking modules gives initializer names
// that are exactly the state_dict keys and node names that are exactly the module paths, so Netron
// shows what gradscope prints; (3) a layer we do not know is a clear error naming it and its path,
// where a trace would silently bake in whatever control flow one example took. The price: a custom
// Module subclass cannot be exported until it is taught here. Layers are matched by exact type
// (typeid), not dynamic_cast, because a subclass may override forward() and the graph would lie.
//
// Layer                      ONNX (opset 13..17)
//   Sequential               its children in order
//   BasicBlock               conv1, bn1, relu, conv2, bn2, shortcut (downsample or identity), Add, Relu
//   Conv2d                   Conv (strides, pads, dilations, group)
//   Linear                   Gemm (transB) on 2-D input; Transpose + MatMul (+ Add) otherwise
//   BatchNorm1d/2d           BatchNormalization with the running statistics (inference form)
//   ReLU/LeakyReLU/Sigmoid/Tanh   Relu/LeakyRelu/Sigmoid/Tanh
//   GELU                     x * (1 + Erf(x / sqrt 2)) * 0.5 (Gelu is not an opset-17 op)
//   MaxPool2d/AvgPool2d      MaxPool/AveragePool (count_include_pad)
//   AdaptiveAvgPool2d        GlobalAveragePool for 1x1, AveragePool when the input divides evenly, else error
//   Flatten                  Flatten (start 1, end last) or Reshape
//   Dropout, Identity        nothing (inference form)
#include "io/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <typeinfo>

#include "io/safetensors.h"
#include "layers/layers.h"
#include "tensor/raw_ops.h"

namespace gs::onnx {

namespace {

namespace pb = ::onnx;

constexpr int64_t kMinOpset = 13;  // Softmax/Flatten/Reshape semantics used here are those of opset 13+

// The layer as exactly T (not a subclass, whose forward may differ), else null.
template <class T> const T* exactly(const nn::Module& m) {
  return typeid(m) == typeid(T) ? static_cast<const T*>(&m) : nullptr;
}

std::string join_path(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

std::string shown(const std::string& path) { return path.empty() ? "<root>" : path; }

class GraphBuilder {
 public:
  GraphBuilder(pb::GraphProto* graph, const std::map<const nn::Module*, Shape>& input_shapes)
      : graph_(graph), input_shapes_(input_shapes) {}

  void reserve(const std::string& name) { names_.insert(name); }

  // Emits `m` (registered at `path`) reading value `x`; returns the name of its output value.
  std::string emit(const nn::Module& m, const std::string& path, const std::string& x) {
    const std::string label = path.empty() ? m.type_name() : path;
    if (auto* seq = exactly<nn::Sequential>(m)) {
      std::string y = x;
      for (auto& [name, child] : seq->named_children()) y = emit(*child, join_path(path, name), y);
      return y;
    }
    if (auto* block = exactly<nn::BasicBlock>(m)) return emit_basic_block(*block, path, x);
    if (auto* conv = exactly<nn::Conv2d>(m)) return emit_conv(*conv, path, label, x);
    if (auto* linear = exactly<nn::Linear>(m)) return emit_linear(*linear, path, label, x);
    if (exactly<nn::BatchNorm2d>(m) || exactly<nn::BatchNorm1d>(m)) {
      return emit_batch_norm(static_cast<const nn::BatchNormBase&>(m), path, label, x);
    }
    if (exactly<nn::ReLU>(m)) return node("Relu", label, {x});
    if (auto* leaky = exactly<nn::LeakyReLU>(m)) {
      std::string y = node("LeakyRelu", label, {x});
      set_float(last(), "alpha", leaky->negative_slope());
      return y;
    }
    if (exactly<nn::Sigmoid>(m)) return node("Sigmoid", label, {x});
    if (exactly<nn::Tanh>(m)) return node("Tanh", label, {x});
    if (exactly<nn::GELU>(m)) return emit_gelu(path, label, x);
    if (auto* pool = exactly<nn::MaxPool2d>(m)) {
      std::string y = node("MaxPool", label, {x});
      set_pool_attributes(pool->params());
      return y;
    }
    if (auto* pool = exactly<nn::AvgPool2d>(m)) {
      std::string y = node("AveragePool", label, {x});
      set_pool_attributes(pool->params());
      set_int(last(), "count_include_pad", pool->count_include_pad() ? 1 : 0);
      return y;
    }
    if (auto* pool = exactly<nn::AdaptiveAvgPool2d>(m)) return emit_adaptive_avg_pool(*pool, path, label, x);
    if (auto* flatten = exactly<nn::Flatten>(m)) return emit_flatten(*flatten, path, label, x);
    if (exactly<nn::Dropout>(m) || exactly<nn::Identity>(m)) return x;
    GS_CHECK(false,
             "onnx export: layer %s at '%s' is not supported (supported: Sequential, BasicBlock, Conv2d, Linear, "
             "BatchNorm1d, BatchNorm2d, ReLU, LeakyReLU, GELU, Sigmoid, Tanh, MaxPool2d, AvgPool2d, "
             "AdaptiveAvgPool2d, Flatten, Dropout, Identity)",
             m.type_name().c_str(), shown(path).c_str());
    return "";
  }

  // Adds a node whose single output is named after the node; returns that output's name.
  std::string node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs) {
    std::string out = unique(name);
    pb::NodeProto* n = graph_->add_node();
    n->set_op_type(op);
    n->set_name(out);
    for (auto& in : inputs) n->add_input(in);
    n->add_output(out);
    return out;
  }
  pb::NodeProto* last() { return graph_->mutable_node(graph_->node_size() - 1); }

  // A parameter or buffer as an f32 initializer named `key` (its state_dict key).
  std::string initializer(const std::string& key, const Tensor& t, const std::string& layer, const std::string& path) {
    GS_CHECK(t.defined(), "onnx export: %s at '%s': tensor '%s' is undefined", layer.c_str(), shown(path).c_str(),
             key.c_str());
    GS_CHECK(t.dtype() == DType::F32,
             "onnx export: %s at '%s': tensor '%s' is %s; export needs f32 weights (convert with module.to(F32))",
             layer.c_str(), shown(path).c_str(), key.c_str(), dtype_name(t.dtype()));
    GS_CHECK(t.device().is_cpu(), "onnx export: tensor '%s' is on %s; move the model to the cpu first", key.c_str(),
             t.device().str().c_str());
    GS_CHECK(names_.insert(key).second, "onnx export: the name '%s' is used twice in the graph", key.c_str());
    Tensor c = raw::contiguous(t);
    pb::TensorProto* init = graph_->add_initializer();
    init->set_name(key);
    init->set_data_type(pb::TensorProto::FLOAT);
    for (int64_t d : c.shape()) init->add_dims(d);
    init->set_raw_data(std::string(reinterpret_cast<const char*>(c.data<float>()), c.numel() * sizeof(float)));
    return key;
  }
  std::string float_initializer(const std::string& key, const std::vector<int64_t>& dims,
                                const std::vector<float>& values) {
    GS_CHECK(names_.insert(key).second, "onnx export: the name '%s' is used twice in the graph", key.c_str());
    pb::TensorProto* init = graph_->add_initializer();
    init->set_name(key);
    init->set_data_type(pb::TensorProto::FLOAT);
    for (int64_t d : dims) init->add_dims(d);
    for (float v : values) init->add_float_data(v);
    return key;
  }
  std::string int64_initializer(const std::string& key, const std::vector<int64_t>& values) {
    GS_CHECK(names_.insert(key).second, "onnx export: the name '%s' is used twice in the graph", key.c_str());
    pb::TensorProto* init = graph_->add_initializer();
    init->set_name(key);
    init->set_data_type(pb::TensorProto::INT64);
    init->add_dims(static_cast<int64_t>(values.size()));
    for (int64_t v : values) init->add_int64_data(v);
    return key;
  }

  static void set_int(pb::NodeProto* n, const std::string& name, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(pb::AttributeProto::INT);
    a->set_i(v);
  }
  static void set_ints(pb::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(pb::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  static void set_float(pb::NodeProto* n, const std::string& name, double v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(pb::AttributeProto::FLOAT);
    a->set_f(static_cast<float>(v));
  }

 private:
  std::string unique(const std::string& name) {
    std::string out = name;
    for (int i = 2; !names_.insert(out).second; ++i) out = name + "_" + std::to_string(i);
    return out;
  }

  const Shape& input_shape(const nn::Module& m, const std::string& path) {
    auto it = input_shapes_.find(&m);
    GS_CHECK(it != input_shapes_.end(), "onnx export: %s at '%s' did not run on the example input",
             m.type_name().c_str(), shown(path).c_str());
    return it->second;
  }

  std::string emit_conv(const nn::Conv2d& conv, const std::string& path, const std::string& label,
                        const std::string& x) {
    std::string w = initializer(join_path(path, "weight"), conv.weight(), "Conv2d", path);
    std::vector<std::string> inputs{x, w};
    if (conv.options().bias) inputs.push_back(initializer(join_path(path, "bias"), conv.bias(), "Conv2d", path));
    std::string y = node("Conv", label, inputs);
    Conv2dParams p = conv.options().params();
    const Shape& ws = conv.weight().shape();
    set_ints(last(), "kernel_shape", {ws[2], ws[3]});
    set_ints(last(), "strides", {p.stride_h, p.stride_w});
    set_ints(last(), "pads", {p.pad_h, p.pad_w, p.pad_h, p.pad_w});  // top, left, bottom, right
    set_ints(last(), "dilations", {p.dilation_h, p.dilation_w});
    set_int(last(), "group", p.groups);
    return y;
  }

  std::string emit_linear(const nn::Linear& linear, const std::string& path, const std::string& label,
                          const std::string& x) {
    std::string w = initializer(join_path(path, "weight"), linear.weight(), "Linear", path);
    std::string b;
    if (linear.options().bias) b = initializer(join_path(path, "bias"), linear.bias(), "Linear", path);
    if (input_shape(linear, path).size() == 2) {
      std::vector<std::string> inputs{x, w};
      if (!b.empty()) inputs.push_back(b);
      std::string y = node("Gemm", label, inputs);
      set_int(last(), "transB", 1);
      return y;
    }
    // (..., in) input: Gemm takes 2-D only, so transpose the weight in the graph and use MatMul.
    std::string wt = node("Transpose", label + ".weight_t", {w});
    set_ints(last(), "perm", {1, 0});
    if (b.empty()) return node("MatMul", label, {x, wt});
    std::string xw = node("MatMul", label + ".matmul", {x, wt});
    return node("Add", label, {xw, b});
  }

  std::string emit_batch_norm(const nn::BatchNormBase& bn, const std::string& path, const std::string& label,
                              const std::string& x) {
    const auto& o = bn.options();
    const std::string type = bn.type_name();
    GS_CHECK(o.track_running_stats && bn.running_mean().defined() && bn.running_var().defined(),
             "onnx export: %s at '%s' has no running statistics (track_running_stats=False): in eval it normalises "
             "with each batch's statistics, which the inference-form BatchNormalization cannot express",
             type.c_str(), shown(path).c_str());
    std::string scale, bias;
    if (o.affine) {
      scale = initializer(join_path(path, "weight"), bn.weight(), type, path);
      bias = initializer(join_path(path, "bias"), bn.bias(), type, path);
    } else {  // affine=False: ONNX needs scale and bias, so give it the identity ones
      scale = float_initializer(label + ".unit_scale", {o.num_features}, std::vector<float>(o.num_features, 1.0f));
      bias = float_initializer(label + ".zero_bias", {o.num_features}, std::vector<float>(o.num_features, 0.0f));
    }
    std::string mean = initializer(join_path(path, "running_mean"), bn.running_mean(), type, path);
    std::string var = initializer(join_path(path, "running_var"), bn.running_var(), type, path);
    std::string y = node("BatchNormalization", label, {x, scale, bias, mean, var});
    set_float(last(), "epsilon", o.eps);
    return y;
  }

  // GELU(x) = x * (1 + erf(x / sqrt 2)) * 0.5, the exact form PyTorch and gradscope compute.
  std::string emit_gelu(const std::string& path, const std::string& label, const std::string& x) {
    std::string sqrt2 = float_initializer(label + ".sqrt2", {}, {static_cast<float>(std::sqrt(2.0))});
    std::string one = float_initializer(label + ".one", {}, {1.0f});
    std::string half = float_initializer(label + ".half", {}, {0.5f});
    std::string scaled = node("Div", label + ".div", {x, sqrt2});
    std::string erf = node("Erf", label + ".erf", {scaled});
    std::string shifted = node("Add", label + ".add", {erf, one});
    std::string product = node("Mul", label + ".mul", {x, shifted});
    return node("Mul", label, {product, half});
  }

  void set_pool_attributes(const Pool2dParams& p) {
    set_ints(last(), "kernel_shape", {p.kernel_h, p.kernel_w});
    set_ints(last(), "strides", {p.stride_h, p.stride_w});
    set_ints(last(), "pads", {p.pad_h, p.pad_w, p.pad_h, p.pad_w});
  }

  std::string emit_adaptive_avg_pool(const nn::AdaptiveAvgPool2d& pool, const std::string& path,
                                     const std::string& label, const std::string& x) {
    const Shape& s = input_shape(pool, path);
    GS_CHECK(s.size() == 4, "onnx export: AdaptiveAvgPool2d at '%s': input %s is not (N, C, H, W)", shown(path).c_str(),
             shape_str(s).c_str());
    int64_t h = s[2], w = s[3], oh = pool.out_h(), ow = pool.out_w();
    if (oh == 1 && ow == 1) return node("GlobalAveragePool", label, {x});
    GS_CHECK(h % oh == 0 && w % ow == 0,
             "onnx export: AdaptiveAvgPool2d at '%s': output %lldx%lld from a %lldx%lld input has uneven windows, "
             "which ONNX pooling cannot express (use output 1x1, or an input size divisible by the output size)",
             shown(path).c_str(), (long long)oh, (long long)ow, (long long)h, (long long)w);
    // Evenly divisible: adaptive windows are all (h/oh, w/ow) and do not overlap.
    std::string y = node("AveragePool", label, {x});
    set_ints(last(), "kernel_shape", {h / oh, w / ow});
    set_ints(last(), "strides", {h / oh, w / ow});
    return y;
  }

  std::string emit_flatten(const nn::Flatten& flatten, const std::string& path, const std::string& label,
                           const std::string& x) {
    const Shape& s = input_shape(flatten, path);
    int64_t rank = static_cast<int64_t>(s.size());
    int64_t start = flatten.start_dim() < 0 ? flatten.start_dim() + rank : flatten.start_dim();
    int64_t end = flatten.end_dim() < 0 ? flatten.end_dim() + rank : flatten.end_dim();
    if (start >= end) return x;  // nothing to merge
    if (start == 1 && end == rank - 1) {
      std::string y = node("Flatten", label, {x});
      set_int(last(), "axis", 1);
      return y;
    }
    // Reshape: 0 keeps a leading dimension (the batch stays symbolic), -1 is the merged one.
    std::vector<int64_t> target(static_cast<size_t>(start), 0);
    target.push_back(-1);
    for (int64_t d = end + 1; d < rank; ++d) target.push_back(s[d]);
    std::string shape = int64_initializer(label + ".shape", target);
    return node("Reshape", label, {x, shape});
  }

  std::string emit_basic_block(const nn::BasicBlock& block, const std::string& path, const std::string& x) {
    const std::string label = path.empty() ? block.type_name() : path;
    std::string y = emit(*block.conv1(), join_path(path, "conv1"), x);
    y = emit(*block.bn1(), join_path(path, "bn1"), y);
    y = node("Relu", join_path(path, "relu"), {y});
    y = emit(*block.conv2(), join_path(path, "conv2"), y);
    y = emit(*block.bn2(), join_path(path, "bn2"), y);
    std::string shortcut = block.downsample() ? emit(*block.downsample(), join_path(path, "downsample"), x) : x;
    y = node("Add", label + ".add", {y, shortcut});
    return node("Relu", join_path(path, "relu"), {y});  // the block's one ReLU runs twice: "relu", "relu_2"
  }

  pb::GraphProto* graph_;
  const std::map<const nn::Module*, Shape>& input_shapes_;
  std::set<std::string> names_;
};

// Runs the example input once in eval mode under no_grad, recording each module's input shape
// (and the output), then restores every module's train/eval mode and removes the hooks.
struct ShapeRecording {
  std::map<const nn::Module*, Shape> inputs;
  Shape output;
};

ShapeRecording record_shapes(nn::Module& module, const Tensor& example_input) {
  ShapeRecording rec;
  auto modules = module.named_modules();
  std::vector<std::pair<nn::Module*, bool>> modes;
  std::vector<std::pair<nn::Module*, int>> hooks;
  for (auto& [name, m] : modules) {
    modes.emplace_back(m.get(), m->is_training());
    hooks.emplace_back(m.get(), m->register_forward_hook([&rec](nn::Module& mod, const Tensor& in, const Tensor&) {
      rec.inputs[&mod] = in.shape();
    }));
  }
  auto restore = [&] {
    for (auto& [m, id] : hooks) m->remove_forward_hook(id);
    for (auto& [m, training] : modes) m->train(training);  // pre-order: a parent first, then its children
  };
  try {
    NoGradGuard no_grad;
    module.eval();
    rec.output = module(example_input).shape();
  } catch (const Error& e) {
    restore();
    throw Error(std::string("onnx export: the example input ") + shape_str(example_input.shape()) +
                " does not run through the model: " + e.what());
  } catch (...) {
    restore();
    throw;
  }
  restore();
  return rec;
}

void set_value_info(pb::ValueInfoProto* v, const std::string& name, const Shape& shape, int64_t batch) {
  v->set_name(name);
  auto* tensor_type = v->mutable_type()->mutable_tensor_type();
  tensor_type->set_elem_type(pb::TensorProto::FLOAT);
  auto* dims = tensor_type->mutable_shape();
  for (size_t i = 0; i < shape.size(); ++i) {
    auto* d = dims->add_dim();
    if (i == 0 && batch == 0) {
      d->set_dim_param("batch");
    } else {
      d->set_dim_value(i == 0 ? batch : shape[i]);
    }
  }
}

}  // namespace

int64_t max_supported_opset() {
  const auto& map = pb::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  auto it = map.find(pb::ONNX_DOMAIN);
  return it == map.end() ? kMinOpset : it->second.second;
}

std::string export_model_bytes(nn::Module& module, const Tensor& example_input, const ExportOptions& options,
                               ExportResult* result) {
  GS_CHECK(options.opset >= kMinOpset && options.opset <= max_supported_opset(),
           "onnx export: opset %lld is not supported (use %lld to %lld; the linked ONNX library knows up to %lld)",
           (long long)options.opset, (long long)kMinOpset, (long long)max_supported_opset(),
           (long long)max_supported_opset());
  GS_CHECK(options.batch >= 0, "onnx export: batch %lld must be 0 (dynamic) or positive", (long long)options.batch);
  GS_CHECK(example_input.defined() && example_input.dim() >= 2 && example_input.dtype() == DType::F32,
           "onnx export: the example input must be an f32 tensor (N, C, ...), got %s",
           example_input.defined()
               ? (shape_str(example_input.shape()) + " " + dtype_name(example_input.dtype())).c_str()
               : "an undefined tensor");

  ShapeRecording rec = record_shapes(module, example_input);

  pb::ModelProto model;
  model.set_ir_version(pb::IR_VERSION);
  model.set_producer_name("gradscope");
  model.set_doc_string(options.doc);
  for (const auto& [key, value] : options.metadata) {
    auto* prop = model.add_metadata_props();
    prop->set_key(key);
    prop->set_value(value);
  }
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);

  pb::GraphProto* graph = model.mutable_graph();
  graph->set_name(options.graph_name);
  GraphBuilder builder(graph, rec.inputs);
  builder.reserve("input");
  builder.reserve("output");
  std::string x = "input";
  if (!options.input_mean.empty() || !options.input_std.empty()) {
    const int64_t C = example_input.shape()[1];
    const size_t n = options.input_mean.size();
    GS_CHECK(n == options.input_std.size() && (n == 1 || static_cast<int64_t>(n) == C),
             "onnx export: input normalisation has %zu means and %zu stds for %lld channels", n,
             options.input_std.size(), (long long)C);
    std::vector<int64_t> dims(static_cast<size_t>(example_input.dim()), 1);
    dims[1] = static_cast<int64_t>(n);
    std::vector<float> mean(options.input_mean.begin(), options.input_mean.end()),
        std(options.input_std.begin(), options.input_std.end());
    for (float s : std) GS_CHECK(s > 0, "onnx export: input normalisation std %g is not positive", s);
    x = builder.node("Sub", "normalize_sub", {x, builder.float_initializer("input_mean", dims, mean)});
    x = builder.node("Div", "normalize_div", {x, builder.float_initializer("input_std", dims, std)});
  }
  std::string y = builder.emit(module, "", x);
  if (options.softmax) {
    y = builder.node("Softmax", "softmax", {y});
    GraphBuilder::set_int(builder.last(), "axis", -1);
  }
  // The last value becomes "output": rename its producer's output, or copy the input through.
  if (y == "input") {
    builder.node("Identity", "identity", {y});
    y = builder.last()->output(0);
  }
  for (auto& n : *graph->mutable_node()) {
    for (auto& out : *n.mutable_output()) {
      if (out == y) out = "output";
    }
  }
  set_value_info(graph->add_input(), "input", example_input.shape(), options.batch);
  set_value_info(graph->add_output(), "output", rec.output, options.batch);

  // The checker and strict shape inference (types checked, node errors thrown): ONNX's full check.
  // The declared output shape is merged with the inferred one, so a wrong graph shape is caught here.
  try {
    pb::checker::check_model(model);
    pb::shape_inference::InferShapes(model, pb::OpSchemaRegistry::Instance(),
                                     pb::ShapeInferenceOptions(/*check_type=*/true, /*error_mode=*/1));
    pb::checker::check_model(model);
  } catch (const std::exception& e) {
    throw Error(std::string("onnx export: the ONNX checker refused the graph (an exporter bug): ") + e.what());
  }
  if (result) {
    result->nodes = graph->node_size();
    result->initializers = graph->initializer_size();
    result->output_shape = rec.output;
    if (options.batch > 0) result->output_shape[0] = options.batch;
  }
  std::string bytes;
  GS_CHECK(model.SerializeToString(&bytes), "onnx export: protobuf serialisation failed");
  return bytes;
}

ExportResult export_model(nn::Module& module, const Tensor& example_input, const std::string& path,
                          const ExportOptions& options) {
  ExportResult result;
  std::string bytes = export_model_bytes(module, example_input, options, &result);
  io::write_file_atomic(path, bytes);
  return result;
}

}  // namespace gs::onnx
