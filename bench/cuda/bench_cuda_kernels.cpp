// Google Benchmark cases for the CUDA kernel variants (kernels/cuda): every variant of matmul,
// conv2d, reduce, softmax, batch norm, pooling and the elementwise kernels, the fused optimizer
// steps, gather and argmax, through the same front-ends training uses. Timed with CUDA events around each iteration
// (manual time), after a warm-up; counters give GFLOP/s or GB/s. Without a GPU it prints why and exits 0 (skipped).
// --smoke: every case once at tiny sizes (the emulated build's ctest runs it so that a case that
// throws is found before a GPU day, not on it); the numbers mean nothing then.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.h"
#include "kernels/registry.h"
#include "optim/optimizers.h"
#include "tensor/cuda.h"
#include "tensor/raw_nn.h"
#include "tensor/raw_ops.h"

namespace gs {
namespace {

Device gpu() { return Device::cuda(0); }
bool smoke = false;                                            // --smoke: tiny sizes
int64_t size(int64_t real, int64_t tiny) { return smoke ? tiny : real; }
// 16777216 -> "16M", 4096 -> "4096": the size in a case's name.
std::string count(int64_t n) { return n % (1 << 20) == 0 ? std::to_string(n >> 20) + "M" : std::to_string(n); }
Tensor rand_gpu(const Shape& shape) { return rand(shape).to(gpu()); }

// Times fn with a CUDA event pair per iteration on the compute stream every kernel is queued
// on, after a warm-up. `flops` / `bytes` per call give the rate counters.
void run_timed(benchmark::State& state, const std::function<void()>& fn, double flops, double bytes) {
  for (int i = 0; i < (smoke ? 1 : 3); ++i) fn();  // warm-up: first-use costs (cuBLAS handles, cuDNN plans, allocator)
  cuda::synchronize();
  cudaStream_t stream = kernels::cuda::compute_stream(0);
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  for (auto _ : state) {
    CUDA_CHECK(cudaEventRecord(start, stream));
    fn();
    CUDA_CHECK(cudaEventRecord(stop, stream));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(ms / 1e3);
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  if (flops > 0)
    state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  if (bytes > 0)
    state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void register_variants(const std::string& op, const std::string& label,
                       const std::function<void(benchmark::State&)>& body) {
  const auto all = kernels::list_variants();  // by value: a loop over list_variants()[op] would dangle
  const auto it = all.find(op);
  if (it == all.end()) throw std::runtime_error("bench_cuda_kernels: no variant table " + op);
  for (const auto& variant : it->second) {
    benchmark::RegisterBenchmark((op + "/" + variant + "/" + label).c_str(),
                                 [op, variant, body](benchmark::State& state) {
                                   kernels::select_variant(op, variant);
                                   body(state);
                                   kernels::select_variant(op, "");
                                 })
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }
}

// A kernel that is not a variant table (the fused optimizer steps, the index ops).
void register_one(const std::string& name, const std::function<void(benchmark::State&)>& body) {
  benchmark::RegisterBenchmark(name.c_str(), body)->UseManualTime()->Unit(benchmark::kMicrosecond);
}

void register_all() {
  kernels::cuda::register_all_tables();
  for (int64_t n : {size(256, 16), size(1024, 32), size(4096, 48)}) {
    register_variants("cuda.matmul", std::to_string(n), [n](benchmark::State& s) {
      Tensor a = rand_gpu({n, n}), b = rand_gpu({n, n});
      run_timed(
          s, [&] { raw::mm(a, b); }, 2.0 * n * n * n, 0);
    });
  }
  // A batch of products (cublas: one strided-batched call; tiled: a launch per product).
  {
    const int64_t b = size(64, 3), n = size(128, 16);
    register_variants("cuda.matmul", "batched_" + std::to_string(b) + "x" + std::to_string(n),
                      [b, n](benchmark::State& s) {
                        Tensor x = rand_gpu({b, n, n}), y = rand_gpu({b, n, n});
                        run_timed(
                            s, [&] { raw::matmul(x, y); }, 2.0 * b * n * n * n, 0);
                      });
  }
  // fashionnet's two convolutions at batch 64, forward and both backward kernels.
  struct ConvShape {
    Shape x, w;
  };
  const int64_t conv_batch = size(64, 2);
  for (const ConvShape& c : {ConvShape{{conv_batch, 1, 28, 28}, {32, 1, 3, 3}},
                             ConvShape{{conv_batch, 32, 14, 14}, {64, 32, 3, 3}}}) {
    const std::string label = shape_str(c.x) + "x" + shape_str(c.w);
    const double flops = 2.0 * c.x[0] * c.w[0] * c.x[2] * c.x[3] * c.w[1] * c.w[2] * c.w[3];
    Conv2dParams p;
    p.pad_h = p.pad_w = 1;
    register_variants("cuda.conv2d", label, [c, p, flops](benchmark::State& s) {
      Tensor x = rand_gpu(c.x), w = rand_gpu(c.w), b = rand_gpu({c.w[0]});
      run_timed(
          s, [&] { raw::conv2d(x, w, b, p); }, flops, 0);
    });
    register_variants("cuda.conv2d_backward_data", label, [c, p, flops](benchmark::State& s) {
      Tensor w = rand_gpu(c.w), gy = rand_gpu({c.x[0], c.w[0], c.x[2], c.x[3]});
      run_timed(
          s, [&] { raw::conv2d_backward_data(gy, w, c.x, p); }, flops, 0);
    });
    register_variants("cuda.conv2d_backward_weight", label, [c, p, flops](benchmark::State& s) {
      Tensor x = rand_gpu(c.x), gy = rand_gpu({c.x[0], c.w[0], c.x[2], c.x[3]});
      run_timed(
          s, [&] { raw::conv2d_backward_params(x, gy, c.w, p, true, true); }, flops, 0);
    });
  }
  const int64_t n = size(int64_t(1) << 24, 4096);
  register_variants("cuda.binary", "add_" + count(n), [n](benchmark::State& s) {
    Tensor a = rand_gpu({n}), b = rand_gpu({n});
    run_timed(
        s, [&] { raw::binary(raw::BinaryOp::Add, a, b); }, 0, 12.0 * n);
  });
  register_variants("cuda.unary", "relu_" + count(n), [n](benchmark::State& s) {
    Tensor a = rand_gpu({n});
    run_timed(
        s, [&] { raw::unary(raw::UnaryOp::Relu, a); }, 0, 8.0 * n);
  });
  const int64_t r = size(4096, 64);
  for (auto dims : {std::vector<int64_t>{1}, std::vector<int64_t>{0}}) {
    register_variants("cuda.reduce", (dims[0] == 1 ? "sum_rows_" : "sum_cols_") + count(r) + "x" + count(r),
                      [dims, r](benchmark::State& s) {
                        Tensor a = rand_gpu({r, r});
                        run_timed(
                            s, [&] { raw::reduce(raw::ReduceOp::Sum, a, dims, false); }, 0, 4.0 * r * r);
                      });
  }
  const int64_t rows = size(65536, 256), batch = size(64, 2);
  register_variants("cuda.softmax", count(rows) + "x10", [rows](benchmark::State& s) {
    Tensor a = rand_gpu({rows, 10});
    run_timed(
        s, [&] { raw::softmax(a, 1, true); }, 0, 8.0 * rows * 10);
  });
  register_variants("cuda.batch_norm", count(batch) + "x64x14x14", [batch](benchmark::State& s) {
    Tensor x = rand_gpu({batch, 64, 14, 14}), w = rand_gpu({64}), b = rand_gpu({64});
    Tensor rm = rand_gpu({64}), rv = rand_gpu({64});
    run_timed(
        s, [&] { raw::batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5); }, 0, 3.0 * 4 * batch * 64 * 14 * 14);
  });
  register_variants("cuda.batch_norm_double_backward", count(batch) + "x64x14x14", [batch](benchmark::State& s) {
    Tensor x = rand_gpu({batch, 64, 14, 14}), gy = rand_gpu({batch, 64, 14, 14}), ggx = rand_gpu({batch, 64, 14, 14});
    Tensor w = rand_gpu({64}), ggw = rand_gpu({64}), ggb = rand_gpu({64});
    raw::BatchNormResult r = raw::batch_norm(x, w, Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
    run_timed(
        s,
        [&] {
          raw::batch_norm_double_backward(x, gy, w, r.save_mean, r.save_invstd, ggx, ggw, ggb, true, true, true, true);
        },
        0, 5.0 * 4 * batch * 64 * 14 * 14);
  });
  register_variants("cuda.max_pool2d", count(batch) + "x32x28x28", [batch](benchmark::State& s) {
    Tensor x = rand_gpu({batch, 32, 28, 28});
    run_timed(
        s, [&] { raw::max_pool2d(x, Pool2dParams{}); }, 0, 4.0 * batch * 32 * 28 * 28 * 1.5);
  });
  // Fused optimizer steps over one 16M-element parameter; bytes: the buffers read and written.
  const int64_t np = size(int64_t(1) << 24, 4096);
  auto optimizer_case = [np](const std::string& name, double buffers,
                             std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)> make) {
    register_one("cuda.optim/" + name + "/" + count(np), [np, buffers, make](benchmark::State& s) {
      Tensor p = rand_gpu({np}).set_requires_grad(true);
      p.set_grad(rand_gpu({np}));
      auto opt = make({p});
      run_timed(
          s, [&] { opt->step(); }, 0, 4.0 * buffers * np);
    });
  };
  optimizer_case("sgd_momentum", 4, [](std::vector<Tensor> p) {
    return std::make_unique<optim::SGD>(p, optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
  });
  optimizer_case("adamw", 7, [](std::vector<Tensor> p) { return std::make_unique<optim::AdamW>(p); });
  optimizer_case("rprop", 7, [](std::vector<Tensor> p) { return std::make_unique<optim::Rprop>(p); });
  optimizer_case("rmsprop", 5, [](std::vector<Tensor> p) { return std::make_unique<optim::RMSprop>(p); });
  // Many small parameters (a model's biases and norms): one fused launch covers them all.
  const int64_t many = 64, small = size(4096, 64);
  register_one("cuda.optim/adamw/" + std::to_string(many) + "x" + count(small), [many, small](benchmark::State& s) {
    std::vector<Tensor> params;
    for (int64_t i = 0; i < many; ++i) {
      params.push_back(rand_gpu({small}).set_requires_grad(true));
      params.back().set_grad(rand_gpu({small}));
    }
    optim::AdamW opt(params);
    run_timed(
        s, [&] { opt.step(); }, 0, 4.0 * 7 * double(many * small));
  });
  register_one("cuda.index/gather_dim1/" + count(r) + "x" + count(r), [r](benchmark::State& s) {
    Tensor x = rand_gpu({r, r});
    Tensor index = raw::to_dtype(raw::binary_scalar(raw::BinaryOp::Mul, rand({r, r}), double(r - 1)), DType::I64);
    Tensor index_gpu = index.to(gpu());
    run_timed(
        s, [&] { raw::gather(x, 1, index_gpu); }, 0, 16.0 * r * r);
  });
  register_one("cuda.argmax/" + count(rows) + "x10", [rows](benchmark::State& s) {
    Tensor x = rand_gpu({rows, 10});
    run_timed(
        s, [&] { raw::argmax(x, 1); }, 0, 4.0 * rows * 10 + 8.0 * rows);
  });
}

}  // namespace
}  // namespace gs

int main(int argc, char** argv) {
  if (!gs::cuda::is_available()) {
    std::printf("bench_cuda_kernels: skipped, no CUDA device: %s\n", gs::cuda::unavailable_reason().c_str());
    return 0;
  }
  // --smoke is ours: taken out before Google Benchmark reads the rest.
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--smoke") gs::smoke = true;
    else argv[kept++] = argv[i];
  }
  argc = kept;
  gs::register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
