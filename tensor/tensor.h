// Tensor: a cheap handle to shared storage with shape, strides, offset, dtype and device.
//
//   gs::Tensor x = gs::randn({2, 3});            // f32 on the cpu, default generator
//   gs::Tensor w = gs::ones({3, 4}).set_requires_grad(true);
//   gs::Tensor y = gs::matmul(x, w);             // differentiable ops: autograd/ops.h
//   gs::backward(gs::sum(y));                    // w.grad() is now [3,4]
//   std::cout << w.grad() << "\n";              // prints like PyTorch
//
// This file holds the handle and creation functions; no-grad op front-ends are in raw_ops.h,
// differentiable ops in autograd/ops.h. Views share storage with their base.
#pragma once
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/shape.h"

namespace gs {

class Generator;
struct AutogradMeta;

// A block of device memory. CPU storage comes from the caching CpuAllocator.
struct Storage {
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Strides strides;
  int64_t offset = 0;  // in elements
  DType dtype = DType::F32;
  std::shared_ptr<AutogradMeta> autograd;  // null for plain data tensors
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Strides& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device; }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }

  // Pointer to the first element (offset applied); checks that T matches the dtype.
  template <class T> T* data() const;
  void* raw_data() const;
  // The single element of a one-element tensor, as double (any dtype).
  double item() const;
  template <class T> std::vector<T> to_vector() const;  // copies out in logical order

  // Autograd state (the tape itself lives in autograd/).
  bool requires_grad() const;
  Tensor& set_requires_grad(bool requires_grad = true);
  Tensor grad() const;  // undefined until a backward reaches this leaf
  void set_grad(const Tensor& grad);
  void zero_grad();  // sets .grad to undefined (PyTorch's set_to_none)
  bool is_leaf() const;
  void retain_grad();
  AutogradMeta* autograd_meta() const { return impl().autograd.get(); }
  AutogradMeta& ensure_autograd_meta();
  // Same data and metadata, no autograd state: the result is a leaf that requires no grad.
  Tensor detach() const;
  // The same values on `device`: this tensor itself when already there, else a contiguous copy
  // that is a leaf requiring no grad (parameters move with Module::to). Copies that touch the
  // host wait for the transfer. Without a CUDA build or GPU: a gs::Error that says why.
  Tensor to(Device device) const;

  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  std::string str() const;  // PyTorch-like text
  std::string describe() const;  // "f32[2,3] cpu"

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Hook on a tensor's gradient: may return a replacement (or an undefined Tensor to keep it).
using GradHook = std::function<Tensor(const Tensor& grad)>;
struct Entry;

// Per-tensor autograd state: data only; autograd/tape.cpp gives it meaning.
struct AutogradMeta {
  bool requires_grad = false;
  bool retains_grad = false;
  Tensor grad;                    // leaves (and retain_grad tensors): accumulated gradient
  Tensor pending_grad;            // the gradient being summed during one backward pass
  std::shared_ptr<Entry> entry;   // the tape entry that produced this tensor (null: leaf)
  std::vector<std::pair<int, GradHook>> hooks;  // (id from register_hook, hook), in registration order
  std::string name;               // parameter name, when a module registered it
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// How str() names a non-leaf's grad_fn ("MulBackward0"). autograd/ registers it: tensor/ cannot
// see the tape (rooms only use the rooms below them).
using GradFnNamer = std::string (*)(const AutogradMeta& meta);
void set_grad_fn_namer(GradFnNamer namer);

// ---- creation (results are leaves that require no grad) ----
struct TensorOptions {
  DType dtype = DType::F32;
  Device device = Device::cpu();
};
Tensor empty(const Shape& shape, TensorOptions opt = {});
Tensor zeros(const Shape& shape, TensorOptions opt = {});
Tensor ones(const Shape& shape, TensorOptions opt = {});
Tensor full(const Shape& shape, double value, TensorOptions opt = {});
Tensor scalar_tensor(double value, TensorOptions opt = {});
Tensor arange(double start, double end, double step = 1.0, TensorOptions opt = {});
Tensor rand(const Shape& shape, TensorOptions opt = {}, Generator* gen = nullptr);   // U[0,1)
Tensor randn(const Shape& shape, TensorOptions opt = {}, Generator* gen = nullptr);  // N(0,1)
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator* gen = nullptr);  // i64
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor empty_like(const Tensor& t);
template <class T> Tensor from_vector(const std::vector<T>& values, const Shape& shape);
Tensor from_vector(const std::vector<double>& values, const Shape& shape, TensorOptions opt);

// ---- device seam: every front-end checks its operands through these ----
// All defined tensors on one device; errors name the op and both devices.
Device common_device(const char* op, std::initializer_list<const Tensor*> tensors);
void check_dtype(const char* op, const Tensor& t, DType expected, const char* what);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);

}  // namespace gs
