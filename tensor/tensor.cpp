// Tensor handle, storage, creation functions and PyTorch-like printing.
#include "tensor/tensor.h"

#include <cmath>
#include <cstring>
#include <ostream>
#include <sstream>

#include "tensor/allocator.h"
#include "tensor/device_memory.h"
#include "tensor/random.h"
#include "tensor/raw_ops.h"

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
  if (!impl_)
    throw Error("tensor: use of an undefined tensor (default-constructed, or a gradient that was never computed)");
  return *impl_;
}

int64_t Tensor::size(int64_t d) const {
  GS_CHECK(dim() > 0, "size: dim %lld of a 0-d tensor (shape [] has no dimensions)", (long long)d);
  return shape()[normalize_dim("size", d, dim())];
}

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // as PyTorch: no element, any strides
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
  if (device().is_cuda()) return to(Device::cpu()).to_vector<T>();
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
  GS_CHECK(requires_grad || !impl().autograd || is_leaf(),
           "requires_grad: can only be changed on a leaf tensor (turning it off on a computed one would cut the graph "
           "silently); use detach()");
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
    GS_CHECK(g.dtype() == dtype() && g.device() == device(),
             "set_grad: gradient %s on %s does not match tensor %s on %s (shape %s)", dtype_name(g.dtype()),
             g.device().str().c_str(), dtype_name(dtype()), device().str().c_str(), shape_str(shape()).c_str());
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

Tensor Tensor::to(Device target) const {
  if (device() == target) return *this;
  Tensor src = raw::contiguous(*this);
  Tensor out = empty(shape(), {dtype(), target});
  const size_t nbytes = static_cast<size_t>(numel()) * dtype_size(dtype());
  if (nbytes == 0) return out;
  // The non-cpu side's backend does the copy (it knows both kinds of memory).
  DeviceMemory& backend = device_memory(target.is_cpu() ? device() : target);
  backend.copy(out.raw_data(), target, src.raw_data(), device(), nbytes);
  return out;
}

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype())) + shape_str(shape()) + " " + device().str();
}

// ---------------- printing ----------------
// A port of torch/_tensor_str.py (1.13): same number formats, widths, line wrapping at 80
// columns, summarisation above 1000 elements (3 edge items), and suffix order.
namespace {
constexpr int kPrecision = 4, kEdgeItems = 3, kLineWidth = 80;
constexpr int64_t kThreshold = 1000;
GradFnNamer g_grad_fn_namer = nullptr;

std::string printf_str(const char* fmt, double v, int width = 0) {
  char buf[64];
  if (width) {
    std::snprintf(buf, sizeof buf, fmt, width, kPrecision, v);
  } else {
    std::snprintf(buf, sizeof buf, fmt, kPrecision, v);
  }
  return buf;
}
// Python prints non-finite values as nan / inf / -inf whatever the format (glibc may say -nan).
std::string non_finite_str(double v) { return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"); }

struct Formatter {
  bool floating = true, int_mode = true, sci_mode = false;
  int max_width = 1;

  Formatter(const std::vector<double>& values, bool is_float) : floating(is_float) {
    if (!floating) {
      for (double v : values) max_width = std::max<int>(max_width, (int)std::to_string((long long)v).size());
      return;
    }
    std::vector<double> nz;
    for (double v : values) {
      if (std::isfinite(v) && v != 0) nz.push_back(v);
    }
    if (nz.empty()) return;
    double lo = INFINITY, hi = 0;
    for (double v : nz) {
      lo = std::min(lo, std::abs(v));
      hi = std::max(hi, std::abs(v));
      if (v != std::ceil(v)) int_mode = false;
    }
    sci_mode = hi / lo > 1000.0 || hi > 1.0e8 || (!int_mode && lo < 1.0e-4);
    for (double v : nz) {
      int len = sci_mode   ? (int)printf_str("%.*e", v).size()
                : int_mode ? (int)std::to_string((long long)v).size() + 1
                           : (int)printf_str("%.*f", v).size();
      max_width = std::max(max_width, len);
    }
  }

  std::string format(double v) const {
    std::string s;
    if (!floating) {
      s = std::to_string((long long)v);
    } else if (!std::isfinite(v)) {
      s = non_finite_str(v);
    } else if (sci_mode) {
      s = printf_str("%.*e", v);
    } else if (int_mode) {
      s = (std::signbit(v) && v == 0 ? "-0" : std::to_string((long long)v)) + ".";
    } else {
      s = printf_str("%.*f", v);
    }
    return std::string(std::max<int>(0, max_width - (int)s.size()), ' ') + s;
  }
};

// Values in row-major order, viewed through (shape, base offset, row-major strides).
struct Printer {
  const std::vector<double>& values;
  const Shape& shape;
  Strides strides;
  bool summarize;
  const Formatter& f;

  // The indices of dim d that are printed: all, or the first and last kEdgeItems with -1 for "...".
  std::vector<int64_t> shown(size_t d) const {
    std::vector<int64_t> idx;
    int64_t n = shape[d];
    bool cut = summarize && n > 2 * kEdgeItems;
    for (int64_t i = 0; i < n; ++i) {
      if (cut && i == kEdgeItems) {
        idx.push_back(-1);
        i = n - kEdgeItems;
      }
      idx.push_back(i);
    }
    return idx;
  }

  std::string vector_str(int64_t base, int indent) const {
    int element_length = f.max_width + 2;
    int per_line = std::max(1, (kLineWidth - indent) / element_length);
    std::vector<std::string> data;
    for (int64_t i : shown(shape.size() - 1)) data.push_back(i < 0 ? " ..." : f.format(values[base + i]));
    std::string out = "[";
    for (size_t i = 0; i < data.size(); ++i) {
      if (i) out += (i % per_line == 0) ? ",\n" + std::string(indent + 1, ' ') : ", ";
      out += data[i];
    }
    return out + "]";
  }

  std::string str(size_t d, int64_t base, int indent) const {
    if (d + 1 == shape.size()) return vector_str(base, indent);
    std::string sep = "," + std::string(shape.size() - d - 1, '\n') + std::string(indent + 1, ' ');
    std::string out = "[";
    bool first = true;
    for (int64_t i : shown(d)) {
      if (!first) out += sep;
      first = false;
      out += i < 0 ? "..." : str(d + 1, base + i * strides[d], indent + 1);
    }
    return out + "]";
  }

  // The values the formatter sees when summarising: only the printed ones (get_summarized_data).
  void collect(size_t d, int64_t base, std::vector<double>& out) const {
    if (d == shape.size()) {
      out.push_back(values[base]);
      return;
    }
    for (int64_t i : shown(d)) {
      if (i >= 0) collect(d + 1, base + i * strides[d], out);
    }
  }
};

std::string tuple_str(const Shape& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + (shape.size() == 1 ? ",)" : ")");
}
}  // namespace

void set_grad_fn_namer(GradFnNamer namer) { g_grad_fn_namer = namer; }

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  const std::string prefix = "tensor(";
  const int indent = static_cast<int>(prefix.size());
  std::vector<std::string> suffixes;
  if (!device().is_cpu()) suffixes.push_back("device='" + device().str() + "'");
  std::string body;
  if (numel() == 0) {
    if (dim() != 1) suffixes.push_back("size=" + tuple_str(shape()));
    if (dtype() != DType::F32) suffixes.push_back(std::string("dtype=") + dtype_name(dtype()));
    body = "[]";
  } else {
    if (dtype() == DType::F64) suffixes.push_back("dtype=f64");
    if (!device().is_cpu()) {
      body = "...";  // device memory is not read back for printing
    } else {
      std::vector<double> values = to_vector<double>();
      bool summarize = numel() > kThreshold;
      bool floating = is_floating(dtype());
      Formatter none({}, floating);
      std::vector<double> seen;
      if (summarize) Printer{values, shape(), contiguous_strides(shape()), summarize, none}.collect(0, 0, seen);
      Formatter f(summarize ? seen : values, floating);
      Printer p{values, shape(), contiguous_strides(shape()), summarize, f};
      body = dim() == 0 ? f.format(values[0]) : p.str(0, 0, indent);
    }
  }
  if (requires_grad() && !is_leaf()) {
    suffixes.push_back("grad_fn=<" + (g_grad_fn_namer ? g_grad_fn_namer(*autograd_meta()) : "Backward") + ">");
  } else if (requires_grad()) {
    suffixes.push_back("requires_grad=True");
  }
  // _add_suffixes: a suffix that would pass the line width goes on its own line.
  std::string out = prefix + body;
  size_t newline = out.rfind('\n');
  int last_line_len = static_cast<int>(out.size()) - (newline == std::string::npos ? -1 : (int)newline) + 1;
  for (const std::string& s : suffixes) {
    if (last_line_len + (int)s.size() + 2 > kLineWidth) {
      out += ",\n" + std::string(indent, ' ') + s;
      last_line_len = indent + (int)s.size();
    } else {
      out += ", " + s;
      last_line_len += (int)s.size() + 2;
    }
  }
  return out + ")";
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
// Values made on the host; a tensor for another device is filled there and then moved.
template <class F> Tensor fill_cpu(const Shape& shape, TensorOptions opt, const char* op, F value_at) {
  if (!opt.device.is_cpu()) {
    TensorOptions host = opt;
    host.device = Device::cpu();
    return fill_cpu(shape, host, op, value_at).to(opt.device);
  }
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
  // U[0, 1) in the tensor's type: a double just below 1 rounds to 1.0f, so f32 takes the
  // largest float below 1 instead.
  const bool f32 = opt.dtype == DType::F32;
  return fill_cpu(shape, opt, "rand", [&](int64_t) {
    double u = g.uniform();
    return f32 && static_cast<float>(u) >= 1.0f ? double(0x1.fffffep-1f) : u;
  });
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
    GS_CHECK(t->device() == first->device(),
             "%s: expected all tensors on one device, got %s and %s (move one with .to(device); modules with "
             "Module::to)",
             op, first->device().str().c_str(), t->device().str().c_str());
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
