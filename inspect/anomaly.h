// NaN/Inf origin: watches every tape entry, forward (its outputs) and backward (the input
// gradients it produced), and stops at the first one whose result is non-finite, naming the op,
// the module path, the step, and the statistics of what went in.
//
//   inspect::AnomalyDetector detector;            // installs tape hooks; removes them when destroyed
//   detector.set_step(step);                      // before each forward
//   Tensor y = model(x);                          // throws inspect::AnomalyError at the first NaN/Inf:
//   // "non-finite forward output at step 3: log (2.act) #41 ... input 0 ...: finite, min -1.2 ..."
//
// The check is a vectorised bit test per output (stats.h all_finite); statistics are computed only
// for the report. Unlike PyTorch's anomaly mode it also checks the forward pass, and it keeps no
// stack traces. The detector never changes a value it reads.
//
// A forward output is checked when the next op is recorded, when backward starts, or at flush(),
// not at once: a probe that summarises a module's output anyway may vouch() for it meanwhile, so
// the output is read once, not twice. Pending outputs are always checked before anything recorded
// later, so the entry reported is still the first one whose output is non-finite; the error is
// thrown from the next op (or flush), before any op downstream of it is reported.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "autograd/tape.h"
#include "tensor/error.h"

namespace gs::inspect {

struct AnomalyReport {
  bool backward = false;  // found in a backward formula's input gradient (else a forward output)
  std::string op;         // "log"
  std::string module;     // "features.3" ("" outside any module)
  int64_t step = -1;
  int64_t entry = -1;     // tape sequence number
  int output_index = 0;   // which output (forward) or which input's gradient (backward)
  std::string output;     // statistics of the non-finite tensor
  // One line per input (forward: the values; backward: the incoming gradients, then the saved
  // tensors the formula used), each saying whether it was already non-finite.
  std::vector<std::string> inputs;
  std::vector<int> non_finite_inputs;  // indices into `inputs` that were already non-finite
  std::string message() const;
};

class AnomalyError : public Error {
 public:
  explicit AnomalyError(AnomalyReport report) : Error(report.message()), report_(std::move(report)) {}
  const AnomalyReport& report() const { return report_; }

 private:
  AnomalyReport report_;
};

class AnomalyDetector {
 public:
  // throw_on_first: throw AnomalyError from inside the op (forward) or backward that produced the
  // first non-finite value; otherwise only record it (first()).
  explicit AnomalyDetector(bool throw_on_first = true);
  ~AnomalyDetector();
  AnomalyDetector(const AnomalyDetector&) = delete;
  AnomalyDetector& operator=(const AnomalyDetector&) = delete;

  // Names parameters in reports and lets the report show their statistics.
  void watch_parameters(const std::vector<std::pair<std::string, Tensor>>& named);
  void set_step(int64_t step);        // checks what is pending; forgets the previous step's outputs
  void flush();                       // checks the forward outputs still pending
  // A probe read `output` (the pending entry's) and found it finite or not: no second read.
  void vouch(const Tensor& output, bool finite);
  void set_enabled(bool enabled) { enabled_ = enabled; }
  bool enabled() const { return enabled_; }
  const std::optional<AnomalyReport>& first() const { return first_; }
  void reset() { first_.reset(); }

 private:
  void on_forward(const Entry& entry, const std::vector<Tensor>& outputs);
  void on_backward(const Entry& entry, const std::vector<Tensor>& grad_outputs, const std::vector<Tensor>& grad_inputs);
  std::string describe_input(const std::shared_ptr<AutogradMeta>& meta, bool& non_finite) const;
  void report_forward(const Entry& entry, const std::vector<Tensor>& outputs, size_t o);
  void found(AnomalyReport report);

  struct Pending {  // the last recorded entry's outputs, not yet checked
    std::shared_ptr<Entry> entry;
    std::vector<Tensor> outputs;
    std::vector<bool> vouched;
  };
  std::optional<Pending> pending_;

  struct Produced {  // a tracked output: which entry made it
    std::weak_ptr<AutogradMeta> meta;
    int64_t seq;
    std::string what;  // "#12 conv2d (0)"
  };
  bool throw_on_first_;
  bool enabled_ = true;
  int64_t step_ = -1;
  int forward_hook_ = -1, backward_hook_ = -1;
  std::optional<AnomalyReport> first_;
  std::unordered_map<const AutogradMeta*, Produced> produced_;
  std::unordered_map<const AutogradMeta*, std::pair<std::string, Tensor>> parameters_;
};

}  // namespace gs::inspect
