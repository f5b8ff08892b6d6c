// create_graph: gradients that are themselves differentiable. Every op's own double backward is
// checked by gradgradcheck inside EXPECT_GRADCHECK (tests/autograd/test_gradcheck_*.cpp); here are
// the engine's rules and whole computations: Hessian-vector products, a gradient penalty through a
// small CNN, and what a plain backward still does.
#include "autograd/nn_ops.h"
#include "tests/helpers.h"

using namespace gs;
using namespace gs::test;
using V = std::vector<Tensor>;

namespace {
// conv -> batch norm -> relu -> max pool -> linear -> cross-entropy, on f64 parameters.
Tensor small_cnn_loss(const Tensor& x, const V& p, const Tensor& labels) {
  Conv2dParams conv;
  conv.pad_h = conv.pad_w = 1;
  Pool2dParams pool;  // 2x2, stride 2
  Tensor h = conv2d(x, p[0], p[1], conv);
  h = batch_norm(h, p[2], p[3], Tensor(), Tensor(), true, 0.1, 1e-5);
  h = max_pool2d(tanh(h), pool);
  h = reshape(h, {x.size(0), -1});
  return cross_entropy(add(matmul(h, p[4]), p[5]), labels);
}

// gradcheck evaluates its function under no_grad on plain copies of the inputs; a function that
// takes gradients inside turns recording back on and makes the copies leaves that require grad.
V as_leaves(const V& in) {
  V out = in;
  for (auto& t : out) {
    if (!t.requires_grad()) t = t.detach().set_requires_grad(true);
  }
  return out;
}

V small_cnn_params() {
  return {rand64({3, 2, 3, 3}, 11, -0.5, 0.5), rand64({3}, 12), rand64({3}, 13, 0.5, 1.5), rand64({3}, 14),
          rand64({12, 4}, 15, -0.5, 0.5),      rand64({4}, 16)};
}
}  // namespace

TEST(DoubleBackward, HessianVectorProductOfACubic) {
  // f = sum(x^3 * c): df/dx = 3 c x^2, and d<df/dx, v>/dx = 6 c x v.
  Tensor x = from_vector<double>({1.0, -2.0, 0.5}, {3}).set_requires_grad(true);
  Tensor c = from_vector<double>({2.0, 1.0, -3.0}, {3});
  Tensor v = from_vector<double>({1.0, 0.5, 2.0}, {3});
  backward(sum(mul(pow(x, 3.0), c)), Tensor(), false, true);
  Tensor g = x.grad();
  ASSERT_TRUE(g.requires_grad()) << "with create_graph the gradient is part of the graph";
  EXPECT_FALSE(g.is_leaf());
  expect_close(g.detach(), from_vector<double>({6.0, 12.0, -2.25}, {3}), 1e-12);
  Tensor hv = grad(sum(mul(g, v)), {x})[0];
  expect_close(hv, from_vector<double>({12.0, -6.0, -18.0}, {3}), 1e-12);
  x.zero_grad();  // .grad's graph refers back to x (ZeroGradReleases... below)
}

TEST(DoubleBackward, ThirdDerivativesThroughRecordedDerivatives) {
  // tanh''' at x from three nested create_graph passes: d3/dx3 tanh = -2 (1 - t^2)(1 - 3 t^2).
  Tensor x = from_vector<double>({0.3, -1.1}, {2}).set_requires_grad(true);
  Tensor g1 = grad(sum(tanh(x)), {x}, Tensor(), false, true)[0];
  Tensor g2 = grad(sum(g1), {x}, Tensor(), false, true)[0];
  Tensor g3 = grad(sum(g2), {x})[0];
  std::vector<double> expected;
  for (double v : {0.3, -1.1}) {
    double t = std::tanh(v);
    expected.push_back(-2 * (1 - t * t) * (1 - 3 * t * t));
  }
  expect_close(g3, from_vector<double>(expected, {2}), 1e-12);
  // Third derivatives of x gelu(x): gelu's second derivative is a recorded derivative entry.
  EXPECT_GRADCHECK(
      [](const V& in_) {
        EnableGradGuard enable;
        V in = as_leaves(in_);
        Tensor g = grad(sum(mul(gelu(in[0]), in[0])), {in[0]}, Tensor(), false, true)[0];
        return grad(sum(mul(g, g)), {in[0]}, Tensor(), false, true)[0];
      },
      {rand64({5}, 3)}, GradcheckOptions{}, /*first_order_only=*/true);
}

TEST(DoubleBackward, GradientPenaltyThroughACnnMatchesFiniteDifferences) {
  // WGAN-GP / R1 style: P = |dL/dx|^2 + L, differentiated w.r.t. every parameter and the input.
  Tensor labels = from_vector<int64_t>({0, 3}, {2});
  auto penalty = [labels](const V& in_) {
    EnableGradGuard enable;
    V in = as_leaves(in_);
    V params(in.begin() + 1, in.end());
    Tensor x = in[0];
    Tensor loss = small_cnn_loss(x, params, labels);
    Tensor gx = grad(loss, {x}, Tensor(), false, true)[0];
    return add(sum(mul(gx, gx)), loss);
  };
  V inputs = {rand64({2, 2, 4, 4}, 10)};
  for (auto& p : small_cnn_params()) inputs.push_back(p);
  EXPECT_TRUE(gradcheck_ok(penalty, inputs, GradcheckOptions{}, /*first_order_only=*/true));
}

TEST(DoubleBackward, BatchNormThirdDerivativesMatchFiniteDifferences) {
  // Batch norm's create_graph backward is a derivative entry whose plain backward is a fused
  // kernel and whose create_graph backward is recorded ops. The function below is a gradient
  // through batch norm: gradcheck checks its derivative (the fused double backward) and
  // gradgradcheck its second (the recorded one, third derivatives of batch norm).
  for (bool training : {true, false}) {
    for (bool affine : {true, false}) {
      Tensor rm = rand64({3}, 51).detach(), rv = rand64({3}, 52, 0.5, 2.0).detach();
      Tensor bias = rand64({3}, 53).detach(), seed = rand64({2, 3, 2, 2}, 54).detach();
      auto fn = [=](const V& in_) {
        EnableGradGuard enable;
        V in = as_leaves(in_);
        Tensor w = affine ? in[1] : Tensor();
        Tensor y = batch_norm(in[0], w, affine ? bias : Tensor(), rm, rv, training, 0.0, 1e-5);
        V wrt = {in[0]};
        if (affine) wrt.push_back(w);
        V g = grad(sum(mul(tanh(y), seed)), wrt, Tensor(), false, true);
        return affine ? add(g[0], reshape(g[1], {1, 3, 1, 1})) : g[0];
      };
      V inputs = {rand64({2, 3, 2, 2}, 55)};
      if (affine) inputs.push_back(rand64({3}, 56, 0.5, 1.5));
      SCOPED_TRACE(std::string(training ? "training" : "eval") + (affine ? ", affine" : ""));
      EXPECT_GRADCHECK(fn, inputs);
    }
  }
}

TEST(DoubleBackward, CreateGraphGivesThePlainGradientsAndKeepsTheTape) {
  Tensor labels = from_vector<int64_t>({1, 2}, {2});
  Tensor x = rand64({2, 2, 4, 4}, 20);
  V p = small_cnn_params();
  V wrt = p;
  wrt.push_back(x);
  Tensor loss = small_cnn_loss(x, p, labels);
  V plain = grad(loss, wrt, Tensor(), /*retain_graph=*/true);
  V recorded = grad(loss, wrt, Tensor(), false, /*create_graph=*/true);
  for (size_t i = 0; i < wrt.size(); ++i) {
    EXPECT_FALSE(plain[i].requires_grad());
    EXPECT_TRUE(recorded[i].requires_grad()) << "gradient " << i;
    expect_close(recorded[i].detach(), plain[i], 1e-12, "gradient " + std::to_string(i));
  }
  // create_graph implies retain_graph: the tape can be walked again.
  V again = grad(loss, wrt);
  for (size_t i = 0; i < wrt.size(); ++i) expect_close(again[i], plain[i], 1e-12);
}

TEST(DoubleBackward, DerivativeEntriesShowOnTheTapeOnlyWithCreateGraph) {
  Tensor x = rand64({1, 1, 4, 4}, 30), w = rand64({2, 1, 3, 3}, 31);
  Pool2dParams pool;    // 2x2, stride 2
  auto loss_of = [&] {  // squared, so that the pool's gradient depends on w and x
    Tensor y = max_pool2d(conv2d(x, w, Tensor(), Conv2dParams{}), pool);
    return sum(mul(y, y));
  };
  auto count_derivatives = [] {
    int n = 0;
    for (auto& e : tape_entries()) n += e->derivative ? 1 : 0;
    return n;
  };
  Tensor loss = loss_of();
  V plain = grad(loss, {x, w});
  EXPECT_EQ(count_derivatives(), 0) << "a plain backward records nothing";
  Tensor loss2 = loss_of();
  V recorded = grad(loss2, {x, w}, Tensor(), false, true);
  EXPECT_GE(count_derivatives(), 3) << tape_str();  // max_pool2d, conv2d's data and weight
  std::string tape = tape_str();
  EXPECT_NE(tape.find("max_pool2d_backward"), std::string::npos) << tape;
  EXPECT_NE(tape.find("conv2d_backward"), std::string::npos) << tape;
  EXPECT_NE(recorded[0].str().find("BackwardBackward0"), std::string::npos) << recorded[0].str();
}

TEST(DoubleBackward, LeafGradAccumulatesOutOfPlaceWithCreateGraph) {
  Tensor x = from_vector<double>({2.0}, {1}).set_requires_grad(true);
  backward(sum(mul(x, x)), Tensor(), false, true);  // .grad = 2x
  Tensor first = x.grad();
  backward(sum(mul(mul(x, x), x)), Tensor(), false, true);  // .grad += 3x^2
  EXPECT_DOUBLE_EQ(first.item(), 4.0) << "the first gradient is not modified in place";
  EXPECT_DOUBLE_EQ(x.grad().item(), 16.0);
  Tensor second = grad(sum(x.grad()), {x})[0];  // d(2x + 3x^2)/dx = 2 + 6x
  EXPECT_DOUBLE_EQ(second.item(), 14.0);
  x.zero_grad();
}

TEST(DoubleBackward, AGradientThatDoesNotDependOnTheInputHasNoGraph) {
  // d(3x)/dx = 3 does not depend on x: differentiating it again is the usual "does not require
  // grad" error, as in torch (allow_unused aside).
  Tensor x = from_vector<double>({1.0, 2.0}, {2}).set_requires_grad(true);
  Tensor g = grad(sum(mul(x, 3.0)), {x}, Tensor(), false, true)[0];
  EXPECT_FALSE(g.requires_grad());
  EXPECT_THROW_MSG(grad(sum(g), {x}), "does not require grad");
}

TEST(DoubleBackward, APassRecordsExactlyWhenItCreatesAGraphWhateverTheCallersMode) {
  Tensor x = from_vector<double>({1.5, -0.5}, {2}).set_requires_grad(true);
  int recorded = 0;
  int id = add_forward_hook([&](const Entry&, const std::vector<Tensor>&) { ++recorded; });
  Tensor y = sum(mul(mul(x, x), tanh(x)));
  recorded = 0;
  {
    EnableGradGuard enable;  // the caller records, the plain pass does not
    grad(y, {x}, Tensor(), true);
  }
  EXPECT_EQ(recorded, 0);
  Tensor g;
  {
    NoGradGuard no_grad;  // the caller does not record, the create_graph pass does
    g = grad(y, {x}, Tensor(), false, true)[0];
  }
  remove_hook(id);
  EXPECT_GT(recorded, 0);
  ASSERT_TRUE(g.requires_grad());
  EXPECT_TRUE(GradMode::is_enabled()) << "the caller's mode is restored";
  // d/dx of d(x^2 tanh x)/dx = 2 tanh + 4x sech^2 - 2x^2 sech^2 tanh
  Tensor h = grad(sum(g), {x})[0];
  std::vector<double> expected;
  for (double v : {1.5, -0.5}) {
    double t = std::tanh(v), s2 = 1 - t * t;
    expected.push_back(2 * t + 4 * v * s2 - 2 * v * v * s2 * t);
  }
  expect_close(h, from_vector<double>(expected, {2}), 1e-12);
}

TEST(DoubleBackward, ZeroGradReleasesTheGraphThatCreateGraphLeavesInGrad) {
  // As in torch, backward(create_graph) stores in x.grad a graph that refers back to x: a cycle
  // that zero_grad (which resets .grad) breaks. grad() stores nothing and makes none.
  Tensor x = from_vector<double>({1.0, 2.0}, {2}).set_requires_grad(true);
  backward(sum(mul(x, x)), Tensor(), false, true);
  ASSERT_TRUE(x.grad().requires_grad());
  std::weak_ptr<Entry> entry = x.grad().autograd_meta()->entry;
  ASSERT_FALSE(entry.expired());
  x.zero_grad();
  EXPECT_TRUE(entry.expired());
}

TEST(DoubleBackward, CrossEntropyWithEveryTargetIgnoredHasZeroGradientsWithCreateGraph) {
  // The mean over no counted row is nan (0/0, as torch); its gradient is zeros in torch, with or
  // without create_graph. The recorded backward scaled every row by the nan, so 0 * nan made it nan,
  // and train --grad-penalty would have put nan in the weights on such a batch.
  Tensor logits = rand64({3, 4}, 31).set_requires_grad(true);
  Tensor partly = from_vector<int64_t>({-100, 2, -100}, {3});
  for (double smoothing : {0.0, 0.1}) {
    CrossEntropyOptions opt{.label_smoothing = smoothing};
    Tensor all_ignored = from_vector<int64_t>({-100, -100, -100}, {3});
    Tensor loss = cross_entropy(logits, all_ignored, opt);
    EXPECT_TRUE(std::isnan(loss.item()));
    Tensor plain = grad(loss, {logits}, Tensor(), /*retain_graph=*/true)[0];
    Tensor recorded = grad(loss, {logits}, Tensor(), false, /*create_graph=*/true)[0];
    expect_close(plain, zeros({3, 4}, {DType::F64}), 0, "plain");
    expect_close(recorded.detach(), zeros({3, 4}, {DType::F64}), 0, "create_graph");
    // Some rows counted: the recorded gradient is still the plain one, ignored rows 0.
    loss = cross_entropy(logits, partly, opt);
    plain = grad(loss, {logits}, Tensor(), true)[0];
    recorded = grad(loss, {logits}, Tensor(), false, true)[0];
    expect_close(recorded.detach(), plain, 1e-12, "partly ignored");
    EXPECT_EQ(plain.to_vector<double>()[0], 0.0);
  }
}
