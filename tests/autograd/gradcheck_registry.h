// Registers one gradcheck test per op of autograd/op_list.h, so test_op_coverage.cpp can fail
// when an op has none. Usage, in any tests/autograd/*.cpp:
//   GS_GRADCHECK_TEST(Relu, AwayFromKink) { EXPECT_GRADCHECK(..., {...}); }
// defines TEST(Gradcheck_Relu, AwayFromKink) and marks OpId::Relu as covered.
#pragma once
#include <set>

#include "autograd/op_list.h"
#include "tests/helpers.h"

namespace gs::test {

inline std::set<OpId>& gradcheck_covered_ops() {
  static std::set<OpId> ops;
  return ops;
}
inline bool mark_gradcheck_covered(OpId op) {
  gradcheck_covered_ops().insert(op);
  return true;
}

}  // namespace gs::test

#define GS_GRADCHECK_TEST(OP, NAME)                                                                             \
  static const bool gs_gradcheck_registered_##OP##_##NAME = ::gs::test::mark_gradcheck_covered(::gs::OpId::OP); \
  TEST(Gradcheck_##OP, NAME)
