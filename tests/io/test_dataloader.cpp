// DataLoader: every example once per epoch, seeded orders, drop_last, bit-identical batches with and
// without prefetching, weighted sampling, worker exceptions reaching next(), and clean shutdown in
// the middle of an epoch.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <thread>

#include "io/dataloader.h"
#include "tests/helpers.h"

namespace gs::io {
namespace {

// n examples of shape (1, 3, 3); every pixel of image i holds i / 1000; label i % 4.
Dataset traced(int64_t n) {
  Dataset d;
  d.images = empty({n, 1, 3, 3});
  d.labels = empty({n}, {DType::I64});
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 9; ++k) d.images.data<float>()[i * 9 + k] = static_cast<float>(i) / 1000.0f;
    d.labels.data<int64_t>()[i] = i % 4;
  }
  d.num_classes = 4;
  return d;
}

std::vector<int64_t> epoch_indices(DataLoader& loader, int64_t epoch, std::vector<int64_t>* sizes = nullptr) {
  loader.start_epoch(epoch);
  std::vector<int64_t> seen;
  Batch b;
  while (loader.next(b)) {
    if (sizes) sizes->push_back(b.images.size(0));
    auto px = b.images.to_vector<float>();
    auto labels = b.labels.to_vector<int64_t>();
    for (size_t i = 0; i < b.indices.size(); ++i) {
      EXPECT_EQ(px[i * 9], static_cast<float>(b.indices[i]) / 1000.0f) << "image matches its index";
      EXPECT_EQ(labels[i], b.indices[i] % 4) << "label matches its index";
      seen.push_back(b.indices[i]);
    }
  }
  return seen;
}

// Runs fn on a helper thread and fails (then aborts, rather than hang) if it takes over `seconds`.
void finish_within(double seconds, const std::function<void()>& fn, const char* what) {
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::thread([fn, done] {
    fn();
    *done = true;
  }).detach();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!*done && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  if (!*done) {
    std::fprintf(stderr, "DEADLOCK: %s did not finish within %g s\n", what, seconds);
    std::abort();
  }
}

TEST(DataLoader, EveryExampleOncePerEpochAndSeededOrder) {
  for (int prefetch : {0, 2}) {
    Dataset d = traced(103);
    DataLoader loader(d, {.batch_size = 10, .shuffle = true, .seed = 5, .prefetch = prefetch});
    EXPECT_EQ(loader.batches_per_epoch(), 11);
    EXPECT_EQ(loader.size(), 103);
    std::vector<int64_t> sizes;
    auto e0 = epoch_indices(loader, 0, &sizes);
    EXPECT_EQ(sizes.back(), 3);
    EXPECT_EQ(sizes.size(), 11u);
    EXPECT_EQ(std::set<int64_t>(e0.begin(), e0.end()).size(), 103u);
    EXPECT_EQ(e0.size(), 103u);
    auto e1 = epoch_indices(loader, 1);
    EXPECT_EQ(std::set<int64_t>(e1.begin(), e1.end()).size(), 103u);
    EXPECT_NE(e0, e1) << "the order changes across epochs";
    EXPECT_EQ(epoch_indices(loader, 0), e0) << "epoch 0 again: same order";
    DataLoader twin(d, {.batch_size = 7, .seed = 5, .prefetch = prefetch});
    EXPECT_EQ(epoch_indices(twin, 1), e1) << "same seed: same order (whatever the batch size)";
    DataLoader other(d, {.batch_size = 10, .seed = 6, .prefetch = prefetch});
    EXPECT_NE(epoch_indices(other, 1), e1);
    DataLoader plain(d, {.batch_size = 10, .shuffle = false, .prefetch = prefetch});
    auto seq = epoch_indices(plain, 3);
    for (int64_t i = 0; i < 103; ++i) ASSERT_EQ(seq[i], i);
  }
}

TEST(DataLoader, DropLastAndImplicitFirstEpoch) {
  Dataset d = traced(25);
  DataLoader loader(d, {.batch_size = 10, .drop_last = true, .prefetch = 1});
  EXPECT_EQ(loader.batches_per_epoch(), 2);
  Batch b;
  int batches = 0;
  while (loader.next(b)) {  // no start_epoch: epoch 0
    EXPECT_EQ(b.images.size(0), 10);
    ++batches;
  }
  EXPECT_EQ(batches, 2);
  EXPECT_FALSE(loader.next(b)) << "stays at the end until the next start_epoch";
  EXPECT_EQ(loader.epoch(), 0);
  DataLoader tiny(traced(5), {.batch_size = 10, .drop_last = true});
  tiny.start_epoch(0);
  EXPECT_FALSE(tiny.next(b));
  EXPECT_THROW_MSG(DataLoader(d, {.batch_size = 0}), "batch_size must be positive");
}

TEST(DataLoader, PrefetchGivesBitIdenticalAugmentedBatches) {
  Dataset d = traced(50);
  for (int64_t i = 0; i < d.images.numel(); ++i) d.images.data<float>()[i] += static_cast<float>(i % 9) / 20.0f;
  auto aug = make_augmentation("crop:1,flip,rotate:15,jitter:0.3");
  DataLoader sync(d, {.batch_size = 8, .seed = 3, .prefetch = 0}, aug);
  DataLoader async(d, {.batch_size = 8, .seed = 3, .prefetch = 2}, aug);
  DataLoader deep(d, {.batch_size = 5, .seed = 3, .prefetch = 4}, aug);
  for (int64_t epoch : {0, 1}) {
    sync.start_epoch(epoch), async.start_epoch(epoch), deep.start_epoch(epoch);
    std::map<int64_t, std::vector<float>> by_index;
    Batch a, b;
    int batches = 0;
    while (sync.next(a)) {
      ASSERT_TRUE(async.next(b));
      ASSERT_EQ(a.indices, b.indices);
      ASSERT_EQ(a.images.to_vector<float>(), b.images.to_vector<float>()) << "epoch " << epoch << " batch " << batches;
      ASSERT_EQ(a.labels.to_vector<int64_t>(), b.labels.to_vector<int64_t>());
      auto px = a.images.to_vector<float>();
      for (size_t i = 0; i < a.indices.size(); ++i)
        by_index[a.indices[i]].assign(px.begin() + i * 9, px.begin() + (i + 1) * 9);
      ++batches;
    }
    EXPECT_FALSE(async.next(b));
    EXPECT_EQ(batches, 7);
    // Augmentation depends on (seed, epoch, index) only: another batch size gives the same images.
    while (deep.next(b)) {
      auto px = b.images.to_vector<float>();
      for (size_t i = 0; i < b.indices.size(); ++i)
        ASSERT_EQ(std::vector<float>(px.begin() + i * 9, px.begin() + (i + 1) * 9), by_index[b.indices[i]]);
    }
  }
}

TEST(DataLoader, AugmentationChangesAcrossEpochsAndLeavesDefaultGeneratorAlone) {
  Dataset d = traced(12);
  for (int64_t i = 0; i < d.images.numel(); ++i) d.images.data<float>()[i] = static_cast<float>(i % 9) / 9.0f;
  DataLoader loader(d, {.batch_size = 12, .shuffle = false, .seed = 1, .prefetch = 2}, make_augmentation("crop:1"));
  auto before = default_generator().state();
  Batch e0, e1;
  loader.start_epoch(0);
  ASSERT_TRUE(loader.next(e0));
  loader.start_epoch(1);
  ASSERT_TRUE(loader.next(e1));
  EXPECT_NE(e0.images.to_vector<float>(), e1.images.to_vector<float>());
  EXPECT_EQ(default_generator().state(), before);
  EXPECT_EQ(shape_str(e0.images.shape()), "[12,1,3,3]");
}

// sample_weights: draws with replacement in proportion to the weights (a zero weight is never
// drawn), seeded per epoch, the same with prefetching, and repeats augmented differently.
TEST(DataLoader, WeightedSamplingDrawsInProportion) {
  Dataset d = traced(8);
  std::vector<double> weights = {1, 0, 2, 0, 1, 0, 4, 0};  // odd indices never
  DataLoader loader(d, {.batch_size = 64, .seed = 3, .prefetch = 0, .sample_weights = weights});
  std::vector<int64_t> counts(8, 0);
  const int epochs = 2000;
  for (int e = 0; e < epochs; ++e)
    for (int64_t i : epoch_indices(loader, e)) counts[size_t(i)]++;
  const double draws = 8.0 * epochs;
  for (size_t i = 0; i < 8; ++i) {
    const double p = weights[i] / 8.0, expected = draws * p;
    EXPECT_NEAR(double(counts[i]), expected, 5 * std::sqrt(draws * p * (1 - p)) + 1e-9) << "example " << i;
  }
  DataLoader prefetched(d, {.batch_size = 3, .seed = 3, .prefetch = 2, .sample_weights = weights});
  DataLoader again(d, {.batch_size = 5, .seed = 3, .prefetch = 0, .sample_weights = weights});
  EXPECT_EQ(epoch_indices(prefetched, 7), epoch_indices(again, 7));
  EXPECT_NE(epoch_indices(again, 7), epoch_indices(again, 8));

  // Every example drawn repeatedly: each draw gets its own augmentation.
  Dataset one = traced(1);
  for (int k = 0; k < 9; ++k) one.images.data<float>()[k] = float(k) / 9.0f;
  DataLoader repeats(one, {.batch_size = 1, .seed = 3, .prefetch = 0, .sample_weights = {1.0}},
                     make_augmentation("crop:1"));
  std::set<std::vector<float>> looks;
  for (int e = 0; e < 30; ++e) {
    repeats.start_epoch(e);
    Batch b;
    while (repeats.next(b)) looks.insert(b.images.to_vector<float>());
  }
  EXPECT_GT(looks.size(), 3u);

  EXPECT_THROW_MSG(DataLoader(d, {.sample_weights = {1, 2}}), "DataLoader: 2 sample weights for 8 examples");
  EXPECT_THROW_MSG(DataLoader(d, {.sample_weights = std::vector<double>(8, 0.0)}), "every sample weight is 0");
  EXPECT_THROW_MSG(DataLoader(d, {.sample_weights = {1, 1, 1, 1, 1, 1, 1, -1}}), "must be finite and >= 0, got -1");
}

TEST(DataLoader, BalancedWeightsDrawEveryClassEquallyOften) {
  Dataset d = traced(40);
  // 31 images of class 0, then three each of classes 1, 2 and 3.
  for (int64_t i = 0; i < 40; ++i) d.labels.data<int64_t>()[i] = i < 31 ? 0 : 1 + i % 3;
  std::vector<double> w = balanced_sample_weights(d);
  EXPECT_DOUBLE_EQ(w[0], 1.0 / 31);
  EXPECT_DOUBLE_EQ(w[35], 1.0 / 3);
  DataLoader loader(d, {.batch_size = 40, .seed = 1, .prefetch = 0, .sample_weights = w});
  std::vector<int64_t> per_class(4, 0);
  for (int e = 0; e < 500; ++e) {
    loader.start_epoch(e);
    Batch b;
    while (loader.next(b))
      for (int64_t label : b.labels.to_vector<int64_t>()) per_class[size_t(label)]++;
  }
  for (int64_t k = 0; k < 4; ++k) EXPECT_NEAR(double(per_class[size_t(k)]) / (500.0 * 40), 0.25, 0.02) << k;
}

struct ThrowOn : Transform {
  int64_t bad_value;
  explicit ThrowOn(int64_t v) : bad_value(v) {}
  Tensor apply(const Tensor& image, Generator&) const override {
    GS_CHECK(std::lround(image.data<float>()[0] * 1000) != bad_value, "ThrowOn: example %lld is cursed",
             (long long)bad_value);
    return image;
  }
  std::string describe() const override { return "ThrowOn"; }
};

TEST(DataLoader, WorkerExceptionsReachNext) {
  for (int prefetch : {0, 2}) {
    DataLoader loader(traced(40), {.batch_size = 4, .shuffle = false, .prefetch = prefetch},
                      std::make_shared<ThrowOn>(13));
    loader.start_epoch(0);
    Batch b;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(loader.next(b));
    EXPECT_THROW_MSG(loader.next(b), "example 13 is cursed");
    if (prefetch > 0) {
      EXPECT_FALSE(loader.next(b)) << "the epoch ends at the failed batch";
    }
    loader.start_epoch(1);
    ASSERT_TRUE(loader.next(b)) << "a new epoch starts cleanly";
  }
}

struct Slow : Transform {
  Tensor apply(const Tensor& image, Generator&) const override {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return image;
  }
  std::string describe() const override { return "Slow"; }
};

TEST(DataLoader, DestructionMidEpochJoinsTheWorker) {
  Dataset d = traced(200);
  // Worker blocked on a full queue.
  finish_within(
      10,
      [d] {
        DataLoader loader(d, {.batch_size = 4, .prefetch = 2});
        Batch b;
        loader.start_epoch(0);
        loader.next(b);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      },
      "destroying a loader whose queue is full");
  // Worker busy inside a transform; restarted epochs abandon the old worker.
  finish_within(
      10,
      [d] {
        DataLoader loader(d, {.batch_size = 4, .prefetch = 3}, std::make_shared<Slow>());
        Batch b;
        loader.start_epoch(0);
        loader.next(b);
        loader.start_epoch(1);
        loader.next(b);
        loader.start_epoch(2);
      },
      "destroying a loader whose worker is busy");
  // Never started, or finished.
  finish_within(
      10,
      [d] {
        DataLoader idle(d, {.batch_size = 4});
        DataLoader done(d, {.batch_size = 100});
        Batch b;
        while (done.next(b)) {
        }
      },
      "destroying idle and finished loaders");
}

}  // namespace
}  // namespace gs::io
