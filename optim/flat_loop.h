// One optimizer step as one flat loop: the elements of all parameters laid end to end, split
// into one contiguous range per OpenMP thread in a single parallel region (no region per
// parameter, and small parameters share a thread's range instead of each paying for a region),
// each parameter's part of a range run as 64-byte vectors (kernels/cpu/simd.h) plus a scalar tail.
//
//   std::vector<int64_t> sizes = {p0.numel(), p1.numel(), ...};
//   for_each_range(sizes, [&](size_t k, int64_t begin, int64_t end) { /* parameter k, [begin, end) */ });
//   vector_loop<float>(begin, end, [&](int64_t i) { /* lanes i..i+15 */ }, [&](int64_t i) { /* element i */ });
//
// The update rules stay in sgd.cpp, adam.cpp, rprop.cpp and rmsprop.cpp; this file only walks.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cpu/simd.h"

#ifdef GS_OPENMP
#include <omp.h>
#endif

namespace gs::optim {

// Below this many elements in all, the step runs on the calling thread (a parallel region costs
// microseconds, more than a small model's whole update).
inline constexpr int64_t kFlatSerialBelow = int64_t(1) << 15;

// body(k, begin, end) for the part [begin, end) of segment k (sizes[k] elements), over every
// element of every segment exactly once. Ranges are cut at multiples of 64 elements, so vector
// loops inside a segment stay on whole vectors except at the segment's own end.
template <class Body>
void for_each_range(const std::vector<int64_t>& sizes, Body body) {
  int64_t total = 0;
  for (int64_t n : sizes) total += n;
  if (total == 0) return;
  auto run = [&](int64_t lo, int64_t hi) {  // global element range [lo, hi)
    int64_t start = 0;
    for (size_t k = 0; k < sizes.size() && start < hi; start += sizes[k], ++k) {
      const int64_t begin = lo > start ? lo - start : 0;
      const int64_t end = hi < start + sizes[k] ? hi - start : sizes[k];
      if (begin < end) body(k, begin, end);
    }
  };
#ifdef GS_OPENMP
  if (total >= kFlatSerialBelow && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel
    {
      const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
      auto cut = [&](int64_t i) { return i == threads ? total : (total * i / threads) / 64 * 64; };
      run(cut(t), cut(t + 1));
    }
    return;
  }
#endif
  run(0, total);
}

// vector_body(i) for each whole vector of T starting at i in [begin, end), then scalar(i) for the rest.
template <class T, class VectorBody, class ScalarBody>
inline void vector_loop(int64_t begin, int64_t end, VectorBody vector_body, ScalarBody scalar) {
  constexpr int64_t L = kernels::simd::lanes<T>();
  int64_t i = begin;
  for (; i + L <= end; i += L) vector_body(i);
  for (; i < end; ++i) scalar(i);
}

// One step's items by dtype (an optimizer may hold f32 and f64 parameters): add() sorts them,
// run() steps the f32 ones, then the f64 ones, each in one flat loop.
template <template <class> class Item>
struct ItemsByType {
  std::vector<Item<float>> f32;
  std::vector<Item<double>> f64;
  void add(const Item<float>& item) { f32.push_back(item); }
  void add(const Item<double>& item) { f64.push_back(item); }
  template <class UpdateF32, class UpdateF64>
  void run(UpdateF32 update_f32, UpdateF64 update_f64) const;
};

// update(item, begin, end) over every item (one parameter each, item.n elements) in one flat loop.
template <class Item, class Update>
void step_items(const std::vector<Item>& items, Update update) {
  std::vector<int64_t> sizes;
  sizes.reserve(items.size());
  for (const Item& item : items) sizes.push_back(item.n);
  for_each_range(sizes, [&](size_t k, int64_t begin, int64_t end) { update(items[k], begin, end); });
}

template <template <class> class Item>
template <class UpdateF32, class UpdateF64>
void ItemsByType<Item>::run(UpdateF32 update_f32, UpdateF64 update_f64) const {
  step_items(f32, update_f32);
  step_items(f64, update_f64);
}

}  // namespace gs::optim
