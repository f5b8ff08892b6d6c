// The "direct" conv2d variant: no column matrix. Inputs are copied once into zero-padded
// planes; each output row is then a register tile of 16 output channels x one 64-byte vector
// of columns, accumulated with fused multiply-adds (GCC vector extensions: zmm with AVX-512,
// ymm pairs with AVX2). OpenMP splits samples x channel blocks x rows. Backward-data is the
// same core on the (stride-dilated) output gradient with flipped, transposed weights;
// backward-weight keeps 3 channels x up to 9 taps of vector accumulators per tile.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/conv2d_variants.h"
#include "kernels/cpu/simd.h"

namespace gs::kernels {

namespace {

template <class T> using Simd = simd::Simd<T>;
template <class V, class T> inline V load_vec(const T* p) { return simd::load(p); }
template <class V, class T, int L> inline V load_strided(const T* p, int64_t stride) {
  return simd::load_strided(p, stride);
}

constexpr int kBlockK = 16;     // output channels of one forward register tile
constexpr int kGradBlockK = 3;  // output channels of one weight-gradient tile
constexpr int kGradTaps = 9;    // kernel taps of one weight-gradient tile

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Grows-only scratch owned by the calling thread (one per slot), shared with its OpenMP workers.
template <class T, int Slot> T* scratch(size_t count) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < count) buffer.resize(count);
  return buffer.data();
}

// Below this many multiply-adds a convolution runs on the calling thread only.
inline bool worth_threads(int64_t macs) { return macs >= (int64_t(1) << 20); }

// out (Kout, P, Q) = sum over c < Cin and taps (r, s) of wp * plane[c][p sh + r dh][q sw + s dw],
// plane a zero-padded (Cin, Hb, Wb) buffer wide enough for whole vectors of q.
struct CoreGeom {
  int64_t Cin, Kout, R, S, P, Q, Hb, Wb, sh, sw, dh, dw;
};

// plane (Hb, Wb) [i][j] = src[(i - off_h) / up_h][(j - off_w) / up_w] where the division is exact
// and in range (src is (src_h, src_w)), else 0: padding for forward, padding plus zero insertion
// (a strided conv's output gradient) for backward-data.
template <class T>
void pack_plane(const T* src, int64_t src_h, int64_t src_w, int64_t off_h, int64_t off_w, int64_t up_h, int64_t up_w,
                T* plane, int64_t Hb, int64_t Wb) {
  for (int64_t i = 0; i < Hb; ++i) {
    T* out = plane + i * Wb;
    const int64_t a = i - off_h;
    if (a < 0 || a % up_h != 0 || a / up_h >= src_h) {
      std::fill(out, out + Wb, T(0));
      continue;
    }
    const T* in = src + (a / up_h) * src_w;
    if (up_w == 1) {
      const int64_t j_lo = std::clamp<int64_t>(off_w, 0, Wb), j_hi = std::clamp<int64_t>(off_w + src_w, j_lo, Wb);
      std::fill(out, out + j_lo, T(0));
      std::copy(in + (j_lo - off_w), in + (j_hi - off_w), out + j_lo);
      std::fill(out + j_hi, out + Wb, T(0));
    } else {
      for (int64_t j = 0; j < Wb; ++j) {
        const int64_t b = j - off_w;
        out[j] = (b >= 0 && b % up_w == 0 && b / up_w < src_w) ? in[b / up_w] : T(0);
      }
    }
  }
}

// wp (ceil(Kout/16), Cin, R, S, 16) from weight(k, c, r, s); channels past Kout are 0
template <class T, class Weight>
void pack_weights(int64_t Kout, int64_t Cin, int64_t R, int64_t S, Weight weight, T* wp) {
  const int64_t blocks = ceil_div(Kout, kBlockK), taps = Cin * R * S;
  for (int64_t kb = 0; kb < blocks; ++kb)
    for (int64_t c = 0; c < Cin; ++c)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t t = 0; t < S; ++t) {
          T* dst = wp + (kb * taps + (c * R + r) * S + t) * kBlockK;
          for (int64_t kk = 0; kk < kBlockK; ++kk) {
            const int64_t k = kb * kBlockK + kk;
            dst[kk] = k < Kout ? weight(k, c, r, t) : T(0);
          }
        }
}

// One output row p of one block of kcount (<= 16) channels: out (kcount, P, Q) at the block.
template <class T, bool UnitStride>
void core_row(const CoreGeom& g, const T* plane, const T* wpb, const T* bias, T* out, int64_t kcount, int64_t p) {
  using V = typename Simd<T>::V;
  constexpr int L = Simd<T>::kLanes;
  const int64_t RS = g.R * g.S;
  for (int64_t q0 = 0; q0 < g.Q; q0 += L) {
    V acc[kBlockK];
    for (int kk = 0; kk < kBlockK; ++kk) acc[kk] = V{};
    for (int64_t c = 0; c < g.Cin; ++c)
      for (int64_t r = 0; r < g.R; ++r) {
        const T* row = plane + (c * g.Hb + p * g.sh + r * g.dh) * g.Wb + q0 * g.sw;
        const T* wr = wpb + (c * RS + r * g.S) * kBlockK;
        for (int64_t t = 0; t < g.S; ++t) {
          const V xv = UnitStride ? load_vec<V>(row + t * g.dw) : load_strided<V, T, L>(row + t * g.dw, g.sw);
          const T* wt = wr + t * kBlockK;
          for (int kk = 0; kk < kBlockK; ++kk) acc[kk] += xv * wt[kk];
        }
      }
    const int64_t n = std::min<int64_t>(L, g.Q - q0);
    for (int64_t kk = 0; kk < kcount; ++kk) {
      T* o = out + (kk * g.P + p) * g.Q + q0;
      const T b = bias ? bias[kk] : T(0);
      for (int64_t l = 0; l < n; ++l) o[l] = acc[kk][l] + b;
    }
  }
}

// Runs the core over N samples x groups: planes (N, groups*Cin, Hb, Wb), wp per group
// (groups, ceil(Kout/16), Cin, R, S, 16), out (N, groups*Kout, P, Q). Called inside a parallel region.
template <class T>
void core_all(const CoreGeom& g, int64_t N, int64_t groups, const T* planes, const T* wp, const T* bias, T* out) {
  const int64_t blocks = ceil_div(g.Kout, kBlockK), plane_size = g.Hb * g.Wb;
  const int64_t wp_group = blocks * g.Cin * g.R * g.S * kBlockK;
  const int64_t units = N * groups * blocks * g.P;
#pragma omp for schedule(static)
  for (int64_t u = 0; u < units; ++u) {
    const int64_t p = u % g.P, kb = (u / g.P) % blocks, ng = u / (g.P * blocks);
    const int64_t grp = ng % groups, n = ng / groups;
    const int64_t k0 = kb * kBlockK, kcount = std::min<int64_t>(kBlockK, g.Kout - k0);
    const T* plane = planes + (n * groups + grp) * g.Cin * plane_size;
    const T* wpb = wp + grp * wp_group + kb * g.Cin * g.R * g.S * kBlockK;
    const T* b = bias ? bias + grp * g.Kout + k0 : nullptr;
    T* o = out + ((n * groups + grp) * g.Kout + k0) * g.P * g.Q;
    if (g.sw == 1)
      core_row<T, true>(g, plane, wpb, b, o, kcount, p);
    else
      core_row<T, false>(g, plane, wpb, b, o, kcount, p);
  }
}

// Rows and columns of the padded input planes that forward and backward-weight read.
template <class T> CoreGeom forward_geom(const Conv2dShape& s) {
  constexpr int L = Simd<T>::kLanes;
  CoreGeom g;
  g.Cin = s.C / s.groups, g.Kout = s.K / s.groups, g.R = s.R, g.S = s.S, g.P = s.P, g.Q = s.Q;
  g.sh = s.stride_h, g.sw = s.stride_w, g.dh = s.dilation_h, g.dw = s.dilation_w;
  g.Hb = (s.P - 1) * s.stride_h + (s.R - 1) * s.dilation_h + 1;
  g.Wb = (ceil_div(s.Q, L) * L - 1) * s.stride_w + (s.S - 1) * s.dilation_w + 1;
  return g;
}

// planes (N*C, Hb, Wb) = zero-padded x (N, C, H, W); inside a parallel region
template <class T> void pack_input(const Conv2dShape& s, const CoreGeom& g, const T* x, T* planes) {
#pragma omp for schedule(static)
  for (int64_t i = 0; i < s.N * s.C; ++i)
    pack_plane(x + i * s.H * s.W, s.H, s.W, s.pad_h, s.pad_w, 1, 1, planes + i * g.Hb * g.Wb, g.Hb, g.Wb);
}

}  // namespace

template <class T> void conv2d_direct(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  if (s.N == 0 || s.K == 0 || s.P <= 0 || s.Q <= 0) return;
  const CoreGeom g = forward_geom<T>(s);
  const int64_t blocks = ceil_div(g.Kout, kBlockK), wp_group = blocks * g.Cin * s.R * s.S * kBlockK;
  T* wp = scratch<T, 0>(size_t(s.groups * wp_group));
  T* planes = scratch<T, 1>(size_t(s.N * s.C * g.Hb * g.Wb));
  const int64_t crs = g.Cin * s.R * s.S;
  for (int64_t grp = 0; grp < s.groups; ++grp) {
    const T* wg = w + grp * g.Kout * crs;
    pack_weights(
        g.Kout, g.Cin, s.R, s.S,
        [&](int64_t k, int64_t c, int64_t r, int64_t t) { return wg[((k * g.Cin + c) * s.R + r) * s.S + t]; },
        wp + grp * wp_group);
  }
#pragma omp parallel if (worth_threads(s.N * s.K * crs * s.P * s.Q))
  {
    pack_input(s, g, x, planes);
    core_all(g, s.N, s.groups, planes, wp, bias, y);
  }
}

// gx = the core on gy dilated by the stride and padded by dilation*(R-1) - pad, with weights
// w'[c][k][r][s] = w[k][c][R-1-r][S-1-s] (per group), stride 1.
template <class T> void conv2d_backward_data_direct(const Conv2dShape& s, const T* gy, const T* w, T* gx) {
  if (s.N == 0 || s.C == 0 || s.H == 0 || s.W == 0) return;
  constexpr int L = Simd<T>::kLanes;
  const int64_t Cg = s.C / s.groups, Kg = s.K / s.groups;
  CoreGeom g;
  g.Cin = Kg, g.Kout = Cg, g.R = s.R, g.S = s.S, g.P = s.H, g.Q = s.W;
  g.sh = 1, g.sw = 1, g.dh = s.dilation_h, g.dw = s.dilation_w;
  g.Hb = (s.H - 1) + (s.R - 1) * s.dilation_h + 1;
  g.Wb = (ceil_div(s.W, L) * L - 1) + (s.S - 1) * s.dilation_w + 1;
  const int64_t off_h = (s.R - 1) * s.dilation_h - s.pad_h, off_w = (s.S - 1) * s.dilation_w - s.pad_w;
  const int64_t blocks = ceil_div(Cg, kBlockK), wp_group = blocks * Kg * s.R * s.S * kBlockK;
  T* wp = scratch<T, 0>(size_t(s.groups * wp_group));
  T* planes = scratch<T, 1>(size_t(s.N * s.K * g.Hb * g.Wb));
  for (int64_t grp = 0; grp < s.groups; ++grp) {
    const T* wg = w + grp * Kg * Cg * s.R * s.S;
    pack_weights(
        Cg, Kg, s.R, s.S,
        [&](int64_t c, int64_t k, int64_t r, int64_t t) {
          return wg[((k * Cg + c) * s.R + (s.R - 1 - r)) * s.S + (s.S - 1 - t)];
        },
        wp + grp * wp_group);
  }
  const int64_t macs = s.N * s.K * Cg * s.R * s.S * s.H * s.W;
#pragma omp parallel if (worth_threads(macs))
  {
#pragma omp for schedule(static)
    for (int64_t i = 0; i < s.N * s.K; ++i)
      pack_plane(gy + i * s.P * s.Q, s.P, s.Q, off_h, off_w, s.stride_h, s.stride_w, planes + i * g.Hb * g.Wb, g.Hb,
                 g.Wb);
    core_all(g, s.N, s.groups, planes, wp, static_cast<const T*>(nullptr), gx);
  }
}

namespace {

// gw for kcount (<= 3) channels k0.. and NT taps of one input channel, summed over all samples,
// rows and column vectors: acc[k][tap] += gy row vector * x row vector at the tap's offset.
// gyp (N, Kp, P, Qp): gy with zero columns up to Qp and zero channels up to Kp (per group).
template <class T, int NT>
void wgrad_tile(const Conv2dShape& s, const CoreGeom& g, const T* planes_c, int64_t plane_stride_n, const T* gyp,
                int64_t Kp, int64_t Qp, int64_t k0, int64_t kcount, const int64_t* tap_offsets, T* const* gw_out) {
  using V = typename Simd<T>::V;
  constexpr int L = Simd<T>::kLanes;
  V acc[kGradBlockK][NT];
  for (int kk = 0; kk < kGradBlockK; ++kk)
    for (int t = 0; t < NT; ++t) acc[kk][t] = V{};
  for (int64_t n = 0; n < s.N; ++n) {
    const T* plane = planes_c + n * plane_stride_n;
    const T* gyn = gyp + (n * Kp + k0) * g.P * Qp;
    for (int64_t p = 0; p < g.P; ++p)
      for (int64_t q0 = 0; q0 < g.Q; q0 += L) {
        V gv[kGradBlockK];
        for (int kk = 0; kk < kGradBlockK; ++kk) gv[kk] = load_vec<V>(gyn + (kk * g.P + p) * Qp + q0);
        const T* row = plane + p * g.sh * g.Wb + q0 * g.sw;
        for (int t = 0; t < NT; ++t) {
          const V xv =
              g.sw == 1 ? load_vec<V>(row + tap_offsets[t]) : load_strided<V, T, L>(row + tap_offsets[t], g.sw);
          for (int kk = 0; kk < kGradBlockK; ++kk) acc[kk][t] += gv[kk] * xv;
        }
      }
  }
  for (int64_t kk = 0; kk < kcount; ++kk)
    for (int t = 0; t < NT; ++t) {
      T sum = 0;
      for (int l = 0; l < L; ++l) sum += acc[kk][t][l];
      gw_out[kk * kGradTaps + t][0] = sum;
    }
}

template <class T, int NT = kGradTaps>
void wgrad_dispatch(int nt, const Conv2dShape& s, const CoreGeom& g, const T* planes_c, int64_t plane_stride_n,
                    const T* gyp, int64_t Kp, int64_t Qp, int64_t k0, int64_t kcount, const int64_t* offs,
                    T* const* out) {
  if constexpr (NT >= 1) {
    if (nt == NT) return wgrad_tile<T, NT>(s, g, planes_c, plane_stride_n, gyp, Kp, Qp, k0, kcount, offs, out);
    wgrad_dispatch<T, NT - 1>(nt, s, g, planes_c, plane_stride_n, gyp, Kp, Qp, k0, kcount, offs, out);
  }
}

}  // namespace

template <class T> void conv2d_backward_weight_direct(const Conv2dShape& s, const T* x, const T* gy, T* gw, T* gbias) {
  constexpr int L = Simd<T>::kLanes;
  const int64_t PQ = s.P * s.Q;
  if (gw) {
    const CoreGeom g = forward_geom<T>(s);
    const int64_t Cg = g.Cin, Kg = g.Kout, RS = s.R * s.S;
    const int64_t Qp = ceil_div(s.Q, L) * L, Kgp = ceil_div(Kg, kGradBlockK) * kGradBlockK, Kp = s.groups * Kgp;
    T* planes = scratch<T, 1>(size_t(s.N * s.C * g.Hb * g.Wb));
    T* gyp = scratch<T, 2>(size_t(s.N * Kp * s.P * Qp));
    const int64_t kblocks = ceil_div(Kg, kGradBlockK), tap_chunks = ceil_div(RS, kGradTaps);
    const int64_t units = s.groups * kblocks * Cg * tap_chunks;
#pragma omp parallel if (worth_threads(s.N * s.K * Cg * RS * PQ))
    {
      pack_input(s, g, x, planes);
#pragma omp for schedule(static)
      for (int64_t i = 0; i < s.N * Kp; ++i) {
        const int64_t n = i / Kp, kp = i % Kp, grp = kp / Kgp, k = kp % Kgp;
        T* dst = gyp + i * s.P * Qp;
        if (k >= Kg) {
          std::fill(dst, dst + s.P * Qp, T(0));
          continue;
        }
        const T* src = gy + (n * s.K + grp * Kg + k) * PQ;
        for (int64_t p = 0; p < s.P; ++p) {
          std::copy(src + p * s.Q, src + (p + 1) * s.Q, dst + p * Qp);
          std::fill(dst + p * Qp + s.Q, dst + (p + 1) * Qp, T(0));
        }
      }
#pragma omp for schedule(dynamic, 1)
      for (int64_t u = 0; u < units; ++u) {
        const int64_t chunk = u % tap_chunks, c = (u / tap_chunks) % Cg, kb = (u / (tap_chunks * Cg)) % kblocks;
        const int64_t grp = u / (tap_chunks * Cg * kblocks);
        const int64_t k0 = kb * kGradBlockK, kcount = std::min<int64_t>(kGradBlockK, Kg - k0);
        const int64_t tap0 = chunk * kGradTaps, nt = std::min<int64_t>(kGradTaps, RS - tap0);
        int64_t offs[kGradTaps];
        T* out[kGradBlockK * kGradTaps];
        for (int64_t t = 0; t < nt; ++t) {
          const int64_t r = (tap0 + t) / s.S, q = (tap0 + t) % s.S;
          offs[t] = r * s.dilation_h * g.Wb + q * s.dilation_w;
          for (int64_t kk = 0; kk < kcount; ++kk)
            out[kk * kGradTaps + t] = gw + ((grp * Kg + k0 + kk) * Cg + c) * RS + tap0 + t;
        }
        const T* planes_c = planes + (grp * Cg + c) * g.Hb * g.Wb;
        wgrad_dispatch<T>(int(nt), s, g, planes_c, s.C * g.Hb * g.Wb, gyp + grp * Kgp * s.P * Qp, Kp, Qp, k0, kcount,
                          offs, out);
      }
    }
  }
  if (gbias) {
#pragma omp parallel for schedule(static) if (s.K * s.N * PQ > (int64_t(1) << 16))
    for (int64_t k = 0; k < s.K; ++k) {
      double acc = 0;
      for (int64_t n = 0; n < s.N; ++n) {
        const T* g = gy + (n * s.K + k) * PQ;
        T row = 0;
        for (int64_t i = 0; i < PQ; ++i) row += g[i];
        acc += row;
      }
      gbias[k] = T(acc);
    }
  }
}

template void conv2d_direct<float>(const Conv2dShape&, const float*, const float*, const float*, float*);
template void conv2d_direct<double>(const Conv2dShape&, const double*, const double*, const double*, double*);
template void conv2d_backward_data_direct<float>(const Conv2dShape&, const float*, const float*, float*);
template void conv2d_backward_data_direct<double>(const Conv2dShape&, const double*, const double*, double*);
template void conv2d_backward_weight_direct<float>(const Conv2dShape&, const float*, const float*, float*, float*);
template void conv2d_backward_weight_direct<double>(const Conv2dShape&, const double*, const double*, double*, double*);

}  // namespace gs::kernels
