// The device seam: memory for non-CPU devices comes from a registered backend. The CUDA room
// registers one when it is built; until then any CUDA tensor gives a clear error.
#pragma once
#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace gs {

struct DeviceMemory {
  virtual ~DeviceMemory() = default;
  virtual void* allocate(size_t nbytes, Device device) = 0;
  virtual void release(void* ptr, size_t nbytes, Device device) = 0;
  virtual void fill(void* ptr, int64_t n, DType dtype, double value, Device device) = 0;
  virtual void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) = 0;
};

// The backend for the device's kind; throws a clear error when none is registered.
DeviceMemory& device_memory(Device device);
void register_device_memory(Device::Kind kind, DeviceMemory* backend);

}  // namespace gs
