// The caching CPU allocator: alignment, in-use/peak counters, and reuse of freed blocks.
#include "tensor/allocator.h"
#include "tests/helpers.h"

using namespace gs;

TEST(Allocator, BlocksAre64ByteAligned) {
  for (int64_t n : {1, 3, 17, 1000, 4097}) {
    Tensor t = empty({n});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.storage()->data) % 64, 0u) << n;
  }
  EXPECT_EQ(CpuAllocator::rounded_size(1), 64u);
  EXPECT_EQ(CpuAllocator::rounded_size(64), 64u);
  EXPECT_EQ(CpuAllocator::rounded_size(65), 128u);
  EXPECT_EQ(CpuAllocator::rounded_size(0), 64u);
}

TEST(Allocator, InUseAndPeakCounters) {
  auto& alloc = CpuAllocator::instance();
  AllocatorStats before = alloc.stats();
  alloc.reset_peak();
  {
    Tensor a = empty({1000});               // 4000 bytes -> 4032
    Tensor b = empty({500}, {DType::F64});  // 4000 -> 4032
    AllocatorStats during = alloc.stats();
    EXPECT_EQ(during.bytes_in_use - before.bytes_in_use, 8064);
    EXPECT_GE(during.peak_bytes_in_use, during.bytes_in_use);
  }
  AllocatorStats after = alloc.stats();
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
  EXPECT_GE(after.peak_bytes_in_use - before.bytes_in_use, 8064);
  alloc.reset_peak();
  EXPECT_EQ(alloc.stats().peak_bytes_in_use, alloc.stats().bytes_in_use);
}

TEST(Allocator, FreedBlockIsReused) {
  auto& alloc = CpuAllocator::instance();
  const int64_t n = 12345;  // an unusual size: no other test leaves such a block cached
  void* first_ptr;
  {
    Tensor a = empty({n});
    first_ptr = a.storage()->data;
  }
  AllocatorStats before = alloc.stats();
  EXPECT_GE(before.bytes_cached, int64_t(CpuAllocator::rounded_size(n * 4)));
  Tensor b = empty({n});
  AllocatorStats after = alloc.stats();
  EXPECT_EQ(b.storage()->data, first_ptr);
  EXPECT_EQ(after.system_allocs, before.system_allocs);
  EXPECT_EQ(after.cache_hits, before.cache_hits + 1);
  EXPECT_EQ(after.bytes_cached, before.bytes_cached - int64_t(CpuAllocator::rounded_size(n * 4)));
}

TEST(Allocator, EmptyCacheReturnsBlocks) {
  auto& alloc = CpuAllocator::instance();
  { Tensor a = empty({777}); }
  EXPECT_GT(alloc.stats().bytes_cached, 0);
  alloc.empty_cache();
  EXPECT_EQ(alloc.stats().bytes_cached, 0);
  int64_t sys = alloc.stats().system_allocs;
  Tensor b = empty({777});
  EXPECT_EQ(alloc.stats().system_allocs, sys + 1);
}
