// `gradscope search`: hyperparameter search over any `train` setting (train/search.h). Each trial is a
// separate `gradscope train --config <out>/trial_NNN/config.json` process, --parallel K at a time;
// --early-stop median kills a trial whose validation curve falls below the median of finished ones.
// Writes <out>/search.jsonl (one line per finished trial), results.txt, best_config.json and TensorBoard
// HParams events (train/hparams.h); re-running the same command resumes (finished trials are skipped).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "io/safetensors.h"
#include "layers/spec.h"
#include "layers/zoo.h"
#include "tensor/error.h"
#include "train/hparams.h"
#include "train/runs.h"
#include "train/search.h"
#include "train/trainer.h"

extern char** environ;

namespace gs::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
struct SearchFlags {
  train::TrainConfig base;
  std::string base_file, space_file, out = "runs/search", objective = "val_acc", early_stop = "none";
  train::SearchOptions options{.strategy = "tpe"};
};

// The per-epoch score of a trial directory: the objective, losses negated so that higher is always
// better. What is shown and stored is the objective as measured (measured() undoes the sign).
std::vector<double> objective_curve(const std::string& dir, const std::string& key) {
  std::vector<double> curve;
  std::ifstream in(fs::path(dir) / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    try {
      json m = json::parse(line);
      double v = m.value(key, json()).is_number() ? m[key].get<double>() : NAN;
      curve.push_back(key.ends_with("loss") ? -v : v);
    } catch (const std::exception&) {
      break;  // a line being written
    }
  }
  return curve;
}

double measured(const std::string& key, double score) { return key.ends_with("loss") ? -score : score; }

double best_of(const std::vector<double>& curve) {
  double best = NAN;
  for (double v : curve)
    if (std::isfinite(v) && !(v <= best)) best = v;
  return best;
}

// A trial is a child that dies with the search (PR_SET_PDEATHSIG): a search killed with -9 used to
// leave its trials running, and the rerun started the same trial again in the same folder, two
// processes writing the same files. Between fork and exec only async-signal-safe calls. The signal
// follows the forking thread: trials are started from the main thread only.
pid_t spawn_train(const std::string& exe, const std::string& config_path, const std::string& log_path) {
  std::vector<std::string> args{exe, "train", "--config", config_path, "--no-progress"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // A close-on-exec pipe carries the child's errno back when it cannot start (as posix_spawn
  // reports it): nothing arrives once the exec succeeds.
  int status_pipe[2];
  GS_CHECK(pipe2(status_pipe, O_CLOEXEC) == 0, "search: cannot start '%s train' (pipe: %s)", exe.c_str(),
           std::strerror(errno));
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    auto fail = [&](int error) {
      [[maybe_unused]] ssize_t n = write(status_pipe[1], &error, sizeof error);
      _exit(127);
    };
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(errno);
    if (getppid() != parent) _exit(127);  // the search already died
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) fail(errno);
    if (fd > 2) close(fd);
    execve(exe.c_str(), argv.data(), environ);
    fail(errno);
  }
  const int fork_error = errno;
  close(status_pipe[1]);
  int child_error = 0;
  ssize_t got = 0;
  if (pid > 0) {
    do got = read(status_pipe[0], &child_error, sizeof child_error);
    while (got < 0 && errno == EINTR);
  }
  close(status_pipe[0]);
  GS_CHECK(pid > 0, "search: cannot start '%s train' (%s)", exe.c_str(), std::strerror(fork_error));
  if (got == sizeof child_error) {
    waitpid(pid, nullptr, 0);
    GS_CHECK(false, "search: cannot start '%s train' (%s; trial log %s)", exe.c_str(), std::strerror(child_error),
             log_path.c_str());
  }
  return pid;
}

std::string trial_dir(const std::string& out, int64_t id) {
  return format("%s/trial_%03lld", out.c_str(), (long long)id);
}

void run_search_command(const SearchFlags& f, const train::TrainConfig& base) {
  train::SearchSpace space = train::SearchSpace::from_file(f.space_file);
  train::SearchOptions options = f.options;
  // What every trial would fail on is refused before the first starts, as train refuses it.
  base.check_values("search");
  train::apply_runtime_settings(0, base.kernels);  // --kernel and GS_KERNELS (threads untouched)
  bool space_sets_model = false;
  for (const auto& p : space.params) space_sets_model |= train::config_key(p.name).starts_with("model");
  if (!space_sets_model) {
    if (!base.model_spec.empty()) {
      nn::load_model_spec(base.model_spec);
    } else {
      const auto names = nn::model_names();
      std::string known;
      for (const auto& name : names) known += (known.empty() ? "" : ", ") + name;
      GS_CHECK(std::find(names.begin(), names.end(), base.model) != names.end(),
               "search: unknown --model '%s' (known: %s)", base.model.c_str(), known.c_str());
    }
  }
  GS_CHECK(f.early_stop == "none" || f.early_stop == "median", "search: --early-stop is none or median, got '%s'",
           f.early_stop.c_str());
  // The objective is a key of the trials' metrics.jsonl; a val_* one needs a validation set, else
  // every trial that trained well would be read as failed.
  const std::vector<std::string> keys = {"val_acc", "val_loss", "train_acc", "train_loss", "test_acc", "test_loss"};
  GS_CHECK(std::find(keys.begin(), keys.end(), f.objective) != keys.end(),
           "search: --objective '%s' is not a metrics.jsonl key (val_acc, val_loss, train_acc, train_loss, test_acc, "
           "test_loss)",
           f.objective.c_str());
  bool space_sets_val = false;
  for (const auto& p : space.params) space_sets_val |= train::config_key(p.name) == "val_fraction";
  GS_CHECK(!f.objective.starts_with("val_") || base.val_fraction > 0 || space_sets_val,
           "search: --objective %s needs a validation set: give --val-fraction > 0 (it is 0)", f.objective.c_str());
  fs::create_directories(f.out);

  // Same search or a different one? The meta file pins what resuming must not change.
  json meta{{"space", space.to_json()},
            {"strategy", options.strategy},
            {"seed", options.seed},
            {"objective", f.objective},
            {"base_config", json::parse(base.to_json())}};
  meta["base_config"].erase("out");
  std::string meta_path = f.out + "/search_meta.json";
  if (fs::exists(meta_path)) {
    std::ifstream in(meta_path);
    json old = json::parse(in);
    GS_CHECK(old == meta,
             "search: %s holds a different search (space, strategy, seed, objective or base config "
             "differ); use another --out",
             f.out.c_str());
  } else {
    io::write_file_atomic(meta_path, meta.dump(2) + "\n");
    train::write_hparams_experiment(f.out, space, f.objective);  // TensorBoard's HParams tab
  }

  // Resume: finished trials from search.jsonl, and their curves for the median rule.
  std::vector<train::Trial> previous;
  std::string jsonl_path = f.out + "/search.jsonl";
  std::string jsonl_text;
  {
    std::ifstream in(jsonl_path);
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      try {
        previous.push_back(train::trial_from_json(json::parse(line)));
        jsonl_text += line + "\n";
      } catch (const std::exception&) {
        break;  // a torn last line: that trial runs again
      }
    }
  }
  auto finished_curves = std::make_shared<std::vector<std::vector<double>>>();
  for (const auto& t : previous)
    if (t.status == "ok") finished_curves->push_back(objective_curve(trial_dir(f.out, t.id), f.objective));
  if (!previous.empty())
    std::fprintf(stderr, "gradscope search: resuming %s: %zu trials already finished\n", f.out.c_str(),
                 previous.size());

  const std::string exe = fs::read_symlink("/proc/self/exe").string();
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  auto evaluate = [&](const std::vector<train::Trial>& batch) {
    struct Running {
      pid_t pid;
      std::string dir;
      std::chrono::steady_clock::time_point start;
      size_t epochs = 0;
      bool done = false, pruned = false;
      int status = 0;
    };
    std::vector<Running> running;
    for (const auto& t : batch) {
      train::TrainConfig c = space.apply(base, t.params);
      c.out = trial_dir(f.out, t.id);
      c.progress = false;
      if (c.threads == 0) c.threads = int(std::max(1u, cores / unsigned(options.parallel)));
      fs::remove_all(c.out);  // a trial interrupted last time starts over
      fs::create_directories(c.out);
      io::write_file_atomic(c.out + "/config.json", c.to_json() + "\n");
      std::fprintf(stderr, "trial %lld: %s\n", (long long)t.id, t.params.dump().c_str());
      running.push_back({spawn_train(exe, c.out + "/config.json", c.out + "/train.log"), c.out,
                         std::chrono::steady_clock::now(), size_t(c.epochs)});
    }
    // The median rule on the epochs logged so far; a trial that logged its last epoch is not pruned.
    auto prune = [&](const std::string& dir, size_t epochs) {
      std::vector<double> curve = objective_curve(dir, f.objective);
      return curve.size() < epochs && train::median_stop(curve, *finished_curves);
    };
    size_t left = running.size();
    while (left > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      for (auto& r : running) {
        if (r.done) continue;
        if (waitpid(r.pid, &r.status, WNOHANG) == r.pid) {
          r.done = true;
          --left;
        } else if (f.early_stop == "median" && prune(r.dir, r.epochs)) {
          kill(r.pid, SIGTERM);
          waitpid(r.pid, &r.status, 0);
          r.done = r.pruned = true;
          --left;
        }
      }
    }
    std::vector<train::TrialResult> results;
    for (size_t i = 0; i < running.size(); ++i) {
      Running& r = running[i];
      train::TrialResult res;
      res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - r.start).count();
      std::vector<double> curve = objective_curve(r.dir, f.objective);
      res.objective = best_of(curve);
      bool ok = WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0;
      res.status = r.pruned ? "pruned" : ok ? "ok" : "failed";
      if (!ok && !r.pruned) res.objective = NAN;
      if (res.status == "ok") finished_curves->push_back(curve);
      std::vector<double> values;  // TensorBoard's HParams tab plots the metric as measured
      for (double v : curve) values.push_back(measured(f.objective, v));
      train::write_hparams_session(r.dir, space, batch[i].params, f.objective, values, res.status != "failed");
      results.push_back(res);
    }
    return results;
  };
  auto on_trial = [&](const train::Trial& t) {
    jsonl_text += train::trial_to_json(t, f.objective.ends_with("loss")).dump() + "\n";
    io::write_file_atomic(jsonl_path, jsonl_text);
    std::fprintf(stderr, "trial %lld: %s, %s %s (%.1fs)%s\n", (long long)t.id, t.status.c_str(), f.objective.c_str(),
                 std::isfinite(t.objective) ? format("%.4f", measured(f.objective, t.objective)).c_str() : "-",
                 t.seconds,
                 t.status == "failed" ? format(" - see %s/train.log", trial_dir(f.out, t.id).c_str()).c_str() : "");
  };
  std::vector<train::Trial> trials = train::run_search(space, options, evaluate, previous, on_trial);

  // Results, best first; the best trial's config ready for `train --config`.
  std::vector<train::Trial> order = train::ranked(trials);
  std::string table = format("%-5s %-6s %-7s %-10s", "rank", "trial", "status", f.objective.c_str());
  for (const auto& p : space.params) table += format(" %-14s", p.name.c_str());
  table += "\n";
  for (size_t i = 0; i < order.size(); ++i) {
    const auto& t = order[i];
    table += format("%-5zu %-6lld %-7s %-10s", i + 1, (long long)t.id, t.status.c_str(),
                    std::isfinite(t.objective) ? format("%.4f", measured(f.objective, t.objective)).c_str() : "-");
    for (const auto& p : space.params) {
      const json& v = t.params[p.name];
      table += format(" %-14s", v.is_number_float() ? format("%.4g", v.get<double>()).c_str() : v.dump().c_str());
    }
    table += "\n";
  }
  std::printf("%s", table.c_str());
  io::write_file_atomic(f.out + "/results.txt", table);
  GS_CHECK(!order.empty() && std::isfinite(order[0].objective),
           "search: no trial finished with a %s (each trial's log: %s/trial_NNN/train.log)", f.objective.c_str(),
           f.out.c_str());
  {
    train::TrainConfig best = space.apply(base, order[0].params);
    best.out = f.out + "/best";
    io::write_file_atomic(f.out + "/best_config.json", best.to_json() + "\n");
    std::printf(
        "best: trial %lld, %s %.4f; config: %s/best_config.json (gradscope train --config %s/best_config.json)\n",
        (long long)order[0].id, f.objective.c_str(), measured(f.objective, order[0].objective), f.out.c_str(),
        f.out.c_str());
  }
}
}  // namespace

void add_search(CLI::App& app) {
  auto f = std::make_shared<SearchFlags>();
  f->base.val_fraction = 0.1;  // the default objective is validation accuracy
  f->base.progress = false;
  CLI::App* cmd = app.add_subcommand("search",
                                     "hyperparameter search (grid, random, TPE) over train settings, one "
                                     "train process per trial; resumable");
  train::TrainConfig& c = f->base;
  add_model_data_flags(cmd, c);
  add_optimizer_data_flags(cmd, c);
  cmd->add_option("--space", f->space_file,
                  "search space JSON: {\"lr\": {\"type\": \"loguniform\", \"low\": 1e-4, \"high\": 0.1}, \"batch\": "
                  "{\"type\": \"choice\", \"values\": [32, 64]}, ...} (uniform, loguniform, int, choice)")
      ->required();
  cmd->add_option("--config", f->base_file, "base config.json for every trial (flags given here override it)");
  cmd->add_option("--epochs", c.epochs, "epochs per trial")->capture_default_str();
  cmd->add_option("--lr", c.lr, "learning rate when not searched")->capture_default_str();
  cmd->add_option("--schedule", c.schedule, "lr schedule when not searched (see train --help)")->capture_default_str();
  cmd->add_option("--limit-test", c.limit_test, "evaluate on a stratified subset of N test images (0: all)")
      ->capture_default_str();
  cmd->add_option("--strategy", f->options.strategy, "grid | random | tpe")
      ->check(CLI::IsMember({"grid", "random", "tpe"}))
      ->capture_default_str();
  cmd->add_option("--trials", f->options.trials, "number of trials (grid: at most the grid size)")
      ->capture_default_str();
  cmd->add_option("--parallel", f->options.parallel, "trials run at once")->capture_default_str();
  cmd->add_option("--search-seed", f->options.seed, "seed of the strategy's proposals")->capture_default_str();
  cmd->add_option("--grid-points", f->options.grid_points, "grid: values per continuous parameter")
      ->capture_default_str();
  cmd->add_option("--objective", f->objective,
                  "metrics.jsonl key to maximise, best over epochs (val_acc; a *_loss key is minimised)")
      ->capture_default_str();
  cmd->add_option("--early-stop", f->early_stop, "none | median (stop a trial below the median of finished ones)")
      ->capture_default_str();
  cmd->add_option("--out", f->out, "search directory: trial_NNN/, search.jsonl, results.txt, best_config.json")
      ->capture_default_str();
  register_action(cmd, [f, cmd] { run_search_command(*f, resolve_config(cmd, f->base, f->base_file)); });
}

const CommandRegistration register_search{45, add_search};

}  // namespace gs::cli
