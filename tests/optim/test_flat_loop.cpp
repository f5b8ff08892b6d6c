// optim/flat_loop.h: one step's flat loop visits every element of every parameter exactly once,
// whatever the sizes (empty, shorter than a vector, odd) and the number of threads.
#include "optim/flat_loop.h"

#include <gtest/gtest.h>

#include <vector>

#ifdef GS_OPENMP
#include <omp.h>
#endif

using namespace gs::optim;

namespace {

void expect_each_element_once(const std::vector<int64_t>& sizes) {
  std::vector<std::vector<int>> seen(sizes.size());
  for (size_t k = 0; k < sizes.size(); ++k) seen[k].assign(size_t(sizes[k]), 0);
  for_each_range(sizes, [&](size_t k, int64_t begin, int64_t end) {
    ASSERT_LT(k, sizes.size());
    ASSERT_LE(0, begin);
    ASSERT_LT(begin, end);
    ASSERT_LE(end, sizes[k]);
    for (int64_t i = begin; i < end; ++i) ++seen[k][size_t(i)];  // ranges are disjoint: no race
  });
  for (size_t k = 0; k < sizes.size(); ++k)
    for (int64_t i = 0; i < sizes[k]; ++i) ASSERT_EQ(seen[k][size_t(i)], 1) << "segment " << k << " element " << i;
}

}  // namespace

TEST(FlatLoop, EveryElementOnceAtAnyThreadCount) {
  const std::vector<std::vector<int64_t>> cases = {
      {},        {0},    {5},  {0, 1, 0, 63, 64, 65},  // serial: below the parallel threshold
      {40000, 3, 0, 70001, 17, 64 * 1000 + 1},          // parallel: ranges cut inside and across segments
      {1 << 15}, {1, (1 << 16) - 1}};
#ifdef GS_OPENMP
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 3, 7}) {
    omp_set_num_threads(threads);
    for (const auto& sizes : cases) expect_each_element_once(sizes);
  }
  omp_set_num_threads(saved);
#else
  for (const auto& sizes : cases) expect_each_element_once(sizes);
#endif
}

TEST(FlatLoop, VectorLoopSplitsIntoWholeVectorsAndATail) {
  std::vector<int> kind(37, 0);  // 1: covered by a vector body, 2: by the scalar tail
  vector_loop<float>(
      0, 37, [&](int64_t i) { for (int l = 0; l < 16; ++l) kind[size_t(i + l)] += 1; },
      [&](int64_t i) { kind[size_t(i)] += 2; });
  for (int i = 0; i < 32; ++i) EXPECT_EQ(kind[i], 1) << i;
  for (int i = 32; i < 37; ++i) EXPECT_EQ(kind[i], 2) << i;
}
