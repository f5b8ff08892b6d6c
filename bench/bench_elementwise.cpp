// Elementwise, reduction and softmax variants side by side (every variant of each registry
// table), GB/s: unary and binary ops on the activations that the zoo models' ReLU layers see
// (from a forward pass) at batch 1, 8, 64, 256; reductions and softmax on fixed larger sizes.
// Bytes counted are the minimum traffic: every input read once, the output written once.
#include "bench/common.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/softmax.h"
#include "tensor/random.h"
#include "tensor/shape.h"
#include "tensor/tensor.h"

namespace {

using gs::kernels::BinaryOp;
using gs::kernels::ReduceOp;
using gs::kernels::UnaryOp;

// The input of every distinct zoo ReLU, at each benchmark batch size.
std::vector<gs::Shape> activation_shapes() {
  std::vector<gs::Shape> shapes;
  for (const auto& layer : gs::bench::zoo_layers("ReLU")) {
    for (int64_t batch : gs::bench::kBatches) shapes.push_back(layer.in_at(batch));
  }
  return shapes;
}

void set_bandwidth(benchmark::State& state, double bytes_per_iteration) {
  gs::bench::set_rates(state, 0, bytes_per_iteration);
}

// ---- unary: y = f(x) ----
void bench_unary(benchmark::State& state, std::string variant, UnaryOp op, gs::Shape shape) {
  gs::Tensor x = gs::randn(shape), y = gs::empty(shape);
  auto fn = gs::kernels::unary_table<float>().get(variant);
  int64_t n = x.numel();
  for (auto _ : gs::bench::timed(state)) {
    fn(op, x.data<float>(), y.data<float>(), n, 0.0, 0.0);
    benchmark::DoNotOptimize(y.data<float>());
  }
  set_bandwidth(state, 2.0 * n * sizeof(float));
}

// ---- binary: z = a op b, b either the same shape, a per-channel bias [1,C,1,...], or a scalar ----
void bench_binary(benchmark::State& state, std::string variant, BinaryOp op, gs::Shape shape, gs::Shape b_shape) {
  gs::Tensor a = gs::randn(shape), b = gs::randn(b_shape), z = gs::empty(shape);
  gs::Strides as = gs::broadcast_strides(shape, a.strides(), shape);
  gs::Strides bs = gs::broadcast_strides(b_shape, b.strides(), shape);
  auto fn = gs::kernels::binary_table<float>().get(variant);
  for (auto _ : gs::bench::timed(state)) {
    fn(op, a.data<float>(), as.data(), b.data<float>(), bs.data(), z.data<float>(), shape.data(), (int)shape.size(),
       0.0, 0.0);
    benchmark::DoNotOptimize(z.data<float>());
  }
  set_bandwidth(state, (2.0 * a.numel() + b.numel()) * sizeof(float));
}

// ---- reduce over the middle axis of (outer, r, inner) ----
void bench_reduce(benchmark::State& state, std::string variant, ReduceOp op, int64_t outer, int64_t r, int64_t inner) {
  gs::Tensor x = gs::randn({outer, r, inner}), y = gs::empty({outer, inner});
  auto fn = gs::kernels::reduce_table<float>().get(variant);
  for (auto _ : gs::bench::timed(state)) {
    fn(op, x.data<float>(), y.data<float>(), outer, r, inner);
    benchmark::DoNotOptimize(y.data<float>());
  }
  set_bandwidth(state, double(outer * r * inner + outer * inner) * sizeof(float));
}

// ---- softmax over the last axis of (rows, cols), and its backward ----
void bench_softmax(benchmark::State& state, std::string variant, int64_t rows, int64_t cols, bool log) {
  gs::Tensor x = gs::randn({rows, cols}), y = gs::empty({rows, cols});
  auto fn = gs::kernels::softmax_table<float>().get(variant);
  for (auto _ : gs::bench::timed(state)) {
    fn(x.data<float>(), y.data<float>(), rows, cols, log);
    benchmark::DoNotOptimize(y.data<float>());
  }
  set_bandwidth(state, 2.0 * rows * cols * sizeof(float));
}

void bench_softmax_backward(benchmark::State& state, std::string variant, int64_t rows, int64_t cols, bool log) {
  gs::Tensor y = gs::rand({rows, cols}), gy = gs::randn({rows, cols}), gx = gs::empty({rows, cols});
  auto fn = gs::kernels::softmax_backward_table<float>().get(variant);
  for (auto _ : gs::bench::timed(state)) {
    fn(y.data<float>(), gy.data<float>(), gx.data<float>(), rows, cols, log);
    benchmark::DoNotOptimize(gx.data<float>());
  }
  set_bandwidth(state, 3.0 * rows * cols * sizeof(float));
}

// "64x32x28x28": regex-friendly in --benchmark_filter.
std::string shape_name(const gs::Shape& s) {
  std::string text;
  for (size_t i = 0; i < s.size(); ++i) text += (i ? "x" : "") + std::to_string(s[i]);
  return text;
}

template <class F, class... Args> void add(const std::string& name, F fn, Args... args) {
  benchmark::RegisterBenchmark(name.c_str(), fn, args...)->Unit(benchmark::kMicrosecond)->UseRealTime();
}

void register_all() {
  for (const auto& v : gs::kernels::unary_table<float>().names()) {
    for (UnaryOp op : {UnaryOp::Relu}) {
      for (const auto& s : activation_shapes()) {
        add("unary/" + std::string(gs::kernels::unary_op_name(op)) + "/" + v + "/" + shape_name(s), bench_unary, v, op,
            s);
      }
    }
  }
  for (const auto& v : gs::kernels::binary_table<float>().names()) {
    for (const auto& s : activation_shapes()) {
      gs::Shape bias(s.size(), 1);
      bias[1] = s[1];
      add("binary/add_same/" + v + "/" + shape_name(s), bench_binary, v, BinaryOp::Add, s, s);
      add("binary/add_bias/" + v + "/" + shape_name(s), bench_binary, v, BinaryOp::Add, s, bias);
      add("binary/mul_scalar/" + v + "/" + shape_name(s), bench_binary, v, BinaryOp::Mul, s, gs::Shape{});
      add("binary/relu_backward/" + v + "/" + shape_name(s), bench_binary, v, BinaryOp::ReluBackward, s, s);
    }
  }
  for (const auto& v : gs::kernels::reduce_table<float>().names()) {
    // Whole-tensor sum; per-(sample, channel) spatial sum; batch-axis sum (bias / BN style).
    add("reduce/sum_all/" + v + "/64x32x28x28", bench_reduce, v, ReduceOp::Sum, int64_t(1), int64_t(64 * 32 * 784),
        int64_t(1));
    add("reduce/sum_rows/" + v + "/2048x784", bench_reduce, v, ReduceOp::Sum, int64_t(64 * 32), int64_t(784),
        int64_t(1));
    add("reduce/sum_batch/" + v + "/64x25088", bench_reduce, v, ReduceOp::Sum, int64_t(1), int64_t(64),
        int64_t(32 * 784));
    add("reduce/max_rows/" + v + "/2048x784", bench_reduce, v, ReduceOp::Max, int64_t(64 * 32), int64_t(784),
        int64_t(1));
  }
  for (const auto& v : gs::kernels::softmax_table<float>().names()) {
    add("softmax/" + v + "/64x10", bench_softmax, v, int64_t(64), int64_t(10), false);
    add("softmax/" + v + "/4096x1000", bench_softmax, v, int64_t(4096), int64_t(1000), false);
    add("log_softmax/" + v + "/4096x1000", bench_softmax, v, int64_t(4096), int64_t(1000), true);
  }
  for (const auto& v : gs::kernels::softmax_backward_table<float>().names()) {
    add("softmax_backward/" + v + "/64x10", bench_softmax_backward, v, int64_t(64), int64_t(10), false);
    add("softmax_backward/" + v + "/4096x1000", bench_softmax_backward, v, int64_t(4096), int64_t(1000), false);
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  return gs::bench::run_main(argc, argv);
}
