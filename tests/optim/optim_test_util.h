// Small helpers for the optim tests: f64 parameters with given values and grads.
#pragma once
#include <vector>

#include "optim/optim.h"
#include "tests/helpers.h"

namespace gs::test {

inline Tensor param64(const std::vector<double>& values) {
  return from_vector(values, {static_cast<int64_t>(values.size())}, {DType::F64}).set_requires_grad(true);
}
inline void set_grad64(Tensor& p, const std::vector<double>& values) {
  p.set_grad(from_vector(values, {static_cast<int64_t>(values.size())}, {DType::F64}));
}
inline void expect_values(const Tensor& t, const std::vector<double>& expected, double tol = 1e-12,
                          const std::string& what = "") {
  expect_close(t, from_vector(expected, {static_cast<int64_t>(expected.size())}, {DType::F64}), tol, what);
}

}  // namespace gs::test
