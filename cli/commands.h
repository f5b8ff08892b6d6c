// Subcommand definitions. Each add_* registers flags on the app; run_selected runs whichever
// subcommand the user chose. Errors propagate as exceptions to main(), which picks exit codes.
// Subcommands in their own files (cli/<name>_command.cpp) use register_action and the shared flag helpers.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "train/config.h"

namespace gs::cli {

void add_train(CLI::App& app);
void add_eval(CLI::App& app);
void add_info(CLI::App& app);
void add_export(CLI::App& app);  // cli/export_command.cpp
void add_lr_find(CLI::App& app);  // cli/lr_find_command.cpp
void add_grads(CLI::App& app);    // cli/grads_command.cpp
void add_runs(CLI::App& app);     // cli/runs_command.cpp
void add_search(CLI::App& app);   // cli/search_command.cpp
void run_selected(CLI::App& app);

// What run_selected runs when `cmd` was chosen.
void register_action(CLI::App* cmd, std::function<void()> action);
// --model, --model-spec, --data, --threads, --kernel.
void add_model_data_flags(CLI::App* cmd, train::TrainConfig& c);
// --batch, --optimizer, --momentum, --weight-decay, --nesterov, --beta1, --beta2, --clip-norm, --clip-value,
// --label-smoothing, --augment, --seed, --limit-train, --val-fraction, --weights (all but --lr).
void add_optimizer_data_flags(CLI::App* cmd, train::TrainConfig& c);
// `given` with --config <file> applied under it: the file's values, then only the flags given on the
// command line. Without a file, `given` itself.
train::TrainConfig resolve_config(CLI::App* cmd, const train::TrainConfig& given, const std::string& config_file);

}  // namespace gs::cli
