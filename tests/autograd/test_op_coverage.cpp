// Fails, naming them, when an op of autograd/op_list.h has no GS_GRADCHECK_TEST anywhere in
// tests/autograd/ (the registry is filled at static-initialisation time, before any test runs).
#include "tests/autograd/gradcheck_registry.h"

TEST(OpCoverage, EveryOpHasAGradcheckTest) {
  std::string missing;
  int count = 0;
#define GS_CHECK_COVERED(name, str, kind)                                               \
  if (!::gs::test::gradcheck_covered_ops().count(::gs::OpId::name)) {                   \
    missing += std::string(missing.empty() ? "" : ", ") + #name + " (\"" + str + "\")"; \
  }                                                                                     \
  count++;
  GS_OP_LIST(GS_CHECK_COVERED)
#undef GS_CHECK_COVERED
  EXPECT_EQ(count, gs::kOpCount);
  EXPECT_TRUE(missing.empty()) << "ops of autograd/op_list.h without a GS_GRADCHECK_TEST: " << missing;
}
