// GEMM kernels: the naive reference and Eigen's blocked GEMM (multithreaded via OpenMP), and
// the batched front of the selected one.
#include "kernels/cpu/gemm.h"

#include <Eigen/Core>

namespace gs::kernels {

// gemm_packed.cpp: our blocked, packed GEMM
template <class T>
void gemm_packed(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                 int64_t ldb, T beta, T* C, int64_t ldc);

namespace {

template <class T>
void gemm_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
              int64_t ldb, T beta, T* C, int64_t ldc) {
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        double a = ta ? A[k * lda + m] : A[m * lda + k];
        double b = tb ? B[n * ldb + k] : B[k * ldb + n];
        acc += a * b;
      }
      T& c = C[m * ldc + n];
      c = static_cast<T>(alpha * acc + (beta == T(0) ? T(0) : beta * c));
    }
  }
}

template <class T> using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using ConstMap = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T> using Map = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;

template <class T>
void gemm_eigen(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                int64_t ldb, T beta, T* C, int64_t ldc) {
  Map<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  ConstMap<T> a(A, ta ? K : M, ta ? M : K, Eigen::OuterStride<>(lda));
  ConstMap<T> b(B, tb ? N : K, tb ? K : N, Eigen::OuterStride<>(ldb));
  if (beta == T(0)) {
    c.setZero();
  } else if (beta != T(1)) {
    c *= beta;
  }
  if (M == 0 || N == 0 || K == 0) return;
  if (!ta && !tb) {
    c.noalias() += alpha * a * b;
  } else if (ta && !tb) {
    c.noalias() += alpha * a.transpose() * b;
  } else if (!ta && tb) {
    c.noalias() += alpha * a * b.transpose();
  } else {
    c.noalias() += alpha * a.transpose() * b.transpose();
  }
}

}  // namespace

template <class T> const VariantTable<GemmFn<T>>& gemm_table() {
  static const VariantTable<GemmFn<T>> table = [] {
    VariantTable<GemmFn<T>> t("matmul");
    t.add("ref", &gemm_ref<T>).add("eigen", &gemm_eigen<T>, true).add("packed", &gemm_packed<T>);
    return t;
  }();
  return table;
}
template const VariantTable<GemmFn<float>>& gemm_table<float>();
template const VariantTable<GemmFn<double>>& gemm_table<double>();

template <class T>
void gemm_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, const int64_t* a_offsets, int64_t lda,
                  const T* B, const int64_t* b_offsets, int64_t ldb, T* C, int64_t ldc, int64_t c_step,
                  int64_t batch) {
  const GemmFn<T> fn = gemm_table<T>().get();
  // Below this many multiply-adds a product gains little from threads of its own.
  constexpr int64_t kSmallProduct = int64_t(1) << 18;
  if (batch <= 1 || M * N * K > kSmallProduct) {  // no parallel region around the variant's own
    for (int64_t i = 0; i < batch; ++i)
      fn(ta, tb, M, N, K, T(1), A + a_offsets[i], lda, B + b_offsets[i], ldb, T(0), C + i * c_step, ldc);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < batch; ++i)
    fn(ta, tb, M, N, K, T(1), A + a_offsets[i], lda, B + b_offsets[i], ldb, T(0), C + i * c_step, ldc);
}
template void gemm_batched<float>(bool, bool, int64_t, int64_t, int64_t, const float*, const int64_t*, int64_t,
                                  const float*, const int64_t*, int64_t, float*, int64_t, int64_t, int64_t);
template void gemm_batched<double>(bool, bool, int64_t, int64_t, int64_t, const double*, const int64_t*, int64_t,
                                   const double*, const int64_t*, int64_t, double*, int64_t, int64_t, int64_t);

}  // namespace gs::kernels
