// Host-side proof of the CUDA kernels' index arithmetic (kernels/cuda/index_math.h,
// reduce_math.h): the same __host__ __device__ functions the kernels call, run over emulated
// grids and blocks on the CPU, checked against the CPU `ref` kernels. Runs without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/elementwise_ops.h"
#include "tensor/random.h"
#include "tests/kernels/cuda_emulator.h"

namespace gs {
namespace {
namespace kc = kernels::cuda;
using kernels::ReduceOp;
using test::emulate_block_reduce;
using test::emulate_grid_stride;

std::vector<float> random_floats(size_t n, uint64_t seed, double lo = -2, double hi = 2) {
  Generator g(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(lo + (hi - lo) * g.uniform());
  return v;
}

void expect_all_once(const std::vector<int>& visits) {
  for (size_t i = 0; i < visits.size(); ++i) ASSERT_EQ(visits[i], 1) << "element " << i;
}

void expect_near_all(const std::vector<float>& a, const std::vector<float>& b, double tol, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(b[i])) {
      ASSERT_TRUE(std::isnan(a[i])) << what << " at " << i;
      continue;
    }
    ASSERT_NEAR(a[i], b[i], tol * (1 + std::abs(b[i]))) << what << " at " << i;
  }
}

TEST(CudaIndexMath, LaunchGeometryCoversEveryElementOnce) {
  EXPECT_EQ(kc::blocks_for(0, 256), 1);
  EXPECT_EQ(kc::blocks_for(256, 256), 1);
  EXPECT_EQ(kc::blocks_for(257, 256), 2);
  EXPECT_EQ(kc::blocks_for(int64_t(1) << 40, 256), kc::kMaxBlocks);
  for (int64_t n : {1, 31, 96, 97, 1000}) expect_all_once(emulate_grid_stride(n, 3, 32, [](int64_t) {}));
}

// The broadcast layout offsets give the same result as the CPU binary ref on broadcast and
// transposed operands.
TEST(CudaIndexMath, BinaryBroadcastOverEmulatedGrid) {
  const std::vector<int64_t> shape{3, 4, 5};
  auto a = random_floats(3 * 4 * 5, 1), b = random_floats(4, 2, 0.5, 2);  // b is (4,1) broadcast
  std::vector<int64_t> a_strides{1, 3 * 5, 3};                            // a permuted: (5,4,3) data
  std::vector<int64_t> b_strides{0, 1, 0};
  for (auto op : {kernels::BinaryOp::Add, kernels::BinaryOp::Div, kernels::BinaryOp::Maximum,
                  kernels::BinaryOp::GeluBackward, kernels::BinaryOp::ClampBackward}) {
    std::vector<float> expected(60), got(60, -1);
    kernels::binary_table<float>().get("ref")(op, a.data(), a_strides.data(), b.data(), b_strides.data(),
                                              expected.data(), shape.data(), 3, -0.5, 0.5);
    kc::Layout l;
    l.ndim = 3;
    for (int d = 0; d < 3; ++d) l.shape[d] = shape[d], l.strides[0][d] = a_strides[d], l.strides[1][d] = b_strides[d];
    auto visits = emulate_grid_stride(60, 2, 32, [&](int64_t i) {
      got[i] = kc::binary_apply(op, a[kc::layout_offset(l, 0, i)], b[kc::layout_offset(l, 1, i)], -0.5f, 0.5f);
    });
    expect_all_once(visits);
    expect_near_all(got, expected, 1e-6, kernels::binary_op_name(op));
  }
}

TEST(CudaIndexMath, StridedCopyOffsets) {
  // dst (2,3,4) contiguous from a src laid out as its (4,3,2) transpose.
  const std::vector<int64_t> shape{2, 3, 4}, src_strides{1, 2, 6}, dst_strides{12, 4, 1};
  auto src = random_floats(24, 3);
  std::vector<float> expected(24), got(24);
  kernels::copy_strided<float, float>(src.data(), src_strides.data(), expected.data(), dst_strides.data(), shape.data(),
                                      3);
  kc::Layout l;
  l.ndim = 3;
  for (int d = 0; d < 3; ++d) l.shape[d] = shape[d], l.strides[0][d] = src_strides[d], l.strides[1][d] = dst_strides[d];
  expect_all_once(emulate_grid_stride(
      24, 1, 32, [&](int64_t i) { got[kc::layout_offset(l, 1, i)] = src[kc::layout_offset(l, 0, i)]; }));
  EXPECT_EQ(got, expected);
}

// reduce_block: a block of 256 threads per output, per-thread partials, the shuffle tree.
TEST(CudaIndexMath, BlockReductionMatchesRef) {
  const int64_t outer = 3, r = 1000, inner = 2;
  auto in = random_floats(outer * r * inner, 4);
  in[5 * inner + 1] = std::numeric_limits<float>::quiet_NaN();  // (o=0, k=5, i=1): max/min must be NaN there
  for (auto op : {ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min}) {
    std::vector<float> expected(outer * inner), got(outer * inner);
    kernels::reduce_table<float>().get("ref")(op, in.data(), expected.data(), outer, r, inner);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        std::vector<float> partials(kc::kBlockThreads);
        for (int t = 0; t < kc::kBlockThreads; ++t)
          partials[t] = kc::reduce_thread_partial(op, in.data(), r, inner, o, i, t, kc::kBlockThreads);
        got[o * inner + i] = kc::reduce_finish(op, emulate_block_reduce(op, partials), r);
      }
    expect_near_all(got, expected, 1e-5, "reduce");
  }
}

TEST(CudaIndexMath, WarpTreeWithFewerWarpsThanLanes) {
  // 64 threads = 2 warps: lanes 2..31 of the final tree read the identity, not garbage.
  std::vector<float> partials(64);
  for (int t = 0; t < 64; ++t) partials[t] = static_cast<float>(t - 40);
  EXPECT_EQ(emulate_block_reduce(ReduceOp::Max, partials), 23.0f);
  EXPECT_EQ(emulate_block_reduce(ReduceOp::Min, partials), -40.0f);
  EXPECT_EQ(emulate_block_reduce(ReduceOp::Sum, partials), static_cast<float>(64 * 63 / 2 - 40 * 64));
}

// gemm_tiled: per block, each K-step is phase 1 (every thread loads) then phase 2 (every thread
// accumulates), exactly the two barrier-separated phases of the kernel.
void emulate_tiled_gemm(const kc::GemmArgs& a) {
  const int64_t grid_y = (a.M + kc::kGemmTile - 1) / kc::kGemmTile, grid_x = (a.N + kc::kGemmTile - 1) / kc::kGemmTile;
  float tile_a[kc::kGemmTile][kc::kGemmTile], tile_b[kc::kGemmTile][kc::kGemmTile];
  for (int64_t by = 0; by < grid_y; ++by)
    for (int64_t bx = 0; bx < grid_x; ++bx) {
      std::vector<float> acc(kc::kGemmTile * kc::kGemmTile, 0.0f);
      for (int64_t t = 0; t < kc::gemm_k_steps(a.K); ++t) {
        for (int ty = 0; ty < kc::kGemmTile; ++ty)
          for (int tx = 0; tx < kc::kGemmTile; ++tx) kc::gemm_load_tiles(a, by, bx, t, ty, tx, tile_a, tile_b);
        for (int ty = 0; ty < kc::kGemmTile; ++ty)
          for (int tx = 0; tx < kc::kGemmTile; ++tx)
            acc[ty * kc::kGemmTile + tx] = kc::gemm_tile_dot(tile_a, tile_b, ty, tx, acc[ty * kc::kGemmTile + tx]);
      }
      for (int ty = 0; ty < kc::kGemmTile; ++ty)
        for (int tx = 0; tx < kc::kGemmTile; ++tx) kc::gemm_store(a, by, bx, ty, tx, acc[ty * kc::kGemmTile + tx]);
    }
}

TEST(CudaIndexMath, TiledGemmMatchesRefForEveryTransposeAndEdge) {
  const int64_t M = 37, N = 23, K = 41;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (float beta : {0.0f, 0.5f}) {
        // Stored with padding in the leading dims, as strided views are.
        const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 1;
        auto A = random_floats((ta ? K : M) * lda, 5), B = random_floats((tb ? N : K) * ldb, 6);
        auto C0 = random_floats(M * ldc, 7);
        if (beta == 0.0f) C0.assign(C0.size(), std::numeric_limits<float>::quiet_NaN());  // must not be read
        std::vector<float> expected = C0, got = C0;
        kernels::gemm_table<float>().get("ref")(ta, tb, M, N, K, 1.5f, A.data(), lda, B.data(), ldb, beta,
                                                expected.data(), ldc);
        emulate_tiled_gemm({ta, tb, M, N, K, 1.5f, A.data(), lda, B.data(), ldb, beta, got.data(), ldc});
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j)
            ASSERT_NEAR(got[i * ldc + j], expected[i * ldc + j], 1e-4 * (1 + std::abs(expected[i * ldc + j])))
                << "ta=" << ta << " tb=" << tb << " beta=" << beta << " at " << i << "," << j;
      }
}

// The conv2d "im2col" variant's pipeline on the host: im2col_element over the grid, the ref
// GEMM, col2im_element for the data gradient; against the CPU conv2d ref kernels.
struct ConvCase {
  kernels::Conv2dShape s;
};
kernels::Conv2dShape conv_case(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                               int64_t stride, int64_t pad, int64_t dilation, int64_t groups) {
  kernels::Conv2dShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.K = K, s.R = R, s.S = S;
  s.stride_h = s.stride_w = stride, s.pad_h = s.pad_w = pad, s.dilation_h = s.dilation_w = dilation, s.groups = groups;
  s.P = kernels::conv_out_size(H, pad, dilation, R, stride);
  s.Q = kernels::conv_out_size(W, pad, dilation, S, stride);
  return s;
}

TEST(CudaIndexMath, Im2colAndCol2imMatchConvRef) {
  for (const auto& s : {conv_case(2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1), conv_case(1, 4, 9, 8, 6, 3, 2, 2, 1, 2, 2),
                        conv_case(2, 2, 5, 5, 2, 1, 1, 1, 0, 1, 1)}) {
    const int64_t Cg = s.C / s.groups, Kg = s.K / s.groups, CRS = Cg * s.R * s.S, PQ = s.P * s.Q;
    const kc::ConvGeom g{Cg,         s.H,        s.W,     s.R,     s.S,          s.P,         s.Q,
                         s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dilation_h, s.dilation_w};
    auto x = random_floats(s.N * s.C * s.H * s.W, 8), w = random_floats(s.K * CRS, 9);
    auto gy = random_floats(s.N * s.K * PQ, 10);
    auto gemm = kernels::gemm_table<float>().get("ref");
    std::vector<float> y_ref(s.N * s.K * PQ), y(s.N * s.K * PQ), col(CRS * PQ);
    std::vector<float> gx_ref(x.size()), gx(x.size());
    kernels::conv2d_table<float>().get("ref")(s, x.data(), w.data(), nullptr, y_ref.data());
    kernels::conv2d_backward_data_table<float>().get("ref")(s, gy.data(), w.data(), gx_ref.data());
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t grp = 0; grp < s.groups; ++grp) {
        const float* xg = x.data() + (n * s.C + grp * Cg) * s.H * s.W;
        expect_all_once(emulate_grid_stride(CRS * PQ, 4, 32,
                                            [&](int64_t i) { col[i] = kc::im2col_element(g, xg, i / PQ, i % PQ); }));
        gemm(false, false, Kg, PQ, CRS, 1.0f, w.data() + grp * Kg * CRS, CRS, col.data(), PQ, 0.0f,
             y.data() + (n * s.K + grp * Kg) * PQ, PQ);
        gemm(true, false, CRS, PQ, Kg, 1.0f, w.data() + grp * Kg * CRS, CRS, gy.data() + (n * s.K + grp * Kg) * PQ, PQ,
             0.0f, col.data(), PQ);
        float* gxg = gx.data() + (n * s.C + grp * Cg) * s.H * s.W;
        expect_all_once(emulate_grid_stride(Cg * s.H * s.W, 2, 32, [&](int64_t i) {
          gxg[i] = kc::col2im_element(g, col.data(), i / (s.H * s.W), (i / s.W) % s.H, i % s.W);
        }));
      }
    expect_near_all(y, y_ref, 1e-4, "conv2d forward");
    expect_near_all(gx, gx_ref, 1e-4, "conv2d backward data");
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

TEST(CudaIndexMath, PoolingWindowsMatchRef) {
  for (const auto& s : {pool_case(8, 8, 2, 2, 0), pool_case(7, 9, 3, 2, 1), pool_case(6, 5, 3, 1, 1)}) {
    const kc::PoolGeom g{s.H, s.W, s.P, s.Q, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w, s.pad_h, s.pad_w};
    const int64_t planes = s.N * s.C, HW = s.H * s.W, PQ = s.P * s.Q;
    auto x = random_floats(planes * HW, 11);
    x[3] = x[4];  // a tie: the first one wins
    auto gy = random_floats(planes * PQ, 12);
    std::vector<float> y_ref(planes * PQ), y(planes * PQ), gx_ref(planes * HW), gx(planes * HW);
    std::vector<int64_t> am_ref(planes * PQ), am(planes * PQ);
    kernels::max_pool2d_table<float>().get("ref")(s, x.data(), y_ref.data(), am_ref.data());
    kernels::max_pool2d_backward_table<float>().get("ref")(s, gy.data(), am_ref.data(), gx_ref.data());
    expect_all_once(emulate_grid_stride(planes * PQ, 3, 32, [&](int64_t i) {
      y[i] = kc::max_pool_element(g, x.data() + (i / PQ) * HW, (i % PQ) / s.Q, i % s.Q, am[i]);
    }));
    expect_all_once(emulate_grid_stride(planes * HW, 3, 32, [&](int64_t i) {
      gx[i] = kc::max_pool_backward_element(g, gy.data() + (i / HW) * PQ, am.data() + (i / HW) * PQ, (i % HW) / s.W,
                                            i % s.W);
    }));
    EXPECT_EQ(am, am_ref);
    expect_near_all(y, y_ref, 0, "max_pool2d");
    expect_near_all(gx, gx_ref, 1e-6, "max_pool2d backward");
    for (bool include_pad : {true, false}) {
      kernels::avg_pool2d_table<float>().get("ref")(s, x.data(), y_ref.data(), include_pad);
      kernels::avg_pool2d_backward_table<float>().get("ref")(s, gy.data(), gx_ref.data(), include_pad);
      emulate_grid_stride(planes * PQ, 3, 32, [&](int64_t i) {
        y[i] = kc::avg_pool_element(g, x.data() + (i / PQ) * HW, (i % PQ) / s.Q, i % s.Q, include_pad);
      });
      emulate_grid_stride(planes * HW, 3, 32, [&](int64_t i) {
        gx[i] = kc::avg_pool_backward_element(g, gy.data() + (i / HW) * PQ, (i % HW) / s.W, i % s.W, include_pad);
      });
      expect_near_all(y, y_ref, 1e-6, "avg_pool2d");
      expect_near_all(gx, gx_ref, 1e-6, "avg_pool2d backward");
    }
  }
}

TEST(CudaIndexMath, AdaptiveWindowsMatchRef) {
  kernels::Pool2dShape s;
  s.N = 1, s.C = 2, s.H = 7, s.W = 5, s.P = 3, s.Q = 2;
  auto x = random_floats(s.N * s.C * s.H * s.W, 13);
  std::vector<float> y_ref(s.N * s.C * s.P * s.Q), y(y_ref.size());
  kernels::adaptive_avg_pool2d_table<float>().get("ref")(s, x.data(), y_ref.data());
  for (int64_t plane = 0; plane < s.N * s.C; ++plane)
    for (int64_t p = 0; p < s.P; ++p)
      for (int64_t q = 0; q < s.Q; ++q) {
        int64_t h0 = kc::adaptive_start(p, s.P, s.H), h1 = kc::adaptive_end(p, s.P, s.H);
        int64_t w0 = kc::adaptive_start(q, s.Q, s.W), w1 = kc::adaptive_end(q, s.Q, s.W);
        float acc = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) acc += x[plane * s.H * s.W + h * s.W + w];
        y[(plane * s.P + p) * s.Q + q] = acc / static_cast<float>((h1 - h0) * (w1 - w0));
      }
  expect_near_all(y, y_ref, 1e-6, "adaptive_avg_pool2d");
}

TEST(CudaIndexMath, BatchNormChannelWalkVisitsEachElementOnce) {
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
