// One element of each fused optimizer step as a __host__ __device__ function: the CUDA kernels
// in kernels/cuda/optim.cu run them over flat parameter buffers; tests/kernels checks them on
// the CPU against the optimizers of optim/ (torch 1.13's algorithms, as documented there).
#pragma once
#include <cmath>

#include "kernels/cuda/hd.h"

namespace gs::kernels::cuda {

// SGD: g += wd p; buf = first ? g : momentum buf + (1 - dampening) g; g = nesterov ? g + momentum buf : buf.
struct SgdConsts {
  float lr, wd, momentum, keep;  // keep = 1 - dampening
  bool has_buf, nesterov, first;
};
inline SgdConsts make_sgd_consts(double lr, double wd, double momentum, double dampening, bool has_buf, bool nesterov,
                                 bool first) {
  return {static_cast<float>(lr),
          static_cast<float>(wd),
          static_cast<float>(momentum),
          static_cast<float>(1 - dampening),
          has_buf,
          nesterov,
          first};
}
GS_HD void sgd_element(const SgdConsts& s, float& p, float g, float* buf) {
  float d = g;
  if (s.wd != 0.0f) d = d + s.wd * p;
  if (s.has_buf) {
    *buf = s.first ? d : *buf * s.momentum + s.keep * d;
    d = s.nesterov ? d + s.momentum * *buf : *buf;
  }
  p = p + (-s.lr) * d;
}

// Adam / AdamW (decoupled): constants precomputed on the host as optim/adam.cpp does.
struct AdamConsts {
  float neg_step_size, bias_correction2_sqrt, beta1, beta2, one_minus_beta1, one_minus_beta2, eps, wd, decay;
  bool l2, decoupled, amsgrad;
};
// t: the step count after this step's increment.
inline AdamConsts make_adam_consts(double lr, double wd, double beta1, double beta2, double eps, int64_t t,
                                   bool decoupled, bool amsgrad) {
  const double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(t));
  const double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(t));
  AdamConsts s{};
  s.neg_step_size = static_cast<float>(-(lr / bias_correction1));
  s.bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  s.beta1 = static_cast<float>(beta1);
  s.beta2 = static_cast<float>(beta2);
  s.one_minus_beta1 = static_cast<float>(1 - beta1);
  s.one_minus_beta2 = static_cast<float>(1 - beta2);
  s.eps = static_cast<float>(eps);
  s.wd = static_cast<float>(wd);
  s.decay = static_cast<float>(1 - lr * wd);
  s.l2 = !decoupled && wd != 0;
  s.decoupled = decoupled && wd != 0;
  s.amsgrad = amsgrad;
  return s;
}
GS_HD void adam_element(const AdamConsts& s, float& p, float g, float& m, float& v, float* vmax) {
  if (s.decoupled) p = p * s.decay;
  if (s.l2) g = g + s.wd * p;
  m = m * s.beta1 + s.one_minus_beta1 * g;
  v = v * s.beta2 + s.one_minus_beta2 * g * g;
  float second = v;
  if (s.amsgrad) {
    *vmax = *vmax > v ? *vmax : v;
    second = *vmax;
  }
  const float denom = std::sqrt(second) / s.bias_correction2_sqrt + s.eps;
  p = p + s.neg_step_size * m / denom;
}

// Rprop: step sizes grow/shrink by the sign of g * prev, clamped; p -= sign(g) step.
struct RpropConsts {
  float eta_minus, eta_plus, step_min, step_max;
};
GS_HD void rprop_element(const RpropConsts& s, float& p, float g, float& prev, float& step_size) {
  const float product = g * prev;
  const float factor = product > 0.0f ? s.eta_plus : product < 0.0f ? s.eta_minus : 1.0f;
  float step = step_size * factor;
  step = step < s.step_min ? s.step_min : (step > s.step_max ? s.step_max : step);
  step_size = step;
  const float gi = factor == s.eta_minus ? 0.0f : g;
  p = p + -1.0f * static_cast<float>((gi > 0.0f) - (gi < 0.0f)) * step;
  prev = gi;
}

// RMSprop (optim/rmsprop.cpp's scalar arithmetic): g += wd p; sq = alpha sq + (1-alpha) g^2;
// centered: ga = alpha ga + (1-alpha) g, avg = sqrt(sq - ga^2), else sqrt(sq); avg += eps;
// momentum: buf = momentum buf + g / avg, p -= lr buf; else p -= lr g / avg.
struct RmspropConsts {
  float neg_lr, wd, alpha, one_minus_alpha, eps, momentum;
};
GS_HD void rmsprop_element(const RmspropConsts& s, float& p, float g, float& square_avg, float* grad_avg, float* buf) {
  if (s.wd != 0.0f) g = g + s.wd * p;
  square_avg = square_avg * s.alpha + s.one_minus_alpha * g * g;
  float avg;
  if (grad_avg) {
    *grad_avg = *grad_avg * s.alpha + s.one_minus_alpha * g;
    avg = std::sqrt(square_avg + -1.0f * *grad_avg * *grad_avg);
  } else {
    avg = std::sqrt(square_avg);
  }
  avg = avg + s.eps;
  if (buf) {
    *buf = *buf * s.momentum + g / avg;
    p = p + s.neg_lr * *buf;
  } else {
    p = p + s.neg_lr * g / avg;
  }
}

// ---- multi-tensor steps: one launch updates many parameters (optim.cu's *_steps) ----
// One parameter of such a launch: its constants (lr, step count, ... may differ per parameter),
// its buffers and their length. Buffers marked optional are null when the algorithm has none.
struct SgdTensor {
  SgdConsts s;
  float* p;
  const float* g;
  float* buf;  // optional: momentum
  int64_t n;
};
struct AdamTensor {
  AdamConsts s;
  float* p;
  const float* g;
  float *m, *v;
  float* vmax;  // optional: amsgrad
  int64_t n;
};
struct RpropTensor {
  RpropConsts s;
  float* p;
  const float* g;
  float *prev, *step_size;
  int64_t n;
};
struct RmspropTensor {
  RmspropConsts s;
  float* p;
  const float* g;
  float* square_avg;
  float *grad_avg, *buf;  // optional: centered, momentum
  int64_t n;
};
GS_HD void step_element(const SgdTensor& t, int64_t i) { sgd_element(t.s, t.p[i], t.g[i], t.buf ? t.buf + i : nullptr); }
GS_HD void step_element(const AdamTensor& t, int64_t i) {
  adam_element(t.s, t.p[i], t.g[i], t.m[i], t.v[i], t.vmax ? t.vmax + i : nullptr);
}
GS_HD void step_element(const RpropTensor& t, int64_t i) {
  rprop_element(t.s, t.p[i], t.g[i], t.prev[i], t.step_size[i]);
}
GS_HD void step_element(const RmspropTensor& t, int64_t i) {
  rmsprop_element(t.s, t.p[i], t.g[i], t.square_avg[i], t.grad_avg ? t.grad_avg + i : nullptr,
                  t.buf ? t.buf + i : nullptr);
}

// The launch's table, passed by value as the kernel's argument (CUDA allows 4 KiB of them): the
// tensors and, for each, the first block of the grid that works on it. Block b takes elements
// [(b - first_block[k]) kStepChunk, + kStepChunk) of the tensor k whose range holds b.
constexpr int64_t kStepChunk = 4 * kBlockThreads;
constexpr size_t kKernelArgBytes = 4096;
template <class T> constexpr int step_list_capacity() {
  return static_cast<int>((kKernelArgBytes - 16) / (sizeof(T) + sizeof(int64_t)));
}
template <class T, int Capacity> struct StepList {
  T tensors[Capacity];
  int64_t first_block[Capacity];
  int count;
};
// The entry whose block range holds `block`: the last k with first_block[k] <= block.
GS_HD int step_list_entry(const int64_t* first_block, int count, int64_t block) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (first_block[mid] <= block) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

}  // namespace gs::kernels::cuda
