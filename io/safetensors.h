// safetensors checkpoints and atomic file writes.
//
//   gs::io::save_safetensors("ckpt.safetensors", {{"0.weight", w}, {"0.bias", b}}, {{"epoch", "3"}});
//   auto file = gs::io::load_safetensors("ckpt.safetensors");   // file.tensors in file order, file.metadata
//   gs::io::write_file_atomic("config.json", text);             // temp file + fsync + rename
//
// Format (https://github.com/huggingface/safetensors): 8-byte little-endian header length, a JSON
// header {"__metadata__":{str:str}, "name":{"dtype","shape","data_offsets":[begin,end]}} padded with
// spaces to a multiple of 8, then the raw little-endian data of every tensor, back to back.
#pragma once
#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace gs::io {

// ---- atomic writes ----
// Writes go to a temp file in the target's directory; commit() flushes, fsyncs and renames it over
// the target. If commit() is never reached (an exception, a failed write) the destructor removes the
// temp file and the old target stays as it was.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t nbytes);
  void write(const std::string& text) { write(text.data(), text.size()); }
  void commit();
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  void discard() noexcept;
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

void write_file_atomic(const std::string& path, const std::string& contents);
// Whole file into memory; errors name the file and the system's reason.
std::string read_file(const std::string& path);

// ---- safetensors ----
// Tensors are written in the given order; they must be defined, on the cpu, f32/f64/i64, with
// unique non-empty names. Non-contiguous tensors are written in logical order.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // header order
  std::map<std::string, std::string> metadata;
  // The tensor called `name`; throws naming the name when absent.
  const Tensor& at(const std::string& name) const;
  bool contains(const std::string& name) const;
};

struct SafetensorsLoadOptions {
  // Other dtypes are an error by default. With convert_dtypes, integer and BOOL tensors (U8, I8,
  // I16, I32, U16, U32, U64) load as i64, and F16/BF16 as f32.
  bool convert_dtypes = false;
};

// Errors name the file and what is wrong: truncated file, bad header JSON, offsets out of range or
// overlapping, an unsupported dtype, a shape that does not match its byte range.
SafetensorsFile load_safetensors(const std::string& path, SafetensorsLoadOptions options = {});

// The serialised header (length prefix excluded) for these tensors; exposed for tests and tools.
std::string safetensors_header(const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::map<std::string, std::string>& metadata);

}  // namespace gs::io
