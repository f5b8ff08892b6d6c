// One 64-byte vector of T for the hand-blocked kernels (conv2d_direct, gemm_packed,
// batchnorm_vec, pool): GCC/Clang vector extensions, a zmm register with AVX-512 and a ymm
// pair with AVX2; plain loads/stores through memcpy so no alignment is assumed.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gs::kernels::simd {

template <class T> struct Simd;
template <> struct Simd<float> {
  typedef float V __attribute__((vector_size(64)));
  static constexpr int kLanes = 16;
};
template <> struct Simd<double> {
  typedef double V __attribute__((vector_size(64)));
  static constexpr int kLanes = 8;
};
template <class T> using Vec = typename Simd<T>::V;
// what comparing two Vec<T> gives: integer lanes of T's width, -1 (true) or 0
template <class T> using Mask = decltype(Vec<T>{} < Vec<T>{});
template <class T> constexpr int lanes() { return Simd<T>::kLanes; }

template <class T> inline Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <class T> inline void store(T* p, Vec<T> v) { std::memcpy(p, &v, sizeof(v)); }
template <class T> inline Vec<T> splat(T x) { return Vec<T>{} + x; }
// indices 0, 2, 4, ...: with __builtin_shuffle(v0, v1, even_lanes) the even lanes of v0:v1
template <class T> inline Mask<T> even_lanes() {
  Mask<T> m;
  for (int l = 0; l < lanes<T>(); ++l) m[l] = 2 * l;
  return m;
}
// lanes l of p[l * stride] (strided convolutions)
template <class T> inline Vec<T> load_strided(const T* p, int64_t stride) {
  Vec<T> v;
  for (int l = 0; l < lanes<T>(); ++l) v[l] = p[l * stride];
  return v;
}
template <class T> inline T sum(Vec<T> v) {
  T s = 0;
  for (int l = 0; l < lanes<T>(); ++l) s += v[l];
  return s;
}

// lane-wise square root (one instruction with AVX-512; std::sqrt per lane otherwise)
inline Vec<float> sqrt(Vec<float> v) {
#if defined(__AVX512F__)
  return (Vec<float>)_mm512_mask_sqrt_ps((__m512)v, __mmask16(0xFFFF),
                                         (__m512)v);  // masked: no "undefined" source (GCC 12 warns)
#else
  for (int l = 0; l < lanes<float>(); ++l) v[l] = std::sqrt(v[l]);
  return v;
#endif
}
inline Vec<double> sqrt(Vec<double> v) {
#if defined(__AVX512F__)
  return (Vec<double>)_mm512_mask_sqrt_pd((__m512d)v, __mmask8(0xFF), (__m512d)v);
#else
  for (int l = 0; l < lanes<double>(); ++l) v[l] = std::sqrt(v[l]);
  return v;
#endif
}

}  // namespace gs::kernels::simd
