// IDX (MNIST-format) files: gzip and raw round trips through a hand-written writer, every malformed
// case, the directory loaders and specs, and the real Fashion-MNIST when the Debian package is there.
#include <zlib.h>

#include <cmath>
#include <filesystem>

#include "io/dataset.h"
#include "io_test_util.h"
#include "tests/helpers.h"

namespace gs::io {
namespace {

using test::TempDir;

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// An IDX file: magic (0, 0, type, ndims), big-endian dims, then the bytes.
std::string idx_bytes(const std::vector<uint32_t>& dims, const std::string& data, uint32_t type = 0x08) {
  std::string out = be32((type << 8) | static_cast<uint32_t>(dims.size()));
  for (uint32_t d : dims) out += be32(d);
  return out + data;
}

void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  gzclose(f);
}

// 5 images of 3x4 with pixel (i, k) = 10 * i + k, labels 0 2 1 2 0.
struct SmallIdx {
  std::string images, labels;
  SmallIdx() {
    std::string pixels;
    for (int i = 0; i < 5; ++i)
      for (int k = 0; k < 12; ++k) pixels += static_cast<char>(10 * i + k);
    images = idx_bytes({5, 3, 4}, pixels);
    labels = idx_bytes({5}, std::string("\x00\x02\x01\x02\x00", 5));
  }
};

void expect_small(const Dataset& d) {
  ASSERT_EQ(d.size(), 5);
  EXPECT_EQ(shape_str(d.images.shape()), "[5,1,3,4]");
  EXPECT_EQ(d.images.dtype(), DType::F32);
  EXPECT_EQ(d.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 1, 2, 0}));
  auto px = d.images.to_vector<float>();
  for (int i = 0; i < 5; ++i)
    for (int k = 0; k < 12; ++k) ASSERT_EQ(px[i * 12 + k], static_cast<float>(10 * i + k) / 255.0f);
}

TEST(Idx, RawAndGzipRoundTrip) {
  TempDir dir;
  SmallIdx s;
  test::write_bytes(dir.file("img"), s.images);
  test::write_bytes(dir.file("lbl"), s.labels);
  write_gzip(dir.file("img.gz"), s.images);
  write_gzip(dir.file("lbl.gz"), s.labels);
  Dataset raw = load_idx(dir.file("img"), dir.file("lbl"));
  expect_small(raw);
  EXPECT_EQ(raw.num_classes, 3);
  EXPECT_EQ(raw.class_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(raw.class_counts(), (std::vector<int64_t>{2, 1, 2}));
  expect_small(load_idx(dir.file("img.gz"), dir.file("lbl")));  // mixed: detected per file
  expect_small(load_idx(dir.file("img.gz"), dir.file("lbl.gz")));
  EXPECT_EQ(read_maybe_gzip(dir.file("img.gz")), s.images);
}

TEST(Idx, ConcatenatedGzipMembers) {
  TempDir dir;
  SmallIdx s;
  write_gzip(dir.file("a.gz"), s.images.substr(0, 10));
  write_gzip(dir.file("b.gz"), s.images.substr(10));
  test::write_bytes(dir.file("img.gz"), test::read_bytes(dir.file("a.gz")) + test::read_bytes(dir.file("b.gz")));
  EXPECT_EQ(read_maybe_gzip(dir.file("img.gz")), s.images);
}

TEST(Idx, MalformedFilesNameFileAndProblem) {
  TempDir dir;
  SmallIdx s;
  std::string labels = dir.file("labels");
  test::write_bytes(labels, s.labels);
  auto expect_error = [&](const std::string& name, const std::string& bytes, const std::string& problem) {
    std::string path = dir.file(name);
    test::write_bytes(path, bytes);
    EXPECT_THROW_MSG(load_idx(path, labels), path);
    EXPECT_THROW_MSG(load_idx(path, labels), problem);
  };
  expect_error("empty", "", "truncated");
  expect_error("labels_as_images", s.labels, "bad magic 0x00000801");
  expect_error("text", "hello world, not idx", "not an IDX file");
  expect_error("floats", idx_bytes({5, 3, 4}, std::string(5 * 12 * 4, '\0'), 0x0D), "element type 0x0d");
  expect_error("short_header", s.images.substr(0, 10), "truncated inside the header");
  expect_error("short_data", s.images.substr(0, s.images.size() - 1), "truncated: dims [5,3,4] need 60 data bytes");
  expect_error("long_data", s.images + "xx", "2 bytes after the data");
  // 600 x 2^31 x 2^31 bytes wrapped to 0 in 64 bits and passed the size check: a segfault later.
  expect_error("wrapping_dims", idx_bytes({600, 1u << 31, 1u << 31}, ""),
               "dims [600,2147483648,2147483648] hold more than 2^64 bytes");

  std::string images = dir.file("images");
  test::write_bytes(images, s.images);
  std::string four = dir.file("four_labels");
  test::write_bytes(four, idx_bytes({4}, std::string(4, '\0')));
  EXPECT_THROW_MSG(load_idx(images, four), "count mismatch");
  EXPECT_THROW_MSG(load_idx(images, four), "holds 5 images but " + four + " holds 4 labels");

  write_gzip(dir.file("full.gz"), s.images);
  std::string gz = test::read_bytes(dir.file("full.gz"));
  expect_error("cut.gz", gz.substr(0, gz.size() - 12), "truncated");
  std::string corrupt = gz;
  for (size_t i = 12; i < 24 && i < corrupt.size(); ++i) corrupt[i] = static_cast<char>(0xff);
  expect_error("corrupt.gz", corrupt, "corrupt gzip data");
  EXPECT_THROW_MSG(load_idx(dir.file("absent"), labels), "absent");
}

TEST(Idx, MnistFormatDirectoryAndSpecs) {
  TempDir dir;
  SmallIdx s;
  write_gzip(dir.file("train-images-idx3-ubyte.gz"), s.images);
  write_gzip(dir.file("train-labels-idx1-ubyte.gz"), s.labels);
  test::write_bytes(dir.file("t10k-images-idx3-ubyte"), s.images);  // raw, no .gz
  test::write_bytes(dir.file("t10k-labels-idx1-ubyte"), s.labels);
  Dataset train = load_mnist_format(dir.path(), true);
  expect_small(train);
  EXPECT_EQ(train.num_classes, 10);
  EXPECT_EQ(train.class_names.size(), 10u);
  EXPECT_NE(train.description.find("train (5 images, " + dir.path()), std::string::npos) << train.description;
  expect_small(load_mnist_format(dir.path(), false));
  expect_small(load_dataset("mnist:" + dir.path(), true));
  expect_small(load_dataset("idx:" + dir.path(), false));
  expect_small(
      load_dataset("idx:" + dir.file("t10k-images-idx3-ubyte") + "," + dir.file("t10k-labels-idx1-ubyte"), true));
  Dataset fashion = load_fashion_mnist(dir.path(), true);
  EXPECT_EQ(fashion.class_names[0], "T-shirt/top");
  EXPECT_EQ(fashion.class_names[9], "Ankle boot");

  TempDir empty_dir;
  EXPECT_THROW_MSG(load_mnist_format(empty_dir.path(), true), "train-images-idx3-ubyte.gz");
  EXPECT_THROW_MSG(load_mnist_format(empty_dir.path(), true), empty_dir.path());
  EXPECT_THROW_MSG(load_fashion_mnist(dir.file("nowhere"), true), "dataset-fashion-mnist");
  EXPECT_THROW_MSG(load_dataset("mnist", true), "needs <dir>");
  EXPECT_THROW_MSG(load_dataset("imagenet:/x", true), "unknown dataset 'imagenet:/x'");
}

TEST(Idx, RealFashionMnist) {
  if (!std::filesystem::exists(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "\n\n*** Fashion-MNIST NOT FOUND in " << kFashionMnistDir
                 << ": install the Debian package dataset-fashion-mnist. The real-data check did NOT run. ***\n";
  }
  Dataset train = load_dataset("fashion-mnist", true);
  Dataset test = load_fashion_mnist(kFashionMnistDir, false);
  EXPECT_EQ(shape_str(train.images.shape()), "[60000,1,28,28]");
  EXPECT_EQ(shape_str(test.images.shape()), "[10000,1,28,28]");
  EXPECT_EQ(train.class_counts(), std::vector<int64_t>(10, 6000));
  EXPECT_EQ(test.class_counts(), std::vector<int64_t>(10, 1000));
  EXPECT_EQ(train.description, "fashion-mnist train (60000 images, /usr/share/datasets/fashion-mnist)");
  // The normalisation constants of DESIGN.md are this data's statistics.
  const float* p = train.images.data<float>();
  double sum = 0, sum_sq = 0;
  int64_t n = train.images.numel();
  float lo = 1, hi = 0;
  for (int64_t i = 0; i < n; ++i) {
    sum += p[i], sum_sq += double(p[i]) * p[i];
    lo = std::min(lo, p[i]), hi = std::max(hi, p[i]);
  }
  double mean = sum / n, stddev = std::sqrt(sum_sq / n - mean * mean);
  EXPECT_NEAR(mean, kFashionMnistMean, 5e-4);
  EXPECT_NEAR(stddev, kFashionMnistStd, 5e-4);
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 1.0f);
}

}  // namespace
}  // namespace gs::io
