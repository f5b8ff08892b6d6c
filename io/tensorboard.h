// TensorBoard event files: events.out.tfevents.<time>.<host> written as TFRecords (length,
// masked CRC32C of the length, payload, masked CRC32C of the payload) holding hand-encoded
// Event/Summary protobuf messages: scalars, histograms and PNG images. The `tensorboard`
// package reads them (tests/interop/test_tensorboard.py checks every tag, step and value).
//
//   io::EventWriter tb("runs/x");                        // creates the file, writes the version event
//   tb.add_scalar("train/loss", 0.7, step);
//   tb.add_histogram("grad/0.weight", edges, counts, {min, max, num, sum, sum_squares}, step);
//   tb.add_image("batch", rgb_pixels, height, width, 3, step);   // PNG-encoded here
//   tb.flush();                                          // also on destruction
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace gs::io {

uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);  // Castagnoli, reflected
uint32_t masked_crc32c(const void* data, size_t size);              // TFRecord's rotate-and-add mask

struct HistogramSummary {
  double min = 0, max = 0, num = 0, sum = 0, sum_squares = 0;
  std::vector<double> bucket_limit;  // right edge of each bucket; the last may be +inf
  std::vector<double> bucket;        // count in each bucket
};

// Encodes pixels (row-major, `channels` 1, 3 or 4 interleaved, 8 bit) as PNG bytes.
std::string encode_png(const std::vector<uint8_t>& pixels, int height, int width, int channels);

// Rewrites each events.out.tfevents.* file in `dir` with only the summary records that
// keep(tag, step) accepts (others, such as the version event, stay); a record cut short or failing
// its CRC ends what is kept. Each file is replaced atomically. A resumed run drops with it what a
// run killed past its checkpoint had logged.
void filter_event_files(const std::string& dir, const std::function<bool(const std::string& tag, int64_t step)>& keep);

class EventWriter {
 public:
  // Creates `dir` if needed and a new events.out.tfevents.* file in it; `suffix` is appended
  // to the file name (lets two writers share a directory).
  explicit EventWriter(const std::string& dir, const std::string& suffix = "");
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  void add_scalar(const std::string& tag, double value, int64_t step);
  void add_histogram(const std::string& tag, const HistogramSummary& histogram, int64_t step);
  void add_image(const std::string& tag, const std::vector<uint8_t>& pixels, int height, int width, int channels,
                 int64_t step);
  // A SessionLog START at `step`: TensorBoard drops the events of every earlier file in the
  // directory from this step on (a resumed run: what the killed run logged after its checkpoint).
  void add_session_start(int64_t step);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_event(const std::string& summary_value, int64_t step);
  void write_record(const std::string& payload);

  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace gs::io
