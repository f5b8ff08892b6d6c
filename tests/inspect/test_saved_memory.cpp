// inspect::saved_memory: on a hand-made graph, the bytes each entry saved, each storage once
// (views and repeats free), excluded storages not counted; inside a checkpoint, the inputs it
// keeps; and on fashionnet, with and without --recompute-segments, the total against the caching
// allocator's bytes in use after forward (the independent count of what forward left behind).
#include "inspect/saved_memory.h"

#include <gtest/gtest.h>

#include "autograd/checkpoint.h"
#include "autograd/ops.h"
#include "layers/container.h"
#include "layers/zoo.h"
#include "tensor/allocator.h"
#include "tests/helpers.h"

using namespace gs;

namespace {
constexpr int64_t kBytes = 3 * 5 * sizeof(double);  // one (3, 5) f64 tensor

int64_t last_seq() {
  auto all = tape_entries();
  return all.empty() ? -1 : all.back()->seq;
}
// The live entries recorded after `seq` (others' tensors may still be alive).
std::vector<std::shared_ptr<Entry>> entries_after(int64_t seq) {
  std::vector<std::shared_ptr<Entry>> out;
  for (auto& e : tape_entries()) {
    if (e->seq > seq) out.push_back(e);
  }
  return out;
}
}  // namespace

TEST(SavedMemory, EachStorageOnceAtTheFirstEntryHoldingIt) {
  Tensor x = test::rand64({3, 5}, 1).set_requires_grad(true);
  Tensor w = test::rand64({5}, 2).set_requires_grad(true);
  const int64_t start = last_seq();
  Tensor a = mul(x, w);                                // saves x and w
  Tensor b = tanh(a);                                  // saves b
  Tensor c = mul(b, b);                                // b twice: nothing new
  Tensor d = mul(reshape(x, {15}), reshape(x, {15}));  // views of x: nothing new
  (void)c, (void)d;
  const auto entries = entries_after(start);
  inspect::SavedMemory m = inspect::saved_memory(entries, {w});
  ASSERT_EQ(m.entries.size(), entries.size());
  std::vector<int64_t> bytes;
  for (const auto& row : m.entries) bytes.push_back(row.bytes);
  // mul, tanh, mul, reshape, reshape, mul
  EXPECT_EQ(bytes, (std::vector<int64_t>{kBytes, kBytes, 0, 0, 0, 0}));
  EXPECT_EQ(m.total_bytes, 2 * kBytes);
  EXPECT_EQ(m.total_tensors, 2);
  EXPECT_EQ(m.checkpoint_bytes, 0);
  // Not excluded, the weight counts at the first entry that saved it.
  inspect::SavedMemory all = inspect::saved_memory(entries);
  EXPECT_EQ(all.entries[0].bytes, kBytes + 5 * int64_t(sizeof(double)));
  EXPECT_EQ(all.total_tensors, 3);
}

// relu keeps its output, which the next layer keeps as its input: one activation, not two.
TEST(SavedMemory, ReluAndTheLayerAfterItShareOneActivation) {
  Tensor x = test::rand64({3, 5}, 1).set_requires_grad(true);
  Tensor w = test::rand64({5, 4}, 2).set_requires_grad(true);
  const int64_t start = last_seq();
  Tensor y = matmul(relu(x), w);
  (void)y;
  inspect::SavedMemory m = inspect::saved_memory(entries_after(start), {w});
  EXPECT_EQ(m.total_bytes, kBytes);
  EXPECT_EQ(m.total_tensors, 1);
}

// Cross-entropy keeps the log-probabilities and the targets, as torch's log_softmax + nll_loss:
// not the logits, which a create_graph backward differentiates through the log-probabilities.
TEST(SavedMemory, CrossEntropyKeepsTheLogProbabilitiesNotTheLogits) {
  Tensor x = test::rand64({3, 5}, 1).set_requires_grad(true);
  Tensor labels = from_vector<int64_t>({4, 0, 2}, {3});
  const int64_t start = last_seq();
  Tensor loss = cross_entropy(mul(x, 2.0), labels);
  (void)loss;
  const auto entries = entries_after(start);
  ASSERT_EQ(entries.size(), 2u);  // mul, cross_entropy
  inspect::SavedMemory m = inspect::saved_memory(entries, {x});
  EXPECT_EQ(m.entries[1].bytes, kBytes + 3 * int64_t(sizeof(int64_t)));
  EXPECT_EQ(m.entries[1].tensors, 2);
}

TEST(SavedMemory, ACheckpointKeepsItsInputsInsteadOfTheSavedTensors) {
  Tensor x = test::rand64({3, 5}, 1).set_requires_grad(true);
  const int64_t start = last_seq();
  Tensor y = checkpoint([](const Tensor& in) { return tanh(tanh(in)); }, x);
  Tensor z = tanh(y);  // outside: saves its output
  (void)z;
  const auto entries = entries_after(start);
  ASSERT_EQ(entries.size(), 3u);
  inspect::SavedMemory m = inspect::saved_memory(entries);
  EXPECT_EQ(m.entries[0].bytes, kBytes);
  EXPECT_EQ(m.entries[0].checkpoint_bytes, kBytes);
  EXPECT_EQ(m.entries[1].bytes, 0);
  EXPECT_EQ(m.entries[2].bytes, kBytes);
  EXPECT_EQ(m.total_bytes, 2 * kBytes);
  EXPECT_EQ(m.checkpoint_bytes, kBytes);
}

TEST(SavedMemory, FashionnetsTotalIsWhatTheAllocatorHoldsAfterForward) {
  for (int segments : {1, 3}) {
    manual_seed(0);
    auto model = std::dynamic_pointer_cast<nn::Sequential>(nn::make_model("fashionnet"));
    ASSERT_TRUE(model);
    model->set_recompute_segments(segments);
    model->train();
    Tensor x = rand({4, 1, 28, 28});
    std::vector<Tensor> excluded{x};  // made before the count starts
    for (auto& [name, t] : model->state_dict()) excluded.push_back(t);
    const int64_t start = last_seq();
    const int64_t before = CpuAllocator::instance().stats().bytes_in_use;
    Tensor logits = (*model)(x);
    const int64_t held = CpuAllocator::instance().stats().bytes_in_use - before;
    inspect::SavedMemory m = inspect::saved_memory(entries_after(start), excluded);
    // What the allocator holds beyond the saved tensors: the logits (one 64-byte-aligned block or
    // two) and each saved storage's rounding to the alignment.
    const int64_t slack = int64_t(m.total_tensors + 2) * 64 + int64_t(logits.numel() * sizeof(float));
    EXPECT_GE(held, m.total_bytes) << "segments " << segments;
    EXPECT_LE(held, m.total_bytes + slack) << "segments " << segments << ": the allocator holds " << held
                                           << " bytes, saved_memory counts " << m.total_bytes;
    if (segments > 1) EXPECT_GT(m.checkpoint_bytes, 0);
  }
}

TEST(SavedMemory, BytesReadAsAPersonWould) {
  EXPECT_EQ(inspect::bytes_str(512), "512 B");
  EXPECT_EQ(inspect::bytes_str(3584), "3.5 KiB");
  EXPECT_EQ(inspect::bytes_str(int64_t(1.25 * 1024 * 1024)), "1.25 MiB");
  EXPECT_EQ(inspect::bytes_str(int64_t(3) << 30), "3 GiB");
}
