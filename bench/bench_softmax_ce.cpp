// The classifier head of every zoo model, [N,10] at batch 1, 8, 64, 256: the fused
// softmax-cross-entropy forward and backward (kernels/cpu/softmax.h), and every variant of the
// registry's softmax / softmax_backward tables (log-softmax) on the same logits. Tiny and
// memory-bound: time per call is what matters; GB/s counts the logits read and written once.
#include <algorithm>

#include "bench/common.h"
#include "kernels/cpu/softmax.h"
#include "tensor/tensor.h"

namespace {

void bench_cross_entropy(benchmark::State& state, int64_t rows, int64_t cols, bool backward) {
  gs::Tensor logits = gs::randn({rows, cols}), log_probs = gs::empty({rows, cols}), loss = gs::empty({rows});
  gs::Tensor target = gs::randint(0, cols, {rows}), grad_loss = gs::full({rows}, 1.0 / rows),
             grad_logits = gs::empty({rows, cols});
  gs::kernels::cross_entropy_forward<float>(logits.data<float>(), target.data<int64_t>(), nullptr, loss.data<float>(),
                                            log_probs.data<float>(), rows, cols, 0.0, -100);
  for (auto _ : gs::bench::timed(state)) {
    if (backward) {
      gs::kernels::cross_entropy_backward<float>(log_probs.data<float>(), target.data<int64_t>(), nullptr, 0.0,
                                                 grad_loss.data<float>(), grad_logits.data<float>(), rows, cols, 0.0,
                                                 -100);
    } else {
      gs::kernels::cross_entropy_forward<float>(logits.data<float>(), target.data<int64_t>(), nullptr,
                                                loss.data<float>(), log_probs.data<float>(), rows, cols, 0.0, -100);
    }
    benchmark::ClobberMemory();
  }
  gs::bench::set_rates(state, 4.0 * rows * cols, 2 * 4.0 * rows * cols);
}

void bench_log_softmax(benchmark::State& state, std::string variant, int64_t rows, int64_t cols, bool backward) {
  gs::Tensor x = gs::randn({rows, cols}), y = gs::empty({rows, cols}), gy = gs::randn({rows, cols}),
             gx = gs::empty({rows, cols});
  gs::kernels::softmax_table<float>().get("ref")(x.data<float>(), y.data<float>(), rows, cols, true);
  if (backward) {
    auto fn = gs::kernels::softmax_backward_table<float>().get(variant);
    for (auto _ : gs::bench::timed(state)) {
      fn(y.data<float>(), gy.data<float>(), gx.data<float>(), rows, cols, true);
      benchmark::ClobberMemory();
    }
  } else {
    auto fn = gs::kernels::softmax_table<float>().get(variant);
    for (auto _ : gs::bench::timed(state)) {
      fn(x.data<float>(), y.data<float>(), rows, cols, true);
      benchmark::ClobberMemory();
    }
  }
  gs::bench::set_rates(state, 4.0 * rows * cols, (backward ? 3 : 2) * 4.0 * rows * cols);
}

void register_all() {
  // The heads' widths, from the zoo models' last Linear layers (all 10 classes today).
  std::vector<int64_t> widths;
  for (const auto& layer : gs::bench::zoo_layers("Linear")) {
    if (layer.out.back() <= 10 && std::find(widths.begin(), widths.end(), layer.out.back()) == widths.end()) {
      widths.push_back(layer.out.back());
    }
  }
  for (int64_t cols : widths) {
    for (int64_t rows : gs::bench::kBatches) {
      std::string shape = "/N:" + std::to_string(rows) + "/C:" + std::to_string(cols);
      for (bool backward : {false, true}) {
        std::string name = std::string("cross_entropy") + (backward ? "_backward" : "") + "/fused" + shape;
        gs::bench::configure(benchmark::RegisterBenchmark(name.c_str(), bench_cross_entropy, rows, cols, backward),
                             "fused", 0);
      }
      for (const auto& variant : gs::kernels::softmax_table<float>().names()) {
        gs::bench::configure(benchmark::RegisterBenchmark(("log_softmax/" + variant + shape).c_str(), bench_log_softmax,
                                                          variant, rows, cols, false),
                             variant, 0);
      }
      for (const auto& variant : gs::kernels::softmax_backward_table<float>().names()) {
        gs::bench::configure(benchmark::RegisterBenchmark(("log_softmax_backward/" + variant + shape).c_str(),
                                                          bench_log_softmax, variant, rows, cols, true),
                             variant, 0);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  return gs::bench::run_main(argc, argv);
}
