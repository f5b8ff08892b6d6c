// Image-folder datasets: one sub-folder per class, images decoded by stb_image and resized by
// stb_image_resize to a common size. Loaded into memory as f32 (N, C, H, W) in [0, 1].
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "io/dataset.h"

namespace gs::io {

namespace fs = std::filesystem;

namespace {
bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* e : {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".ppm", ".pgm"})
    if (ext == e) return true;
  return false;
}

std::vector<fs::path> sorted_entries(const fs::path& dir, bool directories) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().starts_with(".")) continue;  // hidden files, .DS_Store
    if (directories ? entry.is_directory() : (entry.is_regular_file() && is_image_file(entry.path())))
      out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

std::pair<int64_t, int64_t> image_folder_first_size(const std::string& dir) {
  GS_CHECK(fs::is_directory(dir), "load_image_folder: %s is not a directory", dir.c_str());
  for (const auto& class_dir : sorted_entries(dir, true)) {
    for (const auto& f : sorted_entries(class_dir, false)) {
      int w = 0, h = 0, channels = 0;
      GS_CHECK(stbi_info(f.string().c_str(), &w, &h, &channels), "load_image_folder: cannot read image %s (%s)",
               f.string().c_str(), stbi_failure_reason());
      return {h, w};
    }
  }
  GS_CHECK(false, "load_image_folder: %s has no class folder with PNG/JPEG/BMP images", dir.c_str());
  return {};
}

std::vector<std::string> image_folder_classes(const std::string& dir) {
  GS_CHECK(fs::is_directory(dir), "load_image_folder: %s is not a directory", dir.c_str());
  std::vector<std::string> names;
  for (const auto& p : sorted_entries(dir, true)) names.push_back(p.filename().string());
  return names;
}

Dataset load_image_folder(const std::string& dir, int64_t height, int64_t width, int64_t channels,
                          const std::vector<std::string>& classes) {
  GS_CHECK(fs::is_directory(dir), "load_image_folder: %s is not a directory", dir.c_str());
  GS_CHECK(channels == 1 || channels == 3 || channels == 4, "load_image_folder: channels must be 1, 3 or 4, got %lld",
           (long long)channels);
  GS_CHECK(height >= 0 && width >= 0 && (height == 0) == (width == 0),
           "load_image_folder: size %lldx%lld: give both height and width, or 0x0 for the first image's size",
           (long long)height, (long long)width);
  std::vector<fs::path> class_dirs = sorted_entries(dir, true);
  GS_CHECK(!class_dirs.empty(), "load_image_folder: %s has no class sub-folders (expected <dir>/<class>/<image>)",
           dir.c_str());
  std::vector<std::pair<fs::path, int64_t>> files;
  Dataset d;
  d.class_names = classes;
  for (size_t c = 0; c < class_dirs.size(); ++c) {
    const std::string name = class_dirs[c].filename().string();
    int64_t label = static_cast<int64_t>(c);
    if (classes.empty()) {
      d.class_names.push_back(name);
    } else {
      auto it = std::find(classes.begin(), classes.end(), name);
      GS_CHECK(it != classes.end(), "load_image_folder: class folder %s is not one of the training classes",
               class_dirs[c].string().c_str());
      label = it - classes.begin();
    }
    const std::vector<fs::path> images = sorted_entries(class_dirs[c], false);
    // As torchvision's ImageFolder: a class without images would be a class the model is built
    // for and never sees.
    GS_CHECK(!images.empty(), "load_image_folder: class folder %s has no PNG/JPEG/BMP images",
             class_dirs[c].string().c_str());
    for (const auto& f : images) files.push_back({f, label});
  }
  GS_CHECK(!files.empty(), "load_image_folder: %s has class folders but no PNG/JPEG/BMP images", dir.c_str());

  const int c_out = static_cast<int>(channels);
  int64_t n = static_cast<int64_t>(files.size());
  std::vector<unsigned char> resized;
  for (int64_t i = 0; i < n; ++i) {
    const std::string path = files[static_cast<size_t>(i)].first.string();
    int w = 0, h = 0, file_channels = 0;
    std::unique_ptr<unsigned char, void (*)(void*)> pixels(stbi_load(path.c_str(), &w, &h, &file_channels, c_out),
                                                           stbi_image_free);
    GS_CHECK(pixels != nullptr, "load_image_folder: cannot read image %s (%s)", path.c_str(), stbi_failure_reason());
    if (i == 0) {
      if (height == 0) height = h, width = w;
      d.images = empty({n, channels, height, width}, {DType::F32});
      d.labels = empty({n}, {DType::I64});
      resized.resize(static_cast<size_t>(height * width * channels));
    }
    const unsigned char* src = pixels.get();
    if (h != height || w != width) {
      int ok = stbir_resize_uint8(pixels.get(), w, h, 0, resized.data(), static_cast<int>(width),
                                  static_cast<int>(height), 0, c_out);
      GS_CHECK(ok, "load_image_folder: resizing %s from %dx%d to %lldx%lld failed", path.c_str(), h, w,
               (long long)height, (long long)width);
      src = resized.data();
    }
    // stb gives interleaved HWC; the tensor is CHW.
    float* dst = d.images.data<float>() + i * channels * height * width;
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x)
        for (int64_t ch = 0; ch < channels; ++ch)
          dst[(ch * height + y) * width + x] = static_cast<float>(src[(y * width + x) * channels + ch]) / 255.0f;
    d.labels.data<int64_t>()[i] = files[static_cast<size_t>(i)].second;
    d.source_heights.push_back(h);
    d.source_widths.push_back(w);
  }
  d.num_classes = static_cast<int64_t>(d.class_names.size());
  d.description = "image folder (" + std::to_string(n) + " images, " + std::to_string(d.num_classes) + " classes, " +
                  std::to_string(height) + "x" + std::to_string(width) + ", " + dir + ")";
  return d;
}

}  // namespace gs::io
