// Module machinery: registration, traversal order and names (PyTorch's), parameter naming in
// AutogradMeta, shared-parameter dedup, child lookup, forward hooks, dtype conversion.
#include "tensor/cuda.h"
#include "tests/layers/layers_test_helpers.h"

namespace gs::nn {
namespace {

using test::keys_of;

// A module with one parameter, one buffer and a child, registered in a known order.
class Toy : public Module {
 public:
  Toy() {
    scale_ = register_parameter("scale", ones({3}));
    register_buffer("count", zeros({}, {DType::I64}));
    fc_ = register_module("fc", std::make_shared<Linear>(3, 2));
  }
  Tensor forward(const Tensor& x) override { return (*fc_)(x * scale_); }
  std::string type_name() const override { return "Toy"; }
  std::shared_ptr<Linear> fc_;
  Tensor scale_;
};

TEST(Module, FashionnetStateDictKeysMatchDesign) {
  // DESIGN.md: as a torch.nn.Sequential its keys are 0.weight, 0.bias, 1.weight, 1.bias, 1.running_mean, ...
  std::vector<std::string> expected = {
      "0.weight", "0.bias", "1.weight",  "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
      "4.weight", "4.bias", "5.weight",  "5.bias", "5.running_mean", "5.running_var", "5.num_batches_tracked",
      "9.weight", "9.bias", "11.weight", "11.bias"};
  auto net = make_model("fashionnet");
  EXPECT_EQ(keys_of(net->state_dict()), expected);
  auto sd = net->state_dict();
  EXPECT_EQ(shape_str(sd[0].second.shape()), shape_str({32, 1, 3, 3}));  // OIHW
  EXPECT_EQ(shape_str(sd[14].second.shape()), shape_str({128, 3136}));   // [out, in]
  EXPECT_EQ(sd[6].second.dtype(), DType::I64);
  EXPECT_EQ(sd[6].second.dim(), 0);
}

TEST(Module, TraversalOrderAndNames) {
  auto toy = std::make_shared<Toy>();
  EXPECT_EQ(keys_of(toy->named_parameters()), (std::vector<std::string>{"scale", "fc.weight", "fc.bias"}));
  EXPECT_EQ(keys_of(toy->named_parameters(false)), (std::vector<std::string>{"scale"}));
  EXPECT_EQ(keys_of(toy->named_buffers()), (std::vector<std::string>{"count"}));
  EXPECT_EQ(keys_of(toy->state_dict()), (std::vector<std::string>{"scale", "count", "fc.weight", "fc.bias"}));
  auto seq = std::make_shared<Sequential>();
  seq->push_back("features", toy).push_back(std::make_shared<ReLU>());
  std::vector<std::string> modules;
  for (auto& [n, m] : seq->named_modules()) modules.push_back(n + ":" + m->type_name());
  EXPECT_EQ(modules, (std::vector<std::string>{":Sequential", "features:Toy", "features.fc:Linear", "1:ReLU"}));
  EXPECT_EQ(keys_of(seq->state_dict()),
            (std::vector<std::string>{"features.scale", "features.count", "features.fc.weight", "features.fc.bias"}));
  EXPECT_EQ(seq->named_children().size(), 2u);
  EXPECT_EQ(seq->child("features.fc")->type_name(), "Linear");
  EXPECT_THROW_MSG(seq->child("features.conv"), "no child 'conv' (children: fc)");
  // Parameters know their full dotted path (inspect/ and error messages use it).
  EXPECT_EQ(toy->fc_->weight().autograd_meta()->name, "features.fc.weight");
  EXPECT_TRUE(toy->fc_->weight().requires_grad());
  EXPECT_EQ(toy->num_parameters(), 3 + 6 + 2);
}

TEST(Module, ChildAddedAfterRegistrationIsRenamedByTheRoot) {
  auto outer = std::make_shared<Sequential>();
  auto inner = std::make_shared<Sequential>();
  outer->push_back("body", inner);
  inner->push_back(std::make_shared<Linear>(2, 2));
  outer->named_parameters();
  EXPECT_EQ(inner->at<Linear>(0)->weight().autograd_meta()->name, "body.0.weight");
}

TEST(Module, SharedParametersAreListedOnce) {
  auto fc = std::make_shared<Linear>(4, 4);
  auto seq = std::make_shared<Sequential>();
  seq->push_back(fc).push_back(fc);
  EXPECT_EQ(seq->parameters().size(), 2u);
  EXPECT_EQ(seq->state_dict().size(), 4u);  // state_dict keeps every key, as PyTorch
  EXPECT_EQ(seq->num_parameters(), 20);
}

TEST(Module, SequentialIndexingAndErrors) {
  auto seq = std::make_shared<Sequential>(
      std::initializer_list<ModulePtr>{std::make_shared<Linear>(2, 3), std::make_shared<Tanh>()});
  EXPECT_EQ(seq->size(), 2u);
  EXPECT_EQ((*seq)[1]->type_name(), "Tanh");
  EXPECT_EQ(seq->at<Linear>(0)->options().out, 3);
  EXPECT_THROW_MSG((*seq)[2], "index 2 is out of range (size 2)");
  EXPECT_THROW_MSG(seq->at<Linear>(1), "child 1 is a Tanh");
  EXPECT_THROW_MSG(seq->push_back("0", std::make_shared<ReLU>()), "a child named '0' already exists");
  Tensor y = (*seq)(ones({5, 2}));
  EXPECT_EQ(shape_str(y.shape()), shape_str({5, 3}));
}

TEST(Module, RegistrationErrors) {
  struct Bad : Module {
    Tensor forward(const Tensor& x) override { return x; }
    std::string type_name() const override { return "Bad"; }
    void dup() {
      register_parameter("w", ones({1}));
      register_parameter("w", ones({1}));
    }
    void dotted() { register_parameter("a.b", ones({1})); }
    void integer() { register_parameter("i", zeros({1}, {DType::I64})); }
  };
  Bad b;
  EXPECT_THROW_MSG(b.dup(), "'w' is already registered");
  EXPECT_THROW_MSG(b.dotted(), "contain no '.'");
  EXPECT_THROW_MSG(b.integer(), "parameters must be floating point");
  EXPECT_THROW_MSG(b.named_modules(), "std::shared_ptr");
}

TEST(Module, ForwardHooksSeeInputAndOutput) {
  auto fc = std::make_shared<Linear>(3, 2);
  int calls = 0;
  int id = fc->register_forward_hook([&](Module& m, const Tensor& in, const Tensor& out) {
    ++calls;
    EXPECT_EQ(m.type_name(), "Linear");
    EXPECT_EQ(shape_str(in.shape()), shape_str({4, 3}));
    EXPECT_EQ(shape_str(out.shape()), shape_str({4, 2}));
  });
  (*fc)(ones({4, 3}));
  fc->remove_forward_hook(id);
  (*fc)(ones({4, 3}));
  EXPECT_EQ(calls, 1);
}

// Found by an audit: a forward returning its input got the hook put on the caller's tensor, where
// it stayed, firing 1, 2, 3 times on later steps and in passes that never went through the module.
TEST(Module, BackwardHookOfAPassThroughModuleFiresOncePerPass) {
  auto id = std::make_shared<Identity>();
  int fired = 0;
  id->register_backward_hook([&](Module&, const Tensor&) { ++fired; });
  Tensor x = randn({3}).set_requires_grad(true);
  for (int step = 1; step <= 3; ++step) {
    fired = 0;
    backward(sum((*id)(x)));
    EXPECT_EQ(fired, 1) << "step " << step;
  }
  fired = 0;
  backward(sum(x));
  EXPECT_EQ(fired, 0);
  EXPECT_TRUE(x.autograd_meta()->hooks.empty());
}

TEST(Module, BackwardHooksSeeOutputGradientAndAreRemovable) {
  auto net = make_model("mlp");
  auto seq = std::dynamic_pointer_cast<Sequential>(net);
  ASSERT_TRUE(seq);
  std::vector<std::string> seen;
  std::vector<double> hooked_norms;
  std::vector<int> ids;
  for (auto& [path, m] : net->named_modules()) {
    if (m->type_name() != "Linear") continue;
    ids.push_back(m->register_backward_hook([&, path](Module& mod, const Tensor& g) {
      seen.push_back(path + ":" + mod.type_name());
      hooked_norms.push_back(sum(g * g).item());
    }));
  }
  ASSERT_EQ(ids.size(), 3u);
  // The last layer's output gradient, seen independently through retain_grad.
  Tensor x = randn({4, 1, 28, 28});
  Tensor logits = (*net)(x);
  logits.retain_grad();
  backward(sum(logits * logits));
  ASSERT_EQ(seen.size(), 3u);  // reverse order: the last Linear's gradient is complete first
  std::string last_path = net->named_modules().back().first;
  EXPECT_EQ(seen.front(), last_path + ":Linear");
  double expect = sum(logits.grad() * logits.grad()).item();
  EXPECT_NEAR(hooked_norms.front(), expect, 1e-6 * expect);
  // Removing one hook after the forward pass already ran: it is not called in that backward.
  auto last = net->named_modules().back().second;
  Tensor logits2 = (*net)(x);
  last->remove_backward_hook(ids.back());
  seen.clear();
  backward(sum(logits2));
  EXPECT_EQ(seen.size(), 2u);
  for (auto& s : seen) EXPECT_NE(s, last_path + ":Linear");
}

TEST(Module, ToDtypeConvertsInPlaceAndKeepsI64Buffers) {
  auto net = make_model("fashionnet");
  auto conv = std::dynamic_pointer_cast<Sequential>(net)->at<Conv2d>(0);
  std::vector<float> before = conv->weight().to_vector<float>();
  Tensor held = conv->weight();  // a handle held elsewhere (an optimizer) follows the conversion
  net->to(DType::F64);
  EXPECT_EQ(held.dtype(), DType::F64);
  EXPECT_EQ(conv->weight().dtype(), DType::F64);
  EXPECT_TRUE(conv->weight().requires_grad());
  std::vector<double> after = held.to_vector<double>();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(static_cast<float>(after[i]), before[i]);
  for (auto& [k, t] : net->state_dict()) {
    EXPECT_EQ(t.dtype(), k.find("num_batches_tracked") != std::string::npos ? DType::I64 : DType::F64) << k;
  }
  EXPECT_THROW_MSG(net->to(DType::I64), "f32 or f64");
  EXPECT_NO_THROW(net->to(Device::cpu()));
  EXPECT_TRUE(net->device().is_cpu());
  if (!cuda::is_available()) {
    // No CUDA build or no GPU: the error names the module, the tensor, the device and why.
    EXPECT_THROW_MSG(net->to(Device::cuda(0)), "to cuda:0 failed");
  }
}

TEST(Module, ZeroGradClearsEveryParameter) {
  auto net = make_model("mlp");
  Tensor loss = sum((*net)(ones({2, 1, 28, 28})));
  backward(loss);
  for (auto& p : net->parameters()) EXPECT_TRUE(p.grad().defined());
  net->zero_grad();
  for (auto& p : net->parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(Module, PyFloatMatchesPythonRepr) {
  EXPECT_EQ(py_float(1e-5), "1e-05");
  EXPECT_EQ(py_float(0.1), "0.1");
  EXPECT_EQ(py_float(0.5), "0.5");
  EXPECT_EQ(py_float(1.0), "1.0");
  EXPECT_EQ(py_float(0.01), "0.01");
  EXPECT_EQ(py_float(123.25), "123.25");
  EXPECT_EQ(py_float(1e16), "1e+16");
  EXPECT_EQ(py_float(-2.5e-7), "-2.5e-07");
  EXPECT_EQ(py_float(0.0001), "0.0001");
}

}  // namespace
}  // namespace gs::nn
