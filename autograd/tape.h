// The tape: a Wengert list of executed ops. Each differentiable op appends an Entry
// {op, inputs, outputs, saved tensors, backward, module scope path}; backward(loss) walks the
// entries that lead to `loss` in reverse order and accumulates gradients; leaves get .grad.
//
// Tensors hold their producing entry, entries hold their inputs' autograd state, so memory
// follows the tensors: an entry lives while something that needs it does. The global list
// (tape_entries) only orders and shows them. Saved tensors are stored detached (data only),
// which keeps the ownership one-way.
//
// Double backward: backward/grad with create_graph=true run every formula with recording on,
// on saved tensors re-attached to the graph (an input's or output's autograd state, kept by the
// entry), so the gradients are themselves differentiable: Hessian-vector products, gradient
// penalties, gradgradcheck. Formulas are written in recorded ops; where a fused kernel is faster
// it is taken only when !create_graph(), next to the recorded form. A backward whose value is not
// a recorded op of its inputs (a conv's transposed conv, a pool's scatter) records a derivative
// entry (record_derivative) that shows as "<op>_backward" on the tape, with its own backward.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/op_list.h"
#include "tensor/tensor.h"

namespace gs {

// Gradient mode: explicit thread-local state. NoGradGuard disables recording in a scope.
struct GradMode {
  static bool is_enabled();
  static void set_enabled(bool enabled);
};
// Sets the mode for a scope and restores the previous one; NoGradGuard is torch.no_grad,
// EnableGradGuard torch.enable_grad (recording on, whatever the surrounding mode).
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled) : previous_(GradMode::is_enabled()) { GradMode::set_enabled(enabled); }
  ~GradModeGuard() { GradMode::set_enabled(previous_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};
class NoGradGuard : public GradModeGuard {
 public:
  NoGradGuard() : GradModeGuard(false) {}
};
class EnableGradGuard : public GradModeGuard {
 public:
  EnableGradGuard() : GradModeGuard(true) {}
};

// What a backward formula sees: gradients of the outputs, the saved tensors, and where to
// accumulate the gradients of the inputs.
class BackwardContext {
 public:
  const Tensor& grad_output(size_t i = 0) const { return grad_outputs_.at(i); }
  // With create_graph, a saved input or output comes back attached to the graph.
  const Tensor& saved(size_t i) const { return saved_.at(i); }
  bool needs_grad(size_t input) const { return needs_.at(input); }
  // True in a backward that records (create_graph): formulas then skip unrecorded fast paths.
  bool create_graph() const { return create_graph_; }
  // input_grad += grad (summed down to the input's shape if grad is a broadcast of it)
  void accumulate(size_t input, const Tensor& grad);

  std::vector<Tensor> grad_outputs_;
  std::vector<Tensor> saved_;
  std::vector<bool> needs_;
  std::vector<Shape> input_shapes_;
  std::vector<Tensor> grad_inputs_;
  bool create_graph_ = false;
};

using BackwardFn = std::function<void(BackwardContext&)>;

struct Recomputation;  // autograd/checkpoint.cpp

struct Entry {
  int64_t seq = 0;  // position on the tape
  OpId op;
  std::string scope;  // module path active when the op ran
  std::vector<std::shared_ptr<AutogradMeta>> inputs;  // null for inputs that need no grad
  std::vector<Shape> input_shapes;
  std::vector<std::weak_ptr<AutogradMeta>> outputs;
  std::vector<Shape> output_shapes;
  DType dtype = DType::F32;
  Device device;
  std::vector<Tensor> saved;
  // Where each saved tensor came from, to re-attach it under create_graph: kSavedConstant, an
  // input's index, or kSavedOutput0 - j for output j.
  std::vector<int> saved_source;
  static constexpr int kSavedConstant = -1, kSavedOutput0 = -2;
  bool derivative = false;  // recorded by a backward formula under create_graph (record_derivative)
  BackwardFn backward;
  bool freed = false;  // backward ran without retain_graph: saved tensors are gone
  // Recorded inside gs::checkpoint (autograd/checkpoint.h): `saved` stays empty until backward
  // runs the checkpoint's function again, and is emptied again after this entry's backward.
  std::shared_ptr<Recomputation> recompute;
  int64_t recompute_index = -1;
};

// Records `op` if grad mode is on and any input requires grad. Saved tensors are detached.
// Outputs become non-leaf tensors that require grad. Returns the entry (or null).
std::shared_ptr<Entry> record(OpId op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                              std::vector<Tensor> saved, BackwardFn backward);
// The same, for a value computed inside a backward formula under create_graph: the entry is
// marked as a derivative ("<op>_backward" on the tape). Nothing is recorded in a plain backward.
std::shared_ptr<Entry> record_derivative(OpId op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                                         std::vector<Tensor> saved, BackwardFn backward);
bool any_requires_grad(const std::vector<Tensor>& inputs);
// "mul", or "mul_backward" for a derivative entry.
std::string entry_name(const Entry& entry);

// Runs the backward pass from `output`. A missing seed means ones (only for one-element outputs).
// create_graph (torch's create_graph=True) records the pass, so the gradients (.grad of leaves,
// or grad()'s results) require grad and can be differentiated again; it implies retain_graph.
void backward(const Tensor& output, const Tensor& seed = Tensor(), bool retain_graph = false,
              bool create_graph = false);
// Gradients of `outputs` w.r.t. `inputs` without touching the inputs' .grad (for gradcheck and
// probes; as torch 1.13, a retain_grad tensor on the way still gets its .grad). As
// torch.autograd.grad, only the entries on a path to `inputs` run, and are freed, asked only for
// the gradients on such a path: tensor hooks and backward hooks elsewhere do not fire. An input
// the output does not depend on gets zeros (torch's allow_unused=True, materialised); one given
// twice gets its gradient at both positions.
std::vector<Tensor> grad(const Tensor& output, const std::vector<Tensor>& inputs, const Tensor& seed = Tensor(),
                         bool retain_graph = false, bool create_graph = false);

// Hook on a tensor's gradient (runs when the gradient is complete, before it flows on). Returns an
// id for remove_hook(t, id); removing twice, or a hook of another tensor, does nothing.
int register_hook(Tensor& t, GradHook hook);
void remove_hook(Tensor& t, int id);

// Hook points for inspect/: called for every recorded entry (forward) and every entry whose
// backward ran (with the output gradients and the input gradients it produced).
using ForwardHook = std::function<void(const Entry& entry, const std::vector<Tensor>& outputs)>;
using BackwardHook = std::function<void(const Entry& entry, const std::vector<Tensor>& grad_outputs,
                                        const std::vector<Tensor>& grad_inputs)>;
int add_forward_hook(ForwardHook hook);
int add_backward_hook(BackwardHook hook);
void remove_hook(int id);

// The live entries in tape order (for `gradscope graph` and teaching).
std::vector<std::shared_ptr<Entry>> tape_entries();
std::string tape_str();  // one line per live entry: "#12 mul (fc1) [64,10] <- [64,10], [10]"

}  // namespace gs
