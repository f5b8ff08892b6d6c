// Activation checkpointing: a checkpoint's first run ties its entries to a Recomputation and drops
// their saved tensors; backward runs the function a second time to refill them (see checkpoint.h).
#include "autograd/checkpoint.h"

#include <array>

#include "tensor/random.h"

namespace gs {

// What a checkpoint keeps to run its function again: the function, its inputs' data, the ops its
// first run recorded and the generator states its random ops drew from.
struct Recomputation {
  CheckpointFn fn;
  std::vector<Tensor> inputs;  // detached: the data only
  std::vector<bool> input_requires_grad;
  std::vector<OpId> ops;  // the first run's entries, in order
  std::vector<std::pair<Generator*, std::array<uint64_t, 4>>> draws;
  // Filled by a second run, taken entry by entry by backward.
  std::vector<std::vector<Tensor>> saved;
  std::vector<bool> present;
};

namespace {

enum class Run { None, First, Second };
struct RunState {
  Run run = Run::None;
  std::shared_ptr<Recomputation> region;
  size_t next_entry = 0, next_draw = 0;
  std::vector<std::pair<Generator*, std::array<uint64_t, 4>>> generators_before;  // second run: to put back
};
thread_local RunState g_run;
// Refilled since the last end_pass. Weak: a region (its inputs, whatever saved tensors backward
// has not taken yet) is freed as soon as the last of its entries has run backward without
// retain_graph, not at the end of the pass: a long backward would otherwise hold every segment.
thread_local std::vector<std::weak_ptr<Recomputation>> g_refilled;

// Sets the run state for a scope; the previous one comes back on exit, exceptions included.
class RunScope {
 public:
  RunScope(Run run, std::shared_ptr<Recomputation> region) : previous_(std::move(g_run)) {
    g_run = RunState{};
    g_run.run = run;
    g_run.region = std::move(region);
  }
  ~RunScope() {
    for (auto it = g_run.generators_before.rbegin(); it != g_run.generators_before.rend(); ++it) {
      it->first->set_state(it->second);
    }
    g_run = std::move(previous_);
  }
  RunScope(const RunScope&) = delete;
  RunScope& operator=(const RunScope&) = delete;

 private:
  RunState previous_;
};

void run_again(const std::shared_ptr<Recomputation>& region) {
  Recomputation& r = *region;
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < r.inputs.size(); ++i) {
    Tensor x = r.inputs[i].defined() ? r.inputs[i].detach() : Tensor();
    if (x.defined() && r.input_requires_grad[i]) x.set_requires_grad(true);
    inputs.push_back(x);
  }
  r.saved.assign(r.ops.size(), {});
  r.present.assign(r.ops.size(), false);
  {
    RunScope scope(Run::Second, region);
    EnableGradGuard recording;  // the second run records, to learn the saved tensors
    r.fn(inputs);
    GS_CHECK(g_run.next_entry == r.ops.size(),
             "checkpoint: the function's second run (in backward) recorded %zu ops, the first recorded %zu; "
             "a checkpointed function must record the same ops each time it runs",
             g_run.next_entry, r.ops.size());
    GS_CHECK(g_run.next_draw == r.draws.size(),
             "checkpoint: the function's second run drew random numbers %zu times, the first %zu times",
             g_run.next_draw, r.draws.size());
  }
  r.present.assign(r.ops.size(), true);
  g_refilled.push_back(region);
}

}  // namespace

std::vector<Tensor> checkpoint(CheckpointFn fn, const std::vector<Tensor>& inputs) {
  GS_CHECK(static_cast<bool>(fn), "checkpoint: no function given");
  if (!GradMode::is_enabled() || g_run.run != Run::None) return fn(inputs);  // nothing to save, or nested
  auto region = std::make_shared<Recomputation>();
  region->fn = fn;
  for (const Tensor& x : inputs) {
    region->inputs.push_back(x.defined() ? x.detach() : Tensor());
    region->input_requires_grad.push_back(x.defined() && x.requires_grad());
  }
  RunScope scope(Run::First, region);
  return fn(inputs);
}

Tensor checkpoint(std::function<Tensor(const Tensor&)> fn, const Tensor& input) {
  GS_CHECK(static_cast<bool>(fn), "checkpoint: no function given");
  auto wrapped = [fn = std::move(fn)](const std::vector<Tensor>& in) { return std::vector<Tensor>{fn(in[0])}; };
  return checkpoint(CheckpointFn(wrapped), std::vector<Tensor>{input})[0];
}

bool is_recomputing() { return g_run.run == Run::Second; }

const std::vector<Tensor>& checkpoint_inputs(const Entry& entry) {
  static const std::vector<Tensor> none;
  return entry.recompute ? entry.recompute->inputs : none;
}

void checkpoint_random_draw(Generator& generator) {
  if (g_run.run == Run::None) return;
  Recomputation& r = *g_run.region;
  if (g_run.run == Run::First) {
    r.draws.emplace_back(&generator, generator.state());
    return;
  }
  const size_t k = g_run.next_draw++;
  GS_CHECK(k < r.draws.size() && r.draws[k].first == &generator,
           "checkpoint: the function's second run drew random numbers where the first did not (draw %zu of %zu)", k,
           r.draws.size());
  bool noted = false;
  for (auto& [g, state] : g_run.generators_before) noted = noted || g == &generator;
  if (!noted) g_run.generators_before.emplace_back(&generator, generator.state());
  generator.set_state(r.draws[k].second);
}

namespace checkpoint_detail {

bool adopt(Entry& entry, std::vector<Tensor>& saved) {
  if (g_run.run == Run::None) return false;
  Recomputation& r = *g_run.region;
  if (g_run.run == Run::First) {
    entry.recompute = g_run.region;
    entry.recompute_index = static_cast<int64_t>(r.ops.size());
    r.ops.push_back(entry.op);
    saved.clear();
    return false;
  }
  const size_t k = g_run.next_entry++;
  GS_CHECK(k < r.ops.size() && r.ops[k] == entry.op,
           "checkpoint: the function's second run (in backward) recorded %s as its op %zu, where the first recorded "
           "%s; a checkpointed function must record the same ops each time it runs",
           op_name(entry.op), k, k < r.ops.size() ? op_name(r.ops[k]) : "nothing");
  r.saved[k] = std::move(saved);
  return true;
}

std::vector<Tensor> take_saved(Entry& entry) {
  const std::shared_ptr<Recomputation> region = entry.recompute;
  const size_t k = static_cast<size_t>(entry.recompute_index);
  if (region->present.size() <= k || !region->present[k]) {
    GS_CHECK(g_run.run == Run::None,
             "checkpoint: backward reached a checkpointed op while a checkpoint's function "
             "was running; call backward outside the function");
    run_again(region);
  }
  region->present[k] = false;
  return std::move(region->saved[k]);
}

void end_pass() {
  for (auto& weak : g_refilled) {
    if (auto region = weak.lock()) {
      region->saved.clear();
      region->present.clear();
    }
  }
  g_refilled.clear();
}

}  // namespace checkpoint_detail

}  // namespace gs
