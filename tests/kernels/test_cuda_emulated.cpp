// The CUDA kernels themselves (kernels/cuda/*_kernels.cuh, the code nvcc compiles for the GPU),
// run on the CPU by the CUDA emulator (cuda_emulator.h: a fiber per thread, real barriers and
// warp shuffles) with the launch geometry of the .cu wrappers, and with small grids that make
// every grid-stride loop wrap; each against the CPU ref kernel. Runs without a GPU. The first
// tests show the emulator itself enforces CUDA's rules, so a kernel that breaks them fails here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/index.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/softmax.h"
#include "tensor/random.h"

// The emulator first: it gives the kernel headers below their CUDA spellings.
#include "kernels/cuda/emulator/cuda_emulator.h"

#include "kernels/cuda/conv2d_kernels.cuh"
#include "kernels/cuda/elementwise_kernels.cuh"
#include "kernels/cuda/gemm_kernels.cuh"
#include "kernels/cuda/index_kernels.cuh"
#include "kernels/cuda/nn_kernels.cuh"
#include "kernels/cuda/optim_kernels.cuh"
#include "kernels/cuda/reduce_kernels.cuh"

namespace gs {
namespace {
namespace kc = kernels::cuda;
namespace emu = kernels::cuda::emu;
using kernels::BinaryOp;
using kernels::ReduceOp;
using kernels::UnaryOp;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> random_floats(size_t n, uint64_t seed, double lo = -2, double hi = 2) {
  Generator g(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(lo + (hi - lo) * g.uniform());
  return v;
}

void expect_near_all(const std::vector<float>& got, const std::vector<float>& expected, double tol,
                     const std::string& what) {
  ASSERT_EQ(got.size(), expected.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(expected[i])) {
      ASSERT_TRUE(std::isnan(got[i])) << what << " at " << i << ": " << got[i] << ", expected NaN";
      continue;
    }
    ASSERT_NEAR(got[i], expected[i], tol * (1 + std::abs(expected[i]))) << what << " at " << i;
  }
}

// The 1-d launches of the .cu wrappers: blocks_for(n) blocks of kBlockThreads, or `blocks` x `threads`.
struct Grid {
  emu::Dim3 blocks, threads;
  std::string name;
};
std::vector<Grid> grids_for(int64_t n) {
  return {{emu::Dim3(unsigned(kc::blocks_for(n, kc::kBlockThreads))), emu::Dim3(kc::kBlockThreads), "wrapper grid"},
          {emu::Dim3(2), emu::Dim3(64), "2 x 64 (grid-stride wraps)"}};
}
// Block-per-row kernels: the wrappers' min(rows, kMaxBlocks) blocks, or 2 blocks of 64 threads
// (two warps: the final shuffle tree reads the identity from 30 lanes).
std::vector<Grid> row_grids(int64_t rows) {
  return {{emu::Dim3(unsigned(rows < kc::kMaxBlocks ? rows : kc::kMaxBlocks)), emu::Dim3(kc::kBlockThreads),
           "wrapper grid"},
          {emu::Dim3(2), emu::Dim3(64), "2 x 64 (a block takes several rows)"}};
}

// ---------------- the emulator keeps CUDA's rules ----------------

void rotate_through_shared(int* out) {
  __shared__ int buf[128];
  buf[threadIdx.x] = int(threadIdx.x) * 10;
  __syncthreads();
  out[threadIdx.x] = buf[(threadIdx.x + 1) % blockDim.x];
}
TEST(CudaEmulator, BarrierMakesEveryWriteVisible) {
  std::vector<int> out(128, -1);
  emu::launch(emu::Dim3(1), emu::Dim3(128), rotate_through_shared, out.data());
  for (int t = 0; t < 128; ++t) ASSERT_EQ(out[t], ((t + 1) % 128) * 10) << t;
  EXPECT_EQ(emu::last_launch().barriers, 1);
}

void half_the_block_syncs(int* out) {
  if (threadIdx.x < 16) __syncthreads();
  out[threadIdx.x] = 1;
}
TEST(CudaEmulator, DivergentBarrierIsAnError) {
  std::vector<int> out(64);
  try {
    emu::launch(emu::Dim3(1), emu::Dim3(64), half_the_block_syncs, out.data());
    FAIL() << "a barrier half the block skips was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("__syncthreads"), std::string::npos) << e.what();
  }
}

void warp_sum(const float* in, float* out) {
  float v = in[threadIdx.x];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (threadIdx.x % 32 == 0) out[threadIdx.x / 32] = v;
}
TEST(CudaEmulator, ShufflesExchangeWithinTheWarp) {
  std::vector<float> in(64), out(2);
  for (int i = 0; i < 64; ++i) in[i] = float(i);
  emu::launch(emu::Dim3(1), emu::Dim3(64), warp_sum, in.data(), out.data());
  EXPECT_EQ(out[0], 31.0f * 32 / 2);
  EXPECT_EQ(out[1], (32.0f + 63) * 32 / 2);
  EXPECT_EQ(emu::last_launch().shuffles, 2 * 5);
  EXPECT_THROW(emu::launch(emu::Dim3(1), emu::Dim3(48), warp_sum, in.data(), out.data()), std::runtime_error);
}

// block_reduce's scheme without its leading barrier, called twice: right when the threads run
// first to last, wrong when warp 0 runs ahead into the second call and overwrites shared[0]
// before the other warps have read the first sum. The orders exist to catch exactly this.
float sum_missing_leading_barrier(float v, float* shared) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < blockDim.x / 32 ? shared[lane] : 0.0f;
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  return shared[0];
}
void two_sums(const float* a, const float* b, float* out) {
  __shared__ float shared[32];
  const float first = sum_missing_leading_barrier(a[threadIdx.x], shared);
  out[threadIdx.x] = first + 1000.0f * sum_missing_leading_barrier(b[threadIdx.x], shared);
}
TEST(CudaEmulator, WarpAheadOrderExposesAMissingBarrier) {
  std::vector<float> a(128, 1.0f), b(128, 2.0f);
  auto run = [&](emu::Order order) {
    emu::set_order(order);
    std::vector<float> out(128);
    emu::launch(emu::Dim3(1), emu::Dim3(128), two_sums, a.data(), b.data(), out.data());
    emu::set_order(emu::Order::Forward);
    return out;
  };
  const std::vector<float> right(128, 128.0f + 1000.0f * 256.0f);
  EXPECT_EQ(run(emu::Order::Forward), right);
  EXPECT_EQ(run(emu::Order::Reverse), right);
  EXPECT_NE(run(emu::Order::WarpAhead), right);
}

void nothing() {}
TEST(CudaEmulator, LaunchLimitsAreChecked) {
  EXPECT_THROW(emu::launch(emu::Dim3(1), emu::Dim3(2048), nothing), std::invalid_argument);
  EXPECT_THROW(emu::launch(emu::Dim3(0), emu::Dim3(32), nothing), std::invalid_argument);
  EXPECT_THROW(emu::launch(emu::Dim3(1, 70000), emu::Dim3(32), nothing), std::invalid_argument);
  emu::launch(emu::Dim3(3, 2), emu::Dim3(8, 4), nothing);
  EXPECT_EQ(emu::last_launch().blocks, 6);
  EXPECT_EQ(emu::last_launch().threads, 6 * 32);
}

// Every kernel test runs in each of the emulator's thread orders (cuda_emulator.h).
class CudaKernelsEmulated : public ::testing::TestWithParam<emu::Order> {
 protected:
  void SetUp() override { emu::set_order(GetParam()); }
  void TearDown() override { emu::set_order(emu::Order::Forward); }
};
INSTANTIATE_TEST_SUITE_P(ThreadOrder, CudaKernelsEmulated,
                         ::testing::Values(emu::Order::Forward, emu::Order::Reverse, emu::Order::WarpAhead),
                         [](const auto& info) {
                           const emu::Order o = info.param;
                           return o == emu::Order::Forward   ? "forward"
                                  : o == emu::Order::Reverse ? "reverse"
                                                             : "warp_ahead";
                         });

// ---------------- elementwise ----------------

TEST_P(CudaKernelsEmulated, UnaryEveryOp) {
  auto x = random_floats(700, 1, -3, 3);
  x[5] = kNaN;
  const int64_t n = int64_t(x.size());
  for (int k = 0; k <= int(UnaryOp::Copy); ++k) {
    const auto op = static_cast<UnaryOp>(k);
    const double alpha = op == UnaryOp::PowScalar ? 2.0 : -0.5, beta = 0.75;
    std::vector<float> expected(x.size());
    kernels::unary_table<float>().get("ref")(op, x.data(), expected.data(), n, alpha, beta);
    for (const auto& g : grids_for(n)) {
      std::vector<float> got(x.size(), -7.0f);
      emu::launch(g.blocks, g.threads, kc::unary_kernel, op, x.data(), got.data(), n, float(alpha), float(beta));
      expect_near_all(got, expected, 2e-6, std::string(kernels::unary_op_name(op)) + ", " + g.name);
    }
  }
}

kc::Layout layout(const std::vector<int64_t>& shape, std::initializer_list<std::vector<int64_t>> strides) {
  kc::Layout l;
  l.ndim = int(shape.size());
  for (int d = 0; d < l.ndim; ++d) l.shape[d] = shape[d];
  int k = 0;
  for (const auto& s : strides) {
    for (int d = 0; d < l.ndim; ++d) l.strides[k][d] = s[d];
    ++k;
  }
  return l;
}

// a is a permuted view, b broadcasts along two axes: the layout offsets must match the CPU ref.
TEST_P(CudaKernelsEmulated, BinaryBroadcastEveryOp) {
  const std::vector<int64_t> shape{3, 4, 5}, a_strides{1, 3 * 5, 3}, b_strides{0, 1, 0};
  auto a = random_floats(60, 2), b = random_floats(4, 3, 0.5, 2);
  a[7] = kNaN;
  const kc::Layout l = layout(shape, {a_strides, b_strides});
  for (int k = 0; k <= int(BinaryOp::ClampBackward); ++k) {
    const auto op = static_cast<BinaryOp>(k);
    std::vector<float> expected(60);
    kernels::binary_table<float>().get("ref")(op, a.data(), a_strides.data(), b.data(), b_strides.data(),
                                              expected.data(), shape.data(), 3, -0.5, 0.5);
    for (const auto& g : grids_for(60)) {
      std::vector<float> got(60, -7.0f);
      emu::launch(g.blocks, g.threads, kc::binary_kernel, op, a.data(), b.data(), got.data(), l, int64_t(60), -0.5f,
                  0.5f);
      expect_near_all(got, expected, 2e-6, std::string(kernels::binary_op_name(op)) + ", " + g.name);
    }
  }
}

TEST_P(CudaKernelsEmulated, WhereWithBroadcastCondition) {
  const std::vector<int64_t> shape{4, 6}, c_strides{1, 0}, a_strides{6, 1}, b_strides{0, 1};
  std::vector<float> cond{1, 0, 0, 2}, a = random_floats(24, 4), b = random_floats(6, 5), expected(24);
  kernels::where_cpu<float>(cond.data(), c_strides.data(), a.data(), a_strides.data(), b.data(), b_strides.data(),
                            expected.data(), shape.data(), 2);
  for (const auto& g : grids_for(24)) {
    std::vector<float> got(24, -7.0f);
    emu::launch(g.blocks, g.threads, kc::where_kernel, cond.data(), a.data(), b.data(), got.data(),
                layout(shape, {c_strides, a_strides, b_strides}), int64_t(24));
    EXPECT_EQ(got, expected) << g.name;
  }
}

// dst (2,3,4) contiguous from a src stored as its (4,3,2) transpose, with float -> int64 casts.
TEST_P(CudaKernelsEmulated, StridedCopyWithCasts) {
  const std::vector<int64_t> shape{2, 3, 4}, src_strides{1, 2, 6}, dst_strides{12, 4, 1};
  auto src = random_floats(24, 6, -50, 50);
  std::vector<int64_t> expected(24);
  kernels::copy_strided<float, int64_t>(src.data(), src_strides.data(), expected.data(), dst_strides.data(),
                                        shape.data(), 3);
  for (const auto& g : grids_for(24)) {
    std::vector<int64_t> got(24, -7);
    emu::launch(g.blocks, g.threads, kc::copy_kernel<float, int64_t>, src.data(), got.data(),
                layout(shape, {src_strides, dst_strides}), int64_t(24));
    EXPECT_EQ(got, expected) << g.name;
  }
}

TEST_P(CudaKernelsEmulated, AxpyAndFill) {
  auto src = random_floats(300, 7), dst0 = random_floats(300, 8);
  std::vector<float> expected(300);
  for (size_t i = 0; i < 300; ++i) expected[i] = dst0[i] + 0.25f * src[i];
  for (const auto& g : grids_for(300)) {
    auto dst = dst0;
    emu::launch(g.blocks, g.threads, kc::axpy_kernel, dst.data(), src.data(), 0.25f, int64_t(300));
    EXPECT_EQ(dst, expected) << g.name;
    std::vector<int64_t> filled(300, 0);
    emu::launch(g.blocks, g.threads, kc::fill_kernel<int64_t>, filled.data(), int64_t(299), int64_t(42));
    EXPECT_EQ(filled[298], 42);
    EXPECT_EQ(filled[299], 0) << "fill wrote past n";
  }
}

// ---------------- reductions, softmax, cross-entropy ----------------

TEST_P(CudaKernelsEmulated, ReductionsBlockAndThreadVariants) {
  struct Shape {
    int64_t outer, r, inner;
  };
  for (const Shape sh : {Shape{3, 1000, 2}, Shape{2, 7, 5}, Shape{1, 1, 1}}) {
    auto in = random_floats(static_cast<size_t>(sh.outer * sh.r * sh.inner), 9);
    if (sh.r > 5) in[5 * sh.inner + 1] = kNaN;  // output (0, 1): max and min must give NaN
    const int64_t n_out = sh.outer * sh.inner;
    for (auto op : {ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min}) {
      std::vector<float> expected(static_cast<size_t>(n_out));
      kernels::reduce_table<float>().get("ref")(op, in.data(), expected.data(), sh.outer, sh.r, sh.inner);
      const std::string what = "reduce op " + std::to_string(int(op)) + " r=" + std::to_string(sh.r);
      for (const auto& g : row_grids(n_out)) {
        std::vector<float> got(static_cast<size_t>(n_out), -7.0f);
        emu::launch(g.blocks, g.threads, kc::reduce_block_kernel, op, in.data(), got.data(), sh.outer, sh.r, sh.inner);
        expect_near_all(got, expected, 1e-5, what + ", block kernel, " + g.name);
      }
      for (const auto& g : grids_for(n_out)) {
        std::vector<float> got(static_cast<size_t>(n_out), -7.0f);
        emu::launch(g.blocks, g.threads, kc::reduce_thread_kernel, op, in.data(), got.data(), sh.outer, sh.r, sh.inner);
        expect_near_all(got, expected, 1e-5, what + ", thread kernel, " + g.name);
      }
    }
  }
}

// Found by a kernel audit: one float accumulator stops growing at 2^24, so the thread variant's
// mean of 2^25 ones was 0.5, and the block variant's mean of 0.1s was 0.0999. Sums go in double.
TEST_P(CudaKernelsEmulated, LongReductionsAccumulateInDouble) {
  const int64_t r = int64_t(1) << 25;
  for (float value : {1.0f, 0.1f}) {
    std::vector<float> in(static_cast<size_t>(r), value);
    for (auto op : {ReduceOp::Sum, ReduceOp::Mean}) {
      std::vector<float> expected(1), block(1, -7.0f), thread(1, -7.0f);
      kernels::reduce_table<float>().get("ref")(op, in.data(), expected.data(), 1, r, 1);
      emu::launch(emu::Dim3(1), emu::Dim3(kc::kBlockThreads), kc::reduce_block_kernel, op, in.data(), block.data(),
                  int64_t(1), r, int64_t(1));
      emu::launch(emu::Dim3(1), emu::Dim3(1), kc::reduce_thread_kernel, op, in.data(), thread.data(), int64_t(1), r,
                  int64_t(1));
      const std::string what =
          std::string(op == ReduceOp::Sum ? "sum" : "mean") + " of 2^25 x " + std::to_string(value);
      EXPECT_NEAR(block[0], expected[0], 1e-6 * std::abs(expected[0])) << what << ", block kernel";
      EXPECT_NEAR(thread[0], expected[0], 1e-6 * std::abs(expected[0])) << what << ", thread kernel";
    }
  }
}

TEST_P(CudaKernelsEmulated, SoftmaxAndLogSoftmaxForwardBackward) {
  for (int64_t cols : {10, 300, 1000}) {
    const int64_t rows = 5;
    auto x = random_floats(static_cast<size_t>(rows * cols), 10, -6, 6),
         gy = random_floats(static_cast<size_t>(rows * cols), 11);
    for (bool log : {false, true}) {
      std::vector<float> y_ref(x.size()), gx_ref(x.size());
      kernels::softmax_table<float>().get("ref")(x.data(), y_ref.data(), rows, cols, log);
      kernels::softmax_backward_table<float>().get("ref")(y_ref.data(), gy.data(), gx_ref.data(), rows, cols, log);
      const std::string what = std::string(log ? "log_softmax" : "softmax") + " cols=" + std::to_string(cols);
      for (const auto& g : row_grids(rows)) {
        std::vector<float> y(x.size(), -7.0f), gx(x.size(), -7.0f);
        emu::launch(g.blocks, g.threads, kc::softmax_kernel, x.data(), y.data(), rows, cols, log);
        expect_near_all(y, y_ref, 2e-5, what + ", " + g.name);
        emu::launch(g.blocks, g.threads, kc::softmax_backward_kernel, y_ref.data(), gy.data(), gx.data(), rows, cols,
                    log);
        expect_near_all(gx, gx_ref, 2e-5, what + " backward, " + g.name);
      }
    }
  }
}

TEST_P(CudaKernelsEmulated, CrossEntropyWithSmoothingWeightsAndIgnoredRows) {
  const int64_t rows = 6, ignore = -100;
  for (int64_t cols : {10, 300}) {
    auto x = random_floats(static_cast<size_t>(rows * cols), 12, -5, 5),
         grad_loss = random_floats(static_cast<size_t>(rows), 13, 0.5, 1.5),
         class_weight = random_floats(static_cast<size_t>(cols), 14, 0.2, 3.0);
    double weight_sum = 0;
    for (float w : class_weight) weight_sum += w;
    std::vector<int64_t> target{0, cols - 1, 3, ignore, 7, 1};
    for (bool weighted : {false, true}) {
      const float* w = weighted ? class_weight.data() : nullptr;
      for (double eps : {0.0, 0.1}) {
        std::vector<float> loss_ref(rows), lp_ref(x.size()), gx_ref(x.size());
        kernels::cross_entropy_forward<float>(x.data(), target.data(), w, loss_ref.data(), lp_ref.data(), rows, cols,
                                              eps, ignore);
        kernels::cross_entropy_backward<float>(lp_ref.data(), target.data(), w, weight_sum, grad_loss.data(),
                                               gx_ref.data(), rows, cols, eps, ignore);
        const std::string what = "cross_entropy cols=" + std::to_string(cols) + " eps=" + std::to_string(eps) +
                                 (weighted ? " weighted" : "");
        for (const auto& g : row_grids(rows)) {
          std::vector<float> loss(rows, -7.0f), lp(x.size(), -7.0f);
          emu::launch(g.blocks, g.threads, kc::cross_entropy_forward_kernel, x.data(), target.data(), w, loss.data(),
                      lp.data(), rows, cols, float(eps), ignore);
          expect_near_all(loss, loss_ref, 2e-5, what + ", " + g.name);
          expect_near_all(lp, lp_ref, 2e-5, what + " log_probs, " + g.name);
        }
        for (const auto& g : grids_for(rows * cols)) {
          std::vector<float> gx(x.size(), -7.0f);
          emu::launch(g.blocks, g.threads, kc::cross_entropy_backward_kernel, lp_ref.data(), target.data(), w,
                      float(weight_sum), grad_loss.data(), gx.data(), rows, cols, float(eps), ignore);
          expect_near_all(gx, gx_ref, 2e-5, what + " backward, " + g.name);
        }
      }
    }
  }
}

// Found by a kernel audit: a masked-out class (logit -inf) made the loss NaN without label
// smoothing (the smoothing sum, 0 * -inf, was always added); the CPU leaves that term out.
TEST_P(CudaKernelsEmulated, CrossEntropyWithAMaskedOutLogitIsFinite) {
  const float inf = std::numeric_limits<float>::infinity();
  const int64_t rows = 2, cols = 4;
  std::vector<float> x{1.0f, -inf, 0.5f, 2.0f, 0.1f, 0.2f, -inf, 0.4f}, class_weight{1, 0, 1, 1};
  std::vector<int64_t> target{0, 3};
  for (bool weighted : {false, true}) {
    const float* w = weighted ? class_weight.data() : nullptr;
    std::vector<float> loss_ref(rows), lp_ref(x.size()), loss(rows, -7.0f), lp(x.size(), -7.0f);
    kernels::cross_entropy_forward<float>(x.data(), target.data(), w, loss_ref.data(), lp_ref.data(), rows, cols, 0.0,
                                          -100);
    ASSERT_TRUE(std::isfinite(loss_ref[0]) && std::isfinite(loss_ref[1]));
    for (const auto& g : row_grids(rows)) {
      emu::launch(g.blocks, g.threads, kc::cross_entropy_forward_kernel, x.data(), target.data(), w, loss.data(),
                  lp.data(), rows, cols, 0.0f, int64_t(-100));
      expect_near_all(loss, loss_ref, 2e-6, std::string(weighted ? "weighted, " : "") + g.name);
    }
  }
}

// Row argmax: the first maximum, a NaN wins (the first one), ties go to the lower index.
TEST_P(CudaKernelsEmulated, ArgmaxRows) {
  const int64_t rows = 300, cols = 7;
  auto x = random_floats(static_cast<size_t>(rows * cols), 43);
  x[1 * cols + 3] = kNaN, x[1 * cols + 5] = kNaN;  // row 1: index 3
  x[2 * cols + 0] = 9.0f, x[2 * cols + 4] = 9.0f;  // row 2: index 0
  x[3 * cols + 6] = kNaN;                          // row 3: index 6
  std::vector<int64_t> expected(rows);
  for (int64_t r = 0; r < rows; ++r) {  // the spec, written out
    int64_t best = 0;
    for (int64_t k = 0; k < cols; ++k) {
      const float v = x[r * cols + k];
      if (std::isnan(v)) {
        best = k;
        break;
      }
      if (v > x[r * cols + best]) best = k;
    }
    expected[r] = best;
  }
  EXPECT_EQ(expected[1], 3);
  EXPECT_EQ(expected[2], 0);
  EXPECT_EQ(expected[3], 6);
  for (const auto& g : grids_for(rows)) {
    std::vector<int64_t> got(rows, -1);
    emu::launch(g.blocks, g.threads, kc::argmax_rows_kernel, x.data(), got.data(), rows, cols);
    EXPECT_EQ(got, expected) << g.name;
  }
}

// ---------------- GEMM and convolution ----------------

// gemm.cu's launch of the tiled kernel: a 16x16 block per tile of C.
void emulated_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const unsigned gy = unsigned((M + kc::kGemmTile - 1) / kc::kGemmTile),
                 gx = unsigned((N + kc::kGemmTile - 1) / kc::kGemmTile);
  emu::launch(emu::Dim3(gx, gy), emu::Dim3(kc::kGemmTile, kc::kGemmTile), kc::gemm_tiled_kernel,
              kc::GemmArgs{ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc});
}

TEST_P(CudaKernelsEmulated, TiledGemmEveryTransposeAndEdge) {
  const int64_t M = 37, N = 23, K = 41;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (float beta : {0.0f, 0.5f}) {
        // Leading dims padded as in strided views; with beta 0, C starts as NaN and must not be read.
        const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 1;
        auto A = random_floats(static_cast<size_t>((ta ? K : M) * lda), 14),
             B = random_floats(static_cast<size_t>((tb ? N : K) * ldb), 15);
        auto C0 = random_floats(static_cast<size_t>(M * ldc), 16);
        if (beta == 0.0f) C0.assign(C0.size(), kNaN);
        std::vector<float> expected = C0, got = C0;
        kernels::gemm_table<float>().get("ref")(ta, tb, M, N, K, 1.5f, A.data(), lda, B.data(), ldb, beta,
                                                expected.data(), ldc);
        emulated_gemm(ta, tb, M, N, K, 1.5f, A.data(), lda, B.data(), ldb, beta, got.data(), ldc);
        EXPECT_EQ(emu::last_launch().barriers, 2 * 6 * kc::gemm_k_steps(K));  // 6 blocks, 2 per K step
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j)
            ASSERT_NEAR(got[i * ldc + j], expected[i * ldc + j], 1e-4 * (1 + std::abs(expected[i * ldc + j])))
                << "ta=" << ta << " tb=" << tb << " beta=" << beta << " at " << i << "," << j;
      }
}

// A batch over gridDim.z: entry z's operands and output steps apart (B's step 0: the same B for
// every entry), each entry against the ref GEMM.
TEST_P(CudaKernelsEmulated, TiledGemmBatchOverGridZ) {
  const int64_t M = 21, N = 18, K = 35, batch = 3, lda = K, ldb = N, ldc = N;
  auto A = random_floats(static_cast<size_t>(batch * M * lda), 40), B = random_floats(static_cast<size_t>(K * ldb), 41);
  std::vector<float> expected(static_cast<size_t>(batch * M * ldc)), got(expected.size(), kNaN);
  for (int64_t z = 0; z < batch; ++z)
    kernels::gemm_table<float>().get("ref")(false, false, M, N, K, 1.0f, A.data() + z * M * lda, lda, B.data(), ldb,
                                            0.0f, expected.data() + z * M * ldc, ldc);
  kc::GemmArgs args{false, false, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, got.data(), ldc};
  args.a_step = M * lda, args.b_step = 0, args.c_step = M * ldc;
  emu::launch(emu::Dim3(2, 2, unsigned(batch)), emu::Dim3(kc::kGemmTile, kc::kGemmTile), kc::gemm_tiled_kernel, args);
  expect_near_all(got, expected, 1e-4, "tiled GEMM, batch over gridDim.z");
}

// gemm.cu's row bands (a launch's row tiles stay within gridDim.y): bands of 16 and 5 rows (a
// band of one tile, and bands that cut tiles), op(A) plain and transposed, over a batch, against
// the ref GEMM of the whole product.
TEST_P(CudaKernelsEmulated, TiledGemmInRowBands) {
  const int64_t M = 37, N = 9, K = 13, batch = 2;
  for (bool ta : {false, true})
    for (int64_t band : {16, 5}) {
      const int64_t lda = (ta ? M : K) + 2, ldb = N, ldc = N + 1;
      const int64_t a_size = (ta ? K : M) * lda, c_size = M * ldc;
      auto A = random_floats(static_cast<size_t>(batch * a_size), 50),
           B = random_floats(static_cast<size_t>(K * ldb), 51);
      std::vector<float> expected(static_cast<size_t>(batch * c_size), kNaN), got = expected;
      for (int64_t z = 0; z < batch; ++z)
        kernels::gemm_table<float>().get("ref")(ta, false, M, N, K, 1.0f, A.data() + z * a_size, lda, B.data(), ldb,
                                                0.0f, expected.data() + z * c_size, ldc);
      kc::GemmArgs args{ta, false, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, got.data(), ldc};
      args.a_step = a_size, args.b_step = 0, args.c_step = c_size;
      for (int64_t first = 0; first < M; first += band) {
        const kc::GemmArgs part = kc::gemm_row_band(args, first, std::min(band, M - first));
        const unsigned gy = unsigned((part.M + kc::kGemmTile - 1) / kc::kGemmTile);
        emu::launch(emu::Dim3(1, gy, unsigned(batch)), emu::Dim3(kc::kGemmTile, kc::kGemmTile), kc::gemm_tiled_kernel,
                    part);
      }
      for (int64_t z = 0; z < batch; ++z)
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            const size_t at = static_cast<size_t>(z * c_size + i * ldc + j);
            ASSERT_NEAR(got[at], expected[at], 1e-4 * (1 + std::abs(expected[at])))
                << "ta=" << ta << " band=" << band << " entry " << z << " at " << i << "," << j;
          }
    }
}

kernels::Conv2dShape conv_case(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                               int64_t stride, int64_t pad, int64_t dilation, int64_t groups) {
  kernels::Conv2dShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.K = K, s.R = R, s.S = S;
  s.stride_h = s.stride_w = stride, s.pad_h = s.pad_w = pad, s.dilation_h = s.dilation_w = dilation, s.groups = groups;
  s.P = kernels::conv_out_size(H, pad, dilation, R, stride);
  s.Q = kernels::conv_out_size(W, pad, dilation, S, stride);
  return s;
}

// conv2d.cu's "im2col" pipeline, every kernel emulated, over chunks of nb images (one image at a
// time, a short last chunk, the whole batch): im2col of the chunk, one GEMM per group into the
// channel-major (K, nb*PQ) and the copy back with the bias; gy to channel-major, the data GEMM
// and col2im; the weight GEMM summed over chunks; the bias-gradient block reduction.
TEST_P(CudaKernelsEmulated, Conv2dIm2colPipelineForwardAndBackward) {
  for (const auto& s : {conv_case(3, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1), conv_case(3, 4, 9, 8, 6, 3, 2, 2, 1, 2, 2),
                        conv_case(2, 2, 5, 5, 2, 1, 1, 1, 0, 1, 1)}) {
    const int64_t Cg = s.C / s.groups, Kg = s.K / s.groups, CRS = Cg * s.R * s.S, PQ = s.P * s.Q;
    const kc::ConvGeom g{Cg,         s.H,        s.W,     s.R,     s.S,          s.P,         s.Q,
                         s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dilation_h, s.dilation_w};
    auto x = random_floats(static_cast<size_t>(s.N * s.C * s.H * s.W), 17),
         w = random_floats(static_cast<size_t>(s.K * CRS), 18);
    auto bias = random_floats(static_cast<size_t>(s.K), 19),
         gy = random_floats(static_cast<size_t>(s.N * s.K * PQ), 20);
    std::vector<float> y_ref(gy.size()), gx_ref(x.size()), gw_ref(w.size()), gb_ref(bias.size());
    kernels::conv2d_table<float>().get("ref")(s, x.data(), w.data(), bias.data(), y_ref.data());
    kernels::conv2d_backward_data_table<float>().get("ref")(s, gy.data(), w.data(), gx_ref.data());
    kernels::conv2d_backward_weight_table<float>().get("ref")(s, x.data(), gy.data(), gw_ref.data(), gb_ref.data());

    for (int64_t nb : {int64_t(1), int64_t(2), s.N}) {
      const std::string what = " nb=" + std::to_string(nb) + " groups=" + std::to_string(s.groups);
      std::vector<float> y(gy.size(), kNaN), gx(x.size(), kNaN), gw(w.size(), kNaN), gb(bias.size(), kNaN);
      std::vector<float> col(static_cast<size_t>(s.groups * CRS * nb * PQ)),
          channel_major(static_cast<size_t>(s.K * nb * PQ));
      const emu::Dim3 threads(kc::kBlockThreads);
      auto blocks = [](int64_t n) { return emu::Dim3(unsigned(kc::blocks_for(n, kc::kBlockThreads))); };
      for (int64_t n0 = 0; n0 < s.N; n0 += nb) {
        const int64_t m = std::min(nb, s.N - n0), ld = m * PQ;
        const float* xc = x.data() + n0 * s.C * s.H * s.W;
        const float* gyc = gy.data() + n0 * s.K * PQ;
        emu::launch(blocks(s.groups * CRS * ld), threads, kc::im2col_kernel, g, s.groups, m, xc, col.data());
        for (int64_t grp = 0; grp < s.groups; ++grp)
          emulated_gemm(false, false, Kg, ld, CRS, 1.0f, w.data() + grp * Kg * CRS, CRS, col.data() + grp * CRS * ld,
                        ld, 0.0f, channel_major.data() + grp * Kg * ld, ld);
        emu::launch(blocks(m * s.K * PQ), threads, kc::from_channel_major_kernel, channel_major.data(), bias.data(),
                    y.data() + n0 * s.K * PQ, s.K, m, PQ);
        emu::launch(blocks(s.K * ld), threads, kc::to_channel_major_kernel, gyc, channel_major.data(), s.K, m, PQ);
        for (int64_t grp = 0; grp < s.groups; ++grp)
          emulated_gemm(false, true, Kg, CRS, ld, 1.0f, channel_major.data() + grp * Kg * ld, ld,
                        col.data() + grp * CRS * ld, ld, n0 == 0 ? 0.0f : 1.0f, gw.data() + grp * Kg * CRS, CRS);
        for (int64_t grp = 0; grp < s.groups; ++grp)
          emulated_gemm(true, false, CRS, ld, Kg, 1.0f, w.data() + grp * Kg * CRS, CRS,
                        channel_major.data() + grp * Kg * ld, ld, 0.0f, col.data() + grp * CRS * ld, ld);
        emu::launch(blocks(m * s.C * s.H * s.W), threads, kc::col2im_kernel, g, s.groups, m, col.data(),
                    gx.data() + n0 * s.C * s.H * s.W);
      }
      emu::launch(emu::Dim3(unsigned(s.K)), threads, kc::bias_grad_kernel, gy.data(), gb.data(), s.N, s.K, PQ);
      expect_near_all(y, y_ref, 1e-4, "conv2d forward" + what);
      expect_near_all(gx, gx_ref, 1e-4, "conv2d backward data" + what);
      expect_near_all(gw, gw_ref, 1e-4, "conv2d backward weight" + what);
      expect_near_all(gb, gb_ref, 1e-4, "conv2d backward bias" + what);
    }
  }
}

// The chunk layouts' offsets are inverse permutations, and the chunk size stays within the limit.
TEST(CudaConvChunks, LayoutsAreInversePermutationsAndChunksFitTheLimit) {
  const int64_t K = 5, nb = 3, PQ = 7, n = K * nb * PQ;
  std::vector<int> hits(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = kc::channel_major_offset(i, K, nb, PQ);
    ASSERT_TRUE(j >= 0 && j < n);
    hits[static_cast<size_t>(j)]++;
    EXPECT_EQ(kc::image_major_offset(j, K, nb, PQ), i);
  }
  EXPECT_EQ(std::count(hits.begin(), hits.end(), 1), n);
  // element (image 1, channel 2, pq 4) of (nb, K, PQ) sits at (2, 1*PQ + 4) of (K, nb*PQ)
  EXPECT_EQ(kc::channel_major_offset((1 * K + 2) * PQ + 4, K, nb, PQ), 2 * nb * PQ + 1 * PQ + 4);
  EXPECT_EQ(kc::conv_chunk_images(10, 100, 350), 3);
  EXPECT_EQ(kc::conv_chunk_images(10, 100, 99), 1);  // one image even when it is over the limit
  EXPECT_EQ(kc::conv_chunk_images(10, 100, int64_t(1) << 40), 10);
  EXPECT_EQ(kc::conv_chunk_images(0, 100, 1000), 1);
  EXPECT_EQ(kc::conv_chunk_images(4, 0, 1000), 4);  // empty images: all at once
}

// ---------------- batch norm, pooling, dropout ----------------

TEST_P(CudaKernelsEmulated, BatchNormTrainAndEvalForwardBackwardDoubleBackward) {
  struct Case {
    int64_t N, C, L;
  };
  for (const Case c : {Case{4, 3, 50}, Case{300, 2, 1}, Case{1, 2, 1}}) {
    const kernels::BatchNormShape s{c.N, c.C, c.L};
    const size_t n = static_cast<size_t>(c.N * c.C * c.L);
    auto x = random_floats(n, 21, -3, 5), gy = random_floats(n, 22);
    auto gamma = random_floats(static_cast<size_t>(c.C), 23, 0.5, 1.5),
         beta = random_floats(static_cast<size_t>(c.C), 24);
    for (bool train : {true, false}) {
      const std::string what =
          std::string(train ? "train" : "eval") + " N=" + std::to_string(c.N) + " L=" + std::to_string(c.L);
      auto rm_ref = random_floats(static_cast<size_t>(c.C), 25),
           rv_ref = random_floats(static_cast<size_t>(c.C), 26, 0.5, 2);
      std::vector<float> y_ref(n), sm_ref(static_cast<size_t>(c.C)), si_ref(static_cast<size_t>(c.C));
      std::vector<float> gx_ref(n), gg_ref(static_cast<size_t>(c.C)), gb_ref(static_cast<size_t>(c.C));
      auto rm = rm_ref, rv = rv_ref;
      kernels::batch_norm_table<float>().get("ref")(s, x.data(), gamma.data(), beta.data(), rm_ref.data(),
                                                    rv_ref.data(), y_ref.data(), sm_ref.data(), si_ref.data(), train,
                                                    0.1, 1e-5);
      kernels::batch_norm_backward_table<float>().get("ref")(s, x.data(), gy.data(), gamma.data(), sm_ref.data(),
                                                             si_ref.data(), gx_ref.data(), gg_ref.data(), gb_ref.data(),
                                                             train);
      for (const auto& g : row_grids(c.C)) {
        auto rm_g = rm, rv_g = rv;
        std::vector<float> y(n), sm(static_cast<size_t>(c.C)), si(static_cast<size_t>(c.C)), gx(n),
            gg(static_cast<size_t>(c.C)), gb(static_cast<size_t>(c.C));
        emu::launch(g.blocks, g.threads, kc::batch_norm_kernel, s, x.data(), gamma.data(), beta.data(), rm_g.data(),
                    rv_g.data(), y.data(), sm.data(), si.data(), train, 0.1, 1e-5);
        expect_near_all(y, y_ref, 1e-5, what + " y, " + g.name);
        expect_near_all(sm, sm_ref, 1e-5, what + " saved mean, " + g.name);
        expect_near_all(si, si_ref, 1e-5, what + " saved invstd, " + g.name);
        expect_near_all(rm_g, rm_ref, 1e-5, what + " running mean, " + g.name);
        expect_near_all(rv_g, rv_ref, 1e-5, what + " running var, " + g.name);
        emu::launch(g.blocks, g.threads, kc::batch_norm_backward_kernel, s, x.data(), gy.data(), gamma.data(),
                    sm.data(), si.data(), gx.data(), gg.data(), gb.data(), train);
        expect_near_all(gx, gx_ref, 1e-4, what + " gx, " + g.name);
        expect_near_all(gg, gg_ref, 1e-4, what + " ggamma, " + g.name);
        expect_near_all(gb, gb_ref, 1e-4, what + " gbeta, " + g.name);
        // The double backward, with every incoming gradient, then with only ggx.
        for (bool all : {true, false}) {
          std::vector<float> dx_ref(n), dw_ref(static_cast<size_t>(c.C)), dgy_ref(n), dx(n),
              dw(static_cast<size_t>(c.C)), dgy(n);
          const float* ggw = all ? gamma.data() : nullptr;
          const float* ggb = all ? beta.data() : nullptr;
          kernels::batch_norm_double_backward_table<float>().get("ref")(
              s, x.data(), gy.data(), gamma.data(), sm_ref.data(), si_ref.data(), x.data(), ggw, ggb, dx_ref.data(),
              dw_ref.data(), dgy_ref.data(), train);
          emu::launch(g.blocks, g.threads, kc::batch_norm_double_backward_kernel, s, x.data(), gy.data(), gamma.data(),
                      sm.data(), si.data(), x.data(), ggw, ggb, dx.data(), dw.data(), dgy.data(), train);
          const std::string which = what + (all ? " double backward, " : " double backward (ggx only), ") + g.name;
          expect_near_all(dx, dx_ref, 1e-4, which + " dx");
          expect_near_all(dw, dw_ref, 1e-4, which + " dgamma");
          expect_near_all(dgy, dgy_ref, 1e-4, which + " dgy");
        }
      }
    }
  }
}

kernels::Pool2dShape pool_case(int64_t H, int64_t W, int64_t k, int64_t stride, int64_t pad) {
  kernels::Pool2dShape s;
  s.N = 2, s.C = 3, s.H = H, s.W = W, s.kernel_h = s.kernel_w = k, s.stride_h = s.stride_w = stride;
  s.pad_h = s.pad_w = pad;
  s.P = kernels::pool_out_size(H, pad, k, stride);
  s.Q = kernels::pool_out_size(W, pad, k, stride);
  return s;
}
kc::PoolGeom pool_geom(const kernels::Pool2dShape& s) {
  return {s.H, s.W, s.P, s.Q, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w, s.pad_h, s.pad_w};
}

TEST_P(CudaKernelsEmulated, MaxAndAvgPoolingForwardBackward) {
  for (const auto& s : {pool_case(8, 8, 2, 2, 0), pool_case(7, 9, 3, 2, 1), pool_case(6, 5, 3, 1, 1)}) {
    const int64_t planes = s.N * s.C, HW = s.H * s.W, PQ = s.P * s.Q;
    auto x = random_floats(static_cast<size_t>(planes * HW), 27);
    x[3] = x[4];  // a tie: the first one wins
    x[10] = x[11] = kNaN;  // two NaNs in one window: the last one wins, as the CPU kernels and torch
    auto gy = random_floats(static_cast<size_t>(planes * PQ), 28);
    std::vector<float> y_ref(static_cast<size_t>(planes * PQ)), gx_ref(static_cast<size_t>(planes * HW));
    std::vector<int64_t> am_ref(static_cast<size_t>(planes * PQ));
    kernels::max_pool2d_table<float>().get("ref")(s, x.data(), y_ref.data(), am_ref.data());
    kernels::max_pool2d_backward_table<float>().get("ref")(s, gy.data(), am_ref.data(), gx_ref.data());
    const std::string shape = " H=" + std::to_string(s.H) + " k=" + std::to_string(s.kernel_h);
    for (const auto& g : grids_for(planes * PQ)) {
      std::vector<float> y(y_ref.size()), gx(gx_ref.size());
      std::vector<int64_t> am(am_ref.size());
      emu::launch(g.blocks, g.threads, kc::max_pool_kernel, pool_geom(s), planes, x.data(), y.data(), am.data());
      emu::launch(g.blocks, g.threads, kc::max_pool_backward_kernel, pool_geom(s), planes, gy.data(), am.data(),
                  gx.data());
      EXPECT_EQ(am, am_ref) << shape << ", " << g.name;
      expect_near_all(y, y_ref, 0, "max_pool2d" + shape + ", " + g.name);
      expect_near_all(gx, gx_ref, 1e-6, "max_pool2d backward" + shape + ", " + g.name);
      for (bool include_pad : {true, false}) {
        std::vector<float> ya_ref(y_ref.size()), gxa_ref(gx_ref.size());
        kernels::avg_pool2d_table<float>().get("ref")(s, x.data(), ya_ref.data(), include_pad);
        kernels::avg_pool2d_backward_table<float>().get("ref")(s, gy.data(), gxa_ref.data(), include_pad);
        emu::launch(g.blocks, g.threads, kc::avg_pool_kernel, pool_geom(s), planes, x.data(), y.data(), include_pad);
        emu::launch(g.blocks, g.threads, kc::avg_pool_backward_kernel, pool_geom(s), planes, gy.data(), gx.data(),
                    include_pad);
        expect_near_all(y, ya_ref, 1e-6, "avg_pool2d" + shape + ", " + g.name);
        expect_near_all(gx, gxa_ref, 1e-6, "avg_pool2d backward" + shape + ", " + g.name);
      }
    }
  }
}

TEST_P(CudaKernelsEmulated, AdaptiveAvgPoolingForwardBackward) {
  for (auto [P, Q] : {std::pair<int64_t, int64_t>{3, 2}, {1, 1}, {7, 5}, {4, 3}}) {
    kernels::Pool2dShape s;
    s.N = 2, s.C = 2, s.H = 7, s.W = 5, s.P = P, s.Q = Q;
    const int64_t planes = s.N * s.C;
    auto x = random_floats(static_cast<size_t>(planes * s.H * s.W), 29),
         gy = random_floats(static_cast<size_t>(planes * P * Q), 30);
    std::vector<float> y_ref(gy.size()), gx_ref(x.size());
    kernels::adaptive_avg_pool2d_table<float>().get("ref")(s, x.data(), y_ref.data());
    kernels::adaptive_avg_pool2d_backward_table<float>().get("ref")(s, gy.data(), gx_ref.data());
    const std::string shape = " to " + std::to_string(P) + "x" + std::to_string(Q);
    for (const auto& g : grids_for(planes * P * Q)) {
      std::vector<float> y(y_ref.size()), gx(gx_ref.size());
      emu::launch(g.blocks, g.threads, kc::adaptive_avg_pool_kernel, pool_geom(s), planes, x.data(), y.data());
      emu::launch(g.blocks, g.threads, kc::adaptive_avg_pool_backward_kernel, pool_geom(s), planes, gy.data(),
                  gx.data());
      expect_near_all(y, y_ref, 1e-6, "adaptive_avg_pool2d" + shape + ", " + g.name);
      expect_near_all(gx, gx_ref, 1e-6, "adaptive_avg_pool2d backward" + shape + ", " + g.name);
    }
  }
}

// The mask depends on (seed, offset, i) only, never on the launch geometry.
TEST_P(CudaKernelsEmulated, DropoutMaskIndependentOfGrid) {
  const int64_t n = 1000;
  const float p = 0.3f, scale = 1.0f / 0.7f;
  std::vector<float> expected(n);
  for (int64_t i = 0; i < n; ++i) expected[i] = kc::dropout_mask_element(99, 4, i, p, scale);
  for (const auto& g : grids_for(n)) {
    std::vector<float> mask(n, -7.0f);
    emu::launch(g.blocks, g.threads, kc::dropout_kernel, mask.data(), n, p, scale, uint64_t(99), uint64_t(4));
    EXPECT_EQ(mask, expected) << g.name;
  }
}

// ---------------- index ops ----------------

// (outer, d, inner) = (3, 5, 4) gathered / selected to k = 6 along d, with repeated indices so
// scatter_add and index_add must add several sources into one place.
TEST_P(CudaKernelsEmulated, GatherScatterIndexSelectIndexAdd) {
  const int64_t outer = 3, d = 5, k = 6, inner = 4;
  auto x = random_floats(static_cast<size_t>(outer * d * inner), 40);
  auto src = random_floats(static_cast<size_t>(outer * k * inner), 41);
  std::vector<int64_t> index(static_cast<size_t>(outer * k * inner)), index1{4, 0, 4, 2, 2, 4};
  Generator gen(42);
  for (auto& v : index) v = static_cast<int64_t>(gen.uniform() * d) % d;
  const size_t n_out = static_cast<size_t>(outer * k * inner), n_acc = static_cast<size_t>(outer * d * inner);
  std::vector<float> gather_ref(n_out), select_ref(n_out), scatter_ref(x), add_ref(x);
  kernels::gather<float>(x.data(), index.data(), gather_ref.data(), outer, d, k, inner);
  kernels::index_select<float>(x.data(), index1.data(), select_ref.data(), outer, d, k, inner);
  kernels::scatter_add<float>(scatter_ref.data(), index.data(), src.data(), outer, d, k, inner);
  kernels::index_add<float>(add_ref.data(), index1.data(), src.data(), outer, d, k, inner);
  for (const auto& g : grids_for(static_cast<int64_t>(n_out))) {
    std::vector<float> out(n_out, -7.0f), acc = x;
    emu::launch(g.blocks, g.threads, kc::gather_kernel<float>, x.data(), index.data(), out.data(), outer, d, k, inner);
    EXPECT_EQ(out, gather_ref) << "gather, " << g.name;
    emu::launch(g.blocks, g.threads, kc::index_select_kernel<float>, x.data(), index1.data(), out.data(), outer, d, k,
                inner);
    EXPECT_EQ(out, select_ref) << "index_select, " << g.name;
    emu::launch(g.blocks, g.threads, kc::scatter_add_kernel<float>, acc.data(), index.data(), src.data(), outer, d, k,
                inner);
    expect_near_all(acc, scatter_ref, 1e-6, "scatter_add, " + g.name);  // the order of the adds may differ
    acc = x;
    emu::launch(g.blocks, g.threads, kc::index_add_kernel<float>, acc.data(), index1.data(), src.data(), outer, d, k,
                inner);
    expect_near_all(acc, add_ref, 1e-6, "index_add, " + g.name);
    std::vector<int64_t> iacc(n_acc, 5), iref(n_acc, 5), isrc(n_out);
    for (size_t i = 0; i < n_out; ++i) isrc[i] = static_cast<int64_t>(i) - 40;
    kernels::scatter_add<int64_t>(iref.data(), index.data(), isrc.data(), outer, d, k, inner);
    emu::launch(g.blocks, g.threads, kc::scatter_add_kernel<int64_t>, iacc.data(), index.data(), isrc.data(), outer, d,
                k, inner);
    EXPECT_EQ(iacc, iref) << "scatter_add i64, " << g.name;
  }
}

// ---------------- fused optimizer steps ----------------
// The multi-tensor kernel against optim_math.h's element functions (those are checked against
// the CPU optimizers in tests/optim/test_cuda_optim_math.cpp): several tensors of different
// sizes (one empty, one of many chunks, one not a multiple of the block) with their own
// constants in one launch, with the wrapper's grid (a block per chunk) and with a grid of
// 64-thread blocks, where each thread walks its chunk.

// The grid optim.cu launches for the list (first_block filled in), and the list itself.
template <class T> kc::StepList<T, kc::step_list_capacity<T>()> step_list(const std::vector<T>& tensors,
                                                                         int64_t* blocks) {
  kc::StepList<T, kc::step_list_capacity<T>()> list{};
  *blocks = 0;
  for (const T& t : tensors) {
    if (t.n == 0) continue;
    list.tensors[list.count] = t;
    list.first_block[list.count++] = *blocks;
    *blocks += (t.n + kc::kStepChunk - 1) / kc::kStepChunk;
  }
  return list;
}
template <class T> void launch_step_list(const std::vector<T>& tensors, unsigned threads) {
  int64_t blocks = 0;
  auto list = step_list(tensors, &blocks);
  emu::launch(emu::Dim3(unsigned(blocks)), emu::Dim3(threads), kc::multi_tensor_step_kernel<T, kc::step_list_capacity<T>()>,
              list);
}

TEST(CudaStepList, EveryElementOnceAndTheRightEntryPerBlock) {
  const std::vector<int64_t> sizes{kc::kStepChunk * 3 + 5, 1, 0, kc::kStepChunk, 700};
  std::vector<int64_t> first{0};
  for (int64_t n : sizes) first.push_back(first.back() + (n + kc::kStepChunk - 1) / kc::kStepChunk);
  // Entries with no blocks share a start with the next one; the lookup must pick the one with blocks.
  std::vector<int64_t> starts;
  for (size_t k = 0; k < sizes.size(); ++k)
    if (sizes[k]) starts.push_back(first[k]);
  for (int64_t b = 0; b < first.back(); ++b) {
    const int k = kc::step_list_entry(starts.data(), int(starts.size()), b);
    EXPECT_LE(starts[size_t(k)], b);
    if (size_t(k) + 1 < starts.size()) {
      EXPECT_GT(starts[size_t(k) + 1], b);
    }
  }
  EXPECT_LE(sizeof(kc::StepList<kc::AdamTensor, kc::step_list_capacity<kc::AdamTensor>()>), kc::kKernelArgBytes);
  EXPECT_GE(kc::step_list_capacity<kc::AdamTensor>(), 30);  // a model's parameters: one launch
}

TEST_P(CudaKernelsEmulated, FusedOptimizerSteps) {
  const std::vector<int64_t> sizes{kc::kStepChunk * 3 + 5, 0, 1, 700};
  struct Buffers {
    std::vector<float> p, g, a, b, c;
  };
  std::vector<Buffers> init;
  for (size_t k = 0; k < sizes.size(); ++k) {
    const int64_t n = sizes[k];
    const uint64_t seed = 100 * k;
    init.push_back({random_floats(n, seed + 1), random_floats(n, seed + 2), random_floats(n, seed + 3),
                    random_floats(n, seed + 4, 0, 1), random_floats(n, seed + 5, 0.01, 0.1)});
  }
  for (unsigned threads : {unsigned(kc::kBlockThreads), 64u}) {
    const std::string grid = threads == 64 ? "64-thread blocks" : "wrapper grid";
    for (bool optional : {false, true}) {
      // sgd (momentum buffer optional), each tensor its own lr
      auto got = init, want = init;
      std::vector<kc::SgdTensor> list;
      for (size_t k = 0; k < sizes.size(); ++k) {
        const auto s = kc::make_sgd_consts(0.1 * double(k + 1), 0.01, 0.9, 0.1, optional, optional, k == 2);
        for (int64_t i = 0; i < sizes[k]; ++i)
          kc::sgd_element(s, want[k].p[size_t(i)], want[k].g[size_t(i)], optional ? &want[k].a[size_t(i)] : nullptr);
        list.push_back({s, got[k].p.data(), got[k].g.data(), optional ? got[k].a.data() : nullptr, sizes[k]});
      }
      launch_step_list(list, threads);
      for (size_t k = 0; k < sizes.size(); ++k) {
        EXPECT_EQ(got[k].p, want[k].p) << "sgd tensor " << k << ", " << grid;
        EXPECT_EQ(got[k].a, want[k].a) << "sgd tensor " << k << ", " << grid;
      }
    }
    for (bool amsgrad : {false, true}) {
      auto got = init, want = init;
      std::vector<kc::AdamTensor> list;
      for (size_t k = 0; k < sizes.size(); ++k) {
        const auto s = kc::make_adam_consts(1e-2, 0.01, 0.9, 0.999, 1e-8, int64_t(k + 1), true, amsgrad);
        for (int64_t i = 0; i < sizes[k]; ++i) {
          const size_t j = size_t(i);
          kc::adam_element(s, want[k].p[j], want[k].g[j], want[k].a[j], want[k].b[j], amsgrad ? &want[k].c[j] : nullptr);
        }
        list.push_back({s, got[k].p.data(), got[k].g.data(), got[k].a.data(), got[k].b.data(),
                        amsgrad ? got[k].c.data() : nullptr, sizes[k]});
      }
      launch_step_list(list, threads);
      for (size_t k = 0; k < sizes.size(); ++k) {
        EXPECT_EQ(got[k].p, want[k].p) << "adam tensor " << k << " amsgrad=" << amsgrad << ", " << grid;
        EXPECT_EQ(got[k].a, want[k].a);
        EXPECT_EQ(got[k].b, want[k].b);
        EXPECT_EQ(got[k].c, want[k].c);
      }
    }
    for (bool centered_momentum : {false, true}) {
      auto got = init, want = init;
      for (auto* set : {&got, &want})  // square_avg in [1, 2]: above grad_avg^2, so no sqrt of a negative
        for (auto& t : *set)
          for (float& x : t.b) x += 1.0f;
      std::vector<kc::RmspropTensor> list;
      for (size_t k = 0; k < sizes.size(); ++k) {
        const kc::RmspropConsts s{-0.01f * float(k + 1), 0.02f, 0.9f, 0.1f, 1e-6f, centered_momentum ? 0.9f : 0.0f};
        for (int64_t i = 0; i < sizes[k]; ++i) {
          const size_t j = size_t(i);
          kc::rmsprop_element(s, want[k].p[j], want[k].g[j], want[k].b[j],
                              centered_momentum ? &want[k].c[j] : nullptr, centered_momentum ? &want[k].a[j] : nullptr);
        }
        list.push_back({s, got[k].p.data(), got[k].g.data(), got[k].b.data(),
                        centered_momentum ? got[k].c.data() : nullptr, centered_momentum ? got[k].a.data() : nullptr,
                        sizes[k]});
      }
      launch_step_list(list, threads);
      for (size_t k = 0; k < sizes.size(); ++k) {
        EXPECT_EQ(got[k].p, want[k].p) << "rmsprop tensor " << k << ", " << grid;
        EXPECT_EQ(got[k].a, want[k].a);
        EXPECT_EQ(got[k].b, want[k].b);
        EXPECT_EQ(got[k].c, want[k].c);
      }
    }
    {
      auto got = init, want = init;
      std::vector<kc::RpropTensor> list;
      for (size_t k = 0; k < sizes.size(); ++k) {
        const kc::RpropConsts r{0.5f, 1.2f, 1e-6f, 50.0f * float(k + 1)};
        for (int64_t i = 0; i < sizes[k]; ++i) {
          const size_t j = size_t(i);
          kc::rprop_element(r, want[k].p[j], want[k].g[j], want[k].a[j], want[k].c[j]);
        }
        list.push_back({r, got[k].p.data(), got[k].g.data(), got[k].a.data(), got[k].c.data(), sizes[k]});
      }
      launch_step_list(list, threads);
      for (size_t k = 0; k < sizes.size(); ++k) {
        EXPECT_EQ(got[k].p, want[k].p) << "rprop tensor " << k << ", " << grid;
        EXPECT_EQ(got[k].a, want[k].a);
        EXPECT_EQ(got[k].c, want[k].c);
      }
    }
  }
}

// Index maths the kernels share: the grid cap and the channel walk of batch norm.
TEST(CudaIndexMath, LaunchGeometryAndChannelWalk) {
  EXPECT_EQ(kc::blocks_for(0, 256), 1);
  EXPECT_EQ(kc::blocks_for(256, 256), 1);
  EXPECT_EQ(kc::blocks_for(257, 256), 2);
  EXPECT_EQ(kc::blocks_for(int64_t(1) << 40, 256), kc::kMaxBlocks);
  const int64_t N = 3, C = 4, L = 5;
  std::vector<int> seen(N * C * L, 0);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t j = 0; j < N * L; ++j) {
      int64_t i = kc::channel_element(j, c, C, L);
      ASSERT_EQ(kc::channel_of(i, C, L), c);
      seen[i]++;
    }
  for (int v : seen) EXPECT_EQ(v, 1);
}

}  // namespace
}  // namespace gs
