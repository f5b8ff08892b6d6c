// Pooling variants side by side (every variant of each registry table): max pool forward and
// backward on the zoo models' MaxPool2d layers, adaptive average pool forward and backward on
// resnet8's head, at batch 1, 8, 64, 256. Memory-bound: GB/s (input read, output written once)
// is the rate that matters; GFLOP/s counts one compare or add per window element.
#include "bench/common.h"
#include "kernels/cpu/pool.h"
#include "layers/conv.h"
#include "tensor/tensor.h"

namespace {

using gs::kernels::Pool2dShape;

Pool2dShape pool_shape(const gs::bench::ZooLayer& layer, int64_t batch) {
  Pool2dShape s;
  s.N = batch, s.C = layer.in[1], s.H = layer.in[2], s.W = layer.in[3], s.P = layer.out[2], s.Q = layer.out[3];
  if (auto* max_pool = dynamic_cast<const gs::nn::MaxPool2d*>(layer.module.get())) {
    const gs::Pool2dParams& p = max_pool->params();
    s.kernel_h = p.kernel_h, s.kernel_w = p.kernel_w, s.stride_h = p.stride_h, s.stride_w = p.stride_w;
    s.pad_h = p.pad_h, s.pad_w = p.pad_w;
  }
  return s;
}

// Work of one pass: a compare/add per window element (adaptive: every input element once).
double window_flops(const Pool2dShape& s, bool adaptive) {
  return adaptive ? double(s.N * s.C * s.H * s.W) : double(s.N * s.C * s.P * s.Q * s.kernel_h * s.kernel_w);
}
double pool_bytes(const Pool2dShape& s, bool with_argmax) {
  return 4.0 * s.N * s.C * (s.H * s.W + s.P * s.Q) + (with_argmax ? 8.0 * s.N * s.C * s.P * s.Q : 0);
}

void bench_max_pool(benchmark::State& state, Pool2dShape s, std::string variant, bool backward) {
  gs::Tensor x = gs::randn({s.N, s.C, s.H, s.W}), y = gs::randn({s.N, s.C, s.P, s.Q});
  gs::Tensor argmax = gs::zeros({s.N, s.C, s.P, s.Q}, gs::TensorOptions{.dtype = gs::DType::I64});
  gs::kernels::max_pool2d_table<float>().get("ref")(s, x.data<float>(), y.data<float>(), argmax.data<int64_t>());
  if (backward) {
    auto fn = gs::kernels::max_pool2d_backward_table<float>().get(variant);
    for (auto _ : gs::bench::timed(state)) {
      fn(s, y.data<float>(), argmax.data<int64_t>(), x.data<float>());
      benchmark::ClobberMemory();
    }
  } else {
    auto fn = gs::kernels::max_pool2d_table<float>().get(variant);
    for (auto _ : gs::bench::timed(state)) {
      fn(s, x.data<float>(), y.data<float>(), argmax.data<int64_t>());
      benchmark::ClobberMemory();
    }
  }
  gs::bench::set_rates(state, window_flops(s, false), pool_bytes(s, true));
}

void bench_adaptive_avg_pool(benchmark::State& state, Pool2dShape s, std::string variant, bool backward) {
  gs::Tensor x = gs::randn({s.N, s.C, s.H, s.W}), y = gs::randn({s.N, s.C, s.P, s.Q});
  if (backward) {
    auto fn = gs::kernels::adaptive_avg_pool2d_backward_table<float>().get(variant);
    for (auto _ : gs::bench::timed(state)) {
      fn(s, y.data<float>(), x.data<float>());
      benchmark::ClobberMemory();
    }
  } else {
    auto fn = gs::kernels::adaptive_avg_pool2d_table<float>().get(variant);
    for (auto _ : gs::bench::timed(state)) {
      fn(s, x.data<float>(), y.data<float>());
      benchmark::ClobberMemory();
    }
  }
  gs::bench::set_rates(state, window_flops(s, true), pool_bytes(s, false));
}

template <class Table, class Fn>
void register_op(const Table& table, const std::string& layer_type, Fn fn, bool backward) {
  for (const auto& layer : gs::bench::zoo_layers(layer_type)) {
    for (const auto& variant : table.names()) {
      for (int64_t batch : gs::bench::kBatches) {
        Pool2dShape s = pool_shape(layer, batch);
        std::string name =
            table.op() + "/" + variant + "/" + layer.label() + "/N:" + std::to_string(batch) + "/" + layer.geometry();
        gs::bench::configure(benchmark::RegisterBenchmark(name.c_str(), fn, s, variant, backward), variant, 0);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_op(gs::kernels::max_pool2d_table<float>(), "MaxPool2d", bench_max_pool, false);
  register_op(gs::kernels::max_pool2d_backward_table<float>(), "MaxPool2d", bench_max_pool, true);
  register_op(gs::kernels::adaptive_avg_pool2d_table<float>(), "AdaptiveAvgPool2d", bench_adaptive_avg_pool, false);
  register_op(gs::kernels::adaptive_avg_pool2d_backward_table<float>(), "AdaptiveAvgPool2d", bench_adaptive_avg_pool,
              true);
  return gs::bench::run_main(argc, argv);
}
