// Model spec files: the happy path (every layer type), and each error naming the source,
// the entry index and the bad key or value.
#include "tests/layers/layers_test_helpers.h"

#include <cstdio>
#include <fstream>

namespace gs::nn {
namespace {

TEST(Spec, BriefExampleBuildsASequential) {
  auto net = model_from_spec_json(R"({"layers": [
      {"type":"conv2d","in":1,"out":32,"kernel":3,"padding":1}, {"type":"batchnorm2d","features":32},
      {"type":"relu"}, {"type":"maxpool2d","kernel":2}, {"type":"flatten"},
      {"type":"linear","in":6272,"out":10}, {"type":"dropout","p":0.5}]})");
  EXPECT_EQ(net->type_name(), "Sequential");
  std::vector<std::string> types;
  for (auto& [n, m] : net->named_children()) types.push_back(n + ":" + m->type_name());
  EXPECT_EQ(types, (std::vector<std::string>{"0:Conv2d", "1:BatchNorm2d", "2:ReLU", "3:MaxPool2d", "4:Flatten",
                                             "5:Linear", "6:Dropout"}));
  EXPECT_EQ(net->num_parameters(), 32 * 9 + 32 + 64 + 6272 * 10 + 10);
  EXPECT_EQ(shape_str((*net)(randn({2, 1, 28, 28})).shape()), shape_str({2, 10}));
}

TEST(Spec, EveryTypeAndOption) {
  auto net = model_from_spec_json(R"({"name": "all", "description": "every layer", "layers": [
      {"type":"conv2d","in":3,"out":8,"kernel":[3,1],"stride":[1,2],"padding":[1,0],"dilation":1,"groups":1,"bias":false},
      {"type":"batchnorm2d","features":8,"eps":0.001,"momentum":0.2,"affine":true,"track_running_stats":true},
      {"type":"leaky_relu","slope":0.2},
      {"type":"basic_block","in":8,"out":16,"stride":2, "name":"block"},
      {"type":"avgpool2d","kernel":2,"stride":1,"padding":1,"count_include_pad":false},
      {"type":"maxpool2d","kernel":[2,2],"stride":2},
      {"type":"adaptive_avgpool2d","out":[2,1]},
      {"type":"flatten","start_dim":1,"end_dim":-1},
      {"type":"linear","in":32,"out":6,"bias":true},
      {"type":"batchnorm1d","features":6},
      {"type":"gelu"}, {"type":"sigmoid"}, {"type":"tanh"}, {"type":"identity"}, {"type":"relu"},
      {"type":"dropout"}]})");
  auto conv = std::dynamic_pointer_cast<Sequential>(net)->at<Conv2d>(0);
  EXPECT_EQ(conv->extra_repr(), "3, 8, kernel_size=(3, 1), stride=(1, 2), padding=(1, 0), bias=False");
  EXPECT_EQ(net->child("1")->extra_repr(), "8, eps=0.001, momentum=0.2, affine=True, track_running_stats=True");
  EXPECT_EQ(net->child("block")->type_name(), "BasicBlock");
  EXPECT_EQ(net->child("4")->extra_repr(), "kernel_size=2, stride=1, padding=1");
  EXPECT_EQ(net->child("6")->extra_repr(), "output_size=(2, 1)");
  Tensor y = (*net)(randn({2, 3, 8, 8}));
  EXPECT_EQ(shape_str(y.shape()), shape_str({2, 6}));
  EXPECT_EQ(spec_layer_types().size(), 16u);
}

TEST(Spec, FileRoundTripAndFileErrors) {
  std::string path = ::testing::TempDir() + "gs_layers_spec.json";
  {
    std::ofstream out(path);
    out << R"({"layers": [{"type":"linear","in":4,"out":2}, {"type":"relu", "p": 3}]})";
  }
  EXPECT_THROW_MSG(load_model_spec(path),
                   "model spec " + path + ": layer 1 (relu): unknown key 'p' (this type takes no keys)");
  {
    std::ofstream out(path);
    out << R"({"layers": [{"type":"linear","in":4,"out":2}]})";
  }
  EXPECT_EQ(load_model_spec(path)->num_parameters(), 10);
  std::remove(path.c_str());
  EXPECT_THROW_MSG(load_model_spec(path), "model spec: cannot open '" + path + "'");
}

TEST(Spec, DocumentErrors) {
  EXPECT_THROW_MSG(model_from_spec_json("{\"layers\": [", "net.json"), "model spec net.json: invalid JSON");
  EXPECT_THROW_MSG(model_from_spec_json("[1, 2]"), "expected an object {\"layers\": [...]}, got array");
  // A value nested 100000 deep is named, not serialised (dumping it recursed once per level and
  // overflowed the stack), and a long value is cut short.
  const std::string deep = "{\"layers\": [" + std::string(100000, '[') + std::string(100000, ']') + "]}";
  EXPECT_THROW_MSG(model_from_spec_json(deep), "layer 0: expected an object, got array nested more than 4 deep");
  const std::string wide = "{\"layers\": [[\"" + std::string(200, 'x') + "\"]]}";
  EXPECT_THROW_MSG(model_from_spec_json(wide), "got [\"" + std::string(55, 'x') + "...");
  EXPECT_THROW_MSG(model_from_spec_json("{}"), "missing required key 'layers'");
  EXPECT_THROW_MSG(model_from_spec_json(R"({"layer": []})"), "unknown top-level key 'layer'");
  EXPECT_THROW_MSG(model_from_spec_json(R"({"layers": {"type": "relu"}})"), "'layers' must be an array");
  EXPECT_THROW_MSG(model_from_spec_json(R"({"layers": []})"), "'layers' is empty");
}

TEST(Spec, EntryErrorsNameIndexTypeAndKey) {
  auto spec = [](const std::string& entry) { return R"({"layers": [{"type":"relu"}, )" + entry + "]}"; };
  EXPECT_THROW_MSG(model_from_spec_json(spec("3")), "model spec <spec>: layer 1: expected an object, got 3");
  EXPECT_THROW_MSG(model_from_spec_json(spec(R"({"in": 3})")), "layer 1: missing \"type\"");
  EXPECT_THROW_MSG(model_from_spec_json(spec(R"({"type": "conv3d"})")),
                   "layer 1 (conv3d): unknown type 'conv3d' (known: adaptive_avgpool2d, avgpool2d, basic_block");
  EXPECT_THROW_MSG(model_from_spec_json(spec(R"({"type": "linear", "in": 4})")),
                   "layer 1 (linear): missing required key 'out'");
  EXPECT_THROW_MSG(model_from_spec_json(spec(R"({"type": "linear", "in": 4, "out": "ten"})")),
                   "layer 1 (linear): key 'out' must be an integer, got \"ten\"");
  EXPECT_THROW_MSG(model_from_spec_json(spec(R"({"type": "linear", "in": 4, "out": 2, "bias": 1})")),
                   "key 'bias' must be true or false, got 1");
  EXPECT_THROW_MSG(model_from_spec_json(spec(R"({"type": "conv2d", "in": 1, "out": 2, "kernel": [3, 3, 3]})")),
                   "layer 1 (conv2d): key 'kernel' must be an integer or [h, w], got [3,3,3]");
  EXPECT_THROW_MSG(model_from_spec_json(spec(R"({"type": "dropout", "p": "half"})")),
                   "key 'p' must be a number, got \"half\"");
  EXPECT_THROW_MSG(model_from_spec_json(spec(R"({"type": "linear", "in": 4, "out": 2, "outs": 3})")),
                   "layer 1 (linear): unknown key 'outs' (known: in, out, bias)");
  // Values the layer itself rejects still say which entry they came from.
  EXPECT_THROW_MSG(model_from_spec_json(spec(R"({"type": "linear", "in": 4, "out": 0})")),
                   "layer 1 (linear): Linear: in (4) and out (0) features must be positive");
  EXPECT_THROW_MSG(model_from_spec_json(spec(R"({"type": "dropout", "p": 2})")),
                   "layer 1 (dropout): Dropout: probability");
  EXPECT_THROW_MSG(model_from_spec_json(spec(R"({"type": "maxpool2d", "kernel": 0})")),
                   "layer 1 (maxpool2d): kernel and stride must be positive");
  EXPECT_THROW_MSG(model_from_spec_json(spec(R"({"type": "relu", "name": "0"})")),
                   "layer 1 (relu): Sequential::push_back: a child named '0' already exists");
}

}  // namespace
}  // namespace gs::nn
