// run.json contents: build identity (GS_VERSION / GS_GIT_COMMIT come from CMake at configure time),
// the command line, and FNV-1a hashes of the data files a data spec names.
#include "train/run_info.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "tensor/error.h"

#ifndef GS_VERSION
#define GS_VERSION "unknown"
#endif
#ifndef GS_GIT_COMMIT
#define GS_GIT_COMMIT "unknown"
#endif

namespace gs::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
std::vector<std::string>& command_line_storage() {
  static std::vector<std::string> args;
  return args;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Regular files directly in `dir` whose names satisfy keep().
template <class Keep> void add_files(const fs::path& dir, Keep keep, std::vector<std::string>& out) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && keep(e.path().filename().string())) out.push_back(e.path().string());
}
}  // namespace

void set_command_line(int argc, const char* const* argv) {
  auto& args = command_line_storage();
  args.assign(argv, argv + argc);
}
const std::vector<std::string>& command_line() { return command_line_storage(); }

std::string gradscope_version() { return GS_VERSION; }
std::string git_commit() { return GS_GIT_COMMIT; }

uint64_t fnv1a64(const void* data, size_t size, uint64_t hash) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    hash ^= p[i];
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

uint64_t fnv1a64_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  GS_CHECK(in.good(), "run.json: cannot read data file '%s' to hash it", path.c_str());
  uint64_t hash = 0xcbf29ce484222325ULL;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    hash = fnv1a64(buf.data(), size_t(in.gcount()), hash);
  }
  return hash;
}

std::vector<DataFile> dataset_files(const std::string& spec) {
  auto colon = spec.find(':');
  std::string kind = spec.substr(0, colon);
  std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
  std::vector<std::string> paths;
  auto idx_name = [](const std::string& n) { return n.find("-ubyte") != std::string::npos; };
  if (kind == "fashion-mnist" || kind == "fashion_mnist" || kind == "fashionmnist") {
    add_files(arg.empty() ? "/usr/share/datasets/fashion-mnist" : arg, idx_name, paths);
  } else if (kind == "mnist" || (kind == "idx" && arg.find(',') == std::string::npos)) {
    add_files(arg, idx_name, paths);
  } else if (kind == "idx") {
    auto comma = arg.find(',');
    paths = {arg.substr(0, comma), arg.substr(comma + 1)};
  } else if (kind == "cifar10" || kind == "cifar-10") {
    auto cifar = [](const std::string& n) { return n.ends_with(".bin") || n == "batches.meta.txt"; };
    add_files(arg, cifar, paths);
    add_files(fs::path(arg) / "cifar-10-batches-bin", cifar, paths);
  } else if (kind == "folder") {
    std::string dir = arg;
    auto last = arg.rfind(':');
    if (last != std::string::npos && !fs::is_directory(arg)) dir = arg.substr(0, last);  // folder:<dir>:HxW
    std::error_code ec;
    if (fs::is_directory(dir, ec))
      for (const auto& e : fs::recursive_directory_iterator(dir, ec))
        if (e.is_regular_file()) paths.push_back(e.path().string());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<DataFile> files;
  for (const auto& p : paths) {
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) continue;  // load_dataset reports missing files itself
    files.push_back({p, uint64_t(fs::file_size(p)), hex64(fnv1a64_file(p))});
  }
  return files;
}

json run_info_json(const TrainConfig& config, int threads, const json& extra) {
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  json data = json::array();
  for (const auto& f : dataset_files(config.data))
    data.push_back({{"path", f.path}, {"bytes", f.bytes}, {"fnv1a64", f.fnv1a64}});
  json j{{"gradscope_version", gradscope_version()},
         {"git_commit", git_commit()},
         {"command_line", command_line()},
         {"seed", config.seed},
         {"threads", threads},
         {"started_utc", stamp},
         {"data", config.data},
         {"data_files", data},
         {"config", json::parse(config.to_json())}};
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  return j;
}

}  // namespace gs::train
