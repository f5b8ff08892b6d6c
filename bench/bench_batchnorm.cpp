// Batch-norm variants side by side (every variant of the registry's batch_norm,
// batch_norm_backward and batch_norm_double_backward tables) on the zoo models' BatchNorm2d layers
// (fashionnet, resnet8) at batch 1, 8, 64, 256: training forward (batch statistics, running
// update), eval forward (running statistics), training backward and training double backward (a
// create_graph backward differentiated again, as a gradient penalty does). Memory-bound: GB/s
// counts the minimum traffic.
#include "bench/common.h"
#include "kernels/cpu/batchnorm.h"
#include "tensor/tensor.h"

namespace {

using gs::kernels::BatchNormShape;

enum class Mode { TrainForward, EvalForward, Backward, DoubleBackward };

void bench_batch_norm(benchmark::State& state, BatchNormShape s, Mode mode, std::string variant) {
  gs::Tensor x = gs::randn({s.N, s.C, s.L}), y = gs::empty({s.N, s.C, s.L}), gy = gs::randn({s.N, s.C, s.L});
  gs::Tensor gamma = gs::rand({s.C}), beta = gs::randn({s.C}), running_mean = gs::zeros({s.C}),
             running_var = gs::ones({s.C}), save_mean = gs::empty({s.C}), save_invstd = gs::empty({s.C});
  gs::Tensor gx = gs::empty({s.N, s.C, s.L}), ggamma = gs::empty({s.C}), gbeta = gs::empty({s.C});
  // Statistics for the backward pass, from the reference forward.
  gs::kernels::batch_norm_table<float>().get("ref")(s, x.data<float>(), gamma.data<float>(), beta.data<float>(),
                                                    nullptr, nullptr, y.data<float>(), save_mean.data<float>(),
                                                    save_invstd.data<float>(), true, 0.1, 1e-5);
  const double elements = double(s.N * s.C * s.L);
  if (mode == Mode::Backward) {
    auto fn = gs::kernels::batch_norm_backward_table<float>().get(variant);
    for (auto _ : gs::bench::timed(state)) {
      fn(s, x.data<float>(), gy.data<float>(), gamma.data<float>(), save_mean.data<float>(), save_invstd.data<float>(),
         gx.data<float>(), ggamma.data<float>(), gbeta.data<float>(), true);
      benchmark::ClobberMemory();
    }
    gs::bench::set_rates(state, 8 * elements, 3 * 4 * elements);  // reads x, gy; writes gx
  } else if (mode == Mode::DoubleBackward) {
    gs::Tensor ggx = gs::randn({s.N, s.C, s.L}), gggamma = gs::randn({s.C}), ggbeta = gs::randn({s.C});
    gs::Tensor dgy = gs::empty({s.N, s.C, s.L});
    auto fn = gs::kernels::batch_norm_double_backward_table<float>().get(variant);
    for (auto _ : gs::bench::timed(state)) {
      fn(s, x.data<float>(), gy.data<float>(), gamma.data<float>(), save_mean.data<float>(), save_invstd.data<float>(),
         ggx.data<float>(), gggamma.data<float>(), ggbeta.data<float>(), gx.data<float>(), ggamma.data<float>(),
         dgy.data<float>(), true);
      benchmark::ClobberMemory();
    }
    gs::bench::set_rates(state, 20 * elements, 5 * 4 * elements);  // reads x, gy, ggx; writes dx, dgy
  } else {
    const bool train = mode == Mode::TrainForward;
    auto fn = gs::kernels::batch_norm_table<float>().get(variant);
    for (auto _ : gs::bench::timed(state)) {
      fn(s, x.data<float>(), gamma.data<float>(), beta.data<float>(), running_mean.data<float>(),
         running_var.data<float>(), y.data<float>(), save_mean.data<float>(), save_invstd.data<float>(), train, 0.1,
         1e-5);
      benchmark::ClobberMemory();
    }
    gs::bench::set_rates(state, (train ? 5 : 2) * elements, 2 * 4 * elements);  // reads x; writes y
  }
}

template <class Table> void register_mode(const Table& table, Mode mode, const std::string& name_prefix) {
  for (const auto& layer : gs::bench::zoo_layers("BatchNorm2d")) {
    for (const auto& variant : table.names()) {
      for (int64_t batch : gs::bench::kBatches) {
        BatchNormShape s{.N = batch, .C = layer.in[1], .L = layer.in[2] * layer.in[3]};
        std::string name =
            name_prefix + "/" + variant + "/" + layer.label() + "/N:" + std::to_string(batch) + "/" + layer.geometry();
        gs::bench::configure(benchmark::RegisterBenchmark(name.c_str(), bench_batch_norm, s, mode, variant), variant,
                             0);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto& forward = gs::kernels::batch_norm_table<float>();
  register_mode(forward, Mode::TrainForward, forward.op() + "/train");
  register_mode(forward, Mode::EvalForward, forward.op() + "/eval");
  const auto& backward = gs::kernels::batch_norm_backward_table<float>();
  register_mode(backward, Mode::Backward, backward.op());
  const auto& double_backward = gs::kernels::batch_norm_double_backward_table<float>();
  register_mode(double_backward, Mode::DoubleBackward, double_backward.op());
  return gs::bench::run_main(argc, argv);
}
