// The emulated build's cuDNN (kernels/cuda/emulator/device/cudnn.cpp), called directly: it
// refuses what cuDNN refuses (inconsistent descriptors, short workspaces, pointers outside device
// memory), blends with alpha and beta as cuDNN defines, and gives a hand-computed answer. Then
// conv2d's cudnn variants on shapes Conv2dEveryVariant leaves out (padding, stride and dilation
// that differ between height and width; empty tensors). Only the emulated build has this cuDNN.
#if GS_CUDA_EMULATED
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "autograd/nn_ops.h"
#include "kernels/cuda/emulator/include/cudnn.h"
#include "tests/cuda/cuda_test_helpers.h"

namespace gs::test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// cudaMalloc'd floats, filled from the host.
struct DeviceFloats {
  explicit DeviceFloats(const std::vector<float>& host) : size(host.size()) {
    EXPECT_EQ(cudaMalloc(&ptr, size * sizeof(float)), cudaSuccess);
    upload(host);
  }
  ~DeviceFloats() { cudaFree(ptr); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
  void upload(const std::vector<float>& host) {
    EXPECT_EQ(cudaMemcpyAsync(ptr, host.data(), size * sizeof(float), cudaMemcpyHostToDevice, nullptr), cudaSuccess);
  }
  std::vector<float> download() const {
    std::vector<float> host(size);
    EXPECT_EQ(cudaMemcpyAsync(host.data(), ptr, size * sizeof(float), cudaMemcpyDeviceToHost, nullptr), cudaSuccess);
    return host;
  }
  float* f() const { return static_cast<float*>(ptr); }
  size_t size;
  void* ptr = nullptr;
};

std::vector<float> random_floats(size_t n, uint64_t seed) { return randf({int64_t(n)}, seed).to_vector<float>(); }

// The descriptors of x (1,2,5,5) * w (3,2,3,3), no padding, unit stride: y is (1,3,3,3).
struct Descriptors {
  Descriptors() {
    EXPECT_EQ(cudnnCreate(&handle), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnCreateTensorDescriptor(&x), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnCreateTensorDescriptor(&y), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnCreateTensorDescriptor(&bias), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnCreateFilterDescriptor(&w), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnCreateConvolutionDescriptor(&conv), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 2, 5, 5), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 3, 3), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetTensor4dDescriptor(bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 1, 1), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 3, 2, 3, 3), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetConvolution2dDescriptor(conv, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
              CUDNN_STATUS_SUCCESS);
  }
  ~Descriptors() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(bias);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroy(handle);
  }
  cudnnStatus_t forward(const DeviceFloats& xd, const DeviceFloats& wd, DeviceFloats& yd, float alpha, float beta,
                        const DeviceFloats& workspace, size_t workspace_bytes) const {
    return cudnnConvolutionForward(handle, &alpha, x, xd.ptr, w, wd.ptr, conv, CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
                                   workspace.ptr, workspace_bytes, &beta, y, yd.ptr);
  }
  cudnnHandle_t handle = nullptr;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
};

struct Buffers {
  DeviceFloats x{random_floats(50, 1)}, w{random_floats(54, 2)}, y{std::vector<float>(27, 7.0f)};
  DeviceFloats workspace{std::vector<float>(64, 0.0f)};  // 256 bytes: more than any call below needs
};

TEST(CudaCudnnEmulated, RefusesWhatCudnnRefuses) {
  GS_REQUIRE_CUDA();
  Descriptors d;
  Buffers b;
  size_t need = 0;
  ASSERT_EQ(
      cudnnGetConvolutionForwardWorkspaceSize(d.handle, d.x, d.w, d.conv, d.y, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, &need),
      CUDNN_STATUS_SUCCESS);
  ASSERT_GT(need, 0u);  // so conv2d.cu's workspace is exercised
  ASSERT_EQ(d.forward(b.x, b.w, b.y, 1, 0, b.workspace, need), CUDNN_STATUS_SUCCESS);

  // y's descriptor says 1x3x4x4; the convolution gives 1x3x3x3. Nothing is written.
  b.y.upload(std::vector<float>(27, 7.0f));
  ASSERT_EQ(cudnnSetTensor4dDescriptor(d.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 4, 4), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(d.forward(b.x, b.w, b.y, 1, 0, b.workspace, need), CUDNN_STATUS_BAD_PARAM);
  EXPECT_NE(std::string(cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM)).find("the convolution gives 1x3x3x3"),
            std::string::npos)
      << cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM);
  cudnnConvolutionFwdAlgoPerf_t perf[8];
  int found = 0;
  EXPECT_EQ(cudnnGetConvolutionForwardAlgorithm_v7(d.handle, d.x, d.w, d.conv, d.y, 8, &found, perf),
            CUDNN_STATUS_BAD_PARAM);
  EXPECT_EQ(b.y.download(), std::vector<float>(27, 7.0f));
  ASSERT_EQ(cudnnSetTensor4dDescriptor(d.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 3, 3), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnGetConvolutionForwardAlgorithm_v7(d.handle, d.x, d.w, d.conv, d.y, 8, &found, perf),
            CUDNN_STATUS_SUCCESS);
  // Four listed, as real lists may hold them: one that cannot run this shape (status NOT_SUPPORTED),
  // one listed usable that refuses when run, one whose workspace no device has, and the computed one.
  ASSERT_EQ(found, 4);
  EXPECT_EQ(perf[0].status, CUDNN_STATUS_NOT_SUPPORTED);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(perf[i].status, CUDNN_STATUS_SUCCESS) << i;
  EXPECT_EQ(perf[1].algo, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
  EXPECT_EQ(perf[2].memory, size_t(1) << 40);
  EXPECT_EQ(perf[3].algo, CUDNN_CONVOLUTION_FWD_ALGO_GEMM);
  EXPECT_EQ(perf[3].memory, need);
  size_t listed = 1;
  EXPECT_EQ(cudnnGetConvolutionForwardWorkspaceSize(d.handle, d.x, d.w, d.conv, d.y, perf[2].algo, &listed),
            CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(listed, size_t(1) << 40);
  EXPECT_EQ(cudnnGetConvolutionForwardWorkspaceSize(d.handle, d.x, d.w, d.conv, d.y, perf[0].algo, &listed),
            CUDNN_STATUS_NOT_SUPPORTED);
  EXPECT_EQ(cudnnGetConvolutionForwardAlgorithm_v7(d.handle, d.x, d.w, d.conv, d.y, 2, &found, perf),
            CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(found, 2);  // the first requestedAlgoCount
  (void)gsEmulatedCudnnTakeRuns();
  {
    const float alpha = 1, beta = 0;
    for (int i : {0, 1})
      EXPECT_EQ(cudnnConvolutionForward(d.handle, &alpha, d.x, b.x.ptr, d.w, b.w.ptr, d.conv, perf[i].algo,
                                        b.workspace.ptr, need, &beta, d.y, b.y.ptr),
                CUDNN_STATUS_NOT_SUPPORTED);
  }
  EXPECT_EQ(gsEmulatedCudnnTakeRuns(),
            (std::vector<int>{CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM}));

  // The filter's channels times the group count must be x's channels; K a multiple of the groups.
  ASSERT_EQ(cudnnSetFilter4dDescriptor(d.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 3, 1, 3, 3), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(d.forward(b.x, b.w, b.y, 1, 0, b.workspace, need), CUDNN_STATUS_BAD_PARAM);  // 1 x 1 group != 2
  ASSERT_EQ(cudnnSetConvolutionGroupCount(d.conv, 2), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(d.forward(b.x, b.w, b.y, 1, 0, b.workspace, need), CUDNN_STATUS_BAD_PARAM);  // K = 3, 2 groups
  ASSERT_EQ(cudnnSetConvolutionGroupCount(d.conv, 1), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetFilter4dDescriptor(d.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 3, 2, 3, 3), CUDNN_STATUS_SUCCESS);

  // A short workspace, a null, host or freed pointer, an output that overlaps an input.
  EXPECT_EQ(d.forward(b.x, b.w, b.y, 1, 0, b.workspace, need - 4), CUDNN_STATUS_BAD_PARAM);
  const float one = 1, zero = 0;
  EXPECT_EQ(cudnnConvolutionForward(d.handle, &one, d.x, nullptr, d.w, b.w.ptr, d.conv, CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
                                    b.workspace.ptr, need, &zero, d.y, b.y.ptr),
            CUDNN_STATUS_BAD_PARAM);
  std::vector<float> host_x(50, 1.0f);
  EXPECT_EQ(cudnnConvolutionForward(d.handle, &one, d.x, host_x.data(), d.w, b.w.ptr, d.conv,
                                    CUDNN_CONVOLUTION_FWD_ALGO_GEMM, b.workspace.ptr, need, &zero, d.y, b.y.ptr),
            CUDNN_STATUS_BAD_PARAM);
  void* freed = nullptr;
  ASSERT_EQ(cudaMalloc(&freed, 4096), cudaSuccess);
  ASSERT_EQ(cudaFree(freed), cudaSuccess);
  EXPECT_EQ(cudnnConvolutionForward(d.handle, &one, d.x, freed, d.w, b.w.ptr, d.conv, CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
                                    b.workspace.ptr, need, &zero, d.y, b.y.ptr),
            CUDNN_STATUS_BAD_PARAM);
  EXPECT_EQ(cudnnConvolutionForward(d.handle, &one, d.x, b.x.ptr, d.w, b.w.ptr, d.conv, CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
                                    b.y.ptr, need, &zero, d.y, b.y.ptr),
            CUDNN_STATUS_BAD_PARAM);  // the workspace is y

  // Valid settings the emulator does not compute; an algorithm other than the one it reports.
  EXPECT_EQ(d.forward(b.x, b.w, b.y, 1, 0, b.workspace, need), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnConvolutionForward(d.handle, &one, d.x, b.x.ptr, d.w, b.w.ptr, d.conv,
                                    CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, b.workspace.ptr, need, &zero, d.y, b.y.ptr),
            CUDNN_STATUS_NOT_SUPPORTED);
  ASSERT_EQ(cudnnSetConvolution2dDescriptor(d.conv, 0, 0, 1, 1, 1, 1, CUDNN_CONVOLUTION, CUDNN_DATA_FLOAT),
            CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(d.forward(b.x, b.w, b.y, 1, 0, b.workspace, need), CUDNN_STATUS_NOT_SUPPORTED);
  ASSERT_EQ(cudnnSetConvolution2dDescriptor(d.conv, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
            CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 2, 5, 5), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(d.forward(b.x, b.w, b.y, 1, 0, b.workspace, need), CUDNN_STATUS_NOT_SUPPORTED);

  // Descriptors: no empty tensors, no negative padding, no zero groups; the bias gradient is 1xKx1x1.
  EXPECT_EQ(cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 0, 2, 5, 5), CUDNN_STATUS_BAD_PARAM);
  EXPECT_EQ(cudnnSetConvolution2dDescriptor(d.conv, -1, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
            CUDNN_STATUS_BAD_PARAM);
  EXPECT_EQ(cudnnSetConvolutionGroupCount(d.conv, 0), CUDNN_STATUS_BAD_PARAM);
  DeviceFloats db(std::vector<float>(4, 0.0f));
  ASSERT_EQ(cudnnSetTensor4dDescriptor(d.bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 4, 1, 1), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnConvolutionBackwardBias(d.handle, &one, d.y, b.y.ptr, &zero, d.bias, db.ptr), CUDNN_STATUS_BAD_PARAM);
  EXPECT_EQ(cudnnAddTensor(d.handle, &one, d.bias, db.ptr, &one, d.y, b.y.ptr), CUDNN_STATUS_BAD_PARAM);  // 4 vs 3
}

// out = alpha op + beta out for each call: beta 1 adds to what out held, beta 0 does not read it
// (NaN there stays out of the result), alpha scales.
TEST(CudaCudnnEmulated, BlendsWithAlphaAndBeta) {
  GS_REQUIRE_CUDA();
  Descriptors d;
  Buffers b;
  const std::vector<float> before = random_floats(54, 3);  // enough for y (27), x (50) and w (54)
  auto prefix = [&](size_t n) { return std::vector<float>(before.begin(), before.begin() + n); };
  // Runs `call` on out (n floats) holding NaN with beta 0, then holding `before` with (2, 1) and (1, 0.5).
  auto check = [&](const char* what, size_t n, DeviceFloats& out, auto call) {
    out.upload(std::vector<float>(n, kNaN));
    const cudnnStatus_t status = call(1.0f, 0.0f);
    ASSERT_EQ(status, CUDNN_STATUS_SUCCESS) << what << ": " << cudnnGetErrorString(status);
    const std::vector<float> op = out.download();
    for (size_t i = 0; i < n; ++i) ASSERT_FALSE(std::isnan(op[i])) << what << ": beta 0 read NaN at " << i;
    for (auto [alpha, beta] : {std::pair{2.0f, 1.0f}, std::pair{1.0f, 0.5f}}) {
      out.upload(prefix(n));
      ASSERT_EQ(call(alpha, beta), CUDNN_STATUS_SUCCESS) << what;
      const std::vector<float> got = out.download();
      for (size_t i = 0; i < n; ++i)
        ASSERT_NEAR(got[i], alpha * op[i] + beta * before[i], 1e-5 * (1 + std::abs(op[i])))
            << what << " alpha " << alpha << " beta " << beta << " at " << i;
    }
  };
  DeviceFloats& ws = b.workspace;
  check("forward", 27, b.y, [&](float alpha, float beta) { return d.forward(b.x, b.w, b.y, alpha, beta, ws, 256); });
  check("backward data", 50, b.x, [&](float alpha, float beta) {
    return cudnnConvolutionBackwardData(d.handle, &alpha, d.w, b.w.ptr, d.y, b.y.ptr, d.conv,
                                        CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, ws.ptr, 256, &beta, d.x, b.x.ptr);
  });
  check("backward filter", 54, b.w, [&](float alpha, float beta) {
    return cudnnConvolutionBackwardFilter(d.handle, &alpha, d.x, b.x.ptr, d.y, b.y.ptr, d.conv,
                                          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, ws.ptr, 256, &beta, d.w, b.w.ptr);
  });
  DeviceFloats db(std::vector<float>(3, 0.0f));
  check("backward bias", 3, db, [&](float alpha, float beta) {
    return cudnnConvolutionBackwardBias(d.handle, &alpha, d.y, b.y.ptr, &beta, d.bias, db.ptr);
  });
  check("add tensor", 27, b.y,
        [&](float alpha, float beta) { return cudnnAddTensor(d.handle, &alpha, d.bias, db.ptr, &beta, d.y, b.y.ptr); });
}

// x (1,1,3,3) = 1..9, w (1,1,2,2) = 1..4, padding 1 row (none across), stride 2 down, 1 across:
// output row 0 sees only x's row 0 (the kernel's first row lies in the padding), row 1 rows 1-2.
TEST(CudaCudnnEmulated, KnownAnswerWithUnequalPaddingAndStride) {
  GS_REQUIRE_CUDA();
  Descriptors d;
  ASSERT_EQ(cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 3, 3), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetFilter4dDescriptor(d.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 1, 1, 2, 2), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetTensor4dDescriptor(d.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 2, 2), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetConvolution2dDescriptor(d.conv, 1, 0, 2, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
            CUDNN_STATUS_SUCCESS);
  DeviceFloats x({1, 2, 3, 4, 5, 6, 7, 8, 9}), w({1, 2, 3, 4}), y(std::vector<float>(4, kNaN));
  DeviceFloats ws(std::vector<float>(4, 0.0f));
  ASSERT_EQ(d.forward(x, w, y, 1, 0, ws, 16), CUDNN_STATUS_SUCCESS) << cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM);
  // row 0: 3 x[0][q] + 4 x[0][q+1]; row 1: x[1][q] + 2 x[1][q+1] + 3 x[2][q] + 4 x[2][q+1]
  EXPECT_EQ(y.download(), (std::vector<float>{11, 18, 67, 77}));
}

// The three cudnn conv2d variants on the GPU, the CPU's ref kernels as the truth (for a scope).
struct CudnnAgainstRef {
  VariantScope forward{"cuda.conv2d", "cudnn"}, data{"cuda.conv2d_backward_data", "cudnn"},
      weight{"cuda.conv2d_backward_weight", "cudnn"};
  VariantScope cpu_forward{"conv2d", "ref"}, cpu_data{"conv2d_backward_data", "ref"},
      cpu_weight{"conv2d_backward_weight", "ref"};
};

// conv2d with all three cudnn variants selected at once, against the CPU ref kernels (the CPU's
// onednn default refuses a convolution without output channels), forward and backward. Not
// here: no input channels, which the im2col variants (gemm.cu's cuBLAS call, lda 0) refuse too.
TEST(CudaCudnnEmulated, Conv2dCudnnVariantsOnUnequalAndEmptyShapes) {
  GS_REQUIRE_CUDA();
  CudnnAgainstRef variants;
  Conv2dParams unequal;
  unequal.pad_h = 2, unequal.pad_w = 0, unequal.stride_h = 1, unequal.stride_w = 2;
  unequal.dilation_h = 1, unequal.dilation_w = 2;
  Conv2dParams grouped = unequal;
  grouped.groups = 3;
  struct Case {
    Shape x, w;
    Conv2dParams p;
    const char* what;
  };
  const std::vector<Case> cases{{{2, 3, 9, 7}, {4, 3, 3, 2}, unequal, "unequal padding, stride, dilation"},
                                {{2, 6, 6, 8}, {3, 2, 2, 3}, grouped, "grouped, unequal"},
                                {{0, 3, 5, 5}, {4, 3, 3, 3}, {}, "empty batch"},
                                {{2, 3, 5, 5}, {0, 3, 3, 3}, {}, "no output channels"}};
  for (size_t c = 0; c < cases.size(); ++c) {
    const Case& k = cases[c];
    Tensor x = randf(k.x, 60 + c).set_requires_grad(true), w = randf(k.w, 70 + c).set_requires_grad(true);
    Tensor bias = randf({k.w[0]}, 80 + c).set_requires_grad(true);
    const Conv2dParams p = k.p;
    SCOPED_TRACE(k.what);
    expect_cuda_matches_cpu([p](auto& t) { return conv2d(t[0], t[1], t[2], p); }, {x, w, bias}, 1e-4,
                            std::string("cudnn, ") + k.what);
  }
}

// conv2d.cu's choice from the lists above (RefusesWhatCudnnRefuses shows them): it skips what does
// not support the shape, moves past one that refuses when run, in the backward passes prefers
// deterministic algorithms, keeps workspaces within conv_scratch_limit(), and, with nothing
// within the limit, moves past a workspace that cannot be allocated. Results match the CPU's.
TEST(CudaCudnnEmulated, Conv2dCudnnPicksUsableDeterministicAlgorithms) {
  GS_REQUIRE_CUDA();
  CudnnAgainstRef variants;
  const size_t saved_limit = kernels::cuda::conv_scratch_limit();
  for (size_t limit : {saved_limit, size_t(0)}) {
    SCOPED_TRACE("conv_scratch_limit " + std::to_string(limit));
    kernels::cuda::set_conv_scratch_limit(limit);
    Tensor x = randf({2, 3, 6, 6}, 90).set_requires_grad(true), w = randf({4, 3, 3, 3}, 91).set_requires_grad(true);
    Tensor bias = randf({4}, 92).set_requires_grad(true);
    Conv2dParams p;
    p.pad_h = p.pad_w = 1;
    (void)gsEmulatedCudnnTakeRuns();
    auto on_gpu = [](const Tensor& t) { return t.detach().to(gpu()).set_requires_grad(true); };
    Tensor y = conv2d(on_gpu(x), on_gpu(w), on_gpu(bias), p);
    std::vector<int> runs = gsEmulatedCudnnTakeRuns();
    EXPECT_EQ(runs, (std::vector<int>{CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_GEMM}));
    backward(sum(y));
    runs = gsEmulatedCudnnTakeRuns();
    // Within the limit the refusing deterministic one, then the computed one. With a limit of 0
    // only the refusing one (no workspace) and the non-deterministic one (none) are within it;
    // after them, of the two over it, the 1 TiB workspace cannot be had and the computed one runs.
    std::vector<int> want_data{CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1};
    std::vector<int> want_filter{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED,
                                 CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1};
    if (limit == 0) {
      want_data.insert(want_data.begin() + 1, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0);
      want_filter.insert(want_filter.begin() + 1, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0);
    }
    std::vector<int> want = want_data;  // the autograd order: x's gradient, then w's
    want.insert(want.end(), want_filter.begin(), want_filter.end());
    std::vector<int> want_swapped = want_filter;
    want_swapped.insert(want_swapped.end(), want_data.begin(), want_data.end());
    EXPECT_TRUE(runs == want || runs == want_swapped) << ::testing::PrintToString(runs);
    expect_cuda_matches_cpu([p](auto& t) { return conv2d(t[0], t[1], t[2], p); }, {x, w, bias}, 1e-4, "cudnn's choice");
  }
  kernels::cuda::set_conv_scratch_limit(saved_limit);
}

}  // namespace
}  // namespace gs::test
#endif  // GS_CUDA_EMULATED
