// Index kernels over a tensor viewed as (outer, dim, inner), contiguous:
// gather / scatter_add along dim, index_select / index_add along dim.
#pragma once
#include <cstdint>

namespace gs::kernels {

// out (outer, k, inner) = in (outer, d, inner) at [o, index[o, j, i], i]; index (outer, k, inner)
template <class T>
void gather(const T* in, const int64_t* index, T* out, int64_t outer, int64_t d, int64_t k, int64_t inner);
// acc (outer, d, inner) += src (outer, k, inner) scattered by index (outer, k, inner)
template <class T>
void scatter_add(T* acc, const int64_t* index, const T* src, int64_t outer, int64_t d, int64_t k, int64_t inner);
// out (outer, k, inner) = in (outer, d, inner) at [o, index[j], i]; index (k)
template <class T>
void index_select(const T* in, const int64_t* index, T* out, int64_t outer, int64_t d, int64_t k, int64_t inner);
// acc (outer, d, inner) += src (outer, k, inner) at [o, index[j], i]
template <class T>
void index_add(T* acc, const int64_t* index, const T* src, int64_t outer, int64_t d, int64_t k, int64_t inner);

}  // namespace gs::kernels
