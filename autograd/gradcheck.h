// gradcheck: compares the tape's gradients with central finite differences, in f64.
//
//   auto r = gs::gradcheck([](const std::vector<Tensor>& in) { return gs::tanh(in[0] * in[1]); },
//                          {x, y});            // x, y: f64 tensors that require grad
//   if (!r.ok) std::cerr << r.message;         // names the input, the element and both values
//
// Non-scalar outputs are reduced as sum(out * w) with fixed random weights w, which checks a
// vector-Jacobian product in one pass. Defaults follow torch.autograd.gradcheck.
//
// gradgradcheck (torch.autograd.gradgradcheck) checks the create_graph gradients: with
// L = sum(fn(x) * w) for a random seed w that requires grad, it gradchecks
// (x, w) -> sum_i sum(dL/dx_i * v_i) (fixed random v_i), so second derivatives in x and the
// backward's dependence on its seed are both compared with central differences. Before that, the
// create_graph gradients' values are compared with a plain backward's.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace gs {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  uint64_t seed = 1234;
};

struct GradcheckResult {
  bool ok = true;
  std::string message;     // on failure: input, flat index, multi-index, analytic vs numeric
  double max_abs_error = 0;
  size_t worst_input = 0;
  int64_t worst_index = -1;
  double analytic = 0, numeric = 0;
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;
GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs, GradcheckOptions options = {});
GradcheckResult gradgradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs, GradcheckOptions options = {});

}  // namespace gs
