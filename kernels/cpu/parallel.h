// parallel_for: splits [0, n) into one contiguous chunk per OpenMP thread, or runs it inline
// when n is small. Below the threshold no parallel region is opened at all (an `if(false)`
// region still costs microseconds, which dominates small tensors such as a [64,10] head).
#pragma once
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace gs::kernels {

// body(begin, end) handles elements [begin, end); chunks are contiguous so a body can seek once
// and then walk (strided walkers, row pointers).
template <class Body> void parallel_for(int64_t n, int64_t serial_below, Body body) {
  if (n <= 0) return;
#ifdef _OPENMP
  if (n > serial_below && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel
    {
      int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
      int64_t begin = n * t / threads, end = n * (t + 1) / threads;
      if (begin < end) body(begin, end);
    }
    return;
  }
#endif
  body(int64_t(0), n);
}

}  // namespace gs::kernels
