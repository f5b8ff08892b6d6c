// train --exclude-list: the listed training indices (file order) and only those are dropped, in every
// accepted file form, and bad files fail naming the file and line. The data is a tiny IDX set whose
// first pixel encodes each image's index, so the survivors can be identified.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <set>

#include "tensor/error.h"
#include "train/exclude_list.h"

using namespace gs;
namespace fs = std::filesystem;

namespace {
constexpr int kImages = 20;

void put_u32(std::ofstream& out, uint32_t v) {
  unsigned char b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
  out.write(reinterpret_cast<char*>(b), 4);
}

// 20 images of 2x2; image i has first pixel 10*i, label i % 3.
std::string tiny_idx_spec(const fs::path& dir) {
  fs::create_directories(dir);
  std::ofstream images(dir / "images", std::ios::binary), labels(dir / "labels", std::ios::binary);
  put_u32(images, 0x803), put_u32(images, kImages), put_u32(images, 2), put_u32(images, 2);
  put_u32(labels, 0x801), put_u32(labels, kImages);
  for (int i = 0; i < kImages; ++i) {
    unsigned char px[4] = {uint8_t(10 * i), 0, 0, 0}, label = uint8_t(i % 3);
    images.write(reinterpret_cast<char*>(px), 4);
    labels.write(reinterpret_cast<char*>(&label), 1);
  }
  return "idx:" + (dir / "images").string() + "," + (dir / "labels").string();
}

fs::path temp_dir() {
  fs::path p = fs::temp_directory_path() / ("gs_test_exclude_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string write(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
  return path.string();
}

// The original indices of the images left, read back from their first pixel.
std::vector<int64_t> surviving_indices(const io::Dataset& d) {
  std::vector<int64_t> out;
  const float* px = d.images.data<float>();
  for (int64_t i = 0; i < d.size(); ++i) out.push_back(std::lround(px[i * 4] * 255.0f / 10.0f));
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(ExcludeList, DropsExactlyTheListedIndicesInFileOrder) {
  fs::path dir = temp_dir();
  train::TrainConfig c;
  c.data = tiny_idx_spec(dir / "data");
  c.exclude_list = write(dir / "plain.txt", "# outliers\n3\n\n17\n0\n3\n");
  io::Dataset d = train::load_training_set(c);
  std::set<int64_t> excluded{0, 3, 17};
  std::vector<int64_t> expected;
  for (int64_t i = 0; i < kImages; ++i) if (!excluded.count(i)) expected.push_back(i);
  EXPECT_EQ(surviving_indices(d), expected);
  // Labels travel with their images.
  auto labels = d.labels.to_vector<int64_t>();
  for (size_t k = 0; k < expected.size(); ++k) EXPECT_EQ(labels[k], expected[k] % 3);
  EXPECT_EQ(d.num_classes, 3);

  // A CSV with a header and the index first (as inspect outliers writes) gives the same set.
  c.exclude_list = write(dir / "outliers.csv", "index,label,score\n17,2,0.9\n0,0,0.8\n3,0,0.5\n");
  EXPECT_EQ(surviving_indices(train::load_training_set(c)), expected);

  // No list: everything, in order.
  c.exclude_list.clear();
  EXPECT_EQ(train::load_training_set(c).size(), kImages);
}

TEST(ExcludeList, ReadSortsAndDeduplicates) {
  fs::path dir = temp_dir();
  auto idx = train::read_exclude_list(write(dir / "a.txt", "5\n 2 \n5\n19\n"), kImages);
  EXPECT_EQ(idx, (std::vector<int64_t>{2, 5, 19}));
}

TEST(ExcludeList, BadFilesNameFileAndLine) {
  fs::path dir = temp_dir();
  std::string bad = write(dir / "bad.txt", "1\n2\nabc\n");
  std::string msg = error_of([&] { train::read_exclude_list(bad, kImages); });
  EXPECT_NE(msg.find("bad.txt line 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'abc'"), std::string::npos) << msg;

  std::string negative = write(dir / "neg.txt", "-1\n");
  msg = error_of([&] { train::read_exclude_list(negative, kImages); });
  EXPECT_NE(msg.find("neg.txt line 1"), std::string::npos) << msg;

  std::string range = write(dir / "range.txt", "# header comment\n4\n20\n");
  msg = error_of([&] { train::read_exclude_list(range, kImages); });
  EXPECT_NE(msg.find("range.txt line 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("index 20 is out of range"), std::string::npos) << msg;
  EXPECT_NE(msg.find("0..19"), std::string::npos) << msg;

  msg = error_of([&] { train::read_exclude_list((dir / "missing.txt").string(), kImages); });
  EXPECT_NE(msg.find("missing.txt"), std::string::npos) << msg;

  // A header is only accepted as the first line, not in the middle.
  std::string late_header = write(dir / "late.txt", "1\nindex\n");
  msg = error_of([&] { train::read_exclude_list(late_header, kImages); });
  EXPECT_NE(msg.find("late.txt line 2"), std::string::npos) << msg;

  train::TrainConfig c;
  c.data = tiny_idx_spec(dir / "data");
  std::string all;
  for (int i = 0; i < kImages; ++i) all += std::to_string(i) + "\n";
  c.exclude_list = write(dir / "all.txt", all);
  msg = error_of([&] { train::load_training_set(c); });
  EXPECT_NE(msg.find("excludes all 20"), std::string::npos) << msg;
}

TEST(ExcludeList, ConfigRoundTrip) {
  train::TrainConfig c;
  c.exclude_list = "runs/x/outliers/outliers.csv";
  EXPECT_EQ(train::TrainConfig::from_json(c.to_json(), "test").exclude_list, c.exclude_list);
}
