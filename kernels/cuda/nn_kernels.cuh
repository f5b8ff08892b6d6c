// Batch norm (a block per channel, double sums; forward, backward, double backward), pooling (a thread per output, or
// per input element for the backward gathers) and the dropout mask (Philox) CUDA kernels. Device code only: nn.cu
// launches these. The CUDA emulator (kernels/cuda/emulator/cuda_emulator.h) runs the very same kernels on the CPU:
// against the CPU ref kernels in tests/kernels/test_cuda_emulated.cpp, and as the device of the emulated build
// (GS_CUDA=EMULATE). Kernels have internal linkage: each includer gets its own copy.
#pragma once
#include <cmath>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/device_code.h"
#include "kernels/cuda/index_math.h"
#include "kernels/cuda/philox.h"

namespace gs::kernels::cuda {
namespace {

__global__ void batch_norm_kernel(BatchNormShape s, const float* x, const float* gamma, const float* beta,
                                  float* running_mean, float* running_var, float* y, float* save_mean,
                                  float* save_invstd, bool use_batch_stats, double momentum, double eps) {
  __shared__ double shared[kWarpSize];
  const int64_t M = s.N * s.L;
  for (int64_t c = blockIdx.x; c < s.C; c += gridDim.x) {
    double mean, var;
    if (use_batch_stats) {
      double sum = 0;
      for (int64_t j = threadIdx.x; j < M; j += blockDim.x) sum += x[channel_element(j, c, s.C, s.L)];
      mean = block_reduce(ReduceOp::Sum, sum, shared) / double(M);
      double sq = 0;
      for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
        double d = double(x[channel_element(j, c, s.C, s.L)]) - mean;
        sq += d * d;
      }
      sq = block_reduce(ReduceOp::Sum, sq, shared);
      var = sq / double(M);
      if (threadIdx.x == 0) {
        if (running_mean) running_mean[c] = float((1 - momentum) * double(running_mean[c]) + momentum * mean);
        if (running_var) {
          double unbiased = M > 1 ? sq / double(M - 1) : var;
          running_var[c] = float((1 - momentum) * double(running_var[c]) + momentum * unbiased);
        }
      }
    } else {
      mean = double(running_mean[c]);
      var = double(running_var[c]);
    }
    const double invstd = 1.0 / sqrt(var + eps);
    if (threadIdx.x == 0) {
      save_mean[c] = float(mean);
      save_invstd[c] = float(invstd);
    }
    const double scale = (gamma ? double(gamma[c]) : 1.0) * invstd;
    const double shift = (beta ? double(beta[c]) : 0.0) - mean * scale;
    for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
      int64_t i = channel_element(j, c, s.C, s.L);
      y[i] = float(double(x[i]) * scale + shift);
    }
  }
}
__global__ void batch_norm_backward_kernel(BatchNormShape s, const float* x, const float* gy, const float* gamma,
                                           const float* save_mean, const float* save_invstd, float* gx, float* ggamma,
                                           float* gbeta, bool use_batch_stats) {
  __shared__ double shared[kWarpSize];
  const int64_t M = s.N * s.L;
  for (int64_t c = blockIdx.x; c < s.C; c += gridDim.x) {
    const double mean = save_mean[c], invstd = save_invstd[c];
    double sum_gy = 0, sum_gy_xhat = 0;
    for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
      int64_t i = channel_element(j, c, s.C, s.L);
      sum_gy += gy[i];
      sum_gy_xhat += double(gy[i]) * (double(x[i]) - mean) * invstd;
    }
    sum_gy = block_reduce(ReduceOp::Sum, sum_gy, shared);
    sum_gy_xhat = block_reduce(ReduceOp::Sum, sum_gy_xhat, shared);
    if (threadIdx.x == 0) {
      if (ggamma) ggamma[c] = float(sum_gy_xhat);
      if (gbeta) gbeta[c] = float(sum_gy);
    }
    if (!gx) continue;
    const double scale = (gamma ? double(gamma[c]) : 1.0) * invstd;
    const double mean_gy = use_batch_stats ? sum_gy / double(M) : 0.0;
    const double mean_gy_xhat = use_batch_stats ? sum_gy_xhat / double(M) : 0.0;
    for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
      int64_t i = channel_element(j, c, s.C, s.L);
      const double xhat = (double(x[i]) - mean) * invstd;
      gx[i] = float(scale * (double(gy[i]) - mean_gy - xhat * mean_gy_xhat));
    }
  }
}
// Batch norm's double backward: the channel's five sums, then each element's dx and dgy from the
// coefficients of batch_norm_double_coefficients (kernels/cpu/batchnorm.h), the CPU kernels' code.
__global__ void batch_norm_double_backward_kernel(BatchNormShape s, const float* x, const float* gy, const float* gamma,
                                                  const float* save_mean, const float* save_invstd, const float* ggx,
                                                  const float* gggamma, const float* ggbeta, float* dx, float* dgamma,
                                                  float* dgy, bool use_batch_stats) {
  __shared__ double shared[kWarpSize];
  const int64_t M = s.N * s.L;
  for (int64_t c = blockIdx.x; c < s.C; c += gridDim.x) {
    const double mean = save_mean[c], invstd = save_invstd[c];
    BatchNormDoubleSums S;
    for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
      int64_t i = channel_element(j, c, s.C, s.L);
      const double xhat = (double(x[i]) - mean) * invstd, g = gy[i];
      S.gy += g;
      S.gy_xhat += g * xhat;
      if (ggx) {
        const double gg = ggx[i];
        S.ggx += gg;
        S.ggx_xhat += gg * xhat;
        S.ggx_gy += gg * g;
      }
    }
    S.gy = block_reduce(ReduceOp::Sum, S.gy, shared);
    S.gy_xhat = block_reduce(ReduceOp::Sum, S.gy_xhat, shared);
    if (ggx) {
      S.ggx = block_reduce(ReduceOp::Sum, S.ggx, shared);
      S.ggx_xhat = block_reduce(ReduceOp::Sum, S.ggx_xhat, shared);
      S.ggx_gy = block_reduce(ReduceOp::Sum, S.ggx_gy, shared);
    }
    const BatchNormDoubleCoefficients k = batch_norm_double_coefficients(
        S, double(M), invstd, gamma ? double(gamma[c]) : 1.0, gggamma ? double(gggamma[c]) : 0.0,
        ggbeta ? double(ggbeta[c]) : 0.0, use_batch_stats);
    if (dgamma && threadIdx.x == 0) dgamma[c] = float(k.dgamma);
    if (!dx && !dgy) continue;
    for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
      int64_t i = channel_element(j, c, s.C, s.L);
      const double xhat = (double(x[i]) - mean) * invstd, gg = ggx ? double(ggx[i]) : 0.0;
      if (dx) dx[i] = float(k.dx_ggx * gg + k.dx_gy * double(gy[i]) + k.dx_xhat * xhat + k.dx_one);
      if (dgy) dgy[i] = float(k.dgy_ggx * gg + k.dgy_xhat * xhat + k.dgy_one);
    }
  }
}
#define GS_GRID_LOOP(i, n) \
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < (n); i += grid_step(gridDim.x, blockDim.x))

__global__ void max_pool_kernel(PoolGeom g, int64_t planes, const float* x, float* y, int64_t* argmax) {
  const int64_t PQ = g.P * g.Q;
  GS_GRID_LOOP(i, planes * PQ) {
    int64_t plane = i / PQ, pq = i % PQ, am = 0;
    y[i] = max_pool_element(g, x + plane * g.H * g.W, pq / g.Q, pq % g.Q, am);
    argmax[i] = am;
  }
}
__global__ void max_pool_backward_kernel(PoolGeom g, int64_t planes, const float* gy, const int64_t* argmax,
                                         float* gx) {
  const int64_t HW = g.H * g.W, PQ = g.P * g.Q;
  GS_GRID_LOOP(i, planes * HW) {
    int64_t plane = i / HW, hw = i % HW;
    gx[i] = max_pool_backward_element(g, gy + plane * PQ, argmax + plane * PQ, hw / g.W, hw % g.W);
  }
}
__global__ void avg_pool_kernel(PoolGeom g, int64_t planes, const float* x, float* y, bool count_include_pad) {
  const int64_t PQ = g.P * g.Q;
  GS_GRID_LOOP(i, planes * PQ) {
    int64_t plane = i / PQ, pq = i % PQ;
    y[i] = avg_pool_element(g, x + plane * g.H * g.W, pq / g.Q, pq % g.Q, count_include_pad);
  }
}
__global__ void avg_pool_backward_kernel(PoolGeom g, int64_t planes, const float* gy, float* gx,
                                         bool count_include_pad) {
  const int64_t HW = g.H * g.W, PQ = g.P * g.Q;
  GS_GRID_LOOP(i, planes * HW) {
    int64_t plane = i / HW, hw = i % HW;
    gx[i] = avg_pool_backward_element(g, gy + plane * PQ, hw / g.W, hw % g.W, count_include_pad);
  }
}
__global__ void adaptive_avg_pool_kernel(PoolGeom g, int64_t planes, const float* x, float* y) {
  const int64_t PQ = g.P * g.Q;
  GS_GRID_LOOP(i, planes * PQ) {
    int64_t plane = i / PQ, p = (i % PQ) / g.Q, q = i % g.Q;
    int64_t h0 = adaptive_start(p, g.P, g.H), h1 = adaptive_end(p, g.P, g.H);
    int64_t w0 = adaptive_start(q, g.Q, g.W), w1 = adaptive_end(q, g.Q, g.W);
    float acc = 0.0f;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) acc += x[plane * g.H * g.W + h * g.W + w];
    y[i] = acc / static_cast<float>((h1 - h0) * (w1 - w0));
  }
}
// Each input element sums the outputs whose adaptive window holds it (a gather over P*Q).
__global__ void adaptive_avg_pool_backward_kernel(PoolGeom g, int64_t planes, const float* gy, float* gx) {
  const int64_t HW = g.H * g.W, PQ = g.P * g.Q;
  GS_GRID_LOOP(i, planes * HW) {
    int64_t plane = i / HW, h = (i % HW) / g.W, w = i % g.W;
    float acc = 0.0f;
    for (int64_t p = 0; p < g.P; ++p) {
      int64_t h0 = adaptive_start(p, g.P, g.H), h1 = adaptive_end(p, g.P, g.H);
      if (h < h0 || h >= h1) continue;
      for (int64_t q = 0; q < g.Q; ++q) {
        int64_t w0 = adaptive_start(q, g.Q, g.W), w1 = adaptive_end(q, g.Q, g.W);
        if (w >= w0 && w < w1) acc += gy[plane * PQ + p * g.Q + q] / static_cast<float>((h1 - h0) * (w1 - w0));
      }
    }
    gx[i] = acc;
  }
}

__global__ void dropout_kernel(float* mask, int64_t n, float p, float keep_scale, uint64_t seed, uint64_t offset) {
  GS_GRID_LOOP(i, n) mask[i] = dropout_mask_element(seed, offset, i, p, keep_scale);
}

#undef GS_GRID_LOOP
}  // namespace
}  // namespace gs::kernels::cuda
