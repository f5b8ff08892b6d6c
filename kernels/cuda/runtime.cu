// CUDA runtime seam (kernels/cuda/runtime.h): device queries, one compute stream and cuBLAS
// handle per device, the caching allocator (kernels/cuda/caching_allocator.h) on cudaMalloc,
// copies and synchronize (fills are launched by elementwise.cu).
#include <array>
#include <memory>
#include <mutex>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/index_math.h"
#include "kernels/cuda/runtime.h"

namespace gs::kernels::cuda {

namespace {
struct DeviceState {
  std::once_flag stream_once;
  cudaStream_t stream = nullptr;
  std::once_flag cublas_once;
  cublasHandle_t cublas = nullptr;
};
std::array<DeviceState, kMaxDevices>& states() {
  static std::array<DeviceState, kMaxDevices> s;
  return s;
}

void* cuda_malloc_or_null(size_t nbytes) {
  void* p = nullptr;
  const cudaError_t malloc_err = cudaMalloc(&p, nbytes);
  if (malloc_err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // clear the sticky-free error so the retry can proceed
    return nullptr;
  }
  CUDA_CHECK(malloc_err);  // the error text shows this line: "cudaMalloc" names the call
  return p;
}
void cuda_free(void* p) { CUDA_CHECK(cudaFree(p)); }
// Before the allocator frees cached blocks (it runs with their device current).
void sync_current_device() {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaStreamSynchronize(compute_stream(device)));
}

CachingAllocatorCore& allocator(int device) {
  static std::array<std::unique_ptr<CachingAllocatorCore>, kMaxDevices> cores;
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  auto& core = cores.at(device);
  if (!core) core = std::make_unique<CachingAllocatorCore>(&cuda_malloc_or_null, &cuda_free, &sync_current_device);
  return *core;
}

// Runs f with `device` current, restoring the previous one.
template <class F> void on_device(int device, F f) {
  int previous = 0;
  CUDA_CHECK(cudaGetDevice(&previous));
  if (previous != device) CUDA_CHECK(cudaSetDevice(device));
  f();
  if (previous != device) CUDA_CHECK(cudaSetDevice(previous));
}

}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

bool is_emulated() {
#if GS_CUDA_EMULATED
  return true;
#else
  return false;
#endif
}

std::string no_device_reason() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
  }
  return n == 0 ? "the driver reports 0 devices" : "";
}

void require_device(int index) {
  int n = device_count();
  if (n == 0)
    throw std::runtime_error("cuda:" + std::to_string(index) + ": no CUDA device (" + no_device_reason() + ")");
  if (index < 0 || index >= n || index >= kMaxDevices)
    throw std::runtime_error("cuda:" + std::to_string(index) + ": no such device (this machine has " +
                             std::to_string(n) + ")");
}

cudaStream_t compute_stream(int device) {
  DeviceState& s = states().at(device);
  std::call_once(s.stream_once, [&] {
    on_device(device, [&] { CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking)); });
  });
  return s.stream;
}

cublasHandle_t cublas_handle() {
  int device = current_device();
  DeviceState& s = states().at(device);
  std::call_once(s.cublas_once, [&] {
    CUBLAS_CHECK(cublasCreate(&s.cublas));
    CUBLAS_CHECK(cublasSetStream(s.cublas, compute_stream(device)));
  });
  return s.cublas;
}

void* device_try_allocate(size_t nbytes, int device) {
  require_device(device);
  void* p = nullptr;
  on_device(device,
            [&] { p = allocator(device).allocate(nbytes, reinterpret_cast<uintptr_t>(compute_stream(device))); });
  return p;
}

void* device_allocate(size_t nbytes, int device) {
  void* p = device_try_allocate(nbytes, device);
  if (!p) {
    DeviceAllocatorStats st = allocator(device).stats();
    throw std::runtime_error("cuda:" + std::to_string(device) + ": out of memory allocating " + std::to_string(nbytes) +
                             " bytes (" + std::to_string(st.bytes_in_use) +
                             " bytes in use; cache emptied and retried)");
  }
  return p;
}

void device_release(void* ptr, int device) {
  if (!ptr) return;
  if (!allocator(device).release(ptr))
    throw std::runtime_error("cuda allocator: release of a pointer it did not allocate");
}

DeviceAllocatorStats allocator_stats(int device) { return allocator(device).stats(); }
void reset_peak_stats(int device) { allocator(device).reset_peak(); }
void empty_cache(int device) {
  require_device(device);
  on_device(device, [&] { allocator(device).empty_cache(); });  // it syncs the device first
}

void memcpy(void* dst, const void* src, size_t nbytes, CopyKind kind, int device) {
  if (nbytes == 0) return;
  on_device(device, [&] {
    cudaStream_t stream = compute_stream(device);
    cudaMemcpyKind k = kind == CopyKind::HostToDevice   ? cudaMemcpyHostToDevice
                       : kind == CopyKind::DeviceToHost ? cudaMemcpyDeviceToHost
                                                        : cudaMemcpyDeviceToDevice;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, k, stream));
    // Host buffers may be pageable and freed by the caller right after: wait for the copy.
    if (kind != CopyKind::DeviceToDevice) CUDA_CHECK(cudaStreamSynchronize(stream));
  });
}

void synchronize(int device) {
  require_device(device);
  on_device(device, [&] { CUDA_CHECK(cudaStreamSynchronize(compute_stream(device))); });
}

void set_device(int device) {
  require_device(device);
  CUDA_CHECK(cudaSetDevice(device));
}

int current_device() {
  int d = 0;
  CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

}  // namespace gs::kernels::cuda
