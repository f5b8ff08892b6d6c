// Tensor statistics and the fixed-edge histogram (see stats.h for the bucket layout).
// f32 buckets come straight from the exponent bits; f64 uses frexp. Non-finite values are
// counted and kept out of every sum, so one NaN never hides the rest of the statistics.
#include "inspect/stats.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "tensor/error.h"
#include "tensor/raw_ops.h"

namespace gs::inspect {

const std::array<double, kHistBuckets>& histogram_upper_edges() {
  static const std::array<double, kHistBuckets> edges = [] {
    std::array<double, kHistBuckets> e{};
    e[0] = -std::ldexp(1.0, kHistMaxExp);
    for (int k = 0; k < kHistSideBuckets; ++k) {
      e[kZeroBucket - 1 - k] = -std::ldexp(1.0, k + kHistMinExp);
      e[kZeroBucket + 1 + k] = std::ldexp(1.0, k + kHistMinExp + 1);
    }
    e[kZeroBucket] = std::ldexp(1.0, kHistMinExp);
    e[kHistBuckets - 1] = std::numeric_limits<double>::infinity();
    return e;
  }();
  return edges;
}

int histogram_bucket(double x) {
  double a = std::abs(x);
  if (a < std::ldexp(1.0, kHistMinExp)) return kZeroBucket;
  int ex = 0;
  std::frexp(a, &ex);  // a = m * 2^ex, m in [0.5, 1): floor(log2 a) = ex - 1
  int k = ex - 1 - kHistMinExp;
  if (k >= kHistSideBuckets) return x < 0 ? 0 : kHistBuckets - 1;
  return x < 0 ? kZeroBucket - 1 - k : kZeroBucket + 1 + k;
}

namespace {

// Bucket of a finite float from its bits, without branches: with k the octave clamped to
// [-1, 40] (-1: below 2^-24, 40: at or above 2^16), the bucket is 41 + (k + 1) for x >= 0 and
// 41 - (k + 1) for x < 0 (exponent field 103 is 2^-24).
inline int float_bucket(uint32_t bits) {
  int k = std::clamp(int((bits >> 23) & 0xff) - (127 + kHistMinExp), -1, kHistSideBuckets);
  int sign = 1 - 2 * int(bits >> 31);
  return kZeroBucket + sign * (k + 1);
}

template <class T, class Bits>
bool finite_bits(const T* p, int64_t n, Bits exponent_mask) {
  // All exponent bits set means NaN or Inf; an OR-reduction of the test vectorises.
  Bits any = 0;
  for (int64_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, p + i, sizeof(Bits));
    any |= Bits((b & exponent_mask) == exponent_mask);
  }
  return any == 0;
}

bool all_finite_f32(const float* p, int64_t n) { return finite_bits(p, n, uint32_t(0x7f800000u)); }

constexpr int64_t kChunkValues = int64_t(1) << 16;  // values per chunk (one OpenMP task)

// Partial sums of one chunk; chunks are combined in order, so the result does not depend on
// the number of threads.
struct Partial {
  double sum = 0, sum_squares = 0, lo = std::numeric_limits<double>::infinity(), hi = -lo;
  int64_t zeros = 0, nan = 0, pos_inf = 0, neg_inf = 0;
  std::array<int64_t, kHistBuckets> histogram{};
};

// Any element: NaN/Inf are counted and skipped.
template <class T>
void accumulate_any(const T* p, int64_t n, bool histogram, Partial& s) {
  for (int64_t i = 0; i < n; ++i) {
    T v = p[i];
    if (!std::isfinite(v)) {
      if (std::isnan(v)) ++s.nan;
      else if (v > 0) ++s.pos_inf;
      else ++s.neg_inf;
      continue;
    }
    double d = double(v);
    s.sum += d;
    s.sum_squares += d * d;
    s.lo = d < s.lo ? d : s.lo;
    s.hi = d > s.hi ? d : s.hi;
    s.zeros += v == T(0);
    if (histogram) {
      if constexpr (std::is_same_v<T, float>) {
        ++s.histogram[float_bucket(std::bit_cast<uint32_t>(v))];
      } else {
        ++s.histogram[histogram_bucket(d)];
      }
    }
  }
}

// f32 chunk in one read: blocks of 256 in sixteen float lanes (the compiler vectorises them; a
// lane sums only 16 values per block, then blocks add up in double), bucket indices computed for
// the block first, two values at a time, and counted as pairs (below). A NaN or Inf makes the block's
// float sums non-finite, so the block is then checked bit by bit and, if it really holds one,
// redone by accumulate_any; finite blocks (nearly all) are read once, with no separate check.
void accumulate_f32(const float* p, int64_t n, bool histogram, Partial& s) {
  constexpr int kLanes = 16, kBlock = 256;
  // Pair histograms: one increment counts two values, at index bucket(a) * kHistBuckets + bucket(b);
  // four tables take turns (a hot cell, as zeros after a ReLU, waits less on its previous increment);
  // uint16 is enough, a chunk gives a table at most 2^13 pairs.
  // The tables are per thread and all zero between calls: since the bucket grows with the value,
  // every pair of this chunk lies in the square [bucket(min), bucket(max)]^2, and only that square
  // is summed into the histogram and cleared again (a few hundred of the 6,889 cells, typically).
  constexpr int kPairs = kHistBuckets * kHistBuckets;
  constexpr int kTables = 4;
  static_assert(kChunkValues / 2 / kTables < 65536);
  alignas(64) static thread_local uint16_t pair_counts[kTables][kPairs];
  float lo[kLanes], hi[kLanes];
  for (int k = 0; k < kLanes; ++k) lo[k] = INFINITY, hi[k] = -INFINITY;
  int64_t zeros = 0, i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    const float* q = p + i;
    float sum[kLanes] = {}, sum_squares[kLanes] = {}, block_lo[kLanes], block_hi[kLanes];
    int zero_lane[kLanes] = {};
    for (int k = 0; k < kLanes; ++k) block_lo[k] = INFINITY, block_hi[k] = -INFINITY;
    for (int j = 0; j < kBlock; j += kLanes) {
      for (int k = 0; k < kLanes; ++k) {
        float v = q[j + k];
        sum[k] += v;
        sum_squares[k] += v * v;
        block_lo[k] = std::min(block_lo[k], v);
        block_hi[k] = std::max(block_hi[k], v);
        zero_lane[k] += v == 0.0f;
      }
    }
    bool overflow = false;
    for (int k = 0; k < kLanes; ++k) overflow |= !std::isfinite(sum_squares[k]) || !std::isfinite(sum[k]);
    if (overflow && !all_finite_f32(q, kBlock)) {
      accumulate_any(q, kBlock, histogram, s);  // counts the NaN/Inf, sums the rest in double
      continue;
    }
    if (overflow) {  // |x| above ~1e19: float squares overflow, so this block is summed in double
      for (int j = 0; j < kBlock; ++j) {
        double d = q[j];
        s.sum += d;
        s.sum_squares += d * d;
      }
    } else {
      for (int k = 0; k < kLanes; ++k) {
        s.sum += sum[k];
        s.sum_squares += sum_squares[k];
      }
    }
    for (int k = 0; k < kLanes; ++k) {
      zeros += zero_lane[k];
      lo[k] = std::min(lo[k], block_lo[k]);
      hi[k] = std::max(hi[k], block_hi[k]);
    }
    if (histogram) {
      uint16_t pair[kBlock / 2];
      for (int j = 0; j < kBlock / 2; ++j) {
        pair[j] = uint16_t(float_bucket(std::bit_cast<uint32_t>(q[2 * j])) * kHistBuckets +
                           float_bucket(std::bit_cast<uint32_t>(q[2 * j + 1])));
      }
      for (int j = 0; j < kBlock / 2; j += kTables) {
        for (int t = 0; t < kTables; ++t) ++pair_counts[t][pair[j + t]];
      }
    }
  }
  float chunk_lo = INFINITY, chunk_hi = -INFINITY;  // over the blocks counted in the pair tables
  for (int k = 0; k < kLanes; ++k) {
    chunk_lo = std::min(chunk_lo, lo[k]);
    chunk_hi = std::max(chunk_hi, hi[k]);
  }
  if (histogram && chunk_lo <= chunk_hi) {  // marginals: the first value of a pair is the row, the second the column
    const int first = float_bucket(std::bit_cast<uint32_t>(chunk_lo));
    const int last = float_bucket(std::bit_cast<uint32_t>(chunk_hi));
    std::array<int64_t, kHistBuckets> column{};
    for (int a = first; a <= last; ++a) {
      int64_t row_sum = 0;
      for (int b = first; b <= last; ++b) {
        int64_t c = 0;
        for (int t = 0; t < kTables; ++t) {
          c += pair_counts[t][a * kHistBuckets + b];
          pair_counts[t][a * kHistBuckets + b] = 0;
        }
        row_sum += c;
        column[b] += c;
      }
      s.histogram[a] += row_sum;
    }
    for (int b = first; b <= last; ++b) s.histogram[b] += column[b];
  }
  s.lo = std::min(s.lo, double(chunk_lo));
  s.hi = std::max(s.hi, double(chunk_hi));
  s.zeros += zeros;
  accumulate_any(p + i, n - i, histogram, s);  // the tail
}

template <class T>
void accumulate(const T* p, int64_t n, bool histogram, TensorStats& s) {
  constexpr int64_t kChunk = kChunkValues;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<Partial> parts(static_cast<size_t>(chunks));
#ifdef GS_OPENMP
#pragma omp parallel for schedule(static) if (chunks > 1)
#endif
  for (int64_t c = 0; c < chunks; ++c) {
    const T* begin = p + c * kChunk;
    int64_t len = std::min(kChunk, n - c * kChunk);
    if constexpr (std::is_same_v<T, float>) accumulate_f32(begin, len, histogram, parts[c]);
    else accumulate_any(begin, len, histogram, parts[c]);
  }
  Partial total;
  for (const Partial& part : parts) {
    total.sum += part.sum;
    total.sum_squares += part.sum_squares;
    total.lo = std::min(total.lo, part.lo);
    total.hi = std::max(total.hi, part.hi);
    total.zeros += part.zeros;
    total.nan += part.nan;
    total.pos_inf += part.pos_inf;
    total.neg_inf += part.neg_inf;
    for (int b = 0; b < kHistBuckets; ++b) s.histogram[b] += part.histogram[b];
  }
  s.count = n;
  s.nan = total.nan;
  s.pos_inf = total.pos_inf;
  s.neg_inf = total.neg_inf;
  s.finite = n - total.nan - total.pos_inf - total.neg_inf;
  s.zeros = total.zeros;
  s.sum = total.sum;
  s.sum_squares = total.sum_squares;
  if (s.finite > 0) {
    s.mean = total.sum / double(s.finite);
    s.std = std::sqrt(std::max(0.0, total.sum_squares / double(s.finite) - s.mean * s.mean));
    s.min = total.lo;
    s.max = total.hi;
    s.norm = std::sqrt(total.sum_squares);
    s.max_abs = std::max(std::abs(total.lo), std::abs(total.hi));
  }
}

}  // namespace

Tensor on_host(const Tensor& t) { return t.device().is_cpu() ? t : t.to(Device::cpu()); }

TensorStats tensor_stats(const Tensor& t, bool histogram) {
  TensorStats s;
  if (!t.defined() || t.numel() == 0) return s;
  Tensor c = raw::contiguous(on_host(t));
  if (c.dtype() == DType::F32) accumulate(c.data<float>(), c.numel(), histogram, s);
  else if (c.dtype() == DType::F64) accumulate(c.data<double>(), c.numel(), histogram, s);
  else GS_CHECK(false, "tensor_stats: expects f32 or f64, got an integer tensor of shape %s", shape_str(t.shape()).c_str());
  return s;
}

namespace {
// finite_bits over fixed chunks on the OpenMP threads (the answer does not depend on their number).
template <class T, class Bits>
bool finite_bits_parallel(const T* p, int64_t n, Bits exponent_mask) {
  constexpr int64_t kChunk = kChunkValues;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  int bad = 0;
#ifdef GS_OPENMP
#pragma omp parallel for schedule(static) reduction(| : bad) if (chunks > 1)
#endif
  for (int64_t c = 0; c < chunks; ++c) {
    bad |= !finite_bits(p + c * kChunk, std::min(kChunk, n - c * kChunk), exponent_mask);
  }
  return bad == 0;
}
}  // namespace

bool all_finite(const Tensor& t) {
  if (!t.defined() || t.numel() == 0) return true;
  Tensor c = raw::contiguous(on_host(t));
  if (c.dtype() == DType::F32) return finite_bits_parallel(c.data<float>(), c.numel(), uint32_t(0x7f800000u));
  if (c.dtype() == DType::F64) return finite_bits_parallel(c.data<double>(), c.numel(), uint64_t(0x7ff0000000000000ull));
  return true;  // integers are always finite
}

std::string TensorStats::str() const {
  std::string text = format("mean %.4g std %.4g min %.4g max %.4g zero %.1f%%", mean, std, min, max,
                            100.0 * fraction_zero());
  if (non_finite()) text += format(" nan %lld +inf %lld -inf %lld", (long long)nan, (long long)pos_inf, (long long)neg_inf);
  return text;
}

}  // namespace gs::inspect
