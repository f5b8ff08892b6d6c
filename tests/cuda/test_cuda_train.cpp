// fashionnet trained on the GPU (cuda label): the same model, data, seed and AdamW steps on the
// CPU and on the GPU give the same losses step by step (to f32 drift) and the same accuracy.
// A small stratified subset keeps it to seconds on a GPU; without a GPU it skips.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "io/dataset.h"
#include "io/safetensors.h"
#include "layers/zoo.h"
#include "optim/optimizers.h"
#include "tests/cuda/cuda_test_helpers.h"
#include "train/checkpoint.h"
#include "train/distributed.h"
#include "train/trainer.h"
#if GS_CUDA_EMULATED
#include "kernels/cuda/emulator/cuda_emulator.h"
#include "kernels/cuda/emulator/include/cublas_v2.h"  // gs_emulated_cublas_gemm_calls
#endif

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

#if GS_CUDA_EMULATED
// A fashionnet training step on the GPU costs the same number of launches (kernels and cuBLAS
// calls) at batch 2 and at batch 16: each conv pass is a few launches per chunk of images, not
// per image (it was 2 per image and pass). Counted on the emulator, for the step after the
// optimizer state exists.
TEST(CudaTrain, LaunchesOfAStepDoNotGrowWithTheBatch) {
  GS_REQUIRE_CUDA();
  auto launches_of_a_step = [](int64_t batch) {
    manual_seed(7);
    nn::ModulePtr model = nn::make_model("fashionnet");
    model->to(gpu());
    optim::AdamW opt(model->parameters(), optim::AdamWOptions{});
    std::vector<int64_t> labels(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; ++i) labels[size_t(i)] = i % 10;
    Tensor x = randf({batch, 1, 28, 28}, 5).to(gpu()), y = from_vector<int64_t>(labels, {batch}).to(gpu());
    int64_t launches = 0;
    for (int step = 0; step < 3; ++step) {
      const int64_t kernels0 = kernels::cuda::emu::launch_count();
      const long long cublas0 = gs_emulated_cublas_gemm_calls();
      Tensor loss = cross_entropy((*model)(x), y);
      opt.zero_grad();
      backward(loss);
      opt.step();
      EXPECT_TRUE(std::isfinite(loss.item()));
      launches = (kernels::cuda::emu::launch_count() - kernels0) + (gs_emulated_cublas_gemm_calls() - cublas0);
    }
    return launches;
  };
  const int64_t small = launches_of_a_step(2), large = launches_of_a_step(16);
  std::printf("fashionnet training step on cuda: %lld launches at batch 2, %lld at batch 16\n", (long long)small,
              (long long)large);
  EXPECT_EQ(large, small);
}
#endif

// Trains `c` on `device` to epoch 1, then resumes it from its last.safetensors to the end, in
// <tmp>/<name>_<id>_<device> (id: this process's pid, or one every rank of a data-parallel run
// shares); returns the resumed run's result and its directory.
std::pair<train::TrainResult, std::string> run_interrupted_and_resumed(train::TrainConfig c, const std::string& device,
                                                                       const std::string& name,
                                                                       long id = long(::getpid())) {
  namespace fs = std::filesystem;
  c.device = device;
  c.out = (fs::temp_directory_path() / (name + "_" + std::to_string(id) + "_" + device)).string();
  if (train::ProcessGroup::world().is_main()) fs::remove_all(c.out);
  train::Trainer(c).run(/*stop_after_epoch=*/1);
  c.resume = c.out + "/last.safetensors";
  return {train::Trainer(c).run(), c.out};
}

// The trainer on --device cuda end to end (what `gradscope train --device cuda` runs), with
// clipping, probes, TensorBoard and an interrupted run resumed from its checkpoint: the same
// losses and probe values as the same runs on the CPU; checkpoints that hold host tensors and
// score the same on the CPU and on the GPU.
TEST(CudaTrain, TrainerFeaturesMatchTheCpuRun) {
  GS_REQUIRE_CUDA();
  namespace fs = std::filesystem;
  train::TrainConfig c;
  c.model = "lenet5";
  c.limit_train = 256;
  c.limit_test = 200;
  c.epochs = 2;
  c.seed = 3;
  c.lr = 0.01;
  c.clip_norm = 0.5;
  c.probe_every = 3;
  c.progress = false;
  auto [r_gpu, out_gpu] = run_interrupted_and_resumed(c, "cuda", "gs_cuda_trainer");
  auto [r_cpu, out_cpu] = run_interrupted_and_resumed(c, "cpu", "gs_cuda_trainer");
  EXPECT_EQ(r_gpu.epochs, 2);
  EXPECT_NEAR(r_gpu.final_train_loss, r_cpu.final_train_loss, 1e-3 * (1 + r_cpu.final_train_loss));
  EXPECT_NEAR(r_gpu.test_loss, r_cpu.test_loss, 1e-3 * (1 + r_cpu.test_loss));
  for (const char* f : {"last.safetensors", "metrics.jsonl", "probes.jsonl"})
    ASSERT_TRUE(fs::exists(out_gpu + "/" + f)) << f;
  bool events = false;
  for (const auto& e : fs::directory_iterator(out_gpu))
    events = events || e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  EXPECT_TRUE(events) << "no TensorBoard event file in " << out_gpu;

  // Probe records: the same steps with the same numbers (to f32 drift).
  auto probe_numbers = [](const std::string& path) {
    std::vector<double> numbers;
    std::ifstream in(path);
    std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& j) {
      if (j.is_number()) numbers.push_back(j.get<double>());
      if (j.is_object() || j.is_array())
        for (const auto& v : j) walk(v);
    };
    for (std::string line; std::getline(in, line);) walk(nlohmann::json::parse(line));
    return numbers;
  };
  const auto p_gpu = probe_numbers(out_gpu + "/probes.jsonl"), p_cpu = probe_numbers(out_cpu + "/probes.jsonl");
  ASSERT_EQ(p_gpu.size(), p_cpu.size());
  ASSERT_GT(p_gpu.size(), 100u);
  for (size_t i = 0; i < p_gpu.size(); ++i) ASSERT_NEAR(p_gpu[i], p_cpu[i], 1e-3 * (1 + std::abs(p_cpu[i]))) << i;

  io::Dataset train_set = io::load_fashion_mnist(io::kFashionMnistDir, true);
  io::Dataset test = io::stratified_subset(io::load_fashion_mnist(io::kFashionMnistDir, false), 200, 1);
  auto score = [&](Device device) {
    nn::ModulePtr model = train::build_model(c, 1, 10, 28);
    train::load_weights(out_gpu + "/last.safetensors", *model);
    model->to(device);
    io::DataLoader loader(test, {.batch_size = 100, .shuffle = false}, train::default_normalization(c.data, train_set));
    return train::evaluate(*model, loader);
  };
  train::EvalResult on_cpu = score(Device::cpu()), on_gpu = score(gpu());
  EXPECT_EQ(on_cpu.count, 200);
  EXPECT_NEAR(on_gpu.loss, on_cpu.loss, 1e-4 * (1 + on_cpu.loss));
  EXPECT_NEAR(on_gpu.accuracy, on_cpu.accuracy, 1.0 / 200 + 1e-9);  // at most one borderline image apart
  fs::remove_all(out_gpu);
  fs::remove_all(out_cpu);
}

// The training options of the loss, batches, schedule and weights on --device cuda: class weights
// with label smoothing (the weighted fused kernel), mixup and cutmix (probability targets),
// accumulated batches, a weight average, a plateau schedule and early stopping on a validation
// set, resumed halfway: the same run as on the CPU (to f32 drift).
TEST(CudaTrain, LossBatchAndScheduleOptionsMatchTheCpuRun) {
  GS_REQUIRE_CUDA();
  namespace fs = std::filesystem;
  train::TrainConfig c;
  c.model = "lenet5";
  c.limit_train = 192;
  c.limit_test = 100;
  c.val_fraction = 0.004;  // 240 images
  c.epochs = 3;
  c.seed = 5;
  c.lr = 0.003;
  c.label_smoothing = 0.1;
  c.class_weights = "1,2,1,1,1,1,3,1,1,0.5";
  c.mixup = 0.2;
  c.cutmix = 1.0;
  c.batch_size = 32;
  c.accumulate = 2;
  c.ema = 0.9;
  c.schedule = "plateau:patience=0,factor=0.5";
  c.patience = 2;
  c.progress = false;
  c.tensorboard = false;
  auto [r_gpu, out_gpu] = run_interrupted_and_resumed(c, "cuda", "gs_cuda_options");
  auto [r_cpu, out_cpu] = run_interrupted_and_resumed(c, "cpu", "gs_cuda_options");
  EXPECT_EQ(r_gpu.epochs, r_cpu.epochs);
  EXPECT_EQ(r_gpu.stopped_early, r_cpu.stopped_early);
  EXPECT_NEAR(r_gpu.final_train_loss, r_cpu.final_train_loss, 1e-3 * (1 + r_cpu.final_train_loss));
  EXPECT_NEAR(r_gpu.test_loss, r_cpu.test_loss, 1e-3 * (1 + r_cpu.test_loss));
  // Every epoch's lr and losses.
  auto lines = [](const std::string& path) {
    std::vector<nlohmann::json> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  };
  const auto m_gpu = lines(out_gpu + "/metrics.jsonl"), m_cpu = lines(out_cpu + "/metrics.jsonl");
  ASSERT_EQ(m_gpu.size(), m_cpu.size());
  for (size_t e = 0; e < m_gpu.size(); ++e) {
    EXPECT_DOUBLE_EQ(m_gpu[e]["lr"].get<double>(), m_cpu[e]["lr"].get<double>()) << "epoch " << e + 1;
    for (const char* key : {"train_loss", "val_loss", "test_loss"})
      EXPECT_NEAR(m_gpu[e][key].get<double>(), m_cpu[e][key].get<double>(), 1e-3) << key << ", epoch " << e + 1;
  }
  fs::remove_all(out_gpu);
  fs::remove_all(out_cpu);
}

// Data-parallel training on the GPU (what `mpirun -np N gradscope train --device cuda` runs; ctest
// runs this test alone and under `mpirun -np 2` as cuda_distributed_mpirun_np2): the gradients
// all-reduced from device tensors, the batch-norm buffers (f32 statistics, the i64 step count)
// broadcast to device tensors, a resume; the same run as on the CPU, weights and buffers to f32
// drift; with --sync-bn too (the batch statistics all-reduced from device tensors, forward and
// backward). A net of batch norm, tanh and average pooling: no max-pool ties between the devices.
TEST(CudaTrain, DataParallelMatchesTheCpuRun) {
  GS_REQUIRE_CUDA();
  namespace fs = std::filesystem;
  train::ProcessGroup& world = train::ProcessGroup::world();
  const long id = long(world.broadcast_value(double(::getpid())));  // rank 0's: one directory for the run
  const std::string spec = (fs::temp_directory_path() /
                            ("gs_cuda_ddp_" + std::to_string(id) + "_r" + std::to_string(world.rank()) + ".json"))
                               .string();
  std::ofstream(spec) << R"({"layers": [{"type": "conv2d", "in": 1, "out": 4, "kernel": 3, "padding": 1},
    {"type": "batchnorm2d", "features": 4}, {"type": "tanh"}, {"type": "avgpool2d", "kernel": 2},
    {"type": "flatten"}, {"type": "linear", "in": 784, "out": 10}]})";
  train::TrainConfig c;
  c.model_spec = spec;
  c.limit_train = 256;
  c.limit_test = 100;
  c.epochs = 2;
  c.batch_size = 32;  // per process
  c.seed = 11;
  c.optimizer = "sgd";
  c.lr = 0.05;
  c.momentum = 0.9;
  c.schedule = "none";
  c.clip_norm = 1.0;
  c.progress = false;
  c.tensorboard = false;
  for (bool sync_bn : {false, true}) {
    SCOPED_TRACE(sync_bn ? "--sync-bn" : "per-process batch norm");
    c.sync_bn = sync_bn;
    auto [r_gpu, out_gpu] = run_interrupted_and_resumed(c, "cuda", "gs_cuda_ddp", id);
    auto [r_cpu, out_cpu] = run_interrupted_and_resumed(c, "cpu", "gs_cuda_ddp", id);
    std::printf("data-parallel on cuda: %d process(es)%s\n", world.size(), sync_bn ? ", --sync-bn" : "");
    EXPECT_EQ(r_gpu.epochs, 2);
    EXPECT_NEAR(r_gpu.final_train_loss, r_cpu.final_train_loss, 1e-4 * (1 + r_cpu.final_train_loss));
    EXPECT_NEAR(r_gpu.test_loss, r_cpu.test_loss, 1e-4 * (1 + r_cpu.test_loss));
    if (world.is_main()) {
      const auto gpu_state = io::load_safetensors(out_gpu + "/last.safetensors");
      const auto cpu_state = io::load_safetensors(out_cpu + "/last.safetensors");
      int compared = 0;
      for (const auto& [name, want] : cpu_state.tensors) {
        if (name.rfind("model.", 0) != 0) continue;
        // No ASSERT here: rank 0 leaving the loop early would leave the other ranks waiting for it.
        if (!gpu_state.contains(name)) {
          ADD_FAILURE() << name << " missing on cuda";
          continue;
        }
        const auto a = gpu_state.at(name).to_vector<double>(), b = want.to_vector<double>();
        EXPECT_EQ(a.size(), b.size()) << name;
        size_t off = 0, first = 0;
        for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
          if (!(std::abs(a[i] - b[i]) <= 1e-4 * (1 + std::abs(b[i]))) && off++ == 0) first = i;
        }
        EXPECT_EQ(off, 0u) << name << "[" << first << "]: " << a[first] << " on cuda, " << b[first] << " on cpu";
        ++compared;
      }
      EXPECT_EQ(compared, 9);  // conv w, b; bn weight, bias, running mean, var, num_batches_tracked; linear w, b
      fs::remove_all(out_gpu);
      fs::remove_all(out_cpu);
    }
  }
  fs::remove(spec);
}

}  // namespace
}  // namespace gs::test
