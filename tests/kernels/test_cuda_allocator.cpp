// The CUDA caching allocator's bookkeeping (kernels/cuda/caching_allocator.h) driven by a
// fake backend on the host: size classes, reuse per stream, stats, out-of-memory retry.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "kernels/cuda/caching_allocator.h"

namespace gs {
namespace {
namespace kc = kernels::cuda;

int g_backend_allocs = 0, g_backend_frees = 0;
size_t g_backend_limit = SIZE_MAX, g_backend_used = 0;
std::map<void*, size_t> g_backend_live;

void* fake_alloc(size_t n) {
  if (g_backend_used + n > g_backend_limit) return nullptr;
  g_backend_used += n;
  g_backend_allocs++;
  void* p = std::malloc(n);
  g_backend_live[p] = n;
  return p;
}
void fake_free(void* p) {
  g_backend_frees++;
  g_backend_used -= g_backend_live.at(p);
  g_backend_live.erase(p);
  std::free(p);
}
void reset_fake(size_t limit = SIZE_MAX) {
  g_backend_allocs = g_backend_frees = 0;
  g_backend_limit = limit;
  g_backend_used = 0;
}

TEST(CudaAllocator, SizeClasses) {
  EXPECT_EQ(kc::size_class(0), 512u);
  EXPECT_EQ(kc::size_class(1), 512u);
  EXPECT_EQ(kc::size_class(512), 512u);
  EXPECT_EQ(kc::size_class(513), 1024u);
  EXPECT_EQ(kc::size_class(1 << 20), size_t(1) << 20);
  // Above 1 MiB: four classes per power of two, so at most 25% is wasted.
  EXPECT_EQ(kc::size_class((1 << 20) + 1), (size_t(1) << 20) + (size_t(1) << 18));
  for (size_t n : {size_t(3) << 20, size_t(5000000), size_t(123456789)}) {
    size_t c = kc::size_class(n);
    EXPECT_GE(c, n);
    EXPECT_LE(static_cast<double>(c), 1.25 * static_cast<double>(n) + 512);
  }
  // Found by an audit: above 2^63 bytes the power-of-two search looped forever; now the size goes
  // to the backend as asked, which reports out of memory.
  EXPECT_EQ(kc::size_class((size_t(1) << 63) + 5), (size_t(1) << 63) + 5);
}

TEST(CudaAllocator, ReusesFreedBlocksOnTheSameStreamAndCounts) {
  reset_fake();
  kc::CachingAllocatorCore a(&fake_alloc, &fake_free);
  void* p = a.allocate(1000, 1);
  void* q = a.allocate(3000, 1);
  EXPECT_EQ(a.stats().bytes_in_use, 1024 + 3072);
  EXPECT_EQ(a.stats().backend_allocs, 2);
  EXPECT_TRUE(a.release(p));
  EXPECT_EQ(a.stats().bytes_cached, 1024);
  EXPECT_EQ(a.allocate(900, 1), p);  // same class, same stream: the cached block
  EXPECT_EQ(a.stats().cache_hits, 1);
  void* r = a.allocate(900, 2);  // another stream does not take it
  EXPECT_NE(r, p);
  EXPECT_EQ(a.stats().peak_bytes_in_use, 1024 + 3072 + 1024);
  EXPECT_FALSE(a.release(reinterpret_cast<void*>(0x1234)));  // not ours
  a.release(p);
  a.release(q);
  a.release(r);
  EXPECT_EQ(a.stats().bytes_in_use, 0);
  a.reset_peak();
  EXPECT_EQ(a.stats().peak_bytes_in_use, 0);
  a.empty_cache();
  EXPECT_EQ(a.stats().bytes_cached, 0);
  EXPECT_EQ(g_backend_frees, 3);
  EXPECT_TRUE(g_backend_live.empty());
}

TEST(CudaAllocator, OutOfMemoryEmptiesTheCacheAndRetries) {
  reset_fake(4096);
  kc::CachingAllocatorCore a(&fake_alloc, &fake_free);
  void* p = a.allocate(3000, 1);  // 3072
  a.release(p);                   // cached
  void* q = a.allocate(2048, 1);  // 3072 + 2048 > 4096: cache emptied, then it fits
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(g_backend_frees, 1);
  EXPECT_EQ(a.allocate(4000, 1), nullptr);  // really out of memory: null, the caller reports
  a.release(q);
  a.empty_cache();
}

// Freeing is not stream-ordered: before the core gives a cached block back (to retry, or on
// empty_cache), it waits for the device's queued kernels, which may still use that block.
int g_syncs = 0, g_frees_at_last_sync = -1;
void fake_sync() {
  g_syncs++;
  g_frees_at_last_sync = g_backend_frees;
}

TEST(CudaAllocator, SyncsBeforeFreeingCachedBlocks) {
  reset_fake(4096);
  g_syncs = 0;
  kc::CachingAllocatorCore a(&fake_alloc, &fake_free, &fake_sync);
  void* p = a.allocate(3000, 1);
  EXPECT_EQ(g_syncs, 0);  // allocations and releases never wait
  a.release(p);
  void* q = a.allocate(2048, 1);  // out of memory: sync, then free the cached 3072, then retry
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(g_syncs, 1);
  EXPECT_EQ(g_frees_at_last_sync, 0);  // the sync came before the free
  EXPECT_EQ(g_backend_frees, 1);
  EXPECT_EQ(a.allocate(4000, 1), nullptr);  // nothing cached to free: no sync
  EXPECT_EQ(g_syncs, 1);
  a.release(q);
  a.empty_cache();
  EXPECT_EQ(g_syncs, 2);
  EXPECT_EQ(g_frees_at_last_sync, 1);
  EXPECT_EQ(g_backend_frees, 2);
  a.empty_cache();  // empty: no sync
  EXPECT_EQ(g_syncs, 2);
}

}  // namespace
}  // namespace gs
