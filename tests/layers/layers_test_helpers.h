// Helpers for the layers tests: gradcheck through a module's parameters, and small fixtures.
#pragma once
#include <memory>
#include <tuple>
#include <vector>

#include "layers/layers.h"
#include "tests/helpers.h"

namespace gs::test {

// Calls `module` on in[0] with parameter values taken from in[1..] (one per parameter, in
// parameters() order). Analytic passes hand over the parameters themselves; gradcheck's
// perturbed copies are swapped into the parameters' storage for the one call, then put back.
inline Tensor call_with_params(nn::Module& module, const std::vector<Tensor>& in) {
  std::vector<Tensor> params = module.parameters();
  EXPECT_EQ(in.size(), params.size() + 1);
  struct Saved {
    Tensor param;
    std::shared_ptr<Storage> storage;
    Strides strides;
    int64_t offset;
    std::shared_ptr<AutogradMeta> autograd;
  };
  std::vector<Saved> saved;
  for (size_t k = 0; k < params.size(); ++k) {
    const Tensor& value = in[k + 1];
    if (value.is_same(params[k])) continue;
    TensorImpl& impl = params[k].impl();
    saved.push_back({params[k], impl.storage, impl.strides, impl.offset, impl.autograd});
    impl.storage = value.storage();
    impl.strides = value.strides();
    impl.offset = value.offset();
    // The value's autograd state too, so that gradients taken inside the call (gradgradcheck)
    // reach the value, not the parameter it stands in for.
    if (value.requires_grad()) impl.autograd = value.impl().autograd;
  }
  struct Restore {
    std::vector<Saved>& saved;
    ~Restore() {
      for (auto& s : saved) {
        s.param.impl().storage = s.storage;
        s.param.impl().strides = s.strides;
        s.param.impl().offset = s.offset;
        s.param.impl().autograd = s.autograd;
      }
    }
  } restore{saved};
  return module(in[0]);
}

// gradcheck of `module` (converted to f64) w.r.t. its input x (f64, requires grad) and every parameter.
inline ::testing::AssertionResult module_gradcheck(const std::shared_ptr<nn::Module>& module, const Tensor& x,
                                                   GradcheckOptions opt = {}) {
  module->to(DType::F64);
  std::vector<Tensor> inputs{x};
  for (auto& p : module->parameters()) inputs.push_back(p);
  return gradcheck_ok([module](const std::vector<Tensor>& in) { return call_with_params(*module, in); }, inputs, opt);
}

inline std::vector<std::string> keys_of(const nn::NamedTensors& named) {
  std::vector<std::string> keys;
  for (auto& [k, t] : named) keys.push_back(k);
  return keys;
}

}  // namespace gs::test
