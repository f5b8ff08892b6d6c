// Module: the base of every layer. Parameters, buffers and child modules live in ordered
// containers, so names and order follow PyTorch's state_dict ("0.weight", "1.running_mean").
//
//   class Affine : public gs::nn::Module {
//    public:
//     explicit Affine(int64_t n) { scale_ = register_parameter("scale", gs::ones({n})); }
//     Tensor forward(const Tensor& x) override { return x * scale_; }
//     std::string type_name() const override { return "Affine"; }
//    private:
//     Tensor scale_;
//   };
//   auto m = std::make_shared<Affine>(3);
//   Tensor y = (*m)(x);                    // operator() pushes the module's scope ("features.3")
//   for (auto& [name, p] : m->named_parameters()) ...
//
// Layers are in linear.h, conv.h, batchnorm.h, activation.h, container.h, residual.h;
// losses.h, init.h, zoo.h and spec.h sit beside them. layers.h includes them all.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"

namespace gs::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module : public std::enable_shared_from_this<Module> {
 public:
  Module() = default;
  Module(const Module&) = delete;  // modules own tensors and children: share them through ModulePtr
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  virtual Tensor forward(const Tensor& x) = 0;
  // Runs forward inside a ScopeGuard named as the parent registered this module, so tape
  // entries and error messages carry paths like "features.3". Forward hooks run afterwards.
  Tensor operator()(const Tensor& x);

  virtual std::string type_name() const = 0;             // "Conv2d"
  virtual std::string extra_repr() const { return ""; }  // "1, 32, kernel_size=(3, 3), padding=(1, 1)"
  std::string repr() const;                              // PyTorch-like multi-line text of the tree

  // ---- traversal (pre-order: own tensors first, then each child's, as PyTorch) ----
  // named_parameters drops repeats of a shared tensor (so an optimizer steps it once).
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  // "" for this module, then "features", "features.0", ... (needs this module to be owned by a shared_ptr).
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules();
  // The child registered as `name` (or a dotted path "3.downsample.0"); throws listing the children.
  std::shared_ptr<Module> child(const std::string& path) const;

  // ---- state ----
  // Parameters and buffers, in PyTorch's key order. The tensors are the module's own (not copies).
  NamedTensors state_dict() const;
  // Copies values in under no_grad. Every problem is checked before anything is copied, and all of
  // them are reported in one error: missing / unexpected keys (strict only), shape or dtype mismatch
  // (always; the message names the key and both shapes / dtypes).
  void load_state_dict(const NamedTensors& state, bool strict = true);

  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();  // every parameter's .grad becomes undefined
  // Moves parameters and buffers to `device` (cpu or cuda:N). Tensors change in place, so handles
  // held elsewhere (layer members, optimizers) follow.
  void to(Device device);
  // Where the module's tensors are: the device of its first parameter or buffer (cpu if none).
  Device device() const;
  // Converts floating parameters and buffers (i64 buffers stay) in place; gradients are dropped.
  // Used by gradcheck (f64) and mixed-precision experiments.
  void to(DType dtype);
  int64_t num_parameters() const;

  // The name this module was registered under in its parent ("" for a root).
  const std::string& name_in_parent() const { return name_in_parent_; }

  // Called after every forward through operator(): (module, input, output). Returns an id.
  using ForwardHook = std::function<void(Module& module, const Tensor& input, const Tensor& output)>;
  int register_forward_hook(ForwardHook hook);
  void remove_forward_hook(int id);
  bool has_forward_hooks() const { return !forward_hooks_.empty(); }
  // Called with the gradient of this module's output during backward (the output of each call
  // through operator() made while the hook was registered; removal takes effect at once, even for
  // graphs already recorded). Returns an id; ids are unique across both kinds of module hook.
  using BackwardHook = std::function<void(Module& module, const Tensor& grad_output)>;
  int register_backward_hook(BackwardHook hook);
  void remove_backward_hook(int id);

 protected:
  // Sets requires_grad and names the tensor in AutogradMeta::name (the full dotted path once the
  // module is registered in a parent). Returns a reference that stays valid for the module's life.
  Tensor& register_parameter(const std::string& name, Tensor t);
  Tensor& register_buffer(const std::string& name, Tensor t);
  template <class M> std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    attach_child(name, m);
    return m;
  }
  // Replaces a registered child (Sequential uses it to keep children ordered and unique).
  void attach_child(const std::string& name, std::shared_ptr<Module> m);

 private:
  void collect(const std::string& prefix, bool recurse, bool params, bool buffers, NamedTensors& out) const;
  void name_parameters(const std::string& prefix);

  // deque: references returned by register_* stay valid as more are added.
  std::deque<std::pair<std::string, Tensor>> parameters_;
  std::deque<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::string name_in_parent_;
  bool training_ = true;
  std::vector<std::pair<int, ForwardHook>> forward_hooks_;
  std::vector<std::pair<int, BackwardHook>> backward_hooks_;
  int next_hook_id_ = 0;
};

using ModulePtr = std::shared_ptr<Module>;

// Python's repr of a float ("1e-05", "0.1", "1.0"), so extra_repr() reads like PyTorch's.
std::string py_float(double v);
std::string py_bool(bool v);  // "True" / "False"

}  // namespace gs::nn
