// The doctor on the GPU (cuda label): the same checklist, seed, data and model on --device cuda
// and on the CPU give the same verdicts and the same measured numbers (to f32 drift): loss and
// activation statistics at init, gradient norms, the overfit and LR-range losses, the fit curve,
// dead units. lenet5 on a small Fashion-MNIST subset; without a GPU it skips.
#include "io/dataset.h"
#include "tests/cuda/cuda_test_helpers.h"
#include "train/doctor.h"
#include "train/trainer.h"

namespace gs::test {
namespace {

train::DoctorReport doctor_on(const std::string& device, const io::Dataset& train_set, const io::Dataset& test_set,
                              const train::DoctorOptions& options) {
  train::TrainConfig c;
  c.model = "lenet5";
  c.optimizer = "adam";
  c.lr = 2e-3;
  c.weight_decay = 0;
  c.batch_size = 32;
  c.schedule = "none";
  c.seed = 5;
  c.device = device;
  auto make_model = [c] {
    manual_seed(c.seed);
    nn::ModulePtr model = train::build_model(c, 1, 10, 28);
    model->train();
    return model;
  };
  train::DoctorSetup setup = train::make_doctor_setup(c, train_set, test_set,
                                                      train::default_normalization(c.data, train_set), make_model,
                                                      options);
  EXPECT_EQ(setup.device, Device::parse(device));
  return train::run_doctor(setup, options);
}

// The first n values of a and b agree to within tol relative to 1 + |b|.
void expect_close(const std::vector<double>& a, const std::vector<double>& b, size_t n, double tol,
                  const std::string& what) {
  ASSERT_GE(a.size(), n) << what;
  ASSERT_GE(b.size(), n) << what;
  for (size_t i = 0; i < n; ++i) EXPECT_NEAR(a[i], b[i], tol * (1 + std::abs(b[i]))) << what << " [" << i << "]";
}

std::vector<double> lr_losses(const train::DoctorReport& r) {
  std::vector<double> v;
  for (const auto& p : r.lr_find.points) v.push_back(p.loss);
  return v;
}

TEST(CudaTrain, DoctorMatchesTheCpuRun) {
  GS_REQUIRE_CUDA();
  io::Dataset all = io::load_fashion_mnist(io::kFashionMnistDir, true);
  io::Dataset train_set = io::stratified_subset(all, 1200, 2);
  io::Dataset test_set = io::stratified_subset(io::load_fashion_mnist(io::kFashionMnistDir, false), 200, 2);
  train::DoctorOptions o;
  o.sample = 128;
  o.overfit_batch = 16;
  o.overfit_steps = 60;
  o.grad_steps = 4;
  o.lr_steps = 30;
  o.fit_images = 320;
  o.val_images = 100;
  o.fit_epochs = 2;
  o.progress = false;
  const train::DoctorReport on_gpu = doctor_on("cuda", train_set, test_set, o);
  const train::DoctorReport on_cpu = doctor_on("cpu", train_set, test_set, o);
  EXPECT_EQ(on_gpu.device, "cuda:0");
  EXPECT_EQ(on_cpu.device, "cpu");

  ASSERT_EQ(on_gpu.checks.size(), 8u);
  ASSERT_EQ(on_cpu.checks.size(), 8u);
  for (size_t i = 0; i < on_cpu.checks.size(); ++i) {
    EXPECT_EQ(on_gpu.checks[i].name, on_cpu.checks[i].name);
    EXPECT_EQ(on_gpu.checks[i].verdict, on_cpu.checks[i].verdict)
        << on_cpu.checks[i].name << ": gpu '" << on_gpu.checks[i].summary << "', cpu '" << on_cpu.checks[i].summary
        << "'";
  }

  // Init pass: loss, output signs and every leaf layer's activation statistics.
  EXPECT_NEAR(on_gpu.init.loss, on_cpu.init.loss, 1e-4 * (1 + on_cpu.init.loss));
  EXPECT_NEAR(on_gpu.init.negative_output_fraction, on_cpu.init.negative_output_fraction, 1e-2);
  EXPECT_EQ(on_gpu.init.leaf_types, on_cpu.init.leaf_types);
  ASSERT_EQ(on_gpu.init.activations.size(), on_cpu.init.activations.size());
  ASSERT_GT(on_cpu.init.activations.size(), 5u);
  for (size_t i = 0; i < on_cpu.init.activations.size(); ++i) {
    const auto &g = on_gpu.init.activations[i], &c = on_cpu.init.activations[i];
    EXPECT_EQ(g.layer, c.layer);
    EXPECT_NEAR(g.mean, c.mean, 1e-4 * (1 + std::abs(c.mean))) << c.layer;
    EXPECT_NEAR(g.std, c.std, 1e-4 * (1 + c.std)) << c.layer;
    EXPECT_NEAR(g.zero_fraction, c.zero_fraction, 1e-3) << c.layer;
  }

  // Gradient norms at init (the same batch and weights) and the global norm step by step.
  EXPECT_EQ(on_gpu.gradients.layers, on_cpu.gradients.layers);
  expect_close(on_gpu.gradients.at_init, on_cpu.gradients.at_init, on_cpu.gradients.at_init.size(), 1e-3,
               "gradient norm at init");
  expect_close(on_gpu.gradients.total_per_step, on_cpu.gradients.total_per_step, 3, 1e-2, "global gradient norm");

  // The overfit-one-batch and LR-range losses: the first steps agree closely (later ones drift).
  expect_close(on_gpu.overfit_losses, on_cpu.overfit_losses, 5, 1e-3, "overfit loss");
  expect_close(lr_losses(on_gpu), lr_losses(on_cpu), 10, 1e-3, "lr range loss");

  // The short fit run: the same first loss, a learning model, accuracies within a few images.
  EXPECT_NEAR(on_gpu.fit.initial_loss, on_cpu.fit.initial_loss, 1e-4 * (1 + on_cpu.fit.initial_loss));
  ASSERT_EQ(on_gpu.fit.curve.size(), on_cpu.fit.curve.size());
  EXPECT_GT(on_gpu.fit.curve.back().val_acc, 0.3);  // it learns (chance: 0.1)
  EXPECT_NEAR(on_gpu.fit.curve.back().val_acc, on_cpu.fit.curve.back().val_acc, 0.05);
  EXPECT_NEAR(on_gpu.fit.curve.back().train_loss, on_cpu.fit.curve.back().train_loss,
              0.05 * (1 + on_cpu.fit.curve.back().train_loss));

  // Dead units, at init (same weights: the same units) and after the fit run.
  ASSERT_EQ(on_gpu.dead_units.size(), on_cpu.dead_units.size());
  ASSERT_FALSE(on_cpu.dead_units.empty());
  for (size_t i = 0; i < on_cpu.dead_units.size(); ++i) {
    EXPECT_EQ(on_gpu.dead_units[i].layer, on_cpu.dead_units[i].layer);
    const double one_unit = 1.0 / double(on_cpu.dead_units[i].units) + 1e-9;  // a borderline unit may flip
    EXPECT_NEAR(on_gpu.dead_units[i].dead_at_init, on_cpu.dead_units[i].dead_at_init, one_unit);
    EXPECT_NEAR(on_gpu.dead_units[i].dead_after, on_cpu.dead_units[i].dead_after, 0.05);
  }
}

}  // namespace
}  // namespace gs::test
