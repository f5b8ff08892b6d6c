// GEMM on CUDA, row-major as kernels/cpu/gemm.h: "tiled" (our shared-memory tiled kernel, a
// block per 16x16 tile of C, K walked through shared memory; the phases are the __host__
// __device__ functions of index_math.h) and "cublas" (cuBLAS sgemm, the bar and the default);
// batches of products through the selected one (cuBLAS: one strided-batched call).
#include <algorithm>
#include <climits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_kernels.cuh"
#include "kernels/cuda/index_math.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/runtime.h"

namespace gs::kernels::cuda {

namespace {
cudaStream_t stream() { return compute_stream(current_device()); }

// `batch` products (args' steps apart) in launches of at most 65535 entries (gridDim.z's limit)
// and 65535 row tiles (gridDim.y's); the column tiles go on gridDim.x (up to 2^31 - 1).
void launch_gemm_tiled(GemmArgs args, int64_t batch) {
  if (args.M <= 0 || args.N <= 0 || batch <= 0) return;
  constexpr int64_t kMaxGridY = 65535, kMaxGridZ = 65535, kBandRows = kMaxGridY * kGemmTile;
  const int64_t grid_x = (args.N + kGemmTile - 1) / kGemmTile;
  for (int64_t first_row = 0; first_row < args.M; first_row += kBandRows) {
    const GemmArgs band = gemm_row_band(args, first_row, std::min(kBandRows, args.M - first_row));
    const int64_t grid_y = (band.M + kGemmTile - 1) / kGemmTile;
    for (int64_t first = 0; first < batch; first += kMaxGridZ) {
      const int64_t count = std::min(kMaxGridZ, batch - first);
      dim3 grid(static_cast<unsigned>(grid_x), static_cast<unsigned>(grid_y), static_cast<unsigned>(count));
      dim3 block(kGemmTile, kGemmTile);
      GS_LAUNCH(grid, block, stream(), gemm_tiled_kernel)(gemm_batch_entry(band, first));
      CUDA_CHECK_LAUNCH();
    }
  }
}

void gemm_tiled(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  launch_gemm_tiled(GemmArgs{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc}, 1);
}

// cuBLAS takes int sizes, and every leading dimension >= 1; ours is 0 only for an operand with
// no columns (K = 0: C = beta C, the operand is never read), so 1 says the same.
int cublas_int(int64_t v) {
  if (v > INT_MAX) throw std::invalid_argument("matmul (cublas): size " + std::to_string(v) + " exceeds int");
  return static_cast<int>(v);
}
int cublas_ld(int64_t v) { return cublas_int(v > 0 ? v : 1); }

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
void gemm_cublas(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  CUBLAS_CHECK(cublasSgemm(cublas_handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                           cublas_int(N), cublas_int(M), cublas_int(K), &alpha, B, cublas_ld(ldb), A, cublas_ld(lda),
                           &beta, C, cublas_ld(ldc)));
}

// The common step of offsets that are one fixed step apart (0 for a broadcast operand), or -1.
int64_t uniform_step(const int64_t* offsets, int64_t batch) {
  const int64_t step = batch > 1 ? offsets[1] - offsets[0] : 0;
  if (step < 0) return -1;
  for (int64_t i = 2; i < batch; ++i)
    if (offsets[i] - offsets[i - 1] != step) return -1;
  return step;
}
}  // namespace

const VariantTable<GemmFn<float>>& gemm_table() {
  static const VariantTable<GemmFn<float>> table = [] {
    VariantTable<GemmFn<float>> t("cuda.matmul");
    t.add("cublas", &gemm_cublas).add("tiled", &gemm_tiled);
    return t;
  }();
  return table;
}

// Offsets one fixed step apart: one cublasSgemmStridedBatched call (cublas) or one launch of
// the tiled kernel over gridDim.z (tiled); otherwise one product after another.
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
                  const int64_t* a_offsets, int64_t lda, const float* B, const int64_t* b_offsets, int64_t ldb,
                  float beta, float* C, int64_t ldc, int64_t c_step, int64_t batch) {
  const GemmFn<float> fn = gemm_table().get();
  const float one = 1.0f;
  const int64_t a_step = uniform_step(a_offsets, batch), b_step = uniform_step(b_offsets, batch);
  if (batch > 1 && M > 0 && N > 0 && a_step >= 0 && b_step >= 0) {
    if (fn == &gemm_cublas) {
      CUBLAS_CHECK(cublasSgemmStridedBatched(
          cublas_handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, cublas_int(N),
          cublas_int(M), cublas_int(K), &one, B + b_offsets[0], cublas_ld(ldb), b_step, A + a_offsets[0],
          cublas_ld(lda), a_step, &beta, C, cublas_ld(ldc), c_step, cublas_int(batch)));
      return;
    }
    if (fn == &gemm_tiled) {
      GemmArgs args{trans_a, trans_b, M, N, K, one, A + a_offsets[0], lda, B + b_offsets[0], ldb, beta, C, ldc};
      args.a_step = a_step, args.b_step = b_step, args.c_step = c_step;
      return launch_gemm_tiled(args, batch);
    }
  }
  for (int64_t i = 0; i < batch; ++i)
    fn(trans_a, trans_b, M, N, K, one, A + a_offsets[i], lda, B + b_offsets[i], ldb, beta, C + i * c_step, ldc);
}

}  // namespace gs::kernels::cuda
