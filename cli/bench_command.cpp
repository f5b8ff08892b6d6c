// `gradscope bench`: whole-model throughput. Training: warm-up steps, then N timed steps of
// zero_grad / forward / cross-entropy / backward / optimizer step on cached batches (real data or
// synthetic), reporting images/s, ms per step (and per phase), peak RSS and caching-allocator
// counters as one JSON line. --inference times eval-mode forward passes instead; --grad-penalty
// adds train's input-gradient penalty, its create_graph gradient timed as a phase. Under mpirun
// (training only) every process times its steps on its own shard of the batches, with `train`'s
// collectives (the buffer broadcast before the forward, the gradient all-reduce) as phases, and rank 0 prints images/s
// of all processes together. Kernel-level benchmarks are the Google Benchmark binaries in bench/;
// bench/compare_pytorch.py and bench/ddp_scaling.py run this.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "autograd/tape.h"
#include "cli/commands.h"
#include "io/dataloader.h"
#include "optim/optimizer.h"
#include "tensor/allocator.h"
#include "tensor/cuda.h"
#include "tensor/random.h"
#include "train/distributed.h"
#include "train/trainer.h"

namespace gs::cli {

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

struct BenchOptions {
  int64_t steps = 50;
  int64_t warmup = 5;
  bool inference = false;
  bool synthetic = false;
  int64_t cached_batches = 16;
};

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// mean, median, min, max, p90 of a list of durations in ms.
json summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (double v : ms) sum += v;
  const size_t n = ms.size();
  double median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  size_t p90 = std::min(n - 1, static_cast<size_t>(std::ceil(0.9 * n)) - 1);
  return {{"mean", sum / n}, {"median", median}, {"min", ms.front()}, {"max", ms.back()}, {"p90", ms[p90]}};
}

// A "Key:   123 kB" line of /proc/self/status in MiB (-1 where /proc is absent).
double proc_status_mib(const std::string& key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  }
  return -1;
}

json memory_json(const AllocatorStats& before, const AllocatorStats& after) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return {{"peak_rss_mib", usage.ru_maxrss / 1024.0},  // ru_maxrss is in KiB on Linux
          {"rss_mib", proc_status_mib("VmRSS")},
          {"allocator",
           {{"bytes_in_use", after.bytes_in_use},
            {"peak_bytes_in_use", after.peak_bytes_in_use},
            {"bytes_cached", after.bytes_cached},
            {"system_allocs_total", after.system_allocs},
            // Allocations that reached the system allocator during the timed steps: 0 when the caching
            // allocator serves every buffer of the steady-state step.
            {"system_allocs_timed", after.system_allocs - before.system_allocs},
            {"cache_hits_timed", after.cache_hits - before.cache_hits}}}};
}

// The batches to cycle through: the first `count` of a shuffled epoch of the data set (default
// normalisation), or synthetic N(0,1) images with uniform labels in the zoo model's native size.
// Data-parallel, rank r of N takes shard r of that epoch (real data) or its own seed (synthetic).
std::vector<io::Batch> make_batches(const train::TrainConfig& c, const BenchOptions& o, int64_t count,
                                    const train::ProcessGroup& world, int64_t& channels, int64_t& classes,
                                    int64_t& size) {
  std::vector<io::Batch> batches;
  if (o.synthetic) {
    channels = c.model == "resnet8" ? 3 : 1;
    size = c.model == "resnet8" ? 32 : 28;
    classes = 10;
    Generator gen(c.seed + static_cast<uint64_t>(world.rank()) * 0x9E3779B97F4A7C15ull);
    for (int64_t i = 0; i < count; ++i) {
      io::Batch b;
      b.images = randn({c.batch_size, channels, size, size}, {}, &gen);
      b.labels = randint(0, classes, {c.batch_size}, &gen);
      batches.push_back(std::move(b));
    }
    return batches;
  }
  io::Dataset data = io::load_dataset(c.data, true);
  const Shape& s = data.images.shape();
  GS_CHECK(c.batch_size * world.size() <= data.size(),
           "bench: --batch %lld x %d processes is larger than the data set %s (%lld images)", (long long)c.batch_size,
           world.size(), c.data.c_str(), (long long)data.size());
  channels = s[1], size = s[2], classes = data.num_classes;
  io::DataLoader loader(data,
                        {.batch_size = c.batch_size,
                         .shuffle = true,
                         .drop_last = true,
                         .seed = c.seed,
                         .prefetch = 0,
                         .num_shards = world.size(),
                         .shard_index = world.rank()},
                        train::default_normalization(c.data, data));
  loader.start_epoch(0);
  io::Batch b;
  while (static_cast<int64_t>(batches.size()) < count && loader.next(b)) batches.push_back(b);
  return batches;
}

void run_bench(const train::TrainConfig& c, const BenchOptions& o) {
  GS_CHECK(c.batch_size > 0, "bench: --batch must be positive, got %lld", (long long)c.batch_size);
  GS_CHECK(o.steps > 0, "bench: --steps must be positive, got %lld", (long long)o.steps);
  GS_CHECK(o.warmup >= 0, "bench: --warmup must be >= 0, got %lld", (long long)o.warmup);
  GS_CHECK(!o.synthetic || c.model_spec.empty(), "bench: --synthetic needs a zoo --model, not --model-spec");
  GS_CHECK(c.grad_penalty >= 0 && std::isfinite(c.grad_penalty),
           "bench: --grad-penalty must be a finite number >= 0, got %g", c.grad_penalty);
  GS_CHECK(!o.inference || c.grad_penalty == 0, "bench: --grad-penalty times training steps; drop --inference");
  train::ProcessGroup& world = train::ProcessGroup::world();
  GS_CHECK(!o.inference || world.size() == 1,
           "bench: --inference runs in one process; under mpirun (%d processes) bench times data-parallel training",
           world.size());
  const int threads = train::apply_runtime_settings(c.threads, c.kernels);
  manual_seed(c.seed);

  int64_t channels = 0, classes = 0, size = 0;
  auto data_start = Clock::now();
  std::vector<io::Batch> batches =
      make_batches(c, o, std::min(o.cached_batches, o.steps + o.warmup), world, channels, classes, size);
  const double data_ms = ms_since(data_start);
  nn::ModulePtr model = train::build_model(c, channels, classes, size);
  // --device: the model and the cached batches move there before timing (the data stays off the clock).
  const Device device = train::run_device(c);
  model->to(device);
  train::apply_sync_bn(c, *model);     // its collectives are timed within forward and backward
  std::vector<Tensor> state, buffers;  // rank 0's initial weights and buffers, as `train` starts
  for (const auto& [name, t] : model->state_dict()) state.push_back(t);
  for (const auto& [name, t] : model->named_buffers()) buffers.push_back(t);
  world.broadcast(state);
  for (auto& b : batches) b.images = b.images.to(device), b.labels = b.labels.to(device);

  json out{{"command", "bench"},
           {"mode", o.inference ? "inference" : "train"},
           {"model", c.model_spec.empty() ? c.model : c.model_spec},
           {"parameters", model->num_parameters()},
           {"data", o.synthetic ? "synthetic" : c.data},
           {"input", {channels, size, size}},
           {"batch", c.batch_size},  // per process
           {"processes", world.size()},
           {"sync_bn", c.sync_bn},
           {"grad_penalty", c.grad_penalty},
           {"recompute_segments", c.recompute_segments},
           {"steps", o.steps},
           {"warmup", o.warmup},
           {"threads", threads},
           {"device", c.device},
           {"kernels", c.kernels},
           {"cached_batches", batches.size()},
           {"data_load_ms", data_ms}};

  std::vector<double> step_ms, broadcast_ms, forward_ms, input_grad_ms, backward_ms, all_reduce_ms, optimizer_ms;
  // Phase boundaries wait for the GPU, so each phase holds its kernels' time, not their launches.
  auto sync = [&] {
    if (device.is_cuda()) cuda::synchronize(device.index);
  };
  AllocatorStats before{};
  double first_loss = NAN, last_loss = NAN;
  if (o.inference) {
    model->eval();
    NoGradGuard no_grad;
    volatile float sink = 0;
    for (int64_t i = 0; i < o.warmup + o.steps; ++i) {
      if (i == o.warmup) {  // as training below: the peak of the timed steps, not of loading the data
        before = CpuAllocator::instance().stats();
        CpuAllocator::instance().reset_peak();
      }
      const io::Batch& b = batches[i % batches.size()];
      auto t0 = Clock::now();
      Tensor logits = (*model)(b.images);
      sink = logits.to(Device::cpu()).data<float>()[0];  // uses the result (and waits for a GPU)
      if (i >= o.warmup) step_ms.push_back(ms_since(t0));
    }
    (void)sink;
    out["latency_ms"] = summarize(step_ms);
  } else {
    model->train();
    const std::vector<Tensor> parameters = model->parameters();
    auto optimizer = optim::make_optimizer(c.optimizer, parameters, c.optimizer_hyper());
    out["optimizer"] = c.optimizer;
    out["lr"] = c.lr;
    for (int64_t i = 0; i < o.warmup + o.steps; ++i) {
      if (i == o.warmup) {
        before = CpuAllocator::instance().stats();
        CpuAllocator::instance().reset_peak();
      }
      const io::Batch& b = batches[i % batches.size()];
      auto t0 = Clock::now();
      double bc = 0;
      if (world.size() > 1) {  // the trainer's collectives: rank 0's buffers before the forward
        world.broadcast(buffers);
        bc = ms_since(t0);
      }
      optimizer->zero_grad();
      Tensor input = c.grad_penalty > 0 ? b.images.detach().set_requires_grad(true) : b.images;
      Tensor loss = cross_entropy((*model)(input), b.labels);
      sync();
      const double f = ms_since(t0);
      // --grad-penalty: the trainer's objective; its create_graph input gradient is a phase.
      Tensor objective = loss;
      double fg = f;
      if (c.grad_penalty > 0) {
        objective = train::add_grad_penalty(loss, input, b.labels.numel(), c.grad_penalty).objective;
        sync();
        fg = ms_since(t0);
      }
      backward(objective);
      sync();
      const double fb = ms_since(t0);
      double fba = fb;
      if (world.size() > 1) {  // ... and the gradient averaging (train/distributed.h)
        std::vector<Tensor> grads;
        for (const Tensor& p : parameters) grads.push_back(p.grad());
        world.all_reduce_mean(grads);
        fba = ms_since(t0);
      }
      optimizer->step();
      const double l = loss.item();
      const double total = ms_since(t0);
      GS_CHECK(std::isfinite(l), "bench: loss became %g at step %lld; lower --lr", l, (long long)i);
      if (i == 0) first_loss = l;
      last_loss = l;
      if (i < o.warmup) continue;
      step_ms.push_back(total);
      broadcast_ms.push_back(bc);
      forward_ms.push_back(f - bc);
      input_grad_ms.push_back(fg - f);
      backward_ms.push_back(fb - fg);
      all_reduce_ms.push_back(fba - fb);
      optimizer_ms.push_back(total - fba);
    }
    double total_ms = 0;
    for (double v : step_ms) total_ms += v;
    // Every process's step ends in the same all-reduce, so rank 0's step times are the run's, and
    // each step trains batch x processes images.
    out["images_per_s"] = c.batch_size * world.size() * static_cast<double>(o.steps) / (total_ms / 1000.0);
    out["ms_per_step"] = summarize(step_ms);
    out["phase_ms_mean"] = {{"forward_loss", summarize(forward_ms)["mean"]},
                            {"backward", summarize(backward_ms)["mean"]},
                            {"optimizer", summarize(optimizer_ms)["mean"]}};
    if (c.grad_penalty > 0) out["phase_ms_mean"]["input_grad"] = summarize(input_grad_ms)["mean"];
    if (world.size() > 1) {
      out["phase_ms_mean"]["broadcast_buffers"] = summarize(broadcast_ms)["mean"];
      out["phase_ms_mean"]["all_reduce"] = summarize(all_reduce_ms)["mean"];
    }
    out["first_loss"] = first_loss;
    out["last_loss"] = last_loss;
  }
  if (o.inference) out["images_per_s"] = c.batch_size * 1000.0 / out["latency_ms"]["mean"].get<double>();
  const json memory = memory_json(before, CpuAllocator::instance().stats());
  for (auto& [k, v] : memory.items()) out[k] = v;  // rank 0's
  if (world.is_main()) std::printf("%s\n", out.dump().c_str());
}

void add_bench(CLI::App& app) {
  auto config = std::make_shared<train::TrainConfig>();
  auto options = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "whole-model training (or --inference) throughput: images/s, ms/step, peak RSS, allocator counters; prints JSON. "
      "Under mpirun: data-parallel training steps (--batch per process; the buffer broadcast and the gradient "
      "all-reduce timed as phases)");
  train::TrainConfig& c = *config;
  BenchOptions& o = *options;
  add_model_data_flags(cmd, c);
  cmd->add_option("--batch", c.batch_size, "batch size (per process under mpirun)")->capture_default_str();
  cmd->add_option("--steps", o.steps, "timed steps")->capture_default_str();
  cmd->add_option("--warmup", o.warmup, "untimed steps first")->capture_default_str();
  cmd->add_flag("--inference", o.inference, "time eval-mode forward passes (no grad) instead of training steps");
  cmd->add_flag(
      "--synthetic", o.synthetic,
      "random N(0,1) images in the zoo model's input size (resnet8 3x32x32, others 1x28x28) instead of --data");
  cmd->add_option("--cached-batches", o.cached_batches, "distinct batches prepared before timing, then cycled")
      ->capture_default_str();
  cmd->add_option("--optimizer", c.optimizer, "sgd | adam | adamw | rprop | rmsprop (train's defaults)")
      ->capture_default_str();
  cmd->add_option("--lr", c.lr, "learning rate (constant: no schedule)")->capture_default_str();
  cmd->add_option("--weight-decay", c.weight_decay, "weight decay (decoupled for adamw)")->capture_default_str();
  cmd->add_option("--momentum", c.momentum, "momentum (sgd, rmsprop)")->capture_default_str();
  cmd->add_option("--seed", c.seed, "seed for init, data order and synthetic data")->capture_default_str();
  add_sync_bn_flag(cmd, c);
  add_grad_penalty_flag(cmd, c);
  add_recompute_flag(cmd, c);
  register_action(cmd, [config, options] {
    GS_CHECK(options->cached_batches > 0, "bench: --cached-batches must be positive, got %lld",
             (long long)options->cached_batches);
    run_bench(*config, *options);
  });
}

}  // namespace

const CommandRegistration register_bench{90, add_bench};

}  // namespace gs::cli
