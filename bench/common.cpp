// Zoo layer shapes from forward hooks, the Eigen SGEMM peak, the rate counters and the shared
// main() of the bench_* binaries (see common.h).
#include "bench/common.h"

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>

#include "autograd/tape.h"
#include "kernels/cpu/all_tables.h"
#include "kernels/registry.h"
#include "layers/zoo.h"
#include "tensor/tensor.h"

#ifdef GS_OPENMP
#include <omp.h>
#endif

namespace gs::bench {

namespace {

struct ZooModel {
  const char* name;
  int64_t channels, size;
};
const ZooModel kModels[] = {{"mlp", 1, 28}, {"lenet5", 1, 28}, {"fashionnet", 1, 28}, {"resnet8", 3, 32}};

// Every leaf-module call of every zoo model at batch 1, in execution order.
const std::vector<ZooLayer>& all_layers() {
  static const std::vector<ZooLayer> layers = [] {
    std::vector<ZooLayer> out;
    NoGradGuard no_grad;
    for (const ZooModel& m : kModels) {
      nn::ModulePtr model = nn::make_model(m.name, m.channels, 10, m.size);
      model->eval();
      std::vector<std::pair<std::shared_ptr<nn::Module>, int>> hooks;
      for (auto& [path, module] : model->named_modules()) {
        if (!module->named_children().empty()) continue;
        int id = module->register_forward_hook(
            [&out, path, module, name = m.name](nn::Module& mod, const Tensor& x, const Tensor& y) {
              out.push_back({name, path, mod.type_name(), x.shape(), y.shape(), module});
            });
        hooks.emplace_back(module, id);
      }
      (*model)(zeros({1, m.channels, m.size, m.size}));
      for (auto& [module, id] : hooks) module->remove_forward_hook(id);
    }
    return out;
  }();
  return layers;
}

Shape with_batch(Shape s, int64_t batch) {
  s[0] = batch;
  return s;
}

}  // namespace

std::string ZooLayer::geometry() const {
  std::string text;
  for (size_t i = 1; i < in.size(); ++i) text += (i > 1 ? "x" : "") + std::to_string(in[i]);
  return text;
}

Shape ZooLayer::in_at(int64_t batch) const { return with_batch(in, batch); }
Shape ZooLayer::out_at(int64_t batch) const { return with_batch(out, batch); }

std::vector<ZooLayer> zoo_layers(const std::string& type) {
  std::vector<ZooLayer> out;
  std::set<std::string> seen;
  for (const ZooLayer& l : all_layers()) {
    if (l.type != type) continue;
    std::string key = shape_str(l.in) + shape_str(l.out) + l.module->extra_repr();
    if (seen.insert(key).second) out.push_back(l);
  }
  return out;
}

double gemm_peak_gflops() {
  static const double peak = [] {
    const int n = 1024;
    Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n), c(n, n);
    double best = 0;
    auto start = std::chrono::steady_clock::now();
    for (int rep = 0; rep < 50; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      c.noalias() = a * b;
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      benchmark::DoNotOptimize(c.data());
      if (rep > 0) best = std::max(best, 2.0 * n * n * n / secs / 1e9);  // rep 0 warms caches and threads
      if (rep >= 5 && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > 1.0) break;
    }
    return best;
  }();
  return peak;
}

namespace {
std::chrono::steady_clock::time_point loop_start;  // of the last timed() loop (one benchmark thread)
}  // namespace

benchmark::State& timed(benchmark::State& state) {
  loop_start = std::chrono::steady_clock::now();
  return state;
}

void set_rates(benchmark::State& state, double flops_per_iteration, double bytes_per_iteration) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - loop_start).count();
  const double per_second = static_cast<double>(state.iterations()) / std::max(seconds, 1e-12);
  if (flops_per_iteration > 0) {
    const double gflops = flops_per_iteration * per_second / 1e9;
    state.counters["GFLOP/s"] = gflops;
    state.counters["peak"] = gflops / gemm_peak_gflops();  // fraction of the measured FP32 GEMM peak
  }
  if (bytes_per_iteration > 0) state.counters["GB/s"] = bytes_per_iteration * per_second / 1e9;
}

benchmark::internal::Benchmark* configure(benchmark::internal::Benchmark* b, const std::string& variant,
                                          double flops_per_iteration) {
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
  if (variant == "ref" && flops_per_iteration > kRefFlopLimit) b->Iterations(1);
  return b;
}

int run_main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  int threads = 1;
#ifdef GS_OPENMP
  threads = omp_get_max_threads();
#endif
  const double peak = gemm_peak_gflops();
  benchmark::AddCustomContext("fp32_gemm_peak_gflops", std::to_string(peak));
  benchmark::AddCustomContext("gemm_peak_method", "best of 1024x1024x1024 Eigen SGEMMs, same threads");
  benchmark::AddCustomContext("omp_threads", std::to_string(threads));
  // Ops whose variants no bench_* binary times (a new variant table needs a benchmark too).
  static const std::set<std::string> kTimedOps = {"matmul",
                                                  "conv2d",
                                                  "conv2d_backward_data",
                                                  "conv2d_backward_weight",
                                                  "max_pool2d",
                                                  "max_pool2d_backward",
                                                  // avg_pool2d: no zoo model has an AvgPool2d layer
                                                  "adaptive_avg_pool2d",
                                                  "adaptive_avg_pool2d_backward",
                                                  "batch_norm",
                                                  "batch_norm_backward",
                                                  "batch_norm_double_backward",
                                                  "unary",
                                                  "binary",
                                                  "reduce",
                                                  "softmax",
                                                  "softmax_backward"};
  kernels::register_all_cpu_tables();
  std::string untimed;
  for (const auto& [op, variants] : kernels::list_variants()) {
    if (!kTimedOps.count(op)) untimed += " " + op;
  }
  if (!untimed.empty()) std::fprintf(stderr, "bench: kernel ops no bench binary times yet:%s\n", untimed.c_str());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace gs::bench
