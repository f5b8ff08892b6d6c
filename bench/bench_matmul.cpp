// matmul variants side by side (ref vs eigen), GFLOP/s on square and zoo-model shapes.
#include <benchmark/benchmark.h>

#include "kernels/cpu/gemm.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace {

void bench_gemm(benchmark::State& state, const std::string& variant) {
  int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  gs::Tensor a = gs::randn({M, K}), b = gs::randn({K, N}), c = gs::zeros({M, N});
  auto fn = gs::kernels::gemm_table<float>().get(variant);
  for (auto _ : state) {
    fn(false, false, M, N, K, 1.f, a.data<float>(), K, b.data<float>(), N, 0.f, c.data<float>(), N);
    benchmark::DoNotOptimize(c.data<float>());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * state.iterations(), benchmark::Counter::kIsRate,
                                                 benchmark::Counter::kIs1000);
}

void register_all() {
  // Square sizes, then fashionnet's Linear(3136,128) and Linear(128,10) at batch 64.
  std::vector<std::vector<int64_t>> shapes = {{64, 64, 64}, {256, 256, 256}, {64, 3136, 128}, {64, 128, 10}};
  for (const auto& variant : gs::kernels::gemm_table<float>().names()) {
    for (auto& s : shapes) {
      if (variant == "ref" && s[0] * s[1] * s[2] > 300 * 300 * 300) continue;
      auto* b = benchmark::RegisterBenchmark(("matmul/" + variant).c_str(), bench_gemm, variant);
      b->Args({s[0], s[1], s[2]})->ArgNames({"M", "K", "N"})->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
