// Summary statistics of one tensor, read-only: mean, std, min, max, L2 norm, max-abs, the
// fraction exactly zero, NaN/Inf counts and a fixed-bucket histogram. Probes (probes.h) and the
// anomaly detector (anomaly.h) use these; nothing here writes to the tensor it reads.
//
//   TensorStats s = inspect::tensor_stats(x);   // one pass; f32 sums in float partials of 16 values, then double
//   if (s.nan + s.pos_inf + s.neg_inf) ...              // non-finite values are counted, not summed
//   bool ok = inspect::all_finite(x);                   // the cheap check (no statistics)
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace gs::inspect {

// Histogram buckets are fixed binary orders of magnitude, the same for every tensor and every
// step, so histograms compare across layers and time and never depend on the data's range.
// With k = 0..39 standing for the octave [2^(k-24), 2^(k-23)):
//   bucket 0                 x <= -2^16                       (negative overflow)
//   bucket 40 - k            -2^(k-23) < x <= -2^(k-24)
//   bucket 41 (kZeroBucket)  -2^-24 < x < 2^-24               (zero and tiny values)
//   bucket 42 + k            2^(k-24) <= x < 2^(k-23)
//   bucket 82                x >= 2^16                        (positive overflow)
// NaN, +Inf and -Inf are never in a bucket: TensorStats counts them separately, so a tensor that
// is all NaN gives an all-zero histogram, not an error.
constexpr int kHistMinExp = -24;  // |x| < 2^-24 counts as zero
constexpr int kHistMaxExp = 16;   // |x| >= 2^16 goes to an overflow bucket
constexpr int kHistSideBuckets = kHistMaxExp - kHistMinExp;  // 40 buckets per sign
constexpr int kZeroBucket = kHistSideBuckets + 1;            // 41
constexpr int kHistBuckets = 2 * kHistSideBuckets + 3;       // 83

// The right edge of each bucket (the last one is +infinity), as TensorBoard's bucket_limit wants.
const std::array<double, kHistBuckets>& histogram_upper_edges();
int histogram_bucket(double x);  // the bucket of a finite value

struct TensorStats {
  int64_t count = 0;           // all elements
  int64_t finite = 0;          // elements that are neither NaN nor Inf (the rest are not in any sum)
  int64_t nan = 0, pos_inf = 0, neg_inf = 0;
  int64_t zeros = 0;           // exactly 0.0 (dead ReLU units)
  double sum = 0, sum_squares = 0;
  double mean = 0, std = 0;    // over the finite elements; std is the population std
  double min = 0, max = 0;     // over the finite elements (0 when there are none)
  double norm = 0;             // L2 norm of the finite elements
  double max_abs = 0;
  std::array<int64_t, kHistBuckets> histogram{};  // filled only when asked for

  int64_t non_finite() const { return nan + pos_inf + neg_inf; }
  double fraction_zero() const { return count ? double(zeros) / double(count) : 0.0; }
  std::string str() const;  // "mean 0.1 std 1 min -3 max 3 zero 12% nan 0 inf 0"
};

// One pass over t (any layout, f32 or f64, cpu). Reads only.
// A tensor on another device is read through a host copy (so probes work on CUDA models, at the
// cost of a copy per probed tensor); on_host gives that copy, or t itself on the cpu.
Tensor on_host(const Tensor& t);
TensorStats tensor_stats(const Tensor& t, bool histogram = true);
// True when no element is NaN or Inf; vectorised bit test, much cheaper than tensor_stats.
bool all_finite(const Tensor& t);

}  // namespace gs::inspect
