// The event-file writer: CRC32C, TFRecord framing, and just enough protobuf wire format for
// Event{wall_time=1, step=2, file_version=3, summary=5}, Summary{value=1}, Summary.Value{tag=1,
// simple_value=2, image=4, histo=5}, Summary.Image{height=1, width=2, colorspace=3,
// encoded_image_string=4} and HistogramProto{min..sum_squares=1..5, bucket_limit=6, bucket=7}.
#include "io/tensorboard.h"

#include "io/protobuf_wire.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include <stb/stb_image_write.h>

#include "tensor/error.h"

namespace gs::io {

namespace {

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

using namespace pb;  // the wire format: io/protobuf_wire.h
void put_packed_doubles(std::string& out, int field, const std::vector<double>& values) {
  std::string body;
  for (double v : values) {
    char b[8];
    std::memcpy(b, &v, 8);
    body.append(b, 8);
  }
  put_bytes(out, field, body);
}

std::string summary_value(const std::string& tag) {
  std::string v;
  put_bytes(v, 1, tag);
  return v;
}

double wall_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t crc32c(const void* data, size_t size, uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
#if defined(__SSE4_2__) && defined(__x86_64__)
  // SSE4.2's crc32 instruction computes exactly CRC-32C, 8 bytes at a time (histograms make the
  // probe records kilobytes long); the table below stays the portable path and the bytes' tail.
  uint64_t wide = crc;
  for (; size >= 8; size -= 8, p += 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    wide = __builtin_ia32_crc32di(wide, word);
  }
  crc = uint32_t(wide);
#endif
  const auto& table = crc_table();
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string encode_png(const std::vector<uint8_t>& pixels, int height, int width, int channels) {
  GS_CHECK(height > 0 && width > 0 && (channels == 1 || channels == 3 || channels == 4) &&
               pixels.size() == size_t(height) * width * channels,
           "encode_png: %zu bytes for a %dx%dx%d image", pixels.size(), height, width, channels);
  std::string png;
  auto sink = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), size_t(size));
  };
  int ok = stbi_write_png_to_func(sink, &png, width, height, channels, pixels.data(), width * channels);
  GS_CHECK(ok, "encode_png: stb_image_write failed for a %dx%dx%d image", height, width, channels);
  return png;
}

EventWriter::EventWriter(const std::string& dir, const std::string& suffix) {
  std::filesystem::create_directories(dir);
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  path_ = format("%s/events.out.tfevents.%lld.%s%s", dir.c_str(), (long long)wall_time(), host, suffix.c_str());
  file_ = std::fopen(path_.c_str(), "wb");
  GS_CHECK(file_ != nullptr, "tensorboard: cannot create '%s'", path_.c_str());
  std::string event;
  put_double(event, 1, wall_time());
  put_bytes(event, 3, "brain.Event:2");
  write_record(event);
  flush();
}

EventWriter::~EventWriter() {
  if (file_) std::fclose(file_);
}

void EventWriter::write_record(const std::string& payload) {
  uint64_t length = payload.size();
  char header[12];
  std::memcpy(header, &length, 8);
  uint32_t length_crc = masked_crc32c(header, 8);
  std::memcpy(header + 8, &length_crc, 4);
  uint32_t payload_crc = masked_crc32c(payload.data(), payload.size());
  bool ok = std::fwrite(header, 1, 12, file_) == 12 &&
            std::fwrite(payload.data(), 1, payload.size(), file_) == payload.size() &&
            std::fwrite(&payload_crc, 1, 4, file_) == 4;
  GS_CHECK(ok, "tensorboard: write to '%s' failed (disk full?)", path_.c_str());
}

void EventWriter::write_event(const std::string& value, int64_t step) {
  std::string summary;
  put_bytes(summary, 1, value);
  std::string event;
  put_double(event, 1, wall_time());
  put_int(event, 2, step);
  put_bytes(event, 5, summary);
  write_record(event);
}

void EventWriter::add_session_start(int64_t step) {
  std::string session_log;
  put_int(session_log, 1, 1);  // SessionLog.status = START
  std::string event;
  put_double(event, 1, wall_time());
  put_int(event, 2, step);
  put_bytes(event, 7, session_log);  // Event.session_log
  write_record(event);
}

void EventWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  std::string v = summary_value(tag);
  put_float(v, 2, float(value));
  write_event(v, step);
}

void EventWriter::add_histogram(const std::string& tag, const HistogramSummary& h, int64_t step) {
  GS_CHECK(h.bucket_limit.size() == h.bucket.size(), "tensorboard: histogram '%s' has %zu limits but %zu counts",
           tag.c_str(), h.bucket_limit.size(), h.bucket.size());
  std::string histo;
  put_double(histo, 1, h.min);
  put_double(histo, 2, h.max);
  put_double(histo, 3, h.num);
  put_double(histo, 4, h.sum);
  put_double(histo, 5, h.sum_squares);
  // As TensorFlow writes histograms: each run of empty buckets becomes one bucket (ending where
  // the run ends), so TensorBoard draws the occupied range instead of every fixed edge out to
  // +-2^16. Counts and the edges of occupied buckets are unchanged.
  std::vector<double> limits, counts;
  for (size_t i = 0; i < h.bucket.size();) {
    double limit = h.bucket_limit[i], count = h.bucket[i];
    ++i;
    if (count <= 0) {
      while (i < h.bucket.size() && h.bucket[i] <= 0) limit = h.bucket_limit[i++];
    }
    if (std::isinf(limit)) limit = limit > 0 ? std::numeric_limits<double>::max() : -std::numeric_limits<double>::max();
    limits.push_back(limit);
    counts.push_back(count);
  }
  put_packed_doubles(histo, 6, limits);
  put_packed_doubles(histo, 7, counts);
  std::string v = summary_value(tag);
  put_bytes(v, 5, histo);
  write_event(v, step);
}

void EventWriter::add_image(const std::string& tag, const std::vector<uint8_t>& pixels, int height, int width,
                            int channels, int64_t step) {
  std::string image;
  put_int(image, 1, height);
  put_int(image, 2, width);
  put_int(image, 3, channels);
  put_bytes(image, 4, encode_png(pixels, height, width, channels));
  std::string v = summary_value(tag);
  put_bytes(v, 4, image);
  write_event(v, step);
}

void EventWriter::flush() {
  if (file_) std::fflush(file_);
}

}  // namespace gs::io
