// The CUDA DeviceMemory backend (device_memory.h) on the caching allocator of kernels/cuda, and
// the gs::cuda API (tensor/cuda.h). Without GS_CUDA the API reports "not built" clearly.
#include "tensor/cuda.h"

#include <cstdio>
#include <cstring>
#include <vector>

#include "tensor/device_memory.h"

#if GS_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace gs {

#if GS_CUDA
namespace {
namespace kc = kernels::cuda;

// Runs f, turning the kernels room's std::exceptions into gs::Error with the op's name.
template <class F> auto rethrow(const char* what, F f) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(std::string(what) + ": " + e.what());
  }
}

class CudaMemory final : public DeviceMemory {
 public:
  void* allocate(size_t nbytes, Device device) override {
    return rethrow("cuda allocate", [&] { return kc::device_allocate(nbytes, device.index); });
  }
  void release(void* ptr, size_t, Device device) override {
    // Called from Storage's destructor: never throw from here.
    try {
      kc::device_release(ptr, device.index);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "gradscope: cuda release failed: %s\n", e.what());
    }
  }
  void fill(void* ptr, int64_t n, DType dtype, double value, Device device) override {
    rethrow("cuda fill", [&] {
      kc::set_device(device.index);
      if (dtype == DType::F32)
        return kc::fill_f32(static_cast<float*>(ptr), n, static_cast<float>(value), device.index);
      if (dtype == DType::I64)
        return kc::fill_i64(static_cast<int64_t*>(ptr), n, static_cast<int64_t>(value), device.index);
      throw Error(std::string("cuda: dtype ") + dtype_name(dtype) + " is not supported on CUDA (f32 and i64 only)");
    });
  }
  void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) override {
    rethrow("cuda copy", [&] {
      if (src_device.is_cpu() && dst_device.is_cuda())
        return kc::memcpy(dst, src, nbytes, kc::CopyKind::HostToDevice, dst_device.index);
      if (src_device.is_cuda() && dst_device.is_cpu())
        return kc::memcpy(dst, src, nbytes, kc::CopyKind::DeviceToHost, src_device.index);
      if (src_device == dst_device) return kc::memcpy(dst, src, nbytes, kc::CopyKind::DeviceToDevice, src_device.index);
      // Between two GPUs: through the host (correct first; peer copies can come later).
      std::vector<char> host(nbytes);
      kc::memcpy(host.data(), src, nbytes, kc::CopyKind::DeviceToHost, src_device.index);
      kc::memcpy(dst, host.data(), nbytes, kc::CopyKind::HostToDevice, dst_device.index);
    });
  }
};
}  // namespace

DeviceMemory* cuda_device_memory() {
  static CudaMemory backend;
  return &backend;
}
#else
DeviceMemory* cuda_device_memory() { return nullptr; }
#endif

namespace cuda {

bool is_built() {
#if GS_CUDA
  return true;
#else
  return false;
#endif
}

bool is_emulated() {
#if GS_CUDA
  return kernels::cuda::is_emulated();
#else
  return false;
#endif
}

bool is_available() { return device_count() > 0; }

int device_count() {
#if GS_CUDA
  return kernels::cuda::device_count();
#else
  return 0;
#endif
}

std::string unavailable_reason() {
#if GS_CUDA
  return kernels::cuda::no_device_reason();
#else
  return "this gradscope build has no CUDA backend (configured with GS_CUDA=OFF, or nvcc was not found)";
#endif
}

void synchronize(int device) {
  GS_CHECK(is_available(), "cuda synchronize: no CUDA device (%s)", unavailable_reason().c_str());
#if GS_CUDA
  rethrow("cuda synchronize", [&] { kernels::cuda::synchronize(device); });
#endif
}

MemoryStats memory_stats(int device) {
  MemoryStats out;
#if GS_CUDA
  kernels::cuda::DeviceAllocatorStats s = kernels::cuda::allocator_stats(device);
  out = {s.bytes_in_use, s.peak_bytes_in_use, s.bytes_cached, s.backend_allocs, s.cache_hits};
#endif
  return out;
}

void reset_peak_memory_stats(int device) {
#if GS_CUDA
  kernels::cuda::reset_peak_stats(device);
#endif
}

void empty_cache(int device) {
#if GS_CUDA
  if (is_available()) rethrow("cuda empty_cache", [&] { kernels::cuda::empty_cache(device); });
#endif
}

}  // namespace cuda
}  // namespace gs
