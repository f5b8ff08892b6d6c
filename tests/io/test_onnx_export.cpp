// ONNX export: graph structure and names of the zoo models (checked by parsing the bytes back with
// the ONNX protobuf classes), options (fixed batch, softmax, opset), and every refusal naming the
// layer and its path. Numerics against onnxruntime are in tests/interop/test_onnx.py.
#include <onnx/onnx_pb.h>

#include <fstream>
#include <set>
#include <sstream>

#include "io/onnx_export.h"
#include "io_test_util.h"
#include "layers/layers.h"
#include "tests/helpers.h"

namespace gs::onnx {
namespace {

::onnx::ModelProto parse(const std::string& bytes) {
  ::onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromString(bytes));
  return model;
}

std::vector<std::string> node_names(const ::onnx::ModelProto& m) {
  std::vector<std::string> out;
  for (auto& n : m.graph().node()) out.push_back(n.name());
  return out;
}

const ::onnx::NodeProto* find_node(const ::onnx::ModelProto& m, const std::string& name) {
  for (auto& n : m.graph().node()) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

std::set<std::string> op_types(const ::onnx::ModelProto& m) {
  std::set<std::string> out;
  for (auto& n : m.graph().node()) out.insert(n.op_type());
  return out;
}

int64_t int_attribute(const ::onnx::NodeProto& n, const std::string& name) {
  for (auto& a : n.attribute()) {
    if (a.name() == name) return a.i();
  }
  ADD_FAILURE() << n.name() << " has no attribute " << name;
  return -1;
}

std::vector<int64_t> ints_attribute(const ::onnx::NodeProto& n, const std::string& name) {
  for (auto& a : n.attribute()) {
    if (a.name() == name) return {a.ints().begin(), a.ints().end()};
  }
  ADD_FAILURE() << n.name() << " has no attribute " << name;
  return {};
}

TEST(OnnxExport, FashionnetNamesFollowStateDictAndModulePaths) {
  auto net = nn::make_model("fashionnet");
  ExportResult result;
  auto model = parse(export_model_bytes(*net, zeros({2, 1, 28, 28}), {}, &result));
  EXPECT_EQ(model.opset_import(0).version(), 17);
  std::vector<std::string> inits;
  for (auto& t : model.graph().initializer()) inits.push_back(t.name());
  std::vector<std::string> expected;
  for (auto& [key, t] : net->state_dict()) {
    if (key.find("num_batches_tracked") == std::string::npos) expected.push_back(key);
  }
  EXPECT_EQ(inits, expected);
  EXPECT_EQ(node_names(model),
            (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}));
  EXPECT_EQ(model.graph().node(9).op_type(), "Gemm");
  EXPECT_EQ(int_attribute(model.graph().node(9), "transB"), 1);
  EXPECT_EQ(model.graph().node(1).op_type(), "BatchNormalization");
  EXPECT_EQ(model.graph().node(11).output(0), "output");
  // Dynamic batch on input and output; the rest fixed.
  auto& in = model.graph().input(0).type().tensor_type().shape();
  EXPECT_EQ(model.graph().input(0).name(), "input");
  EXPECT_EQ(in.dim(0).dim_param(), "batch");
  EXPECT_EQ(in.dim(1).dim_value(), 1);
  EXPECT_EQ(in.dim(3).dim_value(), 28);
  auto& out = model.graph().output(0).type().tensor_type().shape();
  EXPECT_EQ(out.dim(0).dim_param(), "batch");
  EXPECT_EQ(out.dim(1).dim_value(), 10);
  EXPECT_EQ(result.nodes, 12);
  EXPECT_EQ(result.output_shape, (std::vector<int64_t>{2, 10}));
  // Conv attributes: kernel 3, pad 1 on every side.
  const auto* conv = find_node(model, "4");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(ints_attribute(*conv, "kernel_shape"), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(ints_attribute(*conv, "pads"), (std::vector<int64_t>{1, 1, 1, 1}));
}

TEST(OnnxExport, Resnet8BlocksHaveAddAndNamedShortcuts) {
  auto net = nn::make_model("resnet8", 3, 10, 32);
  auto model = parse(export_model_bytes(*net, zeros({1, 3, 32, 32})));
  for (const char* name : {"3.conv1", "3.bn1", "3.relu", "3.conv2", "3.bn2", "3.add", "3.relu_2", "4.downsample.0",
                           "4.downsample.1", "4.add", "6", "8"}) {
    EXPECT_NE(find_node(model, name), nullptr) << name;
  }
  EXPECT_EQ(find_node(model, "3.downsample.0"), nullptr);  // 16 -> 16, stride 1: identity shortcut
  EXPECT_EQ(find_node(model, "6")->op_type(), "GlobalAveragePool");
  EXPECT_EQ(find_node(model, "4.add")->input(1), "4.downsample.1");
  EXPECT_EQ(ints_attribute(*find_node(model, "4.conv1"), "strides"), (std::vector<int64_t>{2, 2}));
  // Parameter-free conv: no bias input.
  EXPECT_EQ(find_node(model, "0")->input_size(), 2);
}

TEST(OnnxExport, OptionsFixedBatchSoftmaxOpset) {
  auto net = nn::make_model("mlp");
  ExportOptions options;
  options.opset = 15;
  options.batch = 7;
  options.softmax = true;
  auto model = parse(export_model_bytes(*net, zeros({1, 1, 28, 28}), options));
  EXPECT_EQ(model.opset_import(0).version(), 15);
  EXPECT_EQ(model.graph().input(0).type().tensor_type().shape().dim(0).dim_value(), 7);
  EXPECT_EQ(model.graph().output(0).type().tensor_type().shape().dim(0).dim_value(), 7);
  const auto& last = model.graph().node(model.graph().node_size() - 1);
  EXPECT_EQ(last.op_type(), "Softmax");
  EXPECT_EQ(last.output(0), "output");
  EXPECT_EQ(model.graph().node(0).op_type(), "Flatten");

  options = {};
  options.opset = 12;
  EXPECT_THROW_MSG(export_model_bytes(*net, zeros({1, 1, 28, 28}), options), "opset 12 is not supported");
  options.opset = 99;
  EXPECT_THROW_MSG(export_model_bytes(*net, zeros({1, 1, 28, 28}), options), "opset 99 is not supported");
  EXPECT_GE(max_supported_opset(), 17);
}

TEST(OnnxExport, GeluIsDecomposedAndDropoutRemoved) {
  auto net = std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Linear>(4, 8), std::make_shared<nn::GELU>(), std::make_shared<nn::Dropout>(0.5),
      std::make_shared<nn::LeakyReLU>(0.2), std::make_shared<nn::Linear>(8, 3), std::make_shared<nn::Tanh>()});
  auto model = parse(export_model_bytes(*net, zeros({2, 4})));
  auto ops = op_types(model);
  EXPECT_TRUE(ops.count("Erf"));
  EXPECT_FALSE(ops.count("Gelu"));
  EXPECT_FALSE(ops.count("Dropout"));
  EXPECT_EQ(find_node(model, "1")->op_type(), "Mul");
  EXPECT_EQ(find_node(model, "3")->input(0), "1");  // LeakyReLU reads GELU's output: Dropout is gone
  EXPECT_EQ(find_node(model, "2"), nullptr);
}

TEST(OnnxExport, ModeAndHooksAreRestored) {
  auto net = nn::make_model("fashionnet");
  net->train();
  export_model_bytes(*net, zeros({1, 1, 28, 28}));
  EXPECT_TRUE(net->is_training());
  EXPECT_TRUE(net->child("1")->is_training());
  net->eval();
  net->child("1")->train();  // mixed modes survive too
  export_model_bytes(*net, zeros({1, 1, 28, 28}));
  EXPECT_FALSE(net->is_training());
  EXPECT_TRUE(net->child("1")->is_training());
  EXPECT_FALSE(net->child("5")->is_training());
}

TEST(OnnxExport, WritesTheFile) {
  test::TempDir dir;
  auto net = nn::make_model("lenet5");
  ExportResult r = export_model(*net, zeros({1, 1, 28, 28}), dir.file("lenet5.onnx"));
  std::ifstream f(dir.file("lenet5.onnx"), std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  auto model = parse(ss.str());
  EXPECT_EQ(model.graph().node_size(), r.nodes);
  EXPECT_EQ(model.producer_name(), "gradscope");
  EXPECT_EQ(find_node(model, "3")->input(1), "3.weight");
}

// A layer the exporter does not know (here a custom module) is refused with its type and path.
class Scale : public nn::Module {
 public:
  Tensor forward(const Tensor& x) override { return x * 2.0; }
  std::string type_name() const override { return "Scale"; }
};

// A subclass of a known layer may change forward(), so it is refused too (exact types only).
class WeirdConv : public nn::Conv2d {
 public:
  WeirdConv() : nn::Conv2d(1, 2, 3) {}
  Tensor forward(const Tensor& x) override { return nn::Conv2d::forward(x) * 3.0; }
  std::string type_name() const override { return "WeirdConv"; }
};

TEST(OnnxExport, UnsupportedLayersNameTypeAndPath) {
  auto features = std::make_shared<nn::Sequential>();
  features->push_back(std::make_shared<nn::ReLU>()).push_back(std::make_shared<Scale>());
  auto net = std::make_shared<nn::Sequential>();
  net->push_back("features", features).push_back("head", std::make_shared<nn::Flatten>());
  EXPECT_THROW_MSG(export_model_bytes(*net, zeros({1, 2, 3, 3})), "layer Scale at 'features.1' is not supported");

  auto weird = std::make_shared<nn::Sequential>();
  weird->push_back(std::make_shared<WeirdConv>());
  EXPECT_THROW_MSG(export_model_bytes(*weird, zeros({1, 1, 5, 5})), "layer WeirdConv at '0' is not supported");
}

TEST(OnnxExport, AdaptivePoolingEvenOrError) {
  auto net = std::make_shared<nn::Sequential>();
  net->push_back(std::make_shared<nn::AdaptiveAvgPool2d>(3, 2));
  auto model = parse(export_model_bytes(*net, zeros({1, 2, 6, 8})));
  EXPECT_EQ(model.graph().node(0).op_type(), "AveragePool");
  EXPECT_EQ(ints_attribute(model.graph().node(0), "kernel_shape"), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(ints_attribute(model.graph().node(0), "strides"), (std::vector<int64_t>{2, 4}));
  EXPECT_THROW_MSG(export_model_bytes(*net, zeros({1, 2, 7, 8})),
                   "AdaptiveAvgPool2d at '0': output 3x2 from a 7x8 input has uneven windows");
}

TEST(OnnxExport, BatchNormWithoutRunningStatsIsRefused) {
  auto net = std::make_shared<nn::Sequential>();
  net->push_back(std::make_shared<nn::Conv2d>(1, 4, 3));
  net->push_back("norm", std::make_shared<nn::BatchNorm2d>(4, 1e-5, 0.1, true, /*track_running_stats=*/false));
  EXPECT_THROW_MSG(export_model_bytes(*net, zeros({2, 1, 5, 5})), "BatchNorm2d at 'norm' has no running statistics");
  // affine=False exports with identity scale and bias.
  auto plain = std::make_shared<nn::Sequential>();
  plain->push_back(std::make_shared<nn::BatchNorm2d>(4, 1e-3, 0.1, /*affine=*/false));
  auto model = parse(export_model_bytes(*plain, zeros({2, 4, 3, 3})));
  EXPECT_EQ(model.graph().node(0).input(1), "0.unit_scale");
  EXPECT_EQ(model.graph().node(0).input(3), "0.running_mean");
  EXPECT_FLOAT_EQ(model.graph().node(0).attribute(0).f(), 1e-3f);
}

TEST(OnnxExport, BadWeightsAndInputsAreRefused) {
  auto net = nn::make_model("mlp");
  net->to(DType::F64);
  EXPECT_THROW_MSG(export_model_bytes(*net, zeros({1, 1, 28, 28}, {DType::F64})), "must be an f32 tensor");
  auto f32 = nn::make_model("mlp");
  EXPECT_THROW_MSG(export_model_bytes(*f32, zeros({1, 3, 28, 28})),
                   "the example input [1,3,28,28] does not run through the model");
  EXPECT_THROW_MSG(export_model_bytes(*f32, Tensor()), "got an undefined tensor");
  ExportOptions negative_batch;
  negative_batch.batch = -1;
  EXPECT_THROW_MSG(export_model_bytes(*f32, zeros({1, 1, 28, 28}), negative_batch), "batch -1");
}

}  // namespace
}  // namespace gs::onnx
