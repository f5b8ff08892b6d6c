// Hyperparameter search without training: the space file, grid/random/TPE proposals, resuming, the
// median stopping rule, and TPE beating random search on a synthetic objective with the same budget.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "tests/helpers.h"
#include "train/search.h"

using namespace gs;
using nlohmann::json;

namespace {
const char* kSpace = R"({
  "lr": {"type": "loguniform", "low": 1e-5, "high": 1.0},
  "weight-decay": {"type": "loguniform", "low": 1e-6, "high": 0.1},
  "momentum": {"type": "uniform", "low": 0.0, "high": 1.0},
  "optimizer": {"type": "choice", "values": ["sgd", "adam", "rmsprop"]}
})";

// Best at lr 10^-2.5, weight decay 1e-4, momentum 0.9 with sgd: a smooth bowl in log space, as
// validation accuracy tends to be, with a categorical offset.
double synthetic(const json& p) {
  double a = std::log10(p["lr"].get<double>()) + 2.5, b = std::log10(p["weight-decay"].get<double>()) + 4;
  double m = p["momentum"].get<double>() - 0.9;
  return -(a * a + b * b + 4 * m * m) - (p["optimizer"] == "sgd" ? 0.0 : 0.5);
}

train::BatchEvaluator pure(std::function<double(const json&)> f, std::vector<size_t>* batch_sizes = nullptr) {
  return [f, batch_sizes](const std::vector<train::Trial>& batch) {
    if (batch_sizes) batch_sizes->push_back(batch.size());
    std::vector<train::TrialResult> r;
    for (const auto& t : batch) r.push_back({f(t.params), "ok", 0});
    return r;
  };
}

double best_of(const std::vector<train::Trial>& trials) { return train::ranked(trials).front().objective; }
}  // namespace

TEST(SearchSpace, ParsesMapsAndApplies) {
  auto space = train::SearchSpace::from_json(kSpace, "space.json");
  ASSERT_EQ(space.params.size(), 4u);
  // nlohmann keeps object keys sorted: lr, momentum, optimizer, weight-decay.
  const auto& lr = space.params[0];
  EXPECT_EQ(lr.key, "lr");
  EXPECT_EQ(space.params[2].key, "optimizer");
  EXPECT_EQ(space.params[3].name, "weight-decay");
  EXPECT_EQ(space.params[3].key, "weight_decay");
  EXPECT_NEAR(lr.to_value(0.5).get<double>(), std::sqrt(1e-5), 1e-12);
  EXPECT_NEAR(lr.to_unit(lr.to_value(0.3)), 0.3, 1e-12);
  EXPECT_EQ(space.params[2].to_value(0.99), "rmsprop");
  EXPECT_EQ(space.params[2].to_value(0.0), "sgd");
  train::TrainConfig applied = space.apply(train::TrainConfig(), {{"weight-decay", 0.25}, {"optimizer", "sgd"}});
  EXPECT_EQ(applied.weight_decay, 0.25);
  EXPECT_EQ(applied.optimizer, "sgd");

  auto ints = train::SearchSpace::from_json(R"({"batch": {"type": "int", "low": 16, "high": 18}})", "s");
  EXPECT_EQ(ints.params[0].key, "batch_size");
  EXPECT_EQ(ints.params[0].to_value(0.0), 16);
  EXPECT_EQ(ints.params[0].to_value(0.999), 18);
  EXPECT_EQ(ints.grid(5).size(), 3u);  // 16, 17, 18 once each
  // Log-scale points stay inside the range: the ends are its own numbers, not exp(log(x)).
  auto logs = train::SearchSpace::from_json(R"({"lr": {"type": "loguniform", "low": 0.001, "high": 0.1}})", "s");
  auto points = logs.grid(3);
  ASSERT_EQ(points.size(), 3u);
  EXPECT_EQ(points.front()["lr"].get<double>(), 0.001);
  EXPECT_EQ(points.back()["lr"].get<double>(), 0.1);
  EXPECT_NEAR(points[1]["lr"].get<double>(), 0.01, 1e-15);
  EXPECT_GE(logs.params[0].to_value(0.0).get<double>(), 0.001);
  EXPECT_LE(logs.params[0].to_value(1.0).get<double>(), 0.1);
  train::TrainConfig c = ints.apply(train::TrainConfig(), {{"batch", 17}});
  EXPECT_EQ(c.batch_size, 17);

  EXPECT_THROW_MSG(train::SearchSpace::from_json(R"({"learning_rate": {"type": "uniform", "low": 0, "high": 1}})", "s"),
                   "not a train setting");
  EXPECT_THROW_MSG(train::SearchSpace::from_json(R"({"lr": {"type": "normal", "low": 0, "high": 1}})", "s"),
                   "unknown type");
  EXPECT_THROW_MSG(train::SearchSpace::from_json(R"({"lr": {"type": "loguniform", "low": 0, "high": 1}})", "s"),
                   "low must be > 0");
  EXPECT_THROW_MSG(train::SearchSpace::from_json(R"({"lr": {"type": "uniform", "low": 2, "high": 1}})", "s"),
                   "low < high");
  EXPECT_THROW_MSG(train::SearchSpace::from_json(R"({"out": {"type": "choice", "values": ["a"]}})", "s"),
                   "cannot be searched");
  EXPECT_THROW_MSG(train::SearchSpace::from_json(R"({"lr": {"type": "uniform", "low": 0, "hihg": 1}})", "s"),
                   "'lr' has unknown key 'hihg'");
  EXPECT_THROW_MSG(train::SearchSpace::from_json(R"({"batch": {"type": "int", "low": 1.5, "high": 8}})", "s"),
                   "int 'batch' needs integer \"low\" and \"high\", got 1.5 and 8");
}

TEST(Search, GridCoversEveryCombinationOnce) {
  auto space = train::SearchSpace::from_json(
      R"({"lr": {"type": "loguniform", "low": 1e-3, "high": 1e-1}, "batch": {"type": "choice", "values": [32, 64]}})",
      "s");
  train::SearchOptions o{.strategy = "grid", .trials = 100, .grid_points = 3};
  auto trials = train::run_search(space, o, pure([](const json& p) { return p["lr"].get<double>(); }));
  ASSERT_EQ(trials.size(), 6u);  // budget capped at the grid size
  std::set<std::string> seen;
  for (const auto& t : trials) seen.insert(t.params.dump());
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_NEAR(best_of(trials), 0.1, 1e-12);
}

TEST(Search, RandomIsSeededBatchedAndResumable) {
  auto space = train::SearchSpace::from_json(kSpace, "s");
  std::vector<size_t> sizes;
  train::SearchOptions o{.strategy = "random", .trials = 7, .seed = 3, .parallel = 3};
  auto a = train::run_search(space, o, pure(synthetic, &sizes));
  EXPECT_EQ(sizes, (std::vector<size_t>{3, 3, 1}));
  auto b = train::run_search(space, o, pure(synthetic));
  ASSERT_EQ(a.size(), 7u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].params, b[i].params);
  o.seed = 4;
  EXPECT_NE(train::run_search(space, o, pure(synthetic))[0].params, a[0].params);

  // Interrupted after 4 trials, resumed: the same 7 trials, only the missing 3 evaluated.
  for (const char* strategy : {"random", "tpe"}) {
    train::SearchOptions s{.strategy = strategy, .trials = 10, .seed = 5, .tpe_startup = 3};
    auto full = train::run_search(space, s, pure(synthetic));
    std::vector<train::Trial> first(full.begin(), full.begin() + 4);
    int evaluated = 0;
    auto counting = [&](const std::vector<train::Trial>& batch) {
      evaluated += int(batch.size());
      return pure(synthetic)(batch);
    };
    auto resumed = train::run_search(space, s, counting, first);
    EXPECT_EQ(evaluated, 6) << strategy;
    ASSERT_EQ(resumed.size(), full.size());
    for (size_t i = 0; i < full.size(); ++i) EXPECT_EQ(resumed[i].params, full[i].params) << strategy << " " << i;
  }
}

TEST(Search, TpeBeatsRandomOnASyntheticObjective) {
  auto space = train::SearchSpace::from_json(kSpace, "s");
  double sum_random = 0, sum_tpe = 0;
  int tpe_wins = 0;
  const int kSeeds = 12;
  for (int seed = 0; seed < kSeeds; ++seed) {
    train::SearchOptions o{.trials = 40, .seed = uint64_t(seed), .parallel = 2};
    o.strategy = "random";
    double r = best_of(train::run_search(space, o, pure(synthetic)));
    o.strategy = "tpe";
    double t = best_of(train::run_search(space, o, pure(synthetic)));
    sum_random += r;
    sum_tpe += t;
    tpe_wins += t > r;
  }
  std::printf("mean best over %d seeds, 40 trials: random %.3f, tpe %.3f (tpe better on %d)\n", kSeeds,
              sum_random / kSeeds, sum_tpe / kSeeds, tpe_wins);
  EXPECT_GT(sum_tpe / kSeeds, sum_random / kSeeds);
  EXPECT_GE(tpe_wins, kSeeds / 2);
}

TEST(Search, FailedTrialsRankLastAndRoundTripThroughJson) {
  std::vector<train::Trial> t(3);
  t[0] = {0, {{"lr", 0.1}}, 0.5, "ok", 1};
  t[1] = {1, {{"lr", 0.2}}, NAN, "failed", 1};
  t[2] = {2, {{"lr", 0.3}}, 0.7, "pruned", 1};
  auto r = train::ranked(t);
  EXPECT_EQ(r[0].id, 2);
  EXPECT_EQ(r[2].id, 1);
  train::Trial back = train::trial_from_json(json::parse(train::trial_to_json(t[1]).dump()));
  EXPECT_EQ(back.status, "failed");
  EXPECT_TRUE(std::isnan(back.objective));
  EXPECT_EQ(back.params, t[1].params);
  // A loss objective is stored as measured, with the search's higher-is-better score beside it; a
  // line from before "score" holds the score in "objective".
  train::Trial loss{4, {{"lr", 0.1}}, -0.25, "ok", 1};
  json line = train::trial_to_json(loss, /*objective_is_loss=*/true);
  EXPECT_EQ(line["objective"], 0.25);
  EXPECT_EQ(line["score"], -0.25);
  EXPECT_EQ(train::trial_from_json(line).objective, -0.25);
  line.erase("score");
  line["objective"] = -0.25;
  EXPECT_EQ(train::trial_from_json(line).objective, -0.25);
}

TEST(Search, MedianStoppingRule) {
  std::vector<std::vector<double>> finished{{0.5, 0.6, 0.7}, {0.6, 0.7, 0.8}, {0.4, 0.8, 0.9}};
  // After epoch 1 the finished trials' bests were 0.5, 0.6, 0.4 (median 0.5).
  EXPECT_TRUE(train::median_stop({0.45}, finished));
  EXPECT_FALSE(train::median_stop({0.55}, finished));
  // After epoch 2: 0.6, 0.7, 0.8 (median 0.7); the best so far counts, not the last.
  EXPECT_FALSE(train::median_stop({0.75, 0.3}, finished));
  EXPECT_TRUE(train::median_stop({0.5, 0.65}, finished));
  // Fewer than 3 finished trials long enough: never stop.
  EXPECT_FALSE(train::median_stop({0.1, 0.1, 0.1, 0.1}, finished));
  EXPECT_FALSE(train::median_stop({0.1}, {{0.9}, {0.9}}));
}
