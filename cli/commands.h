// Subcommand definitions. Each add_* registers flags on the app; run_selected runs whichever
// subcommand the user chose. Errors propagate as exceptions to main(), which picks exit codes.
#pragma once
#include <CLI/CLI.hpp>

namespace gs::cli {

void add_train(CLI::App& app);
void add_eval(CLI::App& app);
void add_info(CLI::App& app);
void run_selected(CLI::App& app);

}  // namespace gs::cli
