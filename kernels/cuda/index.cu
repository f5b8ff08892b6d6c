// gather / scatter_add / index_select / index_add on CUDA (kernels in index_kernels.cuh), for
// f32 values and i64 ones; same layout and meaning as kernels/cpu/index.h.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/index_kernels.cuh"
#include "kernels/cuda/index_math.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/runtime.h"

namespace gs::kernels::cuda {

template <class T>
void gather(const T* in, const int64_t* index, T* out, int64_t outer, int64_t d, int64_t k, int64_t inner) {
  launch_1d(outer * k * inner, gather_kernel<T>, in, index, out, outer, d, k, inner);
}
template <class T>
void index_select(const T* in, const int64_t* index, T* out, int64_t outer, int64_t d, int64_t k, int64_t inner) {
  launch_1d(outer * k * inner, index_select_kernel<T>, in, index, out, outer, d, k, inner);
}
template <class T>
void scatter_add(T* acc, const int64_t* index, const T* src, int64_t outer, int64_t d, int64_t k, int64_t inner) {
  launch_1d(outer * k * inner, scatter_add_kernel<T>, acc, index, src, outer, d, k, inner);
}
template <class T>
void index_add(T* acc, const int64_t* index, const T* src, int64_t outer, int64_t d, int64_t k, int64_t inner) {
  launch_1d(outer * k * inner, index_add_kernel<T>, acc, index, src, outer, d, k, inner);
}

#define GS_CUDA_INDEX(T)                                                                           \
  template void gather<T>(const T*, const int64_t*, T*, int64_t, int64_t, int64_t, int64_t);       \
  template void index_select<T>(const T*, const int64_t*, T*, int64_t, int64_t, int64_t, int64_t); \
  template void scatter_add<T>(T*, const int64_t*, const T*, int64_t, int64_t, int64_t, int64_t);  \
  template void index_add<T>(T*, const int64_t*, const T*, int64_t, int64_t, int64_t, int64_t);
GS_CUDA_INDEX(float)
GS_CUDA_INDEX(int64_t)
#undef GS_CUDA_INDEX

}  // namespace gs::kernels::cuda
