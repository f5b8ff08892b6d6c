// MixUp and CutMix of a batch (io/mix.h), written from torchvision.transforms.v2's definitions.
#include "io/mix.h"

#include <algorithm>
#include <cmath>

#include "io/dataloader.h"
#include "tensor/raw_ops.h"

namespace gs::io {

namespace {

// Gamma(a, 1): Marsaglia and Tsang's squeeze for a >= 1; a < 1 through Gamma(a + 1) U^(1/a).
double sample_gamma(double a, Generator& gen) {
  if (a < 1) return sample_gamma(a + 1, gen) * std::pow(gen.uniform(), 1.0 / a);
  const double d = a - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    const double x = gen.normal();
    double v = 1 + c * x;
    if (v <= 0) continue;
    v = v * v * v;
    const double u = gen.uniform();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (u > 0 && std::log(u) < 0.5 * x * x + d * (1 - v + std::log(v))) return d * v;
  }
}

}  // namespace

double sample_beta(double a, double b, Generator& gen) {
  GS_CHECK(a > 0 && b > 0, "sample_beta: parameters must be > 0, got %g, %g", a, b);
  const double x = sample_gamma(a, gen), y = sample_gamma(b, gen);
  // Tiny parameters can underflow both draws; the distribution is then all at 0 and 1.
  if (x + y == 0) return gen.uniform() < a / (a + b) ? 1.0 : 0.0;
  return x / (x + y);
}

uint64_t mix_seed(uint64_t seed, int64_t epoch, int64_t batch_index) {
  return example_seed(seed ^ 0x6d69787570ULL, epoch, batch_index);  // "mixup": apart from the images' seeds
}

MixedBatch mix_batch(const Tensor& images, const Tensor& labels, int64_t num_classes, const MixOptions& o,
                     Generator& gen) {
  GS_CHECK(o.mixup_alpha >= 0 && o.cutmix_alpha >= 0 && o.enabled(),
           "mix_batch: need mixup_alpha or cutmix_alpha > 0 (got %g, %g)", o.mixup_alpha, o.cutmix_alpha);
  GS_CHECK(images.dim() == 4 && images.dtype() == DType::F32 && images.device().is_cpu(),
           "mix_batch: images must be f32 (N, C, H, W) on the CPU, got %s", images.describe().c_str());
  const int64_t N = images.shape()[0], C = images.shape()[1], H = images.shape()[2], W = images.shape()[3];
  GS_CHECK(labels.dtype() == DType::I64 && labels.dim() == 1 && labels.shape()[0] == N,
           "mix_batch: labels must be i64 (N) = [%lld], got %s", (long long)N, labels.describe().c_str());
  const bool cutmix = o.cutmix_alpha > 0 && (o.mixup_alpha == 0 || gen.uniform() < 0.5);
  MixedBatch m;
  m.kind = cutmix ? "cutmix" : "mixup";
  double lambda = sample_beta(cutmix ? o.cutmix_alpha : o.mixup_alpha, cutmix ? o.cutmix_alpha : o.mixup_alpha, gen);
  Tensor x = raw::contiguous(images);
  m.images = raw::clone(x);
  const float* src = x.data<float>();
  float* dst = m.images.data<float>();
  const int64_t plane = H * W, image = C * plane;
  auto prev = [N](int64_t n) { return (n + N - 1) % N; };  // the batch rolled by one: image n gets n - 1
  if (!cutmix) {
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t i = 0; i < image; ++i)
        dst[n * image + i] = float(lambda * src[n * image + i] + (1 - lambda) * src[prev(n) * image + i]);
    }
  } else {
    const int64_t cx = std::min<int64_t>(W - 1, int64_t(gen.uniform() * double(W)));
    const int64_t cy = std::min<int64_t>(H - 1, int64_t(gen.uniform() * double(H)));
    const double r = 0.5 * std::sqrt(1.0 - lambda);
    const int64_t half_w = int64_t(r * double(W)), half_h = int64_t(r * double(H));
    const int64_t x1 = std::max<int64_t>(cx - half_w, 0), x2 = std::min<int64_t>(cx + half_w, W);
    const int64_t y1 = std::max<int64_t>(cy - half_h, 0), y2 = std::min<int64_t>(cy + half_h, H);
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t c = 0; c < C; ++c) {
        for (int64_t y = y1; y < y2; ++y) {
          for (int64_t xx = x1; xx < x2; ++xx)
            dst[n * image + c * plane + y * W + xx] = src[prev(n) * image + c * plane + y * W + xx];
        }
      }
    }
    lambda = 1.0 - double((x2 - x1) * (y2 - y1)) / double(plane);
  }
  m.lambda = lambda;
  m.targets = zeros({N, num_classes});
  float* t = m.targets.data<float>();
  const Tensor l = raw::contiguous(labels);
  const int64_t* y = l.data<int64_t>();
  for (int64_t n = 0; n < N; ++n) {
    GS_CHECK(y[n] >= 0 && y[n] < num_classes, "mix_batch: label %lld is out of range for %lld classes", (long long)y[n],
             (long long)num_classes);
    t[n * num_classes + y[n]] += float(lambda);
    t[n * num_classes + y[prev(n)]] += float(1 - lambda);
  }
  return m;
}

}  // namespace gs::io
