// Hand-encoded protobuf for the HParams plugin (field numbers from tensorboard 2.x's api.proto and
// plugin_data.proto), written as TFRecords: length, masked CRC32C of it, payload, masked CRC32C.
#include "train/hparams.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/tensorboard.h"
#include "tensor/error.h"

namespace gs::train {

namespace {
using nlohmann::json;

// ---- protobuf wire format ----
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += char((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += char(v);
}
void key(std::string& out, int field, int wire) { varint(out, uint64_t(field) << 3 | uint64_t(wire)); }
void bytes_field(std::string& out, int field, const std::string& data) {
  key(out, field, 2);
  varint(out, data.size());
  out += data;
}
void double_field(std::string& out, int field, double v) {
  key(out, field, 1);
  char b[8];
  std::memcpy(b, &v, 8);  // little-endian hosts only (x86-64, aarch64)
  out.append(b, 8);
}
void float_field(std::string& out, int field, float v) {
  key(out, field, 5);
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}
void varint_field(std::string& out, int field, uint64_t v) {
  key(out, field, 0);
  varint(out, v);
}

// google.protobuf.Value
std::string pb_value(const json& v) {
  std::string out;
  if (v.is_number())
    double_field(out, 2, v.get<double>());
  else if (v.is_boolean())
    varint_field(out, 4, v.get<bool>() ? 1 : 0);
  else if (v.is_string())
    bytes_field(out, 3, v.get<std::string>());
  else
    bytes_field(out, 3, v.dump());
  return out;
}

double now_secs() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

// A Summary holding one hparams plugin value (no tensor: the plugin reads the metadata's content).
std::string hparams_summary(const std::string& tag, const std::string& plugin_data) {
  std::string plugin;
  bytes_field(plugin, 1, "hparams");
  bytes_field(plugin, 2, plugin_data);
  std::string metadata;
  bytes_field(metadata, 1, plugin);
  std::string value;
  bytes_field(value, 1, tag);
  bytes_field(value, 9, metadata);
  std::string summary;
  bytes_field(summary, 1, value);
  return summary;
}
std::string scalar_summary(const std::string& tag, double v) {
  std::string value;
  bytes_field(value, 1, tag);
  float_field(value, 2, float(v));
  std::string summary;
  bytes_field(summary, 1, value);
  return summary;
}

class Records {
 public:
  explicit Records(const std::string& dir) {
    std::filesystem::create_directories(dir);
    path_ = format("%s/events.out.tfevents.%lld.hparams", dir.c_str(), (long long)now_secs());
    out_.open(path_, std::ios::binary | std::ios::trunc);
    GS_CHECK(out_.good(), "hparams: cannot write '%s'", path_.c_str());
    std::string event;
    double_field(event, 1, now_secs());
    bytes_field(event, 3, "brain.Event:2");
    record(event);
  }
  void summary(const std::string& summary, int64_t step) {
    std::string event;
    double_field(event, 1, now_secs());
    varint_field(event, 2, uint64_t(step));
    bytes_field(event, 5, summary);
    record(event);
  }

 private:
  void record(const std::string& payload) {
    uint64_t len = payload.size();
    char header[8];
    std::memcpy(header, &len, 8);
    uint32_t len_crc = io::masked_crc32c(header, 8), data_crc = io::masked_crc32c(payload.data(), payload.size());
    out_.write(header, 8);
    out_.write(reinterpret_cast<const char*>(&len_crc), 4);
    out_.write(payload.data(), std::streamsize(payload.size()));
    out_.write(reinterpret_cast<const char*>(&data_crc), 4);
    GS_CHECK(out_.good(), "hparams: write to '%s' failed", path_.c_str());
  }
  std::string path_;
  std::ofstream out_;
};
}  // namespace

void write_hparams_experiment(const std::string& dir, const SearchSpace& space, const std::string& metric) {
  std::string experiment;
  for (const auto& p : space.params) {
    std::string info;
    bytes_field(info, 1, p.name);
    if (p.categorical()) {
      bool numbers = true, strings = true;
      for (const auto& v : p.values) numbers &= v.is_number(), strings &= v.is_string();
      varint_field(info, 4, numbers ? 3 : strings ? 1 : 0);  // DATA_TYPE_FLOAT64 / STRING
      std::string list;
      for (const auto& v : p.values) bytes_field(list, 1, pb_value(v));
      bytes_field(info, 5, list);
    } else {
      varint_field(info, 4, 3);
      std::string interval;
      double_field(interval, 1, p.low);
      double_field(interval, 2, p.high);
      bytes_field(info, 6, interval);
    }
    bytes_field(experiment, 4, info);
  }
  std::string name, metric_info;
  bytes_field(name, 2, metric);
  bytes_field(metric_info, 1, name);
  bytes_field(experiment, 5, metric_info);
  double_field(experiment, 3, now_secs());
  std::string data;
  bytes_field(data, 2, experiment);
  Records(dir).summary(hparams_summary("_hparams_/experiment", data), 0);
}

void write_hparams_session(const std::string& trial_dir, const SearchSpace& space, const json& params,
                           const std::string& metric, const std::vector<double>& curve, bool success) {
  Records records(trial_dir);
  std::string start;
  for (const auto& p : space.params) {
    if (!params.contains(p.name)) continue;
    std::string entry;
    bytes_field(entry, 1, p.name);
    bytes_field(entry, 2, pb_value(params[p.name]));
    bytes_field(start, 1, entry);
  }
  double_field(start, 5, now_secs());
  std::string start_data;
  bytes_field(start_data, 3, start);
  records.summary(hparams_summary("_hparams_/session_start_info", start_data), 0);
  for (size_t e = 0; e < curve.size(); ++e)
    if (std::isfinite(curve[e])) records.summary(scalar_summary(metric, curve[e]), int64_t(e + 1));
  std::string end;
  varint_field(end, 1, success ? 1 : 2);  // STATUS_SUCCESS / STATUS_FAILURE
  double_field(end, 2, now_secs());
  std::string end_data;
  bytes_field(end_data, 4, end);
  records.summary(hparams_summary("_hparams_/session_end_info", end_data), int64_t(curve.size()));
}

}  // namespace gs::train
