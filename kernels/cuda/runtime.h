// The CUDA runtime seam, in plain C++ (no CUDA headers): device queries, the caching device
// allocator, copies, the stream every kernel runs on, synchronize. Defined in runtime.cu when
// the build has CUDA (GS_CUDA=1); callers guard with `#if GS_CUDA`. Errors throw
// std::runtime_error with the file, line and the CUDA call's text (CUDA_CHECK in cuda_check.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/cuda/caching_allocator.h"

namespace gs::kernels::cuda {

// Devices a process can use (require_device refuses higher indices); per-device state is kept
// in arrays of this size.
constexpr int kMaxDevices = 16;

// True in the emulated build (GS_CUDA=EMULATE): the device is the CPU's CUDA emulator.
bool is_emulated();
// Number of usable devices; 0 when there is no driver or no GPU (never throws).
int device_count();
// Why device_count() is 0 (the CUDA error text), empty when a device is there.
std::string no_device_reason();
// Throws a clear error unless device `index` exists.
void require_device(int index);

void* device_allocate(size_t nbytes, int device);      // throws when out of memory
void* device_try_allocate(size_t nbytes, int device);  // null when out of memory (the cache emptied first)
void device_release(void* ptr, int device);
DeviceAllocatorStats allocator_stats(int device);
void reset_peak_stats(int device);
void empty_cache(int device);

// Copies on the compute stream; those that touch host memory wait for the copy to end.
enum class CopyKind { HostToDevice, DeviceToHost, DeviceToDevice };
void memcpy(void* dst, const void* src, size_t nbytes, CopyKind kind, int device);
// Fills n elements of 4 bytes (f32) or 8 bytes (i64) with value.
void fill_f32(float* dst, int64_t n, float value, int device);
void fill_i64(int64_t* dst, int64_t n, int64_t value, int device);

// Waits for all work queued on the device.
void synchronize(int device = 0);
void set_device(int device);
int current_device();

}  // namespace gs::kernels::cuda
