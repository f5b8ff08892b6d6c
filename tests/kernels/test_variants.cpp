// Every registered kernel variant (names() of each VariantTable, f32 and f64) against "ref" on
// random inputs: broadcast and scalar strides, non-contiguous operands, empty and odd sizes,
// sizes above the OpenMP thresholds, gemm trans flags with padded leading dimensions.
// Then variant selection (select_variant / GS_KERNELS syntax) and the unknown-variant error.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "kernels/cpu/all_tables.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/softmax.h"
#include "tensor/random.h"
#include "tensor/raw_ops.h"
#include "tests/helpers.h"

using namespace gs;
using namespace gs::kernels;

namespace {

template <class T> std::vector<T> random_vec(size_t n, uint64_t seed, double lo = -2, double hi = 2) {
  Generator g(seed);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(lo + (hi - lo) * g.uniform());
  return v;
}

template <class T> double tol() { return sizeof(T) == 4 ? 2e-5 : 1e-12; }

// Relative comparison; NaN must match NaN, infinities must match exactly.
template <class T>
::testing::AssertionResult all_close(const std::vector<T>& got, const std::vector<T>& want, double rtol) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  for (size_t i = 0; i < got.size(); ++i) {
    double a = got[i], b = want[i];
    if (std::isnan(a) || std::isnan(b)) {
      if (std::isnan(a) != std::isnan(b))
        return ::testing::AssertionFailure() << "element " << i << ": " << a << " vs " << b;
      continue;
    }
    if (std::isinf(a) || std::isinf(b)) {
      if (a != b) return ::testing::AssertionFailure() << "element " << i << ": " << a << " vs " << b;
      continue;
    }
    if (std::abs(a - b) > rtol * (1 + std::abs(b)))
      return ::testing::AssertionFailure() << "element " << i << ": " << a << " vs ref " << b;
  }
  return ::testing::AssertionSuccess();
}

const std::vector<UnaryOp> kUnaryOps = {UnaryOp::Neg,     UnaryOp::Exp,    UnaryOp::Log,       UnaryOp::Sqrt,
                                        UnaryOp::Abs,     UnaryOp::Relu,   UnaryOp::LeakyRelu, UnaryOp::Gelu,
                                        UnaryOp::Sigmoid, UnaryOp::Tanh,   UnaryOp::Clamp,     UnaryOp::PowScalar,
                                        UnaryOp::Sign,    UnaryOp::Square, UnaryOp::Copy};
const std::vector<BinaryOp> kBinaryOps = {BinaryOp::Add,
                                          BinaryOp::Sub,
                                          BinaryOp::Mul,
                                          BinaryOp::Div,
                                          BinaryOp::Pow,
                                          BinaryOp::Maximum,
                                          BinaryOp::Minimum,
                                          BinaryOp::Eq,
                                          BinaryOp::Ne,
                                          BinaryOp::Lt,
                                          BinaryOp::Le,
                                          BinaryOp::Gt,
                                          BinaryOp::Ge,
                                          BinaryOp::ReluBackward,
                                          BinaryOp::LeakyReluBackward,
                                          BinaryOp::GeluBackward,
                                          BinaryOp::SigmoidBackward,
                                          BinaryOp::TanhBackward,
                                          BinaryOp::AbsBackward,
                                          BinaryOp::ClampBackward};

template <class T> void check_unary() {
  const auto& table = unary_table<T>();
  ASSERT_GE(table.names().size(), 2u);
  for (const auto& name : table.names()) {
    auto fn = table.get(name);
    auto ref = table.get("ref");
    for (UnaryOp op : kUnaryOps) {
      bool positive = op == UnaryOp::Log || op == UnaryOp::Sqrt || op == UnaryOp::PowScalar;
      for (int64_t n : {0, 1, 7, 1023, 40000}) {
        auto in = random_vec<T>(n, 17 + n, positive ? 0.1 : -3, 3);
        if (n > 3 && !positive) in[2] = T(0), in[3] = T(NAN);  // kink and NaN propagate alike
        std::vector<T> got(n, T(-7)), want(n, T(-7));
        double alpha = op == UnaryOp::Clamp ? -0.5 : (op == UnaryOp::PowScalar ? 2.5 : 0.1), beta = 0.75;
        fn(op, in.data(), got.data(), n, alpha, beta);
        ref(op, in.data(), want.data(), n, alpha, beta);
        EXPECT_TRUE(all_close(got, want, tol<T>()))
            << "unary " << unary_op_name(op) << " variant " << name << " n=" << n;
      }
    }
  }
}

struct BinaryCase {
  const char* what;
  Shape a, b;
  bool transpose_a = false;  // a is given as the transpose of a contiguous buffer
};

template <class T> void check_binary() {
  const std::vector<BinaryCase> cases = {
      {"same", {5, 7}, {5, 7}},
      {"broadcast", {3, 1, 5}, {4, 1}},
      {"row", {6, 9}, {9}},
      {"col", {6, 9}, {6, 1}},
      {"scalar b", {11, 3}, {}},
      {"scalar a", {}, {2, 13}},
      {"both scalar", {}, {}},
      {"transposed a", {4, 6}, {4, 6}, true},
      {"transposed a broadcast", {5, 3}, {5, 1}, true},
      {"empty", {0, 4}, {4}},
      {"odd", {3, 5, 7}, {1, 5, 1}},
      {"big flat", {200, 200}, {200, 200}},
      {"big broadcast", {64, 32, 4, 7}, {1, 32, 1, 1}},
      {"big scalar", {40000}, {}},
  };
  const auto& table = binary_table<T>();
  ASSERT_GE(table.names().size(), 2u);
  auto ref = table.get("ref");
  for (const auto& name : table.names()) {
    auto fn = table.get(name);
    for (const auto& c : cases) {
      for (BinaryOp op : kBinaryOps) {
        bool positive_a = op == BinaryOp::Pow;
        // a's storage: contiguous in its own (possibly transposed) layout.
        Shape a_store = c.a;
        if (c.transpose_a) std::swap(a_store[0], a_store[1]);
        Strides a_strides = contiguous_strides(a_store);
        if (c.transpose_a) std::swap(a_strides[0], a_strides[1]);
        auto a = random_vec<T>(shape_numel(c.a), 3, positive_a ? 0.2 : -2, 2);
        auto b = random_vec<T>(shape_numel(c.b), 4, -2, 2);
        if (op == BinaryOp::Div)
          for (auto& v : b) v = std::abs(v) + T(0.5);
        if (op == BinaryOp::Eq || op == BinaryOp::Maximum)
          if (!a.empty() && !b.empty()) a[0] = b[0];  // a tie
        Shape out_shape = broadcast_shapes("test", c.a, c.b);
        Strides as = broadcast_strides(c.a, a_strides, out_shape);
        Strides bs = broadcast_strides(c.b, contiguous_strides(c.b), out_shape);
        int64_t n = shape_numel(out_shape);
        std::vector<T> got(n, T(-7)), want(n, T(-7));
        fn(op, a.data(), as.data(), b.data(), bs.data(), got.data(), out_shape.data(), (int)out_shape.size(), 0.1, 0.5);
        ref(op, a.data(), as.data(), b.data(), bs.data(), want.data(), out_shape.data(), (int)out_shape.size(), 0.1,
            0.5);
        EXPECT_TRUE(all_close(got, want, tol<T>()))
            << "binary " << binary_op_name(op) << " variant " << name << " case " << c.what;
      }
    }
  }
}

template <class T> void check_reduce() {
  struct Case {
    int64_t outer, r, inner;
  };
  const std::vector<Case> cases = {{1, 1, 1}, {3, 7, 1},    {2, 5, 3},     {4, 0, 3},    {0, 3, 2},
                                   {1, 0, 1}, {64, 100, 7}, {16, 3000, 1}, {8, 50, 100}, {1, 1, 40000},
                                   {1, 100000, 1}, {3, 50001, 1}, {1, 64, 3000}};  // long rows, batch axis
  const auto& table = reduce_table<T>();
  ASSERT_GE(table.names().size(), 2u);
  auto ref = table.get("ref");
  for (const auto& name : table.names()) {
    auto fn = table.get(name);
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min}) {
      for (const auto& c : cases) {
        auto in = random_vec<T>(c.outer * c.r * c.inner, 5, -3, 3);
        // NaN propagates through every reduction (only row 0 gets one, so other rows stay checked).
        if (c.outer > 1 && in.size() > 10) in[5] = T(NAN);
        std::vector<T> got(c.outer * c.inner, T(-7)), want(c.outer * c.inner, T(-7));
        fn(op, in.data(), got.data(), c.outer, c.r, c.inner);
        ref(op, in.data(), want.data(), c.outer, c.r, c.inner);
        EXPECT_TRUE(all_close(got, want, tol<T>() * 10))
            << "reduce op " << int(op) << " variant " << name << " (" << c.outer << "," << c.r << "," << c.inner << ")";
      }
    }
  }
}

template <class T> void check_gemm() {
  struct Case {
    int64_t M, N, K;
  };
  const std::vector<Case> cases = {{1, 1, 1}, {3, 5, 7}, {17, 13, 9}, {0, 4, 3}, {4, 0, 3}, {4, 3, 0}, {64, 65, 130}};
  const auto& table = gemm_table<T>();
  ASSERT_GE(table.names().size(), 2u);
  auto ref = table.get("ref");
  for (const auto& name : table.names()) {
    auto fn = table.get(name);
    for (const auto& c : cases) {
      for (int flags = 0; flags < 4; ++flags) {
        bool ta = flags & 1, tb = flags & 2;
        for (int pad : {0, 3}) {
          // Stored A is (M,K) or (K,M) with row stride lda > its width when padded.
          int64_t a_rows = ta ? c.K : c.M, a_cols = ta ? c.M : c.K;
          int64_t b_rows = tb ? c.N : c.K, b_cols = tb ? c.K : c.N;
          int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = c.N + pad;
          auto A = random_vec<T>(std::max<int64_t>(1, a_rows * lda), 6);
          auto B = random_vec<T>(std::max<int64_t>(1, b_rows * ldb), 7);
          auto C0 = random_vec<T>(std::max<int64_t>(1, c.M * ldc), 8);
          for (T beta : {T(0), T(0.5)}) {
            std::vector<T> got = C0, want = C0;
            fn(ta, tb, c.M, c.N, c.K, T(1.5), A.data(), std::max<int64_t>(1, lda), B.data(), std::max<int64_t>(1, ldb),
               beta, got.data(), std::max<int64_t>(1, ldc));
            ref(ta, tb, c.M, c.N, c.K, T(1.5), A.data(), std::max<int64_t>(1, lda), B.data(), std::max<int64_t>(1, ldb),
                beta, want.data(), std::max<int64_t>(1, ldc));
            // The padding columns of C must be left alone by every variant.
            EXPECT_TRUE(all_close(got, want, tol<T>() * 50))
                << "gemm variant " << name << " M,N,K=" << c.M << "," << c.N << "," << c.K << " ta=" << ta
                << " tb=" << tb << " pad=" << pad << " beta=" << beta;
          }
        }
      }
    }
  }
}

template <class T> void check_softmax() {
  struct Case {
    int64_t rows, cols;
  };
  const std::vector<Case> cases = {{1, 1}, {3, 7}, {0, 5}, {5, 0}, {200, 100}, {1, 20000}};
  const auto& fwd = softmax_table<T>();
  const auto& bwd = softmax_backward_table<T>();
  ASSERT_GE(fwd.names().size(), 2u);
  ASSERT_GE(bwd.names().size(), 2u);
  for (const auto& c : cases) {
    for (bool log : {false, true}) {
      int64_t n = c.rows * c.cols;
      auto x = random_vec<T>(n, 9, -20, 20);  // wide range: needs the max subtraction
      auto gy = random_vec<T>(n, 10);
      std::vector<T> y_ref(n), gx_ref(n);
      fwd.get("ref")(x.data(), y_ref.data(), c.rows, c.cols, log);
      bwd.get("ref")(y_ref.data(), gy.data(), gx_ref.data(), c.rows, c.cols, log);
      for (const auto& name : fwd.names()) {
        std::vector<T> y(n, T(-7));
        fwd.get(name)(x.data(), y.data(), c.rows, c.cols, log);
        EXPECT_TRUE(all_close(y, y_ref, tol<T>())) << "softmax variant " << name << " log=" << log;
      }
      for (const auto& name : bwd.names()) {
        std::vector<T> gx(n, T(-7));
        bwd.get(name)(y_ref.data(), gy.data(), gx.data(), c.rows, c.cols, log);
        EXPECT_TRUE(all_close(gx, gx_ref, tol<T>())) << "softmax_backward variant " << name << " log=" << log;
      }
    }
  }
}

}  // namespace

TEST(Variants, UnaryF32) { check_unary<float>(); }
TEST(Variants, UnaryF64) { check_unary<double>(); }
TEST(Variants, BinaryF32) { check_binary<float>(); }
TEST(Variants, BinaryF64) { check_binary<double>(); }
TEST(Variants, ReduceF32) { check_reduce<float>(); }
TEST(Variants, ReduceF64) { check_reduce<double>(); }
TEST(Variants, GemmF32) { check_gemm<float>(); }
TEST(Variants, GemmF64) { check_gemm<double>(); }
TEST(Variants, SoftmaxF32) { check_softmax<float>(); }
TEST(Variants, SoftmaxF64) { check_softmax<double>(); }

// The reference kernels themselves against values worked by hand.
TEST(Variants, RefKernelsKnownValues) {
  float a[] = {1, 2, 3, 4, 5, 6}, b[] = {1, 0, 0, 1, 1, 1}, c[4] = {};
  gemm_table<float>().get("ref")(false, false, 2, 2, 3, 1.f, a, 3, b, 2, 0.f, c, 2);  // [2,3] @ [3,2]
  EXPECT_EQ(std::vector<float>(c, c + 4), (std::vector<float>{4, 5, 10, 11}));
  float s[2];
  reduce_table<float>().get("ref")(ReduceOp::Sum, a, s, 2, 3, 1);
  EXPECT_EQ(std::vector<float>(s, s + 2), (std::vector<float>{6, 15}));
  double x[] = {0, std::log(3.0)}, y[2];
  softmax_table<double>().get("ref")(x, y, 1, 2, false);
  EXPECT_NEAR(y[0], 0.25, 1e-15);
  EXPECT_NEAR(y[1], 0.75, 1e-15);
}

namespace {
// Restores the default selection even when an assertion fails.
struct SelectionReset {
  ~SelectionReset() {
    for (const char* op : {"unary", "binary", "reduce", "matmul", "softmax", "softmax_backward", "conv2d", "conv2d_bwd"})
      select_variant(op, "");
  }
};
}  // namespace

TEST(Selection, SelectVariantPicksTheFunction) {
  SelectionReset reset;
  EXPECT_EQ(gemm_table<float>().default_name(), "eigen");
  EXPECT_EQ(gemm_table<float>().get(), gemm_table<float>().get("eigen"));
  select_variant("matmul", "ref");
  EXPECT_EQ(selected_variant("matmul"), "ref");
  EXPECT_EQ(gemm_table<float>().get(), gemm_table<float>().get("ref"));
  EXPECT_EQ(gemm_table<double>().get(), gemm_table<double>().get("ref"));
  // The front-end uses the selection and still computes the right product.
  Tensor p = raw::mm(from_vector<float>({1, 2, 3, 4}, {2, 2}), from_vector<float>({1, 0, 0, 1}, {2, 2}));
  EXPECT_EQ(p.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  select_variant("matmul", "");
  EXPECT_EQ(gemm_table<float>().get(), gemm_table<float>().get("eigen"));
}

TEST(Selection, GsKernelsSyntax) {
  SelectionReset reset;
  parse_selection("unary=ref, binary = ref ,reduce=ref");  // the format of GS_KERNELS; blanks are not names
  EXPECT_EQ(unary_table<float>().get(), unary_table<float>().get("ref"));
  EXPECT_EQ(binary_table<float>().get(), binary_table<float>().get("ref"));
  EXPECT_EQ(selected_variant("binary"), "ref");
  EXPECT_EQ(reduce_table<double>().get(), reduce_table<double>().get("ref"));
  check_selection();  // no op named " binary"
  EXPECT_THROW_MSG(parse_selection("matmul"), "'matmul' is not op=variant");
  EXPECT_THROW_MSG(parse_selection("matmul="), "is not op=variant");
  EXPECT_THROW_MSG(parse_selection("matmul= "), "is not op=variant");
  EXPECT_THROW_MSG(parse_selection(" =ref"), "is not op=variant");
}

TEST(Selection, UnknownVariantListsKnownOnes) {
  SelectionReset reset;
  select_variant("matmul", "cublas-nope");
  EXPECT_THROW_MSG(gemm_table<float>().get(),
                   "kernel selection: op 'matmul' has no variant 'cublas-nope' (known: ref, eigen, packed)");
  EXPECT_THROW_MSG(raw::mm(zeros({2, 2}), zeros({2, 2})), "known: ref, eigen, packed");
  EXPECT_THROW_MSG(softmax_table<float>().get("fast"), "op 'softmax' has no variant 'fast' (known: ref, omp)");
}

// check_selection (run by every command before its work): every selected op and variant must
// exist in the built tables; a misspelt op is not silently ignored.
TEST(Selection, CheckSelectionNamesUnknownOpsAndVariants) {
  SelectionReset reset;
  check_selection_against_every_table();  // nothing selected: fine
  select_variant("conv2d", "direct");
  select_variant("matmul", "packed");
  check_selection_against_every_table();
  select_variant("conv2d_bwd", "direct");
  EXPECT_THROW_MSG(check_selection(), "no kernel op 'conv2d_bwd' (selected 'conv2d_bwd=direct'; ops: ");
  EXPECT_THROW_MSG(check_selection(), "conv2d_backward_data");
  select_variant("conv2d_bwd", "");
  select_variant("conv2d", "winograd");
  EXPECT_THROW_MSG(check_selection(), "op 'conv2d' has no variant 'winograd' (known: ref, im2col, direct");
  select_variant("conv2d", "");
  check_selection();
}

TEST(Selection, ListVariants) {
  unary_table<float>();
  gemm_table<float>();
  auto all = list_variants();
  ASSERT_TRUE(all.count("matmul"));
  EXPECT_EQ(all["matmul"], gemm_table<float>().names());
  EXPECT_EQ(all["unary"], unary_table<float>().names());
}

// GS_KERNELS is read once, at the first selection lookup: check it in a child process that
// starts with the variable set (this same binary, filtered to this test).
TEST(Selection, GsKernelsEnvironmentVariable) {
  if (const char* expect = std::getenv("GS_TEST_EXPECT_MATMUL")) {
    EXPECT_EQ(selected_variant("matmul"), expect);
    EXPECT_EQ(gemm_table<float>().get(), gemm_table<float>().get(expect));
    return;
  }
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string() +
                     " --gtest_filter=Selection.GsKernelsEnvironmentVariable > /dev/null 2>&1";
  EXPECT_EQ(std::system(("GS_KERNELS=matmul=ref,softmax=omp GS_TEST_EXPECT_MATMUL=ref " + self).c_str()), 0);
  // Without the variable the child sees the default and fails: the check can fail.
  EXPECT_NE(std::system(("GS_KERNELS= GS_TEST_EXPECT_MATMUL=ref " + self).c_str()), 0);
}
