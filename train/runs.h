// Reading run directories back for `gradscope runs`: a table of runs with their key metrics, and a
// comparison of two runs (config and run.json differences, final metrics, curves side by side).
// A run directory is any folder holding a config.json (train/trainer.h lists what else it holds).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace gs::train {

struct RunRecord {
  std::string dir;
  std::string name;                     // dir relative to the listed root
  nlohmann::json config;                // config.json
  nlohmann::json run;                   // run.json (null for runs made before it existed)
  nlohmann::json summary;               // summary.json (null while a run is going or was killed)
  std::vector<nlohmann::json> metrics;  // metrics.jsonl, one object per epoch
  std::vector<std::string> warnings;    // what could not be read (a damaged metrics.jsonl line), and so was skipped

  // The last finite value of `key` over the epochs (NaN if none), and the best (max) of it.
  double last_metric(const std::string& key) const;
  double max_metric(const std::string& key) const;
  std::vector<double> curve(const std::string& key) const;  // per epoch, NaN where missing
};

RunRecord load_run(const std::string& dir);
// Every run directory under root (root itself included), up to 3 levels deep, sorted by path. A
// directory whose config.json cannot be read is left out; it and every run's own warnings go to
// `warnings`.
std::vector<RunRecord> list_runs(const std::string& root, std::vector<std::string>* warnings = nullptr);

std::string runs_table(const std::vector<RunRecord>& runs);
std::string runs_diff(const RunRecord& a, const RunRecord& b);
// ▁▂▃▄▅▆▇█ scaled to the values' range; NaN prints as a space.
std::string sparkline(const std::vector<double>& values);

}  // namespace gs::train
