// Tensor statistics and the fixed-edge histogram (see stats.h for the bucket layout).
// f32 buckets come straight from the exponent bits; f64 uses frexp. Non-finite values are
// counted and kept out of every sum, so one NaN never hides the rest of the statistics.
#include "inspect/stats.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

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

// Bucket of a finite float from its bits: exponent field 103 is 2^-24, 143 is 2^16.
inline int float_bucket(uint32_t bits) {
  int exponent_field = int((bits >> 23) & 0xff);
  bool negative = bits >> 31;
  if (exponent_field < 127 + kHistMinExp) return kZeroBucket;
  int k = exponent_field - (127 + kHistMinExp);
  if (k >= kHistSideBuckets) return negative ? 0 : kHistBuckets - 1;
  return negative ? kZeroBucket - 1 - k : kZeroBucket + 1 + k;
}

template <class T>
void accumulate(const T* p, int64_t n, bool histogram, TensorStats& s) {
  double sum = 0, sum_squares = 0, lo = std::numeric_limits<double>::infinity(), hi = -lo;
  int64_t zeros = 0, nan = 0, pos_inf = 0, neg_inf = 0;
  for (int64_t i = 0; i < n; ++i) {
    T v = p[i];
    if (!std::isfinite(v)) {
      if (std::isnan(v)) ++nan;
      else if (v > 0) ++pos_inf;
      else ++neg_inf;
      continue;
    }
    double d = double(v);
    sum += d;
    sum_squares += d * d;
    lo = d < lo ? d : lo;
    hi = d > hi ? d : hi;
    zeros += v == T(0);
    if (histogram) {
      if constexpr (std::is_same_v<T, float>) {
        ++s.histogram[float_bucket(std::bit_cast<uint32_t>(v))];
      } else {
        ++s.histogram[histogram_bucket(d)];
      }
    }
  }
  s.count = n;
  s.nan = nan;
  s.pos_inf = pos_inf;
  s.neg_inf = neg_inf;
  s.finite = n - nan - pos_inf - neg_inf;
  s.zeros = zeros;
  s.sum = sum;
  s.sum_squares = sum_squares;
  if (s.finite > 0) {
    s.mean = sum / double(s.finite);
    s.std = std::sqrt(std::max(0.0, sum_squares / double(s.finite) - s.mean * s.mean));
    s.min = lo;
    s.max = hi;
    s.norm = std::sqrt(sum_squares);
    s.max_abs = std::max(std::abs(lo), std::abs(hi));
  }
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

}  // namespace

TensorStats tensor_stats(const Tensor& t, bool histogram) {
  TensorStats s;
  if (!t.defined() || t.numel() == 0) return s;
  GS_CHECK(t.device().is_cpu(), "tensor_stats: only cpu tensors (got a tensor of shape %s elsewhere)",
           shape_str(t.shape()).c_str());
  Tensor c = raw::contiguous(t);
  if (c.dtype() == DType::F32) accumulate(c.data<float>(), c.numel(), histogram, s);
  else if (c.dtype() == DType::F64) accumulate(c.data<double>(), c.numel(), histogram, s);
  else GS_CHECK(false, "tensor_stats: expects f32 or f64, got an integer tensor of shape %s", shape_str(t.shape()).c_str());
  return s;
}

bool all_finite(const Tensor& t) {
  if (!t.defined() || t.numel() == 0) return true;
  Tensor c = raw::contiguous(t);
  if (c.dtype() == DType::F32) return finite_bits(c.data<float>(), c.numel(), uint32_t(0x7f800000u));
  if (c.dtype() == DType::F64) return finite_bits(c.data<double>(), c.numel(), uint64_t(0x7ff0000000000000ull));
  return true;  // integers are always finite
}

std::string TensorStats::str() const {
  std::string text = format("mean %.4g std %.4g min %.4g max %.4g zero %.1f%%", mean, std, min, max,
                            100.0 * fraction_zero());
  if (non_finite()) text += format(" nan %lld +inf %lld -inf %lld", (long long)nan, (long long)pos_inf, (long long)neg_inf);
  return text;
}

}  // namespace gs::inspect
