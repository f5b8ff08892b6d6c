// DataLoader: per-epoch order, per-example augmentation seeds, and a single prefetch thread fed
// through a bounded queue. Batches are made by the same make_batch() with or without the thread.
#include "io/dataloader.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "tensor/raw_ops.h"

namespace gs::io {

namespace {
uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

uint64_t example_seed(uint64_t seed, int64_t epoch, int64_t index) {
  return mix64(mix64(mix64(seed) ^ static_cast<uint64_t>(epoch)) ^ static_cast<uint64_t>(index));
}

DataLoader::DataLoader(const Dataset& data, DataLoaderOptions options, std::shared_ptr<Transform> transform)
    : data_(data), options_(options), transform_(std::move(transform)) {
  GS_CHECK(options.batch_size > 0, "DataLoader: batch_size must be positive, got %lld", (long long)options.batch_size);
  GS_CHECK(options.prefetch >= 0, "DataLoader: prefetch must be >= 0, got %d", options.prefetch);
  GS_CHECK(data.images.defined() && data.labels.defined() && data.images.dim() >= 1 &&
               data.images.size(0) == data.labels.numel(),
           "DataLoader: the dataset needs images (N, ...) and labels (N)");
  GS_CHECK(data.images.dtype() == DType::F32 && data.labels.dtype() == DType::I64 && data.images.device().is_cpu(),
           "DataLoader: expects f32 cpu images and i64 labels, got %s and %s", data.images.describe().c_str(),
           data.labels.describe().c_str());
  if (!options_.sample_weights.empty()) {
    GS_CHECK(int64_t(options_.sample_weights.size()) == data.size(), "DataLoader: %zu sample weights for %lld examples",
             options_.sample_weights.size(), (long long)data.size());
    double total = 0;
    for (double w : options_.sample_weights) {
      GS_CHECK(std::isfinite(w) && w >= 0, "DataLoader: sample weights must be finite and >= 0, got %g", w);
      total += w;
    }
    GS_CHECK(total > 0, "DataLoader: every sample weight is 0");
  }
  GS_CHECK(options.num_shards >= 1 && options.shard_index >= 0 && options.shard_index < options.num_shards,
           "DataLoader: shard %lld of %lld does not exist", (long long)options.shard_index,
           (long long)options.num_shards);
  // The worker reads raw pointers, so make both contiguous once, here on the caller's thread.
  data_.images = raw::contiguous(data.images);
  data_.labels = raw::contiguous(data.labels);
}

DataLoader::~DataLoader() { stop_worker(); }

int64_t DataLoader::samples_per_epoch() const {
  const int64_t n = size(), shards = options_.num_shards;
  if (options_.pad_shards) return (n + shards - 1) / shards;
  return n / shards + (options_.shard_index < n % shards ? 1 : 0);
}

int64_t DataLoader::batches_per_epoch() const {
  int64_t n = samples_per_epoch(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void DataLoader::stop_worker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  ready_.clear();
  stop_ = false;
  failed_ = false;
}

void DataLoader::start_epoch(int64_t epoch) {
  stop_worker();
  epoch_ = epoch;
  next_batch_ = 0;
  consumed_ = 0;
  order_.resize(static_cast<size_t>(size()));
  std::iota(order_.begin(), order_.end(), 0);
  if (!options_.sample_weights.empty()) {
    // Inverse-CDF draws over the running sums; an example of weight 0 is never drawn.
    Generator gen(mix64(options_.seed ^ mix64(static_cast<uint64_t>(epoch) + 0x5a3b1e)));
    std::vector<double> cumulative(options_.sample_weights.size());
    std::partial_sum(options_.sample_weights.begin(), options_.sample_weights.end(), cumulative.begin());
    for (auto& slot : order_) {
      const double u = gen.uniform() * cumulative.back();
      slot = std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin();
      slot = std::min<int64_t>(slot, size() - 1);
    }
  } else if (options_.shuffle) {
    Generator gen(mix64(options_.seed ^ mix64(static_cast<uint64_t>(epoch) + 0x5eed)));
    for (size_t i = order_.size(); i > 1; --i)
      std::swap(order_[i - 1], order_[static_cast<size_t>(gen.randint(0, static_cast<int64_t>(i)))]);
  }
  positions_.resize(order_.size());
  std::iota(positions_.begin(), positions_.end(), 0);
  if (options_.num_shards > 1) {
    const int64_t n = size(), shards = options_.num_shards, length = samples_per_epoch();
    std::vector<int64_t> shard(static_cast<size_t>(length)), positions(shard.size());
    for (int64_t j = 0; j < length; ++j) {
      const int64_t position = options_.shard_index + j * shards;  // < n unless it is padding
      shard[size_t(j)] = order_[size_t(position % n)];
      positions[size_t(j)] = position;
    }
    order_ = std::move(shard);
    positions_ = std::move(positions);
  }
  if (options_.prefetch > 0 && batches_per_epoch() > 0) worker_ = std::thread([this] { worker_loop(); });
}

std::vector<double> balanced_sample_weights(const Dataset& data) {
  const std::vector<int64_t> counts = data.class_counts();
  std::vector<double> weights(static_cast<size_t>(data.size()));
  const Tensor contiguous_labels = raw::contiguous(data.labels);
  const int64_t* labels = contiguous_labels.data<int64_t>();
  for (int64_t i = 0; i < data.size(); ++i) weights[size_t(i)] = 1.0 / double(counts[size_t(labels[i])]);
  return weights;
}

Batch DataLoader::make_batch(int64_t batch_index) const {
  int64_t begin = batch_index * options_.batch_size;
  int64_t end = std::min(begin + options_.batch_size, int64_t(order_.size()));
  int64_t b = end - begin;
  Batch batch;
  batch.indices.assign(order_.begin() + begin, order_.begin() + end);
  for (int64_t i = begin; i < end; ++i) batch.padding += positions_[size_t(i)] >= size() ? 1 : 0;
  batch.labels = empty({b}, {DType::I64});
  const int64_t* labels = data_.labels.data<int64_t>();
  for (int64_t i = 0; i < b; ++i) batch.labels.data<int64_t>()[i] = labels[batch.indices[i]];

  Shape example_shape(data_.images.shape().begin() + 1, data_.images.shape().end());
  int64_t example_numel = shape_numel(example_shape);
  const float* images = data_.images.data<float>();
  if (!transform_) {
    Shape shape = data_.images.shape();
    shape[0] = b;
    batch.images = empty(shape);
    for (int64_t i = 0; i < b; ++i)
      std::memcpy(batch.images.data<float>() + i * example_numel, images + batch.indices[i] * example_numel,
                  static_cast<size_t>(example_numel) * sizeof(float));
    return batch;
  }
  for (int64_t i = 0; i < b; ++i) {
    int64_t index = batch.indices[i];
    Tensor example = empty(example_shape);
    std::memcpy(example.data<float>(), images + index * example_numel, static_cast<size_t>(example_numel) * 4);
    // Seeded by the example, or by its place in the epoch where an example can come twice (drawn
    // with replacement, or a data-parallel padding repeat), so the repeats are augmented afresh.
    const int64_t position = positions_[size_t(begin + i)];
    const bool by_position = !options_.sample_weights.empty() || position >= size();
    Generator gen(by_position ? example_seed(options_.seed ^ 0x5a3b1eULL, epoch_, position)
                              : example_seed(options_.seed, epoch_, index));
    Tensor out = transform_->apply(example, gen);
    GS_CHECK(out.defined() && out.dtype() == DType::F32, "DataLoader: transform %s returned %s, expected f32",
             transform_->describe().c_str(), out.defined() ? out.describe().c_str() : "an undefined tensor");
    if (i == 0) {
      Shape shape = out.shape();
      shape.insert(shape.begin(), b);
      batch.images = empty(shape);
    }
    GS_CHECK(out.numel() * b == batch.images.numel() && out.dim() + 1 == batch.images.dim(),
             "DataLoader: transform %s gave example %lld shape %s, but the batch's first example has %s",
             transform_->describe().c_str(), (long long)index, shape_str(out.shape()).c_str(),
             shape_str(Shape(batch.images.shape().begin() + 1, batch.images.shape().end())).c_str());
    std::vector<float> values = out.is_contiguous() ? std::vector<float>() : out.to_vector<float>();
    const float* src = out.is_contiguous() ? out.data<float>() : values.data();
    std::memcpy(batch.images.data<float>() + i * out.numel(), src, static_cast<size_t>(out.numel()) * sizeof(float));
  }
  return batch;
}

void DataLoader::worker_loop() {
  const int64_t total = batches_per_epoch();
  for (int64_t i = 0; i < total; ++i) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || static_cast<int64_t>(ready_.size()) < options_.prefetch; });
      if (stop_) return;
    }
    Slot slot;
    try {
      slot.batch = make_batch(i);
    } catch (...) {
      slot.error = std::current_exception();
    }
    const bool error = slot.error != nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.push_back(std::move(slot));
      failed_ = failed_ || error;
    }
    cv_.notify_all();
    if (error) return;  // next() rethrows it and ends the epoch
  }
}

bool DataLoader::next(Batch& batch) {
  if (epoch_ < 0) start_epoch(0);
  const int64_t total = batches_per_epoch();
  if (options_.prefetch == 0) {
    if (next_batch_ >= total) return false;
    batch = make_batch(next_batch_);
    ++next_batch_;
    return true;
  }
  Slot slot;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (consumed_ >= total) return false;
    cv_.wait(lock, [&] { return !ready_.empty(); });
    slot = std::move(ready_.front());
    ready_.pop_front();
    if (slot.error) {
      consumed_ = total;  // the epoch is over: the worker stopped at the failed batch
    } else {
      ++consumed_;
    }
  }
  cv_.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  batch = std::move(slot.batch);
  return true;
}

}  // namespace gs::io
