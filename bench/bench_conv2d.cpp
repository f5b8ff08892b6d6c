// conv2d variants side by side (ref vs im2col): forward, backward-data and backward-weight on
// the fashionnet and lenet5 conv shapes at batch 1, 8 and 64, with GFLOP/s counters (wall time,
// since the variants may use several threads).
#include <benchmark/benchmark.h>

#include "kernels/cpu/conv2d.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace {

using gs::kernels::Conv2dShape;

struct Layer {
  const char* name;
  int64_t C, H, W, K, R, S, pad;
};
const Layer kLayers[] = {
    {"fashionnet.conv1", 1, 28, 28, 32, 3, 3, 1},
    {"fashionnet.conv2", 32, 14, 14, 64, 3, 3, 1},
    {"lenet5.conv1", 1, 28, 28, 6, 5, 5, 2},
    {"lenet5.conv2", 6, 14, 14, 16, 5, 5, 0},
};

Conv2dShape make_shape(const Layer& l, int64_t batch) {
  Conv2dShape s;
  s.N = batch, s.C = l.C, s.H = l.H, s.W = l.W, s.K = l.K, s.R = l.R, s.S = l.S, s.pad_h = l.pad, s.pad_w = l.pad;
  s.P = gs::kernels::conv_out_size(s.H, s.pad_h, 1, s.R, 1);
  s.Q = gs::kernels::conv_out_size(s.W, s.pad_w, 1, s.S, 1);
  return s;
}

enum class Pass { Forward, BackwardData, BackwardWeight };

void bench_conv(benchmark::State& state, Layer layer, Pass pass, std::string variant) {
  const Conv2dShape s = make_shape(layer, state.range(0));
  gs::Tensor x = gs::randn({s.N, s.C, s.H, s.W}), w = gs::randn({s.K, s.C, s.R, s.S}), b = gs::randn({s.K});
  gs::Tensor y = gs::randn({s.N, s.K, s.P, s.Q});  // output, or the incoming gradient
  gs::Tensor gx = gs::empty(x.shape()), gw = gs::empty(w.shape()), gb = gs::empty({s.K});
  auto fwd = gs::kernels::conv2d_table<float>().get(variant);
  auto bwd_data = gs::kernels::conv2d_backward_data_table<float>().get(variant);
  auto bwd_weight = gs::kernels::conv2d_backward_weight_table<float>().get(variant);
  for (auto _ : state) {
    switch (pass) {
      case Pass::Forward:
        fwd(s, x.data<float>(), w.data<float>(), b.data<float>(), y.data<float>());
        break;
      case Pass::BackwardData:
        bwd_data(s, y.data<float>(), w.data<float>(), gx.data<float>());
        break;
      case Pass::BackwardWeight:
        bwd_weight(s, x.data<float>(), y.data<float>(), gw.data<float>(), gb.data<float>());
        break;
    }
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * s.N * s.K * s.C * s.R * s.S * s.P * s.Q;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * double(state.iterations()), benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

void register_all() {
  const std::pair<Pass, const char*> passes[] = {{Pass::Forward, "conv2d"},
                                                 {Pass::BackwardData, "conv2d_backward_data"},
                                                 {Pass::BackwardWeight, "conv2d_backward_weight"}};
  for (const auto& [pass, op] : passes) {
    for (const Layer& layer : kLayers) {
      for (const auto& variant : gs::kernels::conv2d_table<float>().names()) {
        std::string name = std::string(op) + "/" + variant + "/" + layer.name;
        benchmark::RegisterBenchmark(name.c_str(), bench_conv, layer, pass, variant)
            ->Arg(1)
            ->Arg(8)
            ->Arg(64)
            ->ArgName("N")
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
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
