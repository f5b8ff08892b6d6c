// `gradscope lr-find`: the LR range test (train/lr_finder.h) on the model, data and optimizer that
// the same flags would give `train`; writes lr_find.csv and lr_find.svg to --out and prints the suggestions.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "tensor/error.h"
#include "train/lr_finder.h"

namespace gs::cli {

void add_lr_find(CLI::App& app) {
  auto config = std::make_shared<train::TrainConfig>();
  auto options = std::make_shared<train::LRFinderOptions>();
  auto config_file = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>("runs/lr_find");
  CLI::App* cmd = app.add_subcommand(
      "lr-find",
      "LR range test: exponential lr sweep over mini-batches; prints the suggested lr, writes a CSV and SVG plot");
  train::TrainConfig& c = *config;
  add_model_data_flags(cmd, c);
  add_optimizer_data_flags(cmd, c);
  add_sampler_flag(cmd, c);
  add_mix_flags(cmd, c);
  add_grad_penalty_flag(cmd, c);
  add_recompute_flag(cmd, c);
  cmd->add_option("--config", *config_file,
                  "take model/data/optimizer from a run's config.json (flags given override)");
  cmd->add_option("--start-lr", options->start_lr, "first lr of the sweep")->capture_default_str();
  cmd->add_option("--end-lr", options->end_lr, "last lr of the sweep")->capture_default_str();
  cmd->add_option("--steps", options->num_steps, "mini-batches in the sweep")->capture_default_str();
  cmd->add_option("--diverge", options->diverge_factor, "stop when the smoothed loss exceeds this times the best")
      ->capture_default_str();
  cmd->add_option("--suggestion", options->suggestion, "which suggestion to report: valley | steepest | minimum")
      ->check(CLI::IsMember({"valley", "steepest", "minimum"}))
      ->capture_default_str();
  cmd->add_option("--out", *out, "output directory (lr_find.csv, lr_find.svg)")->capture_default_str();
  register_action(cmd, [config, options, config_file, out, cmd] {
    train::TrainConfig run = resolve_config(cmd, *config, *config_file);
    std::fprintf(stderr, "gradscope lr-find: %s on %s, %s, lr %g -> %g over %lld batches of %lld\n",
                 run.model_spec.empty() ? run.model.c_str() : run.model_spec.c_str(), run.data.c_str(),
                 run.optimizer.c_str(), options->start_lr, options->end_lr, (long long)options->num_steps,
                 (long long)run.batch_size);
    train::LRFinderResult r = train::lr_find_for_config(run, *options);
    train::write_lr_find_outputs(*out, r);
    // A sweep too short to suggest anything still has its curve (a few steps are a way to look at
    // the first losses); it says "none", not "suggested lr: 0" (train --lr auto refuses it).
    const bool none = !(r.suggested_lr > 0);
    if (none)
      std::fprintf(stderr, "warning: lr-find: no suggestion from %zu points; sweep longer (--steps, e.g. 100)\n",
                   r.points.size());
    auto shown = [](double v) { return v > 0 ? format("%.3g", v) : std::string("none"); };
    std::printf("steps: %zu of %lld%s\n", r.points.size(), (long long)options->num_steps,
                r.diverged ? " (stopped: loss diverged)" : "");
    std::printf("valley:     %s\n", shown(r.suggestions.valley).c_str());
    std::printf("steepest:   %s\n", shown(r.suggestions.steepest).c_str());
    std::printf("minimum/10: %s\n", shown(r.suggestions.minimum).c_str());
    std::printf("chosen: %s (--suggestion picks another)\n", r.method.c_str());
    std::printf("suggested lr: %s\n", shown(r.suggested_lr).c_str());
    std::printf("curve: %s/lr_find.csv, plot: %s/lr_find.svg\n", out->c_str(), out->c_str());
  });
}

const CommandRegistration register_lr_find{40, add_lr_find};

}  // namespace gs::cli
