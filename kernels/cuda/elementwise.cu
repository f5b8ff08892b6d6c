// Elementwise CUDA kernels: unary maps, binary maps with broadcasting, where, strided copies
// with dtype casts, axpy. Grid-stride loops; per-element index maths in index_math.h and the
// formulas in elementwise_ops.h (both also run by the host tests).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/elementwise_kernels.cuh"
#include "kernels/cuda/elementwise_ops.h"
#include "kernels/cuda/index_math.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/runtime.h"

namespace gs::kernels::cuda {

namespace {
cudaStream_t stream() { return compute_stream(current_device()); }
int64_t grid(int64_t n) { return blocks_for(n, kBlockThreads); }

Layout make_layout(const char* op, const int64_t* shape, int ndim, std::initializer_list<const int64_t*> strides) {
  if (ndim > kMaxDims)
    throw std::invalid_argument(std::string(op) + " (cuda): rank " + std::to_string(ndim) +
                                " is above the CUDA limit " + std::to_string(kMaxDims));
  Layout l;
  l.ndim = ndim;
  for (int d = 0; d < ndim; ++d) l.shape[d] = shape[d];
  int k = 0;
  for (const int64_t* s : strides) {
    for (int d = 0; d < ndim; ++d) l.strides[k][d] = s[d];
    ++k;
  }
  return l;
}
int64_t numel(const int64_t* shape, int ndim) {
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= shape[d];
  return n;
}

void unary_grid(UnaryOp op, const float* in, float* out, int64_t n, double alpha, double beta) {
  if (n <= 0) return;
  GS_LAUNCH(grid(n), kBlockThreads, stream(), unary_kernel)
  (op, in, out, n, static_cast<float>(alpha), static_cast<float>(beta));
  CUDA_CHECK_LAUNCH();
}

void binary_grid(BinaryOp op, const float* a, const int64_t* a_strides, const float* b, const int64_t* b_strides,
                 float* out, const int64_t* shape, int ndim, double alpha, double beta) {
  int64_t n = numel(shape, ndim);
  if (n <= 0) return;
  Layout l = make_layout(binary_op_name(op), shape, ndim, {a_strides, b_strides});
  GS_LAUNCH(grid(n), kBlockThreads, stream(), binary_kernel)
  (op, a, b, out, l, n, static_cast<float>(alpha), static_cast<float>(beta));
  CUDA_CHECK_LAUNCH();
}

}  // namespace

const VariantTable<UnaryFn<float>>& unary_table() {
  static const VariantTable<UnaryFn<float>> table = [] {
    VariantTable<UnaryFn<float>> t("cuda.unary");
    t.add("grid", &unary_grid);
    return t;
  }();
  return table;
}

const VariantTable<BinaryFn<float>>& binary_table() {
  static const VariantTable<BinaryFn<float>> table = [] {
    VariantTable<BinaryFn<float>> t("cuda.binary");
    t.add("grid", &binary_grid);
    return t;
  }();
  return table;
}

void where(const float* cond, const int64_t* c_strides, const float* a, const int64_t* a_strides, const float* b,
           const int64_t* b_strides, float* out, const int64_t* shape, int ndim) {
  int64_t n = numel(shape, ndim);
  if (n <= 0) return;
  Layout l = make_layout("where", shape, ndim, {c_strides, a_strides, b_strides});
  GS_LAUNCH(grid(n), kBlockThreads, stream(), where_kernel)(cond, a, b, out, l, n);
  CUDA_CHECK_LAUNCH();
}

template <class Tin, class Tout>
void copy_strided(const Tin* src, const int64_t* src_strides, Tout* dst, const int64_t* dst_strides,
                  const int64_t* shape, int ndim) {
  int64_t n = numel(shape, ndim);
  if (n <= 0) return;
  Layout l = make_layout("copy_", shape, ndim, {src_strides, dst_strides});
  GS_LAUNCH(grid(n), kBlockThreads, stream(), copy_kernel<Tin, Tout>)(src, dst, l, n);
  CUDA_CHECK_LAUNCH();
}
template void copy_strided<float, float>(const float*, const int64_t*, float*, const int64_t*, const int64_t*, int);
template void copy_strided<int64_t, int64_t>(const int64_t*, const int64_t*, int64_t*, const int64_t*, const int64_t*,
                                             int);
template void copy_strided<float, int64_t>(const float*, const int64_t*, int64_t*, const int64_t*, const int64_t*, int);
template void copy_strided<int64_t, float>(const int64_t*, const int64_t*, float*, const int64_t*, const int64_t*, int);

void axpy(float* dst, const float* src, float alpha, int64_t n) {
  if (n <= 0) return;
  GS_LAUNCH(grid(n), kBlockThreads, stream(), axpy_kernel)(dst, src, alpha, n);
  CUDA_CHECK_LAUNCH();
}

// fill_f32 / fill_i64 (runtime.h): on `device`, which need not be the current one.
template <class T> void fill(T* dst, int64_t n, T value, int device) {
  if (n <= 0) return;
  const int previous = current_device();
  if (previous != device) set_device(device);
  GS_LAUNCH(grid(n), kBlockThreads, compute_stream(device), fill_kernel<T>)(dst, n, value);
  const cudaError_t fill_kernel_launch = cudaGetLastError();
  if (previous != device) set_device(previous);
  CUDA_CHECK(fill_kernel_launch);
}
void fill_f32(float* dst, int64_t n, float value, int device) { fill<float>(dst, n, value, device); }
void fill_i64(int64_t* dst, int64_t n, int64_t value, int device) { fill<int64_t>(dst, n, value, device); }

}  // namespace gs::kernels::cuda
