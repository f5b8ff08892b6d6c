// Device backend registry and Device::parse.
#include "tensor/device_memory.h"

#include <string>

namespace gs {

// The CUDA backend (tensor/cuda_backend.cpp; null in a build without CUDA).
DeviceMemory* cuda_device_memory();

namespace {
DeviceMemory*& cuda_backend() {
  static DeviceMemory* backend = cuda_device_memory();
  return backend;
}
}  // namespace

DeviceMemory& device_memory(Device device) {
  GS_CHECK(!device.is_cuda() || cuda_backend() != nullptr,
           "device %s: this gradscope build has no CUDA backend (built without CUDA, or no GPU driver); use the cpu",
           device.str().c_str());
  GS_CHECK(device.is_cuda(), "device %s: the cpu is not a DeviceMemory backend", device.str().c_str());
  return *cuda_backend();
}

void register_device_memory(Device::Kind kind, DeviceMemory* backend) {
  if (kind == Device::Kind::CUDA) cuda_backend() = backend;
}

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    try {
      size_t used = 0;
      int idx = std::stoi(text.substr(5), &used);
      if (used == text.size() - 5 && idx >= 0) return cuda(idx);
    } catch (const std::exception&) {
    }
  }
  throw Error("device: '" + text + "' is not a device (expected cpu, cuda or cuda:N)");
}

}  // namespace gs
