// Mini-batches from an in-memory Dataset, shuffled per epoch and augmented per example, with
// optional prefetching on one background thread.
//
//   gs::io::DataLoader loader(train, {.batch_size = 64, .seed = 1}, gs::io::make_augmentation("crop:4,flip"));
//   for (int64_t epoch = 0; epoch < 10; ++epoch) {
//     loader.start_epoch(epoch);
//     gs::io::Batch batch;
//     while (loader.next(batch)) { ... batch.images f32 [B,C,H,W], batch.labels i64 [B] ... }
//   }
//
// Reproducibility: the order depends on (seed, epoch) and each example's augmentation draws from its
// own Generator seeded by (seed, epoch, dataset index), so batches are bit-identical with or without
// prefetching. The worker never touches gs::default_generator().
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "io/dataset.h"
#include "io/transforms.h"

namespace gs::io {

struct Batch {
  Tensor images;                 // f32 (B, C, H, W)
  Tensor labels;                 // i64 (B)
  std::vector<int64_t> indices;  // dataset index of each example
  // Data-parallel padding (DataLoaderOptions::pad_shards): the last `padding` examples repeat the
  // epoch's start so every shard has as many; they train, but an epoch's metrics leave them out.
  int64_t padding = 0;
};

struct DataLoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;
  bool drop_last = false;
  uint64_t seed = 0;
  int prefetch = 2;  // batches prepared ahead on a background thread; 0 = synchronous
  // One weight >= 0 per example, or empty. Given, each epoch draws size() examples with
  // replacement, example i with probability w_i / sum(w) (torch's WeightedRandomSampler; shuffle
  // is then unused), and a drawn example's augmentation seed is its position in the epoch, so
  // the repeats of one image are augmented differently.
  std::vector<double> sample_weights = {};
  // Data-parallel (torch's DistributedSampler): this process's part of every epoch. The epoch's
  // order is drawn as for one process, padded with its own start to a multiple of num_shards when
  // pad_shards (so every shard has as many batches: training), and shard_index takes positions
  // shard_index, shard_index + num_shards, ...  Without padding (evaluation) the shards
  // partition the examples. Augmentation seeds do not depend on the sharding, so the union over
  // the shards of batch i is batch i of one process with num_shards times the batch size; a
  // padding repeat is seeded by its position, so it is augmented unlike its original.
  int64_t num_shards = 1;
  int64_t shard_index = 0;
  bool pad_shards = true;
};

// Per-example weights that draw every class equally often: 1 / (examples of its class).
std::vector<double> balanced_sample_weights(const Dataset& data);

// The seed of example `index`'s augmentation Generator in `epoch` (exposed for tests and inspection).
uint64_t example_seed(uint64_t seed, int64_t epoch, int64_t index);

class DataLoader {
 public:
  DataLoader(const Dataset& data, DataLoaderOptions options, std::shared_ptr<Transform> transform = nullptr);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Sets the epoch's order and (re)starts prefetching; a running epoch is abandoned.
  void start_epoch(int64_t epoch);
  // The next batch; false at the end of the epoch. Starts epoch 0 if no epoch was started.
  // An exception from a transform is rethrown here.
  bool next(Batch& batch);
  int64_t batches_per_epoch() const;
  int64_t size() const { return data_.size(); }  // the dataset's examples
  int64_t samples_per_epoch() const;             // the examples of this shard's epoch

  const Dataset& dataset() const { return data_; }
  int64_t epoch() const { return epoch_; }
  const std::vector<int64_t>& order() const { return order_; }  // this epoch's example order
  const DataLoaderOptions& options() const { return options_; }

 private:
  Batch make_batch(int64_t batch_index) const;
  void stop_worker();
  void worker_loop();

  Dataset data_;
  DataLoaderOptions options_;
  std::shared_ptr<Transform> transform_;
  int64_t epoch_ = -1;
  int64_t next_batch_ = 0;  // synchronous mode: the next batch to make
  std::vector<int64_t> order_;
  std::vector<int64_t> positions_;  // each order_ entry's position in the whole (padded) epoch

  // Prefetch state: the worker fills `ready_` up to options_.prefetch batches.
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Slot> ready_;
  bool stop_ = false;
  int64_t consumed_ = 0;  // batches next() has handed out this epoch
  bool failed_ = false;   // the worker stopped on an exception (queued for next())
};

}  // namespace gs::io
