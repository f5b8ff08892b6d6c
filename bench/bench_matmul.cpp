// GEMM variants side by side (every variant of the registry's gemm table) on the zoo models'
// Linear layers at batch 1, 8, 64, 256 -- forward X W^T, backward-data gY W, backward-weight
// gY^T X -- plus square 256/1024 sizes; GFLOP/s and the fraction of the measured SGEMM peak.
#include "bench/common.h"
#include "kernels/cpu/gemm.h"
#include "tensor/tensor.h"

namespace {

using gs::bench::set_rates;

struct Gemm {
  bool trans_a, trans_b;
  int64_t M, N, K;
};

void bench_gemm(benchmark::State& state, std::string variant, Gemm g) {
  gs::Tensor a = gs::randn({g.trans_a ? g.K : g.M, g.trans_a ? g.M : g.K});
  gs::Tensor b = gs::randn({g.trans_b ? g.N : g.K, g.trans_b ? g.K : g.N});
  gs::Tensor c = gs::zeros({g.M, g.N});
  auto fn = gs::kernels::gemm_table<float>().get(variant);
  const int64_t lda = a.shape()[1], ldb = b.shape()[1];
  for (auto _ : gs::bench::timed(state)) {
    fn(g.trans_a, g.trans_b, g.M, g.N, g.K, 1.f, a.data<float>(), lda, b.data<float>(), ldb, 0.f, c.data<float>(), g.N);
    benchmark::ClobberMemory();
  }
  set_rates(state, 2.0 * g.M * g.N * g.K);
}

void add(const std::string& name, const std::string& variant, Gemm g) {
  gs::bench::configure(benchmark::RegisterBenchmark(name.c_str(), bench_gemm, variant, g), variant,
                       2.0 * g.M * g.N * g.K);
}

void register_all() {
  const auto& table = gs::kernels::gemm_table<float>();
  for (const auto& variant : table.names()) {
    for (int64_t n : {256, 1024}) {
      add("gemm/" + variant + "/square/" + std::to_string(n), variant, {false, false, n, n, n});
    }
    for (const auto& layer : gs::bench::zoo_layers("Linear")) {
      const int64_t in = layer.in.back(), out = layer.out.back();
      for (int64_t batch : gs::bench::kBatches) {
        const std::string suffix =
            "/" + layer.label() + "/N:" + std::to_string(batch) + "/" + std::to_string(in) + "->" + std::to_string(out);
        add("gemm/" + variant + "/forward" + suffix, variant, {false, true, batch, out, in});
        add("gemm/" + variant + "/backward_data" + suffix, variant, {false, false, batch, in, out});
        add("gemm/" + variant + "/backward_weight" + suffix, variant, {true, false, out, in, batch});
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  return gs::bench::run_main(argc, argv);
}
