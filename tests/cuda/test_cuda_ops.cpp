// Every CUDA kernel variant against the CPU, forward and backward (cuda label). Without a GPU
// each test skips with the reason ("no CUDA device: ..."): ctest counts them as skipped.
#include <map>

#include "autograd/nn_ops.h"
#include "kernels/cuda/optim_math.h"
#include "kernels/cuda/philox.h"
#include "layers/zoo.h"
#include "optim/clip.h"
#include "optim/optimizers.h"
#include "tensor/raw_nn.h"
#include "tests/cuda/cuda_test_helpers.h"
#if GS_CUDA_EMULATED
#include "kernels/cuda/emulator/include/cublas_v2.h"  // gs_emulated_cublas_gemm_calls

#include "kernels/cuda/emulator/cuda_emulator.h"
#endif

namespace gs::test {
namespace {

TEST(CudaOps, UnaryOps) {
  GS_REQUIRE_CUDA();
  Tensor x = randf({7, 33}, 1).set_requires_grad(true);
  Tensor pos = randf({7, 33}, 2, 0.2, 3).set_requires_grad(true);
  expect_cuda_matches_cpu([](auto& v) { return relu(v[0]); }, {x}, 1e-6, "relu");
  expect_cuda_matches_cpu([](auto& v) { return leaky_relu(v[0], 0.1); }, {x}, 1e-6, "leaky_relu");
  expect_cuda_matches_cpu([](auto& v) { return gelu(v[0]); }, {x}, 1e-5, "gelu");
  expect_cuda_matches_cpu([](auto& v) { return sigmoid(v[0]); }, {x}, 1e-5, "sigmoid");
  expect_cuda_matches_cpu([](auto& v) { return tanh(v[0]); }, {x}, 1e-5, "tanh");
  expect_cuda_matches_cpu([](auto& v) { return exp(v[0]); }, {x}, 1e-5, "exp");
  expect_cuda_matches_cpu([](auto& v) { return abs(v[0]); }, {x}, 1e-6, "abs");
  expect_cuda_matches_cpu([](auto& v) { return clamp(v[0], -0.5, 0.7); }, {x}, 1e-6, "clamp");
  expect_cuda_matches_cpu([](auto& v) { return log(v[0]); }, {pos}, 1e-5, "log");
  expect_cuda_matches_cpu([](auto& v) { return sqrt(v[0]); }, {pos}, 1e-5, "sqrt");
  expect_cuda_matches_cpu([](auto& v) { return pow(v[0], 3.0); }, {pos}, 1e-5, "pow");
}

TEST(CudaOps, BinaryOpsWithBroadcasting) {
  GS_REQUIRE_CUDA();
  Tensor a = randf({4, 1, 6}, 3).set_requires_grad(true);
  Tensor b = randf({5, 1}, 4, 0.5, 2).set_requires_grad(true);
  Tensor at = raw::transpose(randf({6, 5, 4}, 5), 0, 2).set_requires_grad(true);  // non-contiguous (4,5,6)
  expect_cuda_matches_cpu([](auto& v) { return add(v[0], v[1]); }, {a, b}, 1e-6, "add");
  expect_cuda_matches_cpu([](auto& v) { return sub(v[0], v[1]); }, {a, b}, 1e-6, "sub");
  expect_cuda_matches_cpu([](auto& v) { return mul(v[0], v[1]); }, {a, b}, 1e-6, "mul");
  expect_cuda_matches_cpu([](auto& v) { return div(v[0], v[1]); }, {a, b}, 1e-5, "div");
  expect_cuda_matches_cpu([](auto& v) { return mul(v[0], v[1]); }, {at, b}, 1e-6, "mul (transposed)");
  expect_cuda_matches_cpu([](auto& v) { return where(v[0], v[1], v[2]); },
                          {raw::binary_scalar(raw::BinaryOp::Gt, randf({4, 5, 6}, 6), 0.0), at, b}, 1e-6, "where");
  // Rank 9, above the kernels' 8 dimensions: the dimensions are merged first (an audit found
  // these refused on CUDA while the CPU ran them).
  Tensor a9 = randf({2, 1, 3, 2, 1, 2, 2, 1, 3}, 7).set_requires_grad(true);
  Tensor b9 = randf({2, 1, 3, 2, 1, 2, 2, 1, 3}, 8).set_requires_grad(true);
  expect_cuda_matches_cpu([](auto& v) { return mul(v[0], v[1]); }, {a9, b9}, 1e-6, "mul (rank 9)");
  expect_cuda_matches_cpu([](auto& v) { return where(v[0], v[1], v[2]); },
                          {raw::binary_scalar(raw::BinaryOp::Gt, a9, 0.0), a9, b9}, 1e-6, "where (rank 9)");
  Tensor t9 = raw::transpose(randf({2, 3, 2, 2, 3, 2, 2, 3, 2}, 9), 0, 8).set_requires_grad(true);
  expect_cuda_matches_cpu([](auto& v) { return add(v[0], v[0]); }, {t9}, 1e-6, "add (rank 9, transposed)");
}

TEST(CudaOps, ReductionsEveryVariant) {
  GS_REQUIRE_CUDA();
  Tensor x = randf({6, 300, 5}, 7).set_requires_grad(true);
  for (const auto& variant : cuda_variants("cuda.reduce")) {
    VariantScope scope("cuda.reduce", variant);
    const std::string v = "reduce=" + variant;
    expect_cuda_matches_cpu([](auto& t) { return sum(t[0], {1}); }, {x}, 1e-4, v + " sum dim 1");
    expect_cuda_matches_cpu([](auto& t) { return mean(t[0], {0, 2}); }, {x}, 1e-5, v + " mean dims 0,2");
    expect_cuda_matches_cpu([](auto& t) { return max(t[0], {2}); }, {x}, 0, v + " max dim 2");
    expect_cuda_matches_cpu([](auto& t) { return min(t[0]); }, {x}, 0, v + " min all");
    expect_cuda_matches_cpu([](auto& t) { return sum(t[0]); }, {x}, 1e-3, v + " sum all");
  }
}

TEST(CudaOps, MatmulEveryVariant) {
  GS_REQUIRE_CUDA();
  Tensor a = randf({37, 41}, 8).set_requires_grad(true), b = randf({41, 23}, 9).set_requires_grad(true);
  Tensor batched = randf({3, 37, 41}, 10).set_requires_grad(true);
  Tensor batched_b = randf({3, 41, 23}, 12).set_requires_grad(true), wide_b = randf({2, 1, 41, 23}, 13).set_requires_grad(true);
  auto variants = cuda_variants("cuda.matmul");
  ASSERT_GE(variants.size(), 2u);  // tiled and cublas
  for (const auto& variant : variants) {
    VariantScope scope("cuda.matmul", variant);
    expect_cuda_matches_cpu([](auto& t) { return matmul(t[0], t[1]); }, {a, b}, 1e-4, "matmul=" + variant);
    expect_cuda_matches_cpu([](auto& t) { return matmul(transpose(t[1], 0, 1), transpose(t[0], 0, 1)); }, {a, b}, 1e-4,
                            "matmul=" + variant + " transposed");
    expect_cuda_matches_cpu([](auto& t) { return matmul(t[0], t[1]); }, {batched, b}, 1e-4,
                            "matmul=" + variant + " batched against one matrix");
    // (Double backward for the three shapes above only: these two run the same kernels, and the
    // emulator is slow.)
    expect_cuda_matches_cpu([](auto& t) { return matmul(t[0], t[1]); }, {batched, batched_b}, 1e-4,
                            "matmul=" + variant + " batched", false);
    expect_cuda_matches_cpu([](auto& t) { return matmul(transpose(t[1], -1, -2), transpose(t[0], -1, -2)); },
                            {batched, wide_b}, 1e-4, "matmul=" + variant + " batched, broadcast, transposed", false);
  }
}

#if GS_CUDA_EMULATED
// A batch whose operands are one fixed step apart (a broadcast one: step 0) is one cuBLAS
// strided-batched call, or one launch of the tiled kernel over gridDim.z; a batch whose
// broadcast offsets are not (a (3,...) operand over a (2,3) batch repeats every 3 entries) is
// one call or launch per entry. Either gives the CPU's values (MatmulEveryVariant).
TEST(CudaOps, BatchedMatmulIsOneCallWhenTheStepsAreUniform) {
  GS_REQUIRE_CUDA();
  struct Case {
    Shape a, b;
    long long calls;
  };
  for (const Case& c : {Case{{5, 7, 4}, {5, 4, 3}, 1}, Case{{5, 7, 4}, {1, 4, 3}, 1}, Case{{2, 3, 7, 4}, {2, 3, 4, 3}, 1},
                        Case{{2, 3, 7, 4}, {3, 4, 3}, 6}, Case{{2, 1, 7, 4}, {1, 3, 4, 3}, 6}}) {
    Tensor a = randf(c.a, 71), b = randf(c.b, 72), ag = a.to(gpu()), bg = b.to(gpu());
    const std::string what = shape_str(c.a) + " @ " + shape_str(c.b);
    {
      VariantScope scope("cuda.matmul", "cublas");
      const long long before = gs_emulated_cublas_gemm_calls();
      Tensor got = raw::matmul(ag, bg);
      EXPECT_EQ(gs_emulated_cublas_gemm_calls() - before, c.calls) << what << ": cuBLAS calls";
      expect_close(got.to(Device::cpu()), raw::matmul(a, b), 1e-4, what + " (cublas)");
    }
    {
      VariantScope scope("cuda.matmul", "tiled");
      const int64_t before = kernels::cuda::emu::launch_count();
      Tensor got = raw::matmul(ag, bg);
      EXPECT_EQ(kernels::cuda::emu::launch_count() - before, c.calls) << what << ": tiled launches";
      expect_close(got.to(Device::cpu()), raw::matmul(a, b), 1e-4, what + " (tiled)");
    }
  }
}
#endif

TEST(CudaOps, SoftmaxAndCrossEntropy) {
  GS_REQUIRE_CUDA();
  Tensor x = randf({9, 300}, 11, -5, 5).set_requires_grad(true);
  expect_cuda_matches_cpu([](auto& t) { return softmax(t[0], -1); }, {x}, 1e-5, "softmax");
  expect_cuda_matches_cpu([](auto& t) { return log_softmax(t[0], 0); }, {x}, 1e-5, "log_softmax dim 0");
  Tensor target = from_vector<int64_t>({3, 0, 299, 5, -100, 7, 8, 1, 2}, {9});
  for (double smoothing : {0.0, 0.1}) {
    CrossEntropyOptions o;
    o.label_smoothing = smoothing;
    expect_cuda_matches_cpu([o](auto& t) { return cross_entropy(t[0], t[1], o); }, {x, target}, 1e-5,
                            "cross_entropy smoothing " + std::to_string(smoothing));
    // Class weights (on the logits' device), every reduction.
    for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
      o.reduction = r;
      expect_cuda_matches_cpu(
          [o](auto& t) {
            CrossEntropyOptions weighted = o;
            weighted.weight = t[2];
            return cross_entropy(t[0], t[1], weighted);
          },
          {x, target, randf({300}, 12, 0.2, 3.0)}, 1e-5,
          "weighted cross_entropy smoothing " + std::to_string(smoothing));
    }
  }
  // (N, C, H, W) logits with (N, H, W) targets, and probability targets of the logits' shape.
  Tensor maps = randf({2, 5, 3, 4}, 13, -3, 3).set_requires_grad(true);
  Tensor pixel_target =
      from_vector<int64_t>({0, 1, 2, 3, 4, -100, 4, 3, 2, 1, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 4, 4, 0, 0}, {2, 3, 4});
  expect_cuda_matches_cpu([](auto& t) { return cross_entropy(t[0], t[1], {.label_smoothing = 0.1, .weight = t[2]}); },
                          {maps, pixel_target, randf({5}, 14, 0.2, 3.0)}, 1e-5, "spatial cross_entropy");
  Tensor soft = raw::softmax(randf({2, 5, 3, 4}, 15, -2, 2), 1, false).set_requires_grad(true);
  expect_cuda_matches_cpu([](auto& t) { return cross_entropy(t[0], t[1], {.label_smoothing = 0.1}); }, {maps, soft},
                          1e-5, "cross_entropy with probabilities");
}

TEST(CudaOps, Conv2dEveryVariant) {
  GS_REQUIRE_CUDA();
  struct Case {
    Shape x, w;
    Conv2dParams p;
  };
  Conv2dParams strided;
  strided.stride_h = strided.stride_w = 2, strided.pad_h = strided.pad_w = 1, strided.dilation_h = 2;
  Conv2dParams grouped;
  grouped.groups = 2, grouped.pad_h = grouped.pad_w = 1;
  std::vector<Case> cases{
      {{2, 3, 9, 8}, {4, 3, 3, 3}, {}}, {{2, 4, 11, 10}, {6, 4, 3, 3}, strided}, {{2, 4, 7, 7}, {6, 2, 3, 3}, grouped},
      // empty: no images, no output channels, no input channels (the output is the bias)
      {{0, 3, 5, 5}, {4, 3, 3, 3}, {}}, {{2, 3, 5, 5}, {0, 3, 3, 3}, {}}, {{2, 0, 5, 5}, {4, 0, 3, 3}, {}}};
  for (const char* table : {"cuda.conv2d", "cuda.conv2d_backward_data", "cuda.conv2d_backward_weight"}) {
    for (const auto& variant : cuda_variants(table)) {
      VariantScope scope(table, variant);
      for (size_t c = 0; c < cases.size(); ++c) {
        const Case& k = cases[c];
        Tensor x = randf(k.x, 20 + c).set_requires_grad(true), w = randf(k.w, 30 + c).set_requires_grad(true);
        Tensor bias = randf({k.w[0]}, 40 + c).set_requires_grad(true);
        Conv2dParams p = k.p;
        expect_cuda_matches_cpu([p](auto& t) { return conv2d(t[0], t[1], t[2], p); }, {x, w, bias}, 1e-4,
                                std::string(table) + "=" + variant + " case " + std::to_string(c));
      }
    }
  }
}

// The im2col variants take the batch in chunks that fit conv_scratch_limit(): one image at a
// time, chunks of 2 with a short last one, and the whole batch give the CPU's results, forward
// and backward. In the emulated build, with the tiled GEMM (a kernel launch, where cuBLAS is a
// library call), each chunk costs three launches: im2col, the groups' GEMMs (one launch over
// gridDim.z) and the copy back (forward), the copy to channel-major, the GEMMs and col2im (data),
// im2col, the copy and the GEMMs (weight); with cuBLAS the groups' GEMMs of a chunk are one call.
TEST(CudaOps, Conv2dIm2colChunksOfTheBatch) {
  GS_REQUIRE_CUDA();
  VariantScope forward("cuda.conv2d", "im2col"), data("cuda.conv2d_backward_data", "im2col"),
      weight("cuda.conv2d_backward_weight", "im2col");
  Conv2dParams p;
  p.groups = 2, p.pad_h = p.pad_w = 1;
  const int64_t N = 5, per_image = (4 * 3 * 3 + 6) * 9 * 8 * int64_t(sizeof(float));
  Tensor x = randf({N, 4, 9, 8}, 61).set_requires_grad(true), w = randf({6, 2, 3, 3}, 62).set_requires_grad(true);
  Tensor bias = randf({6}, 63).set_requires_grad(true);
  struct RestoreLimit {
    size_t bytes = kernels::cuda::conv_scratch_limit();
    ~RestoreLimit() { kernels::cuda::set_conv_scratch_limit(bytes); }
  } restore;
  const size_t default_limit = restore.bytes;
  struct Limit {
    size_t bytes;
    int64_t chunks;
  };
  for (const Limit l : {Limit{1, 5}, Limit{size_t(2 * per_image), 3}, Limit{default_limit, 1}}) {
    kernels::cuda::set_conv_scratch_limit(l.bytes);
    const std::string what = "limit " + std::to_string(l.bytes) + " (" + std::to_string(l.chunks) + " chunks)";
    expect_cuda_matches_cpu([p](auto& t) { return conv2d(t[0], t[1], t[2], p); }, {x, w, bias}, 1e-4, what);
#if GS_CUDA_EMULATED
    VariantScope tiled("cuda.matmul", "tiled");
    Tensor xg = x.detach().to(gpu()), wg = w.detach().to(gpu()), bg = bias.detach().to(gpu());
    Tensor gy = randf({N, 6, 9, 8}, 64).to(gpu());
    cuda::synchronize();
    int64_t before = kernels::cuda::emu::launch_count();
    raw::conv2d(xg, wg, bg, p);
    EXPECT_EQ(kernels::cuda::emu::launch_count() - before, l.chunks * 3) << what << ": forward";
    before = kernels::cuda::emu::launch_count();
    raw::conv2d_backward_data(gy, wg, xg.shape(), p);
    EXPECT_EQ(kernels::cuda::emu::launch_count() - before, l.chunks * 3) << what << ": data";
    before = kernels::cuda::emu::launch_count();
    raw::conv2d_backward_params(xg, gy, wg.shape(), p, true, false);
    EXPECT_EQ(kernels::cuda::emu::launch_count() - before, l.chunks * 3) << what << ": weight";
    // With cuBLAS the groups' GEMMs of a chunk are one strided-batched call.
    VariantScope cublas("cuda.matmul", "cublas");
    long long calls = gs_emulated_cublas_gemm_calls();
    raw::conv2d(xg, wg, bg, p);
    raw::conv2d_backward_data(gy, wg, xg.shape(), p);
    raw::conv2d_backward_params(xg, gy, wg.shape(), p, true, false);
    EXPECT_EQ(gs_emulated_cublas_gemm_calls() - calls, 3 * l.chunks) << what << ": cuBLAS calls of the three passes";
#endif
  }
}

// Tensors with a zero-size dimension (an empty batch, no columns, an empty index), as PyTorch
// takes them: every op gives the CPU's result (shape and values, NaN for a mean over nothing),
// forward and backward, instead of an error from a launch of zero blocks or a library call.
TEST(CudaOps, EmptyTensors) {
  GS_REQUIRE_CUDA();
  auto check = [](const std::string& what, const TensorFn& fn, const std::vector<Tensor>& inputs) {
    try {
      expect_cuda_matches_cpu(fn, inputs, 1e-6, what);
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": " << e.what();
    }
  };
  auto leaf = [](const Shape& shape, uint64_t seed) { return randf(shape, seed).set_requires_grad(true); };
  Tensor rows0 = leaf({0, 5}, 1), cols0 = leaf({4, 0}, 2), bias = leaf({5}, 3);
  check("relu", [](auto& t) { return relu(t[0]); }, {rows0});
  check("add broadcast", [](auto& t) { return add(t[0], t[1]); }, {rows0, bias});
  check("sum dim 1", [](auto& t) { return sum(t[0], {1}); }, {rows0});
  check("sum dim 0", [](auto& t) { return sum(t[0], {0}); }, {rows0});
  check("sum all", [](auto& t) { return sum(t[0]); }, {rows0});
  check("mean dim 0", [](auto& t) { return mean(t[0], {0}); }, {rows0});
  check("max dim 1", [](auto& t) { return max(t[0], {1}); }, {rows0});
  check("matmul no rows", [](auto& t) { return matmul(t[0], t[1]); }, {rows0, leaf({5, 3}, 4)});
  check("matmul K = 0", [](auto& t) { return matmul(t[0], t[1]); }, {cols0, leaf({0, 3}, 5)});
  check("softmax", [](auto& t) { return softmax(t[0], 1); }, {rows0});
  check("log_softmax", [](auto& t) { return log_softmax(t[0], 1); }, {rows0});
  Tensor no_labels = zeros({0}, {DType::I64});
  check("cross_entropy sum", [&](auto& t) {
    return cross_entropy(t[0], no_labels.to(t[0].device()), {.reduction = Reduction::Sum});
  }, {rows0});
  check("cross_entropy mean", [&](auto& t) { return cross_entropy(t[0], no_labels.to(t[0].device())); }, {rows0});
  check("argmax", [](auto& t) { return argmax(t[0], 1); }, {rows0.detach()});
  Tensor images0 = leaf({0, 3, 8, 8}, 6);
  Pool2dParams p;
  check("max_pool2d", [p](auto& t) { return max_pool2d(t[0], p); }, {images0});
  check("avg_pool2d", [p](auto& t) { return avg_pool2d(t[0], p, true); }, {images0});
  check("adaptive_avg_pool2d", [](auto& t) { return adaptive_avg_pool2d(t[0], 2, 2); }, {images0});
  Tensor rm = randf({3}, 7), rv = randf({3}, 8, 0.5, 2);
  check("batch_norm eval", [&](auto& t) {
    return batch_norm(t[0], t[1], t[2], rm.to(t[0].device()), rv.to(t[0].device()), false, 0.1, 1e-5);
  }, {images0, leaf({3}, 9), leaf({3}, 10)});
  Tensor x = leaf({4, 5}, 11), no_index = zeros({0}, {DType::I64});
  check("index_select none", [&](auto& t) { return index_select(t[0], 0, no_index.to(t[0].device())); }, {x});
  check("gather none", [&](auto& t) { return gather(t[0], 1, zeros({4, 0}, {DType::I64}).to(t[0].device())); }, {x});
  check("dropout eval", [](auto& t) { return dropout(t[0], 0.5, false); }, {rows0});
  // PyTorch's values over nothing: a sum is 0, a mean NaN (so is cross-entropy's mean).
  EXPECT_EQ(sum(rows0.detach().to(gpu()), {0}).to_vector<float>(), std::vector<float>(5, 0.0f));
  for (float v : mean(rows0.detach().to(gpu()), {0}).to_vector<float>()) EXPECT_TRUE(std::isnan(v));
  EXPECT_TRUE(std::isnan(cross_entropy(rows0.detach().to(gpu()), no_labels.to(gpu())).item()));
}

TEST(CudaOps, BatchNormTrainAndEval) {
  GS_REQUIRE_CUDA();
  Tensor x = randf({8, 5, 6, 7}, 50).set_requires_grad(true);
  Tensor weight = randf({5}, 51, 0.5, 1.5).set_requires_grad(true), bias = randf({5}, 52).set_requires_grad(true);
  for (bool training : {true, false}) {
    // Running statistics are updated in place: each device gets its own copy, compared after.
    Tensor rm_cpu = randf({5}, 53), rv_cpu = randf({5}, 54, 0.5, 2);
    Tensor rm_gpu = rm_cpu.to(gpu()), rv_gpu = rv_cpu.to(gpu());
    expect_cuda_matches_cpu(
        [&](auto& t) {
          bool on_gpu = t[0].device().is_cuda();
          return batch_norm(t[0], t[1], t[2], on_gpu ? rm_gpu : rm_cpu, on_gpu ? rv_gpu : rv_cpu, training, 0.1, 1e-5);
        },
        {x, weight, bias}, 1e-4, training ? "batch_norm train" : "batch_norm eval");
    expect_close(rm_gpu, rm_cpu, 1e-5, "running_mean");
    expect_close(rv_gpu, rv_cpu, 1e-5, "running_var");
  }
}

TEST(CudaOps, Pooling) {
  GS_REQUIRE_CUDA();
  Tensor x = randf({2, 3, 9, 8}, 60).set_requires_grad(true);
  Pool2dParams p2;
  Pool2dParams p3;
  p3.kernel_h = p3.kernel_w = 3, p3.stride_h = p3.stride_w = 2, p3.pad_h = p3.pad_w = 1;
  for (auto p : {p2, p3}) {
    expect_cuda_matches_cpu([p](auto& t) { return max_pool2d(t[0], p); }, {x}, 0, "max_pool2d");
    expect_cuda_matches_cpu([p](auto& t) { return avg_pool2d(t[0], p, true); }, {x}, 1e-6, "avg_pool2d pad");
    expect_cuda_matches_cpu([p](auto& t) { return avg_pool2d(t[0], p, false); }, {x}, 1e-6, "avg_pool2d nopad");
  }
  expect_cuda_matches_cpu([](auto& t) { return adaptive_avg_pool2d(t[0], 3, 2); }, {x}, 1e-6, "adaptive_avg_pool2d");
}

TEST(CudaOps, DropoutMaskIsPhiloxOfTheSeed) {
  GS_REQUIRE_CUDA();
  Tensor x = ones({1000}).to(gpu());
  Generator g1(99), g2(99);
  raw::DropoutResult a = raw::dropout(x, 0.3, true, &g1), b = raw::dropout(x, 0.3, true, &g2);
  EXPECT_EQ(a.mask.to_vector<float>(), b.mask.to_vector<float>());  // same seed, same mask
  Generator g3(99);
  const uint64_t seed = g3.next_u64();
  std::vector<float> mask = a.mask.to_vector<float>();
  for (int64_t i = 0; i < 1000; ++i)
    ASSERT_EQ(mask[i], kernels::cuda::dropout_mask_element(seed, 0, i, 0.3f, static_cast<float>(1.0 / 0.7))) << i;
  expect_close(a.out, a.mask, 0, "dropout of ones is the mask");
}

// Gradient clipping on CUDA grads (device ops) against the CPU (double sums), every norm type.
// gather and index_select, forward and backward (scatter_add / index_add with repeated
// indices), on CUDA against the CPU; and a gather of i64 values.
TEST(CudaOps, GatherAndIndexSelect) {
  GS_REQUIRE_CUDA();
  Tensor index = from_vector(std::vector<int64_t>{0, 2, 2, 1, 0, 0, 1, 2, 1, 1, 2, 0}, {4, 3});
  Tensor index1 = from_vector(std::vector<int64_t>{3, 0, 3, 1, 3}, {5});
  Tensor x = randf({4, 3}, 120).set_requires_grad(true), y = randf({4, 6}, 121).set_requires_grad(true);
  expect_cuda_matches_cpu([&](const std::vector<Tensor>& in) { return gather(in[0], 1, index.to(in[0].device())); },
                          {x}, 1e-6, "gather");
  expect_cuda_matches_cpu(
      [&](const std::vector<Tensor>& in) { return index_select(in[0], 0, index1.to(in[0].device())); }, {y}, 1e-6,
      "index_select");
  Tensor ints = from_vector(std::vector<int64_t>{10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120}, {4, 3});
  EXPECT_EQ(raw::gather(ints.to(gpu()), 1, index.to(gpu())).to_vector<int64_t>(),
            raw::gather(ints, 1, index).to_vector<int64_t>());
}

TEST(CudaOps, ArgmaxOnTheDevice) {
  GS_REQUIRE_CUDA();
  Tensor x = randf({5, 4, 3}, 130);
  for (int64_t dim : {0, 1, 2, -1}) {
    Tensor on_gpu = argmax(x.to(gpu()), dim);
    EXPECT_TRUE(on_gpu.device().is_cuda());
    EXPECT_EQ(on_gpu.shape(), argmax(x, dim).shape());
    EXPECT_EQ(on_gpu.to_vector<int64_t>(), argmax(x, dim).to_vector<int64_t>()) << "dim " << dim;
  }
}

TEST(CudaOps, GradientClipping) {
  GS_REQUIRE_CUDA();
  for (double norm_type : {1.0, 2.0, 3.0, double(INFINITY)}) {
    std::vector<Tensor> cpu_params, gpu_params;
    for (uint64_t seed : {80, 81}) {
      Tensor p = randf({5, 7}, seed).set_requires_grad(true);
      p.set_grad(randf({5, 7}, seed + 10));
      Tensor q = p.detach().to(gpu()).set_requires_grad(true);
      q.set_grad(p.grad().to(gpu()));
      cpu_params.push_back(p);
      gpu_params.push_back(q);
    }
    const std::string what = "norm type " + std::to_string(norm_type);
    const double n_cpu = optim::clip_grad_norm(cpu_params, 0.7, norm_type);
    const double n_gpu = optim::clip_grad_norm(gpu_params, 0.7, norm_type);
    EXPECT_NEAR(n_gpu, n_cpu, 1e-5 * (1 + n_cpu)) << what;
    for (size_t i = 0; i < cpu_params.size(); ++i) expect_close(gpu_params[i].grad(), cpu_params[i].grad(), 1e-5, what);
    optim::clip_grad_value(cpu_params, 0.05);
    optim::clip_grad_value(gpu_params, 0.05);
    for (size_t i = 0; i < cpu_params.size(); ++i)
      expect_close(gpu_params[i].grad(), cpu_params[i].grad(), 1e-6, what + " clip_grad_value");
  }
}

// Every optimizer's CUDA step (the fused kernels of kernels/cuda/optim.cu) against its CPU
// loop: a few steps on two parameters, with a new gradient each step.
TEST(CudaOps, OptimizerStepsMatchTheCpu) {
  GS_REQUIRE_CUDA();
  using MakeOpt = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;
  std::vector<std::pair<std::string, MakeOpt>> makers = {
      {"sgd",
       [](std::vector<Tensor> p) {
         return std::make_unique<optim::SGD>(
             p, optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
       }},
      {"adam",
       [](std::vector<Tensor> p) {
         return std::make_unique<optim::Adam>(p, optim::AdamOptions{.lr = 0.01, .weight_decay = 0.01, .amsgrad = true});
       }},
      {"adamw",
       [](std::vector<Tensor> p) { return std::make_unique<optim::AdamW>(p, optim::AdamWOptions{.lr = 0.01}); }},
      {"rprop",
       [](std::vector<Tensor> p) { return std::make_unique<optim::Rprop>(p, optim::RpropOptions{.lr = 0.05}); }},
      {"rmsprop",
       [](std::vector<Tensor> p) {
         return std::make_unique<optim::RMSprop>(
             p, optim::RMSpropOptions{.lr = 0.01, .weight_decay = 0.02, .momentum = 0.9, .centered = true});
       }},
  };
  // Parameters of several sizes (one of many kernel chunks, one smaller than a block) and 60 tiny
  // ones, so that the step's parameters fill more than one launch's table.
  std::vector<Shape> shapes{{6, 5}, {3000}, {7}};
  for (int i = 0; i < 60; ++i) shapes.push_back({3});
  // The fused kernels' launches per step: one per table of step_list_capacity tensors.
  const std::map<std::string, int> capacity{{"sgd", kernels::cuda::step_list_capacity<kernels::cuda::SgdTensor>()},
                                            {"adam", kernels::cuda::step_list_capacity<kernels::cuda::AdamTensor>()},
                                            {"adamw", kernels::cuda::step_list_capacity<kernels::cuda::AdamTensor>()},
                                            {"rprop", kernels::cuda::step_list_capacity<kernels::cuda::RpropTensor>()},
                                            {"rmsprop",
                                             kernels::cuda::step_list_capacity<kernels::cuda::RmspropTensor>()}};
  for (const auto& [name, make] : makers) {
    std::vector<Tensor> on_cpu, on_gpu;
    for (size_t i = 0; i < shapes.size(); ++i) {
      Tensor p = randf(shapes[i], 90 + i).set_requires_grad(true);
      on_cpu.push_back(p);
      on_gpu.push_back(p.detach().to(gpu()).set_requires_grad(true));
    }
    auto opt_cpu = make(on_cpu), opt_gpu = make(on_gpu);
    for (int step = 0; step < 4; ++step) {
      for (size_t i = 0; i < on_cpu.size(); ++i) {
        Tensor g = randf(shapes[i], 1000 + 100 * step + i);
        on_cpu[i].set_grad(g);
        on_gpu[i].set_grad(g.to(gpu()));
      }
      opt_cpu->step();
#if GS_CUDA_EMULATED
      const int64_t before = kernels::cuda::emu::launch_count();
      opt_gpu->step();
      // After the first step (which also fills the new state tensors): the fused launches alone.
      const int64_t tables = (int64_t(shapes.size()) + capacity.at(name) - 1) / capacity.at(name);
      if (step > 0) {
        EXPECT_EQ(kernels::cuda::emu::launch_count() - before, tables) << name << ": launches of a step";
      }
#else
      opt_gpu->step();
#endif
    }
    for (size_t i = 0; i < on_cpu.size(); ++i) {
      ASSERT_TRUE(on_gpu[i].device().is_cuda()) << name;
      expect_close(on_gpu[i], on_cpu[i], 1e-5, name + " parameter " + std::to_string(i));
    }
  }
}

TEST(CudaOps, DevicePlumbing) {
  GS_REQUIRE_CUDA();
  Tensor x = randf({3, 4}, 70);
  Tensor g = x.to(gpu());
  EXPECT_TRUE(g.device().is_cuda());
  EXPECT_EQ(g.to(Device::cpu()).to_vector<float>(), x.to_vector<float>());
  EXPECT_TRUE(g.to(gpu()).is_same(g));
  nn::ModulePtr model = nn::make_model("lenet5");
  EXPECT_TRUE(model->device().is_cpu());
  model->to(gpu());
  EXPECT_EQ(model->device(), gpu());
  Tensor t = raw::transpose(g, 0, 1);  // a non-contiguous view moves as its values
  EXPECT_EQ(t.to(Device::cpu()).to_vector<float>(), raw::transpose(x, 0, 1).to_vector<float>());
  // An f64 CPU tensor copied into a CUDA f32 one (an f64 state_dict into a CUDA model): cast, then moved.
  Tensor d = empty({3, 4}, {DType::F32, gpu()});
  raw::copy_(d, raw::to_dtype(x, DType::F64));
  EXPECT_EQ(d.to(Device::cpu()).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(zeros({5}, {DType::F32, gpu()}).to_vector<float>(), std::vector<float>(5, 0.0f));
  EXPECT_EQ(arange(0, 4, 1, {DType::I64, gpu()}).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_THROW_MSG(raw::binary(raw::BinaryOp::Add, x, g), "expected all tensors on one device, got cpu and cuda:0");
  EXPECT_THROW_MSG(raw::unary(raw::UnaryOp::Exp, zeros({2}, {DType::F64, gpu()})), "f64");
  cuda::synchronize();
  cuda::MemoryStats before = cuda::memory_stats();
  {
    Tensor big = empty({1 << 20}, {DType::F32, gpu()});
    EXPECT_GE(cuda::memory_stats().bytes_in_use, before.bytes_in_use + (4 << 20));
  }
  cuda::MemoryStats after = cuda::memory_stats();
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
  EXPECT_GE(after.bytes_cached, 4 << 20);  // kept for reuse
  EXPECT_GE(after.peak_bytes_in_use, before.bytes_in_use + (4 << 20));
}

}  // namespace
}  // namespace gs::test

namespace gs::test {
namespace {

// The emulated device's memory is closed to the host outside kernels and copies, so host code
// that reads a device pointer without a copy crashes on the emulator as it would on a GPU,
// instead of passing by accident. (On a GPU this is the hardware's business: skipped there.)
TEST(CudaOps, EmulatedDeviceMemoryIsClosedToTheHost) {
  GS_REQUIRE_CUDA();
  if (!cuda::is_emulated()) GTEST_SKIP() << "a property of the emulated device; on a GPU the hardware enforces it";
  Tensor g = randf({16}, 71).to(gpu());
  const float* p = g.data<float>();
  EXPECT_DEATH(
      {
        volatile float v = p[3];
        (void)v;
      },
      "");
  EXPECT_EQ(g.to(Device::cpu()).to_vector<float>(), randf({16}, 71).to_vector<float>());  // copies still work
}

}  // namespace
}  // namespace gs::test
