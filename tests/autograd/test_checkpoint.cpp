// Activation checkpointing (autograd/checkpoint.h): the gradients equal those without it, bit for
// bit, through batch norm, dropout and create_graph; only the inputs are kept until backward; the
// second run leaves running statistics, generators, hooks and the tape as the first run left them.
#include "autograd/checkpoint.h"

#include "autograd/nn_ops.h"
#include "tensor/allocator.h"
#include "tensor/random.h"
#include "tests/helpers.h"

using namespace gs;
using namespace gs::test;
using V = std::vector<Tensor>;

namespace {

// conv -> batch norm (training, running statistics) -> relu -> dropout -> max pool -> linear.
struct Block {
  Tensor conv_w = rand64({4, 2, 3, 3}, 1, -0.5, 0.5).set_requires_grad(true);
  Tensor conv_b = rand64({4}, 2).set_requires_grad(true);
  Tensor gamma = rand64({4}, 3, 0.5, 1.5).set_requires_grad(true);
  Tensor beta = rand64({4}, 4).set_requires_grad(true);
  Tensor fc = rand64({64, 3}, 5, -0.5, 0.5).set_requires_grad(true);
  Tensor running_mean = zeros({4}, {DType::F64}), running_var = ones({4}, {DType::F64});
  Generator* dropout_generator = nullptr;  // null: the default generator
  int runs = 0;

  V params() const { return {conv_w, conv_b, gamma, beta, fc}; }
  Tensor operator()(const Tensor& x) {
    ++runs;
    Conv2dParams conv;
    conv.pad_h = conv.pad_w = 1;
    Tensor h = conv2d(x, conv_w, conv_b, conv);
    h = batch_norm(h, gamma, beta, running_mean, running_var, true, 0.1, 1e-5);
    h = dropout(relu(h), 0.3, true, dropout_generator);
    h = max_pool2d(h, Pool2dParams{});
    return matmul(reshape(h, {x.size(0), -1}), fc);
  }
};

Tensor input() { return rand64({3, 2, 8, 8}, 7).set_requires_grad(true); }

void expect_same_grads(const V& a, const V& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(a[i].grad().defined()) << what << " parameter " << i;
    expect_close(a[i].grad(), b[i].grad(), 0, what + " parameter " + std::to_string(i));
  }
}

}  // namespace

TEST(Checkpoint, GradientsEqualTheUncheckpointedOnesBitForBit) {
  Block plain, checked;
  Tensor x_plain = input(), x_checked = input();
  manual_seed(42);
  backward(sum(mul(plain(x_plain), plain(x_plain))));  // two forwards: the dropout draws differ
  const uint64_t next_plain = default_generator().next_u64();
  manual_seed(42);
  auto block = [&](const Tensor& x) { return checked(x); };
  Tensor y1 = checkpoint(block, x_checked), y2 = checkpoint(block, x_checked);
  backward(sum(mul(y1, y2)));
  EXPECT_EQ(checked.runs, 4) << "each checkpoint runs its function twice: in forward and in backward";
  expect_same_grads(checked.params(), plain.params(), "checkpointed");
  expect_close(x_checked.grad(), x_plain.grad(), 0, "input gradient");
  // The second runs replayed the dropout draws and put the generator back; the running statistics
  // were updated once per forward.
  EXPECT_EQ(default_generator().next_u64(), next_plain);
  expect_close(checked.running_mean, plain.running_mean, 0, "running_mean");
  expect_close(checked.running_var, plain.running_var, 0, "running_var");
}

TEST(Checkpoint, ADropoutGeneratorOfItsOwnIsReplayedAndPutBack) {
  Generator gen_plain(5), gen_checked(5);
  Block plain, checked;
  plain.dropout_generator = &gen_plain;
  checked.dropout_generator = &gen_checked;
  Tensor x_plain = input(), x_checked = input();
  backward(sum(plain(x_plain)));
  Tensor y = checkpoint([&](const Tensor& x) { return checked(x); }, x_checked);
  gen_checked.next_u64();  // drawn between forward and backward: backward must not undo it
  gen_plain.next_u64();
  backward(sum(y));
  expect_same_grads(checked.params(), plain.params(), "own generator");
  EXPECT_EQ(gen_checked.state(), gen_plain.state());
}

TEST(Checkpoint, KeepsOnlyTheInputsUntilBackward) {
  Block plain, checked;
  Tensor x = input();
  auto in_use = [] { return CpuAllocator::instance().stats().bytes_in_use; };
  manual_seed(1);
  const int64_t before_plain = in_use();
  Tensor y_plain = plain(x);
  const int64_t kept_plain = in_use() - before_plain;
  manual_seed(1);
  const int64_t before_checked = in_use();
  Tensor y_checked = checkpoint([&](const Tensor& in) { return checked(in); }, x);
  const int64_t kept_checked = in_use() - before_checked;
  // Uncheckpointed, the conv output (saved by batch norm), the relu output and the dropout mask stay:
  // at least 3 x 3*4*8*8 doubles. Checkpointed: the output and the batch statistics of nothing.
  const int64_t activation = 3 * 4 * 8 * 8 * sizeof(double);
  EXPECT_GE(kept_plain - kept_checked, 3 * activation) << kept_plain << " vs " << kept_checked << " bytes";
  for (auto& e : tape_entries()) {
    if (e->recompute) EXPECT_TRUE(e->saved.empty()) << entry_name(*e) << " keeps saved tensors";
  }
  backward(sum(y_checked));
  backward(sum(y_plain));
  expect_same_grads(checked.params(), plain.params(), "after the memory check");
}

// A chain of 8 checkpointed segments keeps 8 segment inputs after forward; backward frees each
// one once its segment is done, so the first segment runs again with the other 7 gone.
TEST(Checkpoint, BackwardFreesEachSegmentOnceItsEntriesAreDone) {
  const int64_t n = 1 << 16;  // 512 KiB of f64 per tensor
  const int64_t bytes = n * static_cast<int64_t>(sizeof(double));
  auto in_use = [] { return CpuAllocator::instance().stats().bytes_in_use; };
  std::vector<int64_t> at_second_run;
  bool forward_done = false;
  Tensor x = rand64({n}, 3).set_requires_grad(true);
  Tensor y = x;
  for (int i = 0; i < 8; ++i) {
    y = checkpoint(
        [&](const Tensor& in) {
          if (forward_done) at_second_run.push_back(in_use());
          return tanh(tanh(in));
        },
        y);
  }
  Tensor loss = sum(y);
  y = Tensor();
  forward_done = true;
  backward(loss);
  ASSERT_EQ(at_second_run.size(), 8u);
  EXPECT_LE(at_second_run.back(), at_second_run.front() - 6 * bytes)
      << "the last segment ran again with " << at_second_run.back() / bytes << " tensors held, the first with "
      << at_second_run.front() / bytes;
  EXPECT_TRUE(x.grad().defined());
}

TEST(Checkpoint, RetainGraphRecomputesForEachBackward) {
  Block plain, checked;
  Tensor x_plain = input(), x_checked = input();
  manual_seed(3);
  Tensor y_plain = plain(x_plain);
  manual_seed(3);
  Tensor y = checkpoint([&](const Tensor& x) { return checked(x); }, x_checked);
  backward(sum(y), Tensor(), true);
  int checkpointed = 0;
  for (auto& e : tape_entries()) {
    if (!e->recompute) continue;
    ++checkpointed;
    EXPECT_TRUE(e->saved.empty()) << entry_name(*e) << " kept its recomputed tensors after its backward";
  }
  EXPECT_GT(checkpointed, 0);
  backward(sum(y));
  EXPECT_EQ(checked.runs, 3);
  backward(sum(y_plain), Tensor(), true);
  backward(sum(y_plain));
  expect_same_grads(checked.params(), plain.params(), "two backwards");
  EXPECT_THROW_MSG(backward(sum(y)), "freed");
}

TEST(Checkpoint, GradOfAnotherPathDoesNotRunTheFunctionAgain) {
  Block checked;
  Tensor x = input();
  Tensor other = rand64({3, 3}, 9).set_requires_grad(true);
  Tensor y = checkpoint([&](const Tensor& in) { return checked(in); }, x);
  Tensor loss = sum(add(y, other));
  Tensor g = grad(loss, {other}, Tensor(), true)[0];
  expect_close(g, ones({3, 3}, {DType::F64}), 0);
  EXPECT_EQ(checked.runs, 1) << "grad() prunes the checkpoint's entries, so nothing is recomputed";
  grad(loss, {checked.fc});
  EXPECT_EQ(checked.runs, 2);
}

TEST(Checkpoint, CreateGraphGradientPenaltyMatches) {
  // loss + |d loss/dx|^2, a double backward through the checkpointed block (batch norm's fused
  // double backward, dropout, conv's derivative entries).
  Block plain, checked;
  auto penalised = [](const Tensor& out, const Tensor& x) {
    Tensor loss = sum(mul(out, out));
    Tensor gx = grad(loss, {x}, Tensor(), false, true)[0];
    return add(loss, sum(mul(gx, gx)));
  };
  Tensor x_plain = input(), x_checked = input();
  manual_seed(8);
  backward(penalised(plain(x_plain), x_plain));
  manual_seed(8);
  backward(penalised(checkpoint([&](const Tensor& x) { return checked(x); }, x_checked), x_checked));
  expect_same_grads(checked.params(), plain.params(), "penalty");
  EXPECT_EQ(checked.runs, 3) << "forward, the create_graph pass, the backward of the penalty";
}

TEST(Checkpoint, GradcheckAndGradgradcheckInF64) {
  Tensor x = rand64({2, 3}, 1), w = rand64({3, 4}, 2), v = rand64({4}, 3);
  EXPECT_GRADCHECK(
      [](const V& in) {
        auto fn = [](const V& t) { return V{tanh(matmul(t[0], t[1])), exp(t[2])}; };
        V out = checkpoint(fn, in);
        return add(out[0], out[1]);
      },
      {x, w, v});
}

TEST(Checkpoint, HooksAndTheTapeSeeEachOpOnce) {
  Block checked;
  Tensor x = input();
  int forward_calls = 0, backward_calls = 0;
  int fid = add_forward_hook([&](const Entry&, const V&) { ++forward_calls; });
  int bid = add_backward_hook([&](const Entry&, const V&, const V&) { ++backward_calls; });
  Tensor loss = sum(checkpoint([&](const Tensor& in) { return checked(in); }, x));
  const int recorded = forward_calls;
  const size_t live = tape_entries().size();
  backward(loss);
  EXPECT_EQ(forward_calls, recorded) << "the second run fired the forward hooks again";
  EXPECT_EQ(backward_calls, recorded) << "each entry's backward once";
  EXPECT_EQ(tape_entries().size(), live) << "the second run's entries reached the tape";
  remove_hook(fid);
  remove_hook(bid);
}

TEST(Checkpoint, AFunctionThatRecordsOtherOpsTheSecondTimeIsAnError) {
  Tensor x = rand64({4}, 1).set_requires_grad(true);
  int runs = 0;
  Tensor y = checkpoint(
      [&](const Tensor& in) {
        ++runs;
        return runs == 1 ? tanh(in) : sigmoid(in);
      },
      x);
  EXPECT_THROW_MSG(backward(sum(y)), "checkpoint: the function's second run (in backward) recorded sigmoid");
  int runs_z = 0;
  Tensor z = checkpoint([&](const Tensor& in) { return ++runs_z == 1 ? mul(exp(in), in) : exp(in); }, x);
  EXPECT_THROW_MSG(backward(sum(z)), "recorded 1 ops, the first recorded 2");
  int runs_w = 0;
  Tensor w = checkpoint([&](const Tensor& in) { return ++runs_w == 1 ? exp(in) : mul(exp(in), in); }, x);
  EXPECT_THROW_MSG(backward(sum(w)), "recorded mul as its op 1, where the first recorded nothing");
}

TEST(Checkpoint, WithoutGradModeOrNestedItJustCallsTheFunction) {
  Tensor x = rand64({4}, 1).set_requires_grad(true);
  int runs = 0;
  {
    NoGradGuard no_grad;
    Tensor y = checkpoint([&](const Tensor& in) { return ++runs, tanh(in); }, x);
    EXPECT_FALSE(y.requires_grad());
  }
  EXPECT_EQ(runs, 1);
  int inner_runs = 0, outer_runs = 0;
  auto inner = [&](const Tensor& in) { return ++inner_runs, exp(in); };
  Tensor y = checkpoint([&](const Tensor& in) { return ++outer_runs, tanh(checkpoint(inner, in)); }, x);
  Tensor g = grad(sum(y), {x})[0];
  EXPECT_EQ(outer_runs, 2);
  EXPECT_EQ(inner_runs, 2) << "the inner checkpoint is part of the outer one";
  Tensor xd = x.detach();  // requires no grad: the ops below record nothing
  Tensor t = tanh(exp(xd));
  Tensor expected = mul(exp(xd), neg(sub(mul(t, t), 1.0)));  // d tanh(exp x)/dx
  expect_close(g, expected, 1e-12);
  EXPECT_THROW_MSG(checkpoint(CheckpointFn(), {x}), "checkpoint: no function given");
}
