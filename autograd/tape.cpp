// The tape and the backward engine.
#include "autograd/tape.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <sstream>
#include <unordered_set>

#include "autograd/checkpoint.h"
#include "autograd/ops.h"
#include "tensor/raw_ops.h"
#include "tensor/scope.h"

namespace gs {

namespace {
thread_local bool g_grad_enabled = true;
thread_local std::vector<std::weak_ptr<Entry>> g_tape;
thread_local size_t g_tape_live_after_prune = 0;
// Global, not thread-local: entries recorded on different threads still order correctly.
std::atomic<int64_t> g_next_seq{0};

struct HookRegistry {
  int next_id = 1;
  std::map<int, ForwardHook> forward;
  std::map<int, BackwardHook> backward;
};
HookRegistry& hooks() {
  static HookRegistry r;
  return r;
}

// PyTorch-style grad_fn names for printing: OpId::Mul -> "MulBackward0".
constexpr const char* kOpEnumNames[] = {
#define GS_OP_ENUM_NAME(name, str, kind) #name,
    GS_OP_LIST(GS_OP_ENUM_NAME)
#undef GS_OP_ENUM_NAME
};
std::string grad_fn_name(const AutogradMeta& meta) {
  if (!meta.entry) return "";
  return std::string(kOpEnumNames[static_cast<int>(meta.entry->op)]) +
         (meta.entry->derivative ? "BackwardBackward0" : "Backward0");
}
const bool g_namer_registered = (set_grad_fn_namer(&grad_fn_name), true);

void prune_tape() {
  if (g_tape.size() < 2 * g_tape_live_after_prune + 1024) return;
  std::erase_if(g_tape, [](const std::weak_ptr<Entry>& e) { return e.expired(); });
  g_tape_live_after_prune = g_tape.size();
}

// Adds g into a pending gradient slot without modifying tensors others may hold; recorded when
// the pass creates a graph.
void add_pending(Tensor& slot, const Tensor& g, bool create_graph) {
  if (!slot.defined()) {
    slot = g;
  } else {
    slot = create_graph ? add(slot, g) : raw::binary(raw::BinaryOp::Add, slot, g);
  }
}

// raw::sum_to as recorded ops (sum over the broadcast dims, then reshape).
Tensor sum_to_recorded(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  GS_CHECK(x.dim() >= (int64_t)shape.size(), "sum_to: cannot sum %s down to %s", shape_str(x.shape()).c_str(),
           shape_str(shape).c_str());
  const size_t lead = x.dim() - shape.size();
  std::vector<int64_t> dims;
  for (size_t d = 0; d < (size_t)x.dim(); ++d) {
    if (d < lead || (shape[d - lead] == 1 && x.shape()[d] != 1)) dims.push_back(static_cast<int64_t>(d));
  }
  Tensor summed = dims.empty() ? x : sum(x, dims, true);
  return reshape(summed, shape);
}

// Whether nothing but its one holder sees t: not the caller's seed, another leaf's .grad, a
// retained grad or a view of saved data, and a plain dense buffer (not a 0-stride expand).
bool is_private(const Tensor& t) {
  return t.impl_ptr().use_count() == 1 && t.storage().use_count() == 1 && t.is_contiguous();
}

// A gradient of its own to keep as .grad: g when private, else a dense copy; in a create_graph
// pass the copy is recorded (a "contiguous" node), so .grad stays differentiable.
Tensor own_grad(const Tensor& g, bool create_graph) {
  if (is_private(g)) return g;
  Tensor copy = raw::clone(g);
  if (create_graph && g.requires_grad())
    record(OpId::Contiguous, {g}, {copy}, {}, [](BackwardContext& c) { c.accumulate(0, c.grad_output()); });
  return copy;
}

Tensor run_hooks(AutogradMeta& meta, Tensor g) {
  // A copy: a hook may remove itself (or others) while running.
  auto hooks_now = meta.hooks;
  for (auto& [id, hook] : hooks_now) {
    Tensor replaced = hook(g);
    if (replaced.defined()) {
      GS_CHECK(replaced.shape() == g.shape(), "hook: a gradient hook returned shape %s for a gradient of shape %s",
               shape_str(replaced.shape()).c_str(), shape_str(g.shape()).c_str());
      GS_CHECK(replaced.dtype() == g.dtype() && replaced.device() == g.device(),
               "hook: a gradient hook returned %s on %s for a gradient %s on %s (shape %s)",
               dtype_name(replaced.dtype()), replaced.device().str().c_str(), dtype_name(g.dtype()),
               g.device().str().c_str(), shape_str(g.shape()).c_str());
      g = replaced;
    }
  }
  return g;
}
}  // namespace

bool GradMode::is_enabled() { return g_grad_enabled; }
void GradMode::set_enabled(bool enabled) { g_grad_enabled = enabled; }

void BackwardContext::accumulate(size_t input, const Tensor& grad) {
  if (!needs_.at(input) || !grad.defined()) return;
  Tensor g = create_graph_ ? sum_to_recorded(grad, input_shapes_[input]) : raw::sum_to(grad, input_shapes_[input]);
  add_pending(grad_inputs_[input], g, create_graph_);
}

std::string entry_name(const Entry& entry) {
  return std::string(op_name(entry.op)) + (entry.derivative ? "_backward" : "");
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  for (auto& t : inputs) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

namespace {
std::shared_ptr<Entry> record_entry(OpId op, bool derivative, const std::vector<Tensor>& inputs,
                                    const std::vector<Tensor>& outputs, std::vector<Tensor> saved,
                                    BackwardFn backward) {
  if (!g_grad_enabled || !any_requires_grad(inputs)) return nullptr;
  auto e = std::make_shared<Entry>();
  e->seq = g_next_seq++;
  e->op = op;
  e->derivative = derivative;
  e->scope = current_scope_path();
  for (auto& t : inputs) {
    e->inputs.push_back(t.defined() && t.requires_grad() ? t.impl().autograd : nullptr);
    e->input_shapes.push_back(t.defined() ? t.shape() : Shape{});
  }
  for (auto& t : outputs) {
    AutogradMeta& meta = const_cast<Tensor&>(t).ensure_autograd_meta();
    meta.requires_grad = true;
    meta.entry = e;
    e->outputs.push_back(t.impl().autograd);
    e->output_shapes.push_back(t.shape());
  }
  if (!outputs.empty()) {
    e->dtype = outputs[0].dtype();
    e->device = outputs[0].device();
  }
  // Where each saved tensor came from (the same TensorImpl as an input or output), so that a
  // create_graph backward can re-attach it; then the stored copy is detached.
  for (auto& s : saved) {
    int source = Entry::kSavedConstant;
    if (s.defined()) {
      for (size_t i = 0; i < inputs.size() && source == Entry::kSavedConstant; ++i) {
        if (inputs[i].defined() && inputs[i].impl_ptr() == s.impl_ptr()) source = static_cast<int>(i);
      }
      for (size_t j = 0; j < outputs.size() && source == Entry::kSavedConstant; ++j) {
        if (outputs[j].impl_ptr() == s.impl_ptr()) source = Entry::kSavedOutput0 - static_cast<int>(j);
      }
      s = s.detach();
    }
    e->saved_source.push_back(source);
  }
  // A checkpoint's second run (in backward) only hands its saved tensors to the first run's entry.
  if (checkpoint_detail::adopt(*e, saved)) return e;
  e->saved = std::move(saved);
  e->backward = std::move(backward);
  prune_tape();
  g_tape.push_back(e);
  auto forward_hooks = hooks().forward;  // a copy: a hook may remove itself while running
  for (auto& [id, hook] : forward_hooks) hook(*e, outputs);
  return e;
}
}  // namespace

std::shared_ptr<Entry> record(OpId op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                              std::vector<Tensor> saved, BackwardFn backward) {
  return record_entry(op, false, inputs, outputs, std::move(saved), std::move(backward));
}

std::shared_ptr<Entry> record_derivative(OpId op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                                         std::vector<Tensor> saved, BackwardFn backward) {
  return record_entry(op, true, inputs, outputs, std::move(saved), std::move(backward));
}

namespace {

struct Engine {
  bool create_graph = false;
  std::vector<std::shared_ptr<Entry>> order;          // reverse tape order (and kept alive)
  std::vector<std::shared_ptr<AutogradMeta>> leaves;  // leaves reached
  std::vector<AutogradMeta*> touched;                 // every meta given a pending grad
  // grad(): only the entries on a path to the requested inputs run, and only the gradients of
  // the inputs on such a path are asked for (a penalty's input gradient computes no weight
  // gradients). backward() wants every leaf: prune stays false.
  bool prune = false;
  std::unordered_set<const AutogradMeta*> wanted;
  std::unordered_set<const Entry*> leading;

  bool leads(const AutogradMeta* meta) const {
    return wanted.count(meta) || (meta->entry && leading.count(meta->entry.get()));
  }
  bool needs(const std::shared_ptr<AutogradMeta>& in) const { return in && (!prune || leads(in.get())); }
  // After collect: an entry leads to the requested inputs when one of its inputs does; inputs
  // come from earlier entries, so ascending tape order sees them first.
  void mark_leading() {
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      for (auto& in : (*it)->inputs) {
        if (in && leads(in.get())) {
          leading.insert(it->get());
          break;
        }
      }
    }
  }

  void collect(const std::shared_ptr<AutogradMeta>& root) {
    std::unordered_set<Entry*> seen_entries;
    std::unordered_set<AutogradMeta*> seen_leaves;
    std::vector<std::shared_ptr<AutogradMeta>> stack{root};
    while (!stack.empty()) {
      auto meta = stack.back();
      stack.pop_back();
      if (!meta->entry) {
        if (seen_leaves.insert(meta.get()).second) leaves.push_back(meta);
        continue;
      }
      Entry* e = meta->entry.get();
      if (!seen_entries.insert(e).second) continue;
      order.push_back(meta->entry);
      for (auto& in : e->inputs) {
        if (in) stack.push_back(in);
      }
    }
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a->seq > b->seq; });
  }

  // Whether e's backward runs in this pass: every entry reached for backward(), only those on a
  // path to the requested inputs for grad() (a freed entry elsewhere is no obstacle to it).
  bool runs(const Entry* e) const { return !prune || leading.count(e); }
  void check_not_freed() const {
    for (const auto& e : order) {
      GS_CHECK(!e->freed || !runs(e.get()),
               "backward: tape entry #%lld (%s%s%s) was freed by an earlier backward; call the first backward with "
               "retain_graph=true to go through the tape twice",
               (long long)e->seq, op_name(e->op), e->scope.empty() ? "" : " in ", e->scope.c_str());
    }
  }

  void give(AutogradMeta& meta, const Tensor& g) {
    if (!meta.pending_grad.defined()) touched.push_back(&meta);
    add_pending(meta.pending_grad, g, create_graph);
  }

  void clear() {
    for (AutogradMeta* m : touched) m->pending_grad = Tensor();
    checkpoint_detail::end_pass();
  }
};

// A saved tensor attached to the graph again: the input's autograd state, or the output's (made
// anew, pointing at the entry, when the output tensor is gone). Constants stay detached.
std::vector<Tensor> attached_saved(const std::shared_ptr<Entry>& e) {
  std::vector<Tensor> out = e->saved;
  for (size_t k = 0; k < out.size(); ++k) {
    const int source = k < e->saved_source.size() ? e->saved_source[k] : Entry::kSavedConstant;
    if (!out[k].defined() || source == Entry::kSavedConstant) continue;
    std::shared_ptr<AutogradMeta> meta;
    if (source >= 0) {
      meta = e->inputs[static_cast<size_t>(source)];
    } else {
      const size_t j = static_cast<size_t>(Entry::kSavedOutput0 - source);
      meta = e->outputs[j].lock();
      if (!meta) {
        meta = std::make_shared<AutogradMeta>();
        meta->requires_grad = true;
        meta->entry = e;
        e->outputs[j] = meta;
      }
    }
    if (!meta) continue;  // an input that needs no grad: a constant of the recorded formula
    auto impl = std::make_shared<TensorImpl>(out[k].impl());
    impl->autograd = meta;
    out[k] = Tensor(impl);
  }
  return out;
}

// backward() and grad() set the grad mode for the whole pass, as torch's engine: recording on
// exactly when it creates a graph. The formulas are written in recorded ops, so a plain pass
// records nothing whatever the caller's mode, and a create_graph pass records even under a
// NoGradGuard.

// Shared by backward() and grad(): runs the pass, leaving pending grads on the metas.
void run_backward(Engine& engine, const Tensor& output, const Tensor& seed_in, bool retain_graph) {
  GS_CHECK(output.requires_grad(),
           "backward: the tensor %s does not require grad (computed under no_grad, or from inputs that need no grad)",
           shape_str(output.shape()).c_str());
  Tensor seed = seed_in;
  if (!seed.defined()) {
    GS_CHECK(output.numel() == 1,
             "backward: output of shape %s is not a scalar; pass a seed gradient of the same shape",
             shape_str(output.shape()).c_str());
    seed = ones(output.shape(), {output.dtype(), output.device()});
  }
  GS_CHECK(seed.shape() == output.shape(), "backward: seed gradient shape %s does not match output shape %s",
           shape_str(seed.shape()).c_str(), shape_str(output.shape()).c_str());
  check_same_dtype("backward", output, seed);
  auto root = output.impl().autograd;
  engine.collect(root);
  if (engine.prune) engine.mark_leading();
  engine.check_not_freed();
  engine.give(*root, seed);

  for (const std::shared_ptr<Entry>& e : engine.order) {
    BackwardContext ctx;
    bool any = false;
    for (size_t i = 0; i < e->outputs.size(); ++i) {
      auto meta = e->outputs[i].lock();
      // Taken, not copied: the gradient is freed as soon as this entry's backward is done with it,
      // not at the end of the pass (a long backward would otherwise hold every activation gradient).
      Tensor g = meta ? std::move(meta->pending_grad) : Tensor();
      if (meta) meta->pending_grad = Tensor();
      if (g.defined() && meta) {
        g = run_hooks(*meta, g);
        // retain_grad accumulates across backward calls like a leaf's .grad (out of place:
        // g flows on and may be held elsewhere).
        if (meta->retains_grad) {
          if (meta->grad.defined())
            add_pending(meta->grad, g, engine.create_graph);
          else  // a copy: g flows on (and may be the caller's seed)
            meta->grad = own_grad(g, engine.create_graph);
        }
      }
      any = any || g.defined();
      ctx.grad_outputs_.push_back(g);
    }
    if (any && engine.runs(e.get())) {
      for (size_t i = 0; i < ctx.grad_outputs_.size(); ++i) {
        if (!ctx.grad_outputs_[i].defined()) ctx.grad_outputs_[i] = zeros(e->output_shapes[i], {e->dtype, e->device});
      }
      ctx.create_graph_ = engine.create_graph;
      if (e->recompute) e->saved = checkpoint_detail::take_saved(*e);
      ctx.saved_ = engine.create_graph ? attached_saved(e) : e->saved;
      for (auto& in : e->inputs) ctx.needs_.push_back(engine.needs(in));
      ctx.input_shapes_ = e->input_shapes;
      ctx.grad_inputs_.resize(e->inputs.size());
      {
        ScopeOverride scope_for_errors(e->scope);
        e->backward(ctx);
      }
      for (size_t i = 0; i < e->inputs.size(); ++i) {
        if (ctx.needs_[i] && ctx.grad_inputs_[i].defined()) engine.give(*e->inputs[i], ctx.grad_inputs_[i]);
      }
      auto backward_hooks = hooks().backward;  // a copy: a hook may remove itself while running
      for (auto& [id, hook] : backward_hooks) hook(*e, ctx.grad_outputs_, ctx.grad_inputs_);
      if (e->recompute) e->saved.clear();  // recomputed again by a later backward
    }
    if (!retain_graph && !engine.create_graph && engine.runs(e.get())) {
      e->backward = nullptr;
      e->saved.clear();
      e->recompute.reset();
      e->freed = true;
    }
  }
}

}  // namespace

void backward(const Tensor& output, const Tensor& seed, bool retain_graph, bool create_graph) {
  GradModeGuard mode(create_graph);  // see run_backward
  Engine engine;
  engine.create_graph = create_graph;
  try {
    run_backward(engine, output, seed, retain_graph);
    if (output.is_leaf()) engine.leaves = {output.impl().autograd};
    for (auto& leaf : engine.leaves) {
      if (!leaf->pending_grad.defined() || !leaf->requires_grad) continue;
      Tensor g = run_hooks(*leaf, std::move(leaf->pending_grad));
      if (!leaf->grad.defined()) {
        // g itself only when nothing else sees it: one gradient reaching two leaves (sum(a + b)),
        // the caller's seed or a 0-stride expand would otherwise be shared by, or summed into
        // one cell of, .grad by a later backward's in-place add.
        leaf->grad = own_grad(g, create_graph);
      } else if (create_graph) {
        leaf->grad = add(leaf->grad, g);  // out of place, as torch: .grad is a graph node of its own
      } else if (is_private(leaf->grad) && !leaf->grad.requires_grad()) {
        raw::add_(leaf->grad, g);
      } else {
        // .grad is held elsewhere too (a gradient penalty's graph saved it) or is a graph node:
        // adding in place would change what they saw.
        leaf->grad = raw::binary(raw::BinaryOp::Add, leaf->grad, g);
      }
    }
  } catch (...) {
    engine.clear();
    throw;
  }
  engine.clear();
}

std::vector<Tensor> grad(const Tensor& output, const std::vector<Tensor>& inputs, const Tensor& seed, bool retain_graph,
                         bool create_graph) {
  for (auto& in : inputs) {
    GS_CHECK(in.requires_grad(), "grad: an input of shape %s does not require grad", shape_str(in.shape()).c_str());
  }
  GradModeGuard mode(create_graph);  // see run_backward
  // Non-leaf inputs: capture their gradient when it is complete, before it flows on. One capture
  // per distinct tensor (an input given twice gets the same gradient twice, not twice the
  // gradient), removed by its id afterwards.
  std::vector<AutogradMeta*> metas;
  std::vector<size_t> slot_of(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    AutogradMeta* meta = inputs[i].impl().autograd.get();
    auto it = std::find(metas.begin(), metas.end(), meta);
    slot_of[i] = static_cast<size_t>(it - metas.begin());
    if (it == metas.end()) metas.push_back(meta);
  }
  std::vector<Tensor> captured(metas.size());
  std::vector<int> capture_ids;
  for (size_t k = 0; k < metas.size(); ++k) {
    capture_ids.push_back(hooks().next_id++);
    metas[k]->hooks.emplace_back(capture_ids.back(), [&captured, k, create_graph](const Tensor& g) {
      add_pending(captured[k], g, create_graph);
      return Tensor();
    });
  }
  Engine engine;
  engine.create_graph = create_graph;
  engine.prune = true;
  for (AutogradMeta* meta : metas) engine.wanted.insert(meta);
  auto cleanup = [&] {
    engine.clear();
    for (size_t k = 0; k < metas.size(); ++k)
      std::erase_if(metas[k]->hooks, [id = capture_ids[k]](const auto& h) { return h.first == id; });
  };
  try {
    run_backward(engine, output, seed, retain_graph);
    for (size_t k = 0; k < metas.size(); ++k) {
      if (!metas[k]->entry && metas[k]->pending_grad.defined())
        captured[k] = run_hooks(*metas[k], metas[k]->pending_grad);
    }
  } catch (...) {
    cleanup();
    throw;
  }
  cleanup();
  std::vector<Tensor> result(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    result[i] = captured[slot_of[i]].defined() ? captured[slot_of[i]] : zeros_like(inputs[i]);
  }
  return result;
}

int register_hook(Tensor& t, GradHook hook) {
  GS_CHECK(t.requires_grad(), "register_hook: tensor of shape %s does not require grad", shape_str(t.shape()).c_str());
  int id = hooks().next_id++;
  t.ensure_autograd_meta().hooks.emplace_back(id, std::move(hook));
  return id;
}

void remove_hook(Tensor& t, int id) {
  if (!t.defined() || !t.impl().autograd) return;
  std::erase_if(t.impl().autograd->hooks, [id](const auto& h) { return h.first == id; });
}

int add_forward_hook(ForwardHook hook) {
  int id = hooks().next_id++;
  hooks().forward[id] = std::move(hook);
  return id;
}
int add_backward_hook(BackwardHook hook) {
  int id = hooks().next_id++;
  hooks().backward[id] = std::move(hook);
  return id;
}
void remove_hook(int id) {
  hooks().forward.erase(id);
  hooks().backward.erase(id);
}

std::vector<std::shared_ptr<Entry>> tape_entries() {
  std::vector<std::shared_ptr<Entry>> out;
  for (auto& w : g_tape) {
    if (auto e = w.lock()) out.push_back(e);
  }
  return out;
}

std::string tape_str() {
  std::ostringstream os;
  for (auto& e : tape_entries()) {
    os << "#" << e->seq << " " << entry_name(*e);
    if (!e->scope.empty()) os << " (" << e->scope << ")";
    os << " ";
    for (size_t i = 0; i < e->output_shapes.size(); ++i) os << (i ? ", " : "") << shape_str(e->output_shapes[i]);
    os << " <- ";
    for (size_t i = 0; i < e->input_shapes.size(); ++i) os << (i ? ", " : "") << shape_str(e->input_shapes[i]);
    if (e->freed) os << " [freed]";
    os << "\n";
  }
  return os.str();
}

}  // namespace gs
