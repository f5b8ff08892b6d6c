// The caching CPU allocator.
#include "tensor/allocator.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "tensor/error.h"

namespace gs {

namespace {
struct CpuCache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;
  AllocatorStats stats;
};
CpuCache& cache() {
  static CpuCache* c = new CpuCache();  // never destroyed: tensors may outlive static teardown
  return *c;
}
// Above this many cached bytes, released blocks go back to the system instead.
constexpr int64_t kCacheLimit = int64_t(4) << 30;
}  // namespace

CpuAllocator& CpuAllocator::instance() {
  static CpuAllocator a;
  return a;
}

size_t CpuAllocator::rounded_size(size_t nbytes) {
  if (nbytes == 0) nbytes = 1;
  return (nbytes + kAlignment - 1) / kAlignment * kAlignment;
}

void* CpuAllocator::allocate(size_t nbytes) {
  size_t size = rounded_size(nbytes);
  auto& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.bytes_cached -= size;
      c.stats.bytes_in_use += size;
      c.stats.cache_hits++;
      if (c.stats.bytes_in_use > c.stats.peak_bytes_in_use) c.stats.peak_bytes_in_use = c.stats.bytes_in_use;
      return p;
    }
  }
  void* p = std::aligned_alloc(kAlignment, size);
  if (!p) {
    empty_cache();
    p = std::aligned_alloc(kAlignment, size);
  }
  GS_CHECK(p != nullptr, "allocate: out of memory asking for %zu bytes", size);
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.system_allocs++;
  c.stats.bytes_in_use += size;
  if (c.stats.bytes_in_use > c.stats.peak_bytes_in_use) c.stats.peak_bytes_in_use = c.stats.bytes_in_use;
  return p;
}

void CpuAllocator::release(void* ptr, size_t nbytes) {
  if (!ptr) return;
  size_t size = rounded_size(nbytes);
  auto& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.bytes_in_use -= size;
  if (c.stats.bytes_cached + int64_t(size) > kCacheLimit) {
    std::free(ptr);
    return;
  }
  c.free_blocks[size].push_back(ptr);
  c.stats.bytes_cached += size;
}

AllocatorStats CpuAllocator::stats() const {
  auto& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void CpuAllocator::reset_peak() {
  auto& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.peak_bytes_in_use = c.stats.bytes_in_use;
}

void CpuAllocator::empty_cache() {
  auto& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& [size, blocks] : c.free_blocks) {
    for (void* p : blocks) std::free(p);
  }
  c.free_blocks.clear();
  c.stats.bytes_cached = 0;
}

}  // namespace gs
