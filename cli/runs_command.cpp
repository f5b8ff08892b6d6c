// `gradscope runs [DIR]`: a table of the run directories under DIR (default runs/) with their key
// metrics; `gradscope runs --diff A B`: two runs' config and run.json differences, final metrics and curves.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "train/runs.h"

namespace gs::cli {

void add_runs(CLI::App& app) {
  auto root = std::make_shared<std::string>("runs");
  auto diff = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand("runs", "list run directories with their metrics, or compare two (--diff A B)");
  cmd->add_option("dir", *root, "folder holding run directories")->capture_default_str();
  cmd->add_option("--diff", *diff, "compare two run directories: config, run info, final metrics, curves")->expected(2);
  register_action(cmd, [root, diff] {
    if (diff->size() == 2) {
      train::RunRecord a = train::load_run((*diff)[0]), b = train::load_run((*diff)[1]);
      for (const auto* r : {&a, &b})
        for (const auto& w : r->warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
      std::printf("%s", train::runs_diff(a, b).c_str());
      return;
    }
    std::vector<std::string> warnings;
    auto runs = train::list_runs(*root, &warnings);
    for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    if (runs.empty()) {
      std::printf("no run directories (folders with a config.json) under %s\n", root->c_str());
      return;
    }
    std::printf("%s", train::runs_table(runs).c_str());
  });
}

const CommandRegistration register_runs{80, add_runs};

}  // namespace gs::cli
