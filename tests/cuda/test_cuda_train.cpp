// fashionnet trained on the GPU (cuda label): the same model, data, seed and AdamW steps on the
// CPU and on the GPU give the same losses step by step (to f32 drift) and the same accuracy.
// A small stratified subset keeps it to seconds on a GPU; without a GPU it skips.
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "io/dataset.h"
#include "layers/zoo.h"
#include "optim/optimizers.h"
#include "tests/cuda/cuda_test_helpers.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace gs::test {
namespace {

struct RunResult {
  std::vector<double> losses;
  double accuracy = 0;
};

RunResult train_fashionnet(Device device, const io::Dataset& train, const io::Dataset& test) {
  manual_seed(7);
  nn::ModulePtr model = nn::make_model("fashionnet");
  model->to(device);
  optim::AdamW opt(model->parameters(), optim::AdamWOptions{});
  auto normalize = [&](const Tensor& images) {
    return div(sub(images.to(device), io::kFashionMnistMean), io::kFashionMnistStd);
  };
  RunResult r;
  const int64_t batch = 64;
  model->train();
  for (int64_t start = 0; start + batch <= train.size(); start += batch) {
    Tensor x = normalize(raw::narrow(train.images, 0, start, batch));
    Tensor y = raw::narrow(train.labels, 0, start, batch).to(device);
    Tensor loss = cross_entropy((*model)(x), y);
    opt.zero_grad();
    backward(loss);
    opt.step();
    r.losses.push_back(loss.item());
  }
  model->eval();
  NoGradGuard no_grad;
  Tensor pred = argmax((*model)(normalize(test.images)), 1).to(Device::cpu());
  auto p = pred.to_vector<int64_t>(), l = test.labels.to_vector<int64_t>();
  int64_t correct = 0;
  for (size_t i = 0; i < p.size(); ++i) correct += p[i] == l[i];
  r.accuracy = static_cast<double>(correct) / static_cast<double>(p.size());
  return r;
}

TEST(CudaTrain, FashionnetMatchesTheCpuRun) {
  GS_REQUIRE_CUDA();
  io::Dataset train = io::stratified_subset(io::load_fashion_mnist(io::kFashionMnistDir, true), 2048, 1);
  io::Dataset test = io::stratified_subset(io::load_fashion_mnist(io::kFashionMnistDir, false), 1000, 1);
  RunResult cpu = train_fashionnet(Device::cpu(), train, test);
  RunResult cuda_run = train_fashionnet(gpu(), train, test);
  ASSERT_EQ(cpu.losses.size(), cuda_run.losses.size());
  // The first steps agree closely; later ones drift apart slowly (f32 sums in another order).
  for (size_t i = 0; i < 5; ++i)
    EXPECT_NEAR(cuda_run.losses[i], cpu.losses[i], 1e-3 * (1 + cpu.losses[i])) << "step " << i;
  EXPECT_LT(cuda_run.losses.back(), 0.6 * cuda_run.losses.front());  // it learns
  EXPECT_GT(cuda_run.accuracy, 0.65);
  EXPECT_NEAR(cuda_run.accuracy, cpu.accuracy, 0.03);
}

// The trainer on --device cuda end to end (what `gradscope train --device cuda` runs): the same
// losses as the same run on the CPU, checkpoints that hold host tensors, and weights that score
// the same on the CPU and on the GPU.
TEST(CudaTrain, TrainerCheckpointsLoadOnTheCpu) {
  GS_REQUIRE_CUDA();
  namespace fs = std::filesystem;
  train::TrainConfig c;
  c.model = "lenet5";
  c.limit_train = 256;
  c.limit_test = 200;
  c.epochs = 1;
  c.seed = 3;
  c.progress = false;
  c.tensorboard = false;
  c.device = "cuda";
  c.out = (fs::temp_directory_path() / ("gs_cuda_trainer_" + std::to_string(::getpid()))).string();
  fs::remove_all(c.out);
  train::TrainConfig on_cpu_config = c;
  on_cpu_config.device = "cpu";
  on_cpu_config.out = c.out + "_cpu";
  train::TrainResult r = train::Trainer(c).run(), r_cpu = train::Trainer(on_cpu_config).run();
  EXPECT_NEAR(r.final_train_loss, r_cpu.final_train_loss, 1e-3 * (1 + r_cpu.final_train_loss));
  EXPECT_NEAR(r.test_loss, r_cpu.test_loss, 1e-3 * (1 + r_cpu.test_loss));
  for (const char* f : {"last.safetensors", "best.safetensors", "metrics.jsonl"})
    ASSERT_TRUE(fs::exists(c.out + "/" + f)) << f;
  io::Dataset train_set = io::load_fashion_mnist(io::kFashionMnistDir, true);
  io::Dataset test = io::stratified_subset(io::load_fashion_mnist(io::kFashionMnistDir, false), 200, 1);
  auto score = [&](Device device) {
    nn::ModulePtr model = train::build_model(c, 1, 10, 28);
    train::load_weights(c.out + "/last.safetensors", *model);
    model->to(device);
    io::DataLoader loader(test, {.batch_size = 100, .shuffle = false}, train::default_normalization(c.data, train_set));
    return train::evaluate(*model, loader);
  };
  train::EvalResult on_cpu = score(Device::cpu()), on_gpu = score(gpu());
  EXPECT_EQ(on_cpu.count, 200);
  EXPECT_NEAR(on_gpu.loss, on_cpu.loss, 1e-4 * (1 + on_cpu.loss));
  EXPECT_NEAR(on_gpu.accuracy, on_cpu.accuracy, 1.0 / 200 + 1e-9);  // at most one borderline image apart
  fs::remove_all(c.out);
  fs::remove_all(on_cpu_config.out);
}

}  // namespace
}  // namespace gs::test
