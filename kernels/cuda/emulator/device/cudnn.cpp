// The emulated build's cuDNN (kernels/cuda/emulator/include/cudnn.h): conv2d.cu's convolution
// calls on the CPU, written as naive loops from cuDNN's definitions (NCHW cross-correlation with
// padding, stride, dilation and groups; out = alpha op + beta out), not through our kernels, so
// conv2d.cu's use of cuDNN is checked against the definition and not against itself. The calls
// check their descriptors as cuDNN does, and every device pointer must lie in live device memory,
// which is open to the host only while a call runs (device_memory.h, from runtime.cpp).
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cudnn.h"
#include "kernels/cuda/emulator/device/device_memory.h"

struct cudnnContext {
  cudaStream_t stream = nullptr;
};
struct cudnnTensorStruct {
  bool set = false;
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  int n = 0, c = 0, h = 0, w = 0;
};
struct cudnnFilterStruct {
  bool set = false;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  int k = 0, c = 0, h = 0, w = 0;  // c: input channels per group
};
struct cudnnConvolutionStruct {
  bool set = false;
  int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnDataType_t compute_type = CUDNN_DATA_FLOAT;
  int groups = 1;                             // cuDNN's default until cudnnSetConvolutionGroupCount
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;  // the loops below are exact for every math type
};

namespace {

using gs::kernels::cuda::emu::DeviceMemoryScope;

// The one algorithm of each direction these calls compute, and the only one they run. Its
// workspace holds the result before the alpha/beta blend (see stage_and_blend).
constexpr cudnnConvolutionFwdAlgo_t kFwdAlgo = CUDNN_CONVOLUTION_FWD_ALGO_GEMM;
constexpr cudnnConvolutionBwdDataAlgo_t kBwdDataAlgo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
constexpr cudnnConvolutionBwdFilterAlgo_t kBwdFilterAlgo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;

// What the algorithm queries list, best first, as cuDNN's heuristics may: one that does not
// support the shape (status NOT_SUPPORTED); one listed as usable that answers NOT_SUPPORTED when
// run; for the backward passes one that adds with atomics (CUDNN_NON_DETERMINISTIC); one whose
// workspace (1 TiB) no device holds; and last the one computed. A caller that takes the list's
// order alone runs into each of them.
enum class Listed { Unsupported, RefusesToRun, NonDeterministic, HugeWorkspace, Computed };
struct Listing {
  int algo;
  Listed kind;
};
constexpr size_t kHugeWorkspace = size_t(1) << 40;
constexpr Listing kFwdList[] = {{CUDNN_CONVOLUTION_FWD_ALGO_FFT, Listed::Unsupported},
                                {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, Listed::RefusesToRun},
                                {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, Listed::HugeWorkspace},
                                {kFwdAlgo, Listed::Computed}};
constexpr Listing kBwdDataList[] = {{CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, Listed::Unsupported},
                                    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, Listed::NonDeterministic},
                                    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, Listed::RefusesToRun},
                                    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, Listed::HugeWorkspace},
                                    {kBwdDataAlgo, Listed::Computed}};
constexpr Listing kBwdFilterList[] = {{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, Listed::Unsupported},
                                      {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, Listed::NonDeterministic},
                                      {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED, Listed::RefusesToRun},
                                      {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING, Listed::HugeWorkspace},
                                      {kBwdFilterAlgo, Listed::Computed}};

// The algorithms the convolution calls of this thread were asked to run, refused ones included.
thread_local std::vector<int> t_runs;

// ---- errors: the status, and why, for cudnnGetErrorString ----

thread_local cudnnStatus_t t_failed_status = CUDNN_STATUS_SUCCESS;
thread_local std::string t_failure_reason, t_error_string;

cudnnStatus_t fail(cudnnStatus_t status, std::string reason) {
  t_failed_status = status;
  t_failure_reason = std::move(reason);
  return status;
}

#define GS_CUDNN_TRY(call)                                           \
  do {                                                               \
    const cudnnStatus_t gs_cudnn_try_ = (call);                      \
    if (gs_cudnn_try_ != CUDNN_STATUS_SUCCESS) return gs_cudnn_try_; \
  } while (0)

std::string dims(int64_t a, int64_t b, int64_t c, int64_t d) {
  return std::to_string(a) + "x" + std::to_string(b) + "x" + std::to_string(c) + "x" + std::to_string(d);
}

// ---- handles and descriptors: those made by cudnnCreate* and not yet destroyed ----
// (A destroyed or made-up one is BAD_PARAM here; on cuDNN it is undefined behaviour.)

struct LiveObjects {
  std::mutex mutex;
  std::set<const void*> objects;
};
LiveObjects& live_objects() {
  static LiveObjects live;
  return live;
}
bool is_live(const void* object) {
  LiveObjects& live = live_objects();
  std::lock_guard<std::mutex> lock(live.mutex);
  return live.objects.count(object) > 0;
}

template <class T> cudnnStatus_t create(T** out, const char* what) {
  if (!out) return fail(CUDNN_STATUS_BAD_PARAM, std::string("the pointer to the new ") + what + " is null");
  T* object = new T();
  LiveObjects& live = live_objects();
  std::lock_guard<std::mutex> lock(live.mutex);
  live.objects.insert(object);
  *out = object;
  return CUDNN_STATUS_SUCCESS;
}

template <class T> cudnnStatus_t destroy(T* object, const char* what) {
  if (!object) return CUDNN_STATUS_SUCCESS;
  LiveObjects& live = live_objects();
  std::lock_guard<std::mutex> lock(live.mutex);
  if (live.objects.erase(object) == 0)
    return fail(CUDNN_STATUS_BAD_PARAM, std::string("the ") + what + " to destroy is not a live one");
  delete object;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t check_object(const void* object, const std::string& what) {
  if (!object) return fail(CUDNN_STATUS_BAD_PARAM, what + " is null");
  if (!is_live(object)) return fail(CUDNN_STATUS_BAD_PARAM, what + " was not made by cudnnCreate* or is destroyed");
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t check_handle(cudnnHandle_t handle) { return check_object(handle, "the handle"); }

cudnnStatus_t check_tensor(const cudnnTensorStruct* t, const std::string& name) {
  GS_CUDNN_TRY(check_object(t, name + "'s descriptor"));
  if (!t->set) return fail(CUDNN_STATUS_BAD_PARAM, name + "'s descriptor was never set (cudnnSetTensor4dDescriptor)");
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t check_filter(const cudnnFilterStruct* f, const std::string& name) {
  GS_CUDNN_TRY(check_object(f, name + "'s descriptor"));
  if (!f->set) return fail(CUDNN_STATUS_BAD_PARAM, name + "'s descriptor was never set (cudnnSetFilter4dDescriptor)");
  return CUDNN_STATUS_SUCCESS;
}

bool valid_type(cudnnDataType_t t) { return t == CUDNN_DATA_FLOAT || t == CUDNN_DATA_DOUBLE || t == CUDNN_DATA_HALF; }
bool valid_format(cudnnTensorFormat_t f) { return f == CUDNN_TENSOR_NCHW || f == CUDNN_TENSOR_NHWC; }

// Valid settings the emulator does not compute.
cudnnStatus_t check_float_nchw(cudnnDataType_t type, cudnnTensorFormat_t format, const std::string& name) {
  if (type != CUDNN_DATA_FLOAT)
    return fail(CUDNN_STATUS_NOT_SUPPORTED,
                name + ": only CUDNN_DATA_FLOAT is emulated, got type " + std::to_string(static_cast<int>(type)));
  if (format != CUDNN_TENSOR_NCHW)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, name + ": only CUDNN_TENSOR_NCHW is emulated");
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t check_scalars(const void* alpha, const void* beta) {
  if (!alpha || !beta) return fail(CUDNN_STATUS_BAD_PARAM, "alpha or beta is null");
  return CUDNN_STATUS_SUCCESS;
}

// A convolution call's algorithm: it must be the computed one (recorded in t_runs either way).
template <class Algo> cudnnStatus_t check_algo(Algo algo, Algo emulated, int count, const char* what) {
  const int a = static_cast<int>(algo);
  if (a < 0 || a >= count) return fail(CUDNN_STATUS_BAD_PARAM, std::to_string(a) + " is not a " + what + " algorithm");
  t_runs.push_back(a);
  if (algo != emulated)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, std::string("the emulator has only ") + what + " algorithm " +
                                                std::to_string(static_cast<int>(emulated)) + ", asked for " +
                                                std::to_string(a));
  return CUDNN_STATUS_SUCCESS;
}

// ---- the convolution's geometry, checked as cuDNN checks it ----

struct Conv {
  int64_t N = 0, C = 0, H = 0, W = 0;   // x
  int64_t K = 0, Cg = 0, R = 0, S = 0;  // w: K output channels, Cg input channels per group, R x S
  int64_t P = 0, Q = 0;                 // y spatial size
  int64_t groups = 1, pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int64_t x_size() const { return N * C * H * W; }
  int64_t w_size() const { return K * Cg * R * S; }
  int64_t y_size() const { return N * K * P * Q; }
};

// What the calling function calls x, w and y ("dx", "dw", "dy" in the backward calls).
struct Names {
  std::string x, w, y;
};

cudnnStatus_t describe_conv(const cudnnTensorStruct* x, const cudnnFilterStruct* w, const cudnnConvolutionStruct* conv,
                            const cudnnTensorStruct* y, const Names& names, Conv* g) {
  GS_CUDNN_TRY(check_tensor(x, names.x));
  GS_CUDNN_TRY(check_filter(w, names.w));
  GS_CUDNN_TRY(check_object(conv, "the convolution descriptor"));
  if (!conv->set)
    return fail(CUDNN_STATUS_BAD_PARAM, "the convolution descriptor was never set (cudnnSetConvolution2dDescriptor)");
  GS_CUDNN_TRY(check_tensor(y, names.y));
  if (x->type != w->type || x->type != y->type)
    return fail(CUDNN_STATUS_BAD_PARAM, names.x + ", " + names.w + " and " + names.y + " have different data types");
  GS_CUDNN_TRY(check_float_nchw(x->type, x->format, names.x));
  GS_CUDNN_TRY(check_float_nchw(w->type, w->format, names.w));
  GS_CUDNN_TRY(check_float_nchw(y->type, y->format, names.y));
  if (conv->compute_type != CUDNN_DATA_FLOAT)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "only a CUDNN_DATA_FLOAT compute type is emulated");
  if (conv->mode != CUDNN_CROSS_CORRELATION)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "only CUDNN_CROSS_CORRELATION is emulated");
  if (w->k % conv->groups != 0)
    return fail(CUDNN_STATUS_BAD_PARAM, names.w + " has " + std::to_string(w->k) +
                                            " output channels, not a multiple of the group count " +
                                            std::to_string(conv->groups));
  if (int64_t(w->c) * conv->groups != x->c)
    return fail(CUDNN_STATUS_BAD_PARAM, names.x + " has " + std::to_string(x->c) + " channels, " + names.w +
                                            " expects " + std::to_string(w->c) + " per group x " +
                                            std::to_string(conv->groups) + " groups");
  Conv c;
  c.N = x->n, c.C = x->c, c.H = x->h, c.W = x->w;
  c.K = w->k, c.Cg = w->c, c.R = w->h, c.S = w->w;
  c.groups = conv->groups, c.pad_h = conv->pad_h, c.pad_w = conv->pad_w;
  c.stride_h = conv->stride_h, c.stride_w = conv->stride_w;
  c.dilation_h = conv->dilation_h, c.dilation_w = conv->dilation_w;
  const int64_t span_h = c.dilation_h * (c.R - 1) + 1, span_w = c.dilation_w * (c.S - 1) + 1;
  if (span_h > c.H + 2 * c.pad_h || span_w > c.W + 2 * c.pad_w)
    return fail(CUDNN_STATUS_BAD_PARAM, "the dilated kernel " + std::to_string(span_h) + "x" + std::to_string(span_w) +
                                            " is larger than the padded input " + std::to_string(c.H + 2 * c.pad_h) +
                                            "x" + std::to_string(c.W + 2 * c.pad_w));
  c.P = (c.H + 2 * c.pad_h - span_h) / c.stride_h + 1;
  c.Q = (c.W + 2 * c.pad_w - span_w) / c.stride_w + 1;
  if (y->n != c.N || y->c != c.K || y->h != c.P || y->w != c.Q)
    return fail(CUDNN_STATUS_BAD_PARAM, names.y + " is " + dims(y->n, y->c, y->h, y->w) + ", the convolution gives " +
                                            dims(c.N, c.K, c.P, c.Q));
  *g = c;
  return CUDNN_STATUS_SUCCESS;
}

// Calls f(xi, wi, yi) for every product x[xi] * w[wi] that enters y[yi]:
//   y[n, k, p, q] = sum over c, r, s of x[n, g Cg + c, p u - pad_h + r dil_h, q v - pad_w + s dil_w] * w[k, c, r, s]
// where g = k / (K / groups) is k's group, and taps in the zero padding add nothing. Forward,
// backward data and backward filter are the three ways of summing these terms.
template <class F> void for_each_term(const Conv& g, F f) {
  const int64_t Kg = g.K / g.groups;
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t p = 0; p < g.P; ++p)
        for (int64_t q = 0; q < g.Q; ++q) {
          const int64_t yi = ((n * g.K + k) * g.P + p) * g.Q + q;
          for (int64_t c = 0; c < g.Cg; ++c) {
            const int64_t ic = k / Kg * g.Cg + c;
            for (int64_t r = 0; r < g.R; ++r) {
              const int64_t ih = p * g.stride_h - g.pad_h + r * g.dilation_h;
              if (ih < 0 || ih >= g.H) continue;
              for (int64_t s = 0; s < g.S; ++s) {
                const int64_t iw = q * g.stride_w - g.pad_w + s * g.dilation_w;
                if (iw < 0 || iw >= g.W) continue;
                f(((n * g.C + ic) * g.H + ih) * g.W + iw, ((k * g.Cg + c) * g.R + r) * g.S + s, yi);
              }
            }
          }
        }
}

size_t bytes_of(int64_t floats) { return static_cast<size_t>(floats) * sizeof(float); }

cudnnStatus_t check_workspace_size(size_t given, size_t needed) {
  if (given < needed)
    return fail(CUDNN_STATUS_BAD_PARAM, "the workspace is " + std::to_string(given) + " bytes, the algorithm needs " +
                                            std::to_string(needed) + " (the workspace-size query says so)");
  return CUDNN_STATUS_SUCCESS;
}

// One pointer argument: nbytes of it are read, or written.
struct Operand {
  const void* ptr;
  size_t nbytes;
  std::string name;
  bool written;
};

bool overlap(const Operand& a, const Operand& b) {
  auto pa = static_cast<const char*>(a.ptr), pb = static_cast<const char*>(b.ptr);
  return pa < pb + b.nbytes && pb < pa + a.nbytes;
}

// Every pointer inside one live device allocation (a host pointer, or one past its allocation,
// would fault or corrupt on a GPU), and nothing written shared with another operand.
cudnnStatus_t check_operands(const DeviceMemoryScope& memory, std::initializer_list<Operand> operands) {
  for (const Operand& o : operands) {
    if (!o.ptr) return fail(CUDNN_STATUS_BAD_PARAM, o.name + " is null");
    if (!memory.is_allocated(o.ptr, o.nbytes))
      return fail(CUDNN_STATUS_BAD_PARAM,
                  o.name + " (" + std::to_string(o.nbytes) + " bytes) is not inside one live device allocation");
  }
  for (const Operand& o : operands)
    for (const Operand& other : operands)
      if (&o != &other && o.written && overlap(o, other))
        return fail(CUDNN_STATUS_BAD_PARAM, o.name + " overlaps " + other.name);
  return CUDNN_STATUS_SUCCESS;
}

// out = alpha result + beta out. beta 0: out is not read, as cuDNN promises (it may hold NaN).
void blend(const float* result, int64_t n, float alpha, float beta, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = beta == 0.0f ? alpha * result[i] : alpha * result[i] + beta * out[i];
}
// The result goes through the workspace before the blend, so a workspace that is too small, not
// device memory, or shared with an operand does not pass unnoticed.
void stage_and_blend(const std::vector<double>& result, float alpha, float beta, void* workspace, float* out) {
  auto staged = static_cast<float*>(workspace);
  const int64_t n = static_cast<int64_t>(result.size());
  for (int64_t i = 0; i < n; ++i) staged[i] = static_cast<float>(result[i]);
  blend(staged, n, alpha, beta, out);
}

// The listing's first `requested` entries; `workspace` is the computed algorithm's.
template <class Perf, size_t N>
cudnnStatus_t report_algorithms(const Listing (&list)[N], size_t workspace, cudnnMathType_t math, int requested,
                                int* returned, Perf* perf) {
  if (requested < 1) return fail(CUDNN_STATUS_BAD_PARAM, "requestedAlgoCount must be at least 1");
  if (!returned || !perf) return fail(CUDNN_STATUS_BAD_PARAM, "returnedAlgoCount or perfResults is null");
  int n = 0;
  for (const Listing& l : list) {
    if (n == requested) break;
    Perf& p = perf[n++];
    p = Perf{};
    p.algo = static_cast<decltype(p.algo)>(l.algo);
    p.status = l.kind == Listed::Unsupported ? CUDNN_STATUS_NOT_SUPPORTED : CUDNN_STATUS_SUCCESS;
    p.time = l.kind == Listed::Unsupported ? -1.0f : 0.0f;  // not timed
    p.memory = l.kind == Listed::Computed ? workspace : l.kind == Listed::HugeWorkspace ? kHugeWorkspace : 0;
    p.determinism = l.kind == Listed::NonDeterministic ? CUDNN_NON_DETERMINISTIC : CUDNN_DETERMINISTIC;
    p.mathType = math;
  }
  *returned = n;
  return CUDNN_STATUS_SUCCESS;
}

// A workspace query: the listed size of a listed, supported algorithm.
template <size_t N>
cudnnStatus_t listed_workspace(const Listing (&list)[N], int algo, int count, size_t computed, const char* what,
                               size_t* size) {
  if (algo < 0 || algo >= count)
    return fail(CUDNN_STATUS_BAD_PARAM, std::to_string(algo) + " is not a " + what + " algorithm");
  if (!size) return fail(CUDNN_STATUS_BAD_PARAM, "sizeInBytes is null");
  for (const Listing& l : list) {
    if (l.algo != algo) continue;
    if (l.kind == Listed::Unsupported) break;
    *size = l.kind == Listed::Computed ? computed : l.kind == Listed::HugeWorkspace ? kHugeWorkspace : 0;
    return CUDNN_STATUS_SUCCESS;
  }
  return fail(CUDNN_STATUS_NOT_SUPPORTED,
              std::string(what) + " algorithm " + std::to_string(algo) + " does not support this shape");
}

const char* status_name(cudnnStatus_t status) {
  switch (status) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_INTERNAL_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
  }
  return "CUDNN_STATUS_UNKNOWN";
}

}  // namespace

const char* cudnnGetErrorString(cudnnStatus_t status) {
  if (status == CUDNN_STATUS_SUCCESS || status != t_failed_status || t_failure_reason.empty())
    return status_name(status);
  t_error_string = std::string(status_name(status)) + " (emulated cuDNN: " + t_failure_reason + ")";
  return t_error_string.c_str();  // valid until this thread's next call
}

cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) { return create(handle, "handle"); }
cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) { return destroy(handle, "handle"); }
cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId) {
  GS_CUDNN_TRY(check_handle(handle));
  handle->stream = streamId;  // one synchronous stream: kept, nothing to order
  return CUDNN_STATUS_SUCCESS;
}

// ---- descriptors ----

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* tensorDesc) {
  return create(tensorDesc, "tensor descriptor");
}
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t tensorDesc, cudnnTensorFormat_t format,
                                         cudnnDataType_t dataType, int n, int c, int h, int w) {
  GS_CUDNN_TRY(check_object(tensorDesc, "the tensor descriptor"));
  if (!valid_format(format) || !valid_type(dataType))
    return fail(CUDNN_STATUS_BAD_PARAM, "the tensor's format or data type is not a valid enumerant");
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0)  // cuDNN has no empty tensors
    return fail(CUDNN_STATUS_BAD_PARAM, "tensor dimensions must be positive, got " + dims(n, c, h, w));
  if (int64_t(n) * c * h * w > INT32_MAX)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "the tensor " + dims(n, c, h, w) + " has more than 2^31-1 elements");
  tensorDesc->format = format, tensorDesc->type = dataType;
  tensorDesc->n = n, tensorDesc->c = c, tensorDesc->h = h, tensorDesc->w = w;
  tensorDesc->set = true;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t tensorDesc) {
  return destroy(tensorDesc, "tensor descriptor");
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* filterDesc) {
  return create(filterDesc, "filter descriptor");
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc, cudnnDataType_t dataType,
                                         cudnnTensorFormat_t format, int k, int c, int h, int w) {
  GS_CUDNN_TRY(check_object(filterDesc, "the filter descriptor"));
  if (!valid_format(format) || !valid_type(dataType))
    return fail(CUDNN_STATUS_BAD_PARAM, "the filter's format or data type is not a valid enumerant");
  if (k <= 0 || c <= 0 || h <= 0 || w <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM, "filter dimensions must be positive, got " + dims(k, c, h, w));
  filterDesc->type = dataType, filterDesc->format = format;
  filterDesc->k = k, filterDesc->c = c, filterDesc->h = h, filterDesc->w = w;
  filterDesc->set = true;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc) {
  return destroy(filterDesc, "filter descriptor");
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* convDesc) {
  return create(convDesc, "convolution descriptor");
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc, int pad_h, int pad_w, int u, int v,
                                              int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType) {
  GS_CUDNN_TRY(check_object(convDesc, "the convolution descriptor"));
  if (pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dilation_h <= 0 || dilation_w <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM, "padding must be >= 0 and strides and dilations > 0");
  if ((mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION) || !valid_type(computeType))
    return fail(CUDNN_STATUS_BAD_PARAM, "the convolution's mode or compute type is not a valid enumerant");
  convDesc->pad_h = pad_h, convDesc->pad_w = pad_w, convDesc->stride_h = u, convDesc->stride_w = v;
  convDesc->dilation_h = dilation_h, convDesc->dilation_w = dilation_w;
  convDesc->mode = mode, convDesc->compute_type = computeType;
  convDesc->set = true;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t convDesc, int groupCount) {
  GS_CUDNN_TRY(check_object(convDesc, "the convolution descriptor"));
  if (groupCount < 1) return fail(CUDNN_STATUS_BAD_PARAM, "the group count must be >= 1");
  convDesc->groups = groupCount;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc, cudnnMathType_t mathType) {
  GS_CUDNN_TRY(check_object(convDesc, "the convolution descriptor"));
  if (mathType != CUDNN_DEFAULT_MATH && mathType != CUDNN_TENSOR_OP_MATH &&
      mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION && mathType != CUDNN_FMA_MATH)
    return fail(CUDNN_STATUS_BAD_PARAM, "the math type is not a valid enumerant");
  convDesc->math = mathType;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc) {
  return destroy(convDesc, "convolution descriptor");
}

// ---- forward ----

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
                                                     const cudnnFilterDescriptor_t filterDesc,
                                                     const cudnnConvolutionDescriptor_t convDesc,
                                                     const cudnnTensorDescriptor_t destDesc,
                                                     const int requestedAlgoCount, int* returnedAlgoCount,
                                                     cudnnConvolutionFwdAlgoPerf_t* perfResults) {
  GS_CUDNN_TRY(check_handle(handle));
  Conv g;
  GS_CUDNN_TRY(describe_conv(srcDesc, filterDesc, convDesc, destDesc, {"x", "w", "y"}, &g));
  return report_algorithms(kFwdList, bytes_of(g.y_size()), convDesc->math, requestedAlgoCount, returnedAlgoCount,
                           perfResults);
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                      const cudnnFilterDescriptor_t wDesc,
                                                      const cudnnConvolutionDescriptor_t convDesc,
                                                      const cudnnTensorDescriptor_t yDesc,
                                                      cudnnConvolutionFwdAlgo_t algo, size_t* sizeInBytes) {
  GS_CUDNN_TRY(check_handle(handle));
  Conv g;
  GS_CUDNN_TRY(describe_conv(xDesc, wDesc, convDesc, yDesc, {"x", "w", "y"}, &g));
  return listed_workspace(kFwdList, static_cast<int>(algo), CUDNN_CONVOLUTION_FWD_ALGO_COUNT, bytes_of(g.y_size()),
                          "forward", sizeInBytes);
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t xDesc,
                                      const void* x, const cudnnFilterDescriptor_t wDesc, const void* w,
                                      const cudnnConvolutionDescriptor_t convDesc, cudnnConvolutionFwdAlgo_t algo,
                                      void* workSpace, size_t workSpaceSizeInBytes, const void* beta,
                                      const cudnnTensorDescriptor_t yDesc, void* y) {
  GS_CUDNN_TRY(check_handle(handle));
  Conv g;
  GS_CUDNN_TRY(describe_conv(xDesc, wDesc, convDesc, yDesc, {"x", "w", "y"}, &g));
  GS_CUDNN_TRY(check_algo(algo, kFwdAlgo, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, "forward"));
  GS_CUDNN_TRY(check_scalars(alpha, beta));
  GS_CUDNN_TRY(check_workspace_size(workSpaceSizeInBytes, bytes_of(g.y_size())));
  DeviceMemoryScope memory;
  GS_CUDNN_TRY(check_operands(memory, {{x, bytes_of(g.x_size()), "x", false},
                                       {w, bytes_of(g.w_size()), "w", false},
                                       {y, bytes_of(g.y_size()), "y", true},
                                       {workSpace, workSpaceSizeInBytes, "the workspace", true}}));
  auto xf = static_cast<const float*>(x), wf = static_cast<const float*>(w);
  std::vector<double> sum(static_cast<size_t>(g.y_size()), 0.0);
  for_each_term(g, [&](int64_t xi, int64_t wi, int64_t yi) { sum[yi] += double(xf[xi]) * double(wf[wi]); });
  stage_and_blend(sum, *static_cast<const float*>(alpha), *static_cast<const float*>(beta), workSpace,
                  static_cast<float*>(y));
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnAddTensor(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t aDesc,
                             const void* A, const void* beta, const cudnnTensorDescriptor_t cDesc, void* C) {
  GS_CUDNN_TRY(check_handle(handle));
  GS_CUDNN_TRY(check_tensor(aDesc, "A"));
  GS_CUDNN_TRY(check_tensor(cDesc, "C"));
  if (aDesc->type != cDesc->type) return fail(CUDNN_STATUS_BAD_PARAM, "A and C have different data types");
  GS_CUDNN_TRY(check_float_nchw(aDesc->type, aDesc->format, "A"));
  GS_CUDNN_TRY(check_float_nchw(cDesc->type, cDesc->format, "C"));
  const cudnnTensorStruct &a = *aDesc, &c = *cDesc;
  auto fits = [](int ad, int cd) { return ad == cd || ad == 1; };
  if (!fits(a.n, c.n) || !fits(a.c, c.c) || !fits(a.h, c.h) || !fits(a.w, c.w))
    return fail(CUDNN_STATUS_BAD_PARAM, "A " + dims(a.n, a.c, a.h, a.w) + " does not broadcast to C " +
                                            dims(c.n, c.c, c.h, c.w) + " (each dimension must be C's or 1)");
  GS_CUDNN_TRY(check_scalars(alpha, beta));
  const int64_t a_size = int64_t(a.n) * a.c * a.h * a.w, c_size = int64_t(c.n) * c.c * c.h * c.w;
  DeviceMemoryScope memory;
  GS_CUDNN_TRY(check_operands(memory, {{A, bytes_of(a_size), "A", false}, {C, bytes_of(c_size), "C", true}}));
  auto af = static_cast<const float*>(A);
  std::vector<float> broadcast(static_cast<size_t>(c_size));
  for (int64_t n = 0; n < c.n; ++n)
    for (int64_t ch = 0; ch < c.c; ++ch)
      for (int64_t h = 0; h < c.h; ++h)
        for (int64_t w = 0; w < c.w; ++w) {
          const int64_t ai = ((n % a.n * a.c + ch % a.c) * a.h + h % a.h) * a.w + w % a.w;  // size-1 dims: index 0
          broadcast[((n * c.c + ch) * c.h + h) * c.w + w] = af[ai];
        }
  blend(broadcast.data(), c_size, *static_cast<const float*>(alpha), *static_cast<const float*>(beta),
        static_cast<float*>(C));
  return CUDNN_STATUS_SUCCESS;
}

// ---- backward data ----

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t filterDesc, const cudnnTensorDescriptor_t diffDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t gradDesc, const int requestedAlgoCount,
    int* returnedAlgoCount, cudnnConvolutionBwdDataAlgoPerf_t* perfResults) {
  GS_CUDNN_TRY(check_handle(handle));
  Conv g;
  GS_CUDNN_TRY(describe_conv(gradDesc, filterDesc, convDesc, diffDesc, {"dx", "w", "dy"}, &g));
  return report_algorithms(kBwdDataList, bytes_of(g.x_size()), convDesc->math, requestedAlgoCount, returnedAlgoCount,
                           perfResults);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc,
                                                           const cudnnTensorDescriptor_t dyDesc,
                                                           const cudnnConvolutionDescriptor_t convDesc,
                                                           const cudnnTensorDescriptor_t dxDesc,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t* sizeInBytes) {
  GS_CUDNN_TRY(check_handle(handle));
  Conv g;
  GS_CUDNN_TRY(describe_conv(dxDesc, wDesc, convDesc, dyDesc, {"dx", "w", "dy"}, &g));
  return listed_workspace(kBwdDataList, static_cast<int>(algo), CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                          bytes_of(g.x_size()), "backward data", sizeInBytes);
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha, const cudnnFilterDescriptor_t wDesc,
                                           const void* w, const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void* workSpace,
                                           size_t workSpaceSizeInBytes, const void* beta,
                                           const cudnnTensorDescriptor_t dxDesc, void* dx) {
  GS_CUDNN_TRY(check_handle(handle));
  Conv g;
  GS_CUDNN_TRY(describe_conv(dxDesc, wDesc, convDesc, dyDesc, {"dx", "w", "dy"}, &g));
  GS_CUDNN_TRY(check_algo(algo, kBwdDataAlgo, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, "backward data"));
  GS_CUDNN_TRY(check_scalars(alpha, beta));
  GS_CUDNN_TRY(check_workspace_size(workSpaceSizeInBytes, bytes_of(g.x_size())));
  DeviceMemoryScope memory;
  GS_CUDNN_TRY(check_operands(memory, {{w, bytes_of(g.w_size()), "w", false},
                                       {dy, bytes_of(g.y_size()), "dy", false},
                                       {dx, bytes_of(g.x_size()), "dx", true},
                                       {workSpace, workSpaceSizeInBytes, "the workspace", true}}));
  auto wf = static_cast<const float*>(w), dyf = static_cast<const float*>(dy);
  std::vector<double> sum(static_cast<size_t>(g.x_size()), 0.0);
  for_each_term(g, [&](int64_t xi, int64_t wi, int64_t yi) { sum[xi] += double(dyf[yi]) * double(wf[wi]); });
  stage_and_blend(sum, *static_cast<const float*>(alpha), *static_cast<const float*>(beta), workSpace,
                  static_cast<float*>(dx));
  return CUDNN_STATUS_SUCCESS;
}

// ---- backward filter and bias ----

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
                                                            const cudnnTensorDescriptor_t diffDesc,
                                                            const cudnnConvolutionDescriptor_t convDesc,
                                                            const cudnnFilterDescriptor_t gradDesc,
                                                            const int requestedAlgoCount, int* returnedAlgoCount,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t* perfResults) {
  GS_CUDNN_TRY(check_handle(handle));
  Conv g;
  GS_CUDNN_TRY(describe_conv(srcDesc, gradDesc, convDesc, diffDesc, {"x", "dw", "dy"}, &g));
  return report_algorithms(kBwdFilterList, bytes_of(g.w_size()), convDesc->math, requestedAlgoCount, returnedAlgoCount,
                           perfResults);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                             const cudnnTensorDescriptor_t dyDesc,
                                                             const cudnnConvolutionDescriptor_t convDesc,
                                                             const cudnnFilterDescriptor_t gradDesc,
                                                             cudnnConvolutionBwdFilterAlgo_t algo,
                                                             size_t* sizeInBytes) {
  GS_CUDNN_TRY(check_handle(handle));
  Conv g;
  GS_CUDNN_TRY(describe_conv(xDesc, gradDesc, convDesc, dyDesc, {"x", "dw", "dy"}, &g));
  return listed_workspace(kBwdFilterList, static_cast<int>(algo), CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                          bytes_of(g.w_size()), "backward filter", sizeInBytes);
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha,
                                             const cudnnTensorDescriptor_t xDesc, const void* x,
                                             const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void* workSpace,
                                             size_t workSpaceSizeInBytes, const void* beta,
                                             const cudnnFilterDescriptor_t dwDesc, void* dw) {
  GS_CUDNN_TRY(check_handle(handle));
  Conv g;
  GS_CUDNN_TRY(describe_conv(xDesc, dwDesc, convDesc, dyDesc, {"x", "dw", "dy"}, &g));
  GS_CUDNN_TRY(check_algo(algo, kBwdFilterAlgo, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, "backward filter"));
  GS_CUDNN_TRY(check_scalars(alpha, beta));
  GS_CUDNN_TRY(check_workspace_size(workSpaceSizeInBytes, bytes_of(g.w_size())));
  DeviceMemoryScope memory;
  GS_CUDNN_TRY(check_operands(memory, {{x, bytes_of(g.x_size()), "x", false},
                                       {dy, bytes_of(g.y_size()), "dy", false},
                                       {dw, bytes_of(g.w_size()), "dw", true},
                                       {workSpace, workSpaceSizeInBytes, "the workspace", true}}));
  auto xf = static_cast<const float*>(x), dyf = static_cast<const float*>(dy);
  std::vector<double> sum(static_cast<size_t>(g.w_size()), 0.0);
  for_each_term(g, [&](int64_t xi, int64_t wi, int64_t yi) { sum[wi] += double(xf[xi]) * double(dyf[yi]); });
  stage_and_blend(sum, *static_cast<const float*>(alpha), *static_cast<const float*>(beta), workSpace,
                  static_cast<float*>(dw));
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t handle, const void* alpha,
                                           const cudnnTensorDescriptor_t dyDesc, const void* dy, const void* beta,
                                           const cudnnTensorDescriptor_t dbDesc, void* db) {
  GS_CUDNN_TRY(check_handle(handle));
  GS_CUDNN_TRY(check_tensor(dyDesc, "dy"));
  GS_CUDNN_TRY(check_tensor(dbDesc, "db"));
  if (dyDesc->type != dbDesc->type) return fail(CUDNN_STATUS_BAD_PARAM, "dy and db have different data types");
  GS_CUDNN_TRY(check_float_nchw(dyDesc->type, dyDesc->format, "dy"));
  GS_CUDNN_TRY(check_float_nchw(dbDesc->type, dbDesc->format, "db"));
  const cudnnTensorStruct &gy = *dyDesc, &gb = *dbDesc;
  if (gb.n != 1 || gb.c != gy.c || gb.h != 1 || gb.w != 1)
    return fail(CUDNN_STATUS_BAD_PARAM, "db is " + dims(gb.n, gb.c, gb.h, gb.w) + ", dy " +
                                            dims(gy.n, gy.c, gy.h, gy.w) + " needs 1x" + std::to_string(gy.c) + "x1x1");
  GS_CUDNN_TRY(check_scalars(alpha, beta));
  const int64_t plane = int64_t(gy.h) * gy.w, dy_size = int64_t(gy.n) * gy.c * plane;
  DeviceMemoryScope memory;
  GS_CUDNN_TRY(check_operands(memory, {{dy, bytes_of(dy_size), "dy", false}, {db, bytes_of(gy.c), "db", true}}));
  auto dyf = static_cast<const float*>(dy);
  std::vector<float> sum(static_cast<size_t>(gy.c));
  for (int64_t k = 0; k < gy.c; ++k) {
    double acc = 0;
    for (int64_t n = 0; n < gy.n; ++n)
      for (int64_t i = 0; i < plane; ++i) acc += dyf[(n * gy.c + k) * plane + i];
    sum[k] = static_cast<float>(acc);
  }
  blend(sum.data(), gy.c, *static_cast<const float*>(alpha), *static_cast<const float*>(beta), static_cast<float*>(db));
  return CUDNN_STATUS_SUCCESS;
}

std::vector<int> gsEmulatedCudnnTakeRuns() {
  std::vector<int> runs;
  runs.swap(t_runs);
  return runs;
}
