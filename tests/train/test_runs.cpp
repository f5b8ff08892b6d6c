// Reproducible runs: FNV-1a hashes, the data files a spec names, run.json contents (and that the config
// inside it loads back), and the `gradscope runs` table and diff over hand-made run directories.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/helpers.h"
#include "train/run_info.h"
#include "train/runs.h"
#include "train/trainer.h"

using namespace gs;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("gs_test_runs_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}
void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}
// A run directory as the trainer leaves it: config, metrics per epoch, summary.
void fake_run(const fs::path& dir, double lr, const std::vector<double>& val_acc, bool finished = true) {
  train::TrainConfig c;
  c.lr = lr;
  c.out = dir.string();
  c.epochs = int64_t(val_acc.size());
  write(dir / "config.json", c.to_json());
  std::string metrics;
  for (size_t i = 0; i < val_acc.size(); ++i)
    metrics += format("{\"epoch\":%zu,\"train_loss\":%g,\"val_acc\":%g,\"test_acc\":%g,\"lr\":%g}\n", i + 1,
                      1.0 / double(i + 1), val_acc[i], val_acc[i] - 0.01, lr);
  write(dir / "metrics.jsonl", metrics);
  if (finished)
    write(dir / "summary.json",
          format("{\"epochs\":%zu,\"test_accuracy\":%g,\"wall_seconds\":3.5}", val_acc.size(), val_acc.back() - 0.01));
  write(dir / "run.json", "{\"git_commit\":\"abc1234\",\"gradscope_version\":\"0.1.0\"}");
}
}  // namespace

TEST(RunInfo, Fnv1aKnownValues) {
  // Reference values of 64-bit FNV-1a (Fowler/Noll/Vo test suite).
  EXPECT_EQ(train::fnv1a64("", 0), 0xcbf29ce484222325ULL);
  EXPECT_EQ(train::fnv1a64("a", 1), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(train::fnv1a64("foobar", 6), 0x85944171f73967e8ULL);
  fs::path dir = temp_dir("fnv");
  write(dir / "f.bin", "foobar");
  EXPECT_EQ(train::fnv1a64_file((dir / "f.bin").string()), 0x85944171f73967e8ULL);
  EXPECT_THROW_MSG(train::fnv1a64_file((dir / "missing").string()), "cannot read");
  fs::remove_all(dir);
}

TEST(RunInfo, DatasetFilesOfEachSpecKind) {
  fs::path dir = temp_dir("data");
  write(dir / "train-images-idx3-ubyte.gz", "img");
  write(dir / "train-labels-idx1-ubyte.gz", "lab");
  write(dir / "README", "not data");
  auto idx = train::dataset_files("mnist:" + dir.string());
  ASSERT_EQ(idx.size(), 2u);
  EXPECT_EQ(idx[0].path, (dir / "train-images-idx3-ubyte.gz").string());
  EXPECT_EQ(idx[0].bytes, 3u);
  EXPECT_EQ(idx[0].fnv1a64.size(), 16u);
  EXPECT_NE(idx[0].fnv1a64, idx[1].fnv1a64);
  auto pair =
      train::dataset_files("idx:" + (dir / "README").string() + "," + (dir / "train-labels-idx1-ubyte.gz").string());
  EXPECT_EQ(pair.size(), 2u);
  write(dir / "folder" / "cat" / "1.png", "x");
  write(dir / "folder" / "dog" / "2.png", "y");
  auto folder = train::dataset_files("folder:" + (dir / "folder").string() + ":32x32");
  ASSERT_EQ(folder.size(), 2u);
  EXPECT_NE(folder[1].path.find("dog"), std::string::npos);
  fs::remove_all(dir);
}

TEST(RunInfo, RunJsonHoldsBuildCommandLineAndALoadableConfig) {
  const char* argv[] = {"gradscope", "train", "--lr", "0.5"};
  train::set_command_line(4, argv);
  train::TrainConfig c;
  c.seed = 42;
  c.lr = 0.5;
  c.data = "idx:/nonexistent/a,/nonexistent/b";  // missing files are skipped, not an error here
  nlohmann::json j = train::run_info_json(c, 3, {{"lr_find", {{"suggested_lr", 0.1}}}});
  EXPECT_EQ(j["seed"], 42);
  EXPECT_EQ(j["threads"], 3);
  EXPECT_EQ(j["command_line"].size(), 4u);
  EXPECT_EQ(j["command_line"][3], "0.5");
  EXPECT_EQ(j["gradscope_version"], train::gradscope_version());
  EXPECT_FALSE(train::git_commit().empty());
  EXPECT_EQ(j["git_commit"], train::git_commit());
  EXPECT_EQ(j["lr_find"]["suggested_lr"], 0.1);
  train::TrainConfig back = train::TrainConfig::from_json(j["config"].dump(), "run.json");
  EXPECT_EQ(back.to_json(), c.to_json());
  train::set_command_line(0, argv);
}

TEST(RunInfo, TrainerWritesRunJson) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "SKIPPED LOUDLY: Fashion-MNIST not installed (bash scripts/setup.sh)";
  fs::path dir = temp_dir("trainer");
  train::TrainConfig c;
  c.model = "mlp";
  c.limit_train = 128;
  c.limit_test = 64;
  c.epochs = 1;
  c.threads = 2;
  c.progress = false;
  c.out = dir.string();
  train::Trainer(c).run();
  std::ifstream in(dir / "run.json");
  nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["data_files"].size(), 4u);  // train/test images/labels
  EXPECT_EQ(j["config"]["model"], "mlp");
  EXPECT_EQ(j["threads"], 2);
  // config.json next to it still loads for `train --config`.
  EXPECT_EQ(train::TrainConfig::from_file((dir / "config.json").string()).model, "mlp");
  fs::remove_all(dir);
}

TEST(Runs, TableListsNestedRunsWithMetrics) {
  fs::path root = temp_dir("table");
  fake_run(root / "a", 0.01, {0.5, 0.7});
  fake_run(root / "search" / "trial_001", 0.1, {0.6, 0.9, 0.8});
  fake_run(root / "killed", 0.2, {0.3}, /*finished=*/false);
  fake_run(root / "patient", 0.3, {0.4, 0.35});
  write(root / "patient" / "summary.json", "{\"epochs\":2,\"test_accuracy\":0.3,\"stopped_early\":true}");
  write(root / "not_a_run" / "notes.txt", "x");
  auto runs = train::list_runs(root.string());
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[3].name, "search/trial_001");
  EXPECT_DOUBLE_EQ(runs[3].max_metric("val_acc"), 0.9);
  EXPECT_DOUBLE_EQ(runs[3].last_metric("val_acc"), 0.8);
  std::string table = train::runs_table(runs);
  EXPECT_NE(table.find("search/trial_001"), std::string::npos) << table;
  EXPECT_NE(table.find("90.00%"), std::string::npos) << table;  // best val acc
  EXPECT_NE(table.find("(running or stopped)"), std::string::npos) << table;
  EXPECT_NE(table.find("2/2 (early stop)"), std::string::npos) << table;
  EXPECT_NE(table.find("abc1234"), std::string::npos) << table;
  EXPECT_EQ(table.find("not_a_run"), std::string::npos);
  EXPECT_THROW_MSG(train::load_run((root / "not_a_run").string()), "no readable config.json");
  fs::remove_all(root);
}

TEST(Runs, DamagedRunsAreSkippedWithWarningsAndTheRestStillList) {
  fs::path root = temp_dir("damaged");
  fake_run(root / "a_good", 0.01, {0.5, 0.7});
  fake_run(root / "b_cut", 0.1, {0.6});
  write(root / "b_cut" / "config.json", "{\"lr\": 0.1, \"batch_si");  // cut short by a full disk
  fake_run(root / "c_torn", 0.2, {0.3, 0.4, 0.5});
  write(root / "c_torn" / "metrics.jsonl",
        "{\"epoch\":1,\"val_acc\":0.3}\n{\"epoch\":2,\"val_a\n{\"epoch\":3,\"val_acc\":0.5}\n");
  fake_run(root / "d_typed", 0.3, {0.4});
  write(root / "d_typed" / "summary.json", "{\"epochs\":\"one\"}");
  std::vector<std::string> warnings;
  auto runs = train::list_runs(root.string(), &warnings);
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].name, "a_good");
  EXPECT_EQ(runs[1].name, "c_torn");
  // The torn middle line is skipped; the epoch after it is kept.
  ASSERT_EQ(runs[1].metrics.size(), 2u);
  EXPECT_DOUBLE_EQ(runs[1].max_metric("val_acc"), 0.5);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("b_cut"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("left out"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("metrics.jsonl line 2"), std::string::npos) << warnings[1];
  std::string table = train::runs_table(runs);
  EXPECT_NE(table.find("a_good"), std::string::npos) << table;
  EXPECT_NE(table.find("70.00%"), std::string::npos) << table;
  EXPECT_NE(table.find("d_typed  (unreadable"), std::string::npos) << table;
  fs::remove_all(root);
}

TEST(Runs, DiffShowsChangedConfigFinalMetricsAndCurves) {
  fs::path root = temp_dir("diff");
  fake_run(root / "a", 0.01, {0.5, 0.7});
  fake_run(root / "b", 0.1, {0.6, 0.9, 0.8});
  std::string d = train::runs_diff(train::load_run((root / "a").string()), train::load_run((root / "b").string()));
  EXPECT_NE(d.find("lr "), std::string::npos) << d;
  EXPECT_NE(d.find("epochs "), std::string::npos) << d;
  EXPECT_EQ(d.find("\nout "), std::string::npos) << d;      // out always differs: not shown
  EXPECT_EQ(d.find("\nmomentum"), std::string::npos) << d;  // same in both: not shown
  EXPECT_NE(d.find("80.00%"), std::string::npos) << d;      // B's final val acc
  EXPECT_NE(d.find("▁█"), std::string::npos) << d;          // A's val acc curve
  fs::remove_all(root);
}

TEST(Runs, Sparkline) {
  EXPECT_EQ(train::sparkline({0, 7}), "▁█");
  EXPECT_EQ(train::sparkline({1, NAN, 3, 2}), "▁ █▅");
  EXPECT_EQ(train::sparkline({5, 5}), "▄▄");
}
