// Hyperparameter search: strategies (grid, random, TPE) that propose trials in a SearchSpace, and a
// loop that asks an evaluator for their objectives a batch at a time (the batch is how `--parallel K`
// runs K trial processes at once; see cli/search_command.cpp). The loop knows nothing of training:
// tests drive it with a pure function.
//
//   gs::train::SearchOptions o{.strategy = "tpe", .trials = 30, .seed = 1};
//   auto trials = gs::train::run_search(space, o, [](const std::vector<gs::train::Trial>& batch) {
//     std::vector<gs::train::TrialResult> r;
//     for (auto& t : batch) r.push_back({objective(t.params), "ok"});
//     return r;
//   });
//
// Why TPE (Bergstra et al. 2011, Optuna's default) rather than a GP with expected improvement: our
// spaces mix log-scaled reals, integers and categorical choices, which TPE models natively (one 1-D
// density per parameter, categorical ones by counts) where a GP needs a kernel over mixed types; each
// suggestion costs O(trials x candidates) with no matrix inversion or kernel-hyperparameter fitting;
// and it is known to work from a handful of observations, which is our budget (tens of trials).
#pragma once
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/search_space.h"

namespace gs::train {

struct Trial {
  int64_t id = 0;
  nlohmann::json params;   // {name: value}
  double objective = NAN;  // higher is better (validation accuracy by default)
  std::string status;      // "ok", "pruned" (stopped early; objective is its best so far), "failed"
  double seconds = 0;
};

struct TrialResult {
  double objective = NAN;
  std::string status = "ok";
  double seconds = 0;
};

struct SearchOptions {
  std::string strategy = "random";  // grid | random | tpe
  int64_t trials = 12;              // budget (grid: at most the grid's size)
  uint64_t seed = 0;
  int parallel = 1;     // trials proposed per batch
  int grid_points = 3;  // per continuous parameter
  // TPE: random trials before modelling, fraction of trials counted as good, candidates scored per proposal.
  int64_t tpe_startup = 5;
  double tpe_gamma = 0.25;
  int tpe_candidates = 24;
};

// Proposes the params of trial `id` given the finished trials (failed ones are ignored). Random and
// TPE draw from a Generator seeded by (seed, id), so a resumed search proposes what it would have.
class Strategy {
 public:
  Strategy(const SearchSpace& space, const SearchOptions& options);
  nlohmann::json propose(int64_t id, const std::vector<Trial>& done) const;
  int64_t budget() const;  // trials the strategy can propose (grid size for grid)

 private:
  nlohmann::json propose_tpe(Generator& g, const std::vector<Trial>& done) const;
  const SearchSpace& space_;
  SearchOptions options_;
  std::vector<nlohmann::json> grid_;
};

// Runs trials until the budget is spent. `previous` are trials already finished (a resumed search):
// they count against the budget and inform TPE. on_trial is called as each trial finishes (to
// append it to search.jsonl). Returns every trial, previous ones included, in id order.
using BatchEvaluator = std::function<std::vector<TrialResult>(const std::vector<Trial>& batch)>;
std::vector<Trial> run_search(const SearchSpace& space, const SearchOptions& options, const BatchEvaluator& evaluate,
                              std::vector<Trial> previous = {},
                              const std::function<void(const Trial&)>& on_trial = nullptr);

// Trials sorted best first (failed last).
std::vector<Trial> ranked(std::vector<Trial> trials);
// A line of search.jsonl. "objective" is the metric as measured (a loss as the positive loss when
// `objective_is_loss`) and "score" the higher-is-better value the search ranks (Trial::objective);
// lines without "score" (older files) hold the score in "objective".
nlohmann::json trial_to_json(const Trial& t, bool objective_is_loss = false);
Trial trial_from_json(const nlohmann::json& j);

// The median stopping rule (Golovin et al. 2017, Google Vizier): stop a trial at epoch e when its best
// objective so far is below the median, over finished trials, of their best up to epoch e. `curves`
// holds the per-epoch objectives of finished trials; needs at least `min_trials` of them.
bool median_stop(const std::vector<double>& current, const std::vector<std::vector<double>>& finished_curves,
                 size_t min_trials = 3);

}  // namespace gs::train
