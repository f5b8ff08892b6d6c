// GEMM variants side by side (every variant of the registry's gemm table) on the zoo models'
// Linear layers at batch 1, 8, 64, 256 -- forward X W^T, backward-data gY W, backward-weight
// gY^T X -- plus square 256/1024 sizes; GFLOP/s and the fraction of the measured SGEMM peak.
// Then batched raw::matmul against the loop it replaced (a new tensor per batch entry's mm, then
// a copy into the output), and 2-d raw::matmul against its GEMM kernel called directly, each
// pair side by side in one run.
#include "bench/common.h"
#include "kernels/cpu/gemm.h"
#include "tensor/raw_ops.h"
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

// The batched matmul as it was: expand both operands to the batch, then per entry an mm into a
// new tensor and a copy into the output's slice.
gs::Tensor matmul_as_loop(const gs::Tensor& a, const gs::Tensor& b) {
  namespace raw = gs::raw;
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  gs::Shape batch(a.shape().begin(), a.shape().end() - 2);
  gs::Shape ea = batch, eb = batch;
  ea.insert(ea.end(), {M, K});
  eb.insert(eb.end(), {K, N});
  const int64_t B = gs::shape_numel(batch);
  gs::Tensor a3 = raw::reshape(raw::expand(a, ea), {B, M, K}), b3 = raw::reshape(raw::expand(b, eb), {B, K, N});
  gs::Tensor out = gs::empty({B, M, N});
  for (int64_t i = 0; i < B; ++i) {
    gs::Tensor ai = raw::squeeze(raw::narrow(a3, 0, i, 1), 0), bi = raw::squeeze(raw::narrow(b3, 0, i, 1), 0);
    raw::copy_(raw::narrow(out, 0, i, 1), raw::unsqueeze(raw::mm(ai, bi), 0));
  }
  return out;
}

void bench_batched(benchmark::State& state, bool as_loop, gs::Shape a_shape, gs::Shape b_shape) {
  gs::Tensor a = gs::randn(a_shape), b = gs::randn(b_shape);
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1), B = a.numel() / (M * K);
  for (auto _ : gs::bench::timed(state)) {
    gs::Tensor c = as_loop ? matmul_as_loop(a, b) : gs::raw::matmul(a, b);
    benchmark::DoNotOptimize(c.data<float>());
  }
  set_rates(state, 2.0 * B * M * N * K);
}

void add_batched(gs::Shape a, gs::Shape b) {
  const int64_t B = a[0], M = a[1], K = a[2], N = b.back();
  const std::string suffix = std::string(b.size() == 2 ? "/one_b" : "") + "/B:" + std::to_string(B) + "/" +
                             std::to_string(M) + "x" + std::to_string(K) + "x" + std::to_string(N);
  for (bool as_loop : {true, false}) {
    const std::string name = std::string("matmul_batched/") + (as_loop ? "loop" : "raw") + suffix;
    gs::bench::configure(benchmark::RegisterBenchmark(name.c_str(), bench_batched, as_loop, a, b), "",
                         2.0 * B * M * N * K);
  }
}

// raw::matmul on 2-d operands (what Linear runs) against the selected GEMM kernel called
// directly: the front end's cost. (A parallel region around the kernel once halved it.)
void bench_front(benchmark::State& state, bool direct, int64_t M, int64_t K, int64_t N) {
  gs::Tensor a = gs::randn({M, K}), b = gs::randn({K, N}), c = gs::zeros({M, N});
  auto fn = gs::kernels::gemm_table<float>().get();
  for (auto _ : gs::bench::timed(state)) {
    if (direct) {
      fn(false, false, M, N, K, 1.f, a.data<float>(), K, b.data<float>(), N, 0.f, c.data<float>(), N);
      benchmark::ClobberMemory();
    } else {
      gs::Tensor out = gs::raw::matmul(a, b);
      benchmark::DoNotOptimize(out.data<float>());
    }
  }
  set_rates(state, 2.0 * M * N * K);
}

void add_front(int64_t M, int64_t K, int64_t N) {
  for (bool direct : {true, false}) {
    const std::string name = std::string("matmul_front/") + (direct ? "kernel" : "raw") + "/" + std::to_string(M) +
                             "x" + std::to_string(K) + "x" + std::to_string(N);
    gs::bench::configure(benchmark::RegisterBenchmark(name.c_str(), bench_front, direct, M, K, N), "",
                         2.0 * M * N * K);
  }
}

void register_all() {
  add_front(64, 3136, 128);  // fashionnet's first Linear at batch 64
  add_front(64, 256, 128);   // mlp's second
  add_batched({256, 16, 16}, {256, 16, 16});
  add_batched({64, 64, 64}, {64, 64, 64});
  add_batched({8, 256, 256}, {8, 256, 256});
  add_batched({32, 64, 128}, {128, 256});  // a Linear layer on 32 sequences of 64

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
