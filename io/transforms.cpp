// Image transforms on one f32 (C, H, W) image: plain loops over contiguous data, no global state,
// so they run on the DataLoader's worker thread. The augmentation spec parser is at the bottom.
#include "io/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace gs::io {

namespace {

struct ImageDims {
  int64_t c, h, w;
};

// Checks the image and returns a contiguous version of it (the image itself when it already is).
Tensor checked_image(const Tensor& image, const char* op, ImageDims& dims) {
  GS_CHECK(image.defined(), "%s: undefined image", op);
  GS_CHECK(image.dim() == 3 && image.dtype() == DType::F32 && image.device().is_cpu(),
           "%s: expects one f32 cpu image (C, H, W), got %s", op, image.describe().c_str());
  dims = {image.size(0), image.size(1), image.size(2)};
  if (image.is_contiguous()) return image;
  return from_vector(image.to_vector<float>(), image.shape());
}

float clamp01(double v) { return static_cast<float>(std::clamp(v, 0.0, 1.0)); }

std::string fmt_double(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Uniform factor in [max(0, 1 - v), 1 + v], as torchvision draws brightness/contrast/saturation.
double draw_factor(double v, Generator& gen) {
  double lo = std::max(0.0, 1.0 - v), hi = 1.0 + v;
  return lo + (hi - lo) * gen.uniform();
}

}  // namespace

// ---------------- Normalize ----------------

Normalize::Normalize(std::vector<double> mean, std::vector<double> std) : mean_(std::move(mean)), std_(std::move(std)) {
  GS_CHECK(!mean_.empty() && !std_.empty(), "Normalize: mean and std need at least one value");
  for (double s : std_) GS_CHECK(s != 0 && std::isfinite(s), "Normalize: std %g must be finite and non-zero", s);
}

Tensor Normalize::apply(const Tensor& image, Generator&) const {
  ImageDims d;
  Tensor in = checked_image(image, "Normalize", d);
  auto per_channel = [&](const std::vector<double>& v, const char* what) {
    GS_CHECK(v.size() == 1 || (int64_t)v.size() == d.c, "Normalize: %zu %s values for an image of %lld channels",
             v.size(), what, (long long)d.c);
  };
  per_channel(mean_, "mean");
  per_channel(std_, "std");
  Tensor out = empty(in.shape());
  const float* src = in.data<float>();
  float* dst = out.data<float>();
  for (int64_t c = 0; c < d.c; ++c) {
    double m = mean_[mean_.size() == 1 ? 0 : c];
    double inv = 1.0 / std_[std_.size() == 1 ? 0 : c];
    for (int64_t i = c * d.h * d.w; i < (c + 1) * d.h * d.w; ++i) dst[i] = static_cast<float>((src[i] - m) * inv);
  }
  return out;
}

std::string Normalize::describe() const {
  auto list = [](const std::vector<double>& v) {
    std::string s;
    for (double x : v) {
      if (!s.empty()) s += ",";
      s += fmt_double(x);
    }
    return v.size() == 1 ? s : "[" + s + "]";
  };
  return "Normalize(mean=" + list(mean_) + ", std=" + list(std_) + ")";
}

// ---------------- RandomCrop ----------------

RandomCrop::RandomCrop(int64_t size_h, int64_t size_w, int64_t padding)
    : size_h_(size_h), size_w_(size_w), padding_(padding) {
  GS_CHECK(size_h >= 0 && size_w >= 0 && padding >= 0, "RandomCrop: size %lldx%lld and padding %lld must be >= 0",
           (long long)size_h, (long long)size_w, (long long)padding);
}

Tensor RandomCrop::crop_at(const Tensor& image, int64_t top, int64_t left) const {
  ImageDims d;
  Tensor in = checked_image(image, "RandomCrop", d);
  int64_t out_h = size_h_ ? size_h_ : d.h, out_w = size_w_ ? size_w_ : d.w;
  int64_t padded_h = d.h + 2 * padding_, padded_w = d.w + 2 * padding_;
  GS_CHECK(out_h <= padded_h && out_w <= padded_w,
           "RandomCrop: crop %lldx%lld is larger than the padded image %lldx%lld", (long long)out_h, (long long)out_w,
           (long long)padded_h, (long long)padded_w);
  GS_CHECK(top >= 0 && left >= 0 && top + out_h <= padded_h && left + out_w <= padded_w,
           "RandomCrop: offset (%lld, %lld) puts the crop outside the padded image", (long long)top, (long long)left);
  Tensor out = empty({d.c, out_h, out_w});
  const float* src = in.data<float>();
  float* dst = out.data<float>();
  for (int64_t c = 0; c < d.c; ++c)
    for (int64_t y = 0; y < out_h; ++y) {
      int64_t sy = y + top - padding_;
      for (int64_t x = 0; x < out_w; ++x) {
        int64_t sx = x + left - padding_;
        bool inside = sy >= 0 && sy < d.h && sx >= 0 && sx < d.w;
        dst[(c * out_h + y) * out_w + x] = inside ? src[(c * d.h + sy) * d.w + sx] : 0.0f;
      }
    }
  return out;
}

Tensor RandomCrop::apply(const Tensor& image, Generator& gen) const {
  GS_CHECK(image.defined() && image.dim() == 3, "RandomCrop: expects one image (C, H, W)");
  int64_t out_h = size_h_ ? size_h_ : image.size(1), out_w = size_w_ ? size_w_ : image.size(2);
  int64_t range_h = image.size(1) + 2 * padding_ - out_h + 1, range_w = image.size(2) + 2 * padding_ - out_w + 1;
  GS_CHECK(range_h > 0 && range_w > 0, "RandomCrop: crop %lldx%lld is larger than the padded image of %s",
           (long long)out_h, (long long)out_w, shape_str(image.shape()).c_str());
  int64_t top = gen.randint(0, range_h);
  int64_t left = gen.randint(0, range_w);
  return crop_at(image, top, left);
}

std::string RandomCrop::describe() const {
  std::string size = size_h_ ? std::to_string(size_h_) + "x" + std::to_string(size_w_) : "input size";
  return "RandomCrop(" + size + ", padding=" + std::to_string(padding_) + ")";
}

// ---------------- flips and rotation ----------------

Tensor flip_horizontal(const Tensor& image) {
  ImageDims d;
  Tensor in = checked_image(image, "flip_horizontal", d);
  Tensor out = empty(in.shape());
  const float* src = in.data<float>();
  float* dst = out.data<float>();
  for (int64_t row = 0; row < d.c * d.h; ++row)
    for (int64_t x = 0; x < d.w; ++x) dst[row * d.w + x] = src[row * d.w + (d.w - 1 - x)];
  return out;
}

RandomHorizontalFlip::RandomHorizontalFlip(double p) : p_(p) {
  GS_CHECK(p >= 0 && p <= 1, "RandomHorizontalFlip: p %g must be in [0, 1]", p);
}

Tensor RandomHorizontalFlip::apply(const Tensor& image, Generator& gen) const {
  if (gen.uniform() < p_) return flip_horizontal(image);
  ImageDims d;
  return checked_image(image, "RandomHorizontalFlip", d);
}

std::string RandomHorizontalFlip::describe() const { return "RandomHorizontalFlip(p=" + fmt_double(p_) + ")"; }

Tensor rotate(const Tensor& image, double degrees) {
  ImageDims d;
  Tensor in = checked_image(image, "rotate", d);
  Tensor out = empty(in.shape());
  const float* src = in.data<float>();
  float* dst = out.data<float>();
  double theta = degrees * M_PI / 180.0;
  double cos_t = std::cos(theta), sin_t = std::sin(theta);
  double cx = (d.w - 1) / 2.0, cy = (d.h - 1) / 2.0;
  // Inverse mapping: each output pixel samples the source point that rotates onto it
  // (y points down, so a counter-clockwise turn on screen uses these signs).
  for (int64_t y = 0; y < d.h; ++y)
    for (int64_t x = 0; x < d.w; ++x) {
      double dx = x - cx, dy = y - cy;
      double sx = cx + cos_t * dx - sin_t * dy;
      double sy = cy + sin_t * dx + cos_t * dy;
      double fx0 = std::floor(sx), fy0 = std::floor(sy);
      double ax = sx - fx0, ay = sy - fy0;
      auto x0 = static_cast<int64_t>(fx0), y0 = static_cast<int64_t>(fy0);
      for (int64_t c = 0; c < d.c; ++c) {
        const float* plane = src + c * d.h * d.w;
        auto at = [&](int64_t yy, int64_t xx) -> double {
          return (yy >= 0 && yy < d.h && xx >= 0 && xx < d.w) ? plane[yy * d.w + xx] : 0.0;
        };
        double v = (1 - ay) * ((1 - ax) * at(y0, x0) + (ax > 0 ? ax * at(y0, x0 + 1) : 0.0)) +
                   (ay > 0 ? ay * ((1 - ax) * at(y0 + 1, x0) + (ax > 0 ? ax * at(y0 + 1, x0 + 1) : 0.0)) : 0.0);
        dst[(c * d.h + y) * d.w + x] = static_cast<float>(v);
      }
    }
  return out;
}

RandomRotation::RandomRotation(double degrees) : degrees_(degrees) {
  GS_CHECK(degrees >= 0 && degrees <= 180, "RandomRotation: degrees %g must be in [0, 180]", degrees);
}

Tensor RandomRotation::apply(const Tensor& image, Generator& gen) const {
  double angle = -degrees_ + 2 * degrees_ * gen.uniform();
  return rotate(image, angle);
}

std::string RandomRotation::describe() const { return "RandomRotation(" + fmt_double(degrees_) + " degrees)"; }

// ---------------- ColorJitter ----------------

ColorJitter::ColorJitter(double brightness, double contrast, double saturation, double hue)
    : brightness_(brightness), contrast_(contrast), saturation_(saturation), hue_(hue) {
  GS_CHECK(brightness >= 0 && contrast >= 0 && saturation >= 0,
           "ColorJitter: brightness %g, contrast %g and "
           "saturation %g must be >= 0",
           brightness, contrast, saturation);
  GS_CHECK(hue >= 0 && hue <= 0.5, "ColorJitter: hue %g must be in [0, 0.5]", hue);
}

namespace {
void rgb_to_hsv(double r, double g, double b, double& h, double& s, double& v) {
  double mx = std::max({r, g, b}), mn = std::min({r, g, b}), delta = mx - mn;
  v = mx;
  s = mx > 0 ? delta / mx : 0;
  if (delta <= 0) {
    h = 0;
    return;
  }
  if (mx == r)
    h = (g - b) / delta;
  else if (mx == g)
    h = 2 + (b - r) / delta;
  else
    h = 4 + (r - g) / delta;
  h /= 6;
  if (h < 0) h += 1;
}

void hsv_to_rgb(double h, double s, double v, double& r, double& g, double& b) {
  double h6 = h * 6;
  int sector = static_cast<int>(std::floor(h6)) % 6;
  double f = h6 - std::floor(h6);
  double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (sector) {
    case 0:
      r = v, g = t, b = p;
      break;
    case 1:
      r = q, g = v, b = p;
      break;
    case 2:
      r = p, g = v, b = t;
      break;
    case 3:
      r = p, g = q, b = v;
      break;
    case 4:
      r = t, g = p, b = v;
      break;
    default:
      r = v, g = p, b = q;
      break;
  }
}
}  // namespace

Tensor ColorJitter::apply(const Tensor& image, Generator& gen) const {
  ImageDims d;
  Tensor in = checked_image(image, "ColorJitter", d);
  Tensor out = from_vector(in.to_vector<float>(), in.shape());
  float* p = out.data<float>();
  const int64_t plane = d.h * d.w;
  const bool rgb = d.c == 3;
  auto gray_at = [&](int64_t i) { return 0.299 * p[i] + 0.587 * p[plane + i] + 0.114 * p[2 * plane + i]; };

  if (brightness_ > 0) {
    double f = draw_factor(brightness_, gen);
    for (int64_t i = 0; i < out.numel(); ++i) p[i] = clamp01(p[i] * f);
  }
  if (contrast_ > 0) {
    double f = draw_factor(contrast_, gen);
    double mean = 0;
    if (rgb) {
      for (int64_t i = 0; i < plane; ++i) mean += gray_at(i);
      mean /= static_cast<double>(plane);
    } else {
      for (int64_t i = 0; i < out.numel(); ++i) mean += p[i];
      mean /= static_cast<double>(std::max<int64_t>(out.numel(), 1));
    }
    for (int64_t i = 0; i < out.numel(); ++i) p[i] = clamp01(f * p[i] + (1 - f) * mean);
  }
  if (saturation_ > 0 && rgb) {
    double f = draw_factor(saturation_, gen);
    for (int64_t i = 0; i < plane; ++i) {
      double g = gray_at(i);
      for (int64_t c = 0; c < 3; ++c) p[c * plane + i] = clamp01(f * p[c * plane + i] + (1 - f) * g);
    }
  }
  if (hue_ > 0 && rgb) {
    double shift = -hue_ + 2 * hue_ * gen.uniform();
    for (int64_t i = 0; i < plane; ++i) {
      double h, s, v, r, g, b;
      rgb_to_hsv(p[i], p[plane + i], p[2 * plane + i], h, s, v);
      h = h + shift - std::floor(h + shift);
      hsv_to_rgb(h, s, v, r, g, b);
      p[i] = clamp01(r), p[plane + i] = clamp01(g), p[2 * plane + i] = clamp01(b);
    }
  }
  return out;
}

std::string ColorJitter::describe() const {
  return "ColorJitter(brightness=" + fmt_double(brightness_) + ", contrast=" + fmt_double(contrast_) +
         ", saturation=" + fmt_double(saturation_) + ", hue=" + fmt_double(hue_) + ")";
}

// ---------------- Compose ----------------

Compose::Compose(std::vector<std::shared_ptr<Transform>> transforms) : transforms_(std::move(transforms)) {
  for (const auto& t : transforms_) GS_CHECK(t != nullptr, "Compose: a transform is null");
}

Tensor Compose::apply(const Tensor& image, Generator& gen) const {
  Tensor x = image;
  for (const auto& t : transforms_) x = t->apply(x, gen);
  return x;
}

std::string Compose::describe() const {
  if (transforms_.empty()) return "none";
  std::string s;
  for (const auto& t : transforms_) s += (s.empty() ? "" : ", ") + t->describe();
  return transforms_.size() == 1 ? s : "Compose(" + s + ")";
}

// ---------------- spec parser ----------------

namespace {
std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t begin = 0;
  while (true) {
    size_t end = s.find(sep, begin);
    parts.push_back(trim(s.substr(begin, end == std::string::npos ? std::string::npos : end - begin)));
    if (end == std::string::npos) return parts;  // always at least one part
    begin = end + 1;
  }
}
}  // namespace

std::shared_ptr<Transform> make_augmentation(const std::string& spec_in) {
  std::string spec = trim(spec_in);
  std::vector<std::shared_ptr<Transform>> list;
  if (spec.empty() || spec == "none") return std::make_shared<Compose>(std::move(list));
  for (const std::string& item : split(spec, ',')) {
    std::vector<std::string> parts = split(item, ':');
    const std::string& name = parts[0];
    std::vector<double> args;
    for (size_t i = 1; i < parts.size(); ++i) {
      char* end = nullptr;
      double v = std::strtod(parts[i].c_str(), &end);
      GS_CHECK(!parts[i].empty() && end && *end == '\0' && std::isfinite(v),
               "make_augmentation: bad item '%s' in '%s': '%s' is not a number", item.c_str(), spec.c_str(),
               parts[i].c_str());
      args.push_back(v);
    }
    auto want = [&](size_t lo, size_t hi, const char* usage) {
      GS_CHECK(args.size() >= lo && args.size() <= hi, "make_augmentation: bad item '%s' in '%s': expected %s",
               item.c_str(), spec.c_str(), usage);
    };
    try {
      if (name == "crop") {
        want(0, 1, "crop[:<padding>]");
        double pad = args.empty() ? 4 : args[0];
        GS_CHECK(pad >= 0 && pad == std::floor(pad), "padding %g must be a whole number >= 0", pad);
        list.push_back(std::make_shared<RandomCrop>(0, 0, static_cast<int64_t>(pad)));
      } else if (name == "flip") {
        want(0, 1, "flip[:<p>]");
        list.push_back(std::make_shared<RandomHorizontalFlip>(args.empty() ? 0.5 : args[0]));
      } else if (name == "rotate") {
        want(1, 1, "rotate:<degrees>");
        list.push_back(std::make_shared<RandomRotation>(args[0]));
      } else if (name == "jitter") {
        GS_CHECK(args.size() == 1 || args.size() == 4,
                 "expected jitter:<v> or jitter:<brightness>:<contrast>:"
                 "<saturation>:<hue>");
        if (args.size() == 1)
          list.push_back(std::make_shared<ColorJitter>(args[0], args[0], args[0], 0.0));
        else
          list.push_back(std::make_shared<ColorJitter>(args[0], args[1], args[2], args[3]));
      } else if (name == "normalize") {
        want(2, 2, "normalize:<mean>:<std>");
        list.push_back(std::make_shared<Normalize>(args[0], args[1]));
      } else {
        GS_CHECK(false,
                 "unknown augmentation '%s'; known: crop[:pad], flip[:p], rotate:<deg>, jitter:<v>, "
                 "normalize:<mean>:<std>, none",
                 name.c_str());
      }
    } catch (const Error& e) {
      std::string what = e.what();
      if (what.find("make_augmentation") != std::string::npos) throw;
      GS_CHECK(false, "make_augmentation: bad item '%s' in '%s': %s", item.c_str(), spec.c_str(), what.c_str());
    }
  }
  return std::make_shared<Compose>(std::move(list));
}

}  // namespace gs::io
