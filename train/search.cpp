// Search strategies (grid, random, TPE), the batch loop, and the median stopping rule.
#include "train/search.h"

#include <algorithm>
#include <cmath>

#include "tensor/error.h"

namespace gs::train {

using nlohmann::json;

namespace {
uint64_t trial_seed(uint64_t seed, int64_t id) {
  // splitmix64 of (seed, id): independent streams per trial, stable across resumes.
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + uint64_t(id) + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// A 1-D Parzen estimator on [0, 1]: a uniform prior component plus one Gaussian per observation,
// each Gaussian as wide as the larger gap to its neighbours (so sparse regions stay explorable).
struct Parzen {
  std::vector<double> mu, sigma;
  explicit Parzen(std::vector<double> points) {
    std::sort(points.begin(), points.end());
    mu = points;
    double floor_sigma = 1.0 / std::min<double>(100, 1 + double(points.size()));
    for (size_t i = 0; i < points.size(); ++i) {
      double left = points[i] - (i == 0 ? 0.0 : points[i - 1]);
      double right = (i + 1 == points.size() ? 1.0 : points[i + 1]) - points[i];
      sigma.push_back(std::clamp(std::max(left, right), floor_sigma * 0.1, 1.0));
    }
  }
  double pdf(double x) const {
    double sum = 1.0;  // the uniform prior on [0, 1]
    for (size_t i = 0; i < mu.size(); ++i) {
      double z = (x - mu[i]) / sigma[i];
      sum += std::exp(-0.5 * z * z) / (sigma[i] * std::sqrt(2 * M_PI));
    }
    return sum / double(mu.size() + 1);
  }
  double sample(Generator& g) const {
    size_t k = size_t(g.randint(0, int64_t(mu.size()) + 1));
    if (k == mu.size()) return g.uniform();
    for (int tries = 0; tries < 16; ++tries) {
      double x = mu[k] + sigma[k] * g.normal();
      if (x >= 0 && x < 1) return x;
    }
    return std::clamp(mu[k], 0.0, std::nextafter(1.0, 0.0));
  }
};

// Counts with add-one smoothing, for a categorical parameter.
struct Categorical {
  std::vector<double> p;
  Categorical(const std::vector<int64_t>& picks, int64_t n) : p(size_t(n), 1.0) {
    for (int64_t k : picks) p[size_t(k)] += 1;
    double total = 0;
    for (double v : p) total += v;
    for (double& v : p) v /= total;
  }
  int64_t sample(Generator& g) const {
    double u = g.uniform(), acc = 0;
    for (size_t k = 0; k < p.size(); ++k)
      if ((acc += p[k]) > u) return int64_t(k);
    return int64_t(p.size()) - 1;
  }
};

int64_t choice_index(const ParamSpec& p, const json& v) {
  for (size_t i = 0; i < p.values.size(); ++i)
    if (p.values[i] == v) return int64_t(i);
  return 0;
}
}  // namespace

Strategy::Strategy(const SearchSpace& space, const SearchOptions& options) : space_(space), options_(options) {
  GS_CHECK(options.strategy == "grid" || options.strategy == "random" || options.strategy == "tpe",
           "search: unknown strategy '%s' (grid, random or tpe)", options.strategy.c_str());
  GS_CHECK(!space.params.empty(), "search: the space has no parameters");
  if (options.strategy == "grid") grid_ = space.grid(options.grid_points);
}

int64_t Strategy::budget() const {
  return options_.strategy == "grid" ? std::min<int64_t>(options_.trials, int64_t(grid_.size())) : options_.trials;
}

json Strategy::propose(int64_t id, const std::vector<Trial>& done) const {
  if (options_.strategy == "grid") {
    GS_CHECK(id < int64_t(grid_.size()), "search: grid has %zu points, trial %lld asked", grid_.size(), (long long)id);
    return grid_[size_t(id)];
  }
  Generator g(trial_seed(options_.seed, id));
  std::vector<Trial> usable;
  for (const auto& t : done)
    if (t.status != "failed" && std::isfinite(t.objective)) usable.push_back(t);
  if (options_.strategy == "random" || int64_t(usable.size()) < std::max<int64_t>(options_.tpe_startup, 2))
    return space_.sample(g);
  return propose_tpe(g, usable);
}

json Strategy::propose_tpe(Generator& g, const std::vector<Trial>& done) const {
  // Split the finished trials: the best gamma fraction model l(x) ("good"), the rest g(x).
  std::vector<Trial> sorted = ranked(done);
  size_t n_good =
      std::clamp<size_t>(size_t(std::ceil(options_.tpe_gamma * double(sorted.size()))), 1, sorted.size() - 1);
  // One candidate drawn from l per round, scored by sum over parameters of log l(x) - log g(x)
  // (the independent-parameter TPE: the ratio maximises expected improvement under TPE's model).
  std::vector<double> score(size_t(options_.tpe_candidates), 0.0);
  std::vector<json> candidates(size_t(options_.tpe_candidates), json::object());
  for (const auto& p : space_.params) {
    std::vector<double> good_u, bad_u;
    std::vector<int64_t> good_k, bad_k;
    for (size_t i = 0; i < sorted.size(); ++i) {
      const json& v = sorted[i].params.at(p.name);
      if (p.categorical())
        (i < n_good ? good_k : bad_k).push_back(choice_index(p, v));
      else
        (i < n_good ? good_u : bad_u).push_back(std::clamp(p.to_unit(v), 0.0, 1.0));
    }
    for (size_t c = 0; c < candidates.size(); ++c) {
      if (p.categorical()) {
        Categorical l(good_k, p.num_choices()), gd(bad_k, p.num_choices());
        int64_t k = l.sample(g);
        candidates[c][p.name] = p.values[size_t(k)];
        score[c] += std::log(l.p[size_t(k)]) - std::log(gd.p[size_t(k)]);
      } else {
        Parzen l(good_u), gd(bad_u);
        double u = l.sample(g);
        candidates[c][p.name] = p.to_value(u);
        score[c] += std::log(l.pdf(u)) - std::log(gd.pdf(u));
      }
    }
  }
  size_t best = size_t(std::max_element(score.begin(), score.end()) - score.begin());
  return candidates[best];
}

std::vector<Trial> run_search(const SearchSpace& space, const SearchOptions& options, const BatchEvaluator& evaluate,
                              std::vector<Trial> previous, const std::function<void(const Trial&)>& on_trial) {
  GS_CHECK(options.trials > 0, "search: --trials must be positive, got %lld", (long long)options.trials);
  GS_CHECK(options.parallel > 0, "search: --parallel must be positive, got %d", options.parallel);
  Strategy strategy(space, options);
  std::sort(previous.begin(), previous.end(), [](const Trial& a, const Trial& b) { return a.id < b.id; });
  std::vector<Trial> done = previous;
  int64_t next_id = done.empty() ? 0 : done.back().id + 1;
  const int64_t budget = strategy.budget();
  while (int64_t(done.size()) < budget) {
    int64_t k = std::min<int64_t>(options.parallel, budget - int64_t(done.size()));
    std::vector<Trial> batch;
    for (int64_t i = 0; i < k; ++i) {
      Trial t;
      t.id = next_id++;
      t.params = strategy.propose(t.id, done);
      batch.push_back(t);
    }
    std::vector<TrialResult> results = evaluate(batch);
    GS_CHECK(results.size() == batch.size(), "search: the evaluator returned %zu results for %zu trials",
             results.size(), batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i].objective = results[i].objective;
      batch[i].status = results[i].status;
      batch[i].seconds = results[i].seconds;
      if (!std::isfinite(batch[i].objective) && batch[i].status == "ok") batch[i].status = "failed";
      done.push_back(batch[i]);
      if (on_trial) on_trial(batch[i]);
    }
  }
  return done;
}

std::vector<Trial> ranked(std::vector<Trial> trials) {
  auto key = [](const Trial& t) {
    return t.status != "failed" && std::isfinite(t.objective) ? t.objective : -INFINITY;
  };
  std::stable_sort(trials.begin(), trials.end(), [&](const Trial& a, const Trial& b) { return key(a) > key(b); });
  return trials;
}

json trial_to_json(const Trial& t, bool objective_is_loss) {
  const bool finite = std::isfinite(t.objective);
  return {{"id", t.id},
          {"params", t.params},
          {"objective", finite ? json(objective_is_loss ? -t.objective : t.objective) : json(nullptr)},
          {"score", finite ? json(t.objective) : json(nullptr)},
          {"status", t.status},
          {"seconds", t.seconds}};
}

Trial trial_from_json(const json& j) {
  Trial t;
  t.id = j.at("id").get<int64_t>();
  t.params = j.at("params");
  const json& score = j.contains("score") ? j["score"] : j.at("objective");
  t.objective = score.is_number() ? score.get<double>() : NAN;
  t.status = j.value("status", std::string("ok"));
  t.seconds = j.value("seconds", 0.0);
  return t;
}

bool median_stop(const std::vector<double>& current, const std::vector<std::vector<double>>& finished,
                 size_t min_trials) {
  if (current.empty()) return false;
  size_t e = current.size();
  double best_current = -INFINITY;
  for (double v : current)
    if (std::isfinite(v)) best_current = std::max(best_current, v);
  std::vector<double> others;
  for (const auto& curve : finished) {
    if (curve.size() < e) continue;
    double best = -INFINITY;
    for (size_t i = 0; i < e; ++i)
      if (std::isfinite(curve[i])) best = std::max(best, curve[i]);
    if (std::isfinite(best)) others.push_back(best);
  }
  if (others.size() < min_trials) return false;
  std::sort(others.begin(), others.end());
  size_t m = others.size();
  double median = m % 2 ? others[m / 2] : 0.5 * (others[m / 2 - 1] + others[m / 2]);
  return best_current < median;
}

}  // namespace gs::train
