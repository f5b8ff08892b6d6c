// conv2d variants side by side: forward, backward-data and backward-weight, each over every
// variant of its own registry table, on every distinct Conv2d of the zoo models (lenet5,
// fashionnet, resnet8 -- shapes from a forward pass, stride 2 and 1x1 included) at batch 1, 8,
// 64, 256. GFLOP/s (2 N K C/g R S P Q per pass) and the fraction of the measured SGEMM peak.
#include <functional>

#include "bench/common.h"
#include "kernels/cpu/conv2d.h"
#include "layers/conv.h"
#include "tensor/tensor.h"

namespace {

using gs::kernels::Conv2dShape;

enum class Pass { Forward, BackwardData, BackwardWeight };

Conv2dShape conv_shape(const gs::bench::ZooLayer& layer, int64_t batch) {
  const auto& conv = dynamic_cast<const gs::nn::Conv2d&>(*layer.module);
  const gs::Conv2dParams p = conv.options().params();
  const gs::Shape& w = conv.weight().shape();
  Conv2dShape s;
  s.N = batch, s.C = layer.in[1], s.H = layer.in[2], s.W = layer.in[3];
  s.K = w[0], s.R = w[2], s.S = w[3];
  s.P = layer.out[2], s.Q = layer.out[3];
  s.stride_h = p.stride_h, s.stride_w = p.stride_w, s.pad_h = p.pad_h, s.pad_w = p.pad_w;
  s.dilation_h = p.dilation_h, s.dilation_w = p.dilation_w, s.groups = p.groups;
  return s;
}

double conv_flops(const Conv2dShape& s) { return 2.0 * s.N * s.K * (s.C / s.groups) * s.R * s.S * s.P * s.Q; }

void bench_conv(benchmark::State& state, Conv2dShape s, Pass pass, std::string variant) {
  gs::Tensor x = gs::randn({s.N, s.C, s.H, s.W}), w = gs::randn({s.K, s.C / s.groups, s.R, s.S}), b = gs::randn({s.K});
  gs::Tensor y = gs::randn({s.N, s.K, s.P, s.Q});  // output, or the incoming gradient
  gs::Tensor gx = gs::empty(x.shape()), gw = gs::empty(w.shape()), gb = gs::empty({s.K});
  std::function<void()> run;  // the variant looked up once, outside the timed loop
  switch (pass) {
    case Pass::Forward: {
      auto fn = gs::kernels::conv2d_table<float>().get(variant);
      run = [&, fn] { fn(s, x.data<float>(), w.data<float>(), b.data<float>(), y.data<float>()); };
      break;
    }
    case Pass::BackwardData: {
      auto fn = gs::kernels::conv2d_backward_data_table<float>().get(variant);
      run = [&, fn] { fn(s, y.data<float>(), w.data<float>(), gx.data<float>()); };
      break;
    }
    case Pass::BackwardWeight: {
      auto fn = gs::kernels::conv2d_backward_weight_table<float>().get(variant);
      run = [&, fn] { fn(s, x.data<float>(), y.data<float>(), gw.data<float>(), gb.data<float>()); };
      break;
    }
  }
  for (auto _ : gs::bench::timed(state)) {
    run();
    benchmark::ClobberMemory();
  }
  gs::bench::set_rates(state, conv_flops(s));
}

template <class Table> void register_pass(const Table& table, Pass pass) {
  for (const auto& layer : gs::bench::zoo_layers("Conv2d")) {
    for (const auto& variant : table.names()) {
      for (int64_t batch : gs::bench::kBatches) {
        const Conv2dShape s = conv_shape(layer, batch);
        std::string name = table.op() + "/" + variant + "/" + layer.label() + "/N:" + std::to_string(batch) + "/" +
                           layer.geometry() + "->" + std::to_string(s.K) + "x" + std::to_string(s.R) + "x" +
                           std::to_string(s.S) + (s.stride_h > 1 ? "s" + std::to_string(s.stride_h) : "");
        gs::bench::configure(benchmark::RegisterBenchmark(name.c_str(), bench_conv, s, pass, variant), variant,
                             conv_flops(s));
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_pass(gs::kernels::conv2d_table<float>(), Pass::Forward);
  register_pass(gs::kernels::conv2d_backward_data_table<float>(), Pass::BackwardData);
  register_pass(gs::kernels::conv2d_backward_weight_table<float>(), Pass::BackwardWeight);
  return gs::bench::run_main(argc, argv);
}
