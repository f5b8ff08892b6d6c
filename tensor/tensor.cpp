// Tensor handle, storage, creation functions and PyTorch-like printing.
#include "tensor/tensor.h"

#include <cmath>
#include <cstring>
#include <ostream>
#include <sstream>

#include "tensor/allocator.h"
#include "tensor/device_memory.h"
#include "tensor/random.h"

namespace gs {

// ---------------- storage ----------------
Storage::Storage(size_t n, Device d) : nbytes(n), device(d) {
  if (d.is_cpu()) {
    data = CpuAllocator::instance().allocate(n);
  } else {
    data = device_memory(d).allocate(n, d);
  }
}

Storage::~Storage() {
  if (device.is_cpu()) {
    CpuAllocator::instance().release(data, nbytes);
  } else {
    device_memory(device).release(data, nbytes, device);
  }
}

// ---------------- handle ----------------
TensorImpl& Tensor::impl() const {
  if (!impl_) throw Error("tensor: use of an undefined tensor (default-constructed, or a gradient that was never computed)");
  return *impl_;
}

int64_t Tensor::size(int64_t d) const { return shape()[normalize_dim("size", d, dim())]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] != 1 && strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data) + impl().offset * dtype_size(dtype());
}

template <class T> T* Tensor::data() const {
  GS_CHECK(dtype() == dtype_of<T>(), "data: tensor has dtype %s, asked for %s", dtype_name(dtype()),
           dtype_name(dtype_of<T>()));
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int64_t* Tensor::data<int64_t>() const;

namespace {
// Calls f(linear_offset) for every element in logical (row-major) order.
template <class F> void for_each_offset(const Shape& shape, const Strides& strides, F f) {
  int64_t n = shape_numel(shape);
  if (n == 0) return;
  int nd = static_cast<int>(shape.size());
  std::vector<int64_t> idx(nd, 0);
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    f(off);
    for (int d = nd - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) {
        off += strides[d];
        break;
      }
      off -= strides[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
}
}  // namespace

template <class T> std::vector<T> Tensor::to_vector() const {
  GS_CHECK(device().is_cpu(), "to_vector: tensor is on %s; move it to the cpu first", device().str().c_str());
  std::vector<T> out;
  out.reserve(numel());
  GS_DISPATCH_ALL(dtype(), "to_vector", [&] {
    const scalar_t* p = static_cast<const scalar_t*>(raw_data());
    for_each_offset(shape(), strides(), [&](int64_t off) { out.push_back(static_cast<T>(p[off])); });
  });
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

double Tensor::item() const {
  GS_CHECK(numel() == 1, "item: tensor of shape %s has %lld elements, expected 1", shape_str(shape()).c_str(),
           (long long)numel());
  return to_vector<double>()[0];
}

bool Tensor::requires_grad() const { return impl().autograd && impl().autograd->requires_grad; }

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  if (requires_grad) {
    GS_CHECK(is_floating(dtype()), "requires_grad: only floating-point tensors can require gradients (got %s)",
             dtype_name(dtype()));
    GS_CHECK(is_leaf(), "requires_grad: can only be changed on a leaf tensor; use detach() first");
  }
  if (requires_grad || impl().autograd) ensure_autograd_meta().requires_grad = requires_grad;
  return *this;
}

AutogradMeta& Tensor::ensure_autograd_meta() {
  if (!impl().autograd) impl().autograd = std::make_shared<AutogradMeta>();
  return *impl().autograd;
}

Tensor Tensor::grad() const { return impl().autograd ? impl().autograd->grad : Tensor(); }

void Tensor::set_grad(const Tensor& g) {
  if (g.defined()) {
    GS_CHECK(g.shape() == shape(), "set_grad: gradient shape %s does not match tensor shape %s",
             shape_str(g.shape()).c_str(), shape_str(shape()).c_str());
  }
  ensure_autograd_meta().grad = g;
}

void Tensor::zero_grad() {
  if (impl().autograd) impl().autograd->grad = Tensor();
}

bool Tensor::is_leaf() const { return !impl().autograd || !impl().autograd->entry; }

void Tensor::retain_grad() {
  GS_CHECK(requires_grad(), "retain_grad: tensor does not require grad");
  ensure_autograd_meta().retains_grad = true;
}

Tensor Tensor::detach() const {
  auto p = std::make_shared<TensorImpl>(impl());
  p->autograd = nullptr;
  return Tensor(p);
}

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype())) + shape_str(shape()) + " " + device().str();
}

// ---------------- printing ----------------
namespace {
struct PrintFormat {
  bool integral = true;
  bool scientific = false;
  int width = 1;
};

std::string format_value(double v, const PrintFormat& f, DType dtype) {
  char buf[64];
  if (dtype == DType::I64) {
    std::snprintf(buf, sizeof buf, "%lld", (long long)v);
  } else if (std::isnan(v)) {
    std::snprintf(buf, sizeof buf, "nan");
  } else if (std::isinf(v)) {
    std::snprintf(buf, sizeof buf, v > 0 ? "inf" : "-inf");
  } else if (f.scientific) {
    std::snprintf(buf, sizeof buf, "%.4e", v);
  } else if (f.integral) {
    std::snprintf(buf, sizeof buf, "%.0f.", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.4f", v);
  }
  return buf;
}

void print_dim(std::ostringstream& os, const std::vector<double>& values, const Shape& shape, size_t d,
               int64_t base, int indent, const PrintFormat& f, DType dtype, bool summarize) {
  int64_t inner = 1;
  for (size_t i = d + 1; i < shape.size(); ++i) inner *= shape[i];
  int64_t n = shape[d];
  os << "[";
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 6 && i == 3) {
      os << (d + 1 == shape.size() ? "..., " : "...,\n" + std::string(indent + 1, ' '));
      i = n - 3;
    }
    if (d + 1 == shape.size()) {
      std::string s = format_value(values[base + i], f, dtype);
      os << std::string(std::max<int>(0, f.width - (int)s.size()), ' ') << s;
    } else {
      print_dim(os, values, shape, d + 1, base + i * inner, indent + 1, f, dtype, summarize);
    }
    if (i + 1 < n) {
      if (d + 1 == shape.size()) {
        os << ", ";
      } else {
        os << "," << std::string(shape.size() - d - 1, '\n') << std::string(indent + 1, ' ');
      }
    }
  }
  os << "]";
}
}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream os;
  std::vector<double> values = device().is_cpu() ? to_vector<double>() : std::vector<double>{};
  PrintFormat f;
  double max_abs = 0, min_abs = INFINITY;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    if (v != std::floor(v)) f.integral = false;
    max_abs = std::max(max_abs, std::abs(v));
    if (v != 0) min_abs = std::min(min_abs, std::abs(v));
  }
  if (dtype() != DType::I64 && !f.integral && (max_abs >= 1e8 || min_abs < 1e-4 || max_abs / min_abs > 1e6)) {
    f.scientific = true;
  }
  for (double v : values) f.width = std::max<int>(f.width, (int)format_value(v, f, dtype()).size());
  os << "tensor(";
  if (dim() == 0) {
    os << format_value(values[0], f, dtype());
  } else if (numel() == 0) {
    os << "[]";
  } else {
    print_dim(os, values, shape(), 0, 0, 7, f, dtype(), numel() > 1000);
  }
  if (numel() == 0 || dim() > 0) {
    if (numel() == 0 || (numel() > 1000)) os << ", size=" << shape_str(shape());
  }
  if (dtype() != DType::F32) os << ", dtype=" << dtype_name(dtype());
  if (!device().is_cpu()) os << ", device='" << device().str() << "'";
  if (requires_grad()) os << (is_leaf() ? ", requires_grad=True" : ", grad_fn");
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

// ---------------- creation ----------------
Tensor empty(const Shape& shape, TensorOptions opt) {
  for (auto d : shape) GS_CHECK(d >= 0, "empty: negative dimension in shape %s", shape_str(shape).c_str());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * dtype_size(opt.dtype), opt.device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = opt.dtype;
  return Tensor(impl);
}

namespace {
template <class F> Tensor fill_cpu(const Shape& shape, TensorOptions opt, const char* op, F value_at) {
  GS_CHECK(opt.device.is_cpu(), "%s: creation on %s is not available in this build", op, opt.device.str().c_str());
  Tensor t = empty(shape, opt);
  int64_t n = t.numel();
  GS_DISPATCH_ALL(opt.dtype, op, [&] {
    scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<scalar_t>(value_at(i));
  });
  return t;
}
}  // namespace

Tensor full(const Shape& shape, double value, TensorOptions opt) {
  if (!opt.device.is_cpu()) {
    Tensor t = empty(shape, opt);
    device_memory(opt.device).fill(t.raw_data(), t.numel(), t.dtype(), value, opt.device);
    return t;
  }
  return fill_cpu(shape, opt, "full", [&](int64_t) { return value; });
}
Tensor zeros(const Shape& shape, TensorOptions opt) { return full(shape, 0.0, opt); }
Tensor ones(const Shape& shape, TensorOptions opt) { return full(shape, 1.0, opt); }
Tensor scalar_tensor(double value, TensorOptions opt) { return full({}, value, opt); }

Tensor arange(double start, double end, double step, TensorOptions opt) {
  GS_CHECK(step != 0, "arange: step must be non-zero");
  int64_t n = static_cast<int64_t>(std::ceil((end - start) / step));
  GS_CHECK(n >= 0, "arange: empty or reversed range start=%g end=%g step=%g", start, end, step);
  return fill_cpu({n}, opt, "arange", [&](int64_t i) { return start + step * i; });
}

Tensor rand(const Shape& shape, TensorOptions opt, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  GS_CHECK(is_floating(opt.dtype), "rand: dtype must be floating, got %s", dtype_name(opt.dtype));
  return fill_cpu(shape, opt, "rand", [&](int64_t) { return g.uniform(); });
}

Tensor randn(const Shape& shape, TensorOptions opt, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  GS_CHECK(is_floating(opt.dtype), "randn: dtype must be floating, got %s", dtype_name(opt.dtype));
  return fill_cpu(shape, opt, "randn", [&](int64_t) { return g.normal(); });
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator* gen) {
  GS_CHECK(high > low, "randint: empty range [%lld, %lld)", (long long)low, (long long)high);
  Generator& g = gen ? *gen : default_generator();
  return fill_cpu(shape, {DType::I64}, "randint", [&](int64_t) { return (double)g.randint(low, high); });
}

Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), {t.dtype(), t.device()}); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), {t.dtype(), t.device()}); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), {t.dtype(), t.device()}); }

template <class T> Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
  GS_CHECK((int64_t)values.size() == shape_numel(shape), "from_vector: %zu values do not fill shape %s (%lld elements)",
           values.size(), shape_str(shape).c_str(), (long long)shape_numel(shape));
  Tensor t = empty(shape, {dtype_of<T>()});
  std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&);

Tensor from_vector(const std::vector<double>& values, const Shape& shape, TensorOptions opt) {
  GS_CHECK((int64_t)values.size() == shape_numel(shape), "from_vector: %zu values do not fill shape %s (%lld elements)",
           values.size(), shape_str(shape).c_str(), (long long)shape_numel(shape));
  return fill_cpu(shape, opt, "from_vector", [&](int64_t i) { return values[i]; });
}

// ---------------- checks ----------------
Device common_device(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t || !t->defined()) continue;
    if (!first) {
      first = t;
      continue;
    }
    GS_CHECK(t->device() == first->device(), "%s: expected all tensors on one device, got %s and %s", op,
             first->device().str().c_str(), t->device().str().c_str());
  }
  return first ? first->device() : Device::cpu();
}

void check_dtype(const char* op, const Tensor& t, DType expected, const char* what) {
  GS_CHECK(t.dtype() == expected, "%s: %s must have dtype %s, got %s%s", op, what, dtype_name(expected),
           dtype_name(t.dtype()), shape_str(t.shape()).c_str());
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  GS_CHECK(a.dtype() == b.dtype(), "%s: dtype mismatch, %s%s vs %s%s", op, dtype_name(a.dtype()),
           shape_str(a.shape()).c_str(), dtype_name(b.dtype()), shape_str(b.shape()).c_str());
}

}  // namespace gs
