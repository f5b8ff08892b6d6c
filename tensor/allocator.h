// Caching CPU allocator: 64-byte aligned blocks, kept on exact-size free lists and reused, so
// a steady-state training step does no malloc. Counters tell bytes in use, peak and cached.
// Thread-safe (the DataLoader's prefetch thread allocates too).
#pragma once
#include <cstddef>
#include <cstdint>

namespace gs {

struct AllocatorStats {
  int64_t bytes_in_use = 0;       // handed out and not yet returned
  int64_t peak_bytes_in_use = 0;  // high-water mark of bytes_in_use since reset_peak
  int64_t bytes_cached = 0;       // held in free lists, ready for reuse
  int64_t system_allocs = 0;      // calls that reached the system allocator
  int64_t cache_hits = 0;         // allocations served from the free lists
};

class CpuAllocator {
 public:
  static CpuAllocator& instance();
  void* allocate(size_t nbytes);
  void release(void* ptr, size_t nbytes);
  AllocatorStats stats() const;
  void reset_peak();
  void empty_cache();  // gives every cached block back to the system
  static constexpr size_t kAlignment = 64;
  static size_t rounded_size(size_t nbytes);
};

}  // namespace gs
