// The doctor's measuring runs on small synthetic data (4 classes of 8x8 images: a bright patch at a
// class-specific place plus noise), each check with a model or data built to fail it and one built
// to pass it; and run_doctor end to end writing doctor.json / doctor.html. Each test takes well
// under a second or two: tiny MLPs on 480 images.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/tape.h"
#include "io/transforms.h"
#include "layers/spec.h"
#include "tensor/random.h"
#include "train/doctor.h"
#include "train/doctor_report.h"
#include "train/trainer.h"

using namespace gs;
using inspect::Verdict;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kClasses = 4;

io::Dataset synthetic(int64_t n, uint64_t seed) {
  io::Dataset d;
  d.images = zeros({n, 1, 8, 8});
  d.labels = zeros({n}, {DType::I64});
  d.num_classes = kClasses;
  d.class_names = {"a", "b", "c", "d"};
  Generator g(seed);
  float* x = d.images.data<float>();
  int64_t* y = d.labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % kClasses;
    y[i] = c;
    float* img = x + i * 64;
    for (int k = 0; k < 64; ++k) img[k] = float(0.3 * g.uniform());
    const int r0 = int(c / 2) * 4 + 1, c0 = int(c % 2) * 4 + 1;  // a 2x2 patch in one quadrant
    for (int r = r0; r < r0 + 2; ++r)
      for (int col = c0; col < c0 + 2; ++col) img[r * 8 + col] = float(0.7 + 0.3 * g.uniform());
  }
  return d;
}

const char* kGoodMlp = R"({"layers": [{"type": "flatten"}, {"type": "linear", "in": 64, "out": 32}, {"type": "relu"},
                           {"type": "linear", "in": 32, "out": 4}]})";
const char* kFinalRelu = R"({"layers": [{"type": "flatten"}, {"type": "linear", "in": 64, "out": 32}, {"type": "relu"},
                            {"type": "linear", "in": 32, "out": 4}, {"type": "relu"}]})";
const char* kFinalSigmoid = R"({"layers": [{"type": "flatten"}, {"type": "linear", "in": 64, "out": 32},
                               {"type": "relu"}, {"type": "linear", "in": 32, "out": 4}, {"type": "sigmoid"}]})";

std::string deep_sigmoid_spec(int depth) {
  std::string s = R"({"layers": [{"type": "flatten"}, {"type": "linear", "in": 64, "out": 32}, {"type": "sigmoid"})";
  for (int i = 0; i < depth; ++i) s += R"(, {"type": "linear", "in": 32, "out": 32}, {"type": "sigmoid"})";
  return s + R"(, {"type": "linear", "in": 32, "out": 4}]})";
}

train::DoctorOptions small_options() {
  train::DoctorOptions o;
  o.sample = 200;
  o.overfit_batch = 16;
  o.overfit_steps = 150;
  o.grad_steps = 5;
  o.lr_steps = 60;
  o.fit_images = 320;
  o.val_images = 80;
  o.fit_epochs = 4;
  o.progress = false;
  return o;
}

train::TrainConfig adam_config(double lr = 3e-3) {
  train::TrainConfig c;
  c.optimizer = "adam";
  c.lr = lr;
  c.weight_decay = 0;
  c.batch_size = 32;
  c.schedule = "none";
  c.seed = 3;
  return c;
}

// `tweak` may change the fresh model (under no_grad) before it is returned.
train::DoctorSetup setup_for(const std::string& spec, train::TrainConfig config = adam_config(),
                             train::DoctorOptions options = small_options(),
                             std::function<void(nn::Module&)> tweak = nullptr, io::Dataset train = synthetic(480, 1),
                             io::Dataset test = synthetic(120, 2), std::shared_ptr<io::Transform> norm = nullptr) {
  if (!norm) norm = train::default_normalization("synthetic", train);
  auto make = [spec, config, tweak] {
    manual_seed(config.seed);
    nn::ModulePtr m = nn::model_from_spec_json(spec);
    if (tweak) {
      NoGradGuard no_grad;
      tweak(*m);
    }
    m->train();
    return m;
  };
  return train::make_doctor_setup(config, std::move(train), std::move(test), norm, make, options);
}

// Sets every element of the named parameter to `value` (or multiplies by it with scale = true).
void set_param(nn::Module& m, const std::string& name, double value, bool scale = false) {
  for (auto& [n, p] : m.named_parameters()) {
    if (n != name) continue;
    float* v = p.data<float>();
    for (int64_t i = 0; i < p.numel(); ++i) v[i] = scale ? float(v[i] * value) : float(value);
    return;
  }
  FAIL() << "no parameter " << name;
}

}  // namespace

TEST(Doctor, DataPassesOnCleanSyntheticData) {
  auto s = setup_for(kGoodMlp);
  auto r = inspect::check_data(train::measure_data(s, small_options()));
  EXPECT_EQ(r.verdict, Verdict::Ok) << r.summary;
  EXPECT_NEAR(r.evidence["input_mean"].get<double>(), 0, 0.1);
  EXPECT_NEAR(r.evidence["input_std"].get<double>(), 1, 0.1);
  EXPECT_EQ(r.evidence["class_counts"], nlohmann::json({120, 120, 120, 120}));
}

TEST(Doctor, DataFailsOnNanDuplicatesAndUnnormalisedInputs) {
  io::Dataset train = synthetic(480, 1), test = synthetic(120, 2);
  train.images.data<float>()[5 * 64 + 7] = NAN;
  auto r = inspect::check_data(
      train::measure_data(setup_for(kGoodMlp, adam_config(), small_options(), nullptr, train, test), small_options()));
  EXPECT_EQ(r.verdict, Verdict::Problem);
  EXPECT_GE(r.evidence["non_finite_values"].get<int64_t>(), 1);

  // 30 test images copied from the training set: 25% of the test set leaks.
  train = synthetic(480, 1), test = synthetic(120, 2);
  std::memcpy(test.images.data<float>(), train.images.data<float>() + 64 * 100, 30 * 64 * sizeof(float));
  r = inspect::check_data(
      train::measure_data(setup_for(kGoodMlp, adam_config(), small_options(), nullptr, train, test), small_options()));
  EXPECT_EQ(r.verdict, Verdict::Problem);
  EXPECT_EQ(r.evidence["duplicates_train_test"], 30);

  // The test set is the training set (load_dataset found no test set): no duplicate count, and a NaN
  // counts once, not once per set.
  train = synthetic(480, 1);
  train.images.data<float>()[5 * 64 + 7] = NAN;
  test = train;
  auto twice =
      train::measure_data(setup_for(kGoodMlp, adam_config(), small_options(), nullptr, train, test), small_options());
  EXPECT_EQ(twice.duplicates_train_test, 480);
  test.test_is_train = true;
  auto once =
      train::measure_data(setup_for(kGoodMlp, adam_config(), small_options(), nullptr, train, test), small_options());
  EXPECT_TRUE(once.test_is_train);
  EXPECT_EQ(once.duplicates_train_test, 0);
  EXPECT_EQ(twice.non_finite - once.non_finite, 1);  // the one NaN, no longer counted again as a test image

  // No normalisation of 0..255 pixels.
  train = synthetic(480, 1);
  float* x = train.images.data<float>();
  for (int64_t i = 0; i < train.images.numel(); ++i) x[i] *= 255;
  r = inspect::check_data(train::measure_data(setup_for(kGoodMlp, adam_config(), small_options(), nullptr, train,
                                                        synthetic(120, 2), std::make_shared<io::Normalize>(0.0, 1.0)),
                                              small_options()));
  EXPECT_EQ(r.verdict, Verdict::Problem);
  EXPECT_GT(r.evidence["input_mean"].get<double>(), 20);
}

TEST(Doctor, FinalLayerAndLossAtInit) {
  auto good = train::measure_init(setup_for(kGoodMlp), small_options());
  EXPECT_EQ(inspect::check_final_layer(good.leaf_types, true, good.negative_output_fraction).verdict, Verdict::Ok);
  EXPECT_EQ(good.leaf_types, (std::vector<std::string>{"Flatten", "Linear", "ReLU", "Linear"}));
  auto loss_ok = inspect::check_loss_at_init(good.loss, kClasses);
  EXPECT_EQ(loss_ok.verdict, Verdict::Ok) << loss_ok.summary;

  auto relu = train::measure_init(setup_for(kFinalRelu), small_options());
  EXPECT_EQ(relu.negative_output_fraction, 0);
  auto r = inspect::check_final_layer(relu.leaf_types, true, relu.negative_output_fraction);
  EXPECT_EQ(r.verdict, Verdict::Problem);
  EXPECT_NE(r.summary.find("ReLU"), std::string::npos) << r.summary;

  // Last layer weights x40: confident, wrong predictions at init.
  auto hot = train::measure_init(
      setup_for(kGoodMlp, adam_config(), small_options(), [](nn::Module& m) { set_param(m, "3.weight", 40, true); }),
      small_options());
  r = inspect::check_loss_at_init(hot.loss, kClasses);
  EXPECT_EQ(r.verdict, Verdict::Problem) << r.summary;
  EXPECT_GT(hot.loss, 2 * std::log(4.0));
}

TEST(Doctor, OverfitOneBatch) {
  auto o = small_options();
  auto losses = train::measure_overfit_batch(setup_for(kGoodMlp), o);
  auto r = inspect::check_overfit_batch(losses, o.overfit_batch, o.overfit_steps);
  EXPECT_EQ(r.verdict, Verdict::Ok) << r.summary;
  EXPECT_LE(losses.back(), inspect::kOverfitLoss);
  // A sigmoid before cross-entropy bounds the logits to (0, 1): the loss cannot go below ln(1 + 3/e) = 0.74.
  losses = train::measure_overfit_batch(setup_for(kFinalSigmoid), o);
  r = inspect::check_overfit_batch(losses, o.overfit_batch, o.overfit_steps);
  EXPECT_EQ(r.verdict, Verdict::Problem) << r.summary;
  EXPECT_GT(losses.back(), 0.7);
  EXPECT_NE(r.suggestions[0].find("likely a bug in the model, loss or labels"), std::string::npos);
}

TEST(Doctor, GradientsVanishingAndExploding) {
  auto o = small_options();
  auto good = train::measure_gradients(setup_for(kGoodMlp), o);
  EXPECT_EQ(good.layers, (std::vector<std::string>{"1.weight", "3.weight"}));
  auto r = inspect::check_gradients(good);
  EXPECT_EQ(r.verdict, Verdict::Ok) << r.summary;

  // 8 hidden sigmoid layers with PyTorch's default init: each layer shrinks the gradient ~7x.
  auto deep = train::measure_gradients(setup_for(deep_sigmoid_spec(8)), o);
  r = inspect::check_gradients(deep);
  EXPECT_EQ(r.verdict, Verdict::Problem) << r.summary;
  EXPECT_NE(r.summary.find("vanishing"), std::string::npos) << r.summary;
  EXPECT_GT(deep.at_init.back() / deep.at_init.front(), inspect::kVanishingRatio);

  // SGD at lr 10 on the same good MLP.
  train::TrainConfig hot = adam_config(10);
  hot.optimizer = "sgd";
  hot.momentum = 0.9;
  auto exploding = train::measure_gradients(setup_for(kGoodMlp, hot), o);
  r = inspect::check_gradients(exploding);
  EXPECT_EQ(r.verdict, Verdict::Problem) << r.summary;
  EXPECT_TRUE(r.summary.find("exploding") != std::string::npos || r.summary.find("NaN") != std::string::npos)
      << r.summary;
}

TEST(Doctor, DeadUnits) {
  auto o = small_options();
  auto good = train::measure_init(setup_for(kGoodMlp), o);
  ASSERT_EQ(good.relu_layers.size(), 1u);
  EXPECT_EQ(good.relu_layers[0].units, 32);
  EXPECT_EQ(inspect::check_dead_units(good.relu_layers, o.sample).verdict, Verdict::Ok);
  // A bias of -100 before the ReLU: no input can switch a unit on.
  auto dead = train::measure_init(
      setup_for(kGoodMlp, adam_config(), o, [](nn::Module& m) { set_param(m, "1.bias", -100); }), o);
  EXPECT_EQ(dead.relu_layers[0].dead_at_init, 1.0);
  auto r = inspect::check_dead_units(dead.relu_layers, o.sample);
  EXPECT_EQ(r.verdict, Verdict::Problem) << r.summary;
}

TEST(Doctor, LearningRate) {
  auto o = small_options();
  auto found = train::measure_lr(setup_for(kGoodMlp), o);
  ASSERT_GT(found.suggested_lr, 0);
  // Adam at 3e-3 on this MLP trains well (see FitPasses); it must be within 10x of the suggestion.
  auto r = inspect::check_learning_rate({3e-3, found.suggested_lr, found.method,
                                         found.diverged ? found.points.back().lr : 0, int64_t(found.points.size())});
  EXPECT_EQ(r.verdict, Verdict::Ok) << r.summary;
  r = inspect::check_learning_rate({10, found.suggested_lr, found.method, found.diverged ? found.points.back().lr : 0,
                                    int64_t(found.points.size())});
  EXPECT_EQ(r.verdict, Verdict::Problem) << r.summary;
}

TEST(Doctor, FitPassesAndShuffledLabelsFail) {
  auto o = small_options();
  auto run = train::measure_fit(setup_for(kGoodMlp), o);
  ASSERT_EQ(run.curve.size(), size_t(o.fit_epochs));
  auto r = inspect::check_fit(run.curve, run.initial_loss, kClasses, o.fit_images);
  EXPECT_EQ(r.verdict, Verdict::Ok) << r.summary;
  EXPECT_GT(run.curve.back().val_acc, 0.9);

  o.shuffle_labels = true;
  run = train::measure_fit(setup_for(kGoodMlp, adam_config(), o), o);
  r = inspect::check_fit(run.curve, run.initial_loss, kClasses, o.fit_images);
  EXPECT_EQ(r.verdict, Verdict::Problem) << r.summary;
  EXPECT_LT(run.curve.back().val_acc, 1.5 / kClasses);
}

TEST(Doctor, RunDoctorWritesJsonAndHtml) {
  auto o = small_options();
  auto s = setup_for(kGoodMlp);
  train::DoctorReport report = train::run_doctor(s, o);
  ASSERT_EQ(report.checks.size(), 8u);
  for (const auto& c : report.checks) EXPECT_EQ(c.verdict, Verdict::Ok) << c.name << ": " << c.summary;
  const std::string dir = (fs::temp_directory_path() / "gs_test_doctor").string();
  fs::remove_all(dir);
  train::write_doctor_report(dir, report, s.config, o);
  std::ifstream in(dir + "/doctor.json");
  nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["verdict"], "ok");
  std::vector<std::string> names;
  for (const auto& c : j["checks"]) names.push_back(c["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"data", "final_layer", "loss_at_init", "overfit_batch", "gradients",
                                             "learning_rate", "fit", "dead_units"}));
  EXPECT_EQ(j["plots"]["gradients"]["layers"].size(), 2u);
  std::stringstream html;
  html << std::ifstream(dir + "/doctor.html").rdbuf();
  const std::string page = html.str();
  EXPECT_NE(page.find("<!DOCTYPE html>"), std::string::npos);
  size_t svgs = 0;
  for (size_t at = page.find("<svg"); at != std::string::npos; at = page.find("<svg", at + 1)) ++svgs;
  EXPECT_GE(svgs, 7u);  // grad norms, global norm, act mean/std, zeros, dead units, overfit, lr, fit
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find(" src="), std::string::npos);  // self-contained: no external images, scripts or styles
  EXPECT_EQ(page.find("<link"), std::string::npos);
}
