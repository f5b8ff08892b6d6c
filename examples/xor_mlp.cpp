// A 2-layer MLP fitting XOR with plain SGD, written with nothing but tensors and the tape.
#include <cstdio>

#include "autograd/ops.h"
#include "tensor/random.h"
#include "tensor/raw_ops.h"

int main() {
  using namespace gs;
  manual_seed(0);
  Tensor x = from_vector<float>({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2});
  Tensor y = from_vector<int64_t>({0, 1, 1, 0}, {4});
  Tensor w1 = mul(randn({2, 8}), 1.0).detach().set_requires_grad(true);
  Tensor b1 = zeros({8}).set_requires_grad(true);
  Tensor w2 = mul(randn({8, 2}), 0.5).detach().set_requires_grad(true);
  Tensor b2 = zeros({2}).set_requires_grad(true);
  std::vector<Tensor> params = {w1, b1, w2, b2};
  const double lr = 0.5;
  for (int step = 0; step <= 300; ++step) {
    Tensor h = tanh(matmul(x, w1) + b1);
    Tensor logits = matmul(h, w2) + b2;
    Tensor loss = cross_entropy(logits, y);
    for (auto& p : params) p.zero_grad();
    backward(loss);
    {
      NoGradGuard no_grad;
      for (auto& p : params) raw::add_(p, p.grad(), -lr);
    }
    if (step % 50 == 0) std::printf("step %3d  loss %.5f\n", step, loss.item());
  }
  NoGradGuard no_grad;
  Tensor pred = argmax(matmul(tanh(matmul(x, w1) + b1), w2) + b2, 1);
  auto p = pred.to_vector<int64_t>();
  std::printf("predictions for (0,0) (0,1) (1,0) (1,1): %lld %lld %lld %lld (want 0 1 1 0)\n", (long long)p[0],
              (long long)p[1], (long long)p[2], (long long)p[3]);
  return (p[0] == 0 && p[1] == 1 && p[2] == 1 && p[3] == 0) ? 0 : 1;
}
