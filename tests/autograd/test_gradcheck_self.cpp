// gradcheck itself: it must catch a wrong backward (with a useful message), perturb strided
// inputs through their own layout, and refuse inputs it cannot check.
#include "tests/helpers.h"

using namespace gs;
using namespace gs::test;
using V = std::vector<Tensor>;

namespace {
// exp with a deliberately wrong backward (d exp = g instead of g * exp(x)).
Tensor wrong_exp(const Tensor& x) {
  Tensor out = raw::unary(raw::UnaryOp::Exp, x);
  record(OpId::Exp, {x}, {out}, {}, [](BackwardContext& c) { c.accumulate(0, c.grad_output()); });
  return out;
}
}  // namespace

TEST(GradcheckSelf, CatchesAWrongBackward) {
  GradcheckResult r = gradcheck([](const V& in) { return wrong_exp(in[0]); }, {rand64({2, 3}, 1)});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("gradcheck: input 0 [2,3], element"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("analytic"), std::string::npos);
  EXPECT_GT(r.max_abs_error, 1e-3);
  // The same on a strided input: the numeric side perturbs the right elements.
  EXPECT_FALSE(gradcheck([](const V& in) { return wrong_exp(in[0]); }, {strided64({3, 2}, 2)}).ok);
  EXPECT_TRUE(gradcheck([](const V& in) { return exp(in[0]); }, {strided64({3, 2}, 2)}).ok);
}

TEST(GradcheckSelf, OnlyTheGradInputsArePerturbed) {
  Tensor constant = rand64({3}, 3).detach();
  GradcheckResult r = gradcheck([](const V& in) { return mul(in[0], in[1]); }, {rand64({3}, 4), constant});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(GradcheckSelf, RefusesWhatItCannotCheck) {
  EXPECT_THROW_MSG(gradcheck([](const V& in) { return in[0]; }, {zeros({2}).set_requires_grad(true)}),
                   "gradcheck: input 0 is f32; gradcheck needs f64 inputs");
  EXPECT_THROW_MSG(gradcheck([](const V& in) { return in[0]; }, {zeros({2}, {DType::F64})}),
                   "gradcheck: no input requires grad");
  Tensor x = rand64({2}, 5);
  Tensor non_leaf = mul(x, 2.0);
  EXPECT_THROW_MSG(gradcheck([](const V& in) { return in[0]; }, {non_leaf}), "gradcheck: input 0 must be a leaf");
}
