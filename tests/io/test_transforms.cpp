// Transforms on one (C, H, W) image: flips, padded crops, rotation, colour jitter, normalisation,
// Compose and the augmentation spec parser. Random ones are checked for reproducibility per seed.
#include <cmath>
#include <set>

#include "io/transforms.h"
#include "tests/helpers.h"

namespace gs::io {
namespace {

using test::expect_close;

// Pixel (c, y, x) = (100 c + 10 y + x + 1) / 1000: distinct, in (0, 1).
Tensor ramp(int64_t c, int64_t h, int64_t w) {
  Tensor t = empty({c, h, w});
  for (int64_t i = 0; i < c; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        t.data<float>()[(i * h + y) * w + x] = static_cast<float>(100 * i + 10 * y + x + 1) / 1000.0f;
  return t;
}

float at(const Tensor& t, int64_t c, int64_t y, int64_t x) {
  return t.data<float>()[(c * t.size(1) + y) * t.size(2) + x];
}

TEST(Transforms, FlipMirrorsAndTwiceIsIdentity) {
  Tensor img = ramp(2, 3, 5);
  Tensor f = flip_horizontal(img);
  EXPECT_EQ(at(f, 1, 2, 0), at(img, 1, 2, 4));
  EXPECT_EQ(at(f, 0, 1, 3), at(img, 0, 1, 1));
  EXPECT_EQ(flip_horizontal(f).to_vector<float>(), img.to_vector<float>());
  Generator g(1);
  EXPECT_EQ(RandomHorizontalFlip(1.0).apply(img, g).to_vector<float>(), f.to_vector<float>());
  EXPECT_EQ(RandomHorizontalFlip(0.0).apply(img, g).to_vector<float>(), img.to_vector<float>());
  int flipped = 0;
  RandomHorizontalFlip half(0.5);
  for (uint64_t s = 0; s < 200; ++s) {
    Generator gs(s);
    flipped += half.apply(img, gs).to_vector<float>() == f.to_vector<float>();
  }
  EXPECT_GT(flipped, 70);
  EXPECT_LT(flipped, 130);
  EXPECT_THROW_MSG(RandomHorizontalFlip(1.5), "p 1.5");
}

TEST(Transforms, CropWithPaddingShapesAndOffsets) {
  Tensor img = ramp(2, 4, 5);
  RandomCrop crop(0, 0, 2);  // pad 2, crop back to 4x5
  Tensor corner = crop.crop_at(img, 0, 0);
  EXPECT_EQ(shape_str(corner.shape()), "[2,4,5]");
  EXPECT_EQ(at(corner, 1, 0, 0), 0.0f);
  EXPECT_EQ(at(corner, 1, 1, 4), 0.0f);
  EXPECT_EQ(at(corner, 1, 2, 2), at(img, 1, 0, 0));
  EXPECT_EQ(at(corner, 0, 3, 4), at(img, 0, 1, 2));
  EXPECT_EQ(crop.crop_at(img, 2, 2).to_vector<float>(), img.to_vector<float>()) << "offset = padding: identity";
  Tensor far = crop.crop_at(img, 4, 4);
  EXPECT_EQ(at(far, 0, 0, 0), at(img, 0, 2, 2));
  EXPECT_EQ(at(far, 0, 3, 4), 0.0f);

  std::set<std::pair<int64_t, int64_t>> offsets;
  for (uint64_t s = 0; s < 300; ++s) {
    Generator g(s), replay(s);
    int64_t top = replay.randint(0, 5), left = replay.randint(0, 5);
    offsets.insert({top, left});
    ASSERT_EQ(crop.apply(img, g).to_vector<float>(), crop.crop_at(img, top, left).to_vector<float>());
  }
  EXPECT_EQ(offsets.size(), 25u) << "every offset in [0, 2 * padding] is drawn";

  RandomCrop small(2, 3, 0);
  Generator g(3);
  EXPECT_EQ(shape_str(small.apply(img, g).shape()), "[2,2,3]");
  EXPECT_THROW_MSG(RandomCrop(9, 9, 0).apply(img, g), "larger than the padded image");
  EXPECT_THROW_MSG(crop.crop_at(img, 5, 0), "outside the padded image");
  EXPECT_THROW_MSG(crop.crop_at(ones({4, 5}), 0, 0), "expects one f32 cpu image (C, H, W)");
}

TEST(Transforms, RotationZeroIsIdentityAndQuarterTurnsMovePixels) {
  Tensor img = ramp(3, 5, 5);
  EXPECT_EQ(rotate(img, 0).to_vector<float>(), img.to_vector<float>());
  Generator g(4);
  EXPECT_EQ(RandomRotation(0).apply(img, g).to_vector<float>(), img.to_vector<float>());
  Tensor q = rotate(img, 90);  // counter-clockwise: top-centre goes to left-centre
  EXPECT_NEAR(at(q, 1, 2, 0), at(img, 1, 0, 2), 1e-6);
  EXPECT_NEAR(at(q, 2, 0, 0), at(img, 2, 0, 4), 1e-6);  // top-right corner goes to top-left
  expect_close(rotate(rotate(q, 90), 180), img, 1e-5, "four quarter turns");
  Tensor wide = ramp(1, 4, 8);
  Tensor r = rotate(wide, 90);
  EXPECT_EQ(at(r, 0, 0, 0), 0.0f) << "corners of a non-square image fill with zero";
  Tensor half = rotate(ramp(1, 2, 2), 45);  // centre-adjacent samples interpolate
  for (float v : half.to_vector<float>()) EXPECT_TRUE(v >= 0 && v <= 1);
  RandomRotation rr(10);
  Generator a(9), b(9);
  EXPECT_EQ(rr.apply(img, a).to_vector<float>(), rr.apply(img, b).to_vector<float>());
  EXPECT_THROW_MSG(RandomRotation(-1), "degrees -1");
}

TEST(Transforms, ColorJitterReproducibleAndBounded) {
  Tensor img = ramp(3, 4, 4);
  ColorJitter jitter(0.4, 0.4, 0.4, 0.1);
  Generator a(11), b(11), c(12);
  Tensor ja = jitter.apply(img, a);
  EXPECT_EQ(ja.to_vector<float>(), jitter.apply(img, b).to_vector<float>()) << "same seed, same output";
  EXPECT_NE(ja.to_vector<float>(), jitter.apply(img, c).to_vector<float>());
  EXPECT_NE(ja.to_vector<float>(), img.to_vector<float>());
  for (float v : ja.to_vector<float>()) EXPECT_TRUE(v >= 0 && v <= 1);

  // Brightness alone scales every pixel by one factor in [0.5, 1.5].
  Generator g(5);
  Tensor bright = ColorJitter(0.5).apply(img, g);
  double factor = at(bright, 0, 0, 0) / at(img, 0, 0, 0);
  EXPECT_GE(factor, 0.5);
  EXPECT_LE(factor, 1.5);
  EXPECT_NEAR(at(bright, 2, 3, 3), std::min(1.0, at(img, 2, 3, 3) * factor), 1e-6);

  // Saturation and hue need colour: a grayscale image is left alone and draws nothing.
  Tensor gray = ramp(1, 4, 4);
  Generator used(6), fresh(6);
  EXPECT_EQ(ColorJitter(0, 0, 0.9, 0.5).apply(gray, used).to_vector<float>(), gray.to_vector<float>());
  EXPECT_EQ(used.next_u64(), fresh.next_u64());
  // Contrast on grayscale blends towards the image mean.
  Generator gc(7);
  Tensor con = ColorJitter(0, 0.9).apply(gray, gc);
  EXPECT_NE(con.to_vector<float>(), gray.to_vector<float>());
  // Hue on a colourless RGB image (r = g = b) changes nothing.
  Tensor grey_rgb = empty({3, 2, 2});
  for (int64_t i = 0; i < 12; ++i) grey_rgb.data<float>()[i] = static_cast<float>(i % 4) / 4.0f;
  Generator gh(8);
  expect_close(ColorJitter(0, 0, 0, 0.5).apply(grey_rgb, gh), grey_rgb, 1e-6, "hue of gray");
  EXPECT_THROW_MSG(ColorJitter(0, 0, 0, 0.6), "hue 0.6");
}

TEST(Transforms, NormalizeValues) {
  Tensor img = ramp(2, 2, 2);
  Generator g(0);
  Tensor n = Normalize({0.1, 0.2}, {0.5, 0.25}).apply(img, g);
  EXPECT_NEAR(at(n, 0, 1, 1), (at(img, 0, 1, 1) - 0.1) / 0.5, 1e-6);
  EXPECT_NEAR(at(n, 1, 0, 1), (at(img, 1, 0, 1) - 0.2) / 0.25, 1e-6);
  Tensor one = Normalize(0.2860, 0.3530).apply(img, g);
  EXPECT_NEAR(at(one, 1, 1, 0), (at(img, 1, 1, 0) - 0.2860) / 0.3530, 1e-6);
  EXPECT_THROW_MSG(Normalize({0.1, 0.2, 0.3}, {1}).apply(img, g), "3 mean values for an image of 2 channels");
  EXPECT_THROW_MSG(Normalize(0, 0), "std 0");
  EXPECT_EQ(Normalize(0.5, 0.25).describe(), "Normalize(mean=0.5, std=0.25)");
}

TEST(Transforms, AugmentationSpecs) {
  auto none = make_augmentation("none");
  ASSERT_NE(none, nullptr);
  EXPECT_EQ(none->describe(), "none");
  Tensor img = ramp(3, 6, 6);
  Generator g(1);
  EXPECT_EQ(none->apply(img, g).to_vector<float>(), img.to_vector<float>());
  auto aug = make_augmentation("crop:4, flip,rotate:10,jitter:0.2");
  auto* compose = dynamic_cast<Compose*>(aug.get());
  ASSERT_NE(compose, nullptr);
  ASSERT_EQ(compose->transforms().size(), 4u);
  EXPECT_EQ(aug->describe(),
            "Compose(RandomCrop(input size, padding=4), RandomHorizontalFlip(p=0.5), "
            "RandomRotation(10 degrees), ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0))");
  Generator a(3), b(3);
  Tensor out = aug->apply(img, a);
  EXPECT_EQ(shape_str(out.shape()), "[3,6,6]");
  EXPECT_EQ(out.to_vector<float>(), aug->apply(img, b).to_vector<float>());
  EXPECT_NE(make_augmentation("normalize:0.286:0.353,jitter:0.1:0.2:0.3:0.05"), nullptr);
  EXPECT_THROW_MSG(make_augmentation("crop:4,spin:3"), "bad item 'spin:3'");
  EXPECT_THROW_MSG(make_augmentation("crop:4,spin:3"), "unknown augmentation 'spin'");
  EXPECT_THROW_MSG(make_augmentation("rotate:ten"), "'ten' is not a number");
  EXPECT_THROW_MSG(make_augmentation("rotate"), "bad item 'rotate'");
  EXPECT_THROW_MSG(make_augmentation("flip:2"), "bad item 'flip:2'");
  EXPECT_THROW_MSG(make_augmentation("crop:1.5"), "whole number");
  EXPECT_THROW_MSG(make_augmentation("flip,,crop"), "bad item ''");
}

}  // namespace
}  // namespace gs::io
