// Per-image transforms for data augmentation and normalisation. Each works on one f32 (C, H, W)
// image and draws its randomness from the Generator it is given, so a fixed seed gives fixed output.
//
//   auto aug = gs::io::make_augmentation("crop:4,flip,rotate:10,jitter:0.2");
//   gs::Generator gen(42);
//   gs::Tensor out = aug->apply(image, gen);            // image f32 [C,H,W]
//
// apply() is const and touches no global state: the DataLoader calls it from its worker thread.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace gs::io {

struct Transform {
  virtual ~Transform() = default;
  virtual Tensor apply(const Tensor& image, Generator& gen) const = 0;
  virtual std::string describe() const = 0;
};

// (x - mean[c]) / std[c]; mean and std hold one value or one per channel.
class Normalize : public Transform {
 public:
  Normalize(std::vector<double> mean, std::vector<double> std);
  Normalize(double mean, double std) : Normalize(std::vector<double>{mean}, std::vector<double>{std}) {}
  Tensor apply(const Tensor& image, Generator& gen) const override;
  std::string describe() const override;
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& std() const { return std_; }

 private:
  std::vector<double> mean_, std_;
};

// Zero-pads by `padding` on every side, then crops size_h x size_w at a random offset
// (size 0: the input's size, the usual "pad and crop back" augmentation).
class RandomCrop : public Transform {
 public:
  RandomCrop(int64_t size_h, int64_t size_w, int64_t padding = 0);
  Tensor apply(const Tensor& image, Generator& gen) const override;
  std::string describe() const override;
  // The crop whose top-left corner is (top, left) in padded coordinates.
  Tensor crop_at(const Tensor& image, int64_t top, int64_t left) const;

 private:
  int64_t size_h_, size_w_, padding_;
};

class RandomHorizontalFlip : public Transform {
 public:
  explicit RandomHorizontalFlip(double p = 0.5);
  Tensor apply(const Tensor& image, Generator& gen) const override;
  std::string describe() const override;

 private:
  double p_;
};

// Rotation by a uniform angle in [-degrees, degrees] about the image centre; bilinear, zero fill.
class RandomRotation : public Transform {
 public:
  explicit RandomRotation(double degrees);
  Tensor apply(const Tensor& image, Generator& gen) const override;
  std::string describe() const override;

 private:
  double degrees_;
};

// torchvision-style factors: brightness/contrast/saturation in [max(0, 1-v), 1+v], hue shift in
// [-hue, hue] (hue <= 0.5), applied in that fixed order and clamped to [0, 1]. Saturation and hue
// need 3 channels; other images ignore them.
class ColorJitter : public Transform {
 public:
  ColorJitter(double brightness, double contrast = 0, double saturation = 0, double hue = 0);
  Tensor apply(const Tensor& image, Generator& gen) const override;
  std::string describe() const override;

 private:
  double brightness_, contrast_, saturation_, hue_;
};

class Compose : public Transform {
 public:
  explicit Compose(std::vector<std::shared_ptr<Transform>> transforms);
  Tensor apply(const Tensor& image, Generator& gen) const override;
  std::string describe() const override;  // "none" when empty
  const std::vector<std::shared_ptr<Transform>>& transforms() const { return transforms_; }

 private:
  std::vector<std::shared_ptr<Transform>> transforms_;
};

// Deterministic building blocks (also used by the transforms above).
Tensor flip_horizontal(const Tensor& image);
Tensor rotate(const Tensor& image, double degrees);  // counter-clockwise, bilinear, zero fill

// "none" (or "") gives an empty Compose. Otherwise a comma list of:
//   crop[:<padding>]          RandomCrop to the input size after zero padding (default 4)
//   flip[:<p>]                RandomHorizontalFlip (default 0.5)
//   rotate:<degrees>          RandomRotation
//   jitter:<v>[:<c>:<s>:<h>]  ColorJitter; one value sets brightness, contrast and saturation
//   normalize:<mean>:<std>    Normalize with one value for every channel
// Errors name the bad item.
std::shared_ptr<Transform> make_augmentation(const std::string& spec);

}  // namespace gs::io
