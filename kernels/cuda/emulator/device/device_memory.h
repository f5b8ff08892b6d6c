// What the emulated cuDNN (cudnn.cpp) needs of the emulated device (runtime.cpp): to open the
// device memory to the host while a call runs, as a kernel launch does, and to ask whether a
// pointer range is device memory that was allocated and not freed. Private to this folder.
#pragma once
#include <cstddef>

namespace gs::kernels::cuda::emu {

// Opens the device memory to the host for the scope's life. It holds the device's lock, as a
// kernel or a copy does: make no CUDA runtime call inside one.
class DeviceMemoryScope {
 public:
  DeviceMemoryScope();
  ~DeviceMemoryScope();
  DeviceMemoryScope(const DeviceMemoryScope&) = delete;
  DeviceMemoryScope& operator=(const DeviceMemoryScope&) = delete;

  // Whether [p, p + nbytes) lies inside one live cudaMalloc allocation (rounded up to whole
  // pages, as cudaMalloc hands them out; the caching allocator's blocks lie inside those).
  bool is_allocated(const void* p, size_t nbytes) const;
};

}  // namespace gs::kernels::cuda::emu
