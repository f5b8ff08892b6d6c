// inspect/probes: a probed step changes nothing; the records match direct computations;
// patterns select modules and parameters; probes.jsonl and the event file are written.
#include "inspect/probes.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "layers/zoo.h"
#include "optim/clip.h"
#include "optim/optimizer.h"
#include "tensor/random.h"
#include "tensor/raw_ops.h"

using namespace gs;
using namespace gs::inspect;
namespace fs = std::filesystem;

namespace {

struct TrainRun {
  nn::ModulePtr model;
  std::vector<double> params;
};

// Three Adam steps of lenet5 on random data with clipping; probes on every step when asked.
TrainRun train_steps(bool probes, const std::string& dir = "") {
  manual_seed(7);
  auto model = nn::make_model("lenet5");
  auto opt = optim::make_optimizer("adam", model->parameters(), {{"lr", 1e-2}});
  std::unique_ptr<Inspector> inspector;
  ProbeOptions options;
  options.every = 1;
  options.tensorboard_dir = dir;
  options.jsonl_path = dir.empty() ? "" : dir + "/probes.jsonl";
  if (probes) inspector = std::make_unique<Inspector>(model, options);
  Generator g(3);
  for (int step = 0; step < 3; ++step) {
    Tensor x = randn({8, 1, 28, 28}, {}, &g);
    Tensor y = randint(0, 10, {8}, &g);
    if (inspector) inspector->begin_step(step);
    Tensor loss = cross_entropy((*model)(x), y);
    if (inspector) inspector->after_forward(loss);
    opt->zero_grad();
    backward(loss);
    if (inspector) inspector->after_backward();
    optim::clip_grad_norm(model->parameters(), 0.5);
    if (inspector) inspector->after_clip();
    opt->step();
    if (inspector) inspector->after_step(opt->lr());
  }
  TrainRun r{model, {}};
  for (auto& p : model->parameters()) {
    auto v = p.to_vector<double>();
    r.params.insert(r.params.end(), v.begin(), v.end());
  }
  return r;
}

}  // namespace

TEST(Probes, ProbedTrainingIsBitIdentical) {
  TrainRun plain = train_steps(false), probed = train_steps(true);
  ASSERT_EQ(plain.params.size(), probed.params.size());
  size_t differing = 0;
  for (size_t i = 0; i < plain.params.size(); ++i) differing += plain.params[i] != probed.params[i];
  EXPECT_EQ(differing, 0u);
}

TEST(Probes, RecordsMatchDirectComputation) {
  manual_seed(1);
  auto model = nn::make_model("mlp");
  auto opt = optim::make_optimizer("sgd", model->parameters(), {{"lr", 0.1}});
  ProbeOptions options;
  options.every = 2;
  Inspector inspector(model, options);
  Generator g(5);
  Tensor x = randn({16, 1, 28, 28}, {}, &g), y = randint(0, 10, {16}, &g);
  inspector.begin_step(4);
  ASSERT_TRUE(inspector.sampling());
  Tensor loss = cross_entropy((*model)(x), y);
  inspector.after_forward(loss);
  opt->zero_grad();
  backward(loss);
  inspector.after_backward();
  double norm = optim::grad_norm(model->parameters());
  double clipped_to = norm / 2;
  optim::clip_grad_norm(model->parameters(), clipped_to);
  inspector.after_clip();
  std::vector<Tensor> before;
  for (auto& p : model->parameters()) before.push_back(raw::clone(p));
  opt->step();
  inspector.after_step(opt->lr());

  EXPECT_NEAR(inspector.last_step().loss, loss.item(), 1e-7);
  EXPECT_NEAR(inspector.last_step().grad_norm, norm, 1e-5 * norm);
  EXPECT_NEAR(inspector.last_step().grad_norm_clipped, clipped_to, 1e-4 * norm);
  EXPECT_DOUBLE_EQ(inspector.last_step().lr, 0.1);
  // mlp = Flatten(0) Linear(1) ReLU(2) ...: the ReLU output has dead units, its gradient exists.
  const auto& modules = inspector.modules();
  auto relu = std::find_if(modules.begin(), modules.end(), [](const ModuleProbe& m) { return m.path == "2"; });
  ASSERT_NE(relu, modules.end());
  EXPECT_TRUE(relu->has_act && relu->has_grad);
  EXPECT_GT(relu->act.fraction_zero(), 0.1);
  EXPECT_EQ(relu->act.min, 0.0);
  const auto& params = inspector.params();
  ASSERT_EQ(params.size(), model->parameters().size());
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor update = raw::binary(raw::BinaryOp::Sub, params[i].param, before[i]);
    double update_norm = inspect::tensor_stats(update).norm;
    EXPECT_NEAR(params[i].update_norm, update_norm, 1e-6 + 1e-5 * update_norm) << params[i].name;
    EXPECT_NEAR(params[i].update_ratio, update_norm / inspect::tensor_stats(params[i].param).norm, 1e-5) << params[i].name;
    EXPECT_NEAR(params[i].distance_from_init, update_norm, 1e-6 + 1e-5 * update_norm) << params[i].name;  // first step
  }
  // Step 5 is not sampled: nothing is recorded.
  inspector.begin_step(5);
  EXPECT_FALSE(inspector.sampling());
  (*model)(x);
  EXPECT_FALSE(inspector.modules()[0].has_act);
  // Step 6 without clipping: after_clip(false) reports the norm before clipping as the clipped one.
  inspector.begin_step(6);
  ASSERT_TRUE(inspector.sampling());
  loss = cross_entropy((*model)(x), y);
  inspector.after_forward(loss);
  opt->zero_grad();
  backward(loss);
  inspector.after_backward();
  inspector.after_clip(false);
  opt->step();
  inspector.after_step(opt->lr());
  norm = optim::grad_norm(model->parameters());
  EXPECT_NEAR(inspector.last_step().grad_norm, norm, 1e-5 * norm);
  EXPECT_EQ(inspector.last_step().grad_norm_clipped, inspector.last_step().grad_norm);
}

TEST(Probes, EveryModuleOutputAndGradientMatchesItsOwnStatistics) {
  // resnet8 has containers (whose output is their last child's) and fashionnet a Flatten (a view
  // of the pool output): outputs read once for several modules must still give each its own values.
  for (const char* name : {"fashionnet", "resnet8"}) {
    manual_seed(3);
    const bool rgb = std::string(name) == "resnet8";
    auto model = rgb ? nn::make_model(name, 3, 10, 32) : nn::make_model(name);
    ProbeOptions options;
    options.every = 1;
    Inspector inspector(model, options);
    std::map<std::string, Tensor> outputs, grads;
    std::vector<std::pair<nn::Module*, int>> hooks;
    for (auto& [path, m] : model->named_modules()) {
      if (path.empty()) continue;
      std::string key = path;
      hooks.emplace_back(m.get(), m->register_forward_hook([&outputs, &grads, key](nn::Module&, const Tensor&, const Tensor& out) {
        outputs[key] = raw::clone(out);
        Tensor o = out;
        register_hook(o, [&grads, key](const Tensor& g) {
          grads[key] = raw::clone(g);
          return Tensor();
        });
      }));
    }
    Generator g(9);
    Tensor x = randn({4, rgb ? 3 : 1, rgb ? 32 : 28, rgb ? 32 : 28}, {}, &g), y = randint(0, 10, {4}, &g);
    inspector.begin_step(0);
    Tensor loss = cross_entropy((*model)(x), y);
    inspector.after_forward(loss);
    backward(loss);
    inspector.after_backward();
    for (const ModuleProbe& m : inspector.modules()) {
      ASSERT_TRUE(m.has_act) << name << " " << m.path;
      TensorStats direct = tensor_stats(outputs.at(m.path));
      EXPECT_EQ(m.act.histogram, direct.histogram) << name << " " << m.path;
      EXPECT_EQ(m.act.sum, direct.sum) << name << " " << m.path;
      EXPECT_EQ(m.act.zeros, direct.zeros) << name << " " << m.path;
      if (!grads.count(m.path)) continue;
      ASSERT_TRUE(m.has_grad) << name << " " << m.path;
      TensorStats direct_grad = tensor_stats(grads.at(m.path));
      EXPECT_EQ(m.grad.histogram, direct_grad.histogram) << name << " " << m.path;
      EXPECT_EQ(m.grad.sum, direct_grad.sum) << name << " " << m.path;
    }
    for (auto& [m, id] : hooks) m->remove_forward_hook(id);
  }
}

TEST(Probes, PatternsSelectModulesAndParameters) {
  auto model = nn::make_model("mlp");
  ProbeOptions options;
  options.every = 1;
  options.patterns = split_patterns({"1,3", "5.bias"});
  Inspector inspector(model, options);
  std::vector<std::string> modules, params;
  for (auto& m : inspector.modules()) modules.push_back(m.path);
  for (auto& p : inspector.params()) params.push_back(p.name);
  EXPECT_EQ(modules, (std::vector<std::string>{"1", "3"}));
  EXPECT_EQ(params, (std::vector<std::string>{"1.weight", "1.bias", "3.weight", "3.bias", "5.bias"}));
  options.patterns = {"nothing*"};
  EXPECT_THROW(Inspector(model, options), Error);
}

TEST(Probes, WritesJsonlAndEventFile) {
  std::string dir = (fs::temp_directory_path() / "gs_test_probes_sinks").string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  train_steps(true, dir);
  std::ifstream in(dir + "/probes.jsonl");
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["step"], lines);
    EXPECT_TRUE(j["modules"].contains("0"));
    EXPECT_TRUE(j["modules"]["0"]["act"].contains("zero_fraction"));
    EXPECT_TRUE(j["params"]["0.weight"]["grad"].contains("norm"));
  }
  EXPECT_EQ(lines, 3);
  int events = 0;
  for (auto& e : fs::directory_iterator(dir)) events += e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  EXPECT_EQ(events, 1);
  fs::remove_all(dir);
}
