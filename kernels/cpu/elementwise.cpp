// Elementwise CPU kernels: ref (serial N-d index loop) and omp (contiguous and scalar fast
// paths, OpenMP across elements or rows). Formulas live in elementwise_math.h.
#include "kernels/cpu/elementwise.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/elementwise_math.h"
#include "kernels/cpu/parallel.h"

namespace gs::kernels {

const char* unary_op_name(UnaryOp op) {
  static const char* names[] = {"neg",     "exp",  "log",   "sqrt", "abs",  "relu",   "leaky_relu", "gelu",
                                "sigmoid", "tanh", "clamp", "pow",  "sign", "square", "copy"};
  return names[static_cast<int>(op)];
}
const char* binary_op_name(BinaryOp op) {
  static const char* names[] = {"add",
                                "sub",
                                "mul",
                                "div",
                                "pow",
                                "maximum",
                                "minimum",
                                "eq",
                                "ne",
                                "lt",
                                "le",
                                "gt",
                                "ge",
                                "relu_backward",
                                "leaky_relu_backward",
                                "gelu_backward",
                                "sigmoid_backward",
                                "tanh_backward",
                                "abs_backward",
                                "clamp_backward"};
  return names[static_cast<int>(op)];
}

namespace {

// Walks an N-d index in row-major order, keeping one offset per operand.
template <int kOperands> struct StridedWalker {
  const int64_t* shape;
  int ndim;
  const int64_t* strides[kOperands];
  std::vector<int64_t> idx;
  int64_t off[kOperands] = {};

  void seek(int64_t linear) {  // position at the linear-th element
    idx.assign(ndim, 0);
    for (int k = 0; k < kOperands; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      idx[d] = linear % shape[d];
      linear /= shape[d];
      for (int k = 0; k < kOperands; ++k) off[k] += idx[d] * strides[k][d];
    }
  }
  void next() {
    for (int d = ndim - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) {
        for (int k = 0; k < kOperands; ++k) off[k] += strides[k][d];
        return;
      }
      for (int k = 0; k < kOperands; ++k) off[k] -= strides[k][d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
};

int64_t numel_of(const int64_t* shape, int ndim) {
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= shape[d];
  return n;
}

// ---------- unary ----------
template <class T> void unary_ref(UnaryOp op, const T* in, T* out, int64_t n, double alpha, double beta) {
  with_unary<T>(op, T(alpha), T(beta), [&](auto f) {
    for (int64_t i = 0; i < n; ++i) out[i] = f(in[i]);
  });
}

template <class T> void unary_omp(UnaryOp op, const T* in, T* out, int64_t n, double alpha, double beta) {
  with_unary<T>(op, T(alpha), T(beta), [&](auto f) {
    parallel_for(n, 32768, [&](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) out[i] = f(in[i]);
    });
  });
}

// ---------- binary ----------
template <class T>
void binary_ref(BinaryOp op, const T* a, const int64_t* as, const T* b, const int64_t* bs, T* out, const int64_t* shape,
                int ndim, double alpha, double beta) {
  with_binary<T>(op, T(alpha), T(beta), [&](auto f) {
    int64_t n = numel_of(shape, ndim);
    if (n == 0) return;
    StridedWalker<2> w{shape, ndim, {as, bs}, {}};
    w.seek(0);
    for (int64_t i = 0; i < n; ++i, w.next()) out[i] = f(a[w.off[0]], b[w.off[1]]);
  });
}

bool is_contiguous(const int64_t* strides, const int64_t* shape, int ndim) {
  int64_t expected = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    if (shape[d] != 1 && strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}
bool is_scalar(const int64_t* strides, int ndim) {
  for (int d = 0; d < ndim; ++d) {
    if (strides[d] != 0) return false;
  }
  return true;
}

template <class T>
void binary_omp(BinaryOp op, const T* a, const int64_t* as, const T* b, const int64_t* bs, T* out, const int64_t* shape,
                int ndim, double alpha, double beta) {
  int64_t n = numel_of(shape, ndim);
  if (n == 0) return;
  bool a_flat = is_contiguous(as, shape, ndim), b_flat = is_contiguous(bs, shape, ndim);
  bool a_scalar = is_scalar(as, ndim), b_scalar = is_scalar(bs, ndim);
  with_binary<T>(op, T(alpha), T(beta), [&](auto f) {
    if (a_flat && b_flat) {
      parallel_for(n, 32768, [&](int64_t begin, int64_t end) {
#pragma omp simd
        for (int64_t i = begin; i < end; ++i) out[i] = f(a[i], b[i]);
      });
    } else if (a_flat && b_scalar) {
      const T y = b[0];
      parallel_for(n, 32768, [&](int64_t begin, int64_t end) {
#pragma omp simd
        for (int64_t i = begin; i < end; ++i) out[i] = f(a[i], y);
      });
    } else if (a_scalar && b_flat) {
      const T x = a[0];
      parallel_for(n, 32768, [&](int64_t begin, int64_t end) {
#pragma omp simd
        for (int64_t i = begin; i < end; ++i) out[i] = f(x, b[i]);
      });
    } else {
      // General broadcast: rows of the last dim, each row a strided inner loop. Each thread
      // takes a contiguous block of rows, seeks once and then steps the walker.
      int64_t inner = ndim ? shape[ndim - 1] : 1;
      int64_t rows = n / inner;
      int64_t sa = ndim ? as[ndim - 1] : 0, sb = ndim ? bs[ndim - 1] : 0;
      parallel_for(rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, inner)), [&](int64_t begin, int64_t end) {
        StridedWalker<2> w{shape, ndim - 1, {as, bs}, {}};
        w.seek(begin);
        for (int64_t r = begin; r < end; ++r, w.next()) {
          const T* pa = a + w.off[0];
          const T* pb = b + w.off[1];
          T* po = out + r * inner;
          if (sa == 1 && sb == 0) {
            const T y = pb[0];  // the common bias case: [N,C,H,W] + [1,C,1,1]
            for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i], y);
          } else if (sa == 1 && sb == 1) {
            for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i], pb[i]);
          } else {
            for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i * sa], pb[i * sb]);
          }
        }
      });
    }
  });
}

}  // namespace

template <class T> const VariantTable<UnaryFn<T>>& unary_table() {
  static const VariantTable<UnaryFn<T>> table = [] {
    VariantTable<UnaryFn<T>> t("unary");
    t.add("ref", &unary_ref<T>).add("omp", &unary_omp<T>, true);
    return t;
  }();
  return table;
}

template <class T> const VariantTable<BinaryFn<T>>& binary_table() {
  static const VariantTable<BinaryFn<T>> table = [] {
    VariantTable<BinaryFn<T>> t("binary");
    t.add("ref", &binary_ref<T>).add("omp", &binary_omp<T>, true);
    return t;
  }();
  return table;
}

template <class T>
void where_cpu(const T* cond, const int64_t* cs, const T* a, const int64_t* as, const T* b, const int64_t* bs, T* out,
               const int64_t* shape, int ndim) {
  int64_t n = numel_of(shape, ndim);
  if (n == 0) return;
  StridedWalker<3> w{shape, ndim, {cs, as, bs}, {}};
  w.seek(0);
  for (int64_t i = 0; i < n; ++i, w.next()) out[i] = cond[w.off[0]] != T(0) ? a[w.off[1]] : b[w.off[2]];
}

template <class Tin, class Tout>
void copy_strided(const Tin* src, const int64_t* ss, Tout* dst, const int64_t* ds, const int64_t* shape, int ndim) {
  int64_t n = numel_of(shape, ndim);
  if (n == 0) return;
  if (is_contiguous(ss, shape, ndim) && is_contiguous(ds, shape, ndim)) {
    parallel_for(n, 65536, [&](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) dst[i] = static_cast<Tout>(src[i]);
    });
    return;
  }
  int64_t inner = ndim ? shape[ndim - 1] : 1;
  int64_t rows = n / inner;
  int64_t si = ndim ? ss[ndim - 1] : 0, di = ndim ? ds[ndim - 1] : 0;
  parallel_for(rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, inner)), [&](int64_t begin, int64_t end) {
    StridedWalker<2> w{shape, ndim - 1, {ss, ds}, {}};
    w.seek(begin);
    for (int64_t r = begin; r < end; ++r, w.next()) {
      const Tin* ps = src + w.off[0];
      Tout* pd = dst + w.off[1];
      for (int64_t i = 0; i < inner; ++i) pd[i * di] = static_cast<Tout>(ps[i * si]);
    }
  });
}

#define GS_INSTANTIATE(T)                                                                                      \
  template const VariantTable<UnaryFn<T>>& unary_table<T>();                                                   \
  template const VariantTable<BinaryFn<T>>& binary_table<T>();                                                 \
  template void where_cpu<T>(const T*, const int64_t*, const T*, const int64_t*, const T*, const int64_t*, T*, \
                             const int64_t*, int);
GS_INSTANTIATE(float)
GS_INSTANTIATE(double)
#undef GS_INSTANTIATE

#define GS_COPY(A, B) \
  template void copy_strided<A, B>(const A*, const int64_t*, B*, const int64_t*, const int64_t*, int);
GS_COPY(float, float)
GS_COPY(float, double)
GS_COPY(float, int64_t)
GS_COPY(double, float)
GS_COPY(double, double)
GS_COPY(double, int64_t)
GS_COPY(int64_t, float)
GS_COPY(int64_t, double)
GS_COPY(int64_t, int64_t)
#undef GS_COPY

}  // namespace gs::kernels
