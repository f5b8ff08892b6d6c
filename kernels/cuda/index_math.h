// Index arithmetic of the CUDA kernels as __host__ __device__ functions: grid-stride loops,
// strided/broadcast offsets, im2col/col2im, pooling windows, GEMM tiles, batch-norm channels.
// The kernels in kernels/cuda/*.cu call these; tests/kernels/test_cuda_index_math.cpp runs
// them over emulated grids on the CPU against the CPU `_ref` kernels.
#pragma once
#include "kernels/cuda/hd.h"

namespace gs::kernels::cuda {

// ---- launch geometry ----
// Blocks for n elements at `threads` per block, capped (grid-stride loops cover the rest).
GS_HD int64_t blocks_for(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  return b < kMaxBlocks ? b : kMaxBlocks;
}
// First element and stride of a grid-stride loop for thread `tid` of block `bid`.
GS_HD int64_t grid_first(int64_t bid, int64_t block_dim, int64_t tid) { return bid * block_dim + tid; }
GS_HD int64_t grid_step(int64_t grid_dim, int64_t block_dim) { return grid_dim * block_dim; }

// ---- strided / broadcast offsets ----
// Element offset of the row-major linear index i in operand `which` of the layout.
GS_HD int64_t layout_offset(const Layout& l, int which, int64_t i) {
  int64_t off = 0;
  for (int d = l.ndim - 1; d >= 0; --d) {
    int64_t extent = l.shape[d];
    int64_t idx = i % extent;
    i /= extent;
    off += idx * l.strides[which][d];
  }
  return off;
}

// ---- im2col / col2im (a chunk of images, every group) ----
// Geometry of one convolution for one group: x (Cg,H,W) -> col (Cg*R*S, P*Q).
struct ConvGeom {
  int64_t C, H, W, R, S, P, Q;
  int64_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
};
// col[row, col] with row = (c*R + r)*S + s and col = p*Q + q: the input element that the kernel
// tap (r, s) of channel c sees at output (p, q), 0 in the padding. x is one image's group.
GS_HD float im2col_element(const ConvGeom& g, const float* x, int64_t row, int64_t col) {
  int64_t s = row % g.S, r = (row / g.S) % g.R, c = row / (g.S * g.R);
  int64_t q = col % g.Q, p = col / g.Q;
  int64_t h = p * g.stride_h - g.pad_h + r * g.dilation_h;
  int64_t w = q * g.stride_w - g.pad_w + s * g.dilation_w;
  if (h < 0 || h >= g.H || w < 0 || w >= g.W) return 0.0f;
  return x[(c * g.H + h) * g.W + w];
}
// gx[c, h, w] = sum of col[(c*R + r)*S + s, p*Q + q] over the taps that read (h, w), where the
// col rows are ld apart: a gather, so every input element is written by one thread and no
// atomics are needed.
GS_HD float col2im_element(const ConvGeom& g, const float* col, int64_t ld, int64_t c, int64_t h, int64_t w) {
  float acc = 0.0f;
  for (int64_t r = 0; r < g.R; ++r) {
    int64_t hp = h + g.pad_h - r * g.dilation_h;
    if (hp < 0 || hp % g.stride_h != 0) continue;
    int64_t p = hp / g.stride_h;
    if (p >= g.P) continue;
    for (int64_t s = 0; s < g.S; ++s) {
      int64_t wq = w + g.pad_w - s * g.dilation_w;
      if (wq < 0 || wq % g.stride_w != 0) continue;
      int64_t q = wq / g.stride_w;
      if (q >= g.Q) continue;
      acc += col[((c * g.R + r) * g.S + s) * ld + p * g.Q + q];
    }
  }
  return acc;
}
// The col matrix of a chunk of nb images, all groups: (groups*Cg*R*S, nb*P*Q), group-major rows
// and image-major columns, so that group grp's GEMM operand is the block of rows
// [grp*Cg*R*S, (grp+1)*Cg*R*S) with ld nb*P*Q. x is the chunk's first image (groups*Cg, H, W).
// Element i of that matrix:
GS_HD float im2col_chunk_element(const ConvGeom& g, int64_t groups, int64_t nb, const float* x, int64_t i) {
  const int64_t PQ = g.P * g.Q, ld = nb * PQ, CRS = g.C * g.R * g.S;
  const int64_t row = i / ld, col = i % ld;
  const int64_t grp = row / CRS, n = col / PQ;
  return im2col_element(g, x + (n * groups + grp) * g.C * g.H * g.W, row % CRS, col % PQ);
}
// Element i of the chunk's input gradient (nb, groups*Cg, H, W), gathered from its col matrix.
GS_HD float col2im_chunk_element(const ConvGeom& g, int64_t groups, int64_t nb, const float* col, int64_t i) {
  const int64_t HW = g.H * g.W, PQ = g.P * g.Q, ld = nb * PQ, CRS = g.C * g.R * g.S;
  const int64_t channel = (i / HW) % (groups * g.C), n = i / (HW * groups * g.C);
  const int64_t grp = channel / g.C;
  return col2im_element(g, col + grp * CRS * ld + n * PQ, ld, channel % g.C, (i / g.W) % g.H, i % g.W);
}
// A chunk's output (nb, K, PQ) against the GEMMs' channel-major layout (K, nb*PQ): the offset in
// the channel-major buffer of element i of the image-major one ...
GS_HD int64_t channel_major_offset(int64_t i, int64_t K, int64_t nb, int64_t PQ) {
  const int64_t pq = i % PQ, k = (i / PQ) % K, n = i / (PQ * K);
  return k * nb * PQ + n * PQ + pq;
}
// ... and the offset in the image-major buffer of element i of the channel-major one.
GS_HD int64_t image_major_offset(int64_t i, int64_t K, int64_t nb, int64_t PQ) {
  const int64_t pq = i % PQ, n = (i / PQ) % nb, k = i / (PQ * nb);
  return (n * K + k) * PQ + pq;
}
// Images per chunk: as many as fit `limit_bytes` of scratch (the col matrix and the channel-major
// output, `per_image_bytes` for each image), at least 1 and at most N.
GS_HD int64_t conv_chunk_images(int64_t N, int64_t per_image_bytes, int64_t limit_bytes) {
  int64_t nb = per_image_bytes > 0 ? limit_bytes / per_image_bytes : N;
  if (nb > N) nb = N;
  return nb < 1 ? 1 : nb;
}

// ---- pooling windows ----
struct PoolGeom {
  int64_t H, W, P, Q, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
};
// Output rows p whose window covers input row h: [first, last] (empty when first > last).
GS_HD void pool_outputs_covering(int64_t h, int64_t pad, int64_t k, int64_t stride, int64_t P, int64_t& first,
                                 int64_t& last) {
  int64_t hp = h + pad;  // window p covers [p*stride, p*stride + k) in padded coordinates
  int64_t lo = hp - k + 1;
  first = lo <= 0 ? 0 : (lo + stride - 1) / stride;
  last = hp / stride;
  if (last > P - 1) last = P - 1;
}
// Max over the window of output (p, q) in one plane; argmax = h*W + w of the first max (NaN wins:
// the last NaN of the window, as PyTorch's `val > maxval || isnan(val)`).
GS_HD float max_pool_element(const PoolGeom& g, const float* plane, int64_t p, int64_t q, int64_t& argmax) {
  float best = 0.0f;
  argmax = -1;
  for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
    int64_t h = p * g.stride_h - g.pad_h + kh;
    if (h < 0 || h >= g.H) continue;
    for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
      int64_t w = q * g.stride_w - g.pad_w + kw;
      if (w < 0 || w >= g.W) continue;
      float v = plane[h * g.W + w];
      if (argmax < 0 || v > best || v != v) {
        best = v;
        argmax = h * g.W + w;
      }
    }
  }
  return best;
}
// Divisor of the average window at (p, q): the window clipped to the padded input when
// count_include_pad, else to the input itself (PyTorch's rule).
GS_HD int64_t avg_pool_divisor(const PoolGeom& g, int64_t p, int64_t q, bool count_include_pad) {
  int64_t h0 = p * g.stride_h - g.pad_h, w0 = q * g.stride_w - g.pad_w;
  int64_t h1 = h0 + g.kernel_h, w1 = w0 + g.kernel_w;
  if (count_include_pad) {
    int64_t hp1 = h1 < g.H + g.pad_h ? h1 : g.H + g.pad_h, wp1 = w1 < g.W + g.pad_w ? w1 : g.W + g.pad_w;
    return (hp1 - h0) * (wp1 - w0);
  }
  int64_t hs = h0 < 0 ? 0 : h0, ws = w0 < 0 ? 0 : w0;
  int64_t he = h1 < g.H ? h1 : g.H, we = w1 < g.W ? w1 : g.W;
  return (he - hs) * (we - ws);
}
GS_HD float avg_pool_element(const PoolGeom& g, const float* plane, int64_t p, int64_t q, bool count_include_pad) {
  float acc = 0.0f;
  for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
    int64_t h = p * g.stride_h - g.pad_h + kh;
    if (h < 0 || h >= g.H) continue;
    for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
      int64_t w = q * g.stride_w - g.pad_w + kw;
      if (w >= 0 && w < g.W) acc += plane[h * g.W + w];
    }
  }
  return acc / static_cast<float>(avg_pool_divisor(g, p, q, count_include_pad));
}
// Input gradient at (h, w) of one plane, gathered from the outputs whose window covers it.
GS_HD float max_pool_backward_element(const PoolGeom& g, const float* gy, const int64_t* argmax, int64_t h, int64_t w) {
  int64_t p0, p1, q0, q1;
  pool_outputs_covering(h, g.pad_h, g.kernel_h, g.stride_h, g.P, p0, p1);
  pool_outputs_covering(w, g.pad_w, g.kernel_w, g.stride_w, g.Q, q0, q1);
  float acc = 0.0f;
  for (int64_t p = p0; p <= p1; ++p)
    for (int64_t q = q0; q <= q1; ++q)
      if (argmax[p * g.Q + q] == h * g.W + w) acc += gy[p * g.Q + q];
  return acc;
}
GS_HD float avg_pool_backward_element(const PoolGeom& g, const float* gy, int64_t h, int64_t w,
                                      bool count_include_pad) {
  int64_t p0, p1, q0, q1;
  pool_outputs_covering(h, g.pad_h, g.kernel_h, g.stride_h, g.P, p0, p1);
  pool_outputs_covering(w, g.pad_w, g.kernel_w, g.stride_w, g.Q, q0, q1);
  float acc = 0.0f;
  for (int64_t p = p0; p <= p1; ++p)
    for (int64_t q = q0; q <= q1; ++q)
      acc += gy[p * g.Q + q] / static_cast<float>(avg_pool_divisor(g, p, q, count_include_pad));
  return acc;
}
// Adaptive average pooling: output p reads rows [floor(p H / P), ceil((p+1) H / P)).
GS_HD int64_t adaptive_start(int64_t p, int64_t P, int64_t H) { return (p * H) / P; }
GS_HD int64_t adaptive_end(int64_t p, int64_t P, int64_t H) { return ((p + 1) * H + P - 1) / P; }

// ---- GEMM tiles ----
// C (M,N) = alpha op(A) op(B) + beta C, row-major with leading dims; one block per kGemmTile^2
// tile of C, one thread per element of the tile, K walked in kGemmTile steps through shared memory;
// gridDim.z products of a batch at once.
constexpr int kGemmTile = 16;
struct GemmArgs {
  bool trans_a, trans_b;
  int64_t M, N, K;
  float alpha;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float beta;
  float* C;
  int64_t ldc;
  // A batch of such products, one per blockIdx.z: entry z's A, B and C start z * a_step,
  // z * b_step, z * c_step elements on (a step may be 0: the same operand for every entry).
  int64_t a_step = 0, b_step = 0, c_step = 0;
};
// The arguments of batch entry z.
GS_HD GemmArgs gemm_batch_entry(GemmArgs a, int64_t z) {
  a.A += z * a.a_step;
  a.B += z * a.b_step;
  a.C += z * a.c_step;
  return a;
}
// Rows first_row .. first_row + rows - 1 of op(A) and C: the same product on a band of rows
// (launches whose row tiles would pass gridDim.y's 65535 go band by band).
GS_HD GemmArgs gemm_row_band(GemmArgs a, int64_t first_row, int64_t rows) {
  a.A += a.trans_a ? first_row : first_row * a.lda;
  a.C += first_row * a.ldc;
  a.M = rows;
  return a;
}
// op(A)[row, k], 0 outside the matrix (tiles hang over the edges).
GS_HD float gemm_a_at(const GemmArgs& a, int64_t row, int64_t k) {
  if (row >= a.M || k >= a.K) return 0.0f;
  return a.trans_a ? a.A[k * a.lda + row] : a.A[row * a.lda + k];
}
GS_HD float gemm_b_at(const GemmArgs& a, int64_t k, int64_t col) {
  if (k >= a.K || col >= a.N) return 0.0f;
  return a.trans_b ? a.B[col * a.ldb + k] : a.B[k * a.ldb + col];
}
// Phase 1 of K-step t for thread (ty, tx) of block (by, bx): load one element of each tile.
GS_HD void gemm_load_tiles(const GemmArgs& a, int64_t by, int64_t bx, int64_t t, int ty, int tx,
                           float (*tile_a)[kGemmTile], float (*tile_b)[kGemmTile]) {
  tile_a[ty][tx] = gemm_a_at(a, by * kGemmTile + ty, t * kGemmTile + tx);
  tile_b[ty][tx] = gemm_b_at(a, t * kGemmTile + ty, bx * kGemmTile + tx);
}
// Phase 2: the thread's dot product over the tiles.
GS_HD float gemm_tile_dot(const float (*tile_a)[kGemmTile], const float (*tile_b)[kGemmTile], int ty, int tx,
                          float acc) {
  for (int j = 0; j < kGemmTile; ++j) acc += tile_a[ty][j] * tile_b[j][tx];
  return acc;
}
// After the last K-step: C = alpha acc + beta C (C is not read when beta == 0: it may hold NaN).
GS_HD void gemm_store(const GemmArgs& a, int64_t by, int64_t bx, int ty, int tx, float acc) {
  int64_t row = by * kGemmTile + ty, col = bx * kGemmTile + tx;
  if (row >= a.M || col >= a.N) return;
  float* c = a.C + row * a.ldc + col;
  *c = a.beta == 0.0f ? a.alpha * acc : a.alpha * acc + a.beta * *c;
}
GS_HD int64_t gemm_k_steps(int64_t K) { return (K + kGemmTile - 1) / kGemmTile; }

// ---- per-channel layouts (batch norm over (N, C, L)) ----
GS_HD int64_t channel_of(int64_t i, int64_t C, int64_t L) { return (i / L) % C; }
// The j-th of the N*L elements of channel c.
GS_HD int64_t channel_element(int64_t j, int64_t c, int64_t C, int64_t L) { return ((j / L) * C + c) * L + j % L; }

}  // namespace gs::kernels::cuda
