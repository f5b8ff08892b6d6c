// The "packed" GEMM variant: our own blocked GEMM in the BLIS/GotoBLAS shape. Panels of op(B)
// (KC x NR) and op(A) (MR x KC) are packed into contiguous, zero-padded buffers, then a 6 x 2-vector
// register micro-kernel (12 accumulators, GCC vector extensions) runs over them. Threads split
// C into column (or row) stripes, each packing its own panels; inside a parallel region it runs
// on the calling thread.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/simd.h"

#ifdef GS_OPENMP
#include <omp.h>
#endif

namespace gs::kernels {

namespace {

template <class T> using Simd = simd::Simd<T>;

constexpr int64_t kMR = 6;    // rows of the micro-tile
constexpr int64_t kKC = 256;  // depth of one packed panel
constexpr int64_t kMC = 96;   // rows of A packed at once (a multiple of kMR)
constexpr int64_t kNC = 512;  // columns of B packed at once

template <class T> constexpr int64_t nr() { return 2 * Simd<T>::kLanes; }

template <class T, int Slot> T* scratch(size_t count) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < count) buffer.resize(count);
  return buffer.data();
}

// Operand views: element (i, j) of op(A) (M,K) or op(B) (K,N).
template <class T> struct View {
  const T* p;
  int64_t ld;
  bool trans;
  T at(int64_t i, int64_t j) const { return trans ? p[j * ld + i] : p[i * ld + j]; }
};

// packed (ceil(mc/MR), kc, MR) from op(A)[m0.., k0..]; rows past mc are 0
template <class T> void pack_a(const View<T>& a, int64_t m0, int64_t mc, int64_t k0, int64_t kc, T* packed) {
  for (int64_t i0 = 0; i0 < mc; i0 += kMR) {
    T* dst = packed + i0 * kc;
    const int64_t rows = std::min(kMR, mc - i0);
    for (int64_t k = 0; k < kc; ++k) {
      for (int64_t i = 0; i < rows; ++i) dst[k * kMR + i] = a.at(m0 + i0 + i, k0 + k);
      for (int64_t i = rows; i < kMR; ++i) dst[k * kMR + i] = T(0);
    }
  }
}

// packed (ceil(nc/NR), kc, NR) from op(B)[k0.., n0..]; columns past nc are 0
template <class T> void pack_b(const View<T>& b, int64_t k0, int64_t kc, int64_t n0, int64_t nc, T* packed) {
  constexpr int64_t NR = nr<T>();
  for (int64_t j0 = 0; j0 < nc; j0 += NR) {
    T* dst = packed + j0 * kc;
    const int64_t cols = std::min(NR, nc - j0);
    for (int64_t k = 0; k < kc; ++k) {
      T* row = dst + k * NR;
      if (!b.trans && cols == NR) {
        std::memcpy(row, b.p + (k0 + k) * b.ld + n0 + j0, sizeof(T) * NR);
        continue;
      }
      for (int64_t j = 0; j < cols; ++j) row[j] = b.at(k0 + k, n0 + j0 + j);
      for (int64_t j = cols; j < NR; ++j) row[j] = T(0);
    }
  }
}

// C (mr, nr) += alpha * a (kc, MR) * b (kc, NR)
template <class T>
void micro_kernel(int64_t kc, const T* a, const T* b, T alpha, T* c, int64_t ldc, int64_t mr, int64_t nr_valid) {
  using V = typename Simd<T>::V;
  constexpr int L = Simd<T>::kLanes;
  V acc[kMR][2];
  for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = V{};
  for (int64_t k = 0; k < kc; ++k) {
    V b0, b1;
    std::memcpy(&b0, b + k * 2 * L, sizeof(V));
    std::memcpy(&b1, b + k * 2 * L + L, sizeof(V));
    const T* ak = a + k * kMR;
    for (int i = 0; i < kMR; ++i) {
      acc[i][0] += b0 * ak[i];
      acc[i][1] += b1 * ak[i];
    }
  }
  if (mr == kMR && nr_valid == 2 * L) {
    for (int i = 0; i < kMR; ++i) {
      T* ci = c + i * ldc;
      for (int h = 0; h < 2; ++h) {
        V cv;
        std::memcpy(&cv, ci + h * L, sizeof(V));
        cv += acc[i][h] * alpha;
        std::memcpy(ci + h * L, &cv, sizeof(V));
      }
    }
    return;
  }
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr_valid; ++j) c[i * ldc + j] += alpha * acc[i][j / L][j % L];
}

// C[m0:m1, n0:n1] = alpha op(A) op(B) + beta C over that block, on the calling thread.
template <class T>
void gemm_block(const View<T>& a, const View<T>& b, int64_t K, T alpha, T beta, T* C, int64_t ldc, int64_t m0,
                int64_t m1, int64_t n0, int64_t n1) {
  constexpr int64_t NR = nr<T>();
  for (int64_t i = m0; i < m1; ++i) {
    T* row = C + i * ldc;
    if (beta == T(0))
      std::fill(row + n0, row + n1, T(0));
    else if (beta != T(1))
      for (int64_t j = n0; j < n1; ++j) row[j] *= beta;
  }
  if (K == 0 || alpha == T(0)) return;
  T* packed_b = scratch<T, 0>(size_t(kKC * (kNC + NR)));
  T* packed_a = scratch<T, 1>(size_t(kKC * (kMC + kMR)));
  for (int64_t jc = n0; jc < n1; jc += kNC) {
    const int64_t nc = std::min(kNC, n1 - jc);
    for (int64_t pc = 0; pc < K; pc += kKC) {
      const int64_t kc = std::min(kKC, K - pc);
      pack_b(b, pc, kc, jc, nc, packed_b);
      for (int64_t ic = m0; ic < m1; ic += kMC) {
        const int64_t mc = std::min(kMC, m1 - ic);
        pack_a(a, ic, mc, pc, kc, packed_a);
        for (int64_t jr = 0; jr < nc; jr += NR)
          for (int64_t ir = 0; ir < mc; ir += kMR)
            micro_kernel(kc, packed_a + ir * kc, packed_b + jr * kc, alpha, C + (ic + ir) * ldc + jc + jr, ldc,
                         std::min(kMR, mc - ir), std::min(NR, nc - jr));
      }
    }
  }
}

inline int threads_for(int64_t M, int64_t N, int64_t K) {
#ifdef GS_OPENMP
  if (omp_in_parallel() || M * N * K < (int64_t(1) << 18)) return 1;
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace

template <class T>
void gemm_packed(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                 int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  const View<T> a{A, lda, ta}, b{B, ldb, tb};
  const int threads = threads_for(M, N, K);
  if (threads <= 1) return gemm_block(a, b, K, alpha, beta, C, ldc, 0, M, 0, N);
  // Stripes of whole micro-tiles along the longer side (in tiles), one per thread.
  constexpr int64_t NR = nr<T>();
  const int64_t col_tiles = (N + NR - 1) / NR, row_tiles = (M + kMR - 1) / kMR;
  const bool split_columns = col_tiles >= threads && col_tiles * NR >= row_tiles * kMR;
#pragma omp parallel num_threads(threads)
  {
#ifdef GS_OPENMP
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
    const int64_t t = 0, nt = 1;
#endif
    const int64_t tiles = split_columns ? col_tiles : row_tiles, tile = split_columns ? NR : kMR;
    const int64_t lo = std::min(tiles * t / nt * tile, split_columns ? N : M);
    const int64_t hi = std::min(tiles * (t + 1) / nt * tile, split_columns ? N : M);
    if (lo < hi) {
      if (split_columns)
        gemm_block(a, b, K, alpha, beta, C, ldc, 0, M, lo, hi);
      else
        gemm_block(a, b, K, alpha, beta, C, ldc, lo, hi, 0, N);
    }
  }
}

template void gemm_packed<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                                 int64_t, float, float*, int64_t);
template void gemm_packed<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                                  int64_t, double, double*, int64_t);

}  // namespace gs::kernels
