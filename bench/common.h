// Shared pieces of the bench_* binaries: the layer shapes of the zoo models (found by running
// each model of layers/zoo.h once with forward hooks, not typed in), the batch sizes, the
// machine's FP32 GEMM peak measured at start (a large Eigen SGEMM), and the GFLOP/s, fraction of
// peak and GB/s counters. Each binary registers one benchmark per (op, variant of the registry, shape).
#pragma once
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "layers/module.h"
#include "tensor/shape.h"

namespace gs::bench {

// Batch sizes every layer is timed at.
inline const std::vector<int64_t> kBatches = {1, 8, 64, 256};

// One leaf module of a zoo model, as met in a batch-1 forward pass.
struct ZooLayer {
  std::string model;  // "fashionnet"
  std::string path;   // "4" or "layer2.0.conv1"
  std::string type;   // "Conv2d", "Linear", "BatchNorm2d", "MaxPool2d", ...
  Shape in, out;      // at batch 1
  std::shared_ptr<nn::Module> module;
  std::string label() const { return model + "." + path; }
  std::string geometry() const;      // the input without the batch: "32x14x14" (regex-friendly names)
  Shape in_at(int64_t batch) const;  // in with the batch size replaced
  Shape out_at(int64_t batch) const;
};

// The leaf layers of type `type` over mlp, lenet5, fashionnet (1x28x28) and resnet8 (3x32x32),
// each distinct geometry once (resnet8 repeats some), in model order.
std::vector<ZooLayer> zoo_layers(const std::string& type);

// FP32 GEMM peak of this machine in GFLOP/s with the current OpenMP threads: the best of several
// 1024^3 Eigen SGEMMs, measured once (on first call) in this process.
double gemm_peak_gflops();

// Counters: "GFLOP/s" and "peak" (fraction of gemm_peak_gflops()) from the flops of one
// iteration; "GB/s" from the bytes moved by one iteration (0: none). Rates are over the wall time
// of the last loop started with `for (auto _ : timed(state))` (benchmarks here run on one
// benchmark thread; the kernels' OpenMP threads are inside that time).
benchmark::State& timed(benchmark::State& state);
void set_rates(benchmark::State& state, double flops_per_iteration, double bytes_per_iteration = 0);

// Registers with wall-clock time (kernels use OpenMP threads) in microseconds; a "ref" variant
// with more than kRefFlopLimit flops per iteration runs one iteration only (it is the truth, not a
// contender, and would otherwise take minutes at batch 256).
inline constexpr double kRefFlopLimit = 2e8;
benchmark::internal::Benchmark* configure(benchmark::internal::Benchmark* b, const std::string& variant,
                                          double flops_per_iteration);

// Measures the peak, notes it (and the threads) in the context, warns on stderr about registered
// kernel ops that no bench binary times, then runs the benchmarks. Returns main's exit code.
int run_main(int argc, char** argv);

}  // namespace gs::bench
