// Helpers of the cuda-labelled suite (tests/cuda): the skip that every test starts with when
// there is no GPU (counted as skipped by ctest, never as passed), the CUDA variants of an op,
// and the check that runs a function on the CPU and on the GPU, forward and backward.
#pragma once
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "kernels/registry.h"
#include "tensor/cuda.h"
#include "tensor/random.h"
#include "tests/helpers.h"

#if GS_CUDA
#include "kernels/cuda/ops.h"
#endif

// In the emulated build (GS_CUDA=EMULATE) the device is the CPU's CUDA emulator: the tests run,
// and say so, since passing there is not passing on a GPU.
#define GS_REQUIRE_CUDA()                                                                                           \
  do {                                                                                                              \
    if (!::gs::cuda::is_available()) GTEST_SKIP() << "no CUDA device: " << ::gs::cuda::unavailable_reason();        \
    if (::gs::cuda::is_emulated()) std::printf("note: cuda:0 is the CUDA emulator (GS_CUDA=EMULATE), not a GPU\n"); \
  } while (0)

namespace gs::test {

inline Device gpu() { return Device::cuda(0); }

// The registered variants of a CUDA op table ("cuda.matmul"), e.g. {"cublas", "tiled"}.
inline std::vector<std::string> cuda_variants(const std::string& op) {
#if GS_CUDA
  kernels::cuda::register_all_tables();
#endif
  auto all = kernels::list_variants();
  auto it = all.find(op);
  return it == all.end() ? std::vector<std::string>{} : it->second;
}

// Selects `variant` for `op` for the scope's life.
struct VariantScope {
  VariantScope(std::string op, const std::string& variant) : op_(std::move(op)) {
    kernels::select_variant(op_, variant);
  }
  ~VariantScope() { kernels::select_variant(op_, ""); }
  std::string op_;
};

// f32 random leaf on the cpu.
inline Tensor randf(const Shape& shape, uint64_t seed, double lo = -2, double hi = 2) {
  Generator g(seed);
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (auto& x : v) x = lo + (hi - lo) * g.uniform();
  return from_vector(v, shape, {DType::F32});
}

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

// The create_graph gradients on both devices: s = sum_i sum(dL/dx_i * v_i) with L = sum(out * w),
// differentiated again w.r.t. every input that requires grad; compared within tol relative to
// the CPU's largest value (second derivatives of f32 sums grow).
inline void expect_cuda_double_backward_matches_cpu(const TensorFn& fn, const std::vector<Tensor>& inputs, double tol,
                                                    const std::string& what) {
  std::vector<Tensor> on_cpu, on_gpu, leaves_cpu, leaves_gpu;
  for (const Tensor& x : inputs) {
    const bool rg = x.requires_grad();
    on_cpu.push_back(x.detach().set_requires_grad(rg));
    Tensor g = x.detach().to(gpu());
    on_gpu.push_back(rg ? g.set_requires_grad(true) : g);
    if (rg) leaves_cpu.push_back(on_cpu.back()), leaves_gpu.push_back(on_gpu.back());
  }
  if (leaves_cpu.empty()) return;
  auto second = [&](const std::vector<Tensor>& in, const std::vector<Tensor>& leaves, Device device) {
    Tensor y = fn(in);
    std::vector<Tensor> g = grad(sum(mul(y, randf(y.shape(), 4242).to(device))), leaves, Tensor(), false, true);
    Tensor s;
    for (size_t i = 0; i < g.size(); ++i) {
      if (!g[i].requires_grad()) continue;
      Tensor term = sum(mul(g[i], randf(g[i].shape(), 4343 + i).to(device)));
      s = s.defined() ? add(s, term) : term;
    }
    return s.defined() ? grad(s, leaves) : std::vector<Tensor>();
  };
  std::vector<Tensor> gg_cpu = second(on_cpu, leaves_cpu, Device::cpu());
  std::vector<Tensor> gg_gpu = second(on_gpu, leaves_gpu, gpu());
  ASSERT_EQ(gg_cpu.size(), gg_gpu.size()) << what;
  for (size_t i = 0; i < gg_cpu.size(); ++i) {
    ASSERT_TRUE(gg_gpu[i].device().is_cuda()) << what;
    double scale = 1;
    for (double v : gg_cpu[i].to_vector<double>()) scale = std::max(scale, std::abs(v));
    expect_close(gg_gpu[i], gg_cpu[i], tol * scale, what + " double backward, input " + std::to_string(i));
  }
}

// fn on the cpu inputs and on their GPU copies: outputs within tol, and (for inputs that
// require grad) the gradients of sum(out * w) for a fixed random w within tol, and the create_graph
// gradients (expect_cuda_double_backward_matches_cpu) unless double_backward is false.
inline void expect_cuda_matches_cpu(const TensorFn& fn, const std::vector<Tensor>& inputs, double tol,
                                    const std::string& what, bool double_backward = true) {
  std::vector<Tensor> on_cpu, on_gpu;
  bool any_grad = false;
  for (const Tensor& x : inputs) {
    const bool rg = x.requires_grad();
    any_grad = any_grad || rg;
    on_cpu.push_back(x.detach().set_requires_grad(rg));
    Tensor g = x.detach().to(gpu());
    on_gpu.push_back(rg ? g.set_requires_grad(true) : g);
  }
  Tensor y_cpu = fn(on_cpu), y_gpu = fn(on_gpu);
  ASSERT_TRUE(y_gpu.device().is_cuda()) << what;
  expect_close(y_gpu, y_cpu, tol, what + " forward");
  if (!any_grad) return;
  Tensor w = randf(y_cpu.shape(), 4242);
  backward(sum(mul(y_cpu, w)));
  backward(sum(mul(y_gpu, w.to(gpu()))));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    ASSERT_TRUE(on_gpu[i].grad().defined()) << what << ": no gradient for input " << i;
    ASSERT_TRUE(on_gpu[i].grad().device().is_cuda()) << what;
    expect_close(on_gpu[i].grad(), on_cpu[i].grad(), tol, what + " backward, input " + std::to_string(i));
  }
  if (double_backward) expect_cuda_double_backward_matches_cpu(fn, inputs, std::max(tol, 1e-6), what);
}

}  // namespace gs::test
