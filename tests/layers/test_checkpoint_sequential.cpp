// Sequential::set_recompute_segments (torch's checkpoint_sequential): every zoo model, and a net
// with dropout, gives the same gradients and buffers as without; module hooks fire once per forward.
#include "autograd/checkpoint.h"
#include "layers/zoo.h"
#include "tensor/allocator.h"
#include "tensor/random.h"
#include "tests/layers/layers_test_helpers.h"

namespace gs::nn {
namespace {

struct Step {
  NamedTensors grads, buffers;
  Tensor input_grad;
  int64_t held_bytes = 0;  // in use after forward, above what was in use before the step
  int64_t peak_bytes = 0;  // the step's peak, above the same
};

// One training forward and backward of a cross-entropy loss, from a fixed seed.
Step train_step(Module& model, const Shape& input_shape) {
  manual_seed(17);
  Tensor x = randn(input_shape).set_requires_grad(true);
  Tensor labels = from_vector<int64_t>({3, 1, 4, 1}, {4});
  CpuAllocator::instance().reset_peak();
  const int64_t before = CpuAllocator::instance().stats().bytes_in_use;
  Tensor loss = cross_entropy(model(x), labels);
  Step s;
  s.held_bytes = CpuAllocator::instance().stats().bytes_in_use - before;
  backward(loss);
  s.peak_bytes = CpuAllocator::instance().stats().peak_bytes_in_use - before;
  for (auto& [name, p] : model.named_parameters()) s.grads.emplace_back(name, p.grad());
  for (auto& [name, b] : model.named_buffers()) s.buffers.emplace_back(name, raw::clone(b));
  s.input_grad = x.grad();
  return s;
}

void expect_same(const Step& a, const Step& b, const std::string& what) {
  ASSERT_EQ(a.grads.size(), b.grads.size());
  for (size_t i = 0; i < a.grads.size(); ++i) {
    ASSERT_TRUE(a.grads[i].second.defined()) << what << " " << a.grads[i].first;
    test::expect_close(a.grads[i].second, b.grads[i].second, 0, what + " grad of " + a.grads[i].first);
  }
  for (size_t i = 0; i < a.buffers.size(); ++i) {
    test::expect_close(a.buffers[i].second, b.buffers[i].second, 0, what + " buffer " + a.buffers[i].first);
  }
  test::expect_close(a.input_grad, b.input_grad, 0, what + " input grad");
}

ModulePtr seeded(const std::string& name, int64_t channels, int64_t size) {
  manual_seed(5);
  return make_model(name, channels, 10, size);
}

TEST(CheckpointSequential, EveryZooModelGivesTheSameGradientsAndBuffers) {
  for (const std::string& name : model_names()) {
    const int64_t channels = name == "resnet8" ? 3 : 1, size = name == "resnet8" ? 32 : 28;
    const Shape input{4, channels, size, size};
    ModulePtr reference = seeded(name, channels, size);
    const Step plain = train_step(*reference, input);
    auto& children = dynamic_cast<Sequential&>(*reference);
    for (int segments : {2, 3, static_cast<int>(children.size())}) {
      ModulePtr model = seeded(name, channels, size);
      dynamic_cast<Sequential&>(*model).set_recompute_segments(segments);
      const Step checked = train_step(*model, input);
      expect_same(checked, plain, name + " in " + std::to_string(segments) + " segments");
      if (name == "fashionnet" && segments == 2) {
        // Between forward and backward the first half's activations are not kept: batch norm's
        // input, relu's input (32x28x28 floats each) and max pool's argmax (32x14x14 int64).
        const int64_t first_half = 4 * (2 * 32 * 28 * 28 * 4 + 32 * 14 * 14 * 8);
        EXPECT_LT(checked.held_bytes + first_half, plain.held_bytes)
            << checked.held_bytes << " vs " << plain.held_bytes;
        // The peak comes in backward, where the first half is recomputed: it may not exceed the plain one.
        EXPECT_LE(checked.peak_bytes, plain.peak_bytes);
        std::printf("fashionnet, batch 4, 2 segments: held after forward %lld vs %lld bytes, peak %lld vs %lld\n",
                    (long long)checked.held_bytes, (long long)plain.held_bytes, (long long)checked.peak_bytes,
                    (long long)plain.peak_bytes);
      }
    }
  }
}

TEST(CheckpointSequential, DropoutDrawsTheSameMasks) {
  auto make = [] {
    manual_seed(2);
    auto net = std::make_shared<Sequential>();
    net->push_back(std::make_shared<Flatten>());
    net->push_back(std::make_shared<Linear>(36, 32));
    net->push_back(std::make_shared<ReLU>());
    net->push_back(std::make_shared<Dropout>(0.5));
    net->push_back(std::make_shared<Linear>(32, 10));
    return net;
  };
  auto plain = make(), checked = make();
  checked->set_recompute_segments(2);
  const Shape input{4, 1, 6, 6};
  expect_same(train_step(*checked, input), train_step(*plain, input), "dropout net");
}

TEST(CheckpointSequential, ModuleHooksFireOncePerForward) {
  ModulePtr model = seeded("fashionnet", 1, 28);
  auto& net = dynamic_cast<Sequential&>(*model);
  net.set_recompute_segments(3);
  int forward_calls = 0, backward_calls = 0;
  for (auto& child : net.modules()) {
    child->register_forward_hook([&](Module&, const Tensor&, const Tensor&) { ++forward_calls; });
    child->register_backward_hook([&](Module&, const Tensor&) { ++backward_calls; });
  }
  train_step(*model, {4, 1, 28, 28});
  EXPECT_EQ(forward_calls, static_cast<int>(net.size()));
  EXPECT_EQ(backward_calls, static_cast<int>(net.size()));
}

TEST(CheckpointSequential, EvalAndNoGradRunAsUsualAndBadCountsAreErrors) {
  ModulePtr model = seeded("fashionnet", 1, 28), reference = seeded("fashionnet", 1, 28);
  auto& net = dynamic_cast<Sequential&>(*model);
  net.set_recompute_segments(4);
  EXPECT_EQ(net.recompute_segments(), 4);
  model->eval();
  reference->eval();
  Tensor x = randn({2, 1, 28, 28});
  NoGradGuard no_grad;
  test::expect_close((*model)(x), (*reference)(x), 0, "eval under no_grad");
  EXPECT_THROW_MSG(net.set_recompute_segments(0), "recompute segments must be in [1, 12]");
  EXPECT_THROW_MSG(net.set_recompute_segments(13), "got 13");
}

}  // namespace
}  // namespace gs::nn
