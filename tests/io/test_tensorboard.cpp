// io/tensorboard: CRC32C against the standard check value, TFRecord framing read back,
// PNG bytes. The tensorboard package reading our files is tests/interop/test_tensorboard.py.
#include "io/tensorboard.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "tensor/error.h"

using namespace gs;

TEST(TensorBoard, Crc32cKnownVectors) {
  EXPECT_EQ(io::crc32c("123456789", 9), 0xE3069283u);  // the CRC-32C check value
  EXPECT_EQ(io::crc32c("", 0), 0u);
  std::string zeros(32, '\0');
  EXPECT_EQ(io::crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720 B.4
  // Incremental use gives the same value as one call.
  EXPECT_EQ(io::crc32c("6789", 4, io::crc32c("12345", 5)), 0xE3069283u);
  uint32_t crc = io::crc32c("123456789", 9);
  EXPECT_EQ(io::masked_crc32c("123456789", 9), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

TEST(TensorBoard, RecordsAreFramedWithMaskedCrcs) {
  std::string dir = (std::filesystem::temp_directory_path() / "gs_test_tb_framing").string();
  std::filesystem::remove_all(dir);
  std::string path;
  {
    io::EventWriter tb(dir);
    tb.add_scalar("a", 1.5, 3);
    path = tb.path();
  }
  EXPECT_NE(path.find("/events.out.tfevents."), std::string::npos);
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t pos = 0;
  int records = 0;
  while (pos < bytes.size()) {
    ASSERT_LE(pos + 12, bytes.size());
    uint64_t length;
    uint32_t length_crc, data_crc;
    std::memcpy(&length, bytes.data() + pos, 8);
    std::memcpy(&length_crc, bytes.data() + pos + 8, 4);
    EXPECT_EQ(length_crc, io::masked_crc32c(bytes.data() + pos, 8));
    ASSERT_LE(pos + 12 + length + 4, bytes.size());
    std::memcpy(&data_crc, bytes.data() + pos + 12 + length, 4);
    EXPECT_EQ(data_crc, io::masked_crc32c(bytes.data() + pos + 12, length));
    if (records == 0) {
      EXPECT_NE(bytes.substr(pos + 12, length).find("brain.Event:2"), std::string::npos);
    }
    pos += 12 + length + 4;
    ++records;
  }
  EXPECT_EQ(records, 2);  // the version event and one scalar
  std::filesystem::remove_all(dir);
}

TEST(TensorBoard, PngSignatureAndSizeChecks) {
  std::vector<uint8_t> pixels(4 * 5, 128);
  std::string png = io::encode_png(pixels, 4, 5, 1);
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_THROW(io::encode_png(pixels, 4, 6, 1), Error);
}

TEST(TensorBoard, FilterKeepsTheRecordsAskedForAndStopsAtATornOne) {
  std::string dir = (std::filesystem::temp_directory_path() / "gs_test_tb_filter").string();
  std::filesystem::remove_all(dir);
  std::string path;
  {
    io::EventWriter tb(dir);
    for (int step = 0; step < 4; ++step) tb.add_scalar("train/loss", step, step);
    tb.add_scalar("epoch/train_loss", 9, 1);
    path = tb.path();
  }
  const auto size_before = std::filesystem::file_size(path);
  {
    std::ofstream torn(path, std::ios::binary | std::ios::app);
    torn << std::string("\x30\x00\x00\x00\x00\x00\x00\x00\x01\x02", 10);  // a record cut short by a crash
  }
  std::vector<std::pair<std::string, int64_t>> seen;
  io::filter_event_files(dir, [&](const std::string& tag, int64_t step) {
    seen.emplace_back(tag, step);
    return tag == "epoch/train_loss" || step < 2;
  });
  const std::vector<std::pair<std::string, int64_t>> all = {
      {"train/loss", 0}, {"train/loss", 1}, {"train/loss", 2}, {"train/loss", 3}, {"epoch/train_loss", 1}};
  EXPECT_EQ(seen, all);  // every summary record, with its tag and step; not the version event or the torn tail
  // Kept: the version event, steps 0 and 1, the epoch record: 2 of the 4 step records (and the torn
  // bytes) are gone. Read again, the filter sees exactly what it kept.
  EXPECT_LT(std::filesystem::file_size(path), size_before);
  seen.clear();
  io::filter_event_files(dir, [&](const std::string& tag, int64_t step) {
    seen.emplace_back(tag, step);
    return true;
  });
  const std::vector<std::pair<std::string, int64_t>> kept = {
      {"train/loss", 0}, {"train/loss", 1}, {"epoch/train_loss", 1}};
  EXPECT_EQ(seen, kept);
  std::filesystem::remove_all(dir);
}
