// View front-ends (share storage) and copies: reshape family, permute, narrow, expand, cat.
#include <algorithm>

#include "kernels/cpu/elementwise.h"
#include "tensor/raw_common.h"
#include "tensor/raw_ops.h"

namespace gs::raw {

Tensor as_strided(const Tensor& t, const Shape& shape, const Strides& strides, int64_t offset) {
  auto p = std::make_shared<TensorImpl>();
  p->storage = t.storage();
  p->shape = shape;
  p->strides = strides;
  p->offset = offset;
  p->dtype = t.dtype();
  return Tensor(p);
}

Shape infer_shape(const char* op, Shape shape, int64_t numel) {
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      GS_CHECK(infer < 0, "%s: only one dimension can be -1 in %s", op, shape_str(shape).c_str());
      infer = static_cast<int>(i);
    } else {
      GS_CHECK(shape[i] >= 0, "%s: invalid dimension %lld in %s", op, (long long)shape[i], shape_str(shape).c_str());
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    GS_CHECK(known != 0 && numel % known == 0, "%s: shape %s is invalid for input of size %lld", op,
             shape_str(shape).c_str(), (long long)numel);
    shape[infer] = numel / known;
  }
  GS_CHECK(shape_numel(shape) == numel, "%s: shape %s is invalid for input of size %lld", op, shape_str(shape).c_str(),
           (long long)numel);
  return shape;
}

namespace {
// Strides for viewing t as `shape` without a copy, or empty when impossible (PyTorch's rule).
bool view_strides(const Tensor& t, const Shape& shape, Strides& out) {
  if (t.numel() == 0 && t.shape() == shape) {  // no element: keep the strides (as PyTorch)
    out = t.strides();
    return true;
  }
  if (t.is_contiguous()) {
    out = contiguous_strides(shape);
    return true;
  }
  // Merge t's dims into chunks that are contiguous among themselves, then split to `shape`.
  const Shape& os = t.shape();
  const Strides& ost = t.strides();
  out.assign(shape.size(), 0);
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunk_base_stride = ost.empty() ? 1 : ost.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(os.size()) - 1; d >= 0; --d) {
    tensor_numel *= os[d];
    if (d == 0 || (os[d - 1] != 1 && ost[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = ost[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}
}  // namespace

Tensor view(const Tensor& t, Shape shape) {
  shape = infer_shape("view", shape, t.numel());
  Strides strides;
  GS_CHECK(view_strides(t, shape, strides),
           "view: cannot view a tensor of shape %s with strides %s as %s; use reshape (copies)",
           shape_str(t.shape()).c_str(), shape_str(t.strides()).c_str(), shape_str(shape).c_str());
  return as_strided(t, shape, strides, t.offset());
}

Tensor reshape(const Tensor& t, Shape shape) {
  shape = infer_shape("reshape", shape, t.numel());
  Strides strides;
  if (view_strides(t, shape, strides)) return as_strided(t, shape, strides, t.offset());
  return view(contiguous(t), shape);
}

Tensor permute(const Tensor& t, const std::vector<int64_t>& dims) {
  GS_CHECK((int64_t)dims.size() == t.dim(), "permute: %zu dims given for a %lld-d tensor %s", dims.size(),
           (long long)t.dim(), shape_str(t.shape()).c_str());
  Shape shape(dims.size());
  Strides strides(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    int d = normalize_dim("permute", dims[i], t.dim());
    GS_CHECK(!seen[d], "permute: dim %d repeated in the permutation", d);
    seen[d] = true;
    shape[i] = t.shape()[d];
    strides[i] = t.strides()[d];
  }
  return as_strided(t, shape, strides, t.offset());
}

Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1) {
  int a = normalize_dim("transpose", dim0, t.dim()), b = normalize_dim("transpose", dim1, t.dim());
  if (t.dim() == 0) return as_strided(t, t.shape(), t.strides(), t.offset());  // as torch: itself
  Shape shape = t.shape();
  Strides strides = t.strides();
  std::swap(shape[a], shape[b]);
  std::swap(strides[a], strides[b]);
  return as_strided(t, shape, strides, t.offset());
}

Tensor slice(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step) {
  GS_CHECK(t.dim() > 0, "slice: cannot slice a 0-d tensor (shape [])");
  int d = normalize_dim("slice", dim, t.dim());
  int64_t n = t.shape()[d];
  GS_CHECK(step > 0, "slice: step must be positive, got %lld", (long long)step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape shape = t.shape();
  Strides strides = t.strides();
  shape[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  return as_strided(t, shape, strides, t.offset() + start * t.strides()[d]);
}

Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length) {
  GS_CHECK(t.dim() > 0, "narrow: cannot narrow a 0-d tensor (shape [])");
  int d = normalize_dim("narrow", dim, t.dim());
  int64_t n = t.shape()[d];
  if (start < 0) start += n;
  GS_CHECK(start >= 0 && length >= 0 && start + length <= n,
           "narrow: range [%lld, %lld) is outside dim %d of size %lld (shape %s)", (long long)start,
           (long long)(start + length), d, (long long)n, shape_str(t.shape()).c_str());
  return slice(t, d, start, start + length, 1);
}

Tensor unsqueeze(const Tensor& t, int64_t dim) {
  int d = normalize_dim("unsqueeze", dim, t.dim() + 1);
  Shape shape = t.shape();
  Strides strides = t.strides();
  int64_t stride = d < t.dim() ? t.strides()[d] * t.shape()[d] : 1;
  shape.insert(shape.begin() + d, 1);
  strides.insert(strides.begin() + d, stride);
  return as_strided(t, shape, strides, t.offset());
}

Tensor squeeze(const Tensor& t, int64_t dim) {
  int d = normalize_dim("squeeze", dim, t.dim());
  if (t.dim() == 0 || t.shape()[d] != 1) return as_strided(t, t.shape(), t.strides(), t.offset());
  Shape shape = t.shape();
  Strides strides = t.strides();
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  return as_strided(t, shape, strides, t.offset());
}

Tensor squeeze(const Tensor& t) {
  Shape shape;
  Strides strides;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.shape()[d] == 1) continue;
    shape.push_back(t.shape()[d]);
    strides.push_back(t.strides()[d]);
  }
  return as_strided(t, shape, strides, t.offset());
}

Tensor expand(const Tensor& t, const Shape& shape_in) {
  GS_CHECK((int64_t)shape_in.size() >= t.dim(), "expand: cannot expand %s to fewer dims %s",
           shape_str(t.shape()).c_str(), shape_str(shape_in).c_str());
  Shape shape = shape_in;
  size_t off = shape.size() - t.shape().size();
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      GS_CHECK(i >= off, "expand: -1 is not allowed for new leading dims (%s)", shape_str(shape_in).c_str());
      shape[i] = t.shape()[i - off];
    }
    GS_CHECK(shape[i] >= 0, "expand: invalid size %lld in %s", (long long)shape[i], shape_str(shape_in).c_str());
    if (i >= off) {
      int64_t src = t.shape()[i - off];
      GS_CHECK(src == shape[i] || src == 1, "expand: the size %lld at dim %zu of %s cannot become %lld", (long long)src,
               i - off, shape_str(t.shape()).c_str(), (long long)shape[i]);
    }
  }
  return as_strided(t, shape, broadcast_strides(t.shape(), t.strides(), shape), t.offset());
}

// ---------------- copies ----------------
void copy_(const Tensor& dst, const Tensor& src) {
  Shape target = broadcast_shapes("copy_", src.shape(), dst.shape());
  GS_CHECK(target == dst.shape(), "copy_: source %s does not broadcast to destination %s",
           shape_str(src.shape()).c_str(), shape_str(dst.shape()).c_str());
  if (src.device() != dst.device()) {  // across devices: move the source over, then copy there
    // From the CPU the cast goes first, so an f64 state_dict loads into a CUDA model (f32 there).
    copy_(dst,
          (src.device().is_cpu() && src.dtype() != dst.dtype() ? to_dtype(src, dst.dtype()) : src).to(dst.device()));
    return;
  }
  Device device = detail::op_device("copy_", {&dst, &src});
  Strides ss = broadcast_strides(src.shape(), src.strides(), dst.shape());
  Shape rows = dst.shape();
  Strides ds = dst.strides();
  coalesce_dims(rows, {&ss, &ds});  // long rows for the kernel, and under CUDA's dimension limit
  if (device.is_cuda()) {
    GS_CHECK(dst.dtype() != DType::F64 && src.dtype() != DType::F64, "copy_: f64 is not supported on %s (f32, i64)",
             device.str().c_str());
    GS_ON_CUDA([&] {
      const int nd = static_cast<int>(rows.size());
      void* d = dst.raw_data();
      const void* s = src.raw_data();
      const bool df = dst.dtype() == DType::F32, sf = src.dtype() == DType::F32;
      if (sf && df)
        kernels::cuda::copy_strided(static_cast<const float*>(s), ss.data(), static_cast<float*>(d), ds.data(),
                                    rows.data(), nd);
      else if (sf)
        kernels::cuda::copy_strided(static_cast<const float*>(s), ss.data(), static_cast<int64_t*>(d), ds.data(),
                                    rows.data(), nd);
      else if (df)
        kernels::cuda::copy_strided(static_cast<const int64_t*>(s), ss.data(), static_cast<float*>(d), ds.data(),
                                    rows.data(), nd);
      else
        kernels::cuda::copy_strided(static_cast<const int64_t*>(s), ss.data(), static_cast<int64_t*>(d), ds.data(),
                                    rows.data(), nd);
    }());
    return;
  }
  GS_DISPATCH_ALL(dst.dtype(), "copy_", [&] {
    using out_t = scalar_t;
    GS_DISPATCH_ALL(src.dtype(), "copy_", [&] {
      kernels::copy_strided<scalar_t, out_t>(static_cast<const scalar_t*>(src.raw_data()), ss.data(),
                                             static_cast<out_t*>(dst.raw_data()), ds.data(), rows.data(),
                                             static_cast<int>(rows.size()));
    });
  });
}

Tensor contiguous(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor out = empty(t.shape(), {t.dtype(), t.device()});
  copy_(out, t);
  return out;
}

Tensor clone(const Tensor& t) {
  Tensor out = empty(t.shape(), {t.dtype(), t.device()});
  copy_(out, t);
  return out;
}

Tensor to_dtype(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  Tensor out = empty(t.shape(), {dtype, t.device()});
  copy_(out, t);
  return out;
}

void fill_(const Tensor& dst, double value) { copy_(dst, full({}, value, {dst.dtype(), dst.device()})); }

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  GS_CHECK(!tensors.empty(), "cat: expected at least one tensor");
  const Tensor& first = tensors[0];
  GS_CHECK(first.dim() > 0, "cat: zero-dimensional tensors cannot be concatenated (unsqueeze them, or use stack)");
  int d = normalize_dim("cat", dim, first.dim());
  Shape shape = first.shape();
  int64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    check_same_dtype("cat", first, t);
    GS_CHECK(t.dim() == first.dim(), "cat: tensor %zu has %lld dims, tensor 0 has %lld", i, (long long)t.dim(),
             (long long)first.dim());
    for (int64_t k = 0; k < t.dim(); ++k) {
      GS_CHECK(k == d || t.shape()[k] == shape[k],
               "cat: tensor %zu has shape %s, which does not match %s outside dim %d", i, shape_str(t.shape()).c_str(),
               shape_str(shape).c_str(), d);
    }
    total += t.shape()[d];
  }
  shape[d] = total;
  Tensor out = empty(shape, {first.dtype(), first.device()});
  int64_t at = 0;
  for (const Tensor& t : tensors) {
    copy_(narrow(out, d, at, t.shape()[d]), t);
    at += t.shape()[d];
  }
  return out;
}

}  // namespace gs::raw
