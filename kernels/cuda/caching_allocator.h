// The caching device allocator's bookkeeping, independent of CUDA so CPU tests can drive it
// with a fake backend: sizes round up to size classes (512 B steps below 1 MiB, then four
// classes per power of two), freed blocks wait on a free list per (stream, class) and are
// handed out again on the same stream without a sync (stream order makes that safe). When the
// backend runs out, the cache is given back and the allocation retried once. Giving blocks back
// to the backend is not stream-ordered, so the core first calls `sync` (the device's queued
// kernels may still use a cached block), whether it empties the cache on request or to retry.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace gs::kernels::cuda {

struct DeviceAllocatorStats {
  int64_t bytes_in_use = 0;       // handed out (rounded sizes) and not yet released
  int64_t peak_bytes_in_use = 0;  // high-water mark since reset_peak
  int64_t bytes_cached = 0;       // in the free lists
  int64_t backend_allocs = 0;     // calls that reached cudaMalloc
  int64_t cache_hits = 0;
};

inline size_t size_class(size_t nbytes) {
  constexpr size_t kSmallStep = 512, kSmallLimit = size_t(1) << 20;
  if (nbytes == 0) nbytes = 1;
  if (nbytes <= kSmallLimit) return (nbytes + kSmallStep - 1) / kSmallStep * kSmallStep;
  if (nbytes > (size_t(1) << 62)) return nbytes;  // no device has it: the backend says out of memory
  size_t pow2 = kSmallLimit;
  while (pow2 * 2 < nbytes) pow2 *= 2;  // pow2 < nbytes <= 2 pow2
  size_t step = pow2 / 4;
  return (nbytes + step - 1) / step * step;
}

class CachingAllocatorCore {
 public:
  using AllocFn = void* (*)(size_t nbytes);  // null when out of memory
  using FreeFn = void (*)(void* ptr);
  using SyncFn = void (*)();  // waits for the device's queued work; null: nothing to wait for
  CachingAllocatorCore(AllocFn alloc, FreeFn free, SyncFn sync = nullptr) : alloc_(alloc), free_(free), sync_(sync) {}
  ~CachingAllocatorCore() = default;  // the process's end frees device memory; no CUDA calls in static dtors

  // Null when even an emptied cache leaves the backend out of memory.
  void* allocate(size_t nbytes, uintptr_t stream) {
    const size_t cls = size_class(nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    auto& list = free_lists_[{stream, cls}];
    void* ptr = nullptr;
    if (!list.empty()) {
      ptr = list.back();
      list.pop_back();
      stats_.bytes_cached -= static_cast<int64_t>(cls);
      stats_.cache_hits++;
    } else {
      ptr = alloc_(cls);
      if (!ptr) {
        release_cache_locked();
        ptr = alloc_(cls);
        if (!ptr) return nullptr;
      }
      stats_.backend_allocs++;
    }
    live_[ptr] = {cls, stream};
    stats_.bytes_in_use += static_cast<int64_t>(cls);
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
    return ptr;
  }
  // Returns false for a pointer this allocator did not hand out.
  bool release(void* ptr) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(ptr);
    if (it == live_.end()) return false;
    free_lists_[{it->second.stream, it->second.cls}].push_back(ptr);
    stats_.bytes_in_use -= static_cast<int64_t>(it->second.cls);
    stats_.bytes_cached += static_cast<int64_t>(it->second.cls);
    live_.erase(it);
    return true;
  }
  void empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_cache_locked();
  }
  DeviceAllocatorStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_bytes_in_use = stats_.bytes_in_use;
  }

 private:
  struct Live {
    size_t cls;
    uintptr_t stream;
  };
  void release_cache_locked() {
    if (stats_.bytes_cached == 0) return;
    if (sync_) sync_();
    for (auto& [key, list] : free_lists_) {
      for (void* p : list) free_(p);
      list.clear();
    }
    stats_.bytes_cached = 0;
  }
  AllocFn alloc_;
  FreeFn free_;
  SyncFn sync_;
  mutable std::mutex mutex_;
  std::map<std::pair<uintptr_t, size_t>, std::vector<void*>> free_lists_;
  std::unordered_map<void*, Live> live_;
  DeviceAllocatorStats stats_;
};

}  // namespace gs::kernels::cuda
