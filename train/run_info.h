// run.json: what is needed to repeat a run besides its config.json — gradscope version and git
// commit of the build, the command line, seed, threads, start time, and a hash of every data file
// read. Also the run directory listing and comparison behind `gradscope runs` (train/runs.h).
//
//   gs::train::set_command_line(argc, argv);   // once, in main()
//   gs::io::write_file_atomic(dir + "/run.json", gs::train::run_info_json(config, threads));
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/config.h"

namespace gs::train {

// The process's command line, as main() received it (a documented global: set once, before any run;
// empty when the library is used without the CLI).
void set_command_line(int argc, const char* const* argv);
const std::vector<std::string>& command_line();

std::string gradscope_version();  // PROJECT_VERSION
std::string git_commit();         // short hash at configure time, "-dirty" suffix, or "unknown"

// 64-bit FNV-1a of a file's bytes (fast, no dependency; for telling data files apart, not security).
uint64_t fnv1a64(const void* data, size_t size, uint64_t hash = 0xcbf29ce484222325ULL);
uint64_t fnv1a64_file(const std::string& path);

struct DataFile {
  std::string path;
  uint64_t bytes = 0;
  std::string fnv1a64;  // 16 hex digits
};
// The files io::load_dataset(spec, ...) reads for the train and test splits (sorted by path);
// for an image folder every file under it.
std::vector<DataFile> dataset_files(const std::string& data_spec);

// The run.json object. `extra` is merged in at the top level (e.g. the lr_find result of --lr auto).
nlohmann::json run_info_json(const TrainConfig& config, int threads,
                             const nlohmann::json& extra = nlohmann::json::object());

}  // namespace gs::train
