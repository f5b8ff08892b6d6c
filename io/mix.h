// Batch mixing for training, as torchvision.transforms.v2's MixUp and CutMix: every image is
// mixed with the one before it in the batch (the batch rolled by one, as torchvision does), and
// the labels become class probabilities for cross_entropy.
//
//   gs::io::MixOptions mix{.mixup_alpha = 0.2, .cutmix_alpha = 1.0};
//   gs::Generator gen(gs::io::mix_seed(seed, epoch, batch_index));
//   gs::io::MixedBatch m = gs::io::mix_batch(batch.images, batch.labels, num_classes, mix, gen);
//   Tensor loss = gs::cross_entropy(model(m.images), m.targets);
//
// mixup: x' = lambda x + (1 - lambda) x_prev, lambda ~ Beta(alpha, alpha).
// cutmix: one box, the same for the batch, centred uniformly with sides sqrt(1 - lambda) of the
// image's (clipped at the borders), is pasted from x_prev; lambda becomes the share of pixels
// left, 1 - box area / (H W). The targets are lambda onehot(y) + (1 - lambda) onehot(y_prev).
#pragma once
#include <cstdint>
#include <string>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace gs::io {

struct MixOptions {
  double mixup_alpha = 0;   // > 0: mixup
  double cutmix_alpha = 0;  // > 0: cutmix; with both, each batch takes one of the two with probability 1/2
  bool enabled() const { return mixup_alpha > 0 || cutmix_alpha > 0; }
};

struct MixedBatch {
  Tensor images;      // (N, C, H, W) f32
  Tensor targets;     // (N, K) f32 class probabilities
  double lambda = 1;  // the weight of each image's own label
  std::string kind;   // "mixup" or "cutmix"
};

// A draw of Beta(a, b) (a, b > 0) from two Gamma draws (Marsaglia and Tsang).
double sample_beta(double a, double b, Generator& gen);
// The seed of batch `batch_index`'s mixing Generator in `epoch` (independent of the augmentation's).
uint64_t mix_seed(uint64_t seed, int64_t epoch, int64_t batch_index);
// images (N, C, H, W) f32 on the CPU, labels (N) i64 in [0, num_classes).
MixedBatch mix_batch(const Tensor& images, const Tensor& labels, int64_t num_classes, const MixOptions& options,
                     Generator& gen);

}  // namespace gs::io
