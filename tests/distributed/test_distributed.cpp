// The process group and the DataLoader's shards. ctest runs this binary twice: alone (a world of
// one) and under `mpirun -np 2` (the collectives for real); every expectation is written for any
// world size. The trainer under mpirun is checked end to end in tests/interop/test_distributed.py.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <set>

#include "autograd/collective.h"
#include "autograd/nn_ops.h"
#include "autograd/ops.h"
#include "io/dataloader.h"
#include "layers/batchnorm.h"
#include "tensor/random.h"
#include "tensor/raw_nn.h"
#include "tensor/raw_ops.h"
#include "tests/helpers.h"
#include "train/distributed.h"

using namespace gs;
using gs::train::ProcessGroup;

namespace {
// Sets an environment variable for one scope and puts the old value back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// n examples of one 1x2x2 image each, image i filled with i, label i % 3.
io::Dataset numbered(int64_t n) {
  io::Dataset d;
  std::vector<float> pixels;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 4; ++k) pixels.push_back(float(i));
    labels.push_back(i % 3);
  }
  d.images = from_vector<float>(pixels, {n, 1, 2, 2});
  d.labels = from_vector<int64_t>(labels, {n});
  d.num_classes = 3;
  return d;
}

// Adds one draw of the example's Generator to every pixel: an augmentation that shows which seed it had.
struct AddNoise : io::Transform {
  Tensor apply(const Tensor& x, Generator& gen) const override {
    return raw::binary(raw::BinaryOp::Add, x, full({}, gen.uniform()));
  }
  std::string describe() const override { return "add_noise"; }
};

// Every batch of an epoch, as (dataset index, first pixel) per example.
std::vector<std::vector<std::pair<int64_t, float>>> epoch_batches(io::DataLoader& loader, int64_t epoch) {
  std::vector<std::vector<std::pair<int64_t, float>>> batches;
  loader.start_epoch(epoch);
  io::Batch batch;
  while (loader.next(batch)) {
    std::vector<float> pixels = batch.images.to_vector<float>();
    std::vector<std::pair<int64_t, float>> examples;
    for (size_t i = 0; i < batch.indices.size(); ++i) examples.emplace_back(batch.indices[i], pixels[i * 4]);
    batches.push_back(examples);
  }
  return batches;
}
}  // namespace

TEST(LaunchEnv, ReadsOpenMpiAndPmiVariables) {
  {
    ScopedEnv size("OMPI_COMM_WORLD_SIZE", "4"), rank("OMPI_COMM_WORLD_RANK", "3"),
        local("OMPI_COMM_WORLD_LOCAL_RANK", "1");
    train::LaunchEnv env = train::launch_env();
    EXPECT_EQ(env.world_size, 4);
    EXPECT_EQ(env.rank, 3);
    EXPECT_EQ(env.local_rank, 1);
  }
  {
    ScopedEnv size("OMPI_COMM_WORLD_SIZE", nullptr), pmi_size("PMI_SIZE", "2"), pmi_rank("PMI_RANK", "1"),
        local("MPI_LOCALRANKID", "0");
    train::LaunchEnv env = train::launch_env();
    EXPECT_EQ(env.world_size, 2);
    EXPECT_EQ(env.rank, 1);
  }
  {
    ScopedEnv size("OMPI_COMM_WORLD_SIZE", nullptr), pmi_size("PMI_SIZE", nullptr);
    train::LaunchEnv env = train::launch_env();
    EXPECT_EQ(env.world_size, 1);
    EXPECT_EQ(env.rank, 0);
  }
}

TEST(ProcessGroup, AllReduceMeanBroadcastAndSums) {
  ProcessGroup& world = ProcessGroup::world();
  const int r = world.rank(), n = world.size();
  EXPECT_EQ(world.is_main(), r == 0);
  EXPECT_EQ(n, train::launch_env().world_size);
  // rank r holds r + 1 + i (f32) and 10 r - j / 4 (f64, a strided view); one tensor is undefined.
  Tensor a = from_vector<float>({float(r + 1), float(r + 2), float(r + 3)}, {3});
  Tensor b64 = from_vector<double>({10.0 * r, 10.0 * r - 0.25, 10.0 * r - 0.5, 10.0 * r - 0.75}, {2, 2});
  Tensor b = raw::transpose(b64, 0, 1);
  world.all_reduce_mean({a, Tensor(), b});
  const double mean_rank = (n - 1) / 2.0;
  std::vector<float> got_a = a.to_vector<float>();
  for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(got_a[size_t(i)], float(mean_rank + 1 + i));
  std::vector<double> got_b = b64.to_vector<double>();
  for (int j = 0; j < 4; ++j) EXPECT_DOUBLE_EQ(got_b[size_t(j)], 10.0 * mean_rank - 0.25 * j);

  // broadcast: i64 (num_batches_tracked) and f32 take rank 0's values everywhere.
  Tensor count = from_vector<int64_t>({int64_t(1) << 40 | r}, {1});
  Tensor w = from_vector<float>({float(r) + 0.5f, -float(r)}, {2});
  world.broadcast({count, w});
  EXPECT_EQ(count.to_vector<int64_t>()[0], int64_t(1) << 40);
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{0.5f, 0.0f}));
  EXPECT_DOUBLE_EQ(world.broadcast_value(r == 0 ? 0.125 : 99.0), 0.125);

  std::vector<double> sums{1.0, double(r)};
  world.all_reduce_sum(sums);
  EXPECT_DOUBLE_EQ(sums[0], n);
  EXPECT_DOUBLE_EQ(sums[1], n * (n - 1) / 2.0);

  EXPECT_THROW(world.all_reduce_mean({from_vector<int64_t>({1}, {1})}), Error);
}

// The union over the shards of batch i is batch i of one process with num_shards times the
// batch size, with the same augmentation; every shard has the same number of batches.
TEST(DataLoaderShards, BatchesAreTheOneProcessBatchesSplitUp) {
  auto noise = std::make_shared<AddNoise>();
  for (bool weighted : {false, true}) {
    for (int64_t shards : {2, 3}) {
      const int64_t n = 24, batch = 4;
      io::Dataset data = numbered(n);
      io::DataLoaderOptions one{.batch_size = batch * shards, .seed = 7, .prefetch = 0};
      if (weighted) one.sample_weights = io::balanced_sample_weights(numbered(n));
      io::DataLoader whole(data, one, noise);
      auto expected = epoch_batches(whole, 2);
      for (int64_t s = 0; s < shards; ++s) {
        io::DataLoaderOptions part = one;
        part.batch_size = batch, part.num_shards = shards, part.shard_index = s, part.prefetch = s % 2 ? 2 : 0;
        io::DataLoader loader(data, part, noise);
        EXPECT_EQ(loader.samples_per_epoch(), n / shards);
        auto got = epoch_batches(loader, 2);
        ASSERT_EQ(got.size(), expected.size()) << "shards " << shards;
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_EQ(got[i].size(), size_t(batch));
          for (size_t j = 0; j < got[i].size(); ++j) {
            // shard s takes positions s, s + shards, ... of the one-process epoch
            const auto& want = expected[i][size_t(s) + j * size_t(shards)];
            EXPECT_EQ(got[i][j].first, want.first) << "weighted " << weighted << " shard " << s;
            EXPECT_FLOAT_EQ(got[i][j].second, want.second) << "augmentation of example " << want.first;
          }
        }
      }
    }
  }
}

// Training shards are padded with the epoch's start (as torch's DistributedSampler) so they have
// equal lengths; evaluation shards are not, and partition the data.
TEST(DataLoaderShards, PaddedForTrainingAPartitionForEvaluation) {
  const int64_t n = 10, shards = 4;
  io::Dataset data = numbered(n);
  io::DataLoaderOptions base{.batch_size = 2, .seed = 3, .prefetch = 0};
  io::DataLoader whole(data, base);
  whole.start_epoch(1);
  const std::vector<int64_t> order = whole.order();
  std::map<int64_t, int> drawn;
  for (int64_t s = 0; s < shards; ++s) {
    io::DataLoaderOptions part = base;
    part.num_shards = shards, part.shard_index = s;
    io::DataLoader padded(data, part);
    EXPECT_EQ(padded.samples_per_epoch(), 3);
    EXPECT_EQ(padded.batches_per_epoch(), 2);
    padded.start_epoch(1);
    for (size_t j = 0; j < padded.order().size(); ++j)
      EXPECT_EQ(padded.order()[j], order[(size_t(s) + j * shards) % size_t(n)]);
    for (int64_t i : padded.order()) ++drawn[i];

    part.shuffle = false, part.pad_shards = false;
    io::DataLoader eval(data, part);
    EXPECT_EQ(eval.samples_per_epoch(), s < n % shards ? 3 : 2);
    eval.start_epoch(0);
    std::vector<int64_t> expected;
    for (int64_t i = s; i < n; i += shards) expected.push_back(i);
    EXPECT_EQ(eval.order(), expected);
  }
  // 12 draws of 10 examples: the first two of the epoch twice
  EXPECT_EQ(drawn.size(), size_t(n));
  EXPECT_EQ(drawn[order[0]], 2);
  EXPECT_EQ(drawn[order[1]], 2);

  io::DataLoaderOptions bad = base;
  bad.num_shards = 2, bad.shard_index = 2;
  EXPECT_THROW(io::DataLoader(data, bad), Error);
}

// The padding of each shard's batches: 10 examples on 3 shards, 4 each, at batch 3; positions 10
// and 11 (the last batch of shards 1 and 2) are padding. A padding repeat of position 0's example
// (shard 0's first) is augmented afresh: the same image, another draw.
TEST(DataLoaderShards, BatchesCountTheirPaddingWhichIsAugmentedAfresh) {
  io::Dataset data = numbered(10);
  auto noise = std::make_shared<AddNoise>();
  std::vector<std::vector<std::vector<std::pair<int64_t, float>>>> shards;
  for (int64_t shard = 0; shard < 3; ++shard) {
    io::DataLoader loader(data, {.batch_size = 3, .seed = 2, .prefetch = 0, .num_shards = 3, .shard_index = shard},
                          noise);
    loader.start_epoch(1);
    std::vector<int64_t> padding;
    for (io::Batch b; loader.next(b);) padding.push_back(b.padding);
    EXPECT_EQ(padding, (std::vector<int64_t>{0, shard == 0 ? 0 : 1})) << "shard " << shard;
    shards.push_back(epoch_batches(loader, 1));
  }
  const auto& original = shards[0][0][0];    // position 0
  const auto& repeat = shards[1][1].back();  // position 10 = 0 + 10
  EXPECT_EQ(repeat.first, original.first);
  EXPECT_NE(repeat.second, original.second);
}

TEST(DataLoaderShards, MoreShardsThanExamples) {
  io::Dataset data = numbered(3);
  io::DataLoaderOptions part{.batch_size = 8, .seed = 1, .prefetch = 0, .num_shards = 5, .shard_index = 4};
  io::DataLoader padded(data, part);
  EXPECT_EQ(padded.samples_per_epoch(), 1);
  io::Batch only;
  padded.start_epoch(0);
  ASSERT_TRUE(padded.next(only));
  EXPECT_EQ(only.padding, 1);  // position 4 of an epoch of 3: all padding
  part.pad_shards = false;
  io::DataLoader eval(data, part);
  EXPECT_EQ(eval.samples_per_epoch(), 0);
  EXPECT_EQ(eval.batches_per_epoch(), 0);
  io::Batch batch;
  eval.start_epoch(0);
  EXPECT_FALSE(eval.next(batch));
}

// Dropout on stream r (the rank) draws its own mask while the default generator advances as on
// stream 0, so the generator stays in step across ranks (rank 0's saved state resumes them all).
// In one process: streams 0 and 1 from the same seed; under mpirun: each rank on its own stream.
TEST(DataParallelRng, DropoutMasksDifferPerStreamAndTheGeneratorStaysInStep) {
  auto mask_on_stream = [](uint64_t stream, std::array<uint64_t, 4>& after) {
    manual_seed(5);
    set_rng_stream(stream);
    Tensor mask = raw::dropout(ones({64, 32}), 0.5, true, nullptr).mask;
    set_rng_stream(0);
    after = default_generator().state();
    return mask.to_vector<float>();
  };
  std::array<uint64_t, 4> after0{}, after1{};
  const std::vector<float> m0 = mask_on_stream(0, after0), m1 = mask_on_stream(1, after1);
  EXPECT_EQ(after0, after1);
  int64_t differ = 0, dropped = 0;
  for (size_t i = 0; i < m0.size(); ++i) differ += m0[i] != m1[i], dropped += m1[i] == 0;
  EXPECT_GT(differ, int64_t(m0.size()) / 4);  // independent halves: about 1/2 differ
  EXPECT_NEAR(double(dropped) / double(m1.size()), 0.5, 0.05);
  EXPECT_EQ(mask_on_stream(1, after1), m1);  // reproducible

  ProcessGroup& world = ProcessGroup::world();
  std::array<uint64_t, 4> mine{};
  Tensor rank_mask = from_vector(mask_on_stream(uint64_t(world.rank()), mine), {64, 32});
  Tensor rank0_mask = raw::clone(rank_mask);
  world.broadcast({rank0_mask});
  if (!world.is_main()) {
    EXPECT_NE(rank_mask.to_vector<float>(), rank0_mask.to_vector<float>());
  }
  for (int k = 0; k < 4; ++k) {  // the generator states agree (in 32-bit halves: exact as doubles)
    for (int half = 0; half < 2; ++half) {
      const double v = double((mine[size_t(k)] >> (32 * half)) & 0xffffffffULL);
      EXPECT_EQ(world.broadcast_value(v), v);
    }
  }
}

// torch.nn.SyncBatchNorm over the processes: each rank normalises its part of one batch, and the
// outputs, the input gradients, the parameter gradients summed over the ranks and the running
// statistics are one process's batch norm on the whole batch. The parts are equal, then uneven
// with the last rank holding no image at all (as torch allows).
TEST(SyncBatchNorm, TheProcessesTogetherNormaliseOneBatch) {
  ProcessGroup& world = ProcessGroup::world();
  const int r = world.rank(), p = world.size();
  const int64_t b = 3, c = 4;
  Generator gen(11);  // the same whole batch on every rank
  Tensor x_all = raw::binary_scalar(raw::BinaryOp::Add, randn({b * p, c, 5, 5}, {}, &gen), 1.5);
  Tensor g_all = randn({b * p, c, 5, 5}, {}, &gen);
  Tensor weight = randn({c}, {}, &gen), bias = randn({c}, {}, &gen);

  auto leaf = [](const Tensor& t) { return raw::clone(t).set_requires_grad(true); };
  Tensor x1 = leaf(x_all), w1 = leaf(weight), b1 = leaf(bias);
  Tensor rm1 = zeros({c}), rv1 = ones({c});
  Tensor y1 = batch_norm(x1, w1, b1, rm1, rv1, true, 0.1, 1e-5);
  backward(sum(y1 * g_all));

  for (bool even : {true, false}) {
    SCOPED_TRACE(even ? "equal parts" : "uneven parts, the last one empty");
    std::vector<int64_t> counts(size_t(p), b);
    if (!even && p > 1) counts.front() += b, counts.back() = 0;
    int64_t start = 0;
    for (int q = 0; q < r; ++q) start += counts[size_t(q)];
    const int64_t mine = counts[size_t(r)];
    Tensor x = leaf(raw::narrow(x_all, 0, start, mine)), w = leaf(weight), bi = leaf(bias);
    Tensor rm = zeros({c}), rv = ones({c});
    Tensor y = sync_batch_norm(x, w, bi, rm, rv, 0.1, 1e-5, world);
    backward(sum(y * raw::narrow(g_all, 0, start, mine)));
    test::expect_close(y, raw::narrow(y1, 0, start, mine), 2e-5, "output");
    test::expect_close(x.grad(), raw::narrow(x1.grad(), 0, start, mine), 2e-5, "input gradient");
    world.all_reduce_sum({w.grad(), bi.grad()});
    test::expect_close(w.grad(), w1.grad(), 1e-4, "weight gradient");
    test::expect_close(bi.grad(), b1.grad(), 1e-4, "bias gradient");
    test::expect_close(rm, rm1, 1e-6, "running_mean");
    test::expect_close(rv, rv1, 1e-5, "running_var");
  }

  // The module takes the same path once converted, when there is more than one process.
  nn::BatchNorm2d bn(c);
  raw::copy_(bn.weight(), weight);
  raw::copy_(bn.bias(), bias);
  EXPECT_EQ(nn::convert_sync_batchnorm(bn, &world), 1);
  Tensor y_module = bn(raw::narrow(x_all, 0, r * b, b));
  test::expect_close(y_module, raw::narrow(y1, 0, r * b, b), 2e-5, "module output");
  test::expect_close(bn.running_var(), rv1, 1e-5, "module running_var");
}

// The gradients of the sum of every rank's loss, by central differences in f64: each element of
// each rank's input is nudged in turn (all ranks evaluate every nudge together), and the weight
// and bias, which every rank holds, on every rank at once.
TEST(SyncBatchNorm, GradientsMatchFiniteDifferencesAcrossTheProcesses) {
  ProcessGroup& world = ProcessGroup::world();
  const int r = world.rank(), p = world.size();
  Tensor x = test::rand64({2, 3, 2, 2}, 20 + uint64_t(r)), g = test::rand64({2, 3, 2, 2}, 40 + uint64_t(r)).detach();
  Tensor w = test::rand64({3}, 60), bi = test::rand64({3}, 61);
  Tensor y = sync_batch_norm(x, w, bi, Tensor(), Tensor(), 0.1, 1e-5, world);
  backward(sum(y * g));
  world.all_reduce_sum({w.grad(), bi.grad()});

  auto total_loss = [&](const Tensor& xv, const Tensor& wv, const Tensor& bv) {
    NoGradGuard no_grad;
    std::vector<double> loss{sum(sync_batch_norm(xv, wv, bv, Tensor(), Tensor(), 0.1, 1e-5, world) * g).item()};
    world.all_reduce_sum(loss);
    return loss[0];
  };
  const double h = 1e-6;
  auto nudged = [](const Tensor& t, int64_t i, double by) {
    Tensor copy = raw::clone(t.detach());
    copy.data<double>()[i] += by;
    return copy;
  };
  for (int q = 0; q < p; ++q) {
    std::vector<double> analytic = x.grad().to_vector<double>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double d = r == q ? h : 0.0;
      const double fd = (total_loss(nudged(x, i, d), w, bi) - total_loss(nudged(x, i, -d), w, bi)) / (2 * h);
      if (r == q) {
        EXPECT_NEAR(analytic[size_t(i)], fd, 1e-6 * (1 + std::abs(fd))) << "rank " << r << " x[" << i << "]";
      }
    }
  }
  auto check_replicated = [&](const Tensor& param, const char* name, auto loss_with) {
    std::vector<double> analytic = param.grad().to_vector<double>();
    for (int64_t i = 0; i < param.numel(); ++i) {
      const double fd = (loss_with(nudged(param, i, h)) - loss_with(nudged(param, i, -h))) / (2 * h);
      EXPECT_NEAR(analytic[size_t(i)], fd, 1e-6 * (1 + std::abs(fd))) << name << "[" << i << "]";
    }
  };
  check_replicated(w, "weight", [&](const Tensor& wv) { return total_loss(x, wv, bi); });
  check_replicated(bi, "bias", [&](const Tensor& bv) { return total_loss(x, w, bv); });
}

// The double backward across processes: S = sum over ranks of <dL/dx_r, v_r>, with dL/dx taken with
// create_graph and differentiated again (the all-reduces' backwards talk again), against central
// differences of S, each evaluation a plain backward on every rank.
TEST(SyncBatchNorm, SecondDerivativesMatchFiniteDifferencesAcrossTheProcesses) {
  ProcessGroup& world = ProcessGroup::world();
  const int r = world.rank(), p = world.size();
  Tensor x = test::rand64({3, 2, 2, 1}, 70 + uint64_t(r)), g = test::rand64({3, 2, 2, 1}, 80 + uint64_t(r)).detach();
  Tensor v = test::rand64({3, 2, 2, 1}, 90 + uint64_t(r)).detach();
  Tensor w = test::rand64({2}, 95).detach(), bi = test::rand64({2}, 96).detach();
  auto first_order = [&](const Tensor& leaf, bool create_graph) {
    Tensor y = sync_batch_norm(leaf, w, bi, Tensor(), Tensor(), 0.1, 1e-5, world);
    return grad(sum(mul(mul(y, y), g)), {leaf}, Tensor(), false, create_graph)[0];
  };
  backward(sum(mul(first_order(x, true), v)));
  const std::vector<double> analytic = x.grad().to_vector<double>();
  auto total_s = [&](const Tensor& xv) {
    Tensor leaf = xv.detach().set_requires_grad(true);
    std::vector<double> s{sum(mul(first_order(leaf, false), v)).item()};
    world.all_reduce_sum(s);
    return s[0];
  };
  const double h = 1e-5;
  for (int q = 0; q < p; ++q) {
    for (int64_t i = 0; i < x.numel(); ++i) {
      Tensor plus = raw::clone(x.detach()), minus = raw::clone(x.detach());
      if (r == q) plus.data<double>()[i] += h, minus.data<double>()[i] -= h;
      const double fd = (total_s(plus) - total_s(minus)) / (2 * h);
      if (r == q) {
        EXPECT_NEAR(analytic[size_t(i)], fd, 1e-5 * (1 + std::abs(fd))) << "rank " << r << " x[" << i << "]";
      }
    }
  }
}
