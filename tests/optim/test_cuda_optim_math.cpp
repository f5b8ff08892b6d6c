// The fused CUDA optimizer steps' per-element maths (kernels/cuda/optim_math.h, with the
// constants made as optim/cuda_steps.cpp makes them), run on the host over flat buffers for
// several steps, against the CPU optimizers of optim/ (torch 1.13's algorithms).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cuda/optim_math.h"
#include "optim/optimizers.h"
#include "tensor/random.h"

namespace gs::optim {
namespace {
namespace kc = kernels::cuda;

constexpr int64_t kN = 64;
constexpr int kSteps = 4;

std::vector<float> values(uint64_t seed, double lo = -1, double hi = 1) {
  Generator g(seed);
  std::vector<float> v(kN);
  for (auto& x : v) x = static_cast<float>(lo + (hi - lo) * g.uniform());
  return v;
}

// Runs `kSteps` steps of opt on a param, with a different gradient each step (a sign flip on
// some elements, so Rprop sees all three sign cases); returns the parameter's values.
template <class Opt, class Options> std::vector<float> cpu_run(Options options) {
  Tensor p = from_vector(values(1), {kN}).set_requires_grad(true);
  Opt opt({p}, options);
  for (int s = 0; s < kSteps; ++s) {
    auto g = values(100 + s);
    if (s == 2)
      for (int64_t i = 0; i < kN; i += 3) g[i] = 0;
    p.set_grad(from_vector(g, {kN}));
    opt.step();
  }
  return p.to_vector<float>();
}

std::vector<float> grads_at(int s) {
  auto g = values(100 + s);
  if (s == 2)
    for (int64_t i = 0; i < kN; i += 3) g[i] = 0;
  return g;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& expected) {
  for (int64_t i = 0; i < kN; ++i) EXPECT_NEAR(got[i], expected[i], 1e-6 * (1 + std::abs(expected[i]))) << i;
}

TEST(CudaOptimMath, SgdMomentumNesterovWeightDecay) {
  for (bool nesterov : {false, true}) {
    SGDOptions o;
    o.lr = 0.1, o.momentum = 0.9, o.dampening = nesterov ? 0 : 0.1, o.weight_decay = 0.01, o.nesterov = nesterov;
    auto expected = cpu_run<SGD>(o);
    auto p = values(1);
    std::vector<float> buf(kN, 0);
    for (int s = 0; s < kSteps; ++s) {
      auto g = grads_at(s);
      auto c = kc::make_sgd_consts(o.lr, o.weight_decay, o.momentum, o.dampening, true, nesterov, s == 0);
      for (int64_t i = 0; i < kN; ++i) kc::sgd_element(c, p[i], g[i], &buf[i]);
    }
    expect_close(p, expected);
  }
}

TEST(CudaOptimMath, AdamAndAdamWWithAmsgrad) {
  for (bool decoupled : {false, true})
    for (bool amsgrad : {false, true}) {
      std::vector<float> expected;
      const double lr = 0.01, wd = 0.05;
      if (decoupled) {
        AdamWOptions o;
        o.lr = lr, o.weight_decay = wd, o.amsgrad = amsgrad;
        expected = cpu_run<AdamW>(o);
      } else {
        AdamOptions o;
        o.lr = lr, o.weight_decay = wd, o.amsgrad = amsgrad;
        expected = cpu_run<Adam>(o);
      }
      auto p = values(1);
      std::vector<float> m(kN, 0), v(kN, 0), vmax(kN, 0);
      for (int s = 0; s < kSteps; ++s) {
        auto g = grads_at(s);
        auto c = kc::make_adam_consts(lr, wd, 0.9, 0.999, 1e-8, s + 1, decoupled, amsgrad);
        for (int64_t i = 0; i < kN; ++i) kc::adam_element(c, p[i], g[i], m[i], v[i], amsgrad ? &vmax[i] : nullptr);
      }
      expect_close(p, expected);
    }
}

TEST(CudaOptimMath, Rprop) {
  RpropOptions o;
  o.lr = 0.05;
  auto expected = cpu_run<Rprop>(o);
  auto p = values(1);
  std::vector<float> prev(kN, 0), step(kN, static_cast<float>(o.lr));
  kc::RpropConsts c{static_cast<float>(o.eta_minus), static_cast<float>(o.eta_plus), static_cast<float>(o.step_min),
                    static_cast<float>(o.step_max)};
  for (int s = 0; s < kSteps; ++s) {
    auto g = grads_at(s);
    for (int64_t i = 0; i < kN; ++i) kc::rprop_element(c, p[i], g[i], prev[i], step[i]);
  }
  expect_close(p, expected);
}

TEST(CudaOptimMath, RmspropCenteredMomentumWeightDecay) {
  for (bool centered : {false, true})
    for (double momentum : {0.0, 0.9}) {
      RMSpropOptions o;
      o.lr = 0.01, o.alpha = 0.9, o.eps = 1e-6, o.weight_decay = 0.02, o.momentum = momentum, o.centered = centered;
      auto expected = cpu_run<RMSprop>(o);
      auto p = values(1);
      std::vector<float> sq(kN, 0), ga(kN, 0), buf(kN, 0);
      const kc::RmspropConsts c{float(-o.lr),       float(o.weight_decay), float(o.alpha),
                                float(1 - o.alpha), float(o.eps),          float(o.momentum)};
      for (int s = 0; s < kSteps; ++s) {
        auto g = grads_at(s);
        for (int64_t i = 0; i < kN; ++i)
          kc::rmsprop_element(c, p[i], g[i], sq[i], centered ? &ga[i] : nullptr, momentum > 0 ? &buf[i] : nullptr);
      }
      expect_close(p, expected);
    }
}

}  // namespace
}  // namespace gs::optim
