// Shape helpers.
#include "tensor/shape.h"

#include "tensor/error.h"

namespace gs {

std::string shape_str(const Shape& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

int64_t shape_numel(const Shape& shape) {
  // At most 2^60 elements, so that a byte count (8 bytes an element at most) cannot overflow
  // either: a wrapped product made a small buffer for a huge shape.
  constexpr int64_t kMaxElements = int64_t(1) << 60;
  for (auto d : shape) {
    GS_CHECK(d >= 0, "shape %s: a negative size", shape_str(shape).c_str());
    if (d == 0) return 0;
  }
  int64_t n = 1;
  for (auto d : shape) {
    GS_CHECK(!__builtin_mul_overflow(n, d, &n) && n <= kMaxElements, "shape %s: too many elements (at most 2^60)",
             shape_str(shape).c_str());
  }
  return n;
}

Strides contiguous_strides(const Shape& shape) {
  Strides strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    GS_CHECK(da == db || da == 1 || db == 1, "%s: shapes %s and %s cannot be broadcast (dim %zu: %lld vs %lld)", op,
             shape_str(a).c_str(), shape_str(b).c_str(), i, (long long)da, (long long)db);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Strides broadcast_strides(const Shape& shape, const Strides& strides, const Shape& target) {
  Strides out(target.size(), 0);
  size_t off = target.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i) {
    out[off + i] = (shape[i] == 1 && target[off + i] != 1) ? 0 : strides[i];
  }
  return out;
}

void coalesce_dims(Shape& shape, const std::vector<Strides*>& strides) {
  Shape out_shape;
  std::vector<Strides> out(strides.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !out_shape.empty();
    for (size_t k = 0; k < strides.size() && merge; ++k) merge = out[k].back() == (*strides[k])[d] * shape[d];
    if (merge) {
      out_shape.back() *= shape[d];
      for (size_t k = 0; k < strides.size(); ++k) out[k].back() = (*strides[k])[d];
    } else {
      out_shape.push_back(shape[d]);
      for (size_t k = 0; k < strides.size(); ++k) out[k].push_back((*strides[k])[d]);
    }
  }
  shape = std::move(out_shape);
  for (size_t k = 0; k < strides.size(); ++k) *strides[k] = std::move(out[k]);
}

int normalize_dim(const char* op, int64_t dim, int64_t ndim) {
  int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  GS_CHECK(dim >= lo && dim <= hi, "%s: dim %lld out of range for a %lld-d tensor (expected %lld..%lld)", op,
           (long long)dim, (long long)ndim, (long long)lo, (long long)hi);
  return static_cast<int>(dim < 0 ? dim + (ndim == 0 ? 1 : ndim) : dim);
}

}  // namespace gs
