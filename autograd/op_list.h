// The one list of differentiable ops. From it come the OpId enum, the name table, the count
// check and the gradcheck coverage test (tests/autograd/test_op_coverage.cpp). An op is
// Recorded (it appends a tape entry and has a backward formula next to its forward) or
// Composite (built from recorded ops; it needs no backward of its own).
//
// To add an op: add a line here, write forward+backward in autograd/functions/, declare it in
// autograd/ops.h, and add its gradcheck case; the coverage test fails until you do.
#pragma once
#include <cstdint>

// X(EnumName, "name", Kind)
#define GS_OP_LIST(X)                                   \
  X(Add, "add", Recorded)                               \
  X(Sub, "sub", Recorded)                               \
  X(Mul, "mul", Recorded)                               \
  X(Div, "div", Recorded)                               \
  X(Neg, "neg", Recorded)                               \
  X(Pow, "pow", Recorded)                               \
  X(Exp, "exp", Recorded)                               \
  X(Log, "log", Recorded)                               \
  X(Sqrt, "sqrt", Recorded)                             \
  X(Abs, "abs", Recorded)                               \
  X(Clamp, "clamp", Recorded)                           \
  X(Relu, "relu", Recorded)                             \
  X(LeakyRelu, "leaky_relu", Recorded)                  \
  X(Gelu, "gelu", Recorded)                             \
  X(Sigmoid, "sigmoid", Recorded)                       \
  X(Tanh, "tanh", Recorded)                             \
  X(Sum, "sum", Recorded)                               \
  X(Mean, "mean", Recorded)                             \
  X(Max, "max", Recorded)                               \
  X(Min, "min", Recorded)                               \
  X(Var, "var", Composite)                              \
  X(Matmul, "matmul", Recorded)                         \
  X(Softmax, "softmax", Recorded)                       \
  X(LogSoftmax, "log_softmax", Recorded)                \
  X(CrossEntropy, "cross_entropy", Recorded)            \
  X(MseLoss, "mse_loss", Composite)                     \
  X(Where, "where", Recorded)                           \
  X(Gather, "gather", Recorded)                         \
  X(IndexSelect, "index_select", Recorded)              \
  X(Reshape, "reshape", Recorded)                       \
  X(Permute, "permute", Recorded)                       \
  X(Transpose, "transpose", Composite)                  \
  X(Slice, "slice", Recorded)                           \
  X(Unsqueeze, "unsqueeze", Composite)                  \
  X(Squeeze, "squeeze", Composite)                      \
  X(Expand, "expand", Recorded)                         \
  X(Contiguous, "contiguous", Recorded)                 \
  X(Cat, "cat", Recorded)                               \
  X(Stack, "stack", Composite)                          \
  X(Conv2d, "conv2d", Recorded)                         \
  X(MaxPool2d, "max_pool2d", Recorded)                  \
  X(AvgPool2d, "avg_pool2d", Recorded)                  \
  X(AdaptiveAvgPool2d, "adaptive_avg_pool2d", Recorded) \
  X(BatchNorm, "batch_norm", Recorded)                  \
  X(Dropout, "dropout", Recorded)                       \
  X(AllReduceSum, "all_reduce_sum", Recorded)           \
  X(SyncBatchNorm, "sync_batch_norm", Recorded)

namespace gs {

enum class OpKind : uint8_t { Recorded, Composite };

enum class OpId : uint16_t {
#define GS_OP_ENUM(name, str, kind) name,
  GS_OP_LIST(GS_OP_ENUM)
#undef GS_OP_ENUM
      Count
};

#define GS_OP_COUNT_ONE(name, str, kind) +1
inline constexpr int kOpCount = 0 GS_OP_LIST(GS_OP_COUNT_ONE);
#undef GS_OP_COUNT_ONE
static_assert(kOpCount == static_cast<int>(OpId::Count), "op list and OpId disagree");
static_assert(kOpCount == 47, "update this count (and the gradcheck cases) when you add an op");

inline constexpr const char* kOpNames[] = {
#define GS_OP_NAME(name, str, kind) str,
    GS_OP_LIST(GS_OP_NAME)
#undef GS_OP_NAME
};
inline constexpr OpKind kOpKinds[] = {
#define GS_OP_KIND(name, str, kind) OpKind::kind,
    GS_OP_LIST(GS_OP_KIND)
#undef GS_OP_KIND
};

inline const char* op_name(OpId op) { return kOpNames[static_cast<int>(op)]; }
inline OpKind op_kind(OpId op) { return kOpKinds[static_cast<int>(op)]; }

}  // namespace gs
