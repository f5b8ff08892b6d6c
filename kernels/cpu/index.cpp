// Index kernels: plain loops; index bounds are checked by the tensor/ front-ends.
#include "kernels/cpu/index.h"

namespace gs::kernels {

template <class T>
void gather(const T* in, const int64_t* index, T* out, int64_t outer, int64_t d, int64_t k, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < k; ++j)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t pos = (o * k + j) * inner + i;
        out[pos] = in[(o * d + index[pos]) * inner + i];
      }
}

template <class T>
void scatter_add(T* acc, const int64_t* index, const T* src, int64_t outer, int64_t d, int64_t k, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < k; ++j)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t pos = (o * k + j) * inner + i;
        acc[(o * d + index[pos]) * inner + i] += src[pos];
      }
}

template <class T>
void index_select(const T* in, const int64_t* index, T* out, int64_t outer, int64_t d, int64_t k, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < k; ++j) {
      const T* src = in + (o * d + index[j]) * inner;
      T* dst = out + (o * k + j) * inner;
      for (int64_t i = 0; i < inner; ++i) dst[i] = src[i];
    }
}

template <class T>
void index_add(T* acc, const int64_t* index, const T* src, int64_t outer, int64_t d, int64_t k, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < k; ++j) {
      T* dst = acc + (o * d + index[j]) * inner;
      const T* s = src + (o * k + j) * inner;
      for (int64_t i = 0; i < inner; ++i) dst[i] += s[i];
    }
}

#define GS_INSTANTIATE(T)                                                                          \
  template void gather<T>(const T*, const int64_t*, T*, int64_t, int64_t, int64_t, int64_t);       \
  template void scatter_add<T>(T*, const int64_t*, const T*, int64_t, int64_t, int64_t, int64_t);  \
  template void index_select<T>(const T*, const int64_t*, T*, int64_t, int64_t, int64_t, int64_t); \
  template void index_add<T>(T*, const int64_t*, const T*, int64_t, int64_t, int64_t, int64_t);
GS_INSTANTIATE(float)
GS_INSTANTIATE(double)
GS_INSTANTIATE(int64_t)
#undef GS_INSTANTIATE

}  // namespace gs::kernels
