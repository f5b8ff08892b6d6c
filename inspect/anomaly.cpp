// The NaN/Inf origin detector: tape hooks that test every output and every input gradient.
#include "inspect/anomaly.h"

#include "inspect/stats.h"

namespace gs::inspect {

std::string AnomalyReport::message() const {
  std::string text = format("non-finite %s at step %lld: %s%s (%s) tape entry #%lld, %s %d: %s",
                            backward ? "gradient in backward" : "forward output", (long long)step, op.c_str(),
                            backward ? " backward" : "", module.empty() ? "no module" : module.c_str(), (long long)entry,
                            backward ? "gradient of input" : "output", output_index, output.c_str());
  for (const auto& line : inputs) text += "\n  " + line;
  if (non_finite_inputs.empty()) {
    text += backward ? "\n  every incoming gradient and saved tensor was finite: this backward formula made it"
                     : "\n  every input was finite: this op made it";
  }
  return text;
}

AnomalyDetector::AnomalyDetector(bool throw_on_first) : throw_on_first_(throw_on_first) {
  forward_hook_ = add_forward_hook([this](const Entry& e, const std::vector<Tensor>& outs) { on_forward(e, outs); });
  backward_hook_ = add_backward_hook([this](const Entry& e, const std::vector<Tensor>& gout,
                                            const std::vector<Tensor>& gin) { on_backward(e, gout, gin); });
}

AnomalyDetector::~AnomalyDetector() {
  remove_hook(forward_hook_);
  remove_hook(backward_hook_);
}

void AnomalyDetector::watch_parameters(const std::vector<std::pair<std::string, Tensor>>& named) {
  for (const auto& [name, t] : named) {
    if (t.impl().autograd) parameters_[t.impl().autograd.get()] = {name, t};
  }
}

void AnomalyDetector::set_step(int64_t step) {
  flush();
  step_ = step;
  produced_.clear();
}

void AnomalyDetector::flush() {
  if (!pending_) return;
  Pending pending = std::move(*pending_);
  pending_.reset();
  if (first_) return;
  for (size_t o = 0; o < pending.outputs.size(); ++o) {
    if (!pending.vouched[o] && !all_finite(pending.outputs[o])) {
      report_forward(*pending.entry, pending.outputs, o);
      return;
    }
  }
}

void AnomalyDetector::vouch(const Tensor& output, bool finite) {
  if (!pending_ || !output.defined()) return;
  for (size_t o = 0; o < pending_->outputs.size(); ++o) {
    if (pending_->outputs[o].impl_ptr() != output.impl_ptr()) continue;
    if (finite) {
      pending_->vouched[o] = true;
    } else if (!first_) {
      Pending pending = std::move(*pending_);
      pending_.reset();
      // An earlier output of the same entry may be the first non-finite one.
      for (size_t k = 0; k < o; ++k) {
        if (!pending.vouched[k] && !all_finite(pending.outputs[k])) {
          report_forward(*pending.entry, pending.outputs, k);
          return;
        }
      }
      report_forward(*pending.entry, pending.outputs, o);
    }
    return;
  }
}

namespace {
std::string tensor_line(const std::string& label, const Tensor& t, bool& non_finite) {
  TensorStats s = tensor_stats(t, false);
  non_finite = s.non_finite() > 0;
  return format("%s %s: %s, %s", label.c_str(), shape_str(t.shape()).c_str(),
                non_finite ? "ALREADY NON-FINITE" : "finite", s.str().c_str());
}
}  // namespace

std::string AnomalyDetector::describe_input(const std::shared_ptr<AutogradMeta>& meta, bool& non_finite) const {
  non_finite = false;
  if (!meta) return "needs no grad (data or constant; see the saved tensors below)";
  if (auto p = parameters_.find(meta.get()); p != parameters_.end()) {
    return tensor_line("parameter " + p->second.first, p->second.second, non_finite);
  }
  if (auto it = produced_.find(meta.get()); it != produced_.end() && it->second.meta.lock() == meta) {
    return "output of " + it->second.what + ": finite (checked when it was made)";
  }
  return meta->name.empty() ? "a leaf tensor that requires grad" : "leaf " + meta->name;
}

void AnomalyDetector::found(AnomalyReport report) {
  if (!first_) first_ = report;
  if (throw_on_first_) throw AnomalyError(std::move(report));
}

namespace {
// The report's head: which entry, which output (forward) or input gradient (backward), its statistics.
AnomalyReport report_head(const Entry& entry, bool backward, int64_t step, size_t index, const Tensor& bad) {
  AnomalyReport r;
  r.backward = backward;
  r.op = entry_name(entry);
  r.module = entry.scope;
  r.step = step;
  r.entry = entry.seq;
  r.output_index = int(index);
  r.output = format("%s %s", shape_str(bad.shape()).c_str(), tensor_stats(bad, false).str().c_str());
  return r;
}

void add_line(AnomalyReport& r, std::string line, bool non_finite) {
  r.inputs.push_back(std::move(line));
  if (non_finite) r.non_finite_inputs.push_back(int(r.inputs.size() - 1));
}

// The saved tensors the formula used. In backward the entry still holds them while its hooks
// run (they are cleared afterwards).
void add_saved_lines(AnomalyReport& r, const Entry& entry) {
  for (size_t i = 0; i < entry.saved.size(); ++i) {
    if (!entry.saved[i].defined() || entry.saved[i].dtype() == DType::I64) continue;
    bool bad = false;
    std::string line = tensor_line(format("saved %zu", i), entry.saved[i], bad);
    add_line(r, std::move(line), bad);
  }
}
}  // namespace

void AnomalyDetector::report_forward(const Entry& entry, const std::vector<Tensor>& outputs, size_t o) {
  AnomalyReport r = report_head(entry, false, step_, o, outputs[o]);
  for (size_t i = 0; i < entry.inputs.size(); ++i) {
    bool bad = false;
    std::string line = format("input %zu %s: ", i, shape_str(entry.input_shapes[i]).c_str()) +
                       describe_input(entry.inputs[i], bad);
    add_line(r, std::move(line), bad);
  }
  add_saved_lines(r, entry);
  found(std::move(r));
}

void AnomalyDetector::on_forward(const Entry& entry, const std::vector<Tensor>& outputs) {
  if (!enabled_ || first_) return;
  flush();  // the entry before this one first
  if (first_) return;
  std::string what = format("#%lld %s (%s)", (long long)entry.seq, entry_name(entry).c_str(), entry.scope.c_str());
  std::shared_ptr<Entry> owner;
  for (const auto& out : outputs) {
    const auto& meta = out.impl().autograd;
    if (meta) produced_[meta.get()] = {meta, entry.seq, what};
    if (meta && meta->entry.get() == &entry) owner = meta->entry;
  }
  if (owner) {
    pending_ = Pending{owner, outputs, std::vector<bool>(outputs.size(), false)};
    return;
  }
  for (size_t o = 0; o < outputs.size(); ++o) {  // no handle to keep the entry by: check now
    if (!all_finite(outputs[o])) {
      report_forward(entry, outputs, o);
      return;
    }
  }
}

void AnomalyDetector::on_backward(const Entry& entry, const std::vector<Tensor>& grad_outputs,
                                  const std::vector<Tensor>& grad_inputs) {
  if (!enabled_ || first_) return;
  flush();  // the forward's last outputs (the loss) before any gradient
  for (size_t i = 0; i < grad_inputs.size(); ++i) {
    if (!grad_inputs[i].defined() || all_finite(grad_inputs[i])) continue;
    AnomalyReport r = report_head(entry, true, step_, i, grad_inputs[i]);
    for (size_t o = 0; o < grad_outputs.size(); ++o) {
      bool bad = false;
      std::string line = tensor_line(format("incoming gradient of output %zu", o), grad_outputs[o], bad);
      add_line(r, std::move(line), bad);
    }
    add_saved_lines(r, entry);
    found(std::move(r));
    return;
  }
}

}  // namespace gs::inspect
