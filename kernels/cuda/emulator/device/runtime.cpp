// The emulated CUDA device of the GS_CUDA=EMULATE build: the runtime and cuBLAS calls of
// kernels/cuda/emulator/include/*.h on the CPU. One device. Its memory is one reserved range
// of pages the host may not touch: they are opened (read/write) only while a kernel runs or a
// copy is made, so host code that reads a device pointer directly crashes here as it would
// fault on a real GPU, instead of passing by accident. Kernels and copies run in order, at once
// (a single stream, synchronous); cudaStreamSynchronize has nothing to wait for. cuDNN's calls
// (cudnn.cpp) open the memory the same way, through device_memory.h.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>

#include "cublas_v2.h"
#include "cuda_runtime.h"
#include "kernels/cuda/emulator/device/device_memory.h"

namespace {

constexpr size_t kArenaBytes = size_t(64) << 30;  // address space only (MAP_NORESERVE)
constexpr size_t kHugePage = size_t(2) << 20;     // protection is toggled in whole 2 MiB (THP) pages

struct Device {
  std::mutex mutex;  // copies and kernels: one at a time
  char* base = nullptr;
  size_t used = 0;                       // high-water mark: [base, base + used) has been handed out
  std::map<size_t, size_t> free_ranges;  // offset -> bytes, below `used`
  std::map<size_t, size_t> live;         // offset -> bytes
  cudaError_t last_error = cudaSuccess;
  int open_depth = 0;
};

Device& device() {
  static Device d;
  return d;
}

size_t page_size() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

// Opening and closing the memory around every kernel is the emulator's main cost; on transparent
// huge pages it changes one entry per 2 MiB instead of one per 4 KiB.
void set_access(Device& d, int prot) {
  const size_t range = (d.used + kHugePage - 1) / kHugePage * kHugePage;
  if (range && mprotect(d.base, range, prot) != 0) std::abort();  // the arena is ours: this cannot fail
}
void open_memory(Device& d) {
  if (d.open_depth++ == 0) set_access(d, PROT_READ | PROT_WRITE);
}
void close_memory(Device& d) {
  if (--d.open_depth == 0) set_access(d, PROT_NONE);
}

struct Open {
  explicit Open(Device& dev) : d(dev), lock(dev.mutex) { open_memory(d); }
  ~Open() { close_memory(d); }
  Device& d;
  std::lock_guard<std::mutex> lock;
};

bool in_arena(const Device& d, const void* p) {
  auto c = static_cast<const char*>(p);
  return d.base && c >= d.base && c < d.base + d.used;
}

// Kernels open the device memory for their run: the emulator calls these around each launch.
void install_launch_hooks() {
  gs::kernels::cuda::emu::set_launch_hooks({[] {
                                              device().mutex.lock();
                                              open_memory(device());
                                            },
                                            [] {
                                              close_memory(device());
                                              device().mutex.unlock();
                                            }});
}

}  // namespace

namespace gs::kernels::cuda::emu {

DeviceMemoryScope::DeviceMemoryScope() {
  device().mutex.lock();
  open_memory(device());
}
DeviceMemoryScope::~DeviceMemoryScope() {
  close_memory(device());
  device().mutex.unlock();
}

bool DeviceMemoryScope::is_allocated(const void* p, size_t nbytes) const {
  const Device& d = device();
  if (!in_arena(d, p)) return false;
  const size_t offset = static_cast<size_t>(static_cast<const char*>(p) - d.base);
  auto it = d.live.upper_bound(offset);  // the first allocation after p
  if (it == d.live.begin()) return false;
  --it;
  return nbytes <= it->first + it->second - offset;  // it->first <= offset; no overflow for a huge nbytes
}

}  // namespace gs::kernels::cuda::emu

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int dev) { return dev == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaGetDevice(int* dev) {
  *dev = 0;
  return cudaSuccess;
}
cudaError_t cudaGetLastError() {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mutex);
  cudaError_t e = d.last_error;
  d.last_error = cudaSuccess;
  return e;
}
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument (emulated device)";
    case cudaErrorMemoryAllocation: return "out of memory (emulated device)";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal (the emulated build has one device)";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle (an event that was never recorded)";
  }
  return "unknown error";
}

cudaError_t cudaMalloc(void** ptr, size_t nbytes) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mutex);
  if (!d.base) {
    void* p = mmap(nullptr, kArenaBytes + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return d.last_error = cudaErrorMemoryAllocation;
    const uintptr_t aligned = (reinterpret_cast<uintptr_t>(p) + kHugePage - 1) / kHugePage * kHugePage;
    d.base = reinterpret_cast<char*>(aligned);
    madvise(d.base, kArenaBytes, MADV_HUGEPAGE);  // a hint: without THP it is only slower
    install_launch_hooks();
  }
  const size_t bytes = (nbytes + page_size() - 1) / page_size() * page_size();
  size_t offset = d.used;
  for (auto it = d.free_ranges.begin(); it != d.free_ranges.end(); ++it) {  // first fit
    if (it->second < bytes) continue;
    offset = it->first;
    if (it->second > bytes) d.free_ranges[offset + bytes] = it->second - bytes;
    d.free_ranges.erase(it);
    break;
  }
  if (offset == d.used) {
    if (d.used + bytes > kArenaBytes) return d.last_error = cudaErrorMemoryAllocation;
    d.used += bytes;
    if (d.open_depth > 0) set_access(d, PROT_READ | PROT_WRITE);
  }
  d.live[offset] = bytes;
  *ptr = d.base + offset;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mutex);
  auto it = in_arena(d, ptr) ? d.live.find(static_cast<size_t>(static_cast<char*>(ptr) - d.base)) : d.live.end();
  if (it == d.live.end()) return d.last_error = cudaErrorInvalidValue;
  // The pages stay (splitting huge pages to give them back would cost more): like cudaMalloc, a
  // later allocation gets whatever they hold.
  size_t offset = it->first, bytes = it->second;
  d.live.erase(it);
  auto next = d.free_ranges.find(offset + bytes);  // merge with the free neighbours
  if (next != d.free_ranges.end()) bytes += next->second, d.free_ranges.erase(next);
  auto prev = d.free_ranges.lower_bound(offset);
  if (prev != d.free_ranges.begin() && (--prev)->first + prev->second == offset) {
    prev->second += bytes;
  } else {
    d.free_ranges[offset] = bytes;
  }
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t nbytes, cudaMemcpyKind kind, cudaStream_t) {
  Device& d = device();
  Open open(d);
  const bool dst_dev = in_arena(d, dst), src_dev = in_arena(d, src);
  const bool want_dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool want_src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (nbytes && (dst_dev != want_dst_dev || src_dev != want_src_dev ||
                 (dst_dev && !in_arena(d, static_cast<const char*>(dst) + nbytes - 1)) ||
                 (src_dev && !in_arena(d, static_cast<const char*>(src) + nbytes - 1))))
    return d.last_error = cudaErrorInvalidValue;  // a pointer on the wrong side of the copy
  std::memmove(dst, src, nbytes);
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  static int token = 0;
  *stream = reinterpret_cast<cudaStream_t>(&token);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

// ---- events ----

struct GsEmulatedEvent {
  std::chrono::steady_clock::time_point at;
  bool recorded = false;
};

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  if (!event) return cudaErrorInvalidValue;
  *event = new GsEmulatedEvent;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (!event) return cudaErrorInvalidValue;
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  if (!event) return cudaErrorInvalidValue;
  event->at = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) { return event ? cudaSuccess : cudaErrorInvalidValue; }
// As CUDA: both events must have been recorded (cudaErrorInvalidResourceHandle otherwise).
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms || !start || !end) return cudaErrorInvalidValue;
  if (!start->recorded || !end->recorded) return cudaErrorInvalidResourceHandle;
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return cudaSuccess;
}

// ---- cuBLAS ----

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  static int token = 0;
  *handle = reinterpret_cast<cublasHandle_t>(&token);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
const char* cublasGetStatusString(cublasStatus_t s) {
  return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_INVALID_VALUE";
}

// cuBLAS's definition, column-major: element (r, c) of an m x n matrix X with leading dimension
// ld is X[r + c * ld]. Written out as loops (not through our row-major GEMM), so gemm.cu's
// operand swap is checked against the definition rather than against its own inverse.
namespace {
std::atomic<long long> g_cublas_gemm_calls{0};

// cuBLAS's argument rules: A is stored m x k (k x m transposed), B k x n (n x k), C m x n.
bool sgemm_args_ok(bool ta, bool tb, int m, int n, int k, int lda, int ldb, int ldc) {
  return m >= 0 && n >= 0 && k >= 0 && lda >= std::max(1, ta ? k : m) && ldb >= std::max(1, tb ? n : k) &&
         ldc >= std::max(1, m);
}

cublasStatus_t sgemm(cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, const float* alpha,
                     const float* A, int lda, const float* B, int ldb, const float* beta, float* C, int ldc) {
  const bool ta = transa == CUBLAS_OP_T, tb = transb == CUBLAS_OP_T;
  if (!sgemm_args_ok(ta, tb, m, n, k, lda, ldb, ldc)) return CUBLAS_STATUS_INVALID_VALUE;
  Device& d = device();
  Open open(d);
  for (int c = 0; c < n; ++c)
    for (int r = 0; r < m; ++r) {
      double acc = 0;
      for (int i = 0; i < k; ++i) {
        const float a = ta ? A[i + int64_t(r) * lda] : A[r + int64_t(i) * lda];  // op(A)(r, i)
        const float b = tb ? B[c + int64_t(i) * ldb] : B[i + int64_t(c) * ldb];  // op(B)(i, c)
        acc += double(a) * double(b);
      }
      float& out = C[r + int64_t(c) * ldc];
      out = *beta == 0.0f ? float(*alpha * acc) : float(*alpha * acc + double(*beta) * out);  // beta 0: C not read
    }
  return CUBLAS_STATUS_SUCCESS;
}
}  // namespace

cublasStatus_t cublasSgemm(cublasHandle_t, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                           const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta,
                           float* C, int ldc) {
  g_cublas_gemm_calls++;
  return sgemm(transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

// As cuBLAS: a negative batch count is INVALID_VALUE, and each product follows cublasSgemm's rules.
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t, cublasOperation_t transa, cublasOperation_t transb, int m,
                                         int n, int k, const float* alpha, const float* A, int lda,
                                         long long int strideA, const float* B, int ldb, long long int strideB,
                                         const float* beta, float* C, int ldc, long long int strideC,
                                         int batchCount) {
  g_cublas_gemm_calls++;
  if (batchCount < 0 ||
      !sgemm_args_ok(transa == CUBLAS_OP_T, transb == CUBLAS_OP_T, m, n, k, lda, ldb, ldc))
    return CUBLAS_STATUS_INVALID_VALUE;
  for (int i = 0; i < batchCount; ++i) {
    cublasStatus_t st = sgemm(transa, transb, m, n, k, alpha, A + i * strideA, lda, B + i * strideB, ldb, beta,
                              C + i * strideC, ldc);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
  }
  return CUBLAS_STATUS_SUCCESS;
}

long long gs_emulated_cublas_gemm_calls() { return g_cublas_gemm_calls.load(); }
