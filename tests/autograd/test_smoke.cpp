// First end-to-end check of the tape: a scalar expression with known gradients.
#include "tests/helpers.h"

using namespace gs;

TEST(Tape, MicrogradExpression) {
  Tensor a = scalar_tensor(-4.0, {DType::F64}).set_requires_grad(true);
  Tensor b = scalar_tensor(2.0, {DType::F64}).set_requires_grad(true);
  Tensor c = a + b;
  Tensor d = a * b + pow(b, 3.0);
  c = c + c + 1.0;
  c = c + 1.0 + c + (-a);
  d = d + d * 2.0 + relu(b + a);
  d = d + 3.0 * d + relu(b - a);
  Tensor e = c - d;
  Tensor f = pow(e, 2.0);
  Tensor g = f / 2.0;
  g = g + 10.0 / f;
  backward(g);
  EXPECT_NEAR(g.item(), 24.70408163265306, 1e-9);
  EXPECT_NEAR(a.grad().item(), 138.83381924198252, 1e-9);
  EXPECT_NEAR(b.grad().item(), 645.5772594752186, 1e-9);
}
