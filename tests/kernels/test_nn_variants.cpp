// Every variant of the conv2d, pooling and batch-norm kernel tables against its `ref`, in f32
// and f64, on shapes that exercise stride, padding, dilation, groups and 1x1 kernels.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/pool.h"
#include "tensor/random.h"

using namespace gs::kernels;

namespace {

template <class T>
std::vector<T> random_vector(int64_t n, uint64_t seed, double lo = -1, double hi = 1) {
  gs::Generator g(seed);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = T(lo + (hi - lo) * g.uniform());
  return v;
}

template <class T>
double tolerance() {
  return std::is_same_v<T, float> ? 2e-4 : 1e-10;
}

// max |a - b| / (1 + |b|) must stay under the dtype's tolerance
template <class T>
void expect_near_all(const std::vector<T>& actual, const std::vector<T>& expected, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    double err = std::abs(double(actual[i]) - double(expected[i])) / (1.0 + std::abs(double(expected[i])));
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  EXPECT_LE(worst, tolerance<T>()) << what << ": element " << at << " is " << actual[at] << ", ref says "
                                   << expected[at];
}

struct ConvCase {
  const char* name;
  int64_t N, C, H, W, K, R, S, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
};
const ConvCase kConvCases[] = {
    {"fashionnet_conv1", 3, 1, 28, 28, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"fashionnet_conv2", 2, 6, 14, 14, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"lenet5_conv2_nopad", 2, 6, 14, 14, 4, 5, 5, 1, 1, 0, 0, 1, 1, 1},
    {"stride2_nonsquare", 3, 4, 9, 8, 6, 3, 2, 2, 2, 1, 0, 1, 1, 1},
    {"dilation_stride_w", 2, 3, 8, 9, 4, 3, 3, 1, 2, 2, 1, 2, 1, 1},
    {"groups2", 2, 4, 7, 7, 6, 3, 3, 2, 1, 1, 1, 1, 1, 2},
    {"depthwise", 2, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4},
    {"pointwise", 3, 5, 4, 6, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1},
    {"batch1", 1, 3, 10, 10, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    // big enough for im2col to split the batch over threads (per-thread weight-grad partials)
    {"batch_parallel", 5, 8, 16, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"batch_parallel_groups", 5, 8, 16, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 2},
    // for the blocked variants: columns past one and two vectors, channel counts off the
    // 16-channel tile, padding wider than the dilated kernel, stride with dilation, 5x5 stride 3
    {"wide_odd_channels", 2, 3, 11, 37, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"stride2_dilation2", 2, 5, 13, 13, 7, 3, 3, 2, 2, 2, 2, 2, 2, 1},
    {"pad_beyond_kernel", 1, 2, 5, 6, 3, 3, 3, 1, 1, 3, 3, 1, 1, 1},
    {"k5_stride3", 2, 3, 17, 16, 5, 5, 5, 3, 3, 2, 1, 1, 1, 1},
    {"groups3_odd", 2, 6, 9, 10, 9, 2, 3, 1, 2, 0, 1, 1, 2, 3},
    {"fashionnet_conv2_batch8", 8, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1},
};

Conv2dShape make_shape(const ConvCase& c) {
  Conv2dShape s;
  s.N = c.N, s.C = c.C, s.H = c.H, s.W = c.W, s.K = c.K, s.R = c.R, s.S = c.S;
  s.stride_h = c.stride_h, s.stride_w = c.stride_w, s.pad_h = c.pad_h, s.pad_w = c.pad_w;
  s.dilation_h = c.dil_h, s.dilation_w = c.dil_w, s.groups = c.groups;
  s.P = conv_out_size(s.H, s.pad_h, s.dilation_h, s.R, s.stride_h);
  s.Q = conv_out_size(s.W, s.pad_w, s.dilation_w, s.S, s.stride_w);
  return s;
}

template <class T>
void check_conv_variants() {
  for (const ConvCase& c : kConvCases) {
    const Conv2dShape s = make_shape(c);
    const int64_t x_size = s.N * s.C * s.H * s.W, w_size = s.K * (s.C / s.groups) * s.R * s.S;
    const int64_t y_size = s.N * s.K * s.P * s.Q;
    auto x = random_vector<T>(x_size, 1), w = random_vector<T>(w_size, 2), bias = random_vector<T>(s.K, 3);
    auto gy = random_vector<T>(y_size, 4);

    std::vector<T> y_ref(static_cast<size_t>(y_size)), gx_ref(static_cast<size_t>(x_size)),
        gw_ref(static_cast<size_t>(w_size)), gb_ref(static_cast<size_t>(s.K));
    conv2d_table<T>().get("ref")(s, x.data(), w.data(), bias.data(), y_ref.data());
    conv2d_backward_data_table<T>().get("ref")(s, gy.data(), w.data(), gx_ref.data());
    conv2d_backward_weight_table<T>().get("ref")(s, x.data(), gy.data(), gw_ref.data(), gb_ref.data());

    for (const auto& v : conv2d_table<T>().names()) {
      // Outputs start as NaN: a variant that skips an element is caught.
      std::vector<T> y(static_cast<size_t>(y_size), T(NAN)), y_nobias(static_cast<size_t>(y_size), T(NAN));
      conv2d_table<T>().get(v)(s, x.data(), w.data(), bias.data(), y.data());
      expect_near_all(y, y_ref, std::string(c.name) + " conv2d/" + v);
      conv2d_table<T>().get(v)(s, x.data(), w.data(), nullptr, y_nobias.data());
      for (int64_t i = 0; i < y_size; ++i) y_nobias[size_t(i)] += bias[size_t((i / (s.P * s.Q)) % s.K)];
      expect_near_all(y_nobias, y_ref, std::string(c.name) + " conv2d no bias/" + v);
    }
    for (const auto& v : conv2d_backward_data_table<T>().names()) {
      std::vector<T> gx(static_cast<size_t>(x_size), T(NAN));
      conv2d_backward_data_table<T>().get(v)(s, gy.data(), w.data(), gx.data());
      expect_near_all(gx, gx_ref, std::string(c.name) + " conv2d_backward_data/" + v);
    }
    for (const auto& v : conv2d_backward_weight_table<T>().names()) {
      std::vector<T> gw(static_cast<size_t>(w_size), T(NAN)), gb(static_cast<size_t>(s.K), T(NAN)),
          gw_only(static_cast<size_t>(w_size), T(NAN));
      conv2d_backward_weight_table<T>().get(v)(s, x.data(), gy.data(), gw.data(), gb.data());
      expect_near_all(gw, gw_ref, std::string(c.name) + " conv2d_backward_weight/" + v);
      expect_near_all(gb, gb_ref, std::string(c.name) + " conv2d bias grad/" + v);
      conv2d_backward_weight_table<T>().get(v)(s, x.data(), gy.data(), gw_only.data(), nullptr);
      expect_near_all(gw_only, gw_ref, std::string(c.name) + " conv2d_backward_weight, no bias/" + v);
    }
  }
}

TEST(NnVariants, Conv2dFloat) { check_conv_variants<float>(); }
TEST(NnVariants, Conv2dDouble) { check_conv_variants<double>(); }

// f32 defaults to oneDNN where it is linked (measured fastest on the zoo shapes); otherwise, and
// for f64, direct forward and im2col backward. Every build has the direct variant.
TEST(NnVariants, Conv2dTablesHaveRefFirstAndTheMeasuredDefault) {
#ifdef GS_DNNL
  const char *f32_forward = "onednn", *f32_backward = "onednn";
#else
  const char *f32_forward = "direct", *f32_backward = "im2col";
#endif
  EXPECT_EQ(conv2d_table<float>().default_name(), f32_forward);
  EXPECT_EQ(conv2d_backward_data_table<float>().default_name(), f32_backward);
  EXPECT_EQ(conv2d_backward_weight_table<float>().default_name(), f32_backward);
  EXPECT_EQ(conv2d_table<double>().default_name(), "direct");
  EXPECT_EQ(conv2d_backward_weight_table<double>().default_name(), "im2col");
  EXPECT_EQ(conv2d_table<float>().names().front(), "ref");
  for (const auto* names : {&conv2d_table<float>().names(), &conv2d_backward_data_table<double>().names(),
                            &conv2d_backward_weight_table<float>().names()})
    EXPECT_NE(std::find(names->begin(), names->end(), "direct"), names->end());
}

// ---------------- pooling ----------------

struct PoolCase {
  const char* name;
  int64_t N, C, H, W, kh, kw, sh, sw, ph, pw;
};
const PoolCase kPoolCases[] = {
    {"k2s2", 2, 3, 28, 28, 2, 2, 2, 2, 0, 0},
    {"k3s2p1", 2, 4, 9, 7, 3, 3, 2, 2, 1, 1},
    {"nonsquare", 3, 2, 8, 9, 3, 2, 1, 2, 1, 0},
    {"big_planes", 4, 16, 30, 30, 2, 2, 2, 2, 0, 0},
    {"k2s2_wide_odd", 2, 3, 7, 75, 2, 2, 2, 2, 0, 0},  // whole vectors of outputs, a tail, an odd row
};

Pool2dShape make_pool(const PoolCase& c) {
  Pool2dShape s;
  s.N = c.N, s.C = c.C, s.H = c.H, s.W = c.W, s.kernel_h = c.kh, s.kernel_w = c.kw;
  s.stride_h = c.sh, s.stride_w = c.sw, s.pad_h = c.ph, s.pad_w = c.pw;
  s.P = pool_out_size(s.H, s.pad_h, s.kernel_h, s.stride_h);
  s.Q = pool_out_size(s.W, s.pad_w, s.kernel_w, s.stride_w);
  return s;
}

template <class T>
void check_pool_variants() {
  for (const PoolCase& c : kPoolCases) {
    const Pool2dShape s = make_pool(c);
    const int64_t x_size = s.N * s.C * s.H * s.W, y_size = s.N * s.C * s.P * s.Q;
    auto x = random_vector<T>(x_size, 5), gy = random_vector<T>(y_size, 6);
    const std::string name = c.name;

    std::vector<T> y_ref(static_cast<size_t>(y_size)), gx_ref(static_cast<size_t>(x_size));
    std::vector<int64_t> idx_ref(static_cast<size_t>(y_size));
    max_pool2d_table<T>().get("ref")(s, x.data(), y_ref.data(), idx_ref.data());
    max_pool2d_backward_table<T>().get("ref")(s, gy.data(), idx_ref.data(), gx_ref.data());
    for (const auto& v : max_pool2d_table<T>().names()) {
      std::vector<T> y(static_cast<size_t>(y_size), T(NAN));
      std::vector<int64_t> idx(static_cast<size_t>(y_size), -1);
      max_pool2d_table<T>().get(v)(s, x.data(), y.data(), idx.data());
      expect_near_all(y, y_ref, name + " max_pool2d/" + v);
      EXPECT_EQ(idx, idx_ref) << name << " max_pool2d argmax/" << v;
    }
    for (const auto& v : max_pool2d_backward_table<T>().names()) {
      std::vector<T> gx(static_cast<size_t>(x_size), T(NAN));
      max_pool2d_backward_table<T>().get(v)(s, gy.data(), idx_ref.data(), gx.data());
      expect_near_all(gx, gx_ref, name + " max_pool2d_backward/" + v);
    }

    for (bool include_pad : {true, false}) {
      const std::string tag = name + (include_pad ? " include_pad" : " exclude_pad");
      avg_pool2d_table<T>().get("ref")(s, x.data(), y_ref.data(), include_pad);
      avg_pool2d_backward_table<T>().get("ref")(s, gy.data(), gx_ref.data(), include_pad);
      for (const auto& v : avg_pool2d_table<T>().names()) {
        std::vector<T> y(static_cast<size_t>(y_size), T(NAN));
        avg_pool2d_table<T>().get(v)(s, x.data(), y.data(), include_pad);
        expect_near_all(y, y_ref, tag + " avg_pool2d/" + v);
      }
      for (const auto& v : avg_pool2d_backward_table<T>().names()) {
        std::vector<T> gx(static_cast<size_t>(x_size), T(NAN));
        avg_pool2d_backward_table<T>().get(v)(s, gy.data(), gx.data(), include_pad);
        expect_near_all(gx, gx_ref, tag + " avg_pool2d_backward/" + v);
      }
    }

    Pool2dShape a = s;  // adaptive: output (3, 5) from any plane
    a.P = 3, a.Q = 5;
    const int64_t a_size = a.N * a.C * a.P * a.Q;
    auto gya = random_vector<T>(a_size, 7);
    std::vector<T> ya_ref(static_cast<size_t>(a_size)), gxa_ref(static_cast<size_t>(x_size));
    adaptive_avg_pool2d_table<T>().get("ref")(a, x.data(), ya_ref.data());
    adaptive_avg_pool2d_backward_table<T>().get("ref")(a, gya.data(), gxa_ref.data());
    for (const auto& v : adaptive_avg_pool2d_table<T>().names()) {
      std::vector<T> y(static_cast<size_t>(a_size), T(NAN));
      adaptive_avg_pool2d_table<T>().get(v)(a, x.data(), y.data());
      expect_near_all(y, ya_ref, name + " adaptive_avg_pool2d/" + v);
    }
    for (const auto& v : adaptive_avg_pool2d_backward_table<T>().names()) {
      std::vector<T> gx(static_cast<size_t>(x_size), T(NAN));
      adaptive_avg_pool2d_backward_table<T>().get(v)(a, gya.data(), gx.data());
      expect_near_all(gx, gxa_ref, name + " adaptive_avg_pool2d_backward/" + v);
    }
  }
}

TEST(NnVariants, PoolingFloat) { check_pool_variants<float>(); }
TEST(NnVariants, PoolingDouble) { check_pool_variants<double>(); }

TEST(NnVariants, MaxPoolPicksTheFirstOfTiesAndPropagatesNaN) {
  Pool2dShape s;
  s.N = 1, s.C = 1, s.H = 2, s.W = 4, s.kernel_h = 2, s.kernel_w = 2, s.stride_h = 2, s.stride_w = 2, s.P = 1, s.Q = 2;
  std::vector<float> x = {1, 3, 7, NAN, 3, 2, 9, NAN};  // two NaNs in the second window: the last wins
  for (const auto& v : max_pool2d_table<float>().names()) {
    std::vector<float> y(2);
    std::vector<int64_t> idx(2);
    max_pool2d_table<float>().get(v)(s, x.data(), y.data(), idx.data());
    EXPECT_EQ(y[0], 3.f) << v;
    EXPECT_EQ(idx[0], 1) << v;  // the first 3 (row 0) wins the tie with row 1
    EXPECT_TRUE(std::isnan(y[1])) << v;
    EXPECT_EQ(idx[1], 7) << v;  // as torch: its gradient goes to x[7], not x[3]
  }
}

// NaNs, ties and -inf inside whole vectors of 2x2 windows (the fast variant's vector path)
TEST(NnVariants, MaxPoolWideRowsWithNaNTiesAndInfMatchRef) {
  Pool2dShape s;
  s.N = 1, s.C = 2, s.H = 4, s.W = 80, s.kernel_h = 2, s.kernel_w = 2, s.stride_h = 2, s.stride_w = 2;
  s.P = 2, s.Q = 40;
  for (bool f64 : {false, true}) {
    auto run = [&](auto zero) {
      using T = decltype(zero);
      auto x = random_vector<T>(s.N * s.C * s.H * s.W, 31);
      for (size_t i = 0; i < x.size(); i += 7) x[i] = T(0.5);  // ties with the values around
      x[3] = x[90] = x[200] = T(NAN);
      x[401] = T(NAN), x[402] = T(NAN);
      for (int i = 100; i < 104; ++i) x[size_t(i)] = -std::numeric_limits<T>::infinity();
      std::vector<T> y_ref(size_t(s.N * s.C * s.P * s.Q));
      std::vector<int64_t> idx_ref(y_ref.size());
      max_pool2d_table<T>().get("ref")(s, x.data(), y_ref.data(), idx_ref.data());
      for (const auto& v : max_pool2d_table<T>().names()) {
        std::vector<T> y(y_ref.size());
        std::vector<int64_t> idx(y_ref.size());
        max_pool2d_table<T>().get(v)(s, x.data(), y.data(), idx.data());
        EXPECT_EQ(idx, idx_ref) << v << (f64 ? " f64" : " f32");
        for (size_t i = 0; i < y.size(); ++i)
          EXPECT_TRUE(y[i] == y_ref[i] || (std::isnan(y[i]) && std::isnan(y_ref[i]))) << v << " output " << i;
      }
    };
    if (f64)
      run(0.0);
    else
      run(0.0f);
  }
}

// ---------------- batch norm ----------------

template <class T>
void check_batch_norm_variants() {
  const BatchNormShape shapes[] = {{64, 32, 196}, {5, 3, 7}, {16, 10, 1}};
  for (const BatchNormShape& s : shapes) {
    const int64_t n = s.N * s.C * s.L;
    const std::string name = std::to_string(s.N) + "x" + std::to_string(s.C) + "x" + std::to_string(s.L);
    auto x = random_vector<T>(n, 8, -2, 3), gy = random_vector<T>(n, 9);
    auto gamma = random_vector<T>(s.C, 10), beta = random_vector<T>(s.C, 11);
    for (bool batch_stats : {true, false}) {
      for (bool affine : {true, false}) {
        const std::string tag = name + (batch_stats ? " train" : " eval") + (affine ? " affine" : "");
        const T* g = affine ? gamma.data() : nullptr;
        const T* b = affine ? beta.data() : nullptr;
        auto rm_ref = random_vector<T>(s.C, 12), rv_ref = random_vector<T>(s.C, 13, 0.5, 2);
        std::vector<T> y_ref(static_cast<size_t>(n)), mean_ref(static_cast<size_t>(s.C)),
            invstd_ref(static_cast<size_t>(s.C));
        batch_norm_table<T>().get("ref")(s, x.data(), g, b, rm_ref.data(), rv_ref.data(), y_ref.data(), mean_ref.data(),
                                         invstd_ref.data(), batch_stats, 0.1, 1e-5);
        std::vector<T> gx_ref(static_cast<size_t>(n)), gg_ref(static_cast<size_t>(s.C)),
            gb_ref(static_cast<size_t>(s.C));
        batch_norm_backward_table<T>().get("ref")(s, x.data(), gy.data(), g, mean_ref.data(), invstd_ref.data(),
                                                  gx_ref.data(), gg_ref.data(), gb_ref.data(), batch_stats);
        for (const auto& v : batch_norm_table<T>().names()) {
          auto rm = random_vector<T>(s.C, 12), rv = random_vector<T>(s.C, 13, 0.5, 2);
          std::vector<T> y(static_cast<size_t>(n), T(NAN)), mean(static_cast<size_t>(s.C), T(NAN)),
              invstd(static_cast<size_t>(s.C), T(NAN));
          batch_norm_table<T>().get(v)(s, x.data(), g, b, rm.data(), rv.data(), y.data(), mean.data(), invstd.data(),
                                       batch_stats, 0.1, 1e-5);
          expect_near_all(y, y_ref, tag + " batch_norm/" + v);
          expect_near_all(mean, mean_ref, tag + " batch_norm mean/" + v);
          expect_near_all(invstd, invstd_ref, tag + " batch_norm invstd/" + v);
          expect_near_all(rm, rm_ref, tag + " batch_norm running_mean/" + v);
          expect_near_all(rv, rv_ref, tag + " batch_norm running_var/" + v);
        }
        for (const auto& v : batch_norm_backward_table<T>().names()) {
          std::vector<T> gx(static_cast<size_t>(n), T(NAN)), gg(static_cast<size_t>(s.C), T(NAN)),
              gb(static_cast<size_t>(s.C), T(NAN));
          batch_norm_backward_table<T>().get(v)(s, x.data(), gy.data(), g, mean_ref.data(), invstd_ref.data(),
                                                gx.data(), gg.data(), gb.data(), batch_stats);
          expect_near_all(gx, gx_ref, tag + " batch_norm_backward dx/" + v);
          expect_near_all(gg, gg_ref, tag + " batch_norm_backward dgamma/" + v);
          expect_near_all(gb, gb_ref, tag + " batch_norm_backward dbeta/" + v);
        }
        // Double backward: every variant against ref, with and without each incoming gradient
        // (a null one must act as zeros).
        auto ggx = random_vector<T>(n, 14), ggg = random_vector<T>(s.C, 15), ggb = random_vector<T>(s.C, 16);
        const std::vector<T> zeros_n(static_cast<size_t>(n)), zeros_c(static_cast<size_t>(s.C));
        for (int present = 0; present < 8; ++present) {
          const bool has_x = present & 1, has_g = present & 2, has_b = present & 4;
          const std::string tag2 = tag + " double_backward ggx" + (has_x ? "+" : "-") + " ggw" + (has_g ? "+" : "-") +
                                   " ggb" + (has_b ? "+" : "-");
          std::vector<T> dx_ref(static_cast<size_t>(n)), dw_ref(static_cast<size_t>(s.C)),
              dgy_ref(static_cast<size_t>(n));
          batch_norm_double_backward_table<T>().get("ref")(
              s, x.data(), gy.data(), g, mean_ref.data(), invstd_ref.data(), has_x ? ggx.data() : zeros_n.data(),
              has_g ? ggg.data() : zeros_c.data(), has_b ? ggb.data() : zeros_c.data(), dx_ref.data(), dw_ref.data(),
              dgy_ref.data(), batch_stats);
          for (const auto& v : batch_norm_double_backward_table<T>().names()) {
            std::vector<T> dx(static_cast<size_t>(n), T(NAN)), dw(static_cast<size_t>(s.C), T(NAN)),
                dgy(static_cast<size_t>(n), T(NAN));
            batch_norm_double_backward_table<T>().get(v)(s, x.data(), gy.data(), g, mean_ref.data(), invstd_ref.data(),
                                                         has_x ? ggx.data() : nullptr, has_g ? ggg.data() : nullptr,
                                                         has_b ? ggb.data() : nullptr, dx.data(), dw.data(), dgy.data(),
                                                         batch_stats);
            expect_near_all(dx, dx_ref, tag2 + " dx/" + v);
            expect_near_all(dw, dw_ref, tag2 + " dgamma/" + v);
            expect_near_all(dgy, dgy_ref, tag2 + " dgy/" + v);
          }
        }
      }
    }
  }
}

TEST(NnVariants, BatchNormFloat) { check_batch_norm_variants<float>(); }
TEST(NnVariants, BatchNormDouble) { check_batch_norm_variants<double>(); }

}  // namespace
