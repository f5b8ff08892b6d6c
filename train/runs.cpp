// gradscope runs: load run directories, print them as a table, and compare two of them.
#include "train/runs.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "tensor/error.h"

namespace gs::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
json read_json_or_null(const fs::path& path) {
  std::ifstream in(path);
  if (!in.good()) return nullptr;
  try {
    json j = json::parse(in);
    return j.is_object() ? j : json();  // a run's files are objects: anything else is not ours
  } catch (const std::exception&) {
    return nullptr;  // a half-written file of a running job: shown as missing
  }
}

double as_number(const json& j) { return j.is_number() ? j.get<double>() : NAN; }

std::string num(double v, const char* fmt = "%.4g") { return std::isfinite(v) ? format(fmt, v) : "-"; }
std::string pct(double v) { return std::isfinite(v) ? format("%.2f%%", 100 * v) : "-"; }

std::string value_str(const json& j) {
  if (j.is_null()) return "-";
  if (j.is_string()) return j.get<std::string>();
  return j.dump();
}

// Columns padded to their widest cell; the first row is the header, underlined.
std::string render(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  auto display_len = [](const std::string& s) {  // UTF-8 code points (sparklines are 3 bytes each)
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  };
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], display_len(r[i]));
    }
  std::string out;
  for (size_t ri = 0; ri < rows.size(); ++ri) {
    std::string line;
    for (size_t i = 0; i < rows[ri].size(); ++i) {
      line += rows[ri][i];
      if (i + 1 < rows[ri].size()) line += std::string(width[i] - display_len(rows[ri][i]) + 2, ' ');
    }
    out += line + "\n";
    if (ri == 0) {
      size_t total = 0;
      for (size_t w : width) total += w + 2;
      out += std::string(total > 2 ? total - 2 : 0, '-') + "\n";
    }
  }
  return out;
}
}  // namespace

double RunRecord::last_metric(const std::string& key) const {
  for (auto it = metrics.rbegin(); it != metrics.rend(); ++it) {
    double v = as_number(it->value(key, json()));
    if (std::isfinite(v)) return v;
  }
  return NAN;
}

double RunRecord::max_metric(const std::string& key) const {
  double best = NAN;
  for (const auto& m : metrics) {
    double v = as_number(m.value(key, json()));
    if (std::isfinite(v) && !(v <= best)) best = v;
  }
  return best;
}

std::vector<double> RunRecord::curve(const std::string& key) const {
  std::vector<double> out;
  for (const auto& m : metrics) out.push_back(as_number(m.value(key, json())));
  return out;
}

namespace {
// "t/a", "t/a/" and "t/a/." are all "a" (a path ending in / has an empty filename).
std::string dir_name(const std::string& dir) {
  fs::path p = fs::absolute(fs::path(dir)).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}
}  // namespace

RunRecord load_run(const std::string& dir) {
  RunRecord r;
  r.dir = dir;
  r.name = dir_name(dir);
  r.config = read_json_or_null(fs::path(dir) / "config.json");
  GS_CHECK(!r.config.is_null(), "runs: %s has no readable config.json (not a run directory)", dir.c_str());
  r.run = read_json_or_null(fs::path(dir) / "run.json");
  r.summary = read_json_or_null(fs::path(dir) / "summary.json");
  std::ifstream in(fs::path(dir) / "metrics.jsonl");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    json m;
    try {
      m = json::parse(lines[i]);
    } catch (const std::exception&) {
    }
    if (m.is_object()) {
      r.metrics.push_back(std::move(m));
      continue;
    }
    // The trainer rewrites metrics.jsonl whole and atomically, so a bad line was damaged after it:
    // skipping it keeps the epochs after it (stopping there dropped them without a word).
    r.warnings.push_back(
        format("%s/metrics.jsonl line %zu is not a JSON object: skipped, so epoch numbers after it "
               "are one less",
               dir.c_str(), i + 1));
  }
  return r;
}

std::vector<RunRecord> list_runs(const std::string& root, std::vector<std::string>* warnings) {
  GS_CHECK(fs::is_directory(root), "runs: '%s' is not a directory", root.c_str());
  std::vector<std::string> dirs;
  if (fs::exists(fs::path(root) / "config.json")) dirs.push_back(root);
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it.depth() >= 3) it.disable_recursion_pending();
    if (it->is_directory() && fs::exists(it->path() / "config.json")) dirs.push_back(it->path().string());
  }
  std::sort(dirs.begin(), dirs.end());
  std::vector<RunRecord> runs;
  for (const auto& d : dirs) {
    RunRecord r;
    try {
      r = load_run(d);
    } catch (const Error& e) {
      if (d == root) throw;  // the run asked for by name: its error is the answer
      // One damaged run (a config.json cut short by a full disk, edited by hand) must not hide the rest.
      if (warnings) warnings->push_back(std::string(e.what()) + ": left out of the list");
      continue;
    }
    std::string rel = fs::relative(d, root, ec).string();
    r.name = rel.empty() || rel == "." ? dir_name(d) : rel;
    if (warnings) warnings->insert(warnings->end(), r.warnings.begin(), r.warnings.end());
    runs.push_back(std::move(r));
  }
  return runs;
}

namespace {
// One row of `runs`: json::exception where a value has the wrong type.
std::vector<std::string> table_row(const RunRecord& r) {
  {
    const json& c = r.config;
    std::string model = c.value("model_spec", std::string());
    if (model.empty()) model = c.value("model", std::string("?"));
    std::string lr = num(as_number(c.value("lr", json())));
    if (c.value("lr_auto", false)) lr += " (auto)";
    int64_t done = r.summary.is_object() ? r.summary.value("epochs", int64_t(0)) : int64_t(r.metrics.size());
    double test_acc =
        r.summary.is_object() ? as_number(r.summary.value("test_accuracy", json())) : r.last_metric("test_acc");
    double wall = r.summary.is_object() ? as_number(r.summary.value("wall_seconds", json())) : NAN;
    return {r.name,
            model,
            c.value("optimizer", std::string("?")),
            lr,
            std::to_string(c.value("batch_size", int64_t(0))),
            format("%lld/%lld", (long long)done, (long long)c.value("epochs", int64_t(0))) +
                (r.summary.is_null()                       ? " (running or stopped)"
                 : r.summary.value("stopped_early", false) ? " (early stop)"
                                                           : ""),
            num(r.last_metric("train_loss")),
            pct(r.max_metric("val_acc")),
            pct(test_acc),
            std::isfinite(wall) ? format("%.1fs", wall) : "-",
            r.run.is_object() ? r.run.value("git_commit", std::string("-")) : "-"};
  }
}
}  // namespace

std::string runs_table(const std::vector<RunRecord>& runs) {
  std::vector<std::vector<std::string>> rows{{"run", "model", "optimizer", "lr", "batch", "epochs", "train loss",
                                              "best val acc", "test acc", "wall", "commit"}};
  for (const auto& r : runs) {
    try {
      rows.push_back(table_row(r));
    } catch (const json::exception& e) {
      GS_CHECK(runs.size() > 1, "runs: %s: a value of config.json, summary.json or run.json has the wrong type (%s)",
               r.dir.c_str(), e.what());
      // A row of its own, so the other runs still show.
      rows.push_back({r.name, format("(unreadable: a value of config.json, summary.json or run.json has the wrong "
                                     "type: %s)",
                                     e.what())});
    }
  }
  return render(rows);
}

std::string sparkline(const std::vector<double>& v) {
  static const char* kBars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  double lo = INFINITY, hi = -INFINITY;
  for (double x : v)
    if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
  std::string out;
  for (double x : v) {
    if (!std::isfinite(x)) {
      out += " ";
      continue;
    }
    int level = hi > lo ? int(std::lround((x - lo) / (hi - lo) * 7)) : 3;
    out += kBars[std::clamp(level, 0, 7)];
  }
  return out;
}

namespace {
std::string diff_text(const RunRecord& a, const RunRecord& b);
}  // namespace

std::string runs_diff(const RunRecord& a, const RunRecord& b) {
  try {
    return diff_text(a, b);
  } catch (const json::exception& e) {
    GS_CHECK(false,
             "runs --diff: %s or %s: a value of config.json, summary.json, run.json or metrics.jsonl has the wrong "
             "type (%s)",
             a.dir.c_str(), b.dir.c_str(), e.what());
    return {};
  }
}

namespace {
std::string diff_text(const RunRecord& a, const RunRecord& b) {
  std::ostringstream out;
  out << "A: " << a.dir << "\nB: " << b.dir << "\n\n";
  // config: every key that differs (out always does, so it is left out)
  std::vector<std::vector<std::string>> rows{{"config", "A", "B"}};
  std::set<std::string> keys;
  for (auto it = a.config.begin(); it != a.config.end(); ++it) keys.insert(it.key());
  for (auto it = b.config.begin(); it != b.config.end(); ++it) keys.insert(it.key());
  for (const auto& k : keys) {
    if (k == "out") continue;
    json va = a.config.value(k, json()), vb = b.config.value(k, json());
    if (va != vb) rows.push_back({k, value_str(va), value_str(vb)});
  }
  if (rows.size() == 1) rows.push_back({"(same config)", "", ""});
  out << render(rows) << "\n";

  // run.json: build and data identity
  std::vector<std::vector<std::string>> run_rows{{"run", "A", "B"}};
  auto run_value = [](const RunRecord& r, const std::string& key) {
    return r.run.is_object() ? value_str(r.run.value(key, json())) : std::string("-");
  };
  for (const char* k : {"gradscope_version", "git_commit", "threads", "started_utc"})
    run_rows.push_back({k, run_value(a, k), run_value(b, k)});
  auto data_hash = [](const RunRecord& r) {
    if (!r.run.is_object() || !r.run.contains("data_files")) return std::string("-");
    // Every file's hash, folded into one (FNV-1a over the list): the first file's alone missed a
    // change to the others.
    std::string all;
    for (const auto& f : r.run["data_files"]) all += f.value("fnv1a64", std::string()) + ",";
    uint64_t h = 14695981039346656037ull;
    for (unsigned char ch : all) h = (h ^ ch) * 1099511628211ull;
    return format("%zu files, %016llx", r.run["data_files"].size(), (unsigned long long)h);
  };
  std::string da = data_hash(a), db = data_hash(b);
  run_rows.push_back({"data files", da, db + (da == db ? "" : "  <- differ")});
  out << render(run_rows) << "\n";

  // final metrics
  std::vector<std::vector<std::string>> final_rows{{"final", "A", "B"}};
  for (const char* k : {"train_loss", "val_loss", "val_acc", "test_loss", "test_acc"}) {
    double va = a.last_metric(k), vb = b.last_metric(k);
    bool acc = std::string(k).ends_with("acc");
    final_rows.push_back({k, acc ? pct(va) : num(va), acc ? pct(vb) : num(vb)});
  }
  final_rows.push_back({"epochs", std::to_string(a.metrics.size()), std::to_string(b.metrics.size())});
  out << render(final_rows) << "\n";

  // curves: sparklines, then the per-epoch table
  std::vector<std::vector<std::string>> spark_rows{{"curve", "A", "B"}};
  for (const char* k : {"train_loss", "val_acc", "test_acc", "lr"})
    spark_rows.push_back({k, sparkline(a.curve(k)), sparkline(b.curve(k))});
  out << render(spark_rows) << "\n";
  std::vector<std::vector<std::string>> curve_rows{
      {"epoch", "train_loss A", "train_loss B", "val_acc A", "val_acc B", "test_acc A", "test_acc B"}};
  size_t n = std::max(a.metrics.size(), b.metrics.size());
  auto at = [](const RunRecord& r, size_t i, const char* k) {
    return i < r.metrics.size() ? as_number(r.metrics[i].value(k, json())) : NAN;
  };
  for (size_t i = 0; i < n; ++i)
    curve_rows.push_back({std::to_string(i + 1), num(at(a, i, "train_loss")), num(at(b, i, "train_loss")),
                          pct(at(a, i, "val_acc")), pct(at(b, i, "val_acc")), pct(at(a, i, "test_acc")),
                          pct(at(b, i, "test_acc"))});
  out << render(curve_rows);
  return out.str();
}
}  // namespace

}  // namespace gs::train
