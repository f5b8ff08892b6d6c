// Errors name the op and the shapes; dims out of range, dtype and device mismatches, and the
// module path of a ScopeGuard appear in the text.
#include "tensor/raw_nn.h"
#include "tensor/raw_ops.h"
#include "tensor/scope.h"
#include "tests/helpers.h"

using namespace gs;

TEST(Errors, OpNameAndShapes) {
  EXPECT_THROW_MSG(raw::binary(raw::BinaryOp::Add, zeros({2, 3}), zeros({4, 5})),
                   "add: shapes [2,3] and [4,5] cannot be broadcast");
  EXPECT_THROW_MSG(raw::matmul(zeros({2, 3}), zeros({4, 5})), "matmul: inner dimensions differ, [2,3] @ [4,5]");
  EXPECT_THROW_MSG(raw::mm(zeros({2}), zeros({2, 2})), "matmul: mm expects 2-d operands, got [2] and [2,2]");
  EXPECT_THROW_MSG(raw::gather(zeros({2, 3}), 1, from_vector<int64_t>({0, 5, 0, 1, 1, 1}, {2, 3})),
                   "gather: index 5 is out of range for dim 1 of size 3");
  EXPECT_THROW_MSG(raw::index_select(zeros({2, 3}), 0, zeros({2})),
                   "index_select: index must have dtype i64, got f32[2]");
}

TEST(Errors, BatchNormDoubleBackwardNamesTheOperandAtFault) {
  Tensor x = zeros({4, 3, 2, 2}), gy = zeros({4, 3, 2, 2}), stat = ones({3});
  auto call = [&](const Tensor& g, const Tensor& ggx, const Tensor& ggw) {
    return raw::batch_norm_double_backward(x, g, Tensor(), stat, stat, ggx, ggw, Tensor(), true, true, true, true);
  };
  EXPECT_THROW_MSG(call(zeros({4, 3}), Tensor(), Tensor()),
                   "batch_norm_double_backward: gradient [4,3] does not match the output shape [4,3,2,2]");
  EXPECT_THROW_MSG(call(gy, zeros({4, 3, 2}), Tensor()),
                   "batch_norm_double_backward: gradient [4,3,2] does not match the output shape [4,3,2,2]");
  EXPECT_THROW_MSG(call(gy, Tensor(), zeros({4})),
                   "batch_norm_double_backward: weight gradient's gradient [4] must be (3) for input [4,3,2,2]");
  EXPECT_THROW_MSG(call(zeros({4, 3, 2, 2}, {DType::F64}), Tensor(), Tensor()),
                   "batch_norm_double_backward: dtype mismatch, f32[4,3,2,2] vs f64[4,3,2,2]");
  // Nothing asked for: nothing computed, no error.
  raw::BatchNormDoubleGrads none = raw::batch_norm_double_backward(x, gy, Tensor(), stat, stat, Tensor(), Tensor(),
                                                                   Tensor(), true, false, false, false);
  EXPECT_FALSE(none.x.defined() || none.weight.defined() || none.gy.defined());
}

TEST(Errors, DimOutOfRange) {
  Tensor x = zeros({2, 3});
  EXPECT_THROW_MSG(raw::reduce(raw::ReduceOp::Sum, x, {2}, false),
                   "sum: dim 2 out of range for a 2-d tensor (expected -2..1)");
  EXPECT_THROW_MSG(raw::reduce(raw::ReduceOp::Max, x, {-3}, false), "max: dim -3 out of range");
  EXPECT_THROW_MSG(raw::reduce(raw::ReduceOp::Sum, x, {1, -1}, false), "sum: dim 1 appears twice");
  EXPECT_THROW_MSG(raw::reduce(raw::ReduceOp::Max, zeros({2, 0}), {1}, false), "max: cannot reduce the empty dim 1");
  EXPECT_THROW_MSG(raw::softmax(x, 5, false), "softmax: dim 5 out of range");
  EXPECT_THROW_MSG(raw::transpose(x, 0, 2), "transpose: dim 2 out of range");
  EXPECT_THROW_MSG(x.size(-3), "size: dim -3 out of range");
  EXPECT_EQ(x.size(-1), 3);
}

TEST(Errors, DtypeMismatch) {
  EXPECT_THROW_MSG(raw::binary(raw::BinaryOp::Mul, zeros({2}), zeros({2}, {DType::F64})),
                   "mul: dtype mismatch, f32[2] vs f64[2]");
  EXPECT_THROW_MSG(raw::unary(raw::UnaryOp::Exp, zeros({2}, {DType::I64})), "exp: dtype i64 is not supported");
  EXPECT_THROW_MSG(zeros({2}).data<double>(), "data: tensor has dtype f32, asked for f64");
}

TEST(Errors, CudaDeviceWithoutBackend) {
  Tensor on_gpu;
  try {
    on_gpu = zeros({2}, {DType::F32, Device::cuda(0)});
  } catch (const Error& e) {
    // No CUDA backend in this build, or no GPU on this machine: the message says which and
    // names the device.
    const std::string what = e.what();
    const bool no_backend = what.find("device cuda:0: this gradscope build has no CUDA backend") != std::string::npos;
    const bool no_device = what.find("cuda:0: no CUDA device") != std::string::npos;
    EXPECT_TRUE(no_backend || no_device) << what;
    EXPECT_THROW_MSG(empty({2}, {DType::F32, Device::cuda(1)}), no_backend ? "no CUDA backend" : "no CUDA device");
    return;
  }
  // With a CUDA backend, mixing devices is the error.
  EXPECT_THROW_MSG(raw::binary(raw::BinaryOp::Add, zeros({2}), on_gpu),
                   "expected all tensors on one device, got cpu and cuda:0");
}

TEST(Errors, DeviceParse) {
  EXPECT_EQ(Device::parse("cuda:2"), Device::cuda(2));
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_THROW_MSG(Device::parse("gpu"), "device: 'gpu' is not a device");
  EXPECT_THROW_MSG(Device::parse("cuda:x"), "is not a device");
}

TEST(Errors, ScopePathInMessage) {
  {
    ScopeGuard outer("features");
    ScopeGuard inner("3");
    EXPECT_EQ(current_scope_path(), "features.3");
    EXPECT_THROW_MSG(raw::binary(raw::BinaryOp::Add, zeros({2, 3}), zeros({4})),
                     "add (features.3): shapes [2,3] and [4] cannot be broadcast");
  }
  EXPECT_EQ(current_scope_path(), "");
  EXPECT_THROW_MSG(raw::binary(raw::BinaryOp::Add, zeros({2, 3}), zeros({4})), "add: shapes");
}

// Found by an audit: these crashed (0-d tensors have no dims to index) or named the wrong shapes.
TEST(Errors, ZeroDimTensorsAndBatchedMatmul) {
  Tensor s = scalar_tensor(3.0);
  EXPECT_EQ(raw::transpose(s, 0, -1).item(), 3.0);  // as torch: the tensor itself
  EXPECT_THROW_MSG(raw::slice(s, 0, 0, 1), "slice: cannot slice a 0-d tensor");
  EXPECT_THROW_MSG(raw::narrow(s, 0, 0, 1), "narrow: cannot narrow a 0-d tensor");
  EXPECT_THROW_MSG(s.size(0), "size: dim 0 of a 0-d tensor");
  EXPECT_THROW_MSG(raw::argmax(s, 5), "argmax: dim 5 out of range");
  EXPECT_EQ(raw::argmax(s, -1).item(), 0.0);
  EXPECT_THROW_MSG(raw::matmul(zeros({2, 2, 3}), zeros({3, 3, 4})),
                   "matmul: the batch dimensions of [2,2,3] and [3,3,4] cannot be broadcast");
}

// Found by an audit: the element count wrapped, so {2^62, 5} got a 512-byte buffer.
TEST(Errors, ShapesWithTooManyElementsOrNegativeSizes) {
  EXPECT_THROW_MSG(shape_numel({int64_t(1) << 62, 5}), "shape [4611686018427387904,5]: too many elements");
  EXPECT_THROW_MSG(zeros({int64_t(1) << 31, int64_t(1) << 31}), "too many elements (at most 2^60)");
  EXPECT_THROW_MSG(shape_numel({3, -2}), "shape [3,-2]: a negative size");
  EXPECT_EQ(shape_numel({int64_t(1) << 62, 0}), 0);
  EXPECT_EQ(shape_numel({}), 1);
}
