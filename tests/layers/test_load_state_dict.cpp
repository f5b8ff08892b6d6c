// load_state_dict: round trip, and each error (missing, unexpected, shape, dtype) naming the key
// and both shapes/dtypes; nothing is copied when anything is wrong.
#include "tests/layers/layers_test_helpers.h"

#include "tensor/raw_ops.h"

namespace gs::nn {
namespace {

NamedTensors cloned_state(const Module& m) {
  NamedTensors out;
  for (auto& [k, t] : m.state_dict()) out.emplace_back(k, raw::clone(t));
  return out;
}

TEST(LoadStateDict, RoundTripCopiesValues) {
  manual_seed(1);
  auto a = make_model("fashionnet");
  manual_seed(2);
  auto b = make_model("fashionnet");
  std::dynamic_pointer_cast<BatchNorm2d>(a->child("1"))->num_batches_tracked().data<int64_t>()[0] = 7;
  b->load_state_dict(cloned_state(*a));
  auto sa = a->state_dict(), sb = b->state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) test::expect_close(sb[i].second, sa[i].second, 0, sa[i].first);
  EXPECT_EQ(sb[6].second.item(), 7);
  // b's tensors are still its own (values copied, not handles shared) and still parameters.
  EXPECT_FALSE(sb[0].second.is_same(sa[0].second));
  EXPECT_TRUE(sb[0].second.requires_grad());
}

TEST(LoadStateDict, MissingKey) {
  auto net = make_model("mlp");
  NamedTensors state = cloned_state(*net);
  state.erase(state.begin() + 3);  // "3.bias"
  EXPECT_THROW_MSG(net->load_state_dict(state), "missing key(s): '3.bias'");
  EXPECT_NO_THROW(net->load_state_dict(state, /*strict=*/false));
}

TEST(LoadStateDict, UnexpectedKey) {
  auto net = make_model("mlp");
  NamedTensors state = cloned_state(*net);
  state.emplace_back("7.weight", zeros({2, 2}));
  EXPECT_THROW_MSG(net->load_state_dict(state), "unexpected key(s): '7.weight'");
  EXPECT_NO_THROW(net->load_state_dict(state, /*strict=*/false));
}

TEST(LoadStateDict, WrongShapeNamesKeyAndBothShapes) {
  auto net = make_model("mlp");
  NamedTensors state = cloned_state(*net);
  state[2].second = zeros({128, 255});
  EXPECT_THROW_MSG(net->load_state_dict(state),
                   "size mismatch for '3.weight': checkpoint has [128,255], the model has [128,256]");
  // Shape errors are errors even when not strict (as PyTorch).
  EXPECT_THROW_MSG(net->load_state_dict(state, false), "size mismatch for '3.weight'");
}

TEST(LoadStateDict, WrongDtypeNamesKeyAndBothDtypes) {
  auto net = make_model("fashionnet");
  NamedTensors state = cloned_state(*net);
  state[6].second = zeros({}, {DType::F32});  // 1.num_batches_tracked should be i64
  state[0].second = raw::to_dtype(state[0].second, DType::F64);
  try {
    net->load_state_dict(state);
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("dtype mismatch for '1.num_batches_tracked': checkpoint has f32, the model has i64"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("dtype mismatch for '0.weight': checkpoint has f64, the model has f32"), std::string::npos)
        << msg;
  }
}

TEST(LoadStateDict, NothingIsCopiedWhenAnyKeyIsBad) {
  auto net = make_model("mlp");
  NamedTensors state = cloned_state(*net);
  std::vector<float> before = net->state_dict()[0].second.to_vector<float>();
  state[0].second = ones(state[0].second.shape());
  state[5].second = zeros({3});  // wrong shape for 5.bias
  EXPECT_THROW_MSG(net->load_state_dict(state), "5.bias");
  EXPECT_EQ(net->state_dict()[0].second.to_vector<float>(), before);
}

TEST(LoadStateDict, DuplicateKeyIsAnError) {
  auto net = make_model("mlp");
  NamedTensors state = cloned_state(*net);
  state.push_back(state[0]);
  EXPECT_THROW_MSG(net->load_state_dict(state), "key '1.weight' appears twice");
}

TEST(LoadStateDict, EveryProblemIsOnOneLineAndLongKeyListsAreCut) {
  auto net = make_model("fashionnet");
  NamedTensors state = cloned_state(*net);
  NamedTensors strange;
  for (int i = 0; i < 9; ++i) strange.emplace_back(format("extra.%d", i), zeros({1}));
  strange.emplace_back(state[0].first, zeros({1}));  // a size mismatch too
  try {
    net->load_state_dict(strange);
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(
        msg.find("unexpected key(s): 'extra.0', 'extra.1', 'extra.2', 'extra.3', 'extra.4', 'extra.5' and 3 more"),
        std::string::npos)
        << msg;
    EXPECT_NE(msg.find(format("missing key(s): '%s'", state[1].first.c_str())), std::string::npos) << msg;
    EXPECT_NE(msg.find(format("and %zu more", state.size() - 1 - 6)), std::string::npos) << msg;
    EXPECT_NE(msg.find("size mismatch for '0.weight'"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace gs::nn
