// micrograd's first example, in gradscope: build a scalar expression, run backward, print
// every gradient and the tape that produced them.
#include <iostream>

#include "autograd/ops.h"

int main() {
  using namespace gs;
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
  std::cout << "tape:\n" << tape_str();
  backward(g);
  std::printf("g = %.4f (micrograd: 24.7041)\n", g.item());
  std::printf("dg/da = %.4f (micrograd: 138.8338)\n", a.grad().item());
  std::printf("dg/db = %.4f (micrograd: 645.5773)\n", b.grad().item());
  return 0;
}
