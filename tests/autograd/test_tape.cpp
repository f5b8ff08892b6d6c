// The tape and the backward engine: accumulation, zero_grad, no_grad, retain_graph, detach,
// seeds, hooks, retain_grad, scope paths on entries, hook points, grad(), shared inputs.
#include "autograd/tape.h"
#include "tensor/allocator.h"
#include "tensor/scope.h"
#include "tests/helpers.h"

using namespace gs;
using namespace gs::test;

namespace {
Tensor leaf(std::vector<double> v) { return from_vector<double>(v, {int64_t(v.size())}).set_requires_grad(true); }
std::vector<double> vec(const Tensor& t) { return t.to_vector<double>(); }
}  // namespace

TEST(Tape, GradsAccumulateAcrossBackwardCalls) {
  Tensor x = leaf({1, 2});
  backward(sum(mul(x, x)));
  EXPECT_EQ(vec(x.grad()), (std::vector<double>{2, 4}));
  backward(sum(mul(x, 3.0)));
  EXPECT_EQ(vec(x.grad()), (std::vector<double>{5, 7}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  backward(sum(x));
  EXPECT_EQ(vec(x.grad()), (std::vector<double>{1, 1}));
}

TEST(Tape, SeedIsNotAliasedByLeafGrad) {
  // y = x + 0 passes the seed straight through; .grad must not be the caller's seed tensor,
  // or the next backward would add into the caller's seed.
  Tensor x = leaf({1, 2});
  Tensor seed = from_vector<double>({1, 1}, {2});
  backward(add(x, 0.0), seed);
  backward(add(x, 0.0), seed);
  EXPECT_EQ(vec(seed), (std::vector<double>{1, 1}));
  EXPECT_EQ(vec(x.grad()), (std::vector<double>{2, 2}));
  Tensor s = scalar_tensor(1.0, {DType::F64}).set_requires_grad(true);
  Tensor one = scalar_tensor(1.0, {DType::F64});
  backward(s, one);
  backward(s, one);
  EXPECT_EQ(one.item(), 1.0);
  EXPECT_EQ(s.grad().item(), 2.0);
}

TEST(Tape, NoGradRecordsNothing) {
  Tensor x = leaf({1, 2});
  Tensor y;
  size_t before = tape_entries().size();
  {
    NoGradGuard guard;
    EXPECT_FALSE(GradMode::is_enabled());
    y = mul(exp(x), 2.0);
  }
  EXPECT_TRUE(GradMode::is_enabled());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_TRUE(y.is_leaf());
  EXPECT_EQ(tape_entries().size(), before);
  EXPECT_THROW_MSG(backward(sum(y)), "backward: the tensor [] does not require grad");
  // Inputs that need no grad record nothing either.
  Tensor c = from_vector<double>({1, 2}, {2});
  EXPECT_FALSE(mul(c, c).requires_grad());
}

TEST(Tape, SecondBackwardNeedsRetainGraph) {
  Tensor x = leaf({1, 2});
  Tensor loss = sum(mul(x, x));
  backward(loss);
  EXPECT_THROW_MSG(backward(loss), "was freed by an earlier backward; call the first backward with retain_graph=true");
  Tensor x2 = leaf({1, 2});
  Tensor loss2 = sum(mul(x2, x2));
  backward(loss2, Tensor(), true);
  backward(loss2);
  EXPECT_EQ(vec(x2.grad()), (std::vector<double>{4, 8}));
}

TEST(Tape, DetachCutsTheGraph) {
  Tensor x = leaf({3});
  Tensor y = mul(x, x);
  Tensor d = y.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.storage(), y.storage());
  Tensor z = sum(add(mul(d, x), y));  // d acts as a constant 9
  backward(z);
  EXPECT_EQ(vec(x.grad()), (std::vector<double>{9 + 6}));
}

TEST(Tape, NonScalarOutputNeedsASeed) {
  Tensor x = leaf({1, 2, 3});
  Tensor y = mul(x, x);
  EXPECT_THROW_MSG(backward(y),
                   "backward: output of shape [3] is not a scalar; pass a seed gradient of the same shape");
  EXPECT_THROW_MSG(backward(y, from_vector<double>({1, 1}, {2})),
                   "backward: seed gradient shape [2] does not match output shape [3]");
  backward(y, from_vector<double>({1, 0, -1}, {3}));
  EXPECT_EQ(vec(x.grad()), (std::vector<double>{2, 0, -6}));
}

TEST(Tape, HookReplacesGradient) {
  Tensor x = leaf({1, 2});
  Tensor y = mul(x, 3.0);
  register_hook(y, [](const Tensor& g) { return raw::binary_scalar(raw::BinaryOp::Mul, g, 10.0); });
  int leaf_calls = 0;
  register_hook(x, [&](const Tensor& g) {
    leaf_calls++;
    EXPECT_EQ(vec(g), (std::vector<double>{30, 30}));
    return Tensor();  // keep it
  });
  backward(sum(y));
  EXPECT_EQ(leaf_calls, 1);
  EXPECT_EQ(vec(x.grad()), (std::vector<double>{30, 30}));
  Tensor w = leaf({1});
  register_hook(w, [](const Tensor&) { return zeros({5}, {DType::F64}); });
  EXPECT_THROW_MSG(backward(sum(mul(w, 2.0))), "hook: a gradient hook returned shape [5] for a gradient of shape [1]");
}

TEST(Tape, TensorHooksAreRemovableById) {
  Tensor x = leaf({1, 2});
  int first = 0, second = 0;
  int id1 = register_hook(x, [&](const Tensor&) { ++first; return Tensor(); });
  int id2 = register_hook(x, [&](const Tensor& g) { ++second; return raw::binary_scalar(raw::BinaryOp::Mul, g, 2.0); });
  EXPECT_NE(id1, id2);
  backward(sum(mul(x, 3.0)));
  EXPECT_EQ(vec(x.grad()), (std::vector<double>{6, 6}));
  remove_hook(x, id2);
  remove_hook(x, id2);  // twice: nothing happens
  x.zero_grad();
  backward(sum(mul(x, 3.0)));
  EXPECT_EQ(first, 2);
  EXPECT_EQ(second, 1);
  EXPECT_EQ(vec(x.grad()), (std::vector<double>{3, 3}));
  // A hook that removes itself while running: called once, the others still run.
  int self_calls = 0;
  int self_id = 0;
  self_id = register_hook(x, [&](const Tensor&) { ++self_calls; remove_hook(x, self_id); return Tensor(); });
  x.zero_grad();
  backward(sum(mul(x, 3.0)));
  backward(sum(mul(x, 3.0)));
  EXPECT_EQ(self_calls, 1);
  EXPECT_EQ(first, 4);
}

TEST(Tape, RetainGradOnNonLeaf) {
  Tensor x = leaf({1, 2});
  Tensor y = mul(x, x);
  Tensor z = mul(x, 2.0);
  y.retain_grad();
  EXPECT_FALSE(y.is_leaf());
  backward(sum(mul(y, 3.0)), Tensor(), true);
  EXPECT_EQ(vec(y.grad()), (std::vector<double>{3, 3}));
  EXPECT_FALSE(z.grad().defined());  // not retained
  backward(sum(mul(y, 3.0)));
  EXPECT_EQ(vec(y.grad()), (std::vector<double>{6, 6}));  // accumulates like a leaf
}

TEST(Tape, EntriesCarryScopePath) {
  Tensor x = leaf({1, 2});
  std::shared_ptr<Entry> entry;
  {
    ScopeGuard model("model");
    ScopeGuard layer("fc1");
    Tensor y = mul(x, 2.0);
    entry = y.autograd_meta()->entry;
    EXPECT_NE(tape_str().find("mul (model.fc1) [2] <- [2], []"), std::string::npos) << tape_str();
  }
  ASSERT_TRUE(entry);
  EXPECT_EQ(entry->scope, "model.fc1");
  EXPECT_EQ(entry->op, OpId::Mul);
  EXPECT_EQ(entry->input_shapes, (std::vector<Shape>{{2}, {}}));
}

TEST(Tape, BackwardErrorsNameTheScopeOfTheEntry) {
  Tensor x = leaf({1, 2});
  Tensor y;
  {
    ScopeGuard g("head");
    y = mul(x, 2.0);
  }
  register_hook(y, [](const Tensor& g) -> Tensor {
    GS_CHECK(false, "probe: refused");
    return g;
  });
  EXPECT_THROW_MSG(backward(sum(y)), "probe: refused");
  y = mul(x, 2.0);
  auto id = add_backward_hook([](const Entry& e, const std::vector<Tensor>&, const std::vector<Tensor>&) {
    GS_CHECK(e.op != OpId::Mul, "probe: mul seen");
  });
  EXPECT_THROW_MSG(backward(sum(y)), "probe: mul seen");
  remove_hook(id);
}

TEST(Tape, ForwardAndBackwardHookPointsFire) {
  std::vector<std::string> forward_ops, backward_ops;
  int f = add_forward_hook([&](const Entry& e, const std::vector<Tensor>& outs) {
    forward_ops.push_back(op_name(e.op));
    EXPECT_EQ(outs.size(), 1u);
  });
  int b = add_backward_hook([&](const Entry& e, const std::vector<Tensor>& gout, const std::vector<Tensor>& gin) {
    backward_ops.push_back(op_name(e.op));
    EXPECT_EQ(gin.size(), e.inputs.size());
    EXPECT_EQ(gout[0].shape(), e.output_shapes[0]);
  });
  Tensor x = leaf({1, 2});
  backward(sum(exp(x)));
  remove_hook(f);
  remove_hook(b);
  EXPECT_EQ(forward_ops, (std::vector<std::string>{"exp", "sum"}));
  EXPECT_EQ(backward_ops, (std::vector<std::string>{"sum", "exp"}));
  backward_ops.clear();
  backward(sum(exp(x)));
  EXPECT_TRUE(backward_ops.empty());  // removed
}

TEST(Tape, GradLeavesDotGradUntouched) {
  Tensor x = leaf({1, 2});
  Tensor y = mul(x, x);
  Tensor h = mul(y, 2.0);
  auto g = grad(sum(h), {x, y});
  EXPECT_EQ(vec(g[0]), (std::vector<double>{4, 8}));
  EXPECT_EQ(vec(g[1]), (std::vector<double>{2, 2}));
  EXPECT_FALSE(x.grad().defined());
  EXPECT_TRUE(x.autograd_meta()->hooks.empty());  // the capture hooks are removed again
  Tensor unused = leaf({5});
  Tensor z = leaf({1});
  auto g2 = grad(sum(z), {z, unused});
  EXPECT_EQ(vec(g2[1]), (std::vector<double>{0}));
  EXPECT_THROW_MSG(grad(sum(z), {from_vector<double>({1}, {1})}), "grad: an input of shape [1] does not require grad");
}

TEST(Tape, GradRunsOnlyThePathsToItsInputs) {
  // As torch.autograd.grad: entries that do not lead to a requested input do not run, and the
  // ones that do are asked only for the gradients on such a path (no weight gradient for dL/dx).
  Tensor x = leaf({1, 2}), w = leaf({3, 4}), v = leaf({5, 6});
  Tensor loss = add(sum(mul(x, w)), sum(exp(mul(w, v))));  // exp(w v) does not depend on x
  std::vector<std::string> ran;
  std::vector<bool> mul_x_grads;  // for each mul that ran: which of its inputs got a gradient
  int id = add_backward_hook([&](const Entry& e, const std::vector<Tensor>&, const std::vector<Tensor>& gin) {
    ran.push_back(op_name(e.op));
    if (e.op == OpId::Mul) mul_x_grads = {gin[0].defined(), gin[1].defined()};
  });
  std::vector<Tensor> g = grad(loss, {x}, Tensor(), /*retain_graph=*/true);
  EXPECT_EQ(vec(g[0]), (std::vector<double>{3, 4}));
  EXPECT_EQ(ran, (std::vector<std::string>{"add", "sum", "mul"}));  // not sum, exp, mul of the w v branch
  EXPECT_EQ(mul_x_grads, (std::vector<bool>{true, false}));
  // Asking for w too runs both branches and gives every path's sum.
  ran.clear();
  g = grad(loss, {x, w}, Tensor(), true);
  EXPECT_EQ(ran.size(), 6u);
  EXPECT_NEAR(vec(g[1])[0], 1 + 5 * std::exp(15.0), 1e-6 * std::exp(15.0));
  // backward() still fills every leaf.
  backward(loss);
  remove_hook(id);
  EXPECT_TRUE(w.grad().defined() && v.grad().defined() && x.grad().defined());
  EXPECT_EQ(vec(x.grad()), (std::vector<double>{3, 4}));
}

TEST(Tape, TensorUsedTwiceGetsBothPaths) {
  Tensor x = leaf({3});
  backward(sum(add(mul(x, x), exp(x))));
  EXPECT_NEAR(x.grad().item(), 6 + std::exp(3.0), 1e-12);
  Tensor a = leaf({2});
  Tensor b = mul(a, a);  // 4
  Tensor c = mul(b, a);  // a^3 via b and a
  backward(sum(add(c, b)));
  EXPECT_NEAR(a.grad().item(), 3 * 4 + 2 * 2, 1e-12);
}

TEST(Tape, ScalarExpressionAndPrintingOfGradFn) {
  Tensor x = from_vector<float>({1, 2}, {2}).set_requires_grad(true);
  EXPECT_EQ(x.str(), "tensor([1., 2.], requires_grad=True)");
  EXPECT_EQ((x * 2.0).str(), "tensor([2., 4.], grad_fn=<MulBackward0>)");
  EXPECT_EQ(sum(x).str(), "tensor(3., grad_fn=<SumBackward0>)");
  EXPECT_EQ(log_softmax(x).str(), "tensor([-1.3133, -0.3133], grad_fn=<LogSoftmaxBackward0>)");
}

TEST(Tape, RequiresGradRules) {
  Tensor x = leaf({1});
  Tensor y = mul(x, 2.0);
  EXPECT_THROW_MSG(y.set_requires_grad(true), "requires_grad: can only be changed on a leaf tensor");
  EXPECT_THROW_MSG(Tensor(zeros({1}, {DType::F64})).retain_grad(), "retain_grad: tensor does not require grad");
  EXPECT_THROW_MSG(backward(sum(mul(y, 1.0)), from_vector<float>({1}, {})), "backward: dtype mismatch");
}

TEST(Tape, BackwardRunsEntriesUnderTheirRecordedScope) {
  Tensor x = leaf({1, 2});
  Tensor y = raw::clone(x);
  {
    ScopeGuard g("encoder");
    record(OpId::Mul, {x}, {y}, {}, [](BackwardContext&) { GS_CHECK(false, "probe: failing backward"); });
  }
  {
    ScopeGuard caller("train_step");
    // The error names the entry's path, not the caller's ("train_step.encoder").
    EXPECT_THROW_MSG(backward(sum(y)), "probe (encoder): failing backward");
    EXPECT_EQ(current_scope_path(), "train_step");
  }
  EXPECT_EQ(current_scope_path(), "");
}

// An intermediate gradient is freed once the entry that consumes it has run, not at the end of
// the pass: with the saved tensors retained, a chain of 16 tanh holds 16 outputs, and its backward
// adds only the gradients in flight (two or three), not one per entry.
TEST(Tape, BackwardFreesEachGradientOnceConsumed) {
  const int64_t n = 1 << 16;  // 512 KiB of f64 per tensor
  const int64_t bytes = n * static_cast<int64_t>(sizeof(double));
  Tensor x = rand64({n}, 3).set_requires_grad(true);
  Tensor y = x;
  for (int i = 0; i < 16; ++i) y = tanh(y);
  Tensor loss = sum(y);
  CpuAllocator::instance().reset_peak();
  const int64_t before = CpuAllocator::instance().stats().bytes_in_use;
  backward(loss, Tensor(), true);
  const int64_t extra = CpuAllocator::instance().stats().peak_bytes_in_use - before;
  EXPECT_LE(extra, 4 * bytes) << "backward held " << extra / bytes << " gradients of the chain at once";
  EXPECT_TRUE(x.grad().defined());
}

// Found by an engine audit (truth: torch 1.13 on the same steps). After a create_graph pass, .grad
// was the flowing gradient itself: one tensor for both leaves of sum(a + b), or a 0-stride expand
// for sum(a), and the next plain backward's in-place add changed the other leaf or summed every
// element into one cell.
TEST(Tape, CreateGraphLeavesEachLeafADenseGradOfItsOwn) {
  Tensor a = leaf({1, 2, 3}), b = leaf({1, 1, 1});
  backward(sum(add(a, b)), Tensor(), false, /*create_graph=*/true);
  EXPECT_FALSE(a.grad().is_same(b.grad()));
  EXPECT_TRUE(a.grad().is_contiguous() && a.grad().strides() == Strides{1});
  backward(sum(mul(a, a)));  // reaches a only
  EXPECT_EQ(vec(a.grad()), (std::vector<double>{3, 5, 7}));
  EXPECT_EQ(vec(b.grad()), (std::vector<double>{1, 1, 1}));
  // The caller's seed never becomes .grad.
  Tensor x = leaf({1, 2, 3});
  Tensor seed = from_vector<double>({1, 1, 1}, {3});
  backward(add(x, 0.0), seed, false, true);
  backward(mul(x, 10.0), seed);
  EXPECT_EQ(vec(seed), (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(vec(x.grad()), (std::vector<double>{11, 11, 11}));
}

// A gradient penalty reads .grad after a create_graph pass and saves it in its own graph; a later
// backward adding into .grad in place changed what that graph had saved.
TEST(Tape, AccumulatingIntoGradKeepsWhatAPenaltyGraphSaved) {
  Tensor x = leaf({1, 2, 3});
  backward(sum(mul(mul(x, x), x)), Tensor(), false, /*create_graph=*/true);  // x.grad = 3x^2, a graph
  Tensor g = x.grad();
  Tensor penalty = sum(mul(g, g));  // d/dx = 2 g * 6x = 36 x^3
  backward(penalty, Tensor(), /*retain_graph=*/true);
  backward(penalty);
  // x.grad = 3x^2 + 2 * 36x^3, and the saved g unchanged.
  EXPECT_EQ(vec(g), (std::vector<double>{3, 12, 27}));
  EXPECT_EQ(vec(x.grad()), (std::vector<double>{3 + 72, 12 + 576, 27 + 1944}));
}

TEST(Tape, RetainedGradIsACopyOfTheFlowingGradient) {
  Tensor x = leaf({1, 2, 3});
  Tensor y = mul(x, 2.0);
  y.retain_grad();
  Tensor seed = from_vector<double>({1, 1, 1}, {3});
  backward(y, seed);
  raw::fill_(seed, 5.0);
  EXPECT_EQ(vec(y.grad()), (std::vector<double>{1, 1, 1}));
  Tensor z = mul(x, 2.0);
  z.retain_grad();
  backward(sum(z));
  EXPECT_TRUE(z.grad().is_contiguous() && z.grad().strides() == Strides{1});  // not sum's 0-stride expand
}

// grad() with one tensor twice: each position gets the gradient once, and no capture hook is left
// behind (an empty one made every later backward through the tensor throw bad_function_call).
TEST(Tape, GradWithAnInputTwice) {
  Tensor x = leaf({1, 2, 3});
  auto g = grad(sum(mul(x, x)), {x, x});
  EXPECT_EQ(vec(g[0]), (std::vector<double>{2, 4, 6}));
  EXPECT_EQ(vec(g[1]), (std::vector<double>{2, 4, 6}));
  EXPECT_TRUE(x.autograd_meta()->hooks.empty());
  Tensor y = mul(x, 3.0);
  Tensor loss = sum(mul(y, y));
  g = grad(loss, {y, y}, Tensor(), /*retain_graph=*/true);
  EXPECT_EQ(vec(g[1]), (std::vector<double>{6, 12, 18}));
  backward(loss);
  EXPECT_EQ(vec(x.grad()), (std::vector<double>{18, 36, 54}));
}

// grad() runs (and frees) only the entries on its paths: an upstream entry freed by an earlier
// backward is no obstacle, and one it did not run can still be backpropagated through.
TEST(Tape, GradLeavesTheRestOfTheTapeAlone) {
  Tensor x = leaf({0, 1, 2}), a = leaf({1, 1, 1});
  Tensor h = exp(x);
  auto g = grad(sum(mul(h, a)), {a});
  EXPECT_NEAR(vec(g[0])[2], std::exp(2.0), 1e-12);
  backward(sum(h));  // exp did not run in grad(), so it is still there
  EXPECT_NEAR(vec(x.grad())[1], std::exp(1.0), 1e-12);
  Tensor y = exp(x);
  backward(sum(y));  // frees exp
  g = grad(sum(mul(y, y)), {y});
  EXPECT_NEAR(vec(g[0])[1], 2 * std::exp(1.0), 1e-12);
  EXPECT_THROW_MSG(backward(sum(mul(y, y))), "was freed by an earlier backward");
}

TEST(Tape, AHookMayRemoveItselfWhileRunning) {
  int forward_calls = 0, backward_calls = 0;
  int f = 0, b = 0;
  f = add_forward_hook([&](const Entry&, const std::vector<Tensor>&) {
    ++forward_calls;
    remove_hook(f);
  });
  b = add_backward_hook([&](const Entry&, const std::vector<Tensor>&, const std::vector<Tensor>&) {
    ++backward_calls;
    remove_hook(b);
  });
  Tensor x = leaf({1, 2});
  backward(sum(exp(x)));
  EXPECT_EQ(forward_calls, 1);
  EXPECT_EQ(backward_calls, 1);
}

TEST(Tape, ZeroDimTransposeAndGradChecks) {
  Tensor s = scalar_tensor(2.0, {DType::F64}).set_requires_grad(true);
  Tensor t = transpose(s, 0, 0);
  backward(mul(t, 3.0));
  EXPECT_EQ(s.grad().item(), 3.0);
  EXPECT_THROW_MSG(slice(s, 0, 0, 1), "slice: cannot slice a 0-d tensor");
  EXPECT_THROW_MSG(narrow(s, 0, 0, 1), "narrow: cannot narrow a 0-d tensor");
  Tensor x = leaf({1, 2});
  Tensor y = mul(x, 2.0);
  EXPECT_THROW_MSG(y.set_requires_grad(false), "requires_grad: can only be changed on a leaf tensor");
  EXPECT_THROW_MSG(x.set_grad(zeros({2}, {DType::F32})), "set_grad: gradient f32 on cpu does not match tensor f64");
  register_hook(x, [](const Tensor& g) { return raw::to_dtype(g, DType::F32); });
  EXPECT_THROW_MSG(backward(sum(y)), "hook: a gradient hook returned f32 on cpu for a gradient f64 on cpu");
}
