// A steady training step allocates nothing new: after warm-up (steps 1-2 create the optimizer
// state and fill the caching allocator) every tensor buffer of steps 3..10 must come from the
// allocator's free lists (CpuAllocator::stats().system_allocs stays put), for fashionnet with
// AdamW on fresh random batches, under the default kernels and under each conv2d variant.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "autograd/ops.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/registry.h"
#include "layers/zoo.h"
#include "optim/optimizer.h"
#include "tensor/allocator.h"
#include "tensor/random.h"

using namespace gs;

namespace {

// Fresh (non-cached) allocations made by steps 3..10 of a small fashionnet training loop.
int64_t fresh_allocations_in_steady_steps(int64_t batch) {
  manual_seed(7);
  auto model = nn::make_model("fashionnet");
  auto opt = optim::make_optimizer("adamw", model->parameters(), {{"lr", 1e-3}, {"weight_decay", 5e-4}});
  int64_t before = 0;
  for (int step = 1; step <= 10; ++step) {
    if (step == 3) before = CpuAllocator::instance().stats().system_allocs;
    Tensor x = randn({batch, 1, 28, 28});
    Tensor y = randint(0, 10, {batch});
    Tensor loss = cross_entropy((*model)(x), y);
    opt->zero_grad();
    backward(loss);
    opt->step();
    EXPECT_TRUE(std::isfinite(loss.item())) << "step " << step;
  }
  return CpuAllocator::instance().stats().system_allocs - before;
}

TEST(SteadyStateAlloc, TrainingStepsAfterWarmupAllocateNothingNew) {
  EXPECT_EQ(fresh_allocations_in_steady_steps(16), 0);
}

TEST(SteadyStateAlloc, HoldsForEveryConvVariant) {
  for (const auto& v : kernels::conv2d_table<float>().names()) {
    if (v == "ref") continue;  // the naive loops are too slow for a quick test, and allocate alike
    kernels::select_variant("conv2d", v);
    kernels::select_variant("conv2d_backward_data", v);
    kernels::select_variant("conv2d_backward_weight", v);
    EXPECT_EQ(fresh_allocations_in_steady_steps(8), 0) << "conv2d variant " << v;
  }
  kernels::select_variant("conv2d", "");
  kernels::select_variant("conv2d_backward_data", "");
  kernels::select_variant("conv2d_backward_weight", "");
}

}  // namespace
