// conv2d on CUDA: "im2col" (im2col / col2im kernels + the selected cuda.matmul variant, one GEMM
// per group over a chunk of images, as many as fit conv_scratch_limit(), and with cuBLAS one
// strided-batched call for all groups; col2im gathers, so no atomics) and "cudnn" (cuDNN's convolution, the bar, when the build found cuDNN). Index maths:
// im2col_chunk_element / col2im_chunk_element and the layout offsets in index_math.h.
#include <algorithm>
#include <array>
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/conv2d_kernels.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/index_math.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/runtime.h"

#if GS_CUDNN
#include <cudnn.h>
#endif

namespace gs::kernels::cuda {

namespace {
std::atomic<size_t> g_conv_scratch_limit{size_t(256) << 20};

cudaStream_t stream() { return compute_stream(current_device()); }

// A device scratch buffer from the caching allocator, given back on scope exit.
struct Scratch {
  explicit Scratch(size_t nbytes) : device(current_device()), ptr(nbytes ? device_allocate(nbytes, device) : nullptr) {}
  ~Scratch() {
    if (ptr) device_release(ptr, device);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  float* f() const { return static_cast<float*>(ptr); }
  int device;
  void* ptr;
};

ConvGeom group_geom(const Conv2dShape& s) {
  return {s.C / s.groups, s.H,        s.W,     s.R,     s.S,          s.P,         s.Q,
          s.stride_h,     s.stride_w, s.pad_h, s.pad_w, s.dilation_h, s.dilation_w};
}

// The batch in chunks of `nb` images (the last may be short), each within the scratch limit.
struct Chunks {
  Chunks(const Conv2dShape& s, const ConvGeom& g)
      : nb(conv_chunk_images(s.N, (s.C * s.R * s.S + s.K) * g.P * g.Q * int64_t(sizeof(float)),
                             int64_t(conv_scratch_limit()))),
        col(static_cast<size_t>(s.C * s.R * s.S * nb * g.P * g.Q) * sizeof(float)),
        channel_major(static_cast<size_t>(s.K * nb * g.P * g.Q) * sizeof(float)) {}
  int64_t nb;
  Scratch col, channel_major;  // (groups*Cg*R*S, nb*PQ) and (K, nb*PQ)
};

void launch_im2col(const ConvGeom& g, int64_t groups, int64_t m, const float* x, float* col) {
  const int64_t n = groups * g.C * g.R * g.S * m * g.P * g.Q;
  GS_LAUNCH(blocks_for(n, kBlockThreads), kBlockThreads, stream(), im2col_kernel)(g, groups, m, x, col);
  CUDA_CHECK_LAUNCH();
}

void launch_to_channel_major(const float* gy, float* gyt, int64_t K, int64_t m, int64_t PQ) {
  GS_LAUNCH(blocks_for(K * m * PQ, kBlockThreads), kBlockThreads, stream(), to_channel_major_kernel)
  (gy, gyt, K, m, PQ);
  CUDA_CHECK_LAUNCH();
}

// One GEMM per group, group g's operands and output g*a_step, g*b_step, g*c_step elements on
// (gemm_batched: with cuBLAS one strided-batched call for all groups).
void group_gemms(int64_t groups, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
                 int64_t a_step, int64_t lda, const float* B, int64_t b_step, int64_t ldb, float beta, float* C,
                 int64_t c_step, int64_t ldc) {
  std::vector<int64_t> a_offsets(static_cast<size_t>(groups)), b_offsets(static_cast<size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) a_offsets[size_t(g)] = g * a_step, b_offsets[size_t(g)] = g * b_step;
  gemm_batched(trans_a, trans_b, M, N, K, A, a_offsets.data(), lda, B, b_offsets.data(), ldb, beta, C, ldc, c_step,
               groups);
}

// Per chunk of m images: im2col, one GEMM per group into the channel-major (K, m*PQ), then the
// copy to y (m, K, PQ) with the bias added.
void conv2d_im2col(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  const ConvGeom g = group_geom(s);
  const int64_t Kg = s.K / s.groups, CRS = g.C * s.R * s.S, PQ = s.P * s.Q;
  if (s.N * s.K * PQ == 0) return;
  Chunks c(s, g);
  for (int64_t n0 = 0; n0 < s.N; n0 += c.nb) {
    const int64_t m = std::min(c.nb, s.N - n0), ld = m * PQ;
    launch_im2col(g, s.groups, m, x + n0 * s.C * s.H * s.W, c.col.f());
    group_gemms(s.groups, false, false, Kg, ld, CRS, w, Kg * CRS, CRS, c.col.f(), CRS * ld, ld, 0.0f,
                c.channel_major.f(), Kg * ld, ld);
    GS_LAUNCH(blocks_for(m * s.K * PQ, kBlockThreads), kBlockThreads, stream(), from_channel_major_kernel)
    (c.channel_major.f(), bias, y + n0 * s.K * PQ, s.K, m, PQ);
    CUDA_CHECK_LAUNCH();
  }
}

// Per chunk: gy to channel-major, one GEMM per group (W^T gy) into the col matrix, col2im.
void conv2d_backward_data_im2col(const Conv2dShape& s, const float* gy, const float* w, float* gx) {
  const ConvGeom g = group_geom(s);
  const int64_t Kg = s.K / s.groups, CRS = g.C * s.R * s.S, PQ = s.P * s.Q;
  if (s.N * s.C * s.H * s.W == 0) return;
  Chunks c(s, g);
  for (int64_t n0 = 0; n0 < s.N; n0 += c.nb) {
    const int64_t m = std::min(c.nb, s.N - n0), ld = m * PQ;
    launch_to_channel_major(gy + n0 * s.K * PQ, c.channel_major.f(), s.K, m, PQ);
    group_gemms(s.groups, true, false, CRS, ld, Kg, w, Kg * CRS, CRS, c.channel_major.f(), Kg * ld, ld, 0.0f,
                c.col.f(), CRS * ld, ld);
    const int64_t n = m * s.C * s.H * s.W;
    GS_LAUNCH(blocks_for(n, kBlockThreads), kBlockThreads, stream(), col2im_kernel)
    (g, s.groups, m, c.col.f(), gx + n0 * s.C * s.H * s.W);
    CUDA_CHECK_LAUNCH();
  }
}

// Per chunk: im2col, gy to channel-major, one GEMM per group (gy col^T) summed into gw.
void conv2d_backward_weight_im2col(const Conv2dShape& s, const float* x, const float* gy, float* gw, float* gbias) {
  const ConvGeom g = group_geom(s);
  const int64_t Kg = s.K / s.groups, CRS = g.C * s.R * s.S, PQ = s.P * s.Q;
  if (gw) {
    if (s.N == 0 || PQ == 0) {
      fill_f32(gw, s.K * CRS, 0.0f, current_device());
    } else {
      Chunks c(s, g);
          for (int64_t n0 = 0; n0 < s.N; n0 += c.nb) {
        const int64_t m = std::min(c.nb, s.N - n0), ld = m * PQ;
        launch_im2col(g, s.groups, m, x + n0 * s.C * s.H * s.W, c.col.f());
        launch_to_channel_major(gy + n0 * s.K * PQ, c.channel_major.f(), s.K, m, PQ);
        group_gemms(s.groups, false, true, Kg, CRS, ld, c.channel_major.f(), Kg * ld, ld, c.col.f(), CRS * ld, ld,
                    n0 == 0 ? 0.0f : 1.0f, gw, Kg * CRS, CRS);
      }
    }
  }
  if (gbias && s.K > 0) {
    int64_t blocks = s.K < kMaxBlocks ? s.K : kMaxBlocks;
    GS_LAUNCH(blocks, kBlockThreads, stream(), bias_grad_kernel)(gy, gbias, s.N, s.K, PQ);
    CUDA_CHECK_LAUNCH();
  }
}

#if GS_CUDNN
#define CUDNN_CHECK(call)                                                                                  \
  do {                                                                                                     \
    cudnnStatus_t gs_cudnn_st_ = (call);                                                                   \
    if (gs_cudnn_st_ != CUDNN_STATUS_SUCCESS)                                                              \
      ::gs::kernels::cuda::throw_cuda_error(__FILE__, __LINE__, #call, cudnnGetErrorString(gs_cudnn_st_)); \
  } while (0)

// One handle per thread (cuDNN handles are not shared between threads) and per device (a handle
// belongs to the device current at its creation), bound to that device's stream on every call.
cudnnHandle_t cudnn_handle() {
  static thread_local std::array<cudnnHandle_t, kMaxDevices> handles{};
  const int device = current_device();
  cudnnHandle_t& handle = handles.at(static_cast<size_t>(device));
  if (!handle) CUDNN_CHECK(cudnnCreate(&handle));
  CUDNN_CHECK(cudnnSetStream(handle, stream()));
  return handle;
}

// Descriptors of one convolution, destroyed on scope exit.
struct CudnnConv {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  explicit CudnnConv(const Conv2dShape& s) {
    auto i = [](int64_t v) { return static_cast<int>(v); };
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&bias));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, i(s.N), i(s.C), i(s.H), i(s.W)));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, i(s.N), i(s.K), i(s.P), i(s.Q)));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, i(s.K), 1, 1));
    CUDNN_CHECK(
        cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, i(s.K), i(s.C / s.groups), i(s.R), i(s.S)));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, i(s.pad_h), i(s.pad_w), i(s.stride_h), i(s.stride_w),
                                                i(s.dilation_h), i(s.dilation_w), CUDNN_CROSS_CORRELATION,
                                                CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, i(s.groups)));
    CUDNN_CHECK(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH));  // no TF32: compare against f32 references
  }
  ~CudnnConv() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(bias);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
  }
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;
};

// cuDNN has no empty tensors (a zero dimension in a descriptor is CUDNN_STATUS_BAD_PARAM): an
// empty batch, channel count or image goes to the im2col variant, which gives the zeros (and
// the bias) such a convolution has. So does a tensor of 2^31 elements or more, which the 4-d
// descriptors' int strides cannot describe (im2col works in chunks of the batch).
bool cudnn_can_describe(const Conv2dShape& s) {
  constexpr int64_t kIntMax = 2147483647;
  const bool fits = s.N * s.C * s.H * s.W <= kIntMax && s.N * s.K * s.P * s.Q <= kIntMax &&
                    s.K * (s.C / std::max<int64_t>(s.groups, 1)) * s.R * s.S <= kIntMax;
  return s.N > 0 && s.C > 0 && s.H > 0 && s.W > 0 && s.K > 0 && fits;
}

// Picking a cuDNN algorithm. A *_v7 query lists algorithms best first, by cuDNN's heuristics;
// the list may hold some that do not support the shape (status not SUCCESS), some whose
// workspace is over conv_scratch_limit(), and, for the backward passes, some that add with
// atomics (CUDNN_NON_DETERMINISTIC: the last bits change from run to run). The usable ones are
// tried in this order, cuDNN's order within each rank: deterministic (backward only) and within
// the limit, then within the limit, then over it. A candidate whose workspace cannot be
// allocated, or that answers NOT_SUPPORTED when run, gives way to the next.
template <class Algo> struct Candidate {
  Algo algo;
  size_t workspace;
  bool deterministic;
};

template <class Perf, class Algo, class Size>
std::vector<Candidate<Algo>> candidates(const Perf* perf, int found, bool prefer_deterministic, Size workspace_of) {
  std::vector<Candidate<Algo>> list;
  for (int i = 0; i < found; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    size_t ws = 0;
    if (workspace_of(perf[i].algo, &ws) != CUDNN_STATUS_SUCCESS) continue;
    list.push_back({perf[i].algo, ws, perf[i].determinism == CUDNN_DETERMINISTIC});
  }
  const size_t limit = conv_scratch_limit();
  auto rank = [&](const Candidate<Algo>& c) {
    return (c.workspace > limit ? 2 : 0) + (prefer_deterministic && !c.deterministic ? 1 : 0);
  };
  std::stable_sort(list.begin(), list.end(), [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  return list;
}

bool is_not_supported(cudnnStatus_t st) {
  return static_cast<int>(st) / 1000 * 1000 == static_cast<int>(CUDNN_STATUS_NOT_SUPPORTED);
}

// Runs run(algo, workspace, bytes) with the first candidate that works.
template <class Algo, class Run>
void run_first_usable(const std::vector<Candidate<Algo>>& list, int found, const char* op, Run run) {
  std::string why;
  for (const Candidate<Algo>& c : list) {
    const int device = current_device();
    void* ws = c.workspace ? device_try_allocate(c.workspace, device) : nullptr;
    if (c.workspace && !ws) {
      why += " algorithm " + std::to_string(int(c.algo)) + ": no memory for its " + std::to_string(c.workspace) +
             "-byte workspace;";
      continue;
    }
    const cudnnStatus_t st = run(c.algo, ws, c.workspace);
    if (ws) device_release(ws, device);
    if (st == CUDNN_STATUS_SUCCESS) return;
    if (!is_not_supported(st)) throw_cuda_error(__FILE__, __LINE__, op, cudnnGetErrorString(st));
    why += " algorithm " + std::to_string(int(c.algo)) + ": " + cudnnGetErrorString(st) + ";";
  }
  throw std::runtime_error(std::string(op) + " (cudnn): no algorithm ran (" + std::to_string(found) + " listed, " +
                           std::to_string(list.size()) + " usable;" + why + ")");
}

void conv2d_cudnn(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  if (!cudnn_can_describe(s)) return conv2d_im2col(s, x, w, bias, y);
  CudnnConv d(s);
  cudnnHandle_t h = cudnn_handle();
  cudnnConvolutionFwdAlgoPerf_t perf[8];
  int found = 0;
  CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, 8, &found, perf));
  auto list = candidates<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
      perf, found, false, [&](cudnnConvolutionFwdAlgo_t algo, size_t* ws) {
        return cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, algo, ws);
      });
  const float one = 1.0f, zero = 0.0f;
  run_first_usable(list, found, "cudnnConvolutionForward", [&](cudnnConvolutionFwdAlgo_t algo, void* ws, size_t n) {
    return cudnnConvolutionForward(h, &one, d.x, x, d.w, w, d.conv, algo, ws, n, &zero, d.y, y);
  });
  if (bias) CUDNN_CHECK(cudnnAddTensor(h, &one, d.bias, bias, &one, d.y, y));
}

void conv2d_backward_data_cudnn(const Conv2dShape& s, const float* gy, const float* w, float* gx) {
  if (!cudnn_can_describe(s)) return conv2d_backward_data_im2col(s, gy, w, gx);
  CudnnConv d(s);
  cudnnHandle_t h = cudnn_handle();
  cudnnConvolutionBwdDataAlgoPerf_t perf[8];
  int found = 0;
  CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, 8, &found, perf));
  auto list = candidates<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
      perf, found, true, [&](cudnnConvolutionBwdDataAlgo_t algo, size_t* ws) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, algo, ws);
      });
  const float one = 1.0f, zero = 0.0f;
  run_first_usable(list, found, "cudnnConvolutionBackwardData",
                   [&](cudnnConvolutionBwdDataAlgo_t algo, void* ws, size_t n) {
                     return cudnnConvolutionBackwardData(h, &one, d.w, w, d.y, gy, d.conv, algo, ws, n, &zero, d.x, gx);
                   });
}

void conv2d_backward_weight_cudnn(const Conv2dShape& s, const float* x, const float* gy, float* gw, float* gbias) {
  if (!cudnn_can_describe(s)) return conv2d_backward_weight_im2col(s, x, gy, gw, gbias);
  CudnnConv d(s);
  cudnnHandle_t h = cudnn_handle();
  const float one = 1.0f, zero = 0.0f;
  if (gw) {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[8];
    int found = 0;
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, 8, &found, perf));
    auto list = candidates<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
        perf, found, true, [&](cudnnConvolutionBwdFilterAlgo_t algo, size_t* ws) {
          return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w, algo, ws);
        });
    run_first_usable(
        list, found, "cudnnConvolutionBackwardFilter", [&](cudnnConvolutionBwdFilterAlgo_t algo, void* ws, size_t n) {
          return cudnnConvolutionBackwardFilter(h, &one, d.x, x, d.y, gy, d.conv, algo, ws, n, &zero, d.w, gw);
        });
  }
  if (gbias) CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &one, d.y, gy, &zero, d.bias, gbias));
}
#endif
}  // namespace

void set_conv_scratch_limit(size_t bytes) { g_conv_scratch_limit = bytes; }
size_t conv_scratch_limit() { return g_conv_scratch_limit; }

const VariantTable<Conv2dFn<float>>& conv2d_table() {
  static const VariantTable<Conv2dFn<float>> table = [] {
    VariantTable<Conv2dFn<float>> t("cuda.conv2d");
    t.add("im2col", &conv2d_im2col);
#if GS_CUDNN
    t.add("cudnn", &conv2d_cudnn);
#endif
    return t;
  }();
  return table;
}

const VariantTable<Conv2dBackwardDataFn<float>>& conv2d_backward_data_table() {
  static const VariantTable<Conv2dBackwardDataFn<float>> table = [] {
    VariantTable<Conv2dBackwardDataFn<float>> t("cuda.conv2d_backward_data");
    t.add("im2col", &conv2d_backward_data_im2col);
#if GS_CUDNN
    t.add("cudnn", &conv2d_backward_data_cudnn);
#endif
    return t;
  }();
  return table;
}

const VariantTable<Conv2dBackwardWeightFn<float>>& conv2d_backward_weight_table() {
  static const VariantTable<Conv2dBackwardWeightFn<float>> table = [] {
    VariantTable<Conv2dBackwardWeightFn<float>> t("cuda.conv2d_backward_weight");
    t.add("im2col", &conv2d_backward_weight_im2col);
#if GS_CUDNN
    t.add("cudnn", &conv2d_backward_weight_cudnn);
#endif
    return t;
  }();
  return table;
}

}  // namespace gs::kernels::cuda
