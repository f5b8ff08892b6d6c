// Dropout: identity in eval (and for p = 0), inverted scaling and the drop rate in training,
// reproducible masks with a generator, gradient through the same mask.
#include "tests/layers/layers_test_helpers.h"

#include "tensor/random.h"

namespace gs::nn {
namespace {

TEST(Dropout, EvalIsIdentity) {
  Dropout drop(0.5);
  drop.eval();
  Tensor x = randn({100});
  test::expect_close(drop(x), x, 0);
  Dropout none(0.0);
  test::expect_close(none(x), x, 0);  // p = 0 in training too
}

TEST(Dropout, TrainDropsAtRateAndScalesTheRest) {
  Dropout drop(0.25);
  Generator gen(3);
  drop.set_generator(&gen);
  auto y = drop(ones({40000})).to_vector<float>();
  int64_t zeros = 0;
  for (float v : y) {
    if (v == 0) {
      ++zeros;
    } else {
      EXPECT_FLOAT_EQ(v, 1.0f / 0.75f);
    }
  }
  EXPECT_NEAR(zeros / 40000.0, 0.25, 0.01);
}

TEST(Dropout, GeneratorGivesTheSameMaskAndGradientFollowsIt) {
  Dropout a(0.5), b(0.5);
  Generator ga(9), gb(9);
  a.set_generator(&ga);
  b.set_generator(&gb);
  Tensor x = ones({64}).set_requires_grad(true);
  Tensor y = a(x);
  EXPECT_EQ(y.to_vector<float>(), b(ones({64})).to_vector<float>());
  backward(sum(y));
  EXPECT_EQ(x.grad().to_vector<float>(), y.to_vector<float>());  // d(sum(x*mask))/dx = mask
}

TEST(Dropout, Errors) {
  EXPECT_THROW_MSG(Dropout(1.5), "p must be in [0, 1]");
  EXPECT_THROW_MSG(Dropout(-0.1), "p must be in [0, 1]");
  EXPECT_EQ(Dropout(0.5).extra_repr(), "p=0.5, inplace=False");
}

}  // namespace
}  // namespace gs::nn
