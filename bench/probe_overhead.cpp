// Cost of the probes (inspect/probes.h) on fashionnet training, measured in one process with the
// configurations interleaved block by block, so that load on a shared machine hits all of them alike:
//   build/bench/probe_overhead [--rounds 8] [--block 50] [--threads 2] [--batch 64] [--json out.json]
// Each round runs one block of --block training steps per configuration, in a shuffled order, on the
// same model and the same pre-loaded batches; the ratio of a block's time to the plain block of the
// same round is taken per round, and the median over rounds is reported (with min and max).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "autograd/ops.h"
#include "inspect/probes.h"
#include "io/dataloader.h"
#include "io/dataset.h"
#include "optim/optimizer.h"
#include "train/trainer.h"

namespace {

using namespace gs;
namespace fs = std::filesystem;

struct Config {
  std::string name;
  int64_t every;         // 0: no Inspector at all
  bool detect_anomaly;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int64_t flag(int argc, char** argv, const char* name, int64_t fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::stoll(argv[i + 1]);
  return fallback;
}

std::string string_flag(int argc, char** argv, const char* name) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::puts("probe_overhead [--rounds R] [--block S] [--threads T] [--batch B] [--only 50|1|anomaly] [--json FILE]\n"
                "Times fashionnet training steps with probes off, --probe-every 50, --probe-every 1 and\n"
                "--detect-anomaly, interleaved block by block; prints median step-time ratios vs probes off.");
      return 0;
    }
  }
  const int64_t rounds = flag(argc, argv, "--rounds", 8);
  const int64_t block = flag(argc, argv, "--block", 50);
  const int64_t batch_size = flag(argc, argv, "--batch", 64);
  const int threads = train::apply_runtime_settings(static_cast<int>(flag(argc, argv, "--threads", 2)), "");
  const std::string json_path = string_flag(argc, argv, "--json");

  try {
    // Data: a few batches of Fashion-MNIST, normalised as `train` does, loaded once and cycled.
    io::Dataset data = io::load_dataset("fashion-mnist", true);
    io::DataLoader loader(data, {.batch_size = batch_size, .shuffle = false, .prefetch = 0},
                          train::default_normalization("fashion-mnist", data));
    std::vector<io::Batch> batches(8);
    for (auto& b : batches) loader.next(b);

    train::TrainConfig tc;  // the train defaults: fashionnet, AdamW lr 2e-3 wd 5e-4
    manual_seed(0);
    nn::ModulePtr model = train::build_model(tc, 1, 10, 28);
    auto optimizer = optim::make_optimizer(tc.optimizer, model->parameters(),
                                           {{"lr", tc.lr}, {"weight_decay", tc.weight_decay}});
    const fs::path sink_dir = fs::temp_directory_path() / ("gs_probe_overhead_" + std::to_string(::getpid()));
    fs::create_directories(sink_dir);

    std::vector<Config> configs = {{"probes off", 0, false},
                                   {"--probe-every 50", 50, false},
                                   {"--probe-every 1", 1, false},
                                   {"--detect-anomaly", 0, true}};
    // --only 1: probes off and --probe-every 1 only (for profiling one configuration against the plain one).
    const std::string only = string_flag(argc, argv, "--only");
    if (!only.empty()) {
      std::erase_if(configs, [&](const Config& c) {
        return c.every != 0 && std::to_string(c.every) != only && !(only == "anomaly" && c.detect_anomaly);
      });
      std::erase_if(configs, [&](const Config& c) { return c.every == 0 && c.detect_anomaly && only != "anomaly"; });
    }
    int64_t global_step = 0;
    // One block of `block` steps under a configuration; returns seconds per step.
    auto run_block = [&](const Config& cfg) {
      std::unique_ptr<inspect::Inspector> probes;
      if (cfg.every > 0 || cfg.detect_anomaly) {
        inspect::ProbeOptions o;
        o.every = cfg.every;
        o.detect_anomaly = cfg.detect_anomaly;
        o.tensorboard_dir = cfg.every > 0 ? sink_dir.string() : "";  // the sinks `train` writes
        o.jsonl_path = cfg.every > 0 ? (sink_dir / "probes.jsonl").string() : "";
        probes = std::make_unique<inspect::Inspector>(model, o);
      }
      model->train();
      auto t0 = std::chrono::steady_clock::now();
      for (int64_t s = 0; s < block; ++s, ++global_step) {
        const io::Batch& b = batches[global_step % batches.size()];
        // Sampled steps fall at multiples of `every` counted from the block start, as in a run.
        if (probes) probes->begin_step(s);
        Tensor loss = cross_entropy(model->operator()(b.images), b.labels);
        if (probes) probes->after_forward(loss);
        optimizer->zero_grad();
        backward(loss);
        if (probes) probes->after_backward();
        if (probes) probes->after_clip(false);  // no clipping, as in `train`'s defaults
        optimizer->step();
        if (probes) probes->after_step(optimizer->lr());
        (void)loss.item();  // the loop reads the loss each step, as `train` does
      }
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / block;
    };

    std::fprintf(stderr, "probe_overhead: fashionnet, batch %lld, %d threads, %lld rounds x %lld steps per config\n",
                 (long long)batch_size, threads, (long long)rounds, (long long)block);
    run_block(configs[0]);  // warm-up: allocator caches, first-touch pages
    std::vector<std::vector<double>> seconds(configs.size()), ratios(configs.size());
    std::mt19937 shuffle_rng(1234);
    for (int64_t r = 0; r < rounds; ++r) {
      std::vector<size_t> order(configs.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::shuffle(order.begin(), order.end(), shuffle_rng);
      std::vector<double> round_seconds(configs.size());
      for (size_t i : order) round_seconds[i] = run_block(configs[i]);
      for (size_t i = 0; i < configs.size(); ++i) {
        seconds[i].push_back(round_seconds[i]);
        ratios[i].push_back(round_seconds[i] / round_seconds[0]);
      }
      std::fprintf(stderr, "  round %lld/%lld done\n", (long long)r + 1, (long long)rounds);
    }
    fs::remove_all(sink_dir);

    nlohmann::json out{{"model", "fashionnet"}, {"batch", batch_size}, {"threads", threads},
                       {"rounds", rounds}, {"block_steps", block}, {"configs", nlohmann::json::array()}};
    std::printf("%-20s %12s %14s %10s %10s\n", "config", "ms/step", "ratio median", "min", "max");
    for (size_t i = 0; i < configs.size(); ++i) {
      double ms = 1e3 * median(seconds[i]);
      double med = median(ratios[i]);
      double lo = *std::min_element(ratios[i].begin(), ratios[i].end());
      double hi = *std::max_element(ratios[i].begin(), ratios[i].end());
      std::printf("%-20s %12.2f %14.3f %10.3f %10.3f\n", configs[i].name.c_str(), ms, med, lo, hi);
      out["configs"].push_back({{"name", configs[i].name}, {"ms_per_step_median", ms}, {"ratio_median", med},
                                {"ratio_min", lo}, {"ratio_max", hi}, {"ratios", ratios[i]}});
    }
    if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  } catch (const std::exception& e) {
    std::fprintf(stderr, "probe_overhead: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
