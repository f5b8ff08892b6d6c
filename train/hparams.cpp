// Hand-encoded protobuf for the HParams plugin (field numbers from tensorboard 2.x's api.proto and
// plugin_data.proto), written as TFRecords: length, masked CRC32C of it, payload, masked CRC32C.
#include "train/hparams.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/protobuf_wire.h"
#include "io/tensorboard.h"
#include "tensor/error.h"

namespace gs::train {

namespace {
using nlohmann::json;
namespace pb = io::pb;

// google.protobuf.Value
std::string pb_value(const json& v) {
  std::string out;
  if (v.is_number())
    pb::put_double(out, 2, v.get<double>());
  else if (v.is_boolean())
    pb::put_int(out, 4, v.get<bool>() ? 1 : 0);
  else if (v.is_string())
    pb::put_bytes(out, 3, v.get<std::string>());
  else
    pb::put_bytes(out, 3, v.dump());
  return out;
}

double now_secs() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

// A Summary holding one hparams plugin value (no tensor: the plugin reads the metadata's content).
std::string hparams_summary(const std::string& tag, const std::string& plugin_data) {
  std::string plugin;
  pb::put_bytes(plugin, 1, "hparams");
  pb::put_bytes(plugin, 2, plugin_data);
  std::string metadata;
  pb::put_bytes(metadata, 1, plugin);
  std::string value;
  pb::put_bytes(value, 1, tag);
  pb::put_bytes(value, 9, metadata);
  std::string summary;
  pb::put_bytes(summary, 1, value);
  return summary;
}
std::string scalar_summary(const std::string& tag, double v) {
  std::string value;
  pb::put_bytes(value, 1, tag);
  pb::put_float(value, 2, float(v));
  std::string summary;
  pb::put_bytes(summary, 1, value);
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
    pb::put_double(event, 1, now_secs());
    pb::put_bytes(event, 3, "brain.Event:2");
    record(event);
  }
  void summary(const std::string& summary, int64_t step) {
    std::string event;
    pb::put_double(event, 1, now_secs());
    pb::put_int(event, 2, uint64_t(step));
    pb::put_bytes(event, 5, summary);
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
    pb::put_bytes(info, 1, p.name);
    if (p.categorical()) {
      bool numbers = true, strings = true;
      for (const auto& v : p.values) numbers &= v.is_number(), strings &= v.is_string();
      pb::put_int(info, 4, numbers ? 3 : strings ? 1 : 0);  // DATA_TYPE_FLOAT64 / STRING
      std::string list;
      for (const auto& v : p.values) pb::put_bytes(list, 1, pb_value(v));
      pb::put_bytes(info, 5, list);
    } else {
      pb::put_int(info, 4, 3);
      std::string interval;
      pb::put_double(interval, 1, p.low);
      pb::put_double(interval, 2, p.high);
      pb::put_bytes(info, 6, interval);
    }
    pb::put_bytes(experiment, 4, info);
  }
  std::string name, metric_info;
  pb::put_bytes(name, 2, metric);
  pb::put_bytes(metric_info, 1, name);
  pb::put_bytes(experiment, 5, metric_info);
  pb::put_double(experiment, 3, now_secs());
  std::string data;
  pb::put_bytes(data, 2, experiment);
  Records(dir).summary(hparams_summary("_hparams_/experiment", data), 0);
}

void write_hparams_session(const std::string& trial_dir, const SearchSpace& space, const json& params,
                           const std::string& metric, const std::vector<double>& curve, bool success) {
  Records records(trial_dir);
  std::string start;
  for (const auto& p : space.params) {
    if (!params.contains(p.name)) continue;
    std::string entry;
    pb::put_bytes(entry, 1, p.name);
    pb::put_bytes(entry, 2, pb_value(params[p.name]));
    pb::put_bytes(start, 1, entry);
  }
  pb::put_double(start, 5, now_secs());
  std::string start_data;
  pb::put_bytes(start_data, 3, start);
  records.summary(hparams_summary("_hparams_/session_start_info", start_data), 0);
  for (size_t e = 0; e < curve.size(); ++e)
    if (std::isfinite(curve[e])) records.summary(scalar_summary(metric, curve[e]), int64_t(e + 1));
  std::string end;
  pb::put_int(end, 1, success ? 1 : 2);  // STATUS_SUCCESS / STATUS_FAILURE
  pb::put_double(end, 2, now_secs());
  std::string end_data;
  pb::put_bytes(end_data, 4, end);
  records.summary(hparams_summary("_hparams_/session_end_info", end_data), int64_t(curve.size()));
}

}  // namespace gs::train
