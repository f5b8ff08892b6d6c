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

#include "io/safetensors.h"  // read_file, write_file_atomic
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

namespace {
// The few protobuf reads filter_event_files needs: a varint, and one field of a message.
bool get_varint(const std::string& s, size_t& at, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && at < s.size(); shift += 7) {
    const auto byte = static_cast<unsigned char>(s[at++]);
    v |= uint64_t(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return true;
  }
  return false;
}
// Walks the fields of `message`; for a varint field `value` is its number, for a length-delimited
// one `bytes` its contents. Returns false on a malformed message.
bool for_each_field(const std::string& message,
                    const std::function<void(int field, uint64_t value, const std::string& bytes)>& f) {
  size_t at = 0;
  while (at < message.size()) {
    uint64_t key = 0, v = 0;
    if (!get_varint(message, at, key)) return false;
    const int field = int(key >> 3), wire = int(key & 7);
    if (wire == 0) {
      if (!get_varint(message, at, v)) return false;
      f(field, v, "");
    } else if (wire == 1 || wire == 5) {
      at += wire == 1 ? 8 : 4;
      if (at > message.size()) return false;
    } else if (wire == 2) {
      if (!get_varint(message, at, v) || v > message.size() - at) return false;
      f(field, 0, message.substr(at, size_t(v)));
      at += size_t(v);
    } else {
      return false;
    }
  }
  return true;
}
}  // namespace

void filter_event_files(const std::string& dir, const std::function<bool(const std::string& tag, int64_t step)>& keep) {
  if (!std::filesystem::is_directory(dir)) return;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name.rfind("events.out.tfevents.", 0) != 0) continue;
    std::string data = read_file(entry.path().string()), kept;
    size_t at = 0;
    while (at + 12 <= data.size()) {
      uint64_t length = 0;
      uint32_t length_crc = 0, payload_crc = 0;
      std::memcpy(&length, data.data() + at, 8);
      std::memcpy(&length_crc, data.data() + at + 8, 4);
      if (length_crc != masked_crc32c(data.data() + at, 8) || at + 16 > data.size() || length > data.size() - at - 16)
        break;
      const std::string payload = data.substr(at + 12, size_t(length));
      std::memcpy(&payload_crc, data.data() + at + 12 + length, 4);
      if (payload_crc != masked_crc32c(payload.data(), payload.size())) break;
      int64_t step = 0;
      std::string tag;
      bool summary = false;
      bool ok = for_each_field(payload, [&](int field, uint64_t value, const std::string& bytes) {
        if (field == 2) step = int64_t(value);
        if (field != 5) return;
        summary = true;
        for_each_field(bytes, [&](int f, uint64_t, const std::string& value_bytes) {  // Summary.value
          if (f == 1 && tag.empty())
            for_each_field(value_bytes, [&](int g, uint64_t, const std::string& t) {  // Value.tag
              if (g == 1) tag = t;
            });
        });
      });
      if (!ok) break;
      if (!summary || keep(tag, step)) kept.append(data, at, size_t(16 + length));
      at += size_t(16 + length);
    }
    if (kept.size() != data.size()) write_file_atomic(entry.path().string(), kept);
  }
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
