// WeightEma (optim/ema.h) against the recurrence written out, on parameters and buffers.
#include "optim/ema.h"
#include "tests/optim/optim_test_util.h"

namespace gs::test {
namespace {

TEST(WeightEma, AveragesFloatingTensorsAndCopiesIntegerOnes) {
  Tensor w = from_vector<double>({1, 2}, {2}), count = from_vector<int64_t>({3}, {});
  Tensor avg_w = zeros({2}, {DType::F64}), avg_count = zeros({}, {DType::I64});
  optim::WeightEma ema({{"w", avg_w}, {"n", avg_count}}, 0.75);
  ema.copy_from({{"w", w}, {"n", count}});
  expect_close(avg_w, w, 0);
  // Two steps: avg = 0.75 avg + 0.25 value.
  optim::WeightEma::NamedTensors live = {{"w", from_vector<double>({5, -2}, {2})},
                                         {"n", from_vector<int64_t>({4}, {})}};
  ema.update(live);
  expect_close(avg_w, from_vector<double>({0.75 * 1 + 0.25 * 5, 0.75 * 2 + 0.25 * -2}, {2}), 1e-15);
  EXPECT_EQ(avg_count.to_vector<int64_t>()[0], 4);
  ema.update(live);
  expect_close(avg_w, from_vector<double>({0.75 * 2 + 0.25 * 5, 0.75 * 1 + 0.25 * -2}, {2}), 1e-15);
  EXPECT_THROW_MSG(ema.update({{"w", w}}), "ema: the model has 1 tensors, its average 2");
  EXPECT_THROW_MSG(ema.update({{"v", w}, {"n", count}}), "ema: tensor 0 is 'v' f64[2] cpu in the model but 'w'");
  EXPECT_THROW_MSG(optim::WeightEma({}, 1.0), "ema: decay must be in [0, 1), got 1");
}

}  // namespace
}  // namespace gs::test
