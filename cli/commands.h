// Subcommand definitions. Each add_* registers flags on the app; run_selected runs whichever
// subcommand the user chose. Errors propagate as exceptions to main(), which picks exit codes.
// Subcommands in their own files (cli/<name>_command.cpp) use register_action and the shared flag helpers.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "io/dataloader.h"
#include "layers/module.h"
#include "train/config.h"

namespace gs::cli {

// Each subcommand file registers its add_* function once, at namespace scope:
//   static const gs::cli::CommandRegistration reg{40, add_doctor};
// main() calls them in ascending order (the order of `gradscope --help`). cli/ sources are
// compiled straight into the executable, so these static registrations are never dropped.
using AddCommand = void (*)(CLI::App& app);
struct CommandRegistration {
  CommandRegistration(int order, AddCommand add);
};
// Adds every registered subcommand to the app.
void add_all_commands(CLI::App& app);
void run_selected(CLI::App& app);

// What run_selected runs when `cmd` was chosen.
void register_action(CLI::App* cmd, std::function<void()> action);
// --model, --model-spec, --data, --threads, --kernel.
void add_model_data_flags(CLI::App* cmd, train::TrainConfig& c);
// --batch, --optimizer, --momentum, --weight-decay, --nesterov, --beta1, --beta2, --clip-norm, --clip-value,
// --label-smoothing, --augment, --seed, --limit-train, --val-fraction, --exclude-list, --weights (all but --lr).
void add_optimizer_data_flags(CLI::App* cmd, train::TrainConfig& c);
// Flags shared by some of train, bench and lr-find, each defined once.
void add_sync_bn_flag(CLI::App* cmd, train::TrainConfig& c);       // --sync-bn: train, bench
void add_grad_penalty_flag(CLI::App* cmd, train::TrainConfig& c);  // --grad-penalty: train, bench, lr-find
void add_recompute_flag(CLI::App* cmd, train::TrainConfig& c);     // --recompute-segments: train, bench, lr-find
void add_mix_flags(CLI::App* cmd, train::TrainConfig& c);          // --mixup, --cutmix: train, lr-find
void add_sampler_flag(CLI::App* cmd, train::TrainConfig& c);       // --sampler: train, lr-find
// `given` with --config <file> applied under it: the file's values, then only the flags given on the
// command line. Without a file, `given` itself.
train::TrainConfig resolve_config(CLI::App* cmd, const train::TrainConfig& given, const std::string& config_file);
// The same with the base config given as JSON text (e.g. the config a training checkpoint carries);
// `source` names it in errors.
train::TrainConfig resolve_config_json(CLI::App* cmd, const train::TrainConfig& given, const std::string& base_json,
                                       const std::string& source);
// The model config for a checkpoint-based command (eval, export, inspect): --config when given,
// else the config a training checkpoint carries, else the flags alone; flags given on the
// command line win.
train::TrainConfig resolve_for_checkpoint(CLI::App* cmd, const train::TrainConfig& given,
                                          const std::string& config_file, const std::string& checkpoint);

// What `grads` and `graph` run on: the first c.batch_size training images of c.data in file order
// with the default normalisation (no shuffle, no augmentation), and the model for them (seeded
// initialisation, or c.weights), in train mode, both on c.device. `command` names the command in
// errors.
struct FirstBatch {
  io::Batch batch;
  nn::ModulePtr model;
};
FirstBatch first_batch_and_model(const train::TrainConfig& c, const char* command);

}  // namespace gs::cli
