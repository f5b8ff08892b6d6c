// Cost of the probes' statistics (inspect/stats.h), GB/s: tensor_stats with and without the
// histogram, and the all_finite check that NaN/Inf origin runs on every op output, on the
// activation sizes of the zoo models' ReLU inputs at batch 1, 8, 64, 256 (from a forward pass).
// A sampled probe step reads every module output and output gradient once: these rates bound it.
#include "bench/common.h"
#include "inspect/stats.h"
#include "tensor/random.h"

namespace {

// N(0,1) data as a ReLU input sees it, or max(x, 0) as its output (half exact zeros: one hot bucket).
gs::Tensor activation(const gs::Shape& shape, bool relu_output) {
  gs::Tensor x = gs::randn(shape);
  if (relu_output) {
    float* p = x.data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) p[i] = p[i] > 0 ? p[i] : 0.0f;
  }
  return x;
}

void bench_stats(benchmark::State& state, bool histogram, bool relu_output, gs::Shape shape) {
  gs::Tensor x = activation(shape, relu_output);
  for (auto _ : gs::bench::timed(state)) {
    gs::inspect::TensorStats s = gs::inspect::tensor_stats(x, histogram);
    benchmark::DoNotOptimize(s.sum);
  }
  gs::bench::set_rates(state, 0, double(x.numel()) * sizeof(float));
}

void bench_all_finite(benchmark::State& state, gs::Shape shape) {
  gs::Tensor x = gs::randn(shape);
  for (auto _ : gs::bench::timed(state)) {
    bool ok = gs::inspect::all_finite(x);
    benchmark::DoNotOptimize(ok);
  }
  gs::bench::set_rates(state, 0, double(x.numel()) * sizeof(float));
}

}  // namespace

int main(int argc, char** argv) {
  for (const auto& layer : gs::bench::zoo_layers("ReLU")) {
    for (int64_t batch : gs::bench::kBatches) {
      gs::Shape shape = layer.in_at(batch);
      std::string tail = "/" + layer.label() + "/N:" + std::to_string(batch) + "/" + layer.geometry();
      for (bool relu_output : {false, true}) {
        for (bool histogram : {true, false}) {
          std::string name = std::string("tensor_stats/") + (histogram ? "histogram" : "no_histogram") +
                             (relu_output ? "/relu_out" : "/relu_in") + tail;
          gs::bench::configure(
              benchmark::RegisterBenchmark(name.c_str(), bench_stats, histogram, relu_output, shape), "", 0);
        }
      }
      gs::bench::configure(benchmark::RegisterBenchmark(("all_finite" + tail).c_str(), bench_all_finite, shape), "", 0);
    }
  }
  return gs::bench::run_main(argc, argv);
}
